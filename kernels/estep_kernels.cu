// The E-step kernels (see estep_kernels.hpp for the layouts). Every sum that reaches the
// statistics is taken in double, in an order fixed by the launch configuration alone: a thread's
// rows in order, then a warp's lanes by shuffles, then the warps in order, then the blocks in
// order. No atomics, so results are bitwise the same run after run.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "core/pointwise.hpp"
#include "kernels/cuda_utils.cuh"
#include "kernels/estep_kernels.hpp"

namespace emix::gpu {
namespace {

constexpr int kRowThreads = 256;      // threads per block for the per-row kernels
constexpr int kMaxGridY = 65535;      // components beyond this loop inside the kernels
constexpr int kGroup = 32;            // features reduced per shared-memory round in stats_partials
constexpr int kReduceY = 16;          // partials summed in parallel per output of reduce_partials
constexpr int kScatterThreads = 256;  // threads per block of scatter_tiled
constexpr int kScatterRows = 32;      // rows staged in shared memory per round of scatter_tiled

unsigned grid_for(std::int64_t items, int per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  if (blocks > 0x7fffffffLL) {
    throw InvalidArgument("GPU engine: a chunk of " + std::to_string(items) +
                          " items is too large for one kernel launch");
  }
  return static_cast<unsigned>(std::max<std::int64_t>(blocks, 1));
}

unsigned grid_y(int k) { return static_cast<unsigned>(std::min(std::max(k, 1), kMaxGridY)); }

// Sum over the 32 lanes of a warp; the result is valid in lane 0. The order is fixed.
__device__ inline double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Transposes a 32-row x 32-feature tile through shared memory so that both the row-major reads
// and the column-major writes are coalesced. Block 32 x 8; grid (padded / 32, ceil(D / 32)).
template <typename T>
__global__ void stage_rows_kernel(const T* __restrict__ x, std::int64_t count, std::int64_t padded,
                                  int d, const T* __restrict__ shift, T* __restrict__ xc,
                                  std::int64_t ld) {
  __shared__ T tile[32][33];
  const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.x) * 32;
  const int d0 = static_cast<int>(blockIdx.y) * 32;
  for (int i = threadIdx.y; i < 32; i += 8) {
    const std::int64_t n = n0 + i;
    const int j = d0 + static_cast<int>(threadIdx.x);
    T v = T(0);
    if (n < count && j < d) v = x[n * d + j] - shift[j];
    tile[i][threadIdx.x] = v;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += 8) {
    const int j = d0 + i;
    const std::int64_t n = n0 + threadIdx.x;
    if (n < padded && j < d) xc[j * ld + n] = tile[threadIdx.x][i];
  }
}

// One thread per (row n, component k): k from blockIdx.y (looping past 65535), n from x.
template <typename T>
__global__ void log_joint_gemm_kernel(const T* __restrict__ y, std::int64_t ld, bool per_component,
                                      const double* __restrict__ mean_prec,
                                      const double* __restrict__ log_norm,
                                      const double* __restrict__ log_w, int n_comp, int d,
                                      std::int64_t padded, double* __restrict__ lj) {
  const std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= padded) return;
  for (int k = blockIdx.y; k < n_comp; k += gridDim.y) {
    const T* yk = y + (per_component ? static_cast<std::int64_t>(k) * d : 0) * ld + n;
    const double* mp = mean_prec + static_cast<std::int64_t>(k) * d;
    double sq = 0.0;
    for (int j = 0; j < d; ++j) {
      const double t = static_cast<double>(yk[j * ld]) - mp[j];
      sq += t * t;
    }
    lj[k * ld + n] = (log_norm[k] - 0.5 * sq) + log_w[k];
  }
}

template <typename T, bool kLinear>
__global__ void log_joint_direct_kernel(const T* __restrict__ xc, std::int64_t ld,
                                        const double* __restrict__ a, const double* __restrict__ b,
                                        const double* __restrict__ log_norm,
                                        const double* __restrict__ log_w, int n_comp, int d,
                                        std::int64_t padded, double* __restrict__ lj) {
  const std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= padded) return;
  for (int k = blockIdx.y; k < n_comp; k += gridDim.y) {
    const double* ak = a + static_cast<std::int64_t>(k) * d;
    double acc = 0.0;
    if constexpr (kLinear) {
      for (int j = 0; j < d; ++j) acc += static_cast<double>(xc[j * ld + n]) * ak[j];
      lj[k * ld + n] = (log_norm[k] + acc) + log_w[k];
    } else {
      const double* bk = b + static_cast<std::int64_t>(k) * d;
      for (int j = 0; j < d; ++j) {
        const double t = (static_cast<double>(xc[j * ld + n]) - ak[j]) * bk[j];
        acc += t * t;
      }
      lj[k * ld + n] = (log_norm[k] - 0.5 * acc) + log_w[k];
    }
  }
}

template <typename T>
__device__ inline double row_log_binom(const T* xc, std::int64_t ld, std::int64_t n, int d,
                                       int trials) {
  double s = 0.0;
  if (trials > 1) {
    for (int j = 0; j < d; ++j) {
      s += log_binomial_coefficient(static_cast<double>(trials),
                                    static_cast<double>(xc[j * ld + n]));
    }
  }
  return s;
}

