// The CPU engine: Eigen GEMMs on tiles of rows, OpenMP across tiles.
//
// Every family is two GEMMs per tile around one feature matrix F (B x P) built from the tile:
//   log-densities   L = F W + b        (B x K; W and b from the model, see make_plan)
//   statistics      T = G^T F          (K x P; G the weighted responsibilities)
// For Gaussians F = [u, products of u] with u = x - m0, m0 one shift fixed by the data (a median
// of sampled rows, data_shift), so that the quadratic form (x - mu)^T P (x - mu) is linear in F:
//   full / tied: F = [u_1..u_D, u_a u_b for a <= b];  diag / spherical: F = [u, u^2].
// T then holds sum g u and sum g (u u^T) (packed); they are moved from m0 to the centres c_k
// once per pass, in double. Bernoulli / binomial: F = x, W = logit^T.
//
// Accuracy: the expansion's terms for a row of component k are of the size of w^T |P_k| w, w =
// |m0 - c_k| + sd_k (ExpansionCost: the squared distance of m0 from the component, or the
// condition of correlated features), and cancel to about 1, losing eps times that. A model whose
// cost is too large for its arithmetic is expanded about one of its components' means
// (expansion_point); where no point serves, it runs in double (a float engine's model), component
// by component (cpu::FeatureKind::kDirectFull / kDirectDiag: U_k^T (x - mu_k), statistics about the
// centres). Statistics whose move to the centres lost a tightening covariance's digits are taken
// again that way (unpack). evaluate() expands about the model's mean of means instead of m0, so
// that a row's results never depend on which other rows the call holds.
//
// Determinism: tiles have a size fixed by (K, D, element type), never by the thread count.
// Slot s of n_slots (fixed by the shape) holds the tiles that start in rows [s N / n_slots,
// (s + 1) N / n_slots), each slot walking its tiles in increasing order, and the slots are summed
// in slot order, so results are bitwise independent of n_threads. Several models share a pass
// (accumulate_many) by walking the same slot's rows together, and the models of one covariance
// type build each tile's F once: their F is the same, the shift being the data's.
//
// Speed on every data set and CPU: the tiles' work (cpu_kernels_impl.hpp) is compiled for
// several instruction-set levels and the highest one the CPU supports runs (cpu_dispatch.cpp).
// Negligible responsibilities are exactly zero (core/pointwise.hpp, exp_or_zero), and every
// thread of a call runs with FTZ / DAZ set (fp_environment.hpp), its caller's mode restored
// after: no subnormal number reaches a matrix product, where each costs a microcode assist.
#include "cpu/cpu_engine.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "core/engine.hpp"
#include "core/threads.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

int cpu::feature_count(Family family, Covariance covariance, int d) {
  if (family != Family::kGaussian) return d;
  if (covariance != Covariance::kFull && covariance != Covariance::kTied) return 2 * d;
  // In int, D (D + 1) wrapped from D = 46,341 (a negative count), and at 65,535 the count itself
  // does not fit (it was 32,767): slots that small were written D (D + 1) / 2 pairs each.
  const std::int64_t features = d + std::int64_t{d} * (d + 1) / 2;
  if (features > std::numeric_limits<int>::max()) {
    throw InvalidArgument("a " + std::string(covariance == Covariance::kFull ? "full" : "tied") +
                          " Gaussian over " + std::to_string(d) +
                          " features: the CPU engine takes full and tied covariances over at "
                          "most 65,534 features (its D + D (D + 1) / 2 products of features "
                          "are counted in int); use diag or spherical");
  }
  return static_cast<int>(features);
}

