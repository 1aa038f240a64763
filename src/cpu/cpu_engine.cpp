// The CPU engine: Eigen GEMMs on tiles of rows, OpenMP across tiles.
//
// Every family is two GEMMs per tile around one feature matrix F (B x P) built from the tile:
//   log-densities   L = F W + b        (B x K; W and b from the model, see make_plan)
//   statistics      T = G^T F          (K x P; G the weighted responsibilities)
// For Gaussians F = [u, products of u] with u = x - m0, m0 one shift for the whole pass (the
// model's overall mean), so that the quadratic form (x - mu)^T P (x - mu) is linear in F:
//   full / tied: F = [u_1..u_D, u_a u_b for a <= b];  diag / spherical: F = [u, u^2].
// T then holds sum g u and sum g (u u^T) (packed); they are moved from m0 to the centres c_k
// once per pass, in double. Bernoulli / binomial: F = x, W = logit^T.
//
// Determinism: tiles have a size fixed by (K, D, element type), never by the thread count.
// Tile t is added into slot t % n_slots, each slot walking its tiles in increasing order, and
// the slots are summed in slot order, so results are bitwise independent of n_threads.
//
// Speed on every data set and CPU: the tiles' work (cpu_kernels_impl.hpp) is compiled for
// several instruction-set levels and the highest one the CPU supports runs (cpu_dispatch.cpp).
// Negligible responsibilities are exactly zero (core/pointwise.hpp, exp_or_zero), and every
// thread of a call runs with FTZ / DAZ set (fp_environment.hpp), its caller's mode restored
// after: no subnormal number reaches a matrix product, where each costs a microcode assist.
#define EIGEN_DONT_PARALLELIZE  // one thread per tile; OpenMP parallelism is across tiles

#include "cpu/cpu_engine.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "core/engine.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {
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

// Number of feature columns for the model's shape.
int feature_count(const PreparedModel& p) {
  if (p.family != Family::kGaussian) return p.d;
  return quadratic_pairs(p) ? p.d + p.d * (p.d + 1) / 2 : 2 * p.d;
}

// What one pass needs, in the data's element type.
template <typename T>
struct Plan {
  int features = 0;
  RowVector<double> shift;  // m0, 1 x D (zero for Bernoulli / binomial)
  Matrix<T> w;              // features x K
  RowVector<T> bias;        // 1 x K
  RowVector<T> shift_t;     // m0 in T, as the kernels subtract it
  // Binomial: log C(m, v) for v = 0..m, so that a row's k-independent term is D lookups rather
  // than 2 D lgamma calls (which made the binomial E-step 4x the Bernoulli one). Empty for
  // other families, and for m beyond kMaxLogChooseTable (then lgamma per entry).
  std::vector<double> log_choose;
};

constexpr int kMaxLogChooseTable = 1 << 20;