// One thread per row (grid-stride over padded rows).
template <typename T>
__global__ void estep_rows_kernel(const double* __restrict__ lj, std::int64_t ld, int n_comp,
                                  std::int64_t count, std::int64_t padded,
                                  const double* __restrict__ weights, const T* __restrict__ xc,
                                  int d, int trials, double* __restrict__ g,
                                  double* __restrict__ ll, double* __restrict__ wrow) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       n < padded; n += stride) {
    if (n < count) {
      const double w = weights != nullptr ? weights[n] : 1.0;
      const LogSumExp<double> lse = log_sum_exp_parts(lj + n, n_comp, ld);
      ll[n] = weighted_log_prob(w, log_sum_exp_value(lse) + row_log_binom(xc, ld, n, d, trials));
      wrow[n] = w;
      for (int k = 0; k < n_comp; ++k) {
        g[k * ld + n] = w == 0.0 ? 0.0 : w * responsibility(lj[k * ld + n], lse);
      }
    } else {
      ll[n] = 0.0;
      wrow[n] = 0.0;
      for (int k = 0; k < n_comp; ++k) g[k * ld + n] = 0.0;
    }
  }
}

template <typename T>
__global__ void evaluate_rows_kernel(const double* __restrict__ lj, std::int64_t ld, int n_comp,
                                     std::int64_t count, const T* __restrict__ xc, int d,
                                     int trials, double* __restrict__ log_prob,
                                     double* __restrict__ resp, std::int32_t* __restrict__ labels) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; n < count;
       n += stride) {
    const LogSumExp<double> lse = log_sum_exp_parts(lj + n, n_comp, ld);
    if (log_prob != nullptr) {
      log_prob[n] = log_sum_exp_value(lse) + row_log_binom(xc, ld, n, d, trials);
    }
    if (resp != nullptr) {
      for (int k = 0; k < n_comp; ++k) {
        resp[n * n_comp + k] = responsibility(lj[k * ld + n], lse);
      }
    }
    if (labels != nullptr) labels[n] = argmax_strided(lj + n, n_comp, ld);
  }
}

// Block (b, k): rows b * R * kRowsPerThread + r * R + tid for r < kRowsPerThread (R = blockDim.x),
// component k. Writes N_k, S_k (and Q_k's diagonal) of those rows to part[b], plus the
// log-likelihood and weight sums from the k == 0 block. All threads reach every __syncthreads.
template <typename T>
__global__ void __launch_bounds__(kMaxBlockRows)
    stats_partials_kernel(const double* __restrict__ g, const double* __restrict__ ll,
                          const double* __restrict__ wrow, const T* __restrict__ xc,
                          std::int64_t ld, const double* __restrict__ shift, int n_comp, int d,
                          std::int64_t padded, bool diag_q, T* __restrict__ z,
                          double* __restrict__ part, std::int64_t stride) {
  __shared__ double sh[kMaxBlockRows / 32][2 * kGroup];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int n_warps = static_cast<int>(blockDim.x) >> 5;
  const std::int64_t rb = blockDim.x;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * rb * kRowsPerThread + tid;
  const std::int64_t n_qblocks = padded / rb;
  double* out = part + static_cast<std::int64_t>(blockIdx.x) * stride;
  const std::int64_t s_offset = 2 + n_comp;
  const std::int64_t q_offset = s_offset + static_cast<std::int64_t>(n_comp) * d;

  for (int k = blockIdx.y; k < n_comp; k += gridDim.y) {
    const double* gk = g + static_cast<std::int64_t>(k) * ld;
    double nk = 0.0, lls = 0.0, ws = 0.0;
    for (int r = 0; r < kRowsPerThread; ++r) {
      const std::int64_t n = first + r * rb;
      if (n < padded) {
        nk += gk[n];
        if (k == 0) {
          lls += ll[n];
          ws += wrow[n];
        }
      }
    }
    nk = warp_sum(nk);
    lls = warp_sum(lls);
    ws = warp_sum(ws);
    if (lane == 0) {
      sh[warp][0] = nk;
      sh[warp][1] = lls;
      sh[warp][2] = ws;
    }
    __syncthreads();
    if (tid < 3) {
      double t = 0.0;
      for (int w = 0; w < n_warps; ++w) t += sh[w][tid];
      if (tid == 0) {
        out[2 + k] = t;
      } else if (k == 0) {
        out[tid - 1] = t;  // [0] log-likelihood, [1] weight sum
      }
    }
    __syncthreads();

    for (int d0 = 0; d0 < d; d0 += kGroup) {
      const int dn = min(kGroup, d - d0);
      for (int j = 0; j < dn; ++j) {
        const int dj = d0 + j;
        const T* xd = xc + static_cast<std::int64_t>(dj) * ld;
        const double c = shift[static_cast<std::int64_t>(k) * d + dj];
        double s = 0.0, q = 0.0;
        for (int r = 0; r < kRowsPerThread; ++r) {
          const std::int64_t n = first + r * rb;
          if (n < padded) {
            const double gv = gk[n];
            const double diff = static_cast<double>(xd[n]) - c;
            const double gd = gv * diff;
            s += gd;
            q += gd * diff;
            if (z != nullptr) {
              const std::int64_t block = static_cast<std::int64_t>(k) * n_qblocks + n / rb;
              z[(block * d + dj) * rb + n % rb] = static_cast<T>(sqrt(gv) * diff);
            }
          }
        }
        s = warp_sum(s);
        q = warp_sum(q);
        if (lane == 0) {
          sh[warp][j] = s;
          sh[warp][kGroup + j] = q;
        }
      }
      __syncthreads();
      for (int t = tid; t < 2 * kGroup; t += blockDim.x) {
        const bool is_s = t < kGroup;
        const int j = is_s ? t : t - kGroup;
        if (j < dn && (is_s || diag_q)) {
          double v = 0.0;
          for (int w = 0; w < n_warps; ++w) v += sh[w][t];
          out[(is_s ? s_offset : q_offset) + static_cast<std::int64_t>(k) * d + d0 + j] = v;
        }
      }
      __syncthreads();
    }
  }
}

