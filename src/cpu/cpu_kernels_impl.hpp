// The CPU engine's per-tile work: log-densities as one GEMM, the per-row rules of
// core/pointwise.hpp, and the statistics as a second GEMM (see cpu_engine.cpp for the maths).
//
// Included once by each cpu_kernels_<level>.cpp, which first defines
//   Eigen                       a name of its own for Eigen's namespace (emix_eigen_v3, ...), so
//                               that Eigen's templates compiled for this level never merge with
//                               another level's copies at link time (same name, other code);
//   EMIX_CPU_KERNELS_NAMESPACE  the level's namespace under emix::cpu (v3, ...);
//   EMIX_CPU_KERNELS_LEVEL      its IsaLevel enumerator.
// Everything here is in an anonymous namespace or one of those, and the code avoids standard
// containers, whose out-of-line members the linker would share between levels.
#ifndef EMIX_CPU_KERNELS_NAMESPACE
#error "define EMIX_CPU_KERNELS_NAMESPACE and EMIX_CPU_KERNELS_LEVEL before including this file"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <math.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/host_device.hpp"
#include "core/interrupt.hpp"
#include "core/unroll.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/fp_environment.hpp"

// The per-row rules, in this level's namespace for the same reason as Eigen: an out-of-line copy
// of emix::log_sum_exp_parts<double> compiled for AVX-512 must not be the one a baseline caller
// links to. (pointwise.hpp's own includes come first, above, so that only its declarations land
// in here.)
namespace emix::cpu::EMIX_CPU_KERNELS_NAMESPACE::level_rules {
#include "core/pointwise.hpp"
}  // namespace emix::cpu::EMIX_CPU_KERNELS_NAMESPACE::level_rules

namespace emix::cpu::EMIX_CPU_KERNELS_NAMESPACE {
namespace {

using level_rules::emix::argmax_strided;
using level_rules::emix::log_binomial_coefficient;
using level_rules::emix::log_negligible;
using level_rules::emix::log_sum_exp_parts;
using level_rules::emix::log_sum_exp_value;
using level_rules::emix::LogSumExp;
using level_rules::emix::responsibility;
using level_rules::emix::weighted_log_prob;

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
using IndexVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

// A direct tied tile's pooled scatter (plan_pooled_scatter, direct_full_statistics).
template <typename T>
struct PooledScatter {
  bool pooled = false;
  Vector<T> inverse_weight;                // B: 1 / G, G = sum_k g_k (0 where G = 0)
  Matrix<double> pair_sums;                // K x K: B_jk = sum_n g_j g_k / G for j < k
  std::vector<std::pair<int, int>> pairs;  // (j, k), j < k, with B_jk != 0, after the tile's rows
  std::vector<T> pair_weights;             // their B_jk in T
};

// One thread's work space for one plan's tiles, kept from tile to tile and from slot to slot of
// one kernel call (each tile resizes what it uses).
template <typename T>
struct Scratch {
  Matrix<T> f;                // B x features (a group leader's, or evaluate's)
  Matrix<T> resp;             // B x K: log-densities, then responsibilities, then weighted
  Vector<T> max;              // B: the row's largest log-density
  Vector<T> sum;              // B: sum_k exp(v_k - max)
  Vector<T> lse;              // B: log p(x_n), less row_offset
  Vector<double> row_offset;  // B: what the log-densities took out of each row (a float plan's
                              // less_row_largest; tied, expanded: the shared part), or empty
  Matrix<double> raw_sums;    // B x K: a float plan's log-densities in double (raw_bias)
  Vector<T> diff;             // B: v_k - max of one column
  Vector<T> shifted;          // B: sum_k exp(v_k - max) (v_k - max), for the entropy
  Vector<T> entropy;          // B: -sum_k p(k | x) log p(k | x)
  Vector<T> weight;           // B: sample weights in T
  Matrix<T> t;                // K x features
  RowMatrix<T> resp_rows;     // B x K rounded up to whole vectors: s.resp by rows, zero-padded
  RowMatrix<T> w_rows;        // D x K rounded up to whole vectors: w^T by rows (raw_by_rows)
  RowVector<T> bias_rows;     // the bias, rounded up likewise
  Vector<T> centred;          // direct full / tied: the rows a component owns less its centre,
                              // in panels of columns, each row-major
  Vector<T> projected;        // owned rows x D, column-major: those rows times their weights g
  Matrix<T> shared;           // B x 1: tied, expanded: the quadratic part every component shares
  Matrix<T> row_weights;      // B x 1: tied, expanded: G = sum_k g_k
  Matrix<T> last_rows;        // lanes x D: the rows past the last whole vector, zero-padded
  Vector<double> last_norms;  // lanes: their quadratic forms
  Matrix<double> norms;       // B x K: direct full / tied, |y|^2 (DirectNorms)
  Matrix<T> projection;       // whole vectors of B x D: direct tied, y = U^T (x - m) per row
  Matrix<T> last_projection;  // lanes x D: y of last_rows
  Matrix<double> last_distances;                   // lanes x K: their |y - z_k|^2
  IndexVector owned;                               // rows with g != 0 (direct full / tied)
  std::vector<std::pair<int, int>> scatter_tasks;  // (panel, first row a) (direct full / tied)
  PooledScatter<T> pooled;                         // direct tied
  RowMatrix<T> by_rows;      // B x D: the rows, row-major (direct diag / spherical)
  RowVector<T> first;        // D: one component's sum g (x - c) (direct diag / spherical)
  RowVector<T> second;       // D: its sum g (x - c)^2
  IndexVector special_rows;  // rows whose log-densities are not all finite
  Matrix<T> special_resp;    // their responsibilities (row by row), from the scalar rules
  Vector<T> special_lse;
  Vector<T> special_entropy;
};

// sum_d log C(m, x_d), each term log_binomial_coefficient's: from the table the engine builds up
// to 2^20 trials, or computed here beyond (one trial count never takes both).
template <typename T>
double log_binomial(const T* x, int d, int trials, const double* log_choose) {
  double sum = 0;
  if (log_choose != nullptr) {
    for (int j = 0; j < d; ++j) sum += log_choose[static_cast<std::int64_t>(x[j])];
    return sum;
  }
  for (int j = 0; j < d; ++j) {
    sum += log_binomial_coefficient(static_cast<double>(trials), static_cast<double>(x[j]));
  }
  return sum;
}

// The vector registers of this level, in bytes (each level's translation unit has its -march).
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// The products below beat Eigen's GEMM only where they run as fused multiply-adds (v3, v4):
// at x86-64 and x86-64-v2 a multiply and an add each took 1.25x Eigen's time (full D = 16 float64).
#if defined(__FMA__)
constexpr bool kOwnProducts = true;
#else
constexpr bool kOwnProducts = false;
#endif
// a * b + c as one instruction, said where it matters rather than left to the compiler's
// default (GCC's for C++ is to contract, even with -std=c++17; clang's is not to across
// statements: #pragma clang fp contract inside the body).
#if defined(__clang__)
#define EMIX_CONTRACT_FMA
#else
#define EMIX_CONTRACT_FMA __attribute__((optimize("fp-contract=fast")))
#endif

template <typename T>
struct VectorOf {
  typedef T type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));
// Direct full / tied: |y|^2 = sum_j y_j^2 is summed in double, a vector of T's lanes (two
// registers for float), and log w_k + log-normaliser_k - |y|^2 / 2 taken in double. In float,
// y_j rounds by about eps times its terms; |y|^2 summed in float over D of them, and the
// log-densities held in float at their size of hundreds, rounded more: a row's log p(x) at
// D = 256 (K = 8, 2 10^4 rows) came within 1.5e-4 of double's, and within 2e-5 with these sums in
// double (direct_log_densities).
template <typename T>
struct DirectNorms {
  typedef double type __attribute__((vector_size(kLanes<T> * sizeof(double))));
};
// Direct diag / spherical models of at most this many features take their rows column by
// column (direct_log_densities, direct_diag_statistics).
constexpr int kFewDirectDiagFeatures = 8;
// Accumulators per register block: eight vectors, as many as every level holds with room.
constexpr int kBlock = 8;
static_assert(kBlock == kTrianglePanel,
              "triangular_rows takes U's panels kBlock columns at a time");

// body(std::integral_constant<int, W>{}) for W = min(width, kMax) (width >= 1): a block's width
// as a compile-time constant, so that its sums stay in registers; widths 1..kMax only are
// instantiated.
template <int kMax, typename Body>
void with_width_up_to(Eigen::Index width, Body&& body) {
  if constexpr (kMax > 1) {
    if (width < kMax) {
      with_width_up_to<kMax - 1>(width, body);
      return;
    }
  }
  body(std::integral_constant<int, kMax>{});
}

// Columns [c0, c0 + kCols) of out = f w + bias (column-major, leading dimension `rows`) for the
// whole vectors of rows from `begin`, kRowVectors vectors of rows at a time, rows in the vector
// lanes: each F value is loaded once per kCols components and no operand is copied. Every entry is
// bias + sum_j f_ij w_jc, its terms added in order j = 0..P-1 by fused multiply-adds, however the
// blocks fall. Returns the first row it did not write.
template <int kCols, int kRowVectors, typename T>
EMIX_CONTRACT_FMA Eigen::Index weights_block(const T* f, Eigen::Index rows, Eigen::Index begin,
                                             Eigen::Index p, const T* w, Eigen::Index w_stride,
                                             const T* bias, Eigen::Index c0, T* out) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  constexpr Eigen::Index kStep = static_cast<Eigen::Index>(kRowVectors) * kLanes<T>;
  Eigen::Index i = begin;
  for (; i + kStep <= rows; i += kStep) {
    V acc[kRowVectors][kCols];
    EMIX_UNROLL
    for (int r = 0; r < kRowVectors; ++r) {
      EMIX_UNROLL
      for (int c = 0; c < kCols; ++c) acc[r][c] = V{} + bias[c0 + c];
    }
    for (Eigen::Index j = 0; j < p; ++j) {
      V x[kRowVectors];
      EMIX_UNROLL
      for (int r = 0; r < kRowVectors; ++r) {
        std::memcpy(&x[r], f + j * rows + i + r * kLanes<T>, sizeof(V));
      }
      const T* wj = w + j;
      EMIX_UNROLL
      for (int c = 0; c < kCols; ++c) {
        const T wc = wj[(c0 + c) * w_stride];
        EMIX_UNROLL
        for (int r = 0; r < kRowVectors; ++r) acc[r][c] += x[r] * wc;
      }
    }
    EMIX_UNROLL
    for (int r = 0; r < kRowVectors; ++r) {
      EMIX_UNROLL
      for (int c = 0; c < kCols; ++c) {
        std::memcpy(out + (c0 + c) * rows + i + r * kLanes<T>, &acc[r][c], sizeof(V));
      }
    }
  }
  return i;
}

// Columns [c0, c0 + kCols), whole vectors of rows: several vectors of rows at a time when there
// are few columns, so that eight sums are in flight (a fused multiply-add's latency over its
// throughput), then the vectors left one at a time.
template <int kCols, typename T>
Eigen::Index weights_columns(const T* f, Eigen::Index rows, Eigen::Index p, const T* w,
                             Eigen::Index w_stride, const T* bias, Eigen::Index c0, T* out) {
  constexpr int kRowVectors = kCols >= kBlock ? 1 : kBlock / kCols;
  Eigen::Index i = weights_block<kCols, kRowVectors>(f, rows, 0, p, w, w_stride, bias, c0, out);
  if constexpr (kRowVectors > 1) {
    i = weights_block<kCols, 1>(f, rows, i, p, w, w_stride, bias, c0, out);
  }
  return i;
}

