#include "kernels/fused_plan.hpp"

#include <algorithm>
#include <climits>

namespace emix::gpu {

namespace {

int round_up(int a, int b) { return (a + b - 1) / b * b; }
std::int64_t align16(std::int64_t bytes) { return (bytes + 15) / 16 * 16; }

// Largest power of two <= v (v >= 1).
int pow2_floor(int v) {
  int p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

// Rows of the staged tile are read 16 bytes at a time by consecutive lanes, one row each:
// a stride of an odd number of 16-byte units puts the 8 lanes of each quarter-warp on 8
// different bank groups.
int padded_stride(int dq, int elem_size) {
  const int per16 = 16 / elem_size;  // elements per 16 bytes: 4 floats or 2 doubles
  int dp = dq;                       // a multiple of 4, so of per16
  if ((dp / per16) % 2 == 0) dp += per16;
  return dp;
}

FusedPlan layout_for(FusedPlan p, int rows) {
  const std::int64_t e = p.elem_size;
  p.rows = rows;
  p.lg_stride = rows + 1;
  const int entries = p.item_entries;
  if (p.items >= p.threads) {
    p.row_groups = 1;
    p.items_per_round = p.threads;
    p.rounds = (p.items + p.threads - 1) / p.threads;
  } else {
    // Small problems: several threads share an item, each over every G-th row, so that all
    // threads work; at least 4 rows of a full tile each.
    p.row_groups = std::max(1, std::min(pow2_floor(p.threads / p.items), rows / 4));
    p.items_per_round = p.items;
    p.rounds = 1;
  }
  std::int64_t at = 0;
  p.xs_offset = at;
  at = align16(at + std::int64_t{rows} * p.dp * e);
  p.lg_offset = at;
  at = align16(at + std::int64_t{p.kp} * p.lg_stride * e);
  p.w_offset = at;
  at = align16(at + std::int64_t{rows} * e);
  p.red_offset = at;
  if (p.row_groups > 1) {
    at = align16(at + std::int64_t{entries} * p.threads * (p.block_combine ? 8 : e));
  }
  p.fin_offset = at;
  at = align16(at + 3 * std::int64_t{p.threads} * 8);
  p.shared_bytes = at;
  return p;
}

}  // namespace

FusedFamily fused_family_of(Family family, Covariance covariance) {
  if (family != Family::kGaussian) return FusedFamily::kLinear;
  if (covariance == Covariance::kFull || covariance == Covariance::kTied) {
    return FusedFamily::kFull;
  }
  return FusedFamily::kDiag;
}

std::optional<FusedPlan> choose_fused_plan(Family family, Covariance covariance, int k, int d,
                                           int elem_size, std::int64_t max_shared_bytes,
                                           int max_rows, bool block_combine) {
  if (k < 1 || d < 1 || (elem_size != 4 && elem_size != 8)) return std::nullopt;
  // Beyond these the index arithmetic (int) or the register blocks stop making sense; such
  // shapes take the general path.
  if (k > 65536 || d > 65536) return std::nullopt;
  FusedPlan p;
  p.family = fused_family_of(family, covariance);
  p.tied = covariance == Covariance::kTied && family == Family::kGaussian;
  p.k = k;
  p.d = d;
  p.kp = round_up(k, 4);
  p.dq = round_up(d, 4);
  p.dq8 = round_up(d, 8);
  p.dp = padded_stride(p.dq, elem_size);
  p.elem_size = elem_size;
  p.block_combine = block_combine;
  switch (p.family) {
    case FusedFamily::kDiag:
      p.items = (p.kp / 2) * (p.dq / 4);
      p.item_entries = kDiagItemEntries;
      break;
    case FusedFamily::kLinear:
      p.items = (p.kp / 2) * (p.dq / 4);
      p.item_entries = kLinearItemEntries;
      break;
    case FusedFamily::kFull: {
      const std::int64_t items = std::int64_t{k} * p.scatter_blocks();
      if (items > INT_MAX / 2) return std::nullopt;
      p.items = static_cast<int>(items);
      p.item_entries = kFullItemEntries;
      break;
    }
  }
  // The largest tile (more rows amortise each tile's fixed costs: the parameters' reads and
  // the statistics' read-modify-write) under the target, else under the limit.
  const int family_rows = p.family == FusedFamily::kFull ? 256 : 512;
  const int top =
      max_rows > 0 ? std::max(32, std::min(family_rows, max_rows / 32 * 32)) : family_rows;
  for (const std::int64_t budget :
       {std::min(kFusedSharedTarget, max_shared_bytes), max_shared_bytes}) {
    for (int rows = top; rows >= 32; rows -= 32) {
      const FusedPlan candidate = layout_for(p, rows);
      if (candidate.shared_bytes <= budget) return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace emix::gpu