namespace {

using cpu::FeatureKind;
using cpu::IsaLevel;
using cpu::TilePlan;

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

bool quadratic_pairs(const PreparedModel& p) {
  return p.family == Family::kGaussian &&
         (p.covariance == Covariance::kFull || p.covariance == Covariance::kTied);
}

int feature_count(const PreparedModel& p) {
  return cpu::feature_count(p.family, p.covariance, p.d);
}

// What one pass needs, in the data's element type.
template <typename T>
struct Plan {
  int features = 0;
  RowVector<double> shift;  // m0, 1 x D (zero for Bernoulli / binomial)
  Matrix<T> w;              // features x K
  RowVector<T> bias;        // 1 x K
  RowVector<T> shift_t;     // m0 in T, as the kernels subtract it
  // The largest size of the terms a log-density sums, which cancel to its value: the log-densities
  // (and the statistics moved to the centres) lose about eps_T times it.
  //   Gaussian: (m0 - mu_k)^T P_k (m0 - mu_k), the squared Mahalanobis distance of the shift from
  //   a component, the size of a nearby row's features' terms.
  //   Bernoulli / binomial: m sum_d |logit_kd| + |bias_k| (the x logit terms of up to m each and
  //   m sum_d log(1 - p_kd)): 2e4 for m = 1000 and D = 5, against log-densities of about -20.
  double max_kappa = 0;
  // Binomial: log C(m, v) for v = 0..m, so that a row's k-independent term is D lookups rather
  // than 2 D lgamma calls (which made the binomial E-step 4x the Bernoulli one). Null for
  // other families, and for m beyond kMaxLogChooseTable (then lgamma per entry).
  std::shared_ptr<const std::vector<double>> log_choose;
  // Bernoulli / binomial: the bias in double, and whether a float plan's kernels add its float
  // sums of x w to it in double (TilePlan::raw_bias), so that its rounding is judged on those sums
  // alone (max_kappa without the bias).
  RowVector<double> raw_bias;
  bool bias_in_double = false;
  // A Gaussian model no expansion point serves (expansion_point), computed component by
  // component (cpu::FeatureKind::kDirectFull / kDirectDiag): its means and centres in T, and
  // its U_k (full: K blocks of D x D; tied: one) or 1 / sd_k (diag, spherical: K x D); bias is
  // log w_k + log-normaliser_k, and the statistics come about the centres.
  bool direct = false;
  RowMatrix<T> means_t, centres_t, u_t;
  std::int64_t u_stride = 0;
  // Direct full / tied: the bias in double, and in float, each component centred on its own
  // mean, U_k^T (mu_k - means_t_k) (cpu::TilePlan::direct_bias, mean_residuals).
  RowVector<double> direct_bias;
  RowMatrix<double> mean_residuals;
  // Direct tied: z_k = U^T (mu_k - m), m = shift_t (cpu::TilePlan::projected_means); empty where
  // each component is centred on its own mean.
  RowMatrix<T> projected_means_t;
};

constexpr int kMaxLogChooseTable = 1 << 20;

// The largest |x - shift| over the values of x (NaN skipped; an infinite value gives infinity).
// Each column's extreme is at its least or greatest value, which one pass finds: element e of
// the rows goes to lane e mod L, L a whole number of rows, so that the loop over lanes is
// elementwise and vectorises (a reduction over floats would not, without -ffast-math) and reads
// the data at memory speed. A chunked fit builds an engine, and so takes this pass, for every
// chunk on every iteration: a scalar loop cost 10x more, 40% of a float32 diag pass.
double largest_distance(const float* x, std::int64_t n, int d, const RowVector<double>& shift) {
  const int lanes = (64 + d - 1) / d * d;
  std::vector<float> least(lanes, std::numeric_limits<float>::infinity());
  std::vector<float> greatest(lanes, -std::numeric_limits<float>::infinity());
  float* lo = least.data();
  float* hi = greatest.data();
  const std::int64_t count = n * d;
  const std::int64_t whole = count / lanes * lanes;
  for (std::int64_t e = 0; e < whole; e += lanes) {
    const float* v = x + e;
    for (int t = 0; t < lanes; ++t) {  // a NaN compares false: skipped
      lo[t] = v[t] < lo[t] ? v[t] : lo[t];
      hi[t] = v[t] > hi[t] ? v[t] : hi[t];
    }
  }
  for (std::int64_t e = whole; e < count; ++e) {
    const int t = static_cast<int>(e - whole);
    lo[t] = x[e] < lo[t] ? x[e] : lo[t];
    hi[t] = x[e] > hi[t] ? x[e] : hi[t];
  }
  double largest = 0;
  for (int t = 0; t < lanes; ++t) {
    if (!(lo[t] <= hi[t])) continue;  // a lane that saw no value
    const double s = shift[t % d];
    largest = std::max({largest, std::abs(static_cast<double>(lo[t]) - s),
                        std::abs(static_cast<double>(hi[t]) - s)});
  }
  return largest;
}

// Whether a float pass's sums of w u^2 (u = x - shift) could pass 2^100, short of float's 2^128:
// the largest weight times the largest u^2 times the rows. Weights of 1e29 over rows of size
// 1e3 overflowed (NaN), within the weights' own range; as could rows of 1e17 unweighted (or a
// row of infinity, which evaluate() then names, in double).
bool float_sums_could_overflow(const float* x, std::int64_t n, int d,
                               const RowVector<double>& shift, const double* sample_weight) {
  const double largest_u = largest_distance(x, n, d, shift);
  double largest_w = 1;
  if (sample_weight != nullptr) {
    largest_w = 0;
    for (std::int64_t i = 0; i < n; ++i) largest_w = std::max(largest_w, sample_weight[i]);
  }
  return largest_w * largest_u * largest_u * static_cast<double>(n) > std::ldexp(1.0, 100);
}

// The engine's shift m0: per column, the median of the finite values in 16 runs of rows spread
// evenly over the data (all of it when smaller), 64 rows a run up to D = 256 and fewer beyond,
// down to 4 (about 2^18 values in all). Any point among the data keeps u = x - m0 small; a
// median, so that one huge value (a row that overflows and that evaluate() must name) does not
// move every row's u; and a shift fixed by the data, not the model, so that every model over the
// same rows builds the same features, which a pass of several models then builds once per tile.
// Contiguous runs, so that data mapped from a file is read in a few places, not 1024; columns
// gathered 8 at a time, a cache line of each row. Column by column over 1024 rows it took 36 ms
// of a fit of 1000 x 2048 (eight iterations' time; bench/wide_small_fits.py).
template <typename T>
RowVector<double> data_shift(const T* x, std::int64_t n, int d) {
  constexpr std::int64_t kRuns = 16;
  const std::int64_t run_rows =
      std::clamp<std::int64_t>((std::int64_t{1} << 18) / (kRuns * d), 4, 64);
  std::vector<std::int64_t> rows;
  if (n <= kRuns * run_rows) {
    for (std::int64_t i = 0; i < n; ++i) rows.push_back(i);
  } else {
    for (std::int64_t r = 0; r < kRuns; ++r) {
      const std::int64_t begin = r * (n - run_rows) / (kRuns - 1);
      for (std::int64_t i = begin; i < begin + run_rows; ++i) rows.push_back(i);
    }
  }
  const std::size_t m = rows.size();
  constexpr int kColumns = 8;
  RowVector<double> shift = RowVector<double>::Zero(d);
  std::vector<double> block(kColumns * m);
  std::vector<std::size_t> count(kColumns);
  for (int j0 = 0; j0 < d; j0 += kColumns) {
    const int width = std::min(kColumns, d - j0);
    std::fill(count.begin(), count.end(), 0);
    for (const std::int64_t i : rows) {
      const T* row = x + i * d + j0;
      for (int c = 0; c < width; ++c) {
        const double v = static_cast<double>(row[c]);
        if (std::isfinite(v)) block[c * m + count[c]++] = v;
      }
    }
    for (int c = 0; c < width; ++c) {
      if (count[c] == 0) continue;
      const auto begin = block.begin() + static_cast<std::ptrdiff_t>(c * m);
      const auto end = begin + static_cast<std::ptrdiff_t>(count[c]);
      const auto upper = begin + static_cast<std::ptrdiff_t>(count[c] / 2);
      std::nth_element(begin, upper, end);
      double& value = shift[j0 + c];
      value = *upper;
      if (count[c] % 2 == 0) {  // of the two middle values, the one nearer 0 (1 of 2 huge)
        const double lower = *std::max_element(begin, upper);
        if (std::abs(lower) < std::abs(value)) value = lower;
      }
    }
  }
  return shift;
}

// A shift fixed by the model alone, for evaluate(): its weighted mean of the means, so that a
// row's results never depend on the other rows of the call (the data's median did: three rows
// at 1e9 among five moved it, and the two ordinary rows' log-densities with it). Zero where the
// sum overflows (means near the largest double).
RowVector<double> model_shift(const PreparedModel& p) {
  RowVector<double> shift = RowVector<double>::Zero(p.d);
  if (p.family != Family::kGaussian) return shift;
  Eigen::Map<const RowMatrix<double>> means(p.means.data(), p.k, p.d);
  for (int c = 0; c < p.k; ++c) shift += std::exp(p.log_weights[c]) * means.row(c);
  if (!shift.allFinite()) shift.setZero();
  return shift;
}

// Whether a float engine runs this model's pass in double (over its float rows): when float's
// rounding, times the size of the terms that cancel (Plan::max_kappa), could exceed float32's
// tolerance (core/prepared_model.hpp). Well-separated clusters do this: 1e4 rows at 0 and 1e4
// at 10 with sd 0.01 (1000 sd apart) had covariances 7 % off; and binomial counts of up to
// 1000, whose log-likelihood was 2e-6 off with every parameter exact.
template <typename T>
bool float_loses_accuracy(const Plan<T>& plan) {
  return std::is_same_v<T, float> && float_loses_digits(plan.max_kappa);
}

// What the expansion about a point s costs a Gaussian model's digits. A row u = x - s of
// component c sums the terms u_a u_b P_ab (and the linear ones), which cancel to the
// log-density: their size is about w^T |P_c| w with w = |mu_c - s| + sd_c (a row one standard
// deviation out), and the log-density loses eps times it. That is kappa_c = (mu_c - s)^T P_c
// (mu_c - s) for a component far from s, and sum_ab |P_ab| sd_a sd_b (the condition of its
// correlations) for correlated features, where P has large entries of both signs. The
// statistics, moved from s to the centres, lose the same relative to the covariance.
class ExpansionCost {
 public:
  explicit ExpansionCost(const PreparedModel& p) : p_(p), dense_(quadratic_pairs(p)) {
    if (p.family != Family::kGaussian) return;
    const int d = p.d;
    const int distinct = p.covariance == Covariance::kTied ? 1 : p.k;
    sd_.resize(distinct, d);
    if (!dense_) {  // diag, spherical: the precision is its diagonal, K x D (not K x D x D)
      diagonal_precision_.resize(distinct, d);
      for (int c = 0; c < distinct; ++c) {
        for (int a = 0; a < d; ++a) {
          const double inverse_sd = p.covariance == Covariance::kDiag
                                        ? p.prec_chol[static_cast<std::size_t>(c) * d + a]
                                        : p.prec_chol[static_cast<std::size_t>(c)];
          diagonal_precision_(c, a) = inverse_sd * inverse_sd;
          sd_(c, a) = 1.0 / inverse_sd;
        }
      }
      return;
    }
    abs_precision_.resize(static_cast<std::size_t>(distinct));
    for (int c = 0; c < distinct; ++c) {
      const Eigen::Map<const RowMatrix<double>> u(
          p.prec_chol.data() + static_cast<std::size_t>(c) * d * d, d, d);
      abs_precision_[static_cast<std::size_t>(c)] = (u * u.transpose()).cwiseAbs();
      // Sigma = U^-T U^-1: sd_a is the norm of column a of U^-1.
      const Matrix<double> inverse =
          u.triangularView<Eigen::Upper>().solve(Matrix<double>::Identity(d, d));
      sd_.row(c) = inverse.colwise().norm();
    }
  }

  double component(int c, const RowVector<double>& s) const {
    const int d = p_.d;
    const int own = p_.covariance == Covariance::kTied ? 0 : c;
    Vector<double> w(d);
    for (int a = 0; a < d; ++a) {
      w[a] = std::abs(p_.means[static_cast<std::size_t>(c) * d + a] - s[a]) + sd_(own, a);
    }
    if (!dense_) return diagonal_precision_.row(own).dot(w.cwiseAbs2().transpose());
    return w.dot(abs_precision_[static_cast<std::size_t>(own)] * w);
  }

  double largest(const RowVector<double>& s) const {
    double largest = 0;
    for (int c = 0; c < p_.k; ++c) largest = std::max(largest, component(c, s));
    return largest;
  }