// out (rows x K, column-major) = f (rows x P, column-major, leading dimension rows) w (P x K,
// column-major, leading dimension w_stride) + bias, eight components at a time and the rest in one
// narrower block. Eigen's GEMM packs F first, which on these tall, thin products (K of 16, P of
// 152) took a quarter of the E-step, and for K below eight (all through Eigen before) made K = 2
// cost two thirds of K = 16. Rows past the last whole vector (the data's last tile) go through
// Eigen.
template <typename T>
void features_times_weights(const T* f, Eigen::Index rows, Eigen::Index p, const T* w,
                            Eigen::Index w_stride, const T* bias, int k, Matrix<T>& out) {
  out.resize(rows, k);
  Eigen::Index full_rows = 0;
  if constexpr (kOwnProducts) {
    for (int c0 = 0; c0 < k; c0 += kBlock) {
      with_width_up_to<kBlock>(k - c0, [&](auto cols) {
        full_rows =
            weights_columns<decltype(cols)::value>(f, rows, p, w, w_stride, bias, c0, out.data());
      });
    }
  }
  if (full_rows < rows) {
    const Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> features(f, rows, p,
                                                                        Eigen::OuterStride<>(rows));
    const Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> weights(
        w, p, k, Eigen::OuterStride<>(w_stride));
    out.bottomRows(rows - full_rows).noalias() = features.bottomRows(rows - full_rows) * weights;
    out.bottomRows(rows - full_rows).rowwise() += Eigen::Map<const RowVector<T>>(bias, k);
  }
}

template <typename T>
void features_times_weights(const Matrix<T>& f, const T* w, const T* bias, int k, Matrix<T>& out) {
  features_times_weights(f.data(), f.rows(), f.cols(), w, f.cols(), bias, k, out);
}

// Features [j0, j0 + kFeatures) of t = g^T f for components [c0, min(c0 + lanes, in_lanes)), in the
// vector lanes: g_rows holds g by rows of whole vectors (zero-padded), each F value is broadcast
// from where it lies, and every sum runs over the rows in order.
template <int kFeatures, typename T>
EMIX_CONTRACT_FMA void components_block(const T* g_rows, Eigen::Index padded_k,
                                        Eigen::Index in_lanes, const T* f, Eigen::Index rows,
                                        Eigen::Index c0, Eigen::Index j0, Matrix<T>& t) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V acc[kFeatures];
  EMIX_UNROLL
  for (int j = 0; j < kFeatures; ++j) acc[j] = V{};
  const T* f0 = f + j0 * rows;
  for (Eigen::Index i = 0; i < rows; ++i) {
    V gi;
    std::memcpy(&gi, g_rows + i * padded_k + c0, sizeof gi);
    EMIX_UNROLL
    for (int j = 0; j < kFeatures; ++j) acc[j] += gi * f0[j * rows + i];
  }
  const Eigen::Index lanes_used = std::min<Eigen::Index>(kLanes<T>, in_lanes - c0);
  T out[kLanes<T>];
  EMIX_UNROLL
  for (int j = 0; j < kFeatures; ++j) {
    std::memcpy(out, &acc[j], sizeof out);
    for (Eigen::Index c = 0; c < lanes_used; ++c) t(c0 + c, j0 + j) = out[c];
  }
}

// Components [c0, c0 + kCols) and features [j0, j0 + kFeatures) of t = g^T f with rows in the
// vector lanes, for K too small to fill the lanes: each sum is a vector of partial sums (rows i
// = lane mod lanes, in order), whose lanes are then added in order, then the rows past the last
// whole vector.
template <int kCols, int kFeatures, typename T>
EMIX_CONTRACT_FMA void rows_block(const T* g, const T* f, Eigen::Index rows, Eigen::Index c0,
                                  Eigen::Index j0, Matrix<T>& t) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  const Eigen::Index full_rows = rows / kLanes<T> * kLanes<T>;
  V acc[kCols][kFeatures];
  EMIX_UNROLL
  for (int c = 0; c < kCols; ++c) {
    EMIX_UNROLL
    for (int j = 0; j < kFeatures; ++j) acc[c][j] = V{};
  }
  for (Eigen::Index i = 0; i < full_rows; i += kLanes<T>) {
    V gi[kCols];
    EMIX_UNROLL
    for (int c = 0; c < kCols; ++c) std::memcpy(&gi[c], g + (c0 + c) * rows + i, sizeof(V));
    EMIX_UNROLL
    for (int j = 0; j < kFeatures; ++j) {
      V fj;
      std::memcpy(&fj, f + (j0 + j) * rows + i, sizeof fj);
      EMIX_UNROLL
      for (int c = 0; c < kCols; ++c) acc[c][j] += gi[c] * fj;
    }
  }
  T lanes[kLanes<T>];
  EMIX_UNROLL
  for (int c = 0; c < kCols; ++c) {
    EMIX_UNROLL
    for (int j = 0; j < kFeatures; ++j) {
      std::memcpy(lanes, &acc[c][j], sizeof lanes);
      T sum = lanes[0];
      for (int l = 1; l < kLanes<T>; ++l) sum += lanes[l];
      const T* gc = g + (c0 + c) * rows;
      const T* fj = f + (j0 + j) * rows;
      for (Eigen::Index i = full_rows; i < rows; ++i) sum += gc[i] * fj[i];
      t(c0 + c, j0 + j) = sum;
    }
  }
}

// Components [c0, c0 + kCols) of t, rows in the lanes: 8 / kCols features at a time (eight sums
// in flight), then the features left in one narrower block.
template <int kCols, typename T>
void rows_components(const T* g, const T* f, Eigen::Index rows, Eigen::Index p, Eigen::Index c0,
                     Matrix<T>& t) {
  constexpr int kFeatures = kBlock / kCols;
  const Eigen::Index full_p = p / kFeatures * kFeatures;
  for (Eigen::Index j0 = 0; j0 < full_p; j0 += kFeatures) {
    rows_block<kCols, kFeatures>(g, f, rows, c0, j0, t);
  }
  if (full_p == p) return;
  with_width_up_to<kBlock>(p - full_p, [&](auto features) {
    rows_block<kCols, decltype(features)::value>(g, f, rows, c0, full_p, t);
  });
}

// t (K x P, column-major) = g^T f, g the rows' weighted responsibilities (rows x K,
// column-major) and f their features (rows x P, column-major). Components in the lanes
// (components_block, eight features at a time) by whole vectors of components, and for a last
// block of half a vector or more; a last block of fewer (all of K = 1..3 in float64 AVX-512), rows
// in the lanes (rows_block, components four at a time), rather than a vector mostly padding: K = 9
// had cost twice K = 8. Without fused multiply-adds, Eigen.
// (f: p columns of g.rows() rows, column-major.)
template <typename T>
void responsibilities_times_features(const Matrix<T>& g, const T* f, Eigen::Index p,
                                     RowMatrix<T>& g_rows, Matrix<T>& t) {
  const Eigen::Index rows = g.rows(), k = g.cols();
  t.resize(k, p);
  if constexpr (!kOwnProducts) {
    t.noalias() = g.transpose() * Eigen::Map<const Matrix<T>>(f, rows, p);
    return;
  }
  Eigen::Index in_lanes = k / kLanes<T> * kLanes<T>;
  if (2 * (k - in_lanes) >= kLanes<T>) in_lanes = k;
  if (in_lanes > 0) {
    const Eigen::Index padded_k = (in_lanes + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
    const Eigen::Index full_p = p / kBlock * kBlock;
    g_rows.setZero(rows, padded_k);
    g_rows.leftCols(in_lanes) = g.leftCols(in_lanes);
    for (Eigen::Index c0 = 0; c0 < in_lanes; c0 += kLanes<T>) {
      for (Eigen::Index j0 = 0; j0 < full_p; j0 += kBlock) {
        components_block<kBlock>(g_rows.data(), padded_k, in_lanes, f, rows, c0, j0, t);
      }
      if (full_p == p) continue;
      with_width_up_to<kBlock>(p - full_p, [&](auto features) {
        components_block<decltype(features)::value>(g_rows.data(), padded_k, in_lanes, f, rows, c0,
                                                    full_p, t);
      });
    }
  }
  for (Eigen::Index c0 = in_lanes; c0 < k; c0 += 4) {
    with_width_up_to<4>(k - c0, [&](auto cols) {
      rows_components<decltype(cols)::value>(g.data(), f, rows, p, c0, t);
    });
  }
}

template <typename T>
void responsibilities_times_features(const Matrix<T>& g, const Matrix<T>& f, RowMatrix<T>& g_rows,
                                     Matrix<T>& t) {
  responsibilities_times_features(g, f.data(), f.cols(), g_rows, t);
}

// Tied, expanded: the sums of the linear features per component, and of the quadratic ones
// pooled over the components into component 0's (the others' stay 0), added to the slot's t
// (K x features, column-major). Tied's M-step reads only sum_k Q_k, and sum_k g_k = G per row:
// D (D + 1) / 2 products a row for the quadratic features instead of K times that.
template <typename T>
void pooled_quadratic_statistics(const Matrix<T>& f, int d, Scratch<T>& s, double* t_out) {
  const Eigen::Index rows = f.rows(), p = f.cols(), k = s.resp.cols();
  responsibilities_times_features(s.resp, f.data(), d, s.resp_rows, s.t);
  for (Eigen::Index j = 0; j < d; ++j) {
    for (Eigen::Index c = 0; c < k; ++c) t_out[c + k * j] += static_cast<double>(s.t(c, j));
  }
  s.row_weights = s.resp.rowwise().sum();
  responsibilities_times_features(s.row_weights, f.data() + d * rows, p - d, s.resp_rows, s.t);
  for (Eigen::Index j = 0; j < p - d; ++j) t_out[k * (d + j)] += static_cast<double>(s.t(0, j));
}

// Bernoulli and binomial rows read where they lie, row-major, with the components in the vector
// lanes (raw_log_densities, raw_statistics): no feature matrix. The column-major copy of the rows
// that the products above read took a fifth of a pass at D = 2000, K = 50, and those products
// held eight sums where a row-major block holds 24 (bench/results/cpu-discrete-by-rows-*.md).
// Where K fills half a vector or more: below that most lanes would be padding, and rows in the
// lanes serve better. In float, past one vector of components, the rows' sums by rows ran at
// 0.8-0.9x the column-major path (2e5 x 100, K = 20-40, AVX-512). A float plan whose bias must
// be added in double (TilePlan::raw_bias) is read this way at any K: only this path adds it.
template <typename T>
constexpr int kRawByRowsFromK = kOwnProducts ? (kLanes<T> + 1) / 2 : 0;
template <typename T>
constexpr int kRawByRowsUpToK = std::is_same_v<T, float> ? kLanes<T>
                                                         : std::numeric_limits<int>::max();
template <typename T>
bool raw_by_rows(const TilePlan<T>& plan) {
  return kOwnProducts && plan.kind == FeatureKind::kRaw &&
         ((plan.k >= kRawByRowsFromK<T> && plan.k <= kRawByRowsUpToK<T>) ||
          plan.raw_bias != nullptr);
}

// Sums a register block may hold: 24 of the 32 vector registers of AVX-512, 12 of AVX2's 16, the
// rest for the operands.
constexpr int kAccumulators = kVectorBytes == 64 ? 24 : 12;
// Component vectors per register block, and features per block of raw_log_densities: a block of
// w (kRawFeatures x K) stays in L1 or L2 while every row of the tile passes it.
constexpr int kRawVectors = kVectorBytes == 64 ? 4 : 3;
constexpr Eigen::Index kRawFeatures = 128;

// Rows [i, i + kRows) of out (row-major, `width` apart) += their features [j0, j1) times w's
// rows [j0, j1) (row-major, `width` apart), component vectors [v0, v0 + kVectors): each entry's
// terms added in order j by fused multiply-adds onto what out holds, so that a row's log-density
// is bias + sum_j x_j w_j in order whatever the blocks, and depends on that row alone.
template <int kRows, int kVectors, typename T>
EMIX_CONTRACT_FMA void raw_weights_block(const T* x, Eigen::Index d, Eigen::Index j0,
                                         Eigen::Index j1, const T* w, Eigen::Index width,
                                         Eigen::Index v0, T* out) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V acc[kRows][kVectors];
  EMIX_UNROLL
  for (int r = 0; r < kRows; ++r) {
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(&acc[r][v], out + r * width + (v0 + v) * kLanes<T>, sizeof(V));
    }
  }
  for (Eigen::Index j = j0; j < j1; ++j) {
    V wj[kVectors];
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(&wj[v], w + j * width + (v0 + v) * kLanes<T>, sizeof(V));
    }
    EMIX_UNROLL
    for (int r = 0; r < kRows; ++r) {
      const T xr = x[r * d + j];
      EMIX_UNROLL
      for (int v = 0; v < kVectors; ++v) acc[r][v] += wj[v] * xr;
    }
  }
  EMIX_UNROLL
  for (int r = 0; r < kRows; ++r) {
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(out + r * width + (v0 + v) * kLanes<T>, &acc[r][v], sizeof(V));
    }
  }
}

