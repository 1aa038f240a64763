// The single-pass E-step of small float diag and spherical models, one row per lane with every
// statistic in registers (GpuSettings::row_registers; FusedPlan::rows_in_registers), written so
// that the same code runs as the kernel (row_estep.cu) and, lane by lane, on the CPU
// (tests/fused_estep_test.cpp). Plain C++ apart from EMIX_HD.
//
// Why a second kernel: the tiled kernel (fused_estep.cuh) spends about 30 SM cycles a row on the
// H200 at K = D = 8, where the arithmetic needs about 4 (bench/results/gpu-h200-2026-12-04):
// its tile's shape is known only at run time, so its loops and index arithmetic stay, and its
// phases meet at barriers through shared memory. Here K and D, padded to 4 or 8, are template
// constants: every loop unrolls, the model's parameters are kernel parameters (constant-bank
// operands of the multiply-adds, no loads), and a lane keeps its K (2 D + 1) sums in registers.
//
// A warp takes 32 consecutive rows at a time (lane l row base + l; coalesced reads), then the
// warp's next rows, base + grid x block threads. A lane sums its rows in float for
// kRowFlushRows rows, then the warp adds its lanes' sums up in a fixed butterfly (lane l ends up
// with values [l m, l m + m), m = padded values / 32) and each lane adds its m sums to its double
// totals. At the block's end the warps' totals are added in warp order. Float sums of at most
// 32 rows, then 32 lanes: fewer terms than the tiled kernel's float tile sums (512 rows).
#pragma once

#include <cstdint>

#include "kernels/fused_estep.cuh"
#include "kernels/fused_params.hpp"

#ifdef __CUDA_ARCH__
#define EMIX_ROW_UNROLL _Pragma("unroll")
#else
#define EMIX_ROW_UNROLL
#endif

namespace emix::gpu {

constexpr int kRowThreads = FusedPlan::threads;  // 8 warps a block
constexpr int kRowWarps = kRowThreads / 32;
constexpr int kRowFlushRows = 32;  // rows a lane sums in float between its warp's flushes

// The values a lane sums for a model padded to KP components and DP features: per component,
// S[0 .. DP), Q[0 .. DP) and N, padded to a multiple of the warp's 32 lanes.
template <int KP, int DP>
struct RowShape {
  static_assert((KP == 4 || KP == 8) && (DP == 4 || DP == 8), "components, features: 4 or 8");
  static constexpr int kStride = 2 * DP + 1;
  static constexpr int kValues = KP * kStride;
  static constexpr int kPadded = (kValues + 31) / 32 * 32;
  static constexpr int kOwned = kPadded / 32;  // a lane's share after a flush
};

// The model as the kernel's parameters, in float: the FusedParams arrays at fixed sizes.
template <int KP, int DP>
struct RowParams {
  float c0[DP];
  float a[KP][DP];      // mean_k - c0
  float b[KP][DP];      // the precision Cholesky diagonal
  float shift[KP][DP];  // centre_k - c0
  float cst[KP];        // log w_k + log_norm_k; -inf for padding components
};

template <int KP, int DP>
RowParams<KP, DP> make_row_params(const FusedPlan& p, const FusedParams<float>& f) {
  RowParams<KP, DP> q{};
  for (int j = 0; j < DP; ++j) q.c0[j] = f.c0[static_cast<std::size_t>(j)];
  for (int c = 0; c < KP; ++c) {
    q.cst[c] = f.cst[static_cast<std::size_t>(c)];
    for (int j = 0; j < DP; ++j) {
      const std::size_t at = static_cast<std::size_t>(c) * static_cast<std::size_t>(p.dq) +
                             static_cast<std::size_t>(j);
      q.a[c][j] = f.a[at];
      q.b[c][j] = f.b[at];
      q.shift[c][j] = f.shift[at];
    }
  }
  return q;
}

// A lane's row: x - c0 for features < D, zero after, and its weight (zero, like x, for a row at
// or past `count`, which the kernel only prefetches). kVectorRows: D = DP and the rows are
// 16-byte aligned (whole vectors, no padding to mask).
template <bool kVectorRows, int KP, int DP>
EMIX_HD inline void row_load(const FusedArgs<float, float>& a, const RowParams<KP, DP>& q, int d,
                             std::int64_t row, float (&x)[DP], float& w) {
  const bool inside = row < a.count;
  w = 0.0f;
  if (inside) w = a.weights != nullptr ? static_cast<float>(a.weights[row]) : 1.0f;
  if constexpr (kVectorRows) {
    EMIX_ROW_UNROLL
    for (int j = 0; j < DP; ++j) x[j] = 0.0f;
    if (inside) {
      EMIX_ROW_UNROLL
      for (int h = 0; h < DP / 4; ++h) {
        const Vec4<float> v = load4(a.x + row * DP + 4 * h);
        EMIX_ROW_UNROLL
        for (int j = 0; j < 4; ++j) x[4 * h + j] = v.v[j] - q.c0[4 * h + j];
      }
    }
  } else {
    const float* src = a.x + (inside ? row : 0) * d;
    EMIX_ROW_UNROLL
    for (int j = 0; j < DP; ++j) x[j] = inside && j < d ? src[j] - q.c0[j] : 0.0f;
  }
}

// exp(t) for t >= log_negligible (about -70) or t = -inf: on the device 2^(t log2 e) by the
// hardware's exponential, flushing subnormal results to zero (exp(-70) = 4e-31 is normal), so
// that it costs one multiply and one MUFU.EX2, without __expf's subnormal fix-ups; within 2 +
// 1.2 |t| units in the last place, as fused_exp. Elsewhere exp itself.
EMIX_HD inline float row_exp(float t) {
#ifdef __CUDA_ARCH__
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t * 1.4426950408889634f));
  return e;
