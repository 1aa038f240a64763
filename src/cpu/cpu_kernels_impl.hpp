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

#define EIGEN_DONT_PARALLELIZE  // one thread per tile; OpenMP parallelism is across tiles

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <math.h>

#include <Eigen/Core>

#include "core/host_device.hpp"
#include "cpu/cpu_kernels.hpp"

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

// Per-thread work space for the tiles of one call, sized on the first tile.
template <typename T>
struct Scratch {
  Matrix<T> f;               // B x features
  Matrix<T> resp;            // B x K: log-densities, then responsibilities, then weighted
  Vector<T> max;             // B: the row's largest log-density
  Vector<T> sum;             // B: sum_k exp(v_k - max)
  Vector<T> lse;             // B: log p(x_n)
  Vector<T> diff;            // B: v_k - max of one column
  Vector<T> weight;          // B: sample weights in T
  Matrix<T> t;               // K x features
  IndexVector special_rows;  // rows whose log-densities are not all finite
  Matrix<T> special_resp;    // their responsibilities (row by row), from the scalar rules
  Vector<T> special_lse;
};

// sum_d log C(m, x_d); each term is the same double with or without the table.
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

// F and the log-densities log w_k + log p(x_n | k) of rows [begin, begin + rows) into s.resp.
template <typename T>
void log_densities(const TilePlan<T>& plan, std::int64_t begin, std::int64_t rows, Scratch<T>& s) {
  const int d = plan.d;
  Eigen::Map<const RowMatrix<T>> tile(plan.x + begin * d, rows, d);
  s.f.resize(rows, plan.features);
  if (plan.kind == FeatureKind::kRaw) {
    s.f = tile;
  } else {
    s.f.leftCols(d) = tile.rowwise() - Eigen::Map<const RowVector<T>>(plan.shift, d);
    if (plan.kind == FeatureKind::kPairs) {
      Eigen::Index j = d;
      for (int a = 0; a < d; ++a) {
        for (int b = a; b < d; ++b) s.f.col(j++) = s.f.col(a).cwiseProduct(s.f.col(b));
      }
    } else {
      s.f.rightCols(d) = s.f.leftCols(d).array().square();
    }
  }
  s.resp.noalias() = s.f * Eigen::Map<const Matrix<T>>(plan.w, plan.features, plan.k);
  s.resp.rowwise() += Eigen::Map<const RowVector<T>>(plan.bias, plan.k);
  if (plan.binomial) {
    for (std::int64_t i = 0; i < rows; ++i) {
      s.resp.row(i).array() +=
          static_cast<T>(log_binomial(plan.x + (begin + i) * d, d, plan.trials, plan.log_choose));
    }
  }
}

// s.resp (log-densities) -> responsibilities in place, and s.lse = log p(x_n), by the rules of
// core/pointwise.hpp: max and sum = sum_k exp_or_zero(v_k - max), p(k | x) = exp_or_zero(v_k -
// max) / sum, log p(x) = max + log(sum). Rows whose log-densities are all finite (every row of
// valid data, in practice) take a vectorised path; the others (a component with density zero, or
// +inf / NaN from overflowing data) the scalar functions themselves. labels (or null): the argmax
// of the log-densities, lowest index on ties.
template <typename T>
void responsibilities(const TilePlan<T>& plan, std::int64_t rows, Scratch<T>& s,
                      std::int32_t* labels) {
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
    Eigen::Index j = 0;
    for (std::int64_t i = 0; i < rows; ++i) {
      if (std::isfinite(s.sum[i])) continue;
      const LogSumExp<T> parts = log_sum_exp_parts(v + i, k, rows);
      for (int c = 0; c < k; ++c) s.special_resp(j, c) = responsibility(v[i + c * rows], parts);
      s.special_lse[j] = log_sum_exp_value(parts);
      s.special_rows[j++] = i;
    }
  }

  s.max = s.resp.col(0);
  for (int c = 1; c < k; ++c) s.max = s.max.cwiseMax(s.resp.col(c));
  s.sum.setZero(rows);
  s.diff.resize(rows);
  const T threshold = log_negligible<T>();
  for (int c = 0; c < k; ++c) {
    s.diff = s.resp.col(c) - s.max;
    s.resp.col(c) = s.diff.array().exp().matrix();  // Eigen's vectorised exp
    if (!plan.keep_negligible) {
      // exp_or_zero, as a loop the compiler vectorises (a blend).
      T* column = s.resp.col(c).data();
      const T* diff = s.diff.data();
      for (std::int64_t i = 0; i < rows; ++i) column[i] = diff[i] < threshold ? T(0) : column[i];
    }
    s.sum += s.resp.col(c);
  }
  for (int c = 0; c < k; ++c) s.resp.col(c).array() /= s.sum.array();
  s.lse = (s.max.array() + s.sum.array().log()).matrix();

  for (Eigen::Index j = 0; j < n_special; ++j) {
    s.resp.row(s.special_rows[j]) = s.special_resp.row(j);
    s.lse[s.special_rows[j]] = s.special_lse[j];
  }
}