// w^T and the bias by rows, K rounded up to whole vectors with zeros: once per scratch.
template <typename T>
void weights_by_rows(const TilePlan<T>& plan, Scratch<T>& s) {
  if (s.w_rows.rows() == plan.d) return;
  const Eigen::Index k = plan.k;
  const Eigen::Index width = (k + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
  s.w_rows.setZero(plan.d, width);
  s.w_rows.leftCols(k) = Eigen::Map<const Matrix<T>>(plan.w, plan.d, k);
  s.bias_rows.setZero(width);
  s.bias_rows.head(k) = Eigen::Map<const RowVector<T>>(plan.bias, k);
}

// The log-densities in s.raw_sums (double), less the row's largest (s.row_offset), into the top
// `rows` rows of s.resp. A row whose largest is not finite keeps its v (core/pointwise.hpp's rules
// then apply).
template <typename T>
void less_row_largest(Eigen::Index rows, Scratch<T>& s) {
  s.row_offset = s.raw_sums.rowwise().maxCoeff();
  for (Eigen::Index i = 0; i < rows; ++i) {
    if (!std::isfinite(s.row_offset[i])) s.row_offset[i] = 0;
  }
  s.resp.topRows(rows) = (s.raw_sums.colwise() - s.row_offset).template cast<T>();
}

// A float plan's log-densities v = raw_bias + (the float sums of x w in s.resp_rows), in double,
// less the row's largest (s.row_offset, added back to log p(x) in double), into s.resp. The bias
// (m sum_d log(1 - p_kd) + log w_k, -700 at D = 1000 with p about 1/2) in float would round
// every sum it starts by 4e-5 a term, and v itself, rounded to float, by 6e-8 |v|; v less its
// row's largest rounds by at most 6e-8 x 104 where a responsibility is not negligible.
template <typename T>
void sums_plus_bias_in_double(const TilePlan<T>& plan, Eigen::Index rows, Scratch<T>& s) {
  const int k = plan.k;
  s.raw_sums = s.resp_rows.leftCols(k).template cast<double>();
  s.raw_sums.rowwise() += Eigen::Map<const RowVector<double>>(plan.raw_bias, k);
  less_row_largest(rows, s);
}

// s.resp (rows x K, then `padded` rows, the last row's copies) = x w + bias, x the tile's rows
// (row-major): kRawFeatures features at a time, each block of w passing every row. A float plan
// with raw_bias sums x w alone in float (sums_plus_bias_in_double).
template <typename T>
void raw_log_densities(const TilePlan<T>& plan, const T* x, Eigen::Index rows, Eigen::Index padded,
                       Scratch<T>& s) {
  weights_by_rows(plan, s);
  const Eigen::Index d = plan.d, width = s.w_rows.cols(), vectors = width / kLanes<T>;
  s.resp_rows.resize(rows, width);
  if (plan.raw_bias != nullptr) {
    s.resp_rows.setZero();
  } else {
    s.resp_rows.rowwise() = s.bias_rows;
  }
  for (Eigen::Index j0 = 0; j0 < d; j0 += kRawFeatures) {
    const Eigen::Index j1 = std::min(d, j0 + kRawFeatures);
    for (Eigen::Index v0 = 0; v0 < vectors; v0 += kRawVectors) {
      with_width_up_to<kRawVectors>(vectors - v0, [&](auto block) {
        constexpr int kVectors = decltype(block)::value;
        constexpr int kRows = std::min(kBlock, kAccumulators / kVectors);
        Eigen::Index i = 0;
        for (; i + kRows <= rows; i += kRows) {
          raw_weights_block<kRows, kVectors>(x + i * d, d, j0, j1, s.w_rows.data(), width, v0,
                                             s.resp_rows.data() + i * width);
        }
        if (i == rows) return;
        with_width_up_to<kRows>(rows - i, [&](auto last_rows) {
          raw_weights_block<decltype(last_rows)::value, kVectors>(
              x + i * d, d, j0, j1, s.w_rows.data(), width, v0, s.resp_rows.data() + i * width);
        });
      });
    }
  }
  s.resp.resize(padded, plan.k);
  if (plan.raw_bias != nullptr) {
    sums_plus_bias_in_double(plan, rows, s);
  } else {
    s.resp.topRows(rows) = s.resp_rows.leftCols(plan.k);
  }
  if (padded > rows) {
    s.resp.bottomRows(padded - rows).rowwise() = s.resp.row(rows - 1);
    if (s.row_offset.size() > 0) {
      s.row_offset.conservativeResize(padded);
      s.row_offset.tail(padded - rows).setConstant(s.row_offset[rows - 1]);
    }
  }
}

// t (K x D, column-major) += g^T x over the rows, g by rows (`width` apart, zero-padded), for
// features [j0, j0 + kFeatures) and component vectors [v0, v0 + kVectors): each sum runs over the
// rows in order, and only the K real components are written.
template <int kFeatures, int kVectors, typename T>
EMIX_CONTRACT_FMA void raw_statistics_block(const T* g, Eigen::Index width, const T* x,
                                            Eigen::Index rows, Eigen::Index d, Eigen::Index j0,
                                            Eigen::Index v0, Eigen::Index k, T* t) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V acc[kFeatures][kVectors];
  EMIX_UNROLL
  for (int f = 0; f < kFeatures; ++f) {
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) acc[f][v] = V{};
  }
  for (Eigen::Index i = 0; i < rows; ++i) {
    V gi[kVectors];
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(&gi[v], g + i * width + (v0 + v) * kLanes<T>, sizeof(V));
    }
    const T* xi = x + i * d + j0;
    EMIX_UNROLL
    for (int f = 0; f < kFeatures; ++f) {
      const T xf = xi[f];
      EMIX_UNROLL
      for (int v = 0; v < kVectors; ++v) acc[f][v] += gi[v] * xf;
    }
  }
  T lanes[kLanes<T>];
  EMIX_UNROLL
  for (int f = 0; f < kFeatures; ++f) {
    T* column = t + (j0 + f) * k;
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      std::memcpy(lanes, &acc[f][v], sizeof lanes);
      const Eigen::Index c0 = (v0 + v) * kLanes<T>;
      const Eigen::Index used = std::min<Eigen::Index>(kLanes<T>, k - c0);
      for (Eigen::Index c = 0; c < used; ++c) column[c0 + c] += lanes[c];
    }
  }
}

// t (K x D, column-major) += g^T x, g = s.resp (rows x K, the weighted responsibilities) and x
// the tile's rows (row-major).
template <typename T>
void raw_statistics(const TilePlan<T>& plan, const T* x, Eigen::Index rows, Scratch<T>& s, T* t) {
  const Eigen::Index d = plan.d, k = plan.k;
  const Eigen::Index width = (k + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
  const Eigen::Index vectors = width / kLanes<T>;
  s.resp_rows.resize(rows, width);
  s.resp_rows.leftCols(k) = s.resp.topRows(rows);
  s.resp_rows.rightCols(width - k).setZero();
  for (Eigen::Index v0 = 0; v0 < vectors; v0 += kRawVectors) {
    with_width_up_to<kRawVectors>(vectors - v0, [&](auto block) {
      constexpr int kVectors = decltype(block)::value;
      constexpr int kFeatures = std::min(kBlock, kAccumulators / kVectors);
      Eigen::Index j0 = 0;
      for (; j0 + kFeatures <= d; j0 += kFeatures) {
        raw_statistics_block<kFeatures, kVectors>(s.resp_rows.data(), width, x, rows, d, j0, v0, k,
                                                  t);
      }
      if (j0 == d) return;
      with_width_up_to<kFeatures>(d - j0, [&](auto features) {
        raw_statistics_block<decltype(features)::value, kVectors>(s.resp_rows.data(), width, x,
                                                                  rows, d, j0, v0, k, t);
      });
    });
  }
}

// A tile's rows between row-major order (each row d apart) and column-major order (each column
// `rows` apart). A whole column of the tile at a time, the row-major side touches one line in
// each of 64 or more rows, and where rows are 1 KiB or more apart those lines share few L1 sets
// and evict one another (at 4 KiB, D = 512 in double, all share one): the copy was 70 % of a
// diag fit's time at D = 512, which ran 4 times slower than at D = 500. Such wide rows are
// copied kTransposeRows rows at a time; narrower ones a whole column at a time, which was 3-7 %
// faster at D = 16 (bench/results/cpu-transpose-2026-12-07.md).
constexpr Eigen::Index kTransposeRows = 8;

template <typename S>
Eigen::Index transpose_block_rows(Eigen::Index rows, Eigen::Index d) {
  return d * static_cast<Eigen::Index>(sizeof(S)) >= 1024 ? kTransposeRows : rows;
}

// out (column-major) = x - shift (row-major; no shift: the values as they are, converted to T).
template <typename T, typename S>
void rows_to_columns(const S* x, Eigen::Index rows, Eigen::Index d, const T* shift, T* out) {
  const Eigen::Index block = transpose_block_rows<S>(rows, d);
  for (Eigen::Index r0 = 0; r0 < rows; r0 += block) {
    const Eigen::Index r1 = std::min(rows, r0 + block);
    for (Eigen::Index j = 0; j < d; ++j) {
      T* column = out + j * rows;
      if (shift != nullptr) {
        for (Eigen::Index r = r0; r < r1; ++r) column[r] = static_cast<T>(x[r * d + j]) - shift[j];
      } else {
        for (Eigen::Index r = r0; r < r1; ++r) column[r] = static_cast<T>(x[r * d + j]);
      }
    }
  }
}

// out (row-major, rows x d) = x (column-major).
template <typename T>
void columns_to_rows(const T* x, Eigen::Index rows, Eigen::Index d, T* out) {
  const Eigen::Index block = transpose_block_rows<T>(rows, d);
  for (Eigen::Index r0 = 0; r0 < rows; r0 += block) {
    const Eigen::Index r1 = std::min(rows, r0 + block);
    for (Eigen::Index j = 0; j < d; ++j) {
      const T* column = x + j * rows;
      for (Eigen::Index r = r0; r < r1; ++r) out[r * d + j] = column[r];
    }
  }
}

// The feature matrix F (rows x P) of rows [begin, begin + rows), from the plan's kind and shift.
template <typename T>
void build_features(const TilePlan<T>& plan, std::int64_t begin, std::int64_t rows, Matrix<T>& f) {
  const int d = plan.d;
  const bool as_they_are = reads_rows_as_they_are(plan.kind);
  f.resize(rows, as_they_are ? d : plan.features);
  const T* shift = as_they_are ? nullptr : plan.shift;
  if (plan.x_float != nullptr) {
    rows_to_columns(plan.x_float + begin * d, rows, d, shift, f.data());
  } else {
    rows_to_columns(plan.x + begin * d, rows, d, shift, f.data());
  }
  if (as_they_are) return;
  if (plan.kind == FeatureKind::kPairs) {
    Eigen::Index j = d;
    for (int a = 0; a < d; ++a) {
      for (int b = a; b < d; ++b) f.col(j++) = f.col(a).cwiseProduct(f.col(b));
    }
  } else {
    f.rightCols(d) = f.leftCols(d).array().square();
  }
}

// Plans whose tiles have the same feature matrix: the same rows, kind, tile size and shift (the
// engine's, fixed by the data, so every model of a covariance type over the same data), and
// both read by rows or both not (raw_by_rows, which depends on K and, in float, on raw_bias).
template <typename T>
bool same_features(const TilePlan<T>& a, const TilePlan<T>& b) {
  if (a.x != b.x || a.x_float != b.x_float || a.n != b.n || a.d != b.d || a.kind != b.kind ||
      a.features != b.features || a.block_rows != b.block_rows ||
      raw_by_rows(a) != raw_by_rows(b)) {
    return false;
  }
  return reads_rows_as_they_are(a.kind) ||
         std::memcmp(a.shift, b.shift, sizeof(T) * static_cast<std::size_t>(a.d)) == 0;
}

// Direct full / tied: q_i += sum_{j in [j0, j0 + kWidth)} y_ij^2 for the kRowVectors vectors of
// rows from i, y_j = sum_{a <= j} (x_a - mu_a) U_aj, rows in the vector lanes (x column-major,
// `rows` apart). U is upper triangular (U = L^-T, its lower part exactly zero), so the products
// below the diagonal are skipped: half a dense product's work, with each y_j held in a register
// and nothing written per component. `panel` is U's columns [j0, j0 + kWidth), packed
// (cpu::triangle_panel_offset).
//
// kProject: y_j itself is stored instead, at y + j * y_stride (y at row i, column-major).
template <int kWidth, int kRowVectors, bool kProject, typename T>
EMIX_CONTRACT_FMA void triangular_block(const T* x, Eigen::Index rows, Eigen::Index i, int j0,
                                        const T* mean, const T* panel, const double* residual,
                                        typename DirectNorms<T>::type* q, T* y,
                                        Eigen::Index y_stride) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V acc[kRowVectors][kWidth];
  EMIX_UNROLL
  for (int r = 0; r < kRowVectors; ++r) {
    EMIX_UNROLL
    for (int w = 0; w < kWidth; ++w) acc[r][w] = V{};
  }
  V centred[kRowVectors];
  for (int a = 0; a < j0; ++a) {
    EMIX_UNROLL
    for (int r = 0; r < kRowVectors; ++r) {
      std::memcpy(&centred[r], x + a * rows + i + r * kLanes<T>, sizeof(V));
      centred[r] -= mean[a];
    }
    const T* ua = panel + a * kWidth;
    EMIX_UNROLL
    for (int w = 0; w < kWidth; ++w) {
      EMIX_UNROLL
      for (int r = 0; r < kRowVectors; ++r) acc[r][w] += centred[r] * ua[w];
    }
  }
  EMIX_UNROLL
  for (int l = 0; l < kWidth; ++l) {
    EMIX_UNROLL
    for (int r = 0; r < kRowVectors; ++r) {
      std::memcpy(&centred[r], x + (j0 + l) * rows + i + r * kLanes<T>, sizeof(V));
      centred[r] -= mean[j0 + l];
    }
    const T* ua = panel + (j0 + l) * kWidth;
    EMIX_UNROLL
    for (int w = l; w < kWidth; ++w) {
      EMIX_UNROLL
      for (int r = 0; r < kRowVectors; ++r) acc[r][w] += centred[r] * ua[w];
    }
  }
  if constexpr (kProject) {
    for (int w = 0; w < kWidth; ++w) {
      for (int r = 0; r < kRowVectors; ++r) {
        std::memcpy(y + (j0 + w) * y_stride + r * kLanes<T>, &acc[r][w], sizeof(V));
      }
    }
  } else {
    using W = typename DirectNorms<T>::type;
    EMIX_UNROLL
    for (int w = 0; w < kWidth; ++w) {
      EMIX_UNROLL
      for (int r = 0; r < kRowVectors; ++r) {
        W y_j = __builtin_convertvector(acc[r][w], W);
        if constexpr (!std::is_same_v<T, double>) {
          if (residual != nullptr) y_j -= residual[j0 + w];
        }
        q[r] += y_j * y_j;
      }
    }
  }
}