 private:
  const PreparedModel& p_;
  bool dense_;
  std::vector<Matrix<double>> abs_precision_;  // full, tied: |P| per distinct covariance
  Matrix<double> diagonal_precision_;          // diag, spherical: P's diagonal, a row each
  Matrix<double> sd_;
};

// The largest expansion cost a model in arithmetic T may have: in double, eps times it within
// 1e-10 (scikit-learn parity's tolerance); in float, within float32's tolerance.
template <typename T>
double cost_limit() {
  const double bound = std::is_same_v<T, float> ? kFloat32Tolerance : 1e-10;
  return bound / static_cast<double>(std::numeric_limits<T>::epsilon());
}

// The point a Gaussian model's features are expanded about in arithmetic T, or none where no
// point serves (the model is then computed directly, component by component: in double; a float
// engine first runs it in double). `preferred` (the data's shift, which every model over the
// data shares, so that a pass of several models builds each tile's features once; or
// evaluate()'s model shift) unless its cost exceeds the limit; then the mean (rounded to T, as
// the kernels subtract it) of one of the four components costliest there, the first within the
// limit. A tight component away from the rest is the case one point serves (duplicated rows,
// their variance reg_covar: 100 rows at (1000, 1000) beside 500 around 0 had log-densities
// 8e-5 off in double about the data's median); two such components far apart, or correlated
// features, are computed directly. Bernoulli and binomial models keep `preferred` (zero).
// Full and tied models from D = 128 on run directly, as no expansion point could serve:
// the expansion's D (D + 3) / 2 features per row (1 MB at D = 512) leave its tiles a few rows and
// its products memory-bound. One thread, 8 components, 3 iterations: direct 2.7 s against 3.8 at
// D = 256 and 6.2 against 13.2 at D = 512, within 10 % of each other at D = 64-128, expanded 25 %
// faster at D = 32 (bench/results/cpu-direct-high-dimension-2026-12-02.md). A float engine runs
// them in float where that holds them (CpuEngine::float_direct_holds), else in double.
constexpr int kDirectFromFeatures = 128;

// A direct diag / spherical tile's rows, in bytes (CpuEngine::block_rows).
constexpr std::int64_t kDirectDiagTileBytes = 1 << 20;
bool direct_is_faster(const PreparedModel& p) {
  return p.family == Family::kGaussian && quadratic_pairs(p) && p.d >= kDirectFromFeatures;
}

template <typename T>
std::optional<RowVector<double>> expansion_point(const PreparedModel& p,
                                                 const RowVector<double>& preferred) {
  if (p.family != Family::kGaussian) return preferred;
  const ExpansionCost cost(p);
  const double limit = cost_limit<T>();
  if (cost.largest(preferred) <= limit) return preferred;
  std::vector<std::pair<double, int>> costliest;
  for (int c = 0; c < p.k; ++c) costliest.emplace_back(-cost.component(c, preferred), c);
  const std::size_t candidates = std::min<std::size_t>(4, costliest.size());
  std::partial_sort(costliest.begin(), costliest.begin() + static_cast<std::ptrdiff_t>(candidates),
                    costliest.end());
  for (std::size_t i = 0; i < candidates; ++i) {
    RowVector<double> candidate(p.d);
    for (int j = 0; j < p.d; ++j) {
      const double mean = p.means[static_cast<std::size_t>(costliest[i].second) * p.d + j];
      candidate[j] = static_cast<double>(static_cast<T>(mean));
    }
    if (candidate.allFinite() && cost.largest(candidate) <= limit) return candidate;
  }
  return std::nullopt;
}

template <typename T>
Plan<T> make_plan(const PreparedModel& p, const RowVector<double>& shift) {
  const int k = p.k, d = p.d;
  Plan<T> plan;
  plan.features = feature_count(p);
  plan.shift = RowVector<double>::Zero(d);
  Matrix<double> w = Matrix<double>::Zero(plan.features, k);
  RowVector<double> bias(k);
  for (int c = 0; c < k; ++c) bias[c] = p.log_norm[c] + p.log_weights[c];
  if (p.family == Family::kBinomial && p.trials <= kMaxLogChooseTable) {
    plan.log_choose = log_binomial_coefficient_table(p.trials);
  }
  if (p.family != Family::kGaussian) {
    w = Eigen::Map<const RowMatrix<double>>(p.logit.data(), k, d).transpose();
    plan.w = w.cast<T>();
    plan.bias = bias.cast<T>();
    plan.raw_bias = bias;
    plan.max_kappa = largest_discrete_terms(p);
    return plan;
  }
  Eigen::Map<const RowMatrix<double>> means(p.means.data(), k, d);
  plan.shift = shift;
  // Precision P = U U^T: D x D for full and tied (once for tied), its diagonal alone for diag
  // and spherical, whose D x D zeros cost K D^2 memory and time (2.6 GB and 18x scikit-learn's
  // time at K = 300, D = 1000).
  const bool dense = quadratic_pairs(p);
  Matrix<double> precision;
  Vector<double> diagonal(d);
  for (int c = 0; c < k; ++c) {
    if (p.covariance == Covariance::kFull || (p.covariance == Covariance::kTied && c == 0)) {
      const std::size_t offset = static_cast<std::size_t>(c) * d * d;
      Eigen::Map<const RowMatrix<double>> u(p.prec_chol.data() + offset, d, d);
      precision = u * u.transpose();
    } else if (p.covariance == Covariance::kDiag) {
      for (int j = 0; j < d; ++j) {
        const double inverse_sd = p.prec_chol[static_cast<std::size_t>(c) * d + j];
        diagonal[j] = inverse_sd * inverse_sd;
      }
    } else if (p.covariance == Covariance::kSpherical) {
      diagonal.setConstant(p.prec_chol[c] * p.prec_chol[c]);
    }
    // -0.5 (u - delta)^T P (u - delta) = -0.5 u^T P u + u^T P delta - 0.5 delta^T P delta
    const Vector<double> delta = (means.row(c) - plan.shift).transpose();
    const Vector<double> p_delta =
        dense ? Vector<double>(precision * delta) : Vector<double>(diagonal.cwiseProduct(delta));
    w.col(c).head(d) = p_delta;
    const double kappa = delta.dot(p_delta);
    bias[c] -= 0.5 * kappa;
    plan.max_kappa = std::max(plan.max_kappa, kappa);
    if (dense) {
      int j = d;
      for (int a = 0; a < d; ++a) {
        w(j++, c) = -0.5 * precision(a, a);
        for (int b = a + 1; b < d; ++b) w(j++, c) = -precision(a, b);
      }
    } else {
      for (int a = 0; a < d; ++a) w(d + a, c) = -0.5 * diagonal[a];
    }
  }
  plan.w = w.cast<T>();
  plan.bias = bias.cast<T>();
  plan.shift_t = plan.shift.template cast<T>();
  return plan;
}

// U (row-major, upper triangular) into cpu::triangle_panel_offset's panels.
template <typename T>
void pack_triangle(const double* u, int d, T* out) {
  for (int j0 = 0; j0 < d; j0 += cpu::kTrianglePanel) {
    const int width = std::min(cpu::kTrianglePanel, d - j0);
    T* panel = out + cpu::triangle_panel_offset(j0);
    for (int a = 0; a < j0 + width; ++a) {
      for (int w = 0; w < width; ++w) {
        panel[a * width + w] = static_cast<T>(u[std::int64_t{a} * d + j0 + w]);
      }
    }
  }
}

// A direct tied model's log-densities from one projection per row, y = U^T (x - m), and
// |y - z_k|^2 per component, z_k = U^T (mu_k - m): D (D + 1) / 2 + K D multiply-adds a row rather
// than K D (D + 1) / 2 (K = 4, D = 2048: 3.9x fewer). Entry j of y - z_k rounds to about
// eps sum_a |x_a - m_a| |U_aj|, against eps sum_a |x_a - mu_ka| |U_aj| where each component is
// centred on its own mean: the mean's offset adds about eps f_k, f_k = || |mu_k - m| |U| ||, to
// that vector's norm, and so about eps (f_k + sqrt(D)) sqrt(D) to the square (|y - z_k| being
// about sqrt(D) near the component): a size of what rounds, as cost_limit's, not a bound. Absolute
// values, as expansion_point's costs take |P|, not the Mahalanobis distance |z_k|: an
// ill-conditioned U maps a large offset to a small z_k while its rounding stays at the offset's
// size. That is taken within the expansion's limit for double (cost_limit, 1e-10 absolute), f up
// to 4.5e5 / sqrt(D) - sqrt(D) (10^4 at D = 2048); farther, each component is centred on its own
// mean. A float plan takes the same limit: whether float then holds the projection is measured
// (CpuEngine::float_direct_holds; a projection in double beats K in float at K > 2), and each
// component centred on its own mean takes its mean's rounding to float back (mean_residuals).
// m is the middle of the means' range in each feature, which keeps the largest offset small
// (the data's median, inside the larger of two clusters, gave 1.8 times it at D = 2048) and depends
// on the model alone.
template <typename T>
void take_tied_projection_once(const PreparedModel& p, Plan<T>& plan) {
  const int d = p.d;
  Eigen::Map<const RowMatrix<double>> u(p.prec_chol.data(), d, d);
  Eigen::Map<const RowMatrix<double>> means(p.means.data(), p.k, d);
  const RowVector<T> m_t =
      (0.5 * (means.colwise().minCoeff() + means.colwise().maxCoeff())).template cast<T>();
  const RowVector<double> m = m_t.template cast<double>();
  const RowMatrix<double> offsets = means.rowwise() - m;
  // || |mu_k - m| |U| || from U's upper triangle in place: no D x D temporaries each pass.
  RowVector<double> sizes(d);
  double farthest = 0;
  for (int c = 0; c < p.k; ++c) {
    sizes.setZero();
    for (int a = 0; a < d; ++a) {
      sizes.tail(d - a) += std::abs(offsets(c, a)) * u.row(a).tail(d - a).cwiseAbs();
    }
    const double size = sizes.norm();
    if (!std::isfinite(size)) return;
    farthest = std::max(farthest, size);
  }
  const double root_d = std::sqrt(static_cast<double>(d));
  if ((farthest + root_d) * root_d > cost_limit<double>()) return;
  plan.projected_means_t = (offsets * u.triangularView<Eigen::Upper>()).template cast<T>();
  plan.shift = m;
  plan.shift_t = m_t;
}

template <typename T>
Plan<T> make_direct_plan(const PreparedModel& p) {
  const int k = p.k, d = p.d;
  Plan<T> plan;
  plan.direct = true;
  plan.features = feature_count(p);
  plan.shift = RowVector<double>::Zero(d);
  plan.bias.resize(k);
  plan.direct_bias.resize(k);
  for (int c = 0; c < k; ++c) {
    plan.direct_bias[c] = p.log_norm[c] + p.log_weights[c];
    plan.bias[c] = static_cast<T>(plan.direct_bias[c]);
  }
  plan.means_t = Eigen::Map<const RowMatrix<double>>(p.means.data(), k, d).cast<T>();
  plan.centres_t = Eigen::Map<const RowMatrix<double>>(p.centres.data(), k, d).cast<T>();
  switch (p.covariance) {
    case Covariance::kFull:
      plan.u_stride = cpu::packed_triangle_size(d);
      plan.u_t.resize(k, plan.u_stride);
      for (int c = 0; c < k; ++c) {
        pack_triangle(p.prec_chol.data() + std::int64_t{c} * d * d, d, plan.u_t.row(c).data());
      }
      break;
    case Covariance::kTied:
      plan.u_t.resize(1, cpu::packed_triangle_size(d));
      pack_triangle(p.prec_chol.data(), d, plan.u_t.data());
      take_tied_projection_once(p, plan);
      break;
    case Covariance::kDiag:
      plan.u_t = Eigen::Map<const RowMatrix<double>>(p.prec_chol.data(), k, d).cast<T>();
      break;
    case Covariance::kSpherical:
      plan.u_t.resize(k, d);
      for (int c = 0; c < k; ++c) plan.u_t.row(c).setConstant(static_cast<T>(p.prec_chol[c]));
      break;
  }
  if (!std::is_same_v<T, double> && quadratic_pairs(p) && plan.projected_means_t.size() == 0) {
    plan.mean_residuals.resize(k, d);
    const RowMatrix<double> offsets = Eigen::Map<const RowMatrix<double>>(p.means.data(), k, d) -
                                      plan.means_t.template cast<double>();
    for (int c = 0; c < k; ++c) {
      const std::int64_t at = p.covariance == Covariance::kFull ? std::int64_t{c} * d * d : 0;
      const Eigen::Map<const RowMatrix<double>> u(p.prec_chol.data() + at, d, d);
      plan.mean_residuals.row(c).noalias() = offsets.row(c) * u.triangularView<Eigen::Upper>();
    }
  }
  return plan;
}

FeatureKind feature_kind(const PreparedModel& p) {
  if (p.family != Family::kGaussian) return FeatureKind::kRaw;
  return quadratic_pairs(p) ? FeatureKind::kPairs : FeatureKind::kSquares;
}

template <typename T>
const cpu::Kernels<T>& kernels_for(IsaLevel level) {
  if constexpr (std::is_same_v<T, float>) {
    return cpu::kernels_f32(level);
  } else {
    return cpu::kernels_f64(level);
  }
}

// FTZ / DAZ on the calling thread or a worker, unless the test-only reference keeps subnormals.
class MaybeFlushDenormals {
 public:
  explicit MaybeFlushDenormals(bool flush) {
    if (flush) guard_.emplace();
  }

