// Launchers for the E-step kernels (estep_kernels.cu), instantiated for T = float and double.
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

namespace emix::gpu {

// Statistics blocks: block_rows threads (a power of two, 32..256), each thread summing
// kRowsPerThread rows, so one block covers block_rows * kRowsPerThread rows.
constexpr int kMaxBlockRows = 256;
constexpr int kRowsPerThread = 8;

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
// ll[n] = w_n (lse + log_binom(x_n)); wrow[n] = w_n. Padding rows get zeros.
// weights: the chunk's `count` sample weights (device) or null for ones. trials > 1 adds the
// binomial log_binom(x) = sum_d log C(trials, x_d) (x = xc: c0 is zero for those families).
template <typename T>
void launch_estep_rows(const double* lj, std::int64_t ld, int k, std::int64_t count,
                       std::int64_t padded, const double* weights, const T* xc, int d, int trials,
                       double* g, double* ll, double* wrow, cudaStream_t stream);

// Per row n < count, each output optional (null): log_prob[n] = lse + log_binom(x_n),
// resp[n * K + k] (row-major), labels[n] = argmax_k lj[k][n] (lowest k on ties).
template <typename T>
void launch_evaluate_rows(const double* lj, std::int64_t ld, int k, std::int64_t count, const T* xc,
                          int d, int trials, double* log_prob, double* resp, std::int32_t* labels,
                          cudaStream_t stream);

// Partial statistics of each block of block_rows * kRowsPerThread rows, summed in double in a
// fixed order, into part[b * stride + e] with e laid out as StatisticsLayout (loglik, weight sum,
// N_k, S_k, and Q_k's diagonal when diag_q). shift: K x D, c_k - c0.
// When z is not null (full / tied scatter), also writes z = sqrt(g_nk) (x_n - c_k) as one
// column-major block_rows x D matrix per (k, row block of block_rows rows):
//   z[((k * (padded / block_rows) + n / block_rows) * D + d) * block_rows + n % block_rows]
template <typename T>
void launch_stats_partials(const double* g, const double* ll, const double* wrow, const T* xc,
                           std::int64_t ld, const double* shift, int k, int d, std::int64_t padded,
                           int block_rows, bool diag_q, T* z, double* part, std::int64_t stride,
                           cudaStream_t stream);

// Number of statistics blocks for `padded` rows.
inline std::int64_t stats_blocks(std::int64_t padded, int block_rows) {
  const std::int64_t rows = static_cast<std::int64_t>(block_rows) * kRowsPerThread;
  return (padded + rows - 1) / rows;
}

// Diag / spherical (linear = false) and Bernoulli / binomial (linear = true) in one pass over
// the chunk's rows x (count x D, row-major, T): the log-joint as launch_log_joint_direct, then
// as launch_estep_rows, then the partials as launch_stats_partials (same layout and number of
// blocks), without writing anything per row to memory: X is read once. Each block stages tiles
// of block_rows rows in shared memory; the sums run over a block's rows in order.
// weights: the chunk's sample weights (device) or null; c0: D (T); a, b, shift: K x D.
// fused_stats_shared_bytes gives the shared memory it needs, or 0 when the shape does not fit
// (then use the separate kernels).
std::int64_t fused_stats_shared_bytes(int k, int d, bool linear, int block_rows);
template <typename T>
void launch_fused_stats(bool linear, const T* x, std::int64_t count, int d, const T* c0,
                        const double* weights, const double* a, const double* b,
                        const double* shift, const double* log_norm, const double* log_w, int k,
                        int trials, int block_rows, double* part, std::int64_t stride,
                        cudaStream_t stream);

// The full scatter without Z: for each component k and block b of `rows_per` rows (the last one
// cut at `padded`), qp[(k * n_q + b) * D * D + i * D + j] = sum over the block's rows n, in
// order, of g_nk (xc_ni - shift_ki)(xc_nj - shift_kj), summed in double and stored as T, with
// n_q = ceil(padded / rows_per): the layout launch_reduce_partials reads. Square tiles of
// features on or above the diagonal are computed; an off-diagonal tile is written to both
// triangles. scatter_tiled_supported says whether D fits the launch (grid z <= 65535).
bool scatter_tiled_supported(int d);
template <typename T>
void launch_scatter_tiled(const double* g, const T* xc, std::int64_t ld, const double* shift, int k,
                          int d, std::int64_t padded, std::int64_t rows_per, T* qp,
                          cudaStream_t stream);

// Full / tied Gaussian in one pass over the chunk's rows x (count x D, row-major, T), as
// launch_fused_stats: the log-joint through the precision Cholesky factors u (D x D column-major
// per component, one when tied; the layout of the log-density GEMM), log-sum-exp and
// responsibilities, and every statistic including the full scatter Q_k, in double, so that
// part[b * stride + e] holds all stride = layout.size() entries (reduce with qp = null).
// fused_full_shared_bytes gives the shared memory it needs, or 0 when the shape does not fit.
std::int64_t fused_full_shared_bytes(int k, int d, bool tied, int block_rows);
template <typename T>
void launch_fused_full(const T* x, std::int64_t count, int d, const T* c0, const double* weights,
                       const T* u, bool tied, const double* a, const double* shift,
                       const double* log_norm, const double* log_w, int k, int block_rows,
                       double* part, std::int64_t stride, cudaStream_t stream);

// acc[e] += sum over the chunk's partials of element e, in a fixed order, for e < total:
//   e < stride:  part[b * stride + e], b < n_part
//   e >= stride: the full scatter, e - stride = (k * D + i) * D + j, from the K x n_q blocks of
//                D x D matrices qp[(k * n_q + b) * D * D + i * D + j] (T)
template <typename T>
void launch_reduce_partials(const double* part, std::int64_t stride, std::int64_t n_part,
                            const T* qp, std::int64_t n_q, int d, std::int64_t total, double* acc,
                            cudaStream_t stream);

// out[r * D + j] = x[idx[r] * D + j] as double, r < count (idx already checked).
template <typename T>
void launch_gather_rows(const T* x, int d, const std::int64_t* idx, std::int64_t count, double* out,
                        cudaStream_t stream);

}  // namespace emix::gpu