constexpr int kFusedMaxEntries = 8;  // statistics per thread in fused_stats_kernel
constexpr std::int64_t kFusedMaxShared = 48 * 1024;

// Pieces shared by the single-pass kernels (fused_stats_kernel, fused_full_kernel).

// Loads rows [row0, row0 + rows) of x coalesced into s_x (row stride dp) as x - c0 (in T, as
// stage_rows), widened to double; rows of the R-row tile past `rows` are zero.
template <typename T>
__device__ inline void fused_stage_tile(const T* __restrict__ x, std::int64_t row0, int rows, int d,
                                        int dp, const T* __restrict__ c0, double* s_x, int rb,
                                        int tid) {
  const T* xt = x + row0 * d;
  for (int i = tid; i < rb * d; i += rb) {
    const int r = i / d;
    const int j = i - r * d;
    s_x[r * dp + j] = r < rows ? static_cast<double>(static_cast<T>(xt[i] - c0[j])) : 0.0;
  }
}

// gr holds one row's log-joints (K of them); turns them into g = w p(k | x) and records
// w (log p(x) + extra) and w.
__device__ inline void fused_finish_row(double* gr, int n_comp, double w, double extra,
                                        double* ll_r, double* w_r) {
  const LogSumExp<double> lse = log_sum_exp_parts(gr, n_comp, 1);
  *ll_r = weighted_log_prob(w, log_sum_exp_value(lse) + extra);
  *w_r = w;
  for (int k = 0; k < n_comp; ++k) gr[k] = w == 0.0 ? 0.0 : w * responsibility(gr[k], lse);
}

// Adds the tile's rows, in order, to statistic e when it is the log-likelihood, the weight sum,
// an N_k or an S_k entry (e < 2 + K + K*D); returns false for the scatter entries after them.
__device__ inline bool fused_first_moments(int e, int rows, const double* s_ll, const double* s_w,
                                           const double* s_g, int kp, const double* s_x, int dp,
                                           const double* s_shift, int n_comp, int d, double& s) {
  if (e == 0) {
    for (int r = 0; r < rows; ++r) s += s_ll[r];
  } else if (e == 1) {
    for (int r = 0; r < rows; ++r) s += s_w[r];
  } else if (e < 2 + n_comp) {
    const int k = e - 2;
    for (int r = 0; r < rows; ++r) s += s_g[r * kp + k];
  } else if (e < 2 + n_comp + n_comp * d) {
    const int e2 = e - 2 - n_comp;
    const int k = e2 / d;
    const int jj = e2 - k * d;
    const double c = s_shift[e2];
    for (int r = 0; r < rows; ++r) s += s_g[r * kp + k] * (s_x[r * dp + jj] - c);
  } else {
    return false;
  }
  return true;
}

// Each thread's statistics e = tid, tid + R, ... of block b into part[b].
__device__ inline void fused_write_partials(const double (&acc)[kFusedMaxEntries], double* part,
                                            std::int64_t stride, int n_entries, int rb, int tid) {
  double* out = part + static_cast<std::int64_t>(blockIdx.x) * stride;
#pragma unroll
  for (int j = 0; j < kFusedMaxEntries; ++j) {
    const int e = tid + j * rb;
    if (e < n_entries) out[e] = acc[j];
  }
}