 private:
  std::optional<cpu::ScopedFlushDenormals> guard_;
};

template <typename T>
class CpuEngine final : public Engine {
 public:
  CpuEngine(const DataView& x, const double* sample_weight, const EngineOptions& options,
            const cpu::CpuEngineSettings& settings)
      : data_(static_cast<const T*>(x.data)),
        n_(x.rows),
        d_(static_cast<int>(x.cols)),
        weight_(sample_weight),
        options_(options),
        kernels_(kernels_for<T>(settings.level ? *settings.level : cpu::level_from_environment())),
        keep_negligible_(settings.keep_negligible),
        slot_memory_bytes_(settings.slot_memory_bytes) {
    threads_ = usable_threads(options.n_threads);
    // Inside the caller's parallel region at OpenMP's nesting limit (one active level, by
    // default), a region of ours runs on one thread whatever it asks: name() says so.
    if (omp_get_active_level() >= omp_get_max_active_levels()) threads_ = 1;
    if constexpr (std::is_same_v<T, float>) {
      promoted_kernels_ = &cpu::kernels_f64(kernels_.level);
      weights_outside_float_ = weights_outside_float_range(sample_weight, n_);
      if (d_ >= kDirectFromFeatures && n_ >= kFloatDirectFromRows) {
        probe_rows_.resize(kProbeRows, d_);
        for (std::int64_t r = 0; r < kProbeRows; ++r) {
          probe_rows_.row(r) = Eigen::Map<const RowVector<float>>(
              data_ + (r * n_ / kProbeRows) * std::int64_t{d_}, d_);
        }
        if (sample_weight != nullptr) {
          weight_total_ = 0;
          weight_max_ = 0;
          for (std::int64_t i = 0; i < n_; ++i) {
            weight_total_ += sample_weight[i];
            weight_max_ = std::max(weight_max_, sample_weight[i]);
          }
        } else {
          weight_total_ = static_cast<double>(n_);
        }
      }
    }
  }

  // "cpu (2 threads, avx512)": the kernels' instruction-set level is part of what ran.
  std::string name() const override {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread, " : " threads, ") +
           cpu::to_string(kernels_.level) + (keep_negligible_ ? ", keeping subnormals)" : ")");
  }

  void accumulate(const PreparedModel& model, double* stats) override {
    accumulate_many({&model}, {stats});
  }

  // Models with the same slot count and element type walk each slot's rows together (the
  // kernels' windows), so that one read of a tile serves them all; every model's slots receive
  // the same tiles in the same order as alone, so its statistics are bitwise those of
  // accumulate(). A float engine runs a model that float arithmetic would not hold in double.
  void accumulate_many(const std::vector<const PreparedModel*>& models,
                       const std::vector<double*>& stats) override {
    const MaybeFlushDenormals caller_guard(!keep_negligible_);
    // Reserved once: the tile plans point into the plans.
    std::vector<Pass<T>> passes;
    std::vector<Pass<double>> promoted;
    std::vector<bool> is_promoted(models.size(), false);
    passes.reserve(models.size());
    promoted.reserve(models.size());
    for (std::size_t i = 0; i < models.size(); ++i) {
      const PreparedModel& model = *models[i];
      const RowVector<double>& shift = features_shift(model);
      std::optional<Plan<T>> plan;
      if (!rows_need_double(model)) plan = plan_in<T>(model, shift);
      if (!plan) {  // a float engine's model that float would not hold
        is_promoted[i] = true;
        promoted.emplace_back();
        fill_pass(model, *plan_in<double>(model, shift), promoted.back());
        continue;
      }
      passes.emplace_back();
      fill_pass(model, std::move(*plan), passes.back());
    }
    run_passes(passes, kernels_);
    if constexpr (std::is_same_v<T, float>) run_passes(promoted, *promoted_kernels_);
    std::size_t next = 0, next_promoted = 0;
    std::vector<std::size_t> again;
    for (std::size_t i = 0; i < models.size(); ++i) {
      const bool kept = is_promoted[i]
                            ? unpack_pass(*models[i], promoted[next_promoted++], stats[i])
                            : unpack_pass(*models[i], passes[next++], stats[i]);
      if (!kept) again.push_back(i);
    }
    if (again.empty()) return;
    // Statistics whose move to the centres lost the digits of a covariance much tighter than the
    // model's (a broad start over duplicated rows far away, whose next covariance is reg_covar):
    // the pass again, those models component by component, in double.
    std::vector<Pass<double>> direct;
    direct.reserve(again.size());
    for (const std::size_t i : again) {
      direct.emplace_back();
      fill_pass(*models[i], make_direct_plan<double>(*models[i]), direct.back());
    }
    run_passes(direct, double_kernels());
    for (std::size_t j = 0; j < again.size(); ++j) {
      unpack_pass(*models[again[j]], direct[j], stats[again[j]]);
    }
  }

  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    const MaybeFlushDenormals caller_guard(!keep_negligible_);
    const RowVector<double> shift = model_shift(model);
    // The shift as T holds it: the kernels subtract shift_t, and the plan's weights must be
    // about that point, not about the double it was rounded from (a bias of P (float(m) - m)
    // in every log-density, 3e-3 at offsets of 1e4). Data values, as the data's median is,
    // need no rounding.
    RowVector<double> shift_in_t = shift.template cast<T>().template cast<double>();
    if (!shift_in_t.allFinite()) shift_in_t.setZero();  // means near the largest double
    std::shared_ptr<const std::optional<Plan<T>>> plan;
    if (!evaluation_needs_double(shift_in_t)) plan = evaluation_plan<T>(model, shift_in_t);
    if constexpr (std::is_same_v<T, float>) {
      if (plan == nullptr || !*plan) {
        evaluate_with(model, **evaluation_plan<double>(model, shift), *promoted_kernels_, log_prob,
                      resp, labels);
        return;
      }
    }
    evaluate_with(model, **plan, kernels_, log_prob, resp, labels);
  }

  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override {
    for (std::int64_t i = 0; i < count; ++i) {
      for (int j = 0; j < d_; ++j) {
        out[i * d_ + j] = static_cast<double>(data_[idx[i] * d_ + j]);
      }
    }
  }