template <typename T>
Plan<T> make_plan(const PreparedModel& p) {
  const int k = p.k, d = p.d;
  Plan<T> plan;
  plan.features = feature_count(p);
  plan.shift = RowVector<double>::Zero(d);
  Matrix<double> w = Matrix<double>::Zero(plan.features, k);
  RowVector<double> bias(k);
  for (int c = 0; c < k; ++c) bias[c] = p.log_norm[c] + p.log_weights[c];
  if (p.family == Family::kBinomial && p.trials <= kMaxLogChooseTable) {
    const double log_m_factorial = std::lgamma(p.trials + 1.0);
    for (int v = 0; v <= p.trials; ++v) {
      plan.log_choose.push_back(log_m_factorial - std::lgamma(v + 1.0) -
                                std::lgamma(p.trials - v + 1.0));
    }
  }
  if (p.family != Family::kGaussian) {
    w = Eigen::Map<const RowMatrix<double>>(p.logit.data(), k, d).transpose();
    plan.w = w.cast<T>();
    plan.bias = bias.cast<T>();
    return plan;
  }
  Eigen::Map<const RowMatrix<double>> means(p.means.data(), k, d);
  for (int c = 0; c < k; ++c) plan.shift += std::exp(p.log_weights[c]) * means.row(c);
  for (int c = 0; c < k; ++c) {
    // Precision matrix P = U U^T of component c.
    Matrix<double> precision = Matrix<double>::Zero(d, d);
    switch (p.covariance) {
      case Covariance::kFull:
      case Covariance::kTied: {
        const std::size_t offset =
            p.covariance == Covariance::kFull ? static_cast<std::size_t>(c) * d * d : 0;
        Eigen::Map<const RowMatrix<double>> u(p.prec_chol.data() + offset, d, d);
        precision = u * u.transpose();
        break;
      }
      case Covariance::kDiag:
        for (int j = 0; j < d; ++j) {
          precision(j, j) = p.prec_chol[static_cast<std::size_t>(c) * d + j] *
                            p.prec_chol[static_cast<std::size_t>(c) * d + j];
        }
        break;
      case Covariance::kSpherical:
        precision.diagonal().setConstant(p.prec_chol[c] * p.prec_chol[c]);
        break;
    }
    // -0.5 (u - delta)^T P (u - delta) = -0.5 u^T P u + u^T P delta - 0.5 delta^T P delta
    const Vector<double> delta = (means.row(c) - plan.shift).transpose();
    const Vector<double> p_delta = precision * delta;
    w.col(c).head(d) = p_delta;
    bias[c] -= 0.5 * delta.dot(p_delta);
    if (quadratic_pairs(p)) {
      int j = d;
      for (int a = 0; a < d; ++a) {
        w(j++, c) = -0.5 * precision(a, a);
        for (int b = a + 1; b < d; ++b) w(j++, c) = -precision(a, b);
      }
    } else {
      for (int a = 0; a < d; ++a) w(d + a, c) = -0.5 * precision(a, a);
    }
  }
  plan.w = w.cast<T>();
  plan.bias = bias.cast<T>();
  plan.shift_t = plan.shift.template cast<T>();
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
        keep_negligible_(settings.keep_negligible) {
    threads_ = options.n_threads > 0 ? options.n_threads : omp_get_max_threads();
  }

  // "cpu (2 threads, avx512)": the kernels' instruction-set level is part of what ran.
  std::string name() const override {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread, " : " threads, ") +
           cpu::to_string(kernels_.level) + (keep_negligible_ ? ", keeping subnormals)" : ")");
  }

  void accumulate(const PreparedModel& model, double* stats) override {
    const MaybeFlushDenormals caller_guard(!keep_negligible_);
    const Plan<T> plan = make_plan<T>(model);
    const TilePlan<T> tiles = tile_plan(model, plan);
    const std::int64_t n_tiles = (n_ + tiles.block_rows - 1) / tiles.block_rows;
    const std::size_t packed = static_cast<std::size_t>(cpu::packed_size(model.k, plan.features));
    // Slots bound memory to about 64 MiB; their count depends only on the problem's shape.
    const std::int64_t n_slots = std::clamp<std::int64_t>(
        static_cast<std::int64_t>((64u << 20) / (packed * sizeof(double))), 1, 64);
    const std::int64_t used_slots = std::min(n_slots, std::max<std::int64_t>(n_tiles, 1));
    std::vector<double> slots(static_cast<std::size_t>(used_slots) * packed, 0.0);

#pragma omp parallel num_threads(threads_)
    {
      const MaybeFlushDenormals worker_guard(!keep_negligible_);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t s = 0; s < used_slots; ++s) {
        kernels_.add_statistics(tiles, s, used_slots, &slots[static_cast<std::size_t>(s) * packed]);
      }
    }
    std::vector<double> total(packed, 0.0);
    for (std::int64_t s = 0; s < used_slots; ++s) {
      const double* slot = &slots[static_cast<std::size_t>(s) * packed];
      for (std::size_t i = 0; i < packed; ++i) total[i] += slot[i];
    }
    unpack(model, plan, total, stats);
  }

  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    const MaybeFlushDenormals caller_guard(!keep_negligible_);
    const Plan<T> plan = make_plan<T>(model);
    const TilePlan<T> tiles = tile_plan(model, plan);
    const std::int64_t n_tiles = (n_ + tiles.block_rows - 1) / tiles.block_rows;
    // Runs of consecutive tiles, several per thread for balance; each run sizes its work space
    // once. Per-row results do not depend on how the tiles are grouped.
    const std::int64_t n_runs = std::min<std::int64_t>(n_tiles, 8 * threads_);