// Block of R = blockDim.x threads over kRowsPerThread tiles of R consecutive rows, block b
// starting at row b * R * kRowsPerThread (the partition of stats_partials_kernel). Per tile:
//   1. the tile's rows are loaded coalesced, x - c0 (in T, as stage_rows), widened to double
//   2. thread r: log-joint of row r for every k, log-sum-exp, g = w p(k | x), w log p(x)
//   3. thread t: statistics e = t, t + R, ... (layout of stats_partials) summed over the tile's
//      rows in order into registers
// and finally each thread writes its statistics to part[b]. Shared memory (doubles): a, b, shift
// (K x D), log_norm, log_w (K), then per tile x (R x Dp), g (R x Kp), w log p, w (R), with Dp,
// Kp the row strides made odd against bank conflicts.
template <typename T, bool kLinear>
__global__ void __launch_bounds__(kMaxBlockRows)
    fused_stats_kernel(const T* __restrict__ x, std::int64_t count, int d, const T* __restrict__ c0,
                       const double* __restrict__ weights, const double* __restrict__ a,
                       const double* __restrict__ b, const double* __restrict__ shift,
                       const double* __restrict__ log_norm, const double* __restrict__ log_w,
                       int n_comp, int trials, double* __restrict__ part, std::int64_t stride) {
  extern __shared__ double smem[];
  const int rb = static_cast<int>(blockDim.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int kd = n_comp * d;
  const int dp = d | 1;
  const int kp = n_comp | 1;
  double* s_a = smem;
  double* s_b = s_a + kd;
  double* s_shift = s_b + kd;
  double* s_norm = s_shift + kd;
  double* s_logw = s_norm + n_comp;
  double* s_x = s_logw + n_comp;
  double* s_g = s_x + rb * dp;
  double* s_ll = s_g + rb * kp;
  double* s_w = s_ll + rb;
  for (int i = tid; i < kd; i += rb) {
    s_a[i] = a[i];
    s_b[i] = kLinear ? 0.0 : b[i];
    s_shift[i] = shift[i];
  }
  for (int i = tid; i < n_comp; i += rb) {
    s_norm[i] = log_norm[i];
    s_logw[i] = log_w[i];
  }
  const int n_entries = static_cast<int>(stride);
  double acc[kFusedMaxEntries];
#pragma unroll
  for (int j = 0; j < kFusedMaxEntries; ++j) acc[j] = 0.0;

  const std::int64_t block_first = static_cast<std::int64_t>(blockIdx.x) * rb * kRowsPerThread;
  for (int tile = 0; tile < kRowsPerThread; ++tile) {
    const std::int64_t row0 = block_first + static_cast<std::int64_t>(tile) * rb;
    if (row0 >= count) break;  // uniform across the block
    const int rows = static_cast<int>(min(static_cast<std::int64_t>(rb), count - row0));
    __syncthreads();  // the parameters are loaded; the previous tile has been summed
    fused_stage_tile(x, row0, rows, d, dp, c0, s_x, rb, tid);
    __syncthreads();
    {
      const int r = tid;
      double* gr = s_g + r * kp;
      const double* xr = s_x + r * dp;
      if (r < rows) {
        const double w = weights != nullptr ? weights[row0 + r] : 1.0;
        for (int k = 0; k < n_comp; ++k) {
          const double* ak = s_a + k * d;
          double t = 0.0;
          if constexpr (kLinear) {
            for (int j = 0; j < d; ++j) t += xr[j] * ak[j];
            gr[k] = (s_norm[k] + t) + s_logw[k];
          } else {
            const double* bk = s_b + k * d;
            for (int j = 0; j < d; ++j) {
              const double u = (xr[j] - ak[j]) * bk[j];
              t += u * u;
            }
            gr[k] = (s_norm[k] - 0.5 * t) + s_logw[k];
          }
        }
        double lb = 0.0;
        if (kLinear && trials > 1) {
          for (int j = 0; j < d; ++j) lb += log_binomial_coefficient(trials, xr[j]);
        }
        fused_finish_row(gr, n_comp, w, lb, s_ll + r, s_w + r);
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kFusedMaxEntries; ++j) {
      const int e = tid + j * rb;
      if (e < n_entries) {
        double s = acc[j];
        if (!fused_first_moments(e, rows, s_ll, s_w, s_g, kp, s_x, dp, s_shift, n_comp, d, s)) {
          // Q_k's diagonal: g (x_j - c_kj)^2, as (g (x_j - c_kj)) (x_j - c_kj).
          const int e2 = e - 2 - n_comp - kd;
          const int k = e2 / d;
          const int jj = e2 - k * d;
          const double c = s_shift[e2];
          for (int r = 0; r < rows; ++r) {
            const double diff = s_x[r * dp + jj] - c;
            const double gd = s_g[r * kp + k] * diff;
            s += gd * diff;
          }
        }
        acc[j] = s;
      }
    }
  }
  fused_write_partials(acc, part, stride, n_entries, rb, tid);
}

// Full / tied Gaussian in one pass, for small K and D: as fused_stats_kernel, with the log-joint
// from the precision Cholesky factors (y = (x - c0) U_k, then |y - a_k|^2, in double) and the
// full scatter entries g (x_i - c_ki)(x_j - c_kj) among the statistics, so that part[b] holds
// all layout.size() entries. Shared memory (doubles): U (K_u x D x D, K_u = 1 when tied), a,
// shift (K x D), log_norm, log_w (K), then per tile x (R x Dp), g (R x Kp), w log p, w (R).
template <typename T>
__global__ void __launch_bounds__(kMaxBlockRows)
    fused_full_kernel(const T* __restrict__ x, std::int64_t count, int d, const T* __restrict__ c0,
                      const double* __restrict__ weights, const T* __restrict__ u, bool tied,
                      const double* __restrict__ a, const double* __restrict__ shift,
                      const double* __restrict__ log_norm, const double* __restrict__ log_w,
                      int n_comp, double* __restrict__ part, std::int64_t stride) {
  extern __shared__ double smem[];
  const int rb = static_cast<int>(blockDim.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int kd = n_comp * d;
  const int dd = d * d;
  const int n_u = (tied ? 1 : n_comp) * dd;
  const int dp = d | 1;
  const int kp = n_comp | 1;
  double* s_u = smem;
  double* s_a = s_u + n_u;
  double* s_shift = s_a + kd;
  double* s_norm = s_shift + kd;
  double* s_logw = s_norm + n_comp;
  double* s_x = s_logw + n_comp;
  double* s_g = s_x + rb * dp;
  double* s_ll = s_g + rb * kp;
  double* s_w = s_ll + rb;
  for (int i = tid; i < n_u; i += rb) s_u[i] = static_cast<double>(u[i]);
  for (int i = tid; i < kd; i += rb) {
    s_a[i] = a[i];
    s_shift[i] = shift[i];
  }
  for (int i = tid; i < n_comp; i += rb) {
    s_norm[i] = log_norm[i];
    s_logw[i] = log_w[i];
  }
  const int n_entries = static_cast<int>(stride);
  const int q_first = 2 + n_comp + kd;
  double acc[kFusedMaxEntries];
#pragma unroll
  for (int j = 0; j < kFusedMaxEntries; ++j) acc[j] = 0.0;

  const std::int64_t block_first = static_cast<std::int64_t>(blockIdx.x) * rb * kRowsPerThread;
  for (int tile = 0; tile < kRowsPerThread; ++tile) {
    const std::int64_t row0 = block_first + static_cast<std::int64_t>(tile) * rb;
    if (row0 >= count) break;  // uniform across the block
    const int rows = static_cast<int>(min(static_cast<std::int64_t>(rb), count - row0));
    __syncthreads();  // the parameters are loaded; the previous tile has been summed
    fused_stage_tile(x, row0, rows, d, dp, c0, s_x, rb, tid);
    __syncthreads();
    {
      const int r = tid;
      double* gr = s_g + r * kp;
      const double* xr = s_x + r * dp;
      if (r < rows) {
        const double w = weights != nullptr ? weights[row0 + r] : 1.0;
        for (int k = 0; k < n_comp; ++k) {
          const double* uk = s_u + (tied ? 0 : k * dd);
          const double* ak = s_a + k * d;
          double t = 0.0;
          for (int j = 0; j < d; ++j) {
            const double* ukj = uk + j * d;  // column j of U_k
            double y = 0.0;
            for (int i = 0; i < d; ++i) y += xr[i] * ukj[i];
            const double v = y - ak[j];
            t += v * v;
          }
          gr[k] = (s_norm[k] - 0.5 * t) + s_logw[k];
        }
        fused_finish_row(gr, n_comp, w, 0.0, s_ll + r, s_w + r);
      }
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kFusedMaxEntries; ++j) {
      const int e = tid + j * rb;
      if (e < n_entries) {
        double s = acc[j];
        if (!fused_first_moments(e, rows, s_ll, s_w, s_g, kp, s_x, dp, s_shift, n_comp, d, s)) {
          const int e3 = e - q_first;
          const int k = e3 / dd;
          const int rem = e3 - k * dd;
          const int ii = rem / d;
          const int jj = rem - ii * d;
          const double ci = s_shift[k * d + ii];
          const double cj = s_shift[k * d + jj];
          for (int r = 0; r < rows; ++r) {
            const double* xr = s_x + r * dp;
            s += s_g[r * kp + k] * (xr[ii] - ci) * (xr[jj] - cj);
          }
        }
        acc[j] = s;
      }
    }
  }
  fused_write_partials(acc, part, stride, n_entries, rb, tid);
}

// Block (b, k, t): rows [b * rows_per, min((b + 1) * rows_per, padded)) of component k, feature
// tile pair t = (ti, tj), ti <= tj, numbered row by row. Per round, kScatterRows rows of
// a = g (x_i - c_i) and b = x_j - c_j are staged in shared memory (double) for the tile's
// features; each thread then adds its entries' products over the round's rows in order.
// kTile 32: 4 entries (i, i + 8, i + 16, i + 24) per thread. kTile 8: each entry's rows split
// over kSplit threads by row index modulo kSplit, their sums added in order at the end.
template <typename T, int kTile>
__global__ void __launch_bounds__(kScatterThreads)
    scatter_tiled_kernel(const double* __restrict__ g, const T* __restrict__ xc, std::int64_t ld,
                         const double* __restrict__ shift, int n_comp, int d, std::int64_t padded,
                         std::int64_t rows_per, int n_tiles, T* __restrict__ qp) {
  constexpr int kEntries = kTile * kTile;
  constexpr int kPer = kEntries >= kScatterThreads ? kEntries / kScatterThreads : 1;
  constexpr int kSplit = kEntries >= kScatterThreads ? 1 : kScatterThreads / kEntries;
  constexpr int kIStep = kScatterThreads / kTile;
  __shared__ double sa[kScatterRows][kTile + 1];
  __shared__ double sb[kScatterRows][kTile + 1];
  __shared__ double red[kSplit > 1 ? kScatterThreads : 1];
  const int tid = static_cast<int>(threadIdx.x);
  int t = static_cast<int>(blockIdx.z), ti = 0;
  while (t >= n_tiles - ti) {
    t -= n_tiles - ti;
    ++ti;
  }
  const int tj = ti + t;
  const int i0 = ti * kTile, j0 = tj * kTile;
  const int jx = tid % kTile;
  const int rest = tid / kTile;
  const int iy = kSplit > 1 ? rest % kTile : rest;
  const int group = kSplit > 1 ? rest / kTile : 0;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * rows_per;
  const std::int64_t row_end = row0 + rows_per < padded ? row0 + rows_per : padded;
  const std::int64_t n_q = (padded + rows_per - 1) / rows_per;
  const std::int64_t dd = static_cast<std::int64_t>(d) * d;

  for (int k = blockIdx.y; k < n_comp; k += gridDim.y) {
    const double* gk = g + static_cast<std::int64_t>(k) * ld;
    const double* ck = shift + static_cast<std::int64_t>(k) * d;
    double acc[kPer];
    for (int m = 0; m < kPer; ++m) acc[m] = 0.0;
    for (std::int64_t r0 = row0; r0 < row_end; r0 += kScatterRows) {
      __syncthreads();  // the previous round's (or component's) reads of sa / sb are done
      for (int e = tid; e < kScatterRows * kTile; e += kScatterThreads) {
        const int r = e % kScatterRows;
        const int f = e / kScatterRows;
        const std::int64_t n = r0 + r;
        double a = 0.0, b = 0.0;
        if (n < row_end) {
          if (i0 + f < d) {
            a = gk[n] *
                (static_cast<double>(xc[static_cast<std::int64_t>(i0 + f) * ld + n]) - ck[i0 + f]);
          }
          if (j0 + f < d) {
            b = static_cast<double>(xc[static_cast<std::int64_t>(j0 + f) * ld + n]) - ck[j0 + f];
          }
        }
        sa[r][f] = a;
        sb[r][f] = b;
      }
      __syncthreads();
      for (int r = group; r < kScatterRows; r += kSplit) {
        const double bv = sb[r][jx];
        for (int m = 0; m < kPer; ++m) acc[m] += sa[r][iy + m * kIStep] * bv;
      }
    }
    if constexpr (kSplit > 1) {
      red[tid] = acc[0];
      __syncthreads();
      if (group == 0) {
        double v = 0.0;
        for (int s = 0; s < kSplit; ++s) v += red[(s * kTile + iy) * kTile + jx];
        acc[0] = v;
      }
      __syncthreads();  // red is reused by the next component
    }
    if (group == 0) {
      T* out = qp + (static_cast<std::int64_t>(k) * n_q + blockIdx.x) * dd;
      const int j = j0 + jx;
      for (int m = 0; m < kPer; ++m) {
        const int i = i0 + iy + m * kIStep;
        if (i < d && j < d) {
          const T v = static_cast<T>(acc[m]);
          out[static_cast<std::int64_t>(i) * d + j] = v;
          if (ti != tj) out[static_cast<std::int64_t>(j) * d + i] = v;
        }
      }
    }
  }
}

// Block 32 x kReduceY: threadIdx.x picks the output element (coalesced reads across a row of
// partials), threadIdx.y strides over the partials; the kReduceY sums are added in order.
template <typename T>
__global__ void reduce_partials_kernel(const double* __restrict__ part, std::int64_t stride,
                                       std::int64_t n_part, const T* __restrict__ qp,
                                       std::int64_t n_q, int d, std::int64_t total,
                                       double* __restrict__ acc) {
  __shared__ double sh[kReduceY][33];
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * 32 + threadIdx.x;
  double s = 0.0;
  if (e < total) {
    if (e < stride) {
      for (std::int64_t b = threadIdx.y; b < n_part; b += kReduceY) s += part[b * stride + e];
    } else {
      const std::int64_t dd = static_cast<std::int64_t>(d) * d;
      const std::int64_t e2 = e - stride;
      const std::int64_t k = e2 / dd;
      const T* base = qp + k * n_q * dd + (e2 - k * dd);
      for (std::int64_t b = threadIdx.y; b < n_q; b += kReduceY) {
        s += static_cast<double>(base[b * dd]);
      }
    }
  }
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && e < total) {
    double t = sh[0][threadIdx.x];
    for (int y = 1; y < kReduceY; ++y) t += sh[y][threadIdx.x];
    acc[e] += t;
  }
}

template <typename T>
__global__ void gather_rows_kernel(const T* __restrict__ x, int d,
                                   const std::int64_t* __restrict__ idx, std::int64_t count,
                                   double* __restrict__ out) {
  const std::int64_t total = count * d;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const std::int64_t r = i / d;
    out[i] = static_cast<double>(x[idx[r] * d + (i - r * d)]);
  }
}

}  // namespace