 private:
  // The point a pass's features are taken about: the data's shift m0 for a Gaussian model, found
  // on the first such pass; zero for a Bernoulli or binomial one, whose plans read no shift.
  // evaluate() expands about the model's mean instead (evaluation_needs_double), so that a
  // predict or score never sorts the sampled columns (data_shift: 70 % of a 500 x 784 Bernoulli
  // predict's time).
  const RowVector<double>& features_shift(const PreparedModel& model) {
    if (model.family != Family::kGaussian) {
      if (zero_shift_.size() != d_) zero_shift_ = RowVector<double>::Zero(d_);
      return zero_shift_;
    }
    if (!data_shift_) data_shift_ = data_shift(data_, n_, d_);
    return *data_shift_;
  }

  // Whether a float engine runs `model` in double whatever the model: weights beyond what float
  // multiplies safely, or sums over the rows that could pass float's range
  // (float_sums_could_overflow), about the features' shift (a Bernoulli or binomial model's
  // values, 0 to trials, about 0); each found once, on first use.
  bool rows_need_double(const PreparedModel& model) {
    if constexpr (!std::is_same_v<T, float>) {
      return false;
    } else {
      if (weights_outside_float_) return true;
      std::optional<bool>& known =
          model.family == Family::kGaussian ? gaussian_sums_overflow_ : discrete_sums_overflow_;
      if (!known) {
        known = float_sums_could_overflow(data_, n_, d_, features_shift(model), weight_);
      }
      return *known;
    }
  }

  // evaluate()'s counterpart of rows_need_double: the same guard about the point evaluate()
  // expands about (the model's mean, `shift`), from one scan of the rows, without the data's
  // shift and its sort.
  bool evaluation_needs_double(const RowVector<double>& shift) const {
    if constexpr (!std::is_same_v<T, float>) {
      (void)shift;
      return false;
    } else {
      return weights_outside_float_ || float_sums_could_overflow(data_, n_, d_, shift, weight_);
    }
  }

  // evaluate()'s plan_in<U>(model, shift): kept in the model's engine cache where it has one and
  // the plan depends on the model alone (shift is the model's; a float plan of the direct path
  // depends on the data's probe rows, and is made per call).
  template <typename U>
  std::shared_ptr<const std::optional<Plan<U>>> evaluation_plan(
      const PreparedModel& model, const RowVector<double>& shift) const {
    const auto make = [&] { return plan_in<U>(model, shift); };
    const bool kept =
        model.engine_cache != nullptr && (std::is_same_v<U, double> || !direct_is_faster(model));
    if (!kept) return std::make_shared<const std::optional<Plan<U>>>(make());
    // The instruction-set level decides a float plan's bias (Kernels::takes_raw_bias); a float
    // engine's double plan (its model promoted) is about another shift than a double engine's.
    const std::string key = std::string("cpu evaluate: ") +
                            (std::is_same_v<T, float> ? "float data, " : "double data, ") +
                            (std::is_same_v<U, float> ? "float plan, " : "double plan, ") +
                            cpu::to_string(kernels_.level);
    return model.engine_cache->get_or_make<std::optional<Plan<U>>>(key, make);
  }

  // A model's plan in arithmetic U about an expansion point (`preferred` where it serves), or in
  // double component by component; none for float where float would not hold the model (its
  // expansion, its Bernoulli or binomial terms), which then runs in double.
  template <typename U>
  std::optional<Plan<U>> plan_in(const PreparedModel& model,
                                 const RowVector<double>& preferred) const {
    // Not asked where the direct path runs anyway: the expansion's cost takes P_k = U_k U_k^T
    // and U_k^-1 for each component, 3 D^3 multiply-adds, a third of an iteration's time at
    // D = 2048, N = 4000. A float model there runs directly, in float where float holds it,
    // else in double: asking first took more than half of a float fit's time at that shape, 2.4x
    // the double fit's.
    if (direct_is_faster(model)) {
      if constexpr (std::is_same_v<U, double>) {
        return make_direct_plan<double>(model);
      } else {
        if (probe_rows_.rows() == 0) return std::nullopt;
        std::vector<double> weights(model.k);
        for (int c = 0; c < model.k; ++c) weights[c] = std::exp(model.log_weights[c]);
        if (few_rows_per_feature(model, weights, 1.0)) return std::nullopt;
        Plan<float> plan = make_direct_plan<float>(model);
        if (!float_direct_holds(model, plan)) return std::nullopt;
        return plan;
      }
    }
    const std::optional<RowVector<double>> point = expansion_point<U>(model, preferred);
    if constexpr (std::is_same_v<U, double>) {
      if (!point) return make_direct_plan<double>(model);
      return make_plan<double>(model, *point);
    } else {
      if (!point) return std::nullopt;
      Plan<U> plan = make_plan<U>(model, *point);
      // A Bernoulli / binomial model whose terms float would not hold with its bias, at a level
      // whose kernels add its float sums of x w to the bias in double (Kernels::takes_raw_bias):
      // its rounding is then that of x w alone.
      if (model.family != Family::kGaussian && kernels_.takes_raw_bias &&
          float_loses_accuracy(plan)) {
        plan.bias_in_double = true;
        plan.max_kappa = largest_discrete_terms(model, /*with_bias=*/false);
      }
      if (float_loses_accuracy(plan)) return std::nullopt;
      return plan;
    }
  }

  // One model's share of a pass, in arithmetic U (T, or double for a promoted float model): its
  // plan, and its slots' packed sums.
  template <typename U>
  struct Pass {
    Plan<U> plan;
    TilePlan<U> tiles;
    std::size_t packed = 0;
    std::int64_t n_slots = 1;
    std::vector<double> slots;
  };

  template <typename U>
  void fill_pass(const PreparedModel& model, Plan<U>&& plan, Pass<U>& pass) const {
    pass.plan = std::move(plan);
    pass.tiles = tile_plan(model, pass.plan);
    pass.packed = static_cast<std::size_t>(cpu::packed_size(model.k, pass.plan.features));
    // No more slots than the power of two at or above the tile count: each slot then holds one
    // tile at most, as it would among 64, so the sums are bitwise the same, but a small problem
    // no longer zeroes and adds 64 slots a pass (500 x 784 Bernoulli K = 10, 4 MB of slots for
    // 8 tiles: a third of its iteration).
    const std::int64_t tiles = (n_ + pass.tiles.block_rows - 1) / pass.tiles.block_rows;
    std::int64_t needed = 1;
    while (needed < tiles) needed *= 2;
    pass.n_slots = std::min(slot_count(pass.packed), needed);
    pass.slots.assign(static_cast<std::size_t>(pass.n_slots) * pass.packed, 0.0);
  }