// norms_i = |U^T (x_i - mu) - residual|^2 for the whole vectors of rows in [begin, end),
// kRowVectors at a time (x column-major, `stride` rows); the outputs y_j kBlock at a time, then
// the rest in one narrower block. Returns the first row it did not write. `residual` (D, or null;
// read in float only): U^T (the mean - mu) for a mean rounded to mu (TilePlan::mean_residuals).
// kProject: y_i = U^T (x_i - mu) itself into y instead (column-major, y_stride rows), and norms is
// not written.
template <int kRowVectors, bool kProject = false, typename T>
Eigen::Index triangular_rows(const T* x, Eigen::Index stride, Eigen::Index begin, Eigen::Index end,
                             int d, const T* mean, const T* u, const double* residual,
                             double* norms, T* y = nullptr, Eigen::Index y_stride = 0) {
  using W = typename DirectNorms<T>::type;
  constexpr Eigen::Index kStep = static_cast<Eigen::Index>(kRowVectors) * kLanes<T>;
  const int full_d = d / kBlock * kBlock;
  Eigen::Index i = begin;
  for (; i + kStep <= end; i += kStep) {
    W q[kRowVectors];
    for (W& v : q) v = W{};
    T* const y_i = kProject ? y + i : nullptr;
    for (int j0 = 0; j0 < full_d; j0 += kBlock) {
      triangular_block<kBlock, kRowVectors, kProject>(
          x, stride, i, j0, mean, u + triangle_panel_offset(j0), residual, q, y_i, y_stride);
    }
    if (full_d < d) {
      with_width_up_to<kBlock>(d - full_d, [&](auto width) {
        triangular_block<decltype(width)::value, kRowVectors, kProject>(
            x, stride, i, full_d, mean, u + triangle_panel_offset(full_d), residual, q, y_i,
            y_stride);
      });
    }
    if constexpr (!kProject) {
      for (int r = 0; r < kRowVectors; ++r) {
        std::memcpy(norms + i + r * kLanes<T>, &q[r], sizeof(W));
      }
    }
  }
  return i;
}

// Vectors of rows triangular_norms takes at a time: three where there are 32 vector registers (24
// sums, each U value loaded once for all three), 12 % less time than two at D = 2048; one where
// there are 16, as two held 16 sums in 16 registers and spilled (at AVX2, full D = 1024, K = 8
// 0.85x the time per iteration, tied D = 2048, K = 4 0.93x; x86-64-v2 unchanged).
constexpr int kTriangularRowVectors = kVectorBytes == 64 ? 3 : 1;

// out_i = |U^T (x_i - mu) - residual|^2 for rows [begin, end) of x (triangular_rows): several
// vectors of rows at a time (sums in flight for a block narrower than kBlock), then one, then the
// rows past the last whole vector (end = x.rows() only) through a zero-padded vector in
// `last_rows`, so that every row takes the same operations wherever it falls.
template <typename T>
void triangular_norms(const Matrix<T>& x, Eigen::Index begin, Eigen::Index end, const T* mean,
                      const T* u, const double* residual, Scratch<T>& s, double* out) {
  const Eigen::Index stride = x.rows();
  const int d = static_cast<int>(x.cols());
  Eigen::Index i = triangular_rows<kTriangularRowVectors>(x.data(), stride, begin, end, d, mean, u,
                                                          residual, out);
  i = triangular_rows<1>(x.data(), stride, i, end, d, mean, u, residual, out);
  if (i == end) return;
  s.last_rows.setZero(kLanes<T>, d);
  s.last_rows.topRows(end - i) = x.middleRows(i, end - i);
  s.last_norms.resize(kLanes<T>);
  triangular_rows<1>(s.last_rows.data(), kLanes<T>, 0, kLanes<T>, d, mean, u, residual,
                     s.last_norms.data());
  for (Eigen::Index r = i; r < end; ++r) out[r] = s.last_norms[r - i];
}

// Rows per task where a tile's direct full work is shared out among threads (TilePlan::threads):
// a whole number of every level's row blocks (kTriangularRowVectors vectors of rows), so that no
// task reaches the zero-padded vector, and at D = 2048 about 10^8 multiply-adds of the
// log-densities, milliseconds a task.
constexpr Eigen::Index kRowsPerTask = 48;
static_assert(kRowsPerTask % (kTriangularRowVectors * kLanes<float>) == 0 &&
                  kRowsPerTask % (kTriangularRowVectors * kLanes<double>) == 0,
              "a task's rows are whole row blocks");

// Direct tied, y = U^T (x - m) once per row (TilePlan::projected_means): out_ci = |y_i - z_c|^2
// for every component c and the whole vectors of rows [begin, end) of y (column-major, y_stride
// rows), column c at out + c * out_stride; each row by the same operations wherever it lies,
// components four at a time (four sums in flight, each y value loaded once for them).
template <typename T>
EMIX_CONTRACT_FMA void distances_to_projected_means(const T* y, Eigen::Index y_stride,
                                                    Eigen::Index begin, Eigen::Index end, int d,
                                                    int k, const T* z, double* out,
                                                    Eigen::Index out_stride) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  using W = typename DirectNorms<T>::type;
  constexpr int kComponents = 4;
  for (Eigen::Index i = begin; i < end; i += kLanes<T>) {
    for (int c0 = 0; c0 < k; c0 += kComponents) {
      with_width_up_to<kComponents>(k - c0, [&](auto width) {
        constexpr int kWidth = decltype(width)::value;
        W q[kWidth];
        EMIX_UNROLL
        for (int w = 0; w < kWidth; ++w) q[w] = W{};
        const T* z0 = z + std::int64_t{c0} * d;
        for (int j = 0; j < d; ++j) {
          V v;
          std::memcpy(&v, y + j * y_stride + i, sizeof(V));
          EMIX_UNROLL
          for (int w = 0; w < kWidth; ++w) {
            const W offset = __builtin_convertvector(v - z0[std::int64_t{w} * d + j], W);
            q[w] += offset * offset;
          }
        }
        EMIX_UNROLL
        for (int w = 0; w < kWidth; ++w) {
          std::memcpy(out + (c0 + w) * out_stride + i, &q[w], sizeof(W));
        }
      });
    }
  }
}

// Direct tied with TilePlan::projected_means: s.norms = |y - z_k|^2, y = U^T (x - m) once per row
// (D (D + 1) / 2 multiply-adds) rather than U^T (x - mu_k) per component, in kRowsPerTask runs of
// rows on plan.threads threads, the rows past the last whole vector last, through last_rows.
template <typename T>
void tied_norms(const TilePlan<T>& plan, const Matrix<T>& x, Scratch<T>& s) {
  const int d = plan.d;
  const Eigen::Index rows = x.rows();
  const Eigen::Index whole = rows / kLanes<T> * kLanes<T>;
  const Eigen::Index runs = (whole + kRowsPerTask - 1) / kRowsPerTask;
  s.projection.resize(whole, d);
  T* const y = s.projection.data();
  const unsigned caller_modes = fp_control_register();
#pragma omp parallel num_threads(plan.threads) if (plan.threads > 1 && runs > 1)
  {
    const ScopedFpModes modes(caller_modes);
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index run = 0; run < runs; ++run) {
      const Eigen::Index begin = run * kRowsPerTask, end = std::min(begin + kRowsPerTask, whole);
      const Eigen::Index i = triangular_rows<kTriangularRowVectors, true>(
          x.data(), rows, begin, end, d, plan.shift, plan.u, nullptr, nullptr, y, whole);
      triangular_rows<1, true>(x.data(), rows, i, end, d, plan.shift, plan.u, nullptr, nullptr, y,
                               whole);
      distances_to_projected_means(y, whole, begin, end, d, plan.k, plan.projected_means,
                                   s.norms.data(), rows);
    }
  }
  if (whole == rows) return;
  s.last_rows.setZero(kLanes<T>, d);
  s.last_rows.topRows(rows - whole) = x.middleRows(whole, rows - whole);
  s.last_projection.resize(kLanes<T>, d);
  triangular_rows<1, true>(s.last_rows.data(), kLanes<T>, 0, kLanes<T>, d, plan.shift, plan.u,
                           nullptr, nullptr, s.last_projection.data(), kLanes<T>);
  s.last_distances.resize(kLanes<T>, plan.k);
  distances_to_projected_means(s.last_projection.data(), kLanes<T>, 0, kLanes<T>, d, plan.k,
                               plan.projected_means, s.last_distances.data(), kLanes<T>);
  s.norms.bottomRows(rows - whole) = s.last_distances.topRows(rows - whole);
}