template <typename T>
void launch_stage_rows(const T* x, std::int64_t count, std::int64_t padded, int d, const T* shift,
                       T* xc, std::int64_t ld, cudaStream_t stream) {
  const dim3 block(32, 8);
  const dim3 grid(grid_for(padded, 32), grid_for(d, 32));
  stage_rows_kernel<T><<<grid, block, 0, stream>>>(x, count, padded, d, shift, xc, ld);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_log_joint_gemm(const T* y, std::int64_t ld, bool per_component, const double* mean_prec,
                           const double* log_norm, const double* log_w, int k, int d,
                           std::int64_t padded, double* lj, cudaStream_t stream) {
  const dim3 grid(grid_for(padded, kRowThreads), grid_y(k));
  log_joint_gemm_kernel<T><<<grid, kRowThreads, 0, stream>>>(y, ld, per_component, mean_prec,
                                                             log_norm, log_w, k, d, padded, lj);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_log_joint_direct(bool linear, const T* xc, std::int64_t ld, const double* a,
                             const double* b, const double* log_norm, const double* log_w, int k,
                             int d, std::int64_t padded, double* lj, cudaStream_t stream) {
  const dim3 grid(grid_for(padded, kRowThreads), grid_y(k));
  if (linear) {
    log_joint_direct_kernel<T, true>
        <<<grid, kRowThreads, 0, stream>>>(xc, ld, a, b, log_norm, log_w, k, d, padded, lj);
  } else {
    log_joint_direct_kernel<T, false>
        <<<grid, kRowThreads, 0, stream>>>(xc, ld, a, b, log_norm, log_w, k, d, padded, lj);
  }
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_estep_rows(const double* lj, std::int64_t ld, int k, std::int64_t count,
                       std::int64_t padded, const double* weights, const T* xc, int d, int trials,
                       double* g, double* ll, double* wrow, cudaStream_t stream) {
  estep_rows_kernel<T><<<grid_for(padded, kRowThreads), kRowThreads, 0, stream>>>(
      lj, ld, k, count, padded, weights, xc, d, trials, g, ll, wrow);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_evaluate_rows(const double* lj, std::int64_t ld, int k, std::int64_t count, const T* xc,
                          int d, int trials, double* log_prob, double* resp, std::int32_t* labels,
                          cudaStream_t stream) {
  evaluate_rows_kernel<T><<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(
      lj, ld, k, count, xc, d, trials, log_prob, resp, labels);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_stats_partials(const double* g, const double* ll, const double* wrow, const T* xc,
                           std::int64_t ld, const double* shift, int k, int d, std::int64_t padded,
                           int block_rows, bool diag_q, T* z, double* part, std::int64_t stride,
                           cudaStream_t stream) {
  if (block_rows < 32 || block_rows > kMaxBlockRows || (block_rows & (block_rows - 1)) != 0 ||
      padded % block_rows != 0) {
    throw InvalidArgument("GPU engine: statistics block of " + std::to_string(block_rows) +
                          " rows does not tile " + std::to_string(padded) + " rows");
  }
  const dim3 grid(grid_for(stats_blocks(padded, block_rows), 1), grid_y(k));
  stats_partials_kernel<T><<<grid, block_rows, 0, stream>>>(g, ll, wrow, xc, ld, shift, k, d,
                                                            padded, diag_q, z, part, stride);
  EMIX_CHECK_LAUNCH(stream);
}

std::int64_t fused_stats_shared_bytes(int k, int d, bool linear, int block_rows) {
  const std::int64_t kd = static_cast<std::int64_t>(k) * d;
  const std::int64_t entries = 2 + k + kd + (linear ? 0 : kd);
  const std::int64_t bytes =
      8 * (3 * kd + 2 * k + static_cast<std::int64_t>(block_rows) * ((d | 1) + (k | 1) + 2));
  if (entries > static_cast<std::int64_t>(kFusedMaxEntries) * block_rows ||
      bytes > kFusedMaxShared) {
    return 0;
  }
  return bytes;
}

template <typename T>
void launch_fused_stats(bool linear, const T* x, std::int64_t count, int d, const T* c0,
                        const double* weights, const double* a, const double* b,
                        const double* shift, const double* log_norm, const double* log_w, int k,
                        int trials, int block_rows, double* part, std::int64_t stride,
                        cudaStream_t stream) {
  const std::int64_t shared = fused_stats_shared_bytes(k, d, linear, block_rows);
  const std::int64_t expected = 2 + k + static_cast<std::int64_t>(k) * d * (linear ? 1 : 2);
  if (shared == 0 || stride != expected || block_rows < 32 || block_rows > kMaxBlockRows) {
    throw InvalidArgument(
        "GPU engine: the fused statistics kernel cannot take K = " + std::to_string(k) +
        ", D = " + std::to_string(d) + " in blocks of " + std::to_string(block_rows) + " rows");
  }
  const unsigned grid = grid_for(stats_blocks(count, block_rows), 1);
  const std::size_t bytes = static_cast<std::size_t>(shared);
  if (linear) {
    fused_stats_kernel<T, true><<<grid, block_rows, bytes, stream>>>(
        x, count, d, c0, weights, a, b, shift, log_norm, log_w, k, trials, part, stride);
  } else {
    fused_stats_kernel<T, false><<<grid, block_rows, bytes, stream>>>(
        x, count, d, c0, weights, a, b, shift, log_norm, log_w, k, trials, part, stride);
  }
  EMIX_CHECK_LAUNCH(stream);
}

std::int64_t fused_full_shared_bytes(int k, int d, bool tied, int block_rows) {
  const std::int64_t kd = static_cast<std::int64_t>(k) * d;
  const std::int64_t dd = static_cast<std::int64_t>(d) * d;
  const std::int64_t entries = 2 + k + kd + k * dd;
  const std::int64_t bytes = 8 * ((tied ? 1 : k) * dd + 2 * kd + 2 * k +
                                  static_cast<std::int64_t>(block_rows) * ((d | 1) + (k | 1) + 2));
  if (entries > static_cast<std::int64_t>(kFusedMaxEntries) * block_rows ||
      bytes > kFusedMaxShared) {
    return 0;
  }
  return bytes;
}

template <typename T>
void launch_fused_full(const T* x, std::int64_t count, int d, const T* c0, const double* weights,
                       const T* u, bool tied, const double* a, const double* shift,
                       const double* log_norm, const double* log_w, int k, int block_rows,
                       double* part, std::int64_t stride, cudaStream_t stream) {
  const std::int64_t shared = fused_full_shared_bytes(k, d, tied, block_rows);
  const std::int64_t expected = 2 + k + static_cast<std::int64_t>(k) * d * (1 + d);
  if (shared == 0 || stride != expected || block_rows < 32 || block_rows > kMaxBlockRows) {
    throw InvalidArgument(
        "GPU engine: the fused full-covariance kernel cannot take K = " + std::to_string(k) +
        ", D = " + std::to_string(d) + " in blocks of " + std::to_string(block_rows) + " rows");
  }
  const unsigned grid = grid_for(stats_blocks(count, block_rows), 1);
  fused_full_kernel<T><<<grid, block_rows, static_cast<std::size_t>(shared), stream>>>(
      x, count, d, c0, weights, u, tied, a, shift, log_norm, log_w, k, part, stride);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_reduce_partials(const double* part, std::int64_t stride, std::int64_t n_part,
                            const T* qp, std::int64_t n_q, int d, std::int64_t total, double* acc,
                            cudaStream_t stream) {
  const dim3 block(32, kReduceY);
  reduce_partials_kernel<T>
      <<<grid_for(total, 32), block, 0, stream>>>(part, stride, n_part, qp, n_q, d, total, acc);
  EMIX_CHECK_LAUNCH(stream);
}

namespace {
int scatter_tile(int d) { return d <= 8 ? 8 : (d <= 16 ? 16 : 32); }
std::int64_t scatter_tile_pairs(int d) {
  const std::int64_t tiles = (d + scatter_tile(d) - 1) / scatter_tile(d);
  return tiles * (tiles + 1) / 2;
}
}  // namespace

bool scatter_tiled_supported(int d) { return d >= 1 && scatter_tile_pairs(d) <= kMaxGridY; }

template <typename T>
void launch_scatter_tiled(const double* g, const T* xc, std::int64_t ld, const double* shift, int k,
                          int d, std::int64_t padded, std::int64_t rows_per, T* qp,
                          cudaStream_t stream) {
  if (!scatter_tiled_supported(d) || rows_per < 1) {
    throw InvalidArgument(
        "GPU engine: the tiled scatter kernel cannot take D = " + std::to_string(d) +
        " in blocks of " + std::to_string(rows_per) + " rows");
  }
  const int tile = scatter_tile(d);
  const int n_tiles = (d + tile - 1) / tile;
  const dim3 grid(grid_for(padded, static_cast<int>(std::min<std::int64_t>(rows_per, INT_MAX))),
                  grid_y(k), static_cast<unsigned>(scatter_tile_pairs(d)));
  if (tile == 8) {
    scatter_tiled_kernel<T, 8><<<grid, kScatterThreads, 0, stream>>>(g, xc, ld, shift, k, d, padded,
                                                                     rows_per, n_tiles, qp);
  } else if (tile == 16) {
    scatter_tiled_kernel<T, 16><<<grid, kScatterThreads, 0, stream>>>(
        g, xc, ld, shift, k, d, padded, rows_per, n_tiles, qp);
  } else {
    scatter_tiled_kernel<T, 32><<<grid, kScatterThreads, 0, stream>>>(
        g, xc, ld, shift, k, d, padded, rows_per, n_tiles, qp);
  }
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_gather_rows(const T* x, int d, const std::int64_t* idx, std::int64_t count, double* out,
                        cudaStream_t stream) {
  const std::int64_t total = count * d;
  const unsigned grid = std::min<unsigned>(grid_for(total, kRowThreads), 65535u);
  gather_rows_kernel<T><<<grid, kRowThreads, 0, stream>>>(x, d, idx, count, out);
  EMIX_CHECK_LAUNCH(stream);
}

#define EMIX_INSTANTIATE(T)                                                                        \
  template void launch_stage_rows<T>(const T*, std::int64_t, std::int64_t, int, const T*, T*,      \
                                     std::int64_t, cudaStream_t);                                  \
  template void launch_log_joint_gemm<T>(const T*, std::int64_t, bool, const double*,              \
                                         const double*, const double*, int, int, std::int64_t,     \
                                         double*, cudaStream_t);                                   \
  template void launch_log_joint_direct<T>(bool, const T*, std::int64_t, const double*,            \
                                           const double*, const double*, const double*, int, int,  \
                                           std::int64_t, double*, cudaStream_t);                   \
  template void launch_estep_rows<T>(const double*, std::int64_t, int, std::int64_t, std::int64_t, \
                                     const double*, const T*, int, int, double*, double*, double*, \
                                     cudaStream_t);                                                \
  template void launch_evaluate_rows<T>(const double*, std::int64_t, int, std::int64_t, const T*,  \
                                        int, int, double*, double*, std::int32_t*, cudaStream_t);  \
  template void launch_stats_partials<T>(const double*, const double*, const double*, const T*,    \
                                         std::int64_t, const double*, int, int, std::int64_t, int, \
                                         bool, T*, double*, std::int64_t, cudaStream_t);           \
  template void launch_reduce_partials<T>(const double*, std::int64_t, std::int64_t, const T*,     \
                                          std::int64_t, int, std::int64_t, double*, cudaStream_t); \
  template void launch_scatter_tiled<T>(const double*, const T*, std::int64_t, const double*, int, \
                                        int, std::int64_t, std::int64_t, T*, cudaStream_t);        \
  template void launch_fused_full<T>(                                                              \
      const T*, std::int64_t, int, const T*, const double*, const T*, bool, const double*,         \
      const double*, const double*, const double*, int, int, double*, std::int64_t, cudaStream_t); \
  template void launch_gather_rows<T>(const T*, int, const std::int64_t*, std::int64_t, double*,   \
                                      cudaStream_t);                                               \
  template void launch_fused_stats<T>(bool, const T*, std::int64_t, int, const T*, const double*,  \
                                      const double*, const double*, const double*, const double*,  \
                                      const double*, int, int, int, double*, std::int64_t,         \
                                      cudaStream_t);

EMIX_INSTANTIATE(float)
EMIX_INSTANTIATE(double)
#undef EMIX_INSTANTIATE

}  // namespace emix::gpu
