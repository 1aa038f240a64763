// Launchers for the general path's E-step kernels (general_estep.cu): one kernel per step, for
// shapes the single-pass kernel (fused_estep.cuh) cannot take, or when a test asks for them.
// Launchers, instantiated for T = float and double.
// Only kernels/ includes this header. Every launcher enqueues on `stream` and checks the launch.
//
// One chunk of `count` rows is processed in a padded column-major layout: row n of the chunk is
// element n of each column, columns are `ld` apart, and rows count..padded-1 are padding whose
// weight is zero. `padded` is a multiple of the statistics block size (block_rows).
//
//   xc  D columns    (T)       x_n - c0, with c0 a shift common to all components (the data's
//                              element type, so that the GEMMs below see small numbers)
//   lj  K columns    (double)  log w_k + log p(x_n | k), without the binomial log C(m, x) term
//   g   K columns    (double)  g_nk = w_n p(k | x_n)
//   ll, wrow         (double)  w_n log p(x_n), w_n
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/statistics.hpp"
#include "kernels/engine_plan.hpp"

namespace emix::gpu {

// xc[d * ld + n] = x[n * D + d] - shift[d] for n < count, 0 for count <= n < padded.
// x: count x D row-major (device); shift: D (device).
template <typename T>
void launch_stage_rows(const T* x, std::int64_t count, std::int64_t padded, int d, const T* shift,
                       T* xc, std::int64_t ld, cudaStream_t stream);

// Gaussian full / tied, from y = xc U (y: `ld`-strided columns, K*D of them for full, D for tied):
//   lj[k][n] = (log_norm_k - 0.5 * sum_j (y[k][j][n] - mean_prec_kj)^2) + log_w_k
template <typename T>
void launch_log_joint_gemm(const T* y, std::int64_t ld, bool per_component, const double* mean_prec,
                           const double* log_norm, const double* log_w, int k, int d,
                           std::int64_t padded, double* lj, cudaStream_t stream);

// Gaussian diag / spherical (linear = false), with a = mean - c0 and b = the precision's
// Cholesky diagonal (K x D each):
//   lj[k][n] = (log_norm_k - 0.5 * sum_d ((xc[d][n] - a_kd) * b_kd)^2) + log_w_k
// Bernoulli / binomial (linear = true), a = logit:
//   lj[k][n] = (log_norm_k + sum_d xc[d][n] * a_kd) + log_w_k
template <typename T>
void launch_log_joint_direct(bool linear, const T* xc, std::int64_t ld, const double* a,
                             const double* b, const double* log_norm, const double* log_w, int k,
                             int d, std::int64_t padded, double* lj, cudaStream_t stream);

// Per row: lse = log sum_k exp(lj[k][n]); g[k][n] = w_n exp(lj[k][n] - lse);
// ll[n] = w_n (lse + log_binom(x_n)); wrow[n] = w_n; hrow[n] = w_n H_n, H_n = -sum_k p_k log p_k.
// Padding rows get zeros.
// weights: the chunk's `count` sample weights (device) or null for ones. trials > 1 adds the
// binomial log_binom(x) = sum_d log C(trials, x_d) (x = xc: c0 is zero for those families).
template <typename T>
void launch_estep_rows(const double* lj, std::int64_t ld, int k, std::int64_t count,
                       std::int64_t padded, const double* weights, const T* xc, int d, int trials,
                       double* g, double* ll, double* wrow, double* hrow, cudaStream_t stream);

// Per row n < count, each output optional (null): log_prob[n] = lse + log_binom(x_n),
// resp[n * K + k] (row-major), labels[n] = argmax_k lj[k][n] (lowest k on ties).
template <typename T>
void launch_evaluate_rows(const double* lj, std::int64_t ld, int k, std::int64_t count, const T* xc,
                          int d, int trials, double* log_prob, double* resp, std::int32_t* labels,
                          cudaStream_t stream);

// Partial statistics of each block of block_rows * kGeneralRowsPerThread rows, summed in double in
// a fixed order, into part[b * stride + e] at their places in `layout` (the log-likelihood, the
// weight sum, the entropy, N_k, S_k, and diag / spherical Q_k; stride: layout.q(), or
// layout.size() without a full scatter). shift: K x D, c_k - c0.
// When z is not null (full / tied scatter), also writes z = sqrt(g_nk) (x_n - c_k) z_scale as
// one column-major block_rows x D matrix per (k, row block of block_rows rows):
//   z[((k * (padded / block_rows) + n / block_rows) * D + d) * block_rows + n % block_rows]
// z_scale, a power of two, keeps z^2 within T's range where the weights g_nk are not
// (scatter_exponent).
template <typename T>
void launch_stats_partials(const double* g, const double* ll, const double* wrow,
                           const double* hrow, const T* xc, std::int64_t ld, const double* shift,
                           const StatisticsLayout& layout, std::int64_t padded, int block_rows,
                           T* z, double z_scale, double* part, std::int64_t stride,
                           cudaStream_t stream);

// Number of statistics blocks for `padded` rows.
inline std::int64_t stats_blocks(std::int64_t padded, int block_rows) {
  const std::int64_t rows = static_cast<std::int64_t>(block_rows) * kGeneralRowsPerThread;
  return (padded + rows - 1) / rows;
}

// acc[e] += sum over the chunk's partials of element e, in a fixed order, for e < total:
//   e < stride:  part[b * stride + e], b < n_part
//   e >= stride: the full scatter, e - stride = (k * D + i) * D + j, from the K x n_q blocks of
//                D x D matrices qp[(k * n_q + b) * D * D + i * D + j] (T), times q_scale
//                (1 / z_scale^2 of launch_stats_partials)
template <typename T>
void launch_reduce_partials(const double* part, std::int64_t stride, std::int64_t n_part,
                            const T* qp, std::int64_t n_q, int d, std::int64_t total,
                            double q_scale, double* acc, cudaStream_t stream);

// out[r * D + j] = x[idx[r] * D + j] as double, r < count (idx already checked).
template <typename T>
void launch_gather_rows(const T* x, int d, const std::int64_t* idx, std::int64_t count, double* out,
                        cudaStream_t stream);

}  // namespace emix::gpu