// Component c's TilePlan::mean_residuals, or null.
template <typename T>
const double* mean_residual(const TilePlan<T>& plan, int c) {
  if (plan.mean_residuals == nullptr) return nullptr;
  return plan.mean_residuals + std::int64_t{c} * plan.d;
}

// Direct full / tied: s.norms = |y|^2 for every row and component.
template <typename T>
void full_norms(const TilePlan<T>& plan, const Matrix<T>& x, Scratch<T>& s) {
  const int d = plan.d;
  const Eigen::Index rows = x.rows();
  if (plan.projected_means != nullptr) {
    tied_norms(plan, x, s);
  } else {
    const Eigen::Index whole = rows / kLanes<T> * kLanes<T>;
    const Eigen::Index runs = (whole + kRowsPerTask - 1) / kRowsPerTask;
    const std::int64_t tasks = runs * plan.k;
    const unsigned caller_modes = fp_control_register();
#pragma omp parallel num_threads(plan.threads) if (plan.threads > 1 && tasks > 1)
    {
      const ScopedFpModes modes(caller_modes);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t task = 0; task < tasks; ++task) {
        const int c = static_cast<int>(task / runs);
        const Eigen::Index begin = task % runs * kRowsPerTask;
        // Rows in [0, whole) never reach the zero-padded vector, the only use of s's buffers.
        triangular_norms(x, begin, std::min(begin + kRowsPerTask, whole),
                         plan.means + std::int64_t{c} * d, plan.u + c * plan.u_stride,
                         mean_residual(plan, c), s, s.norms.col(c).data());
      }
    }
    if (whole < rows) {
      for (int c = 0; c < plan.k; ++c) {
        triangular_norms(x, whole, rows, plan.means + std::int64_t{c} * d,
                         plan.u + c * plan.u_stride, mean_residual(plan, c), s,
                         s.norms.col(c).data());
      }
    }
  }
}

// Direct kinds: log w_k + log p(x | k) = bias_k - |y|^2 / 2, y = U_k^T (x - mu_k) (full / tied)
// or (x - mu_k) / sd_k (diag / spherical), each component centred on its own mean: nothing
// cancels, whatever the distances and the conditioning. A tied model whose means lie within reach
// of one point m takes U^T (x - m) once per row instead (tied_norms: scikit-learn's form,
// about m rather than the origin).
//
// Full and tied otherwise run component by component and kRowsPerTask rows at a time, on
// plan.threads threads, with the caller's floating-point modes; the rows past the last whole
// vector last.
//
// Their |y|^2 come in double (DirectNorms); in float, bias_k - |y|^2 / 2 is taken in double
// from TilePlan::direct_bias and held less the row's largest (less_row_largest), which rounds it
// by at most 6e-8 x 104 where a responsibility is not negligible.
//
// Diag and spherical take the rows row-major, so that a row's distance to a component is one
// contiguous reduction over D, with nothing written per component: the column-major form wrote
// and read a B x D matrix for every component, 6 GFLOP/s at K = 300, D = 1000 on two cores.
template <typename T>
void direct_log_densities(const TilePlan<T>& plan, const Matrix<T>& x, Scratch<T>& s) {
  const int d = plan.d;
  const Eigen::Index rows = x.rows();
  s.resp.resize(rows, plan.k);
  if (plan.kind == FeatureKind::kDirectFull) {
    s.norms.resize(rows, plan.k);
    full_norms(plan, x, s);
    if constexpr (std::is_same_v<T, double>) {
      for (int c = 0; c < plan.k; ++c) {
        s.resp.col(c) = (T(-0.5) * s.norms.col(c).array() + plan.bias[c]).matrix();
      }
    } else {
      s.raw_sums.resize(rows, plan.k);
      for (int c = 0; c < plan.k; ++c) {
        s.raw_sums.col(c) = (-0.5 * s.norms.col(c).array() + plan.direct_bias[c]).matrix();
      }
      less_row_largest(rows, s);
    }
    return;
  }
  if (d <= kFewDirectDiagFeatures) {
    // Few features: column by column, the rows in the vector lanes, each row's sum over j in
    // order j = 0..D-1; only the component's own column is written.
    for (int c = 0; c < plan.k; ++c) {
      const T* mean = plan.means + std::int64_t{c} * d;
      const T* inverse_sd = plan.u + std::int64_t{c} * d;
      T* out = s.resp.col(c).data();
      for (int j = 0; j < d; ++j) {
        const T* column = x.col(j).data();
        const T m = mean[j], u = inverse_sd[j];
        if (j == 0) {
          for (Eigen::Index i = 0; i < rows; ++i) {
            const T t = (column[i] - m) * u;
            out[i] = t * t;
          }
        } else {
          for (Eigen::Index i = 0; i < rows; ++i) {
            const T t = (column[i] - m) * u;
            out[i] += t * t;
          }
        }
      }
    }
  } else {
    s.by_rows.resize(rows, d);
    columns_to_rows(x.data(), rows, d, s.by_rows.data());
    for (int c = 0; c < plan.k; ++c) {
      const Eigen::Map<const RowVector<T>> mean(plan.means + std::int64_t{c} * d, d);
      const Eigen::Map<const RowVector<T>> inverse_sd(plan.u + std::int64_t{c} * d, d);
      for (Eigen::Index i = 0; i < rows; ++i) {
        s.resp(i, c) = ((s.by_rows.row(i) - mean).cwiseProduct(inverse_sd)).squaredNorm();
      }
    }
  }
  for (int c = 0; c < plan.k; ++c) {
    s.resp.col(c) = (T(-0.5) * s.resp.col(c).array() + plan.bias[c]).matrix();
  }
}

// Direct diag / spherical with few features: component c's sums over a tile's rows, the rows in
// the vector lanes (a lane's rows in order, then the lanes in order, whatever the alignment), all
// rows taken: at D = 1, K = 32 on separated data, skipping the rows a component does not own cost
// a branch and a row's loop per row and component, a third of an iteration.
template <typename T>
EMIX_CONTRACT_FMA void few_features_diag_sums(const T* g, const T* column, Eigen::Index rows,
                                              T centre, T* first, T* second) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V sum1{}, sum2{};
  Eigen::Index i = 0;
  for (; i + kLanes<T> <= rows; i += kLanes<T>) {
    V gv, xv;
    std::memcpy(&gv, g + i, sizeof gv);
    std::memcpy(&xv, column + i, sizeof xv);
    const V offset = xv - centre;
    const V weighted = gv * offset;
    sum1 += weighted;
    sum2 += weighted * offset;
  }
  T lanes1[kLanes<T>], lanes2[kLanes<T>];
  std::memcpy(lanes1, &sum1, sizeof lanes1);
  std::memcpy(lanes2, &sum2, sizeof lanes2);
  for (; i < rows; ++i) {  // the rows past the last whole vector, into lane 0
    const T offset = column[i] - centre;
    const T weighted = g[i] * offset;
    lanes1[0] += weighted;
    lanes2[0] += weighted * offset;
  }
  T total1 = 0, total2 = 0;
  for (int l = 0; l < kLanes<T>; ++l) {
    total1 += lanes1[l];
    total2 += lanes2[l];
  }
  *first = total1;
  *second = total2;
}

// Direct diag / spherical: s.t = the packed statistics about the centres, component by
// component: sum g (x - c_k), then sum g (x - c_k)^2. Row by row, elementwise over D
// (vectorised), skipping the rows a component does not own (g = 0, most of them when clusters are
// apart), which add nothing.
template <typename T>
void direct_diag_statistics(const TilePlan<T>& plan, const Matrix<T>& x, Scratch<T>& s) {
  const int d = plan.d;
  s.t.resize(plan.k, plan.features);
  if (d <= kFewDirectDiagFeatures) {
    for (int c = 0; c < plan.k; ++c) {
      const T* centre = plan.centres + std::int64_t{c} * d;
      for (int j = 0; j < d; ++j) {
        few_features_diag_sums(s.resp.col(c).data(), x.col(j).data(), x.rows(), centre[j],
                               &s.t(c, j), &s.t(c, d + j));
      }
    }
    return;
  }
  // s.by_rows holds x by rows: direct_log_densities of this tile made it, just before
  // (add_tile_statistics), and nothing between writes it.
  for (int c = 0; c < plan.k; ++c) {
    const Eigen::Map<const RowVector<T>> centre(plan.centres + std::int64_t{c} * d, d);
    s.first.setZero(d);
    s.second.setZero(d);
    T* first = s.first.data();
    T* second = s.second.data();
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const T g = s.resp(i, c);
      if (g == T(0)) continue;
      // One loop over the row (Eigen's three expressions wrote and read an offset row).
      const T* row = s.by_rows.row(i).data();
      for (int j = 0; j < d; ++j) {
        const T offset = row[j] - centre[j];
        first[j] += g * offset;
        second[j] += g * (offset * offset);
      }
    }
    s.t.row(c).head(d) = s.first;
    s.t.row(c).tail(d) = s.second;
  }
}

// Rows [a0, a0 + kRows) by columns [b0, b0 + kVectors lanes) of sum_r p_r[a] c_r[b] over `rows`
// rows: p column-major (p_stride rows apart), `panel` the columns from b0 row-major (kStride
// apart, zero past D). The columns are in the vector lanes and each sum is formed row after row,
// so that nothing is reduced across lanes; the entries with a <= b < D are added to the packed
// triangle, row a at slot + origin(a).
template <int kRows, int kVectors, int kStride, typename T, typename Origin>
EMIX_CONTRACT_FMA void scatter_block(const T* p, Eigen::Index p_stride, const T* panel,
                                     Eigen::Index rows, int a0, int b0, int d, Origin origin,
                                     double* slot) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
  using V = typename VectorOf<T>::type;
  V acc[kRows][kVectors];
  EMIX_UNROLL
  for (int i = 0; i < kRows; ++i) {
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) acc[i][v] = V{};
  }
  const T* pa = p + a0 * p_stride;
  for (Eigen::Index r = 0; r < rows; ++r) {
    const T* cr = panel + r * kStride;
    T pr[kRows];
    EMIX_UNROLL
    for (int i = 0; i < kRows; ++i) pr[i] = pa[i * p_stride + r];
    EMIX_UNROLL
    for (int v = 0; v < kVectors; ++v) {
      V cv;
      std::memcpy(&cv, cr + v * kLanes<T>, sizeof cv);
      EMIX_UNROLL
      for (int i = 0; i < kRows; ++i) acc[i][v] += cv * pr[i];
    }
  }
  T sums[kRows][kVectors * kLanes<T>];
  std::memcpy(sums, acc, sizeof sums);
  const int b_end = std::min(d, b0 + kVectors * kLanes<T>);
  for (int i = 0; i < kRows; ++i) {
    const int a = a0 + i;
    double* row = slot + origin(a);
    for (int b = std::max(a, b0); b < b_end; ++b) row[b] += static_cast<double>(sums[i][b - b0]);
  }
}