// Adds the packed statistics of rows [begin, begin + rows) to slot.
template <typename T>
void add_tile_statistics(const TilePlan<T>& plan, std::int64_t begin, std::int64_t rows,
                         Scratch<T>& s, double* slot) {
  const int k = plan.k;
  log_densities(plan, begin, rows, s);
  responsibilities(plan, rows, s, nullptr);
  double log_likelihood = 0, weight_sum = 0;
  if (plan.sample_weight != nullptr) {
    const double* w = plan.sample_weight + begin;
    s.weight.resize(rows);
    for (std::int64_t i = 0; i < rows; ++i) {
      log_likelihood += weighted_log_prob(w[i], static_cast<double>(s.lse[i]));
      weight_sum += w[i];
      s.weight[i] = static_cast<T>(w[i]);
    }
    s.resp.array().colwise() *= s.weight.array();
  } else {
    for (std::int64_t i = 0; i < rows; ++i) log_likelihood += static_cast<double>(s.lse[i]);
    weight_sum = static_cast<double>(rows);
  }
  slot[0] += log_likelihood;
  slot[1] += weight_sum;
  const RowVector<T> nk = s.resp.colwise().sum();
  for (int c = 0; c < k; ++c) slot[2 + c] += static_cast<double>(nk[c]);
  s.t.noalias() = s.resp.transpose() * s.f;
  double* t_out = slot + 2 + k;
  const T* t_in = s.t.data();
  const std::int64_t size = static_cast<std::int64_t>(k) * plan.features;
  for (std::int64_t i = 0; i < size; ++i) t_out[i] += static_cast<double>(t_in[i]);
}

template <typename T>
std::int64_t tile_count(const TilePlan<T>& plan) {
  return (plan.n + plan.block_rows - 1) / plan.block_rows;
}

template <typename T>
void add_statistics(const TilePlan<T>& plan, std::int64_t first, std::int64_t stride,
                    double* slot) {
  Scratch<T> s;
  const std::int64_t n_tiles = tile_count(plan);
  for (std::int64_t t = first; t < n_tiles; t += stride) {
    const std::int64_t begin = t * plan.block_rows;
    add_tile_statistics(plan, begin, std::min(plan.block_rows, plan.n - begin), s, slot);
  }
}

template <typename T>
void evaluate(const TilePlan<T>& plan, std::int64_t first, std::int64_t last, double* log_prob,
              double* resp, std::int32_t* labels) {
  Scratch<T> s;
  const int k = plan.k;
  for (std::int64_t t = first; t < last; ++t) {
    const std::int64_t begin = t * plan.block_rows;
    const std::int64_t rows = std::min(plan.block_rows, plan.n - begin);
    log_densities(plan, begin, rows, s);
    responsibilities(plan, rows, s, labels != nullptr ? labels + begin : nullptr);
    if (log_prob != nullptr) {
      for (std::int64_t i = 0; i < rows; ++i) {
        log_prob[begin + i] = static_cast<double>(s.lse[i]);
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

}  // namespace

const Kernels<float>& table_f32() {
  static const Kernels<float> table{IsaLevel::EMIX_CPU_KERNELS_LEVEL, &add_statistics<float>,
                                    &evaluate<float>};
  return table;
}

const Kernels<double>& table_f64() {
  static const Kernels<double> table{IsaLevel::EMIX_CPU_KERNELS_LEVEL, &add_statistics<double>,
                                     &evaluate<double>};
  return table;
}

}  // namespace emix::cpu::EMIX_CPU_KERNELS_NAMESPACE