  // The passes' slots filled: the passes with the same slot count together, slot by slot.
  template <typename U>
  void run_passes(std::vector<Pass<U>>& passes, const cpu::Kernels<U>& kernels) {
    std::vector<std::int64_t> slot_counts;
    for (const Pass<U>& pass : passes) slot_counts.push_back(pass.n_slots);
    std::sort(slot_counts.begin(), slot_counts.end());
    slot_counts.erase(std::unique(slot_counts.begin(), slot_counts.end()), slot_counts.end());
    for (const std::int64_t n_slots : slot_counts) {
      std::vector<std::size_t> members;
      std::vector<TilePlan<U>> plans;
      for (std::size_t i = 0; i < passes.size(); ++i) {
        if (passes[i].n_slots != n_slots) continue;
        members.push_back(i);
        plans.push_back(passes[i].tiles);
      }
      const int count = static_cast<int>(members.size());
      double work = 0;
      for (const TilePlan<U>& plan : plans) {
        work += static_cast<double>(n_) * plan.k * plan.features;
      }
      const int threads = threads_for(work);
      // Direct full and tied models large enough to have fewer slots than threads (one at
      // D = 2048, K = 2: 34 MB each) share each tile among the threads instead; the slots then
      // run one after another.
      const bool share_tiles =
          n_slots < threads && std::all_of(plans.begin(), plans.end(), [](const TilePlan<U>& p) {
            return p.kind == FeatureKind::kDirectFull;
          });
      std::vector<double*> sums(members.size());
      std::vector<std::int64_t> packed(members.size());
      for (int m = 0; m < count; ++m) {
        sums[m] = passes[members[m]].slots.data();
        packed[m] = static_cast<std::int64_t>(passes[members[m]].packed);
      }
      const cpu::SlotLayout layout{n_, sums.data(), packed.data()};
      cpu::WorkQueue slot_queue{n_slots};
      if (share_tiles) {
        // Called outside any parallel region, so that the kernels' own regions reuse OpenMP's
        // threads (nested in a region of one, each started threads afresh).
        for (TilePlan<U>& plan : plans) plan.threads = threads;
        const MaybeFlushDenormals guard(!keep_negligible_);
        kernels.add_statistics(plans.data(), count, layout, slot_queue);
        cpu::rethrow_if_stopped(slot_queue);
        continue;
      }
#pragma omp parallel num_threads(threads)
      {
        const MaybeFlushDenormals worker_guard(!keep_negligible_);
        kernels.add_statistics(plans.data(), count, layout, slot_queue);
      }
      cpu::rethrow_if_stopped(slot_queue);
    }
  }

  // A pass's slots summed in slot order, into the statistics layout; whether the move to the
  // centres kept the digits of each component's scatter (unpack).
  template <typename U>
  bool unpack_pass(const PreparedModel& model, const Pass<U>& pass, double* stats) const {
    std::vector<double> total(pass.packed, 0.0);
    for (std::int64_t s = 0; s < pass.n_slots; ++s) {
      const double* slot = &pass.slots[static_cast<std::size_t>(s) * pass.packed];
      for (std::size_t j = 0; j < pass.packed; ++j) total[j] += slot[j];
    }
    const bool by_components = pass.plan.direct && quadratic_pairs(model);
    // A direct plan's sums are about its centres as U holds them.
    const RowMatrix<double> centres_taken = pass.plan.centres_t.template cast<double>();
    const bool kept = unpack(model, pass.plan.shift, pass.plan.direct ? &centres_taken : nullptr,
                             by_components, pass.tiles.shared_quadratic, pass.plan.features, total,
                             stats, std::numeric_limits<U>::epsilon(),
                             cost_limit<U>() * std::numeric_limits<U>::epsilon());
    if constexpr (!std::is_same_v<U, double>) {
      if (pass.plan.direct) {
        const double* counts = stats + model.layout.nk();
        return kept && !few_rows_per_feature(model, std::vector<double>(counts, counts + model.k),
                                             stats[StatisticsLayout::kWeightSum]);
      }
    }
    return kept;
  }

  // Whether a full model may have a component of under 2 D rows: its scatter is of rank below D,
  // or near it, with eigenvalues of reg_covar's size (1e-6) that float's rounding of the sums
  // (1e-7 of their size) turns negative. A float fit of 2 * 10^4 x 256, K = 8, from a start whose
  // components had 1 and 6 rows, re-seeded three components as singular that float64 kept
  // (bench/compare.py's full-2e4x256x8). Such a model, or pass, runs in double. A component
  // holding the share counts[c] / total of the data's weight has at least that weight over the
  // heaviest row's in rows: 50 rows of weight 200 among 8000 of weight 1 are 50 rows, not the 4500
  // their share of the weight would make them. A tied model's one scatter sums every component's
  // rows.
  bool few_rows_per_feature(const PreparedModel& model, const std::vector<double>& counts,
                            double total) const {
    if (model.covariance != Covariance::kFull) return false;
    if (!(total > 0 && weight_max_ > 0)) return true;
    for (const double count : counts) {
      const double rows = count / total * (weight_total_ / weight_max_);
      if (rows > 0 && rows < 2.0 * d_) return true;
    }
    return false;
  }

  // Whether float holds a direct full / tied model: on kProbeRows rows spread evenly over the
  // data, and on kRowsPerComponent points of each component one standard deviation out along
  // every axis of its covariance (x = mu_k + L_k z, z of +-1: what its own rows look like, where
  // the data's rows may miss a small component, rows sorted by class or a chunk), its log p(x) in
  // float within half float32's tolerance (1e-4) of double's, and its responsibilities within a
  // quarter (log-densities within t move them by at most t / 2). Half, as the probe's rows are
  // not all rows. The rounding of y = U^T (x - mu_k) in float is about eps times its terms, which
  // correlated features (an ill-conditioned U) or components with fewer rows than features (U's
  // directions outside their rows, 1 / sqrt(reg_covar) long) make much larger than y. Measured
  // rather than bounded: the bound (eps ||(|x - mu| |U|)|| |y|, as take_tied_projection_once's)
  // was 10^2 to 10^4 times the error seen at D = 256-2048
  // (bench/results/cpu-float-direct-2026-12-04.md), and would have refused float everywhere.
  bool float_direct_holds(const PreparedModel& model, const Plan<float>& plan) const {
    const int k = model.k, d = d_;
    const std::int64_t rows = kProbeRows + std::int64_t{kRowsPerComponent} * k;
    // The probe, a float and a double evaluation, costs about three float passes over its rows:
    // at most 5 % of the float pass it decides.
    if (rows * kRowsPerProbeRow > n_) return false;
    RowMatrix<float> x(rows, d);
    x.topRows(kProbeRows) = probe_rows_;
    Vector<double> z(d);
    for (int c = 0; c < k; ++c) {
      const std::int64_t at = model.covariance == Covariance::kFull ? std::int64_t{c} * d * d : 0;
      const Eigen::Map<const RowMatrix<double>> u(model.prec_chol.data() + at, d, d);
      const Eigen::Map<const RowVector<double>> mean(model.means.data() + std::int64_t{c} * d, d);
      for (int p = 0; p < kRowsPerComponent; ++p) {
        // Signs from a multiplicative hash: fixed, and unlike from one point to the next.
        for (int j = 0; j < d; ++j) {
          const std::uint32_t h = static_cast<std::uint32_t>((j + 1) * (p + 1)) * 2654435761u;
          z[j] = (h >> 15) & 1 ? 1.0 : -1.0;
        }
        // U^T (x - mu) = z, U upper triangular (U U^T the precision).
        const Vector<double> offset = u.transpose().triangularView<Eigen::Lower>().solve(z);
        x.row(kProbeRows + std::int64_t{c} * kRowsPerComponent + p) =
            (mean + offset.transpose()).template cast<float>();
      }
    }
    struct Evaluation {
      Vector<double> log_prob, resp;
    };
    const auto probe = [&](auto tiles, const auto& kernels, Evaluation& out) {
      tiles.n = rows;
      tiles.block_rows = rows;
      tiles.sample_weight = nullptr;
      tiles.threads = 1;
      out.log_prob.resize(rows);
      out.resp.resize(rows * k);
      cpu::WorkQueue one_run{1};
      kernels.evaluate(tiles, 1, one_run, out.log_prob.data(), out.resp.data(), nullptr);
      cpu::rethrow_if_stopped(one_run);  // stopped, its results were never written
    };
    Evaluation in_float, in_double;
    TilePlan<float> float_tiles = tile_plan(model, plan);
    float_tiles.x = x.data();
    probe(float_tiles, kernels_, in_float);
    const Plan<double> double_plan = make_direct_plan<double>(model);
    TilePlan<double> double_tiles = tile_plan(model, double_plan);
    double_tiles.x_float = x.data();
    probe(double_tiles, *promoted_kernels_, in_double);
    // Written so that NaN fails.
    const auto within = [](const Vector<double>& a, const Vector<double>& b, double tolerance) {
      for (Eigen::Index i = 0; i < a.size(); ++i) {
        if (!(std::abs(a[i] - b[i]) <= tolerance)) return false;
      }
      return true;
    };
    return within(in_float.log_prob, in_double.log_prob, 0.5 * kFloat32Tolerance) &&
           within(in_float.resp, in_double.resp, 0.25 * kFloat32Tolerance);
  }

  const cpu::Kernels<double>& double_kernels() const {
    if constexpr (std::is_same_v<T, double>) {
      return kernels_;
    } else {
      return *promoted_kernels_;
    }
  }