#else
  return exp_of(t);
#endif
}

// 1 / v, correctly rounded: the device's reciprocal instead of a division's slow path.
EMIX_HD inline float row_reciprocal(float v) {
#ifdef __CUDA_ARCH__
  return __frcp_rn(v);
#else
  return 1.0f / v;
#endif
}

// One row of weight w into the lane's float sums v and double sums: fused_log_joint,
// fused_softmax's fast path (softmax_in_place itself for a row with a NaN or +inf term, or
// every term -inf; one reciprocal a row instead of a division) and fused_item_sums for a diag
// model, for one row. kAllComponents: K = KP, so that no component is padding.
template <bool kAllComponents, int KP, int DP>
EMIX_HD inline void row_accumulate(const RowParams<KP, DP>& q, int k, const float (&x)[DP], float w,
                                   float (&v)[RowShape<KP, DP>::kPadded], FusedThreadSums& sums) {
  constexpr int kStride = RowShape<KP, DP>::kStride;
  float lg[KP];
  EMIX_ROW_UNROLL
  for (int c = 0; c < KP; ++c) {
    float acc = 0.0f;
    EMIX_ROW_UNROLL
    for (int j = 0; j < DP; ++j) {
      const float t = (x[j] - q.a[c][j]) * q.b[c][j];
      acc += t * t;
    }
    lg[c] = q.cst[c] - 0.5f * acc;
  }
  const float inf = -negative_infinity<float>();
  float max = -inf;
  bool nan = false;
  EMIX_ROW_UNROLL
  for (int c = 0; c < KP; ++c) {
    if (kAllComponents || c < k) {
      nan = nan || lg[c] != lg[c];
      max = lg[c] > max ? lg[c] : max;
    }
  }
  float entropy = 0.0f;
  LogSumExp<float> parts{max, 0.0f};
  if (nan || !(max > -inf) || max == inf) {
    float tmp[KP];
    EMIX_ROW_UNROLL
    for (int c = 0; c < KP; ++c) tmp[c] = lg[c];
    parts = softmax_in_place(tmp, k, 1, w, &entropy);
    EMIX_ROW_UNROLL
    for (int c = 0; c < KP; ++c) lg[c] = kAllComponents || c < k ? tmp[c] : 0.0f;
  } else {
    float sum = 0.0f, shifted = 0.0f;
    EMIX_ROW_UNROLL
    for (int c = 0; c < KP; ++c) {
      const float t = lg[c] - max;
      // Padding components and components of density zero (t = -inf) are negligible terms.
      const bool live = (kAllComponents || c < k) && !(t < log_negligible<float>());
      const float exp_t = row_exp(t);  // computed for every term, then selected: no branches
      const float e = live ? exp_t : 0.0f;
      lg[c] = e;
      sum += e;
      shifted += live ? e * t : 0.0f;
    }
    const float inverse = row_reciprocal(sum);  // sum >= 1: the largest term is exp(0)
    const float scale = w * inverse;
    EMIX_ROW_UNROLL
    for (int c = 0; c < KP; ++c) lg[c] *= scale;
    entropy = log_of(sum) - shifted * inverse;
    parts.sum = sum;
  }
  const double log_prob = static_cast<double>(log_sum_exp_value(parts));
  sums.log_likelihood += weighted_log_prob(static_cast<double>(w), log_prob);
  sums.weight += static_cast<double>(w);
  sums.entropy += weighted_log_prob(static_cast<double>(w), static_cast<double>(entropy));
  EMIX_ROW_UNROLL
  for (int c = 0; c < KP; ++c) {
    const float g = lg[c];
    EMIX_ROW_UNROLL
    for (int j = 0; j < DP; ++j) {
      const float dx = x[j] - q.shift[c][j];
      const float gd = g * dx;
      v[c * kStride + j] += gd;
      v[c * kStride + DP + j] += gd * dx;
    }
    v[c * kStride + 2 * DP] += g;
  }
}