#pragma omp parallel num_threads(threads_)
    {
      const MaybeFlushDenormals worker_guard(!keep_negligible_);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t r = 0; r < n_runs; ++r) {
        kernels_.evaluate(tiles, r * n_tiles / n_runs, (r + 1) * n_tiles / n_runs, log_prob, resp,
                          labels);
      }
    }
  }

  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override {
    for (std::int64_t i = 0; i < count; ++i) {
      for (int j = 0; j < d_; ++j) {
        out[i * d_ + j] = static_cast<double>(data_[idx[i] * d_ + j]);
      }
    }
  }

 private:
  // Rows per tile: the feature matrix stays near 1 MiB (L2), within [32, 1024] rows.
  std::int64_t block_rows(const Plan<T>& plan) const {
    if (options_.block_rows > 0) return options_.block_rows;
    const std::int64_t row_bytes = static_cast<std::int64_t>(sizeof(T)) * plan.features;
    return std::clamp<std::int64_t>((1 << 20) / row_bytes, 32, 1024) / 16 * 16;
  }

  TilePlan<T> tile_plan(const PreparedModel& model, const Plan<T>& plan) const {
    TilePlan<T> t;
    t.x = data_;
    t.sample_weight = weight_;
    t.n = n_;
    t.d = d_;
    t.k = model.k;
    t.features = plan.features;
    t.block_rows = block_rows(plan);
    t.kind = feature_kind(model);
    t.shift = plan.shift_t.data();
    t.w = plan.w.data();
    t.bias = plan.bias.data();
    t.binomial = model.family == Family::kBinomial;
    t.trials = model.trials;
    t.log_choose = plan.log_choose.empty() ? nullptr : plan.log_choose.data();
    t.keep_negligible = keep_negligible_;
    return t;
  }

  // Packed sums about m0 -> the statistics layout, shifted to the centres c_k:
  //   sum g (x - c)           = s0 + N (m0 - c)
  //   sum g (x - c)(x - c)^T  = Q0 + e s0^T + s0 e^T + N e e^T,  e = m0 - c
  void unpack(const PreparedModel& model, const Plan<T>& plan, const std::vector<double>& packed,
              double* stats) const {
    const int k = model.k, d = d_;
    const StatisticsLayout& layout = model.layout;
    std::fill(stats, stats + layout.size(), 0.0);
    stats[StatisticsLayout::kLogLikelihood] = packed[0];
    stats[StatisticsLayout::kWeightSum] = packed[1];
    Eigen::Map<const Matrix<double>> t(packed.data() + 2 + k, k, plan.features);
    Eigen::Map<const RowMatrix<double>> centres(model.centres.data(), k, d);
    for (int c = 0; c < k; ++c) {
      const double nk = packed[2 + c];
      stats[layout.nk() + c] = nk;
      const RowVector<double> s0 = t.row(c).head(d);
      const RowVector<double> e = plan.shift - centres.row(c);
      Eigen::Map<RowVector<double>>(stats + layout.s() + static_cast<std::size_t>(c) * d, d) =
          s0 + nk * e;
      if (!layout.has_scatter) continue;
      double* q_out = stats + layout.q() + static_cast<std::size_t>(c) * layout.q_per_component();
      if (layout.full_scatter) {
        Eigen::Map<RowMatrix<double>> q(q_out, d, d);
        Eigen::Index j = d;
        for (int a = 0; a < d; ++a) {
          for (int b = a; b < d; ++b) q(a, b) = q(b, a) = t(c, j++);
        }
        q += e.transpose() * s0 + s0.transpose() * e + nk * e.transpose() * e;
      } else {
        Eigen::Map<RowVector<double>> q(q_out, d);
        q = t.row(c).tail(d).array() + 2.0 * e.array() * s0.array() + nk * e.array().square();
      }
    }
  }

  const T* data_;
  std::int64_t n_;
  int d_;
  const double* weight_;
  EngineOptions options_;
  const cpu::Kernels<T>& kernels_;
  bool keep_negligible_ = false;
  int threads_ = 1;
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