// Direct tied: whether a tile's scatter is cheaper pooled (direct_full_statistics). Tied's M-step
// reads only the sum over components of the scatters, and per row
//   sum_k g_k (x - c_k)(x - c_k)^T = p p^T / G + (1 / G) sum_{j<k} g_j g_k (c_j - c_k)(c_j - c_k)^T
// with G = sum_k g_k and p = sum_k g_k (x - c_k) = G (x - cbar): one product per row whatever the
// overlap, and one per pair of components that share a row, with weight B_jk = sum_n g_j g_k / G,
// instead of one per component that owns the row. Each term is a sum of squares about the row's
// own weighted centre or a difference of two centres, so nothing cancels (a form through one
// reference point, C^T (diag(g) - g g^T / G) C, loses eps |c - ref|^2 / |c_j - c_k|^2 for two
// close components far from it). Component 0's Q_k then holds the tile's sum, and the others
// nothing. Pooled where that is less work, and there are no more pairs than rows (which bounds
// the panels).
template <typename T>
void plan_pooled_scatter(const TilePlan<T>& plan, Scratch<T>& s, PooledScatter<T>& pooled) {
  const int k = plan.k, d = plan.d;
  const Eigen::Index rows = s.resp.rows();
  pooled.pooled = false;
  if (plan.u_stride != 0 || k < 2) return;
  std::int64_t owned_by_components = 0;
  for (int c = 0; c < k; ++c) {
    for (Eigen::Index i = 0; i < rows; ++i) owned_by_components += s.resp(i, c) != T(0);
  }
  // Work a tile, roughly: a scatter row D^2 / 2 multiply-adds in vectors of kLanes; a row gathered
  // for one component 2 D scalar steps (the offset, its product, two stores); a pooled row D
  // stores and 3 K D / kLanes vector steps (a product, an addition and a sum per component), and
  // at most one row per pair. On separated 2 * 10^4 x 256 data (tied K = 8, tiles whose
  // components own 1.0 to 1.2 rows a row), pooling where it saved scatter rows alone took
  // 1.03-1.05x the time.
  const std::int64_t most_pairs = std::int64_t{k} * (k - 1) / 2;
  const double lanes = kLanes<T>;
  const double scatter_row = 0.5 * d * d / lanes;
  const double per_component = static_cast<double>(owned_by_components) * (scatter_row + 2.0 * d);
  const double pooled_work = static_cast<double>(rows + most_pairs) * scatter_row +
                             static_cast<double>(rows) * (d + 3.0 * k * d / lanes);
  if (!(pooled_work < per_component) || most_pairs > rows) return;
  pooled.pooled = true;
  pooled.inverse_weight.resize(rows);
  pooled.pair_sums.setZero(k, k);
  for (Eigen::Index i = 0; i < rows; ++i) {
    const T weight = s.resp.row(i).sum();
    pooled.inverse_weight[i] = weight != T(0) ? T(1) / weight : T(0);
    if (weight == T(0)) continue;
    // g_j / G (at most 1) before g_k: g_j g_k first would underflow or overflow for sample
    // weights beyond 1e+-154, which the per-component path takes. (1 / G itself flushes to 0
    // only for a row weight above 4e307.)
    const double inverse = 1.0 / static_cast<double>(weight);
    for (int j = 0; j < k; ++j) {
      const double share = static_cast<double>(s.resp(i, j)) * inverse;
      if (share == 0) continue;
      for (int c = j + 1; c < k; ++c) {
        pooled.pair_sums(j, c) += share * static_cast<double>(s.resp(i, c));
      }
    }
  }
  pooled.pairs.clear();
  pooled.pair_weights.clear();
  for (int j = 0; j < k; ++j) {
    for (int c = j + 1; c < k; ++c) {
      if (pooled.pair_sums(j, c) == 0) continue;
      pooled.pairs.emplace_back(j, c);
      pooled.pair_weights.push_back(static_cast<T>(pooled.pair_sums(j, c)));
    }
  }
}

// One column a of a pooled tile (plan_pooled_scatter): p_i = sum_k g_ik (x_ia - c_ka) for the
// tile's rows into p, and each component's sum_i g_ik (x_ia - c_ka) added to its slot (`first`,
// components `stride` apart), the rows in the vector lanes (a component's responsibilities and
// the column are contiguous).
template <typename T>
EMIX_CONTRACT_FMA void pooled_column(const T* column, Eigen::Index rows, const Matrix<T>& g,
                                     const T* centre, int d, T* p, double* first, int stride) {
  using V = typename VectorOf<T>::type;
  constexpr int kL = kLanes<T>;
  const Eigen::Index whole = rows / kL * kL;
  std::fill(p, p + rows, T(0));
  for (Eigen::Index c = 0; c < g.cols(); ++c) {
    const T centre_c = centre[c * d];
    const T* gc = &g(0, c);
    V sums{};
    for (Eigen::Index i = 0; i < whole; i += kL) {
      V gv, xv, pv;
      std::memcpy(&gv, gc + i, sizeof gv);
      std::memcpy(&xv, column + i, sizeof xv);
      std::memcpy(&pv, p + i, sizeof pv);
      const V term = gv * (xv - centre_c);
      pv += term;
      sums += term;
      std::memcpy(p + i, &pv, sizeof pv);
    }
    T sum = 0;
    for (int l = 0; l < kL; ++l) sum += sums[l];
    for (Eigen::Index i = whole; i < rows; ++i) {
      const T term = gc[i] * (column[i] - centre_c);
      p[i] += term;
      sum += term;
    }
    first[c * stride] += static_cast<double>(sum);
  }
}

// Direct full / tied: the packed statistics about the centres, component by component: sum
// g (x - c_k), then sum g (x - c_k)_a (x - c_k)_b for a <= b, each added to `slot` (K x features,
// row-major) in double; a tied tile where that is cheaper adds its scatter pooled, all to
// component 0 (plan_pooled_scatter).
//
// The rows a component owns (g != 0) are gathered, eight columns at a time: less its centre, in
// panels of kWidth columns each row-major and contiguous (zero past D), and times g, column-major.
// (Pooled, every row of the tile, column by column: p / G (0 where G = 0; as p times 1 / G: a
// division per value made overlapping 2 * 10^4 x 256 tied K = 8 fits 1.03-1.07x slower) and p,
// then each pair's c_j - c_k and B_jk (c_j - c_k).)
// The triangle's sums are formed in register blocks (scatter_block: kRows rows a by kVectors
// vectors of columns b, the columns in the lanes) over all the owned rows of the tile, panel by
// panel, the last (which reach the most rows a) first, and added to the slot from the registers;
// a component that owns no row of the tile adds nothing. (With the
// rows in the lanes instead, each block ended in a reduction across lanes, and a D x D buffer was
// then packed into the slot: with 60 owned rows a tile, those took as long as the products.) Both
// steps share out among plan.threads threads by columns, with the caller's floating-point modes,
// and each sum is formed by one thread in one order whatever the threads; what they write is
// sized before, as nothing may throw in a parallel region.
template <typename T>
void direct_full_statistics(const TilePlan<T>& plan, const Matrix<T>& x, Scratch<T>& s,
                            double* slot) {
  const int d = plan.d, k = plan.k;
  // Three rows a by eight vectors of columns b where there are 32 vector registers (24 sums for
  // 11 loads), by four where there are 16 (12 sums; two by four took 1.07x the time of three by
  // four on overlapping tied D = 1024 at AVX2). Panels of 512 bytes a row at every level, so that
  // a block's rows of the slot are read and written in runs of that length (16-column panels at
  // AVX2 made a tied D = 2048 fit 1.1x slower than the rows-in-lanes kernel before). Tasks are
  // kTaskRows rows a of one panel, so that threads share a panel (D = 2048 has 32, the last 32
  // times the first's work).
  constexpr int kRows = 3, kVectors = kVectorBytes == 64 ? 8 : 4;
  constexpr int kBlockWidth = kVectors * kLanes<T>;
  constexpr int kWidth = 512 / static_cast<int>(sizeof(T));
  constexpr int kGatherColumns = 8;
  static_assert(kWidth % kBlockWidth == 0 && kWidth % kGatherColumns == 0,
                "a panel holds whole blocks and whole gather blocks");
  constexpr int kTaskRows = 16 * kRows;
  const Eigen::Index rows = x.rows();
  const Eigen::Index panels = (d + kWidth - 1) / kWidth;
  const Eigen::Index gather_blocks = (d + kGatherColumns - 1) / kGatherColumns;
  // (panel, first row a) per task, the last panels (which reach the most rows a) first.
  s.scatter_tasks.clear();
  for (int p = static_cast<int>(panels) - 1; p >= 0; --p) {
    const int b_end = std::min(d, (p + 1) * kWidth);
    for (int a0 = 0; a0 < b_end; a0 += kTaskRows) s.scatter_tasks.emplace_back(p, a0);
  }
  const auto tasks = static_cast<std::int64_t>(s.scatter_tasks.size());
  s.owned.resize(rows);
  PooledScatter<T>& pooled = s.pooled;
  plan_pooled_scatter(plan, s, pooled);
  const Eigen::Index capacity =
      pooled.pooled ? rows + static_cast<Eigen::Index>(pooled.pairs.size()) : rows;
  s.centred.resize(panels * capacity * kWidth);
  s.projected.resize(capacity * d);
  T* const centred = s.centred.data();
  T* const projected = s.projected.data();
  Eigen::Index owned = pooled.pooled ? capacity : 0;
  const unsigned caller_modes = fp_control_register();
  // Entry (a, b) is at origin(a) + b: after the D sums and the rows before a, from b = a.
  const auto origin = [d](std::int64_t a) { return d + a * d - a * (a + 1) / 2; };
#pragma omp parallel num_threads(plan.threads) if (plan.threads > 1)
  {
    const ScopedFpModes modes(caller_modes);
    // Zero the last panel's columns past the last gather block up to the whole vectors that
    // scatter_block reads, for `owned` rows; called with the last gather block.
    const auto zero_last_panel_tail = [&](int a0) {
      const int start = a0 / kWidth * kWidth;
      const int next = a0 + kGatherColumns - start;
      const int read = (d - start + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
      T* panel = centred + a0 / kWidth * owned * kWidth;
      for (Eigen::Index r = 0; r < owned; ++r) {
        for (int j = next; j < read; ++j) panel[r * kWidth + j] = T(0);
      }
    };
    // The triangle of the `owned` gathered rows, added to `component_slot`.
    const auto scatter = [&](double* component_slot) {
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t task = 0; task < tasks; ++task) {
        const auto [p, a_begin] = s.scatter_tasks[static_cast<std::size_t>(task)];
        const int b0 = p * kWidth;
        const int b_end = std::min(d, b0 + kWidth);
        const T* panel = centred + Eigen::Index{p} * owned * kWidth;
        for (int a0 = a_begin; a0 < std::min(b_end, a_begin + kTaskRows); a0 += kRows) {
          // Blocks of columns from the one that holds column a0 (none before reaches a >= a0).
          const int first = b0 + std::max(0, a0 - b0) / kBlockWidth * kBlockWidth;
          for (int c0 = first; c0 < b_end; c0 += kBlockWidth) {
            const Eigen::Index vectors =
                (std::min(b_end - c0, kBlockWidth) + kLanes<T> - 1) / kLanes<T>;
            with_width_up_to<kRows>(b_end - a0, [&](auto block_rows) {
              with_width_up_to<kVectors>(vectors, [&](auto width) {
                scatter_block<decltype(block_rows)::value, decltype(width)::value, kWidth>(
                    projected, owned, panel + (c0 - b0), owned, a0, c0, d, origin, component_slot);
              });
            });
          }
        }
      }
    };
    if (pooled.pooled) {
#pragma omp for schedule(static)
      for (Eigen::Index block = 0; block < gather_blocks; ++block) {
        const int a0 = static_cast<int>(block) * kGatherColumns;
        const int width = std::min(kGatherColumns, d - a0);
        T* panel = centred + a0 / kWidth * owned * kWidth + a0 % kWidth;
        for (int j = 0; j < width; ++j) {
          const int a = a0 + j;
          T* const p = projected + Eigen::Index{a} * owned;  // p over the rows, then the pairs'
          pooled_column(&x(0, a), rows, s.resp, plan.centres + a, d, p, slot + a, plan.features);
          for (Eigen::Index i = 0; i < rows; ++i) {
            panel[i * kWidth + j] = p[i] * pooled.inverse_weight[i];
          }
          for (std::size_t q = 0; q < pooled.pairs.size(); ++q) {
            const auto [cj, ck] = pooled.pairs[q];
            const Eigen::Index r = rows + static_cast<Eigen::Index>(q);
            const T difference =
                plan.centres[std::int64_t{cj} * d + a] - plan.centres[std::int64_t{ck} * d + a];
            panel[r * kWidth + j] = difference;
            p[r] = pooled.pair_weights[q] * difference;
          }
        }
        for (Eigen::Index r = 0; r < owned; ++r) {
          for (int j = width; j < kGatherColumns; ++j) panel[r * kWidth + j] = T(0);
        }
        if (a0 + kGatherColumns >= d) zero_last_panel_tail(a0);
      }
      scatter(slot);
    } else {
      for (int c = 0; c < k; ++c) {
        const T* centre = plan.centres + std::int64_t{c} * d;
        const auto g = s.resp.col(c);
        double* const component_slot = slot + std::int64_t{c} * plan.features;
#pragma omp single
        {
          owned = 0;
          for (Eigen::Index i = 0; i < rows; ++i) {  // without a branch: g = 0 is unpredictable
            s.owned[owned] = i;
            owned += g[i] != T(0);
          }
        }
        if (owned == 0) {
          // Every thread has read the count before the next single writes it.
#pragma omp barrier
          continue;
        }
#pragma omp for schedule(static)
        for (Eigen::Index block = 0; block < gather_blocks; ++block) {
          const int a0 = static_cast<int>(block) * kGatherColumns;
          const int width = std::min(kGatherColumns, d - a0);
          T* panel = centred + a0 / kWidth * owned * kWidth + a0 % kWidth;
          T first[kGatherColumns] = {};
          for (Eigen::Index r = 0; r < owned; ++r) {
            const Eigen::Index i = s.owned[r];
            for (int j = 0; j < width; ++j) {
              const T offset = x(i, a0 + j) - centre[a0 + j];
              const T weighted = g[i] * offset;
              panel[r * kWidth + j] = offset;
              projected[(a0 + j) * owned + r] = weighted;
              first[j] += weighted;
            }
            for (int j = width; j < kGatherColumns; ++j) panel[r * kWidth + j] = T(0);
          }
          if (a0 + kGatherColumns >= d) zero_last_panel_tail(a0);
          for (int j = 0; j < width; ++j) component_slot[a0 + j] += static_cast<double>(first[j]);
        }
        scatter(component_slot);
      }
    }
  }
}

