// The single-pass E-step kernel's plan: tile sizes, the thread-to-work mapping and the shared
// memory layout, chosen on the host by a pure function (choose_fused_plan) that the CPU tests
// run. Plain C++: src/, tests and kernels/ include it; the kernels take a FusedPlan by value.
#pragma once

#include <cstdint>
#include <optional>

#include "core/host_device.hpp"
#include "emix/model.hpp"

namespace emix::gpu {

// What the tile's log-joint is made of.
//   kDiag:   Gaussian diag / spherical, -0.5 sum_d ((x_d - a_kd) b_kd)^2
//   kLinear: Bernoulli / binomial, sum_d x_d a_kd (a = logit)
//   kFull:   Gaussian full / tied, -0.5 |(x - a_k) U_k|^2 with U_k upper triangular
enum class FusedFamily : int { kDiag = 0, kLinear = 1, kFull = 2 };

constexpr int kFusedThreads = 256;  // threads per block
// Shared memory a plan aims to stay under, so that two blocks share a multiprocessor.
constexpr std::int64_t kFusedSharedTarget = 100 * 1024;

struct FusedPlan {
  FusedFamily family = FusedFamily::kDiag;
  bool tied = false;  // kFull: one U for every component
  int k = 0;          // components
  int d = 0;          // features
  int kp = 0;         // K rounded up to a multiple of 4 (components in register blocks of 4)
  int dq = 0;         // D rounded up to a multiple of 4 (features in vectors of 4)
  int dq8 = 0;        // D rounded up to a multiple of 8 (kFull: columns of U, blocks of 8)
  int dp = 0;         // row stride of the staged tile, elements: >= dq, 16 (mod 32) bytes
  int rows = 0;       // tile rows R, a multiple of 32
  int lg_stride = 0;  // row stride of the K x R log-joint tile: R + 1 (no bank conflicts)
  // Threads per block: a compile-time constant, so that the kernels' strides and shared-memory
  // offsets (red, fin) fold into immediates instead of taking registers.
  static constexpr int threads = kFusedThreads;
  int elem_size = 4;  // bytes of the compute type
  // Phase B's softmax fast path for rows whose log-joints are all finite (fused_softmax); set
  // from GpuSettings, not by choose_fused_plan.
  bool fast_softmax = false;
  // With row_groups > 1: each thread adds its item's tile sums, in double, to its own slot of
  // `red` (item_entries x threads doubles), and the row groups are combined once, at the block's
  // end, instead of after every tile (fused_combine_groups: about 420 instructions a tile on the
  // threads that do it, and two barriers). Chosen by choose_fused_plan's caller: it sizes `red`.
  bool block_combine = false;
  // The lean kernels (double): launch bounds of two blocks per multiprocessor instead of one,
  // which caps registers at 128, and kFull's phase A in blocks of 4 columns instead of 8 so
  // that it fits them (the default double kernels take up to 243 registers: one block of 8
  // warps a multiprocessor). Set from GpuSettings, not by choose_fused_plan.
  bool lean = false;
  // Accumulation by the register kernel (row_estep.cuh): one row per lane, every statistic in
  // registers, for small float diag / spherical models (row_kernel_fits). Set from GpuSettings
  // where the plan fits it, not by choose_fused_plan; evaluation keeps the tiled kernel.
  bool rows_in_registers = false;

  // Statistics (phase C): `items` register blocks of `item_entries` values, each summed over
  // the tile's rows by `row_groups` threads (rows g, g + G, ...), `items_per_round` at a time.
  int items = 0;
  int item_entries = 0;
  int row_groups = 1;
  int items_per_round = 0;
  int rounds = 0;

  // Shared memory, byte offsets from its start (each 16-byte aligned).
  std::int64_t xs_offset = 0;   // R x dp staged rows, x - c0
  std::int64_t lg_offset = 0;   // kp x lg_stride log-joints, then responsibilities
  std::int64_t w_offset = 0;    // R row weights
  std::int64_t red_offset = 0;  // item_entries x threads partial sums (row_groups > 1), in C,
                                // or in double with block_combine
  std::int64_t fin_offset = 0;  // 3 x threads doubles: the block's log-likelihood, weight and
                                // entropy sums
  std::int64_t shared_bytes = 0;

  // Phase A work items: register blocks of 4 rows x 4 components (kDiag, kLinear) or 4 rows x
  // one component (kFull).
  EMIX_HD int row_blocks() const { return rows / 4; }
  EMIX_HD int phase_a_items() const {
    return row_blocks() * (family == FusedFamily::kFull ? k : kp / 4);
  }
  // kFull phase C: upper-triangular 4 x 4 blocks (ib <= jb) of each Q_k.
  EMIX_HD int feature_blocks() const { return dq / 4; }
  EMIX_HD int scatter_blocks() const { return feature_blocks() * (feature_blocks() + 1) / 2; }
};

// Values per phase C item: kDiag 2 components x 4 features of S and Q, and 2 N;
// kLinear 2 x 4 of S and 2 N; kFull a 4 x 4 block of Q_k, 4 of S_k and N_k.
constexpr int kDiagItemEntries = 18;
constexpr int kLinearItemEntries = 10;
constexpr int kFullItemEntries = 21;
constexpr int kMaxItemEntries = 21;

// Whether the register kernel (row_estep.cuh) takes a plan: float diag or spherical with K and D
// of at most 8 (its lanes' K (2 D + 1) sums, up to 136, fit in registers).
EMIX_HD constexpr bool row_kernel_fits(const FusedPlan& p) {
  return p.family == FusedFamily::kDiag && p.elem_size == 4 && p.kp <= 8 && p.dq <= 8;
}

FusedFamily fused_family_of(Family family, Covariance covariance);

// The plan for K components over D features with a compute type of elem_size bytes (4 or 8),
// for blocks that may use up to max_shared_bytes of shared memory; nullopt when not even a tile
// of 32 rows fits (then the engine takes its general path). max_rows > 0 caps the tile's rows
// (tests use it to get many short tiles). block_combine: FusedPlan::block_combine. Pure: the
// same inputs give the same plan.
std::optional<FusedPlan> choose_fused_plan(Family family, Covariance covariance, int k, int d,
                                           int elem_size, std::int64_t max_shared_bytes,
                                           int max_rows = 0, bool block_combine = false);

}  // namespace emix::gpu