  template <typename U>
  void evaluate_with(const PreparedModel& model, const Plan<U>& plan,
                     const cpu::Kernels<U>& kernels, double* log_prob, double* resp,
                     std::int32_t* labels) {
    const TilePlan<U> tiles = tile_plan(model, plan);
    const std::int64_t n_tiles = (n_ + tiles.block_rows - 1) / tiles.block_rows;
    // Runs of consecutive tiles, several per thread for balance, and at least 64, so that an
    // interrupt check (taken between runs) answers within a 64th of the call; each thread keeps
    // its work space from one run to the next. Per-row results do not depend on how the tiles
    // are grouped.
    cpu::WorkQueue runs{std::min<std::int64_t>(n_tiles, std::max(64, 8 * threads_))};
    const int threads = threads_for(static_cast<double>(n_) * model.k * plan.features);
#pragma omp parallel num_threads(threads)
    {
      const MaybeFlushDenormals worker_guard(!keep_negligible_);
      kernels.evaluate(tiles, n_tiles, runs, log_prob, resp, labels);
    }
    cpu::rethrow_if_stopped(runs);
  }

  // Threads for a pass of about `work` multiply-adds (rows x components x features).
  int threads_for(double work) const { return threads_for_work(work, threads_); }

  // Slots bound a model's memory (settings.slot_memory_bytes, 64 MiB); a power of two up to 64,
  // fixed by the problem's shape, never by the thread count.
  std::int64_t slot_count(std::size_t packed) const {
    const std::int64_t fit =
        static_cast<std::int64_t>(slot_memory_bytes_ / (packed * sizeof(double)));
    std::int64_t n_slots = 1;
    while (n_slots < 64 && 2 * n_slots <= fit) n_slots *= 2;
    return n_slots;
  }

  // Rows per tile: the feature matrix stays near 256 KiB, within [64, 512] rows, so that it and
  // what the products read beside it share L2. Against the earlier 1 MiB / [32, 1024] rule, one
  // pass of accumulate() on compare.py's separated data, 2 threads, AVX-512, before the products
  // became the kernels' own: full D = 16, K = 16 float64 0.155-0.160 s against 0.168-0.185, diag
  // 0.062-0.066 against 0.068, float32 diag 0.026 against 0.029.
  template <typename U>
  std::int64_t block_rows(const PreparedModel& model, const Plan<U>& plan) const {
    if (options_.block_rows > 0) return options_.block_rows;
    if (plan.direct && !quadratic_pairs(model)) {
      // Direct diag / spherical: about D multiply-adds a row for each component, which reads the
      // tile's rows again (its log-densities, then its sums): memory-bound once the rows leave
      // L2. About 1 MiB of rows, 64 to 256 of them: the full rule below gave 1024-row tiles of
      // 8 MiB at D = 1024 (52 ms an iteration at 20000 x 1024, K = 8, against 30), and its
      // fewest rows, 64, are what D = 4096 needs (16 rows took 3 times as long);
      // bench/results/cpu-direct-diag-tiles-2026-12-07.md. Fewer, as below, where that would
      // leave under 16 tiles to share among threads: a diag tile is the only unit of a pass's
      // parallel work.
      const std::int64_t row_bytes = static_cast<std::int64_t>(sizeof(U)) * d_;
      return std::clamp<std::int64_t>(
                 std::min<std::int64_t>(kDirectDiagTileBytes / row_bytes, n_ / 16), 64, 256) /
             16 * 16;
    }
    if (plan.direct) {
      // A direct tile holds its rows (and a copy per component), not their features; what it
      // costs per tile is K x features of sums added into the slot. 1024 rows (fewer beyond
      // D = 1024) against the rule below (64 at D >= 128): 10-25 % less time at D = 16-64 and
      // half at D = 512 (bench/results/cpu-direct-high-dimension-2026-12-02.md). Fewer where
      // that would leave under 16 tiles to share out among threads (a pass has at most 64 slots).
      const std::int64_t row_bytes = static_cast<std::int64_t>(sizeof(U)) * d_;
      return std::clamp<std::int64_t>(std::min<std::int64_t>((8 << 20) / row_bytes, n_ / 16), 64,
                                      1024) /
             16 * 16;
    }
    const std::int64_t row_bytes = static_cast<std::int64_t>(sizeof(U)) * plan.features;
    return std::clamp<std::int64_t>((256 << 10) / row_bytes, 64, 512) / 16 * 16;
  }

  template <typename U>
  TilePlan<U> tile_plan(const PreparedModel& model, const Plan<U>& plan) const {
    TilePlan<U> t;
    if constexpr (std::is_same_v<U, T>) {
      t.x = data_;
    } else {
      t.x_float = data_;  // a float engine's promoted model
    }
    t.sample_weight = weight_;
    t.n = n_;
    t.d = d_;
    t.k = model.k;
    t.features = plan.features;
    t.block_rows = block_rows(model, plan);
    t.kind = feature_kind(model);
    t.shift = plan.shift_t.data();
    if (plan.direct) {
      t.kind = quadratic_pairs(model) ? FeatureKind::kDirectFull : FeatureKind::kDirectDiag;
      t.shift = nullptr;
      t.means = plan.means_t.data();
      t.centres = plan.centres_t.data();
      t.u = plan.u_t.data();
      t.u_stride = plan.u_stride;
      t.direct_bias = plan.direct_bias.data();
      if (plan.mean_residuals.size() > 0) t.mean_residuals = plan.mean_residuals.data();
      if (plan.projected_means_t.size() > 0) {
        t.shift = plan.shift_t.data();
        t.projected_means = plan.projected_means_t.data();
      }
    }
    t.w = plan.w.data();
    t.shared_quadratic =
        !plan.direct && model.family == Family::kGaussian && model.covariance == Covariance::kTied;
    t.bias = plan.bias.data();
    t.raw_bias = plan.bias_in_double ? plan.raw_bias.data() : nullptr;
    t.binomial = model.family == Family::kBinomial;
    t.trials = model.trials;
    t.log_choose = plan.log_choose != nullptr ? plan.log_choose->data() : nullptr;
    t.keep_negligible = keep_negligible_;
    t.entropy = model.entropy;
    return t;
  }