// The log-densities log w_k + log p(x_n | k) of rows [begin, begin + rows), whose features are f,
// into s.resp, without the part every component shares (row_constant).
template <typename T>
void log_densities(const TilePlan<T>& plan, const Matrix<T>& f, Scratch<T>& s) {
  if (!plan.shared_quadratic && s.row_offset.size() != 0) s.row_offset.resize(0);  // none taken
  if (plan.kind == FeatureKind::kDirectFull || plan.kind == FeatureKind::kDirectDiag) {
    direct_log_densities(plan, f, s);
    return;
  }
  if (!plan.shared_quadratic) {
    features_times_weights(f, plan.w, plan.bias, plan.k, s.resp);
    return;
  }
  // Tied: the quadratic part -u^T P u / 2 is every component's, taken once per row (its
  // D (D + 1) / 2 products against K times that), and kept out of the log-densities: it changes
  // no responsibility, and goes to log p(x) in double (row_offset). Added to each component's
  // linear part in T, it rounded them by eps |u^T P u|: a float32 row 10^7 from the data
  // (u^T P u about 10^14) lost the linear parts' differences, and its responsibilities were 1 / K.
  const Eigen::Index rows = f.rows(), d = plan.d, p = f.cols();
  features_times_weights(f.data(), rows, d, plan.w, p, plan.bias, plan.k, s.resp);
  const T no_bias = 0;
  features_times_weights(f.data() + d * rows, rows, p - d, plan.w + d, p, &no_bias, 1, s.shared);
  s.row_offset = s.shared.col(0).template cast<double>();
}

// What row n's log-density under every component shares: sum_d log C(m, x_nd) for a binomial
// mixture, else 0. Added to the row's log p(x) in double, never to its log-densities in T: it
// changes no responsibility, and in float its rounding (up to 4e-5 for m = 1000) was 2e-6 of the
// log-likelihood.
template <typename T>
double row_constant(const TilePlan<T>& plan, std::int64_t n) {
  if (!plan.binomial) return 0.0;
  if (plan.x_float != nullptr) {
    return log_binomial(plan.x_float + n * plan.d, plan.d, plan.trials, plan.log_choose);
  }
  return log_binomial(plan.x + n * plan.d, plan.d, plan.trials, plan.log_choose);
}

// Row begin + i's log p(x), in double: the tile's log-sum-exp, what the log-densities took out of
// the row (row_offset) and what every component shares (row_constant).
template <typename T>
double row_log_prob(const TilePlan<T>& plan, const Scratch<T>& s, std::int64_t begin,
                    std::int64_t i) {
  const double taken_out = s.row_offset.size() > 0 ? s.row_offset[i] : 0.0;
  return static_cast<double>(s.lse[i]) + taken_out + row_constant(plan, begin + i);
}

// s.resp's columns v_k -> e_k = exp_or_zero(v_k - max), s.sum = sum_k e_k and, kShifted,
// s.shifted = sum_k e_k (v_k - max). Two instances, so that a fit, which does not ask for the
// entropy, runs the loop without it (measured: a test inside it cost 3-8 % of an E-step).
template <bool kShifted, typename T>
void exponentiate_columns(const TilePlan<T>& plan, std::int64_t rows, Scratch<T>& s) {
  s.sum.setZero(rows);
  s.diff.resize(rows);
  if constexpr (kShifted) s.shifted.setZero(rows);
  const T threshold = log_negligible<T>();
  for (int c = 0; c < plan.k; ++c) {
    s.diff = s.resp.col(c) - s.max;
    s.resp.col(c) = s.diff.array().exp().matrix();  // Eigen's vectorised exp
    if (!plan.keep_negligible) {
      // exp_or_zero, as a loop the compiler vectorises (a blend).
      T* column = s.resp.col(c).data();
      const T* diff = s.diff.data();
      for (std::int64_t i = 0; i < rows; ++i) column[i] = diff[i] < threshold ? T(0) : column[i];
    }
    s.sum += s.resp.col(c);
    if constexpr (kShifted) s.shifted += s.resp.col(c).cwiseProduct(s.diff);
  }
}

// s.resp (log-densities) -> responsibilities in place, and s.lse = log p(x_n), by the rules of
// core/pointwise.hpp: max and sum = sum_k exp_or_zero(v_k - max), p(k | x) = exp_or_zero(v_k -
// max) / sum, log p(x) = max + log(sum). Rows whose log-densities are all finite (every row of
// valid data, in practice) take a vectorised path; the others (a component with density zero, or
// +inf / NaN from overflowing data) the scalar functions themselves. labels (or null): the argmax
// of the log-densities, lowest index on ties. With `entropy`, also s.entropy: H = -sum_k p_k
// log p_k = log(sum) - sum_k e_k (v_k - max) / sum with e_k = exp_or_zero(v_k - max), two
// non-negative terms (no cancellation), a flushed e_k adding nothing, as p log p -> 0.
template <typename T>
void responsibilities(const TilePlan<T>& plan, std::int64_t rows, Scratch<T>& s,
                      std::int32_t* labels, bool entropy) {
  const int k = plan.k;
  const T* v = s.resp.data();  // column-major, leading dimension `rows`
  if (labels != nullptr) {
    for (std::int64_t i = 0; i < rows; ++i) labels[i] = argmax_strided(v + i, k, rows);
  }
  // Rows with a term that is not finite: their sum is not finite either.
  s.sum = s.resp.rowwise().sum();
  Eigen::Index n_special = 0;
  for (std::int64_t i = 0; i < rows; ++i) n_special += std::isfinite(s.sum[i]) ? 0 : 1;
  if (n_special > 0) {
    s.special_rows.resize(n_special);
    s.special_resp.resize(n_special, k);
    s.special_lse.resize(n_special);
    s.special_entropy.resize(n_special);
    Eigen::Index j = 0;
    for (std::int64_t i = 0; i < rows; ++i) {
      if (std::isfinite(s.sum[i])) continue;
      const LogSumExp<T> parts = log_sum_exp_parts(v + i, k, rows);
      for (int c = 0; c < k; ++c) s.special_resp(j, c) = responsibility(v[i + c * rows], parts);
      s.special_lse[j] = log_sum_exp_value(parts);
      if (entropy) s.special_entropy[j] = responsibility_entropy(v + i, k, rows, parts);
      s.special_rows[j++] = i;
    }
  }

  s.max = s.resp.col(0);
  for (int c = 1; c < k; ++c) s.max = s.max.cwiseMax(s.resp.col(c));
  if (entropy) {
    exponentiate_columns<true>(plan, rows, s);
  } else {
    exponentiate_columns<false>(plan, rows, s);
  }
  for (int c = 0; c < k; ++c) s.resp.col(c).array() /= s.sum.array();
  const auto log_sum = s.sum.array().log();
  s.lse = (s.max.array() + log_sum).matrix();
  if (entropy) s.entropy = (log_sum - s.shifted.array() / s.sum.array()).matrix();

  for (Eigen::Index j = 0; j < n_special; ++j) {
    s.resp.row(s.special_rows[j]) = s.special_resp.row(j);
    s.lse[s.special_rows[j]] = s.special_lse[j];
    if (entropy) s.entropy[s.special_rows[j]] = s.special_entropy[j];
  }
}

// The rows [begin, begin + rows) by rows, for raw_by_rows: where they lie, or a float engine's
// promoted rows in double.
template <typename T>
const T* tile_rows(const TilePlan<T>& plan, std::int64_t begin, std::int64_t rows, Scratch<T>& s) {
  if (plan.x != nullptr) return plan.x + begin * plan.d;
  s.by_rows = Eigen::Map<const RowMatrix<float>>(plan.x_float + begin * plan.d, rows, plan.d)
                  .template cast<T>();
  return s.by_rows.data();
}