// The flush's butterfly, step with lane offset o over 2 half values: what the lane sends for
// position j < half (the half its partner keeps) and what it keeps. A lane with bit o keeps the
// upper half, so that after the steps o = 16, 8, 4, 2, 1 lane l holds the warp's sums of values
// [l m, l m + m) (row_owned_first).
EMIX_HD inline float row_send(const float* v, int lane, int o, int half, int j) {
  return (lane & o) != 0 ? v[j] : v[j + half];
}
EMIX_HD inline float row_keep(const float* v, int lane, int o, int half, int j) {
  return (lane & o) != 0 ? v[j + half] : v[j];
}
EMIX_HD constexpr int row_owned_first(int lane, int owned) { return lane * owned; }

// The block's end, after each warp's lanes have put their double totals at
// acc[warp kPadded + lane m + i]: thread t adds value t (t + NT, ...) up over the warps in order
// and writes it to its statistic in the slice; padding values are dropped.
template <int KP, int DP>
EMIX_HD inline void row_finish(int tid, int k, int d, const StatisticsLayout& layout,
                               const double* acc, double* slice) {
  using Shape = RowShape<KP, DP>;
  for (int e = tid; e < Shape::kValues; e += kRowThreads) {
    const int c = e / Shape::kStride;
    const int r = e - c * Shape::kStride;
    if (c >= k) continue;
    std::size_t at = 0;
    if (r < DP) {
      if (r >= d) continue;
      at = layout.s_at(c, r);
    } else if (r < 2 * DP) {
      if (r - DP >= d) continue;
      at = layout.q_at(c, r - DP, r - DP);
    } else {
      at = layout.nk() + static_cast<std::size_t>(c);
    }
    double total = 0;
    for (int w = 0; w < kRowWarps; ++w) total += acc[w * Shape::kPadded + e];
    slice[at] = total;
  }
}

}  // namespace emix::gpu