  // Packed sums about m0 -> the statistics layout, shifted to the centres c_k:
  //   sum g (x - c)           = s0 + N (m0 - c)
  //   sum g (x - c)(x - c)^T  = Q0 + e s0^T + s0 e^T + N e e^T,  e = m0 - c
  // A direct plan's sums are about its own centres instead, c_k as T holds them (`about`, K x D):
  // e = about_k - c, zero in double and float's rounding of c in float, a move that costs nothing
  // beside the sums' own rounding, and is not judged (the check would refuse a pooled tied
  // tile's Q_k, zero but for the move). Returns false where the move cost a variance more than
  // `tolerance` of itself, the sums having been taken with rounding `epsilon`: terms of size
  // N e^2 moved, against a variance the data make much smaller than the model's own, by whose
  // expansion cost the pass was judged.
  bool unpack(const PreparedModel& model, const RowVector<double>& shift,
              const RowMatrix<double>* about, bool by_components, bool pooled, int features,
              const std::vector<double>& packed, double* stats, double epsilon,
              double tolerance) const {
    bool kept = true;
    const int k = model.k, d = d_;
    const StatisticsLayout& layout = model.layout;
    std::fill(stats, stats + layout.size(), 0.0);
    stats[StatisticsLayout::kLogLikelihood] = packed[0];
    stats[StatisticsLayout::kWeightSum] = packed[1];
    stats[StatisticsLayout::kEntropy] = packed[2];
    // T, K x features: column-major, or row-major where the pass summed by components.
    const Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic> t_stride =
        by_components ? Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(1, features)
                      : Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(k, 1);
    Eigen::Map<const Matrix<double>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> t(
        packed.data() + cpu::kPackedTotals + k, k, features, t_stride);
    Eigen::Map<const RowMatrix<double>> centres(model.centres.data(), k, d);
    // `pooled` (tied, expanded: TilePlan::shared_quadratic): the tiles pooled the quadratic sums
    // into component 0's (pooled_quadratic_statistics), so whether the move kept its digits is
    // judged on the sums over components, as the tied M-step subtracts: per feature, the moved
    // diagonals, the rounding's terms and sum_k s_k^2 / N_k.
    std::vector<double> moved, raw, shifts, mean_squares;
    if (pooled) {
      moved.assign(d, 0.0);
      raw.assign(d, 0.0);
      shifts.assign(d, 0.0);
      mean_squares.assign(d, 0.0);
    }
    double n_total = 0;
    for (int c = 0; c < k; ++c) {
      const double nk = packed[cpu::kPackedTotals + c];
      n_total += nk;
      stats[layout.nk() + c] = nk;
      const RowVector<double> s0 = t.row(c).head(d);
      const RowVector<double> e = about != nullptr
                                      ? RowVector<double>(about->row(c) - centres.row(c))
                                      : RowVector<double>(shift - centres.row(c));
      Eigen::Map<RowVector<double>>(stats + layout.s() + static_cast<std::size_t>(c) * d, d) =
          s0 + nk * e;
      if (!layout.has_scatter) continue;
      double* q_out = stats + layout.q() + static_cast<std::size_t>(c) * layout.q_per_component();
      if (layout.full_scatter) {
        Eigen::Map<RowMatrix<double>> q(q_out, d, d);
        Eigen::Index j = d;
        for (int a = 0; a < d; ++a) {
          for (int b = a; b < d; ++b) q(a, b) = t(c, j++);
        }
        mirror_upper_triangle(q_out, d);
        if (!e.isZero(0)) q += e.transpose() * s0 + s0.transpose() * e + nk * e.transpose() * e;
        for (int a = 0; a < d; ++a) {
          const double q0 = t(c, diagonal_feature(d, a));
          if (pooled) {
            moved[a] += q(a, a);
            raw[a] += q0;
            if (!(nk > 0)) continue;
            shifts[a] += 2 * std::abs(e[a] * s0[a]) + nk * e[a] * e[a];
            const double sum = s0[a] + nk * e[a];
            mean_squares[a] += sum * (sum / nk);
          } else if (about == nullptr) {
            kept = kept && moved_kept_digits(q(a, a), q0, e[a], s0[a], nk, epsilon, tolerance);
          }
        }
      } else {
        Eigen::Map<RowVector<double>> q(q_out, d);
        q = t.row(c).tail(d).array() + 2.0 * e.array() * s0.array() + nk * e.array().square();
        if (about == nullptr && model.covariance == Covariance::kSpherical) {
          // The spherical M-step takes the mean of these variances: judged on their sum, not
          // each (a feature constant within a component, pixels at an image's border, lost its
          // tiny variance's digits to the move beside others of the data's size, and every pass
          // of load_digits, K = 32, was taken twice: 1.6x scikit-learn's time).
          if (!(nk > 0) || e.isZero(0)) continue;  // nothing moved (moved_kept_digits alike)
          double variance = 0, terms = 0;
          for (int a = 0; a < d; ++a) {
            const auto [feature_variance, size] =
                moved_variance(q[a], t(c, d + a), e[a], s0[a], nk);
            variance += feature_variance;
            terms += size;
          }
          kept = kept && variance > 0 && epsilon * terms <= tolerance * variance;
          continue;
        }
        for (int a = 0; a < d && about == nullptr; ++a) {
          kept = kept && moved_kept_digits(q[a], t(c, d + a), e[a], s0[a], nk, epsilon, tolerance);
        }
      }
    }
    if (pooled) {
      // Each Q_k for k >= 1 now holds only its move, about -N_k e_k e_k^T: added into Q_0 here
      // (the sum the check below judges), so that what merges, recentring and the M-step add
      // later are scatters of the data's own size.
      const std::size_t block = layout.q_per_component();
      double* q0 = stats + layout.q();
      for (int c = 1; c < k; ++c) {
        double* qc = q0 + static_cast<std::size_t>(c) * block;
        for (std::size_t i = 0; i < block; ++i) {
          q0[i] += qc[i];
          qc[i] = 0;
        }
      }
    }
    for (std::size_t a = 0; a < moved.size(); ++a) {
      if (shifts[a] == 0) continue;  // nothing moved (moved_kept_digits alike)
      const double variance = (moved[a] - mean_squares[a]) / n_total;
      const double size = (std::abs(raw[a]) + shifts[a]) / n_total;
      kept = kept && variance > 0 && epsilon * size <= tolerance * variance;
    }
    return kept;
  }

  // The lower triangle of a d x d matrix (row-major) from its upper, in square blocks: entry by
  // entry, each write down a column was another cache line, at D = 2048 2 % of a fit's time.
  static void mirror_upper_triangle(double* q, int d) {
    constexpr int kSide = 16;
    const std::size_t du = static_cast<std::size_t>(d);
    for (int a0 = 0; a0 < d; a0 += kSide) {
      for (int b0 = a0; b0 < d; b0 += kSide) {
        for (int a = a0; a < std::min(d, a0 + kSide); ++a) {
          for (int b = std::max(a + 1, b0); b < std::min(d, b0 + kSide); ++b) {
            q[b * du + a] = q[a * du + b];
          }
        }
      }
    }
  }

  // Feature column of u_a^2 among [u, u_a u_b for a <= b].
  static Eigen::Index diagonal_feature(int d, int a) {
    return d + static_cast<Eigen::Index>(a) * d - static_cast<Eigen::Index>(a) * (a - 1) / 2;
  }

  // A diagonal moved to the centre, q = q0 + 2 e s0 + N e^2: the variance it gives,
  // q / N - (s / N)^2 with s = s0 + N e, and the size of the terms whose rounding it carries.
  static std::pair<double, double> moved_variance(double q, double q0, double e, double s0,
                                                  double nk) {
    const double s = s0 + nk * e;
    return {q / nk - (s / nk) * (s / nk), (std::abs(q0) + 2 * std::abs(e * s0) + nk * e * e) / nk};
  }

  // Whether that variance is kept: the terms' rounding, epsilon times their size, within
  // `tolerance` of it.
  static bool moved_kept_digits(double q, double q0, double e, double s0, double nk, double epsilon,
                                double tolerance) {
    if (!(nk > 0) || e == 0) return true;
    const auto [variance, terms] = moved_variance(q, q0, e, s0, nk);
    return variance > 0 && epsilon * terms <= tolerance * variance;
  }

  const T* data_;
  std::int64_t n_;
  int d_;
  const double* weight_;
  EngineOptions options_;
  const cpu::Kernels<T>& kernels_;
  // A float engine's double kernels of the same level, for the models float would not hold, and
  // for every model when the sample weights are outside what float multiplies safely.
  const cpu::Kernels<double>* promoted_kernels_ = nullptr;
  bool weights_outside_float_ = false;
  std::optional<bool> gaussian_sums_overflow_, discrete_sums_overflow_;  // rows_need_double
  bool keep_negligible_ = false;
  std::size_t slot_memory_bytes_;
  std::optional<RowVector<double>> data_shift_;  // m0 of every Gaussian model's features
  RowVector<double> zero_shift_;                 // every Bernoulli and binomial model's
  int threads_ = 1;
  // A float engine's rows for float_direct_holds (kProbeRows x D), or none: below D = 128 no model
  // runs directly but where no expansion serves (in double), and the data must have
  // kRowsPerProbeRow rows for each of the probe's rows.
  static constexpr std::int64_t kProbeRows = 64;
  static constexpr int kRowsPerComponent = 8;
  static constexpr std::int64_t kRowsPerProbeRow = 64;
  static constexpr std::int64_t kFloatDirectFromRows = kRowsPerProbeRow * kProbeRows;
  RowMatrix<float> probe_rows_;
  // The data's total sample weight and its largest (few_rows_per_feature): N and 1 unweighted.
  double weight_total_ = 0, weight_max_ = 1;
};

}  // namespace

namespace cpu {

IsaLevel parse_level(const char* name) {
  IsaLevel levels[8];
  const int count = compiled_levels(levels, 8);
  for (const IsaLevel level :
       {IsaLevel::kBaseline, IsaLevel::kV2, IsaLevel::kV3, IsaLevel::kV4, IsaLevel::kNative}) {
    if (std::strcmp(name, to_string(level)) != 0) continue;
    if (std::find(levels, levels + count, level) == levels + count) {
      throw InvalidArgument(std::string("EMIX_CPU_LEVEL=") + name +
                            ": this build of emix has no CPU kernels for that level");
    }
    if (!cpu_supports(level)) {
      throw InvalidArgument(std::string("EMIX_CPU_LEVEL=") + name +
                            ": this CPU does not support that instruction set");
    }
    return level;
  }
  throw InvalidArgument(std::string("EMIX_CPU_LEVEL=") + name +
                        ": not a level (x86-64, x86-64-v2, avx2, avx512 or native)");
}

IsaLevel level_from_environment() {
  const char* name = std::getenv("EMIX_CPU_LEVEL");
  return name != nullptr && *name != '\0' ? parse_level(name) : best_level();
}

std::unique_ptr<Engine> make_engine(const DataView& x, const double* sample_weight,
                                    const EngineOptions& options,
                                    const CpuEngineSettings& settings) {
  if (x.space != MemorySpace::kHost) {
    throw InvalidArgument("the CPU engine needs data in host memory");
  }
  if (x.dtype == DType::kFloat32) {
    return std::make_unique<CpuEngine<float>>(x, sample_weight, options, settings);
  }
  return std::make_unique<CpuEngine<double>>(x, sample_weight, options, settings);
}

}  // namespace cpu

std::unique_ptr<Engine> make_cpu_engine(const DataView& x, const double* sample_weight,
                                        const EngineOptions& options) {
  return cpu::make_engine(x, sample_weight, options, cpu::CpuEngineSettings{});
}

}  // namespace emix