// Adds the packed statistics of rows [begin, begin + rows) to slot, from their features f or,
// where the plan reads them by rows (raw_by_rows), from x_rows.
template <typename T>
void add_tile_statistics(const TilePlan<T>& plan, const Matrix<T>& f, const T* x_rows,
                         std::int64_t begin, std::int64_t rows, Scratch<T>& s, double* slot) {
  const int k = plan.k;
  if (x_rows != nullptr) {
    raw_log_densities(plan, x_rows, rows, rows, s);
  } else {
    log_densities(plan, f, s);
  }
  responsibilities(plan, rows, s, nullptr, plan.entropy);
  double log_likelihood = 0, weight_sum = 0, entropy = 0;
  if (plan.sample_weight != nullptr) {
    const double* w = plan.sample_weight + begin;
    s.weight.resize(rows);
    for (std::int64_t i = 0; i < rows; ++i) {
      log_likelihood += weighted_log_prob(w[i], row_log_prob(plan, s, begin, i));
      weight_sum += w[i];
      s.weight[i] = static_cast<T>(w[i]);
    }
    // A row of weight 0 adds nothing, whatever its entropy (NaN for a NaN row).
    for (std::int64_t i = 0; plan.entropy && i < rows; ++i) {
      if (w[i] != 0) entropy += w[i] * static_cast<double>(s.entropy[i]);
    }
    s.resp.array().colwise() *= s.weight.array();
  } else {
    for (std::int64_t i = 0; i < rows; ++i) {
      log_likelihood += row_log_prob(plan, s, begin, i);
    }
    for (std::int64_t i = 0; plan.entropy && i < rows; ++i) {
      entropy += static_cast<double>(s.entropy[i]);
    }
    weight_sum = static_cast<double>(rows);
  }
  slot[0] += log_likelihood;
  slot[1] += weight_sum;
  slot[2] += entropy;
  const RowVector<T> nk = s.resp.colwise().sum();
  for (int c = 0; c < k; ++c) slot[kPackedTotals + c] += static_cast<double>(nk[c]);
  double* t_out = slot + kPackedTotals + k;
  if (x_rows != nullptr) {
    if constexpr (std::is_same_v<T, double>) {  // the tile's sums straight into the slot
      raw_statistics(plan, x_rows, rows, s, t_out);
      return;
    }
    s.t.setZero(k, plan.features);
    raw_statistics(plan, x_rows, rows, s, s.t.data());
  } else if (plan.kind == FeatureKind::kDirectFull) {  // straight into the slot
    direct_full_statistics(plan, f, s, t_out);
    return;
  } else if (plan.kind == FeatureKind::kDirectDiag) {
    direct_diag_statistics(plan, f, s);
  } else if (plan.shared_quadratic) {  // straight into the slot
    pooled_quadratic_statistics(f, plan.d, s, t_out);
    return;
  } else {
    responsibilities_times_features(s.resp, f, s.resp_rows, s.t);
  }
  const T* t_in = s.t.data();
  const std::int64_t size = static_cast<std::int64_t>(k) * plan.features;
  for (std::int64_t i = 0; i < size; ++i) t_out[i] += static_cast<double>(t_in[i]);
}

// Rows per window of add_statistics: the window's rows (256 KiB) stay in L2 while each group of
// plans builds its feature matrices from them.
constexpr std::int64_t kWindowBytes = std::int64_t{256} << 10;

// Whether the caller's interrupt check stopped the call: the queue then hands out nothing more.
bool stop_taking(WorkQueue& queue) {
  if (!::emix::detail::interrupt_requested(queue.interrupted)) return false;
#pragma omp atomic write
  queue.next = queue.size;
  return true;
}

// The queue's next item, or false when none is left (or the caller's check stopped the call).
bool take(WorkQueue& queue, std::int64_t& item) {
  if (stop_taking(queue)) return false;
  std::int64_t taken;
#pragma omp atomic capture
  taken = queue.next++;
  item = taken;
  return taken < queue.size;
}

// The first tile of slot s of n_slots over n_rows rows, in tiles of block_rows.
std::int64_t first_tile_of_slot(std::int64_t s, std::int64_t n_slots, std::int64_t n_rows,
                                std::int64_t block_rows) {
  const std::int64_t per = block_rows * n_slots;
  return (s * n_rows) / per + ((s * n_rows) % per != 0 ? 1 : 0);
}

// Slot s of add_statistics: plan i's tiles [first[i], last[i]) into its slot s; scratch[i] is
// plan i's work space. The caller's interrupt check runs between windows too: a pass of one slot
// (a direct full model of D = 1024 has one) takes it once otherwise.
template <typename T>
void add_slot_statistics(const TilePlan<T>* plans, int count, const SlotLayout& layout,
                         std::int64_t s, const IndexVector& first, const IndexVector& last,
                         Scratch<T>* scratch, WorkQueue& queue) {
  // Plans with the same features and tiles (same_features) form a group, led by its first plan:
  // each of the group's tiles builds F once, and every plan of the group takes its statistics
  // from it, tile by tile in increasing order, as alone.
  IndexVector leader(count);
  for (int i = 0; i < count; ++i) {
    leader[i] = i;
    for (int j = 0; j < i; ++j) {
      if (leader[j] == j && first[j] == first[i] && last[j] == last[i] &&
          same_features(plans[j], plans[i])) {
        leader[i] = j;
        break;
      }
    }
  }
  const std::int64_t row_bytes = static_cast<std::int64_t>(sizeof(T)) * plans[0].d;
  const std::int64_t window_rows = std::max<std::int64_t>(64, kWindowBytes / row_bytes);
  IndexVector next = first;
  for (;;) {
    // The window starts at the lowest row a plan still has to read.
    std::int64_t begin = plans[0].n;
    for (int i = 0; i < count; ++i) {
      if (next[i] < last[i]) begin = std::min(begin, next[i] * plans[i].block_rows);
    }
    if (begin >= plans[0].n || stop_taking(queue)) return;
    const std::int64_t end = begin + window_rows;
    for (int g = 0; g < count; ++g) {
      if (leader[g] != g) continue;
      const TilePlan<T>& plan = plans[g];
      Matrix<T>& f = scratch[g].f;
      for (; next[g] < last[g] && next[g] * plan.block_rows < end; ++next[g]) {
        const std::int64_t tile_begin = next[g] * plan.block_rows;
        const std::int64_t rows = std::min(plan.block_rows, plan.n - tile_begin);
        const T* x_rows = nullptr;
        if (raw_by_rows(plan)) {
          x_rows = tile_rows(plan, tile_begin, rows, scratch[g]);
        } else {
          build_features(plan, tile_begin, rows, f);
        }
        for (int i = g; i < count; ++i) {
          if (leader[i] == g)
            add_tile_statistics(plans[i], f, x_rows, tile_begin, rows, scratch[i],
                                layout.sums[i] + s * layout.packed[i]);
        }
      }
      for (int i = g + 1; i < count; ++i) {
        if (leader[i] == g) next[i] = next[g];
      }
    }
  }
}

template <typename T>
void add_statistics(const TilePlan<T>* plans, int count, const SlotLayout& layout,
                    WorkQueue& queue) {
  if (count <= 0) return;
  try {
    const std::unique_ptr<Scratch<T>[]> scratch(new Scratch<T>[static_cast<std::size_t>(count)]);
    IndexVector first(count), last(count);
    std::int64_t s = 0;
    while (take(queue, s)) {
      for (int i = 0; i < count; ++i) {
        first[i] = first_tile_of_slot(s, queue.size, layout.n_rows, plans[i].block_rows);
        last[i] = first_tile_of_slot(s + 1, queue.size, layout.n_rows, plans[i].block_rows);
      }
      add_slot_statistics(plans, count, layout, s, first, last, scratch.get(), queue);
    }
  } catch (...) {  // called in a parallel region, which no exception may leave
    fail(queue, std::current_exception());
  }
}

// Rows [rows, padded) of f: copies of its last row.
template <typename T>
void pad_with_last_row(Matrix<T>& f, Eigen::Index padded) {
  const Eigen::Index rows = f.rows();
  if (padded == rows) return;
  Matrix<T> grown(padded, f.cols());
  grown.topRows(rows) = f;
  grown.bottomRows(padded - rows).rowwise() = f.row(rows - 1);
  f.swap(grown);
}

// Each tile runs padded to whole vectors of rows, with copies of its last row: every row is then
// computed by the vector loops (the products' and Eigen's exp and log, whose scalar tails round
// differently), so that a row's results are bitwise the same wherever it falls, alone or among
// others (scikit-learn's subset-invariance checks, in float32).
template <typename T>
void evaluate_tiles(const TilePlan<T>& plan, std::int64_t first, std::int64_t last,
                    double* log_prob, double* resp, std::int32_t* labels, Scratch<T>& s,
                    std::vector<std::int32_t>& padded_labels) {
  const int k = plan.k;
  for (std::int64_t t = first; t < last; ++t) {
    const std::int64_t begin = t * plan.block_rows;
    const std::int64_t rows = std::min(plan.block_rows, plan.n - begin);
    const std::int64_t padded = (rows + kLanes<T> - 1) / kLanes<T> * kLanes<T>;
    if (raw_by_rows(plan)) {
      raw_log_densities(plan, tile_rows(plan, begin, rows, s), rows, padded, s);
    } else {
      build_features(plan, begin, rows, s.f);
      pad_with_last_row(s.f, padded);
      log_densities(plan, s.f, s);
    }
    std::int32_t* tile_labels = nullptr;
    if (labels != nullptr) {
      padded_labels.resize(static_cast<std::size_t>(padded));
      tile_labels = padded_labels.data();
    }
    responsibilities(plan, padded, s, tile_labels, false);
    if (labels != nullptr) std::copy_n(padded_labels.data(), rows, labels + begin);
    if (log_prob != nullptr) {
      for (std::int64_t i = 0; i < rows; ++i) {
        log_prob[begin + i] = row_log_prob(plan, s, begin, i);
      }
    }
    if (resp != nullptr) {
      for (std::int64_t i = 0; i < rows; ++i) {
        double* out = resp + (begin + i) * k;
        for (int c = 0; c < k; ++c) out[c] = static_cast<double>(s.resp(i, c));
      }
    }
  }
}

template <typename T>
void evaluate(const TilePlan<T>& plan, std::int64_t n_tiles, WorkQueue& queue, double* log_prob,
              double* resp, std::int32_t* labels) {
  try {
    Scratch<T> s;
    std::vector<std::int32_t> padded_labels;
    std::int64_t r = 0;
    while (take(queue, r)) {
      evaluate_tiles(plan, r * n_tiles / queue.size, (r + 1) * n_tiles / queue.size, log_prob, resp,
                     labels, s, padded_labels);
    }
  } catch (...) {  // called in a parallel region, which no exception may leave
    fail(queue, std::current_exception());
  }
}

}  // namespace

const Kernels<float>& table_f32() {
  static const Kernels<float> table{IsaLevel::EMIX_CPU_KERNELS_LEVEL, kOwnProducts,
                                    &add_statistics<float>, &evaluate<float>};
  return table;
}

const Kernels<double>& table_f64() {
  static const Kernels<double> table{IsaLevel::EMIX_CPU_KERNELS_LEVEL, kOwnProducts,
                                     &add_statistics<double>, &evaluate<double>};
  return table;
}

namespace {

bool cholesky(const double* a, int d, double* lower) {
  const Eigen::LLT<Matrix<double>> llt(Eigen::Map<const RowMatrix<double>>(a, d, d));
  Eigen::Map<Matrix<double>>(lower, d, d) = llt.matrixL();
  return llt.info() == Eigen::Success;
}

void lower_inverse_columns(const double* lower, int d, int j0, int width, double* inverse) {
  const Eigen::Map<const Matrix<double>> l(lower, d, d);
  const int rest = d - j0;
  auto columns = Eigen::Map<Matrix<double>>(inverse, d, d).block(j0, j0, rest, width);
  columns.setZero();
  columns.topRows(width).setIdentity();
  l.bottomRightCorner(rest, rest).template triangularView<Eigen::Lower>().solveInPlace(columns);
}

void add_transposed_product(const double* a, const double* b, std::int64_t rows, int d, double* q) {
  const Eigen::Map<const RowMatrix<double>> ma(a, rows, d), mb(b, rows, d);
  Eigen::Map<RowMatrix<double>>(q, d, d).noalias() += ma.transpose() * mb;
}

}  // namespace

const DenseKernels& table_dense() {
  static const DenseKernels table{IsaLevel::EMIX_CPU_KERNELS_LEVEL, &cholesky,
                                  &lower_inverse_columns, &add_transposed_product};
  return table;
}

}  // namespace emix::cpu::EMIX_CPU_KERNELS_NAMESPACE
