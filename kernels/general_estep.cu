// The general path's E-step kernels (see general_estep.hpp for the layouts). Every sum that reaches
// the statistics is taken in double, in an order fixed by the launch configuration alone: a
// thread's rows in order, then a warp's lanes by shuffles, then the warps in order, then the blocks
// in order. No atomics, so results are bitwise the same run after run.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "core/pointwise.hpp"
#include "core/statistics.hpp"
#include "kernels/cuda_utils.cuh"
#include "kernels/general_estep.hpp"

namespace emix::gpu {
namespace {

constexpr int kRowThreads = 256;  // threads per block for the per-row kernels
constexpr int kMaxGridY = 65535;  // components beyond this loop inside the kernels
constexpr int kGroup = 32;        // features reduced per shared-memory round in stats_partials
constexpr int kReduceY = 16;      // partials summed in parallel per output of reduce_partials

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
                                  double* __restrict__ ll, double* __restrict__ wrow,
                                  double* __restrict__ hrow) {
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
      // The binomial term is the same for every k: it cancels from the responsibilities.
      hrow[n] = weighted_log_prob(w, responsibility_entropy(lj + n, n_comp, ld, lse));
    } else {
      ll[n] = 0.0;
      wrow[n] = 0.0;
      hrow[n] = 0.0;
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

// Block (b, k): rows b * R * kGeneralRowsPerThread + r * R + tid for r < kGeneralRowsPerThread (R =
// blockDim.x), component k. Writes N_k, S_k (and Q_k's diagonal) of those rows to part[b], at
// their places in `layout`, plus the log-likelihood, weight and entropy sums from the k == 0
// block.
// All threads reach every __syncthreads.
template <typename T>
__global__ void __launch_bounds__(kGeneralMaxBlockRows)
    stats_partials_kernel(const double* __restrict__ g, const double* __restrict__ ll,
                          const double* __restrict__ wrow, const double* __restrict__ hrow,
                          const T* __restrict__ xc, std::int64_t ld,
                          const double* __restrict__ shift, const StatisticsLayout layout,
                          std::int64_t padded, T* __restrict__ z, double z_scale,
                          double* __restrict__ part, std::int64_t stride) {
  const int n_comp = layout.k;
  const int d = layout.d;
  const bool diag_q = layout.has_scatter && !layout.full_scatter;
  __shared__ double sh[kGeneralMaxBlockRows / 32][2 * kGroup];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int n_warps = static_cast<int>(blockDim.x) >> 5;
  const std::int64_t rb = blockDim.x;
  const std::int64_t first =
      static_cast<std::int64_t>(blockIdx.x) * rb * kGeneralRowsPerThread + tid;
  const std::int64_t n_qblocks = padded / rb;
  double* out = part + static_cast<std::int64_t>(blockIdx.x) * stride;

  for (int k = blockIdx.y; k < n_comp; k += gridDim.y) {
    const double* gk = g + static_cast<std::int64_t>(k) * ld;
    double nk = 0.0, lls = 0.0, ws = 0.0, hs = 0.0;
    for (int r = 0; r < kGeneralRowsPerThread; ++r) {
      const std::int64_t n = first + r * rb;
      if (n < padded) {
        nk += gk[n];
        if (k == 0) {
          lls += ll[n];
          ws += wrow[n];
          hs += hrow[n];
        }
      }
    }
    nk = warp_sum(nk);
    lls = warp_sum(lls);
    ws = warp_sum(ws);
    hs = warp_sum(hs);
    if (lane == 0) {
      sh[warp][0] = nk;
      sh[warp][1] = lls;
      sh[warp][2] = ws;
      sh[warp][3] = hs;
    }
    __syncthreads();
    if (tid < 4) {
      double t = 0.0;
      for (int w = 0; w < n_warps; ++w) t += sh[w][tid];
      if (tid == 0) {
        out[layout.nk() + k] = t;
      } else if (k == 0) {
        out[tid == 1   ? StatisticsLayout::kLogLikelihood
            : tid == 2 ? StatisticsLayout::kWeightSum
                       : StatisticsLayout::kEntropy] = t;
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
        for (int r = 0; r < kGeneralRowsPerThread; ++r) {
          const std::int64_t n = first + r * rb;
          if (n < padded) {
            const double gv = gk[n];
            const double diff = static_cast<double>(xd[n]) - c;
            const double gd = gv * diff;
            s += gd;
            q += gd * diff;
            if (z != nullptr) {
              const std::int64_t block = static_cast<std::int64_t>(k) * n_qblocks + n / rb;
              z[(block * d + dj) * rb + n % rb] = static_cast<T>(sqrt(gv) * diff * z_scale);
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
          out[is_s ? layout.s_at(k, d0 + j) : layout.q_at(k, d0 + j, d0 + j)] = v;
        }
      }
      __syncthreads();
    }
  }
}

// Block 32 x kReduceY: threadIdx.x picks the output element (coalesced reads across a row of
// partials), threadIdx.y strides over the partials; the kReduceY sums are added in order.
template <typename T>
__global__ void reduce_partials_kernel(const double* __restrict__ part, std::int64_t stride,
                                       std::int64_t n_part, const T* __restrict__ qp,
                                       std::int64_t n_q, int d, std::int64_t total, double q_scale,
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
      s *= q_scale;
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
                       double* g, double* ll, double* wrow, double* hrow, cudaStream_t stream) {
  estep_rows_kernel<T><<<grid_for(padded, kRowThreads), kRowThreads, 0, stream>>>(
      lj, ld, k, count, padded, weights, xc, d, trials, g, ll, wrow, hrow);
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
void launch_stats_partials(const double* g, const double* ll, const double* wrow,
                           const double* hrow, const T* xc, std::int64_t ld, const double* shift,
                           const StatisticsLayout& layout, std::int64_t padded, int block_rows,
                           T* z, double z_scale, double* part, std::int64_t stride,
                           cudaStream_t stream) {
  if (block_rows < 32 || block_rows > kGeneralMaxBlockRows ||
      (block_rows & (block_rows - 1)) != 0 || padded % block_rows != 0) {
    throw InvalidArgument("GPU engine: statistics block of " + std::to_string(block_rows) +
                          " rows does not tile " + std::to_string(padded) + " rows");
  }
  const dim3 grid(grid_for(stats_blocks(padded, block_rows), 1), grid_y(layout.k));
  stats_partials_kernel<T><<<grid, block_rows, 0, stream>>>(
      g, ll, wrow, hrow, xc, ld, shift, layout, padded, z, z_scale, part, stride);
  EMIX_CHECK_LAUNCH(stream);
}

template <typename T>
void launch_reduce_partials(const double* part, std::int64_t stride, std::int64_t n_part,
                            const T* qp, std::int64_t n_q, int d, std::int64_t total,
                            double q_scale, double* acc, cudaStream_t stream) {
  const dim3 block(32, kReduceY);
  reduce_partials_kernel<T><<<grid_for(total, 32), block, 0, stream>>>(part, stride, n_part, qp,
                                                                       n_q, d, total, q_scale, acc);
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
                                     double*, cudaStream_t);                                       \
  template void launch_evaluate_rows<T>(const double*, std::int64_t, int, std::int64_t, const T*,  \
                                        int, int, double*, double*, std::int32_t*, cudaStream_t);  \
  template void launch_stats_partials<T>(const double*, const double*, const double*,              \
                                         const double*, const T*, std::int64_t, const double*,     \
                                         const StatisticsLayout&, std::int64_t, int, T*, double,   \
                                         double*, std::int64_t, cudaStream_t);                     \
  template void launch_reduce_partials<T>(const double*, std::int64_t, std::int64_t, const T*,     \
                                          std::int64_t, int, std::int64_t, double, double*,        \
                                          cudaStream_t);                                           \
  template void launch_gather_rows<T>(const T*, int, const std::int64_t*, std::int64_t, double*,   \
                                      cudaStream_t);

EMIX_INSTANTIATE(float)
EMIX_INSTANTIATE(double)
#undef EMIX_INSTANTIATE

}  // namespace emix::gpu
