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
#define EIGEN_DONT_PARALLELIZE  // one thread per tile; OpenMP parallelism is across tiles

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "core/engine.hpp"
#include "emix/errors.hpp"

namespace emix {
namespace {

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
  return plan;
}

// Per-thread work space for one tile, sized once.
template <typename T>
struct Scratch {
  Matrix<T> f;     // B x features
  Matrix<T> resp;  // B x K: log-densities, then responsibilities, then weighted
  Vector<T> lse;   // B: log p(x_n)
  Vector<T> sum;   // B
  Vector<T> inverse_sum;
  Matrix<T> t;  // K x features
};

template <typename T>
class CpuEngine final : public Engine {
 public:
  CpuEngine(const DataView& x, const double* sample_weight, const EngineOptions& options)
      : data_(static_cast<const T*>(x.data)),
        n_(x.rows),
        d_(static_cast<int>(x.cols)),
        weight_(sample_weight),
        options_(options) {
    threads_ = options.n_threads > 0 ? options.n_threads : omp_get_max_threads();
  }

  std::string name() const override {
    return "cpu (" + std::to_string(threads_) + (threads_ == 1 ? " thread)" : " threads)");
  }

  void accumulate(const PreparedModel& model, double* stats) override {
    const Plan<T> plan = make_plan<T>(model);
    const int k = model.k;
    const std::int64_t block = block_rows(plan);
    const std::int64_t n_tiles = (n_ + block - 1) / block;
    // Packed partial sums: log-likelihood, weight sum, N_k, then T (K x features, col-major).
    const std::size_t packed = 2 + static_cast<std::size_t>(k) * (1 + plan.features);
    // Slots bound memory to about 64 MiB; their count depends only on the problem's shape.
    const std::int64_t n_slots = std::clamp<std::int64_t>(
        static_cast<std::int64_t>((64u << 20) / (packed * sizeof(double))), 1, 64);
    const std::int64_t used_slots = std::min(n_slots, std::max<std::int64_t>(n_tiles, 1));
    std::vector<double> slots(static_cast<std::size_t>(used_slots) * packed, 0.0);

#pragma omp parallel num_threads(threads_)
    {
      Scratch<T> scratch;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t s = 0; s < used_slots; ++s) {
        double* slot = &slots[static_cast<std::size_t>(s) * packed];
        for (std::int64_t t = s; t < n_tiles; t += used_slots) {
          const std::int64_t begin = t * block;
          const std::int64_t rows = std::min(block, n_ - begin);
          add_tile_statistics(model, plan, begin, rows, scratch, slot);
        }
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
    const Plan<T> plan = make_plan<T>(model);
    const std::int64_t block = block_rows(plan);
    const std::int64_t n_tiles = (n_ + block - 1) / block;
    const int k = model.k;
#pragma omp parallel num_threads(threads_)
    {
      Scratch<T> scratch;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t t = 0; t < n_tiles; ++t) {
        const std::int64_t begin = t * block;
        const std::int64_t rows = std::min(block, n_ - begin);
        responsibilities(model, plan, begin, rows, scratch);
        for (std::int64_t i = 0; i < rows; ++i) {
          const std::int64_t row = begin + i;
          if (log_prob) log_prob[row] = static_cast<double>(scratch.lse[i]);
          if (resp) {
            for (int c = 0; c < k; ++c) {
              resp[row * k + c] = static_cast<double>(scratch.resp(i, c));
            }
          }
          if (labels) {
            Eigen::Index best = 0;
            scratch.resp.row(i).maxCoeff(&best);
            labels[row] = static_cast<std::int32_t>(best);
          }
        }
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

  // F, responsibilities and log p(x_n) for rows [begin, begin + rows).
  void responsibilities(const PreparedModel& model, const Plan<T>& plan, std::int64_t begin,
                        std::int64_t rows, Scratch<T>& s) const {
    const int d = d_;
    Eigen::Map<const RowMatrix<T>> tile(data_ + begin * d, rows, d);
    s.f.resize(rows, plan.features);
    if (model.family == Family::kGaussian) {
      s.f.leftCols(d) = tile.rowwise() - plan.shift.template cast<T>();
      if (quadratic_pairs(model)) {
        Eigen::Index j = d;
        for (int a = 0; a < d; ++a) {
          for (int b = a; b < d; ++b) s.f.col(j++) = s.f.col(a).cwiseProduct(s.f.col(b));
        }
      } else {
        s.f.rightCols(d) = s.f.leftCols(d).array().square();
      }
    } else {
      s.f = tile;
    }
    s.resp.noalias() = s.f * plan.w;
    s.resp.rowwise() += plan.bias;
    if (model.family == Family::kBinomial) {
      for (std::int64_t i = 0; i < rows; ++i) {
        s.resp.row(i).array() +=
            static_cast<T>(log_binomial(tile.row(i), model.trials, plan.log_choose));
      }
    }
    // Log-sum-exp over components, then responsibilities in place.
    s.lse = s.resp.rowwise().maxCoeff();
    for (std::int64_t i = 0; i < rows; ++i) {
      if (!std::isfinite(s.lse[i])) s.lse[i] = 0;  // every component -inf: keep exp() finite
    }
    // Column by column: plain vector expressions, which Eigen vectorises (exp included).
    s.sum.setZero(rows);
    for (Eigen::Index c = 0; c < s.resp.cols(); ++c) {
      s.resp.col(c) = (s.resp.col(c) - s.lse).array().exp().matrix();
      s.sum += s.resp.col(c);
    }
    s.inverse_sum = s.sum.cwiseInverse();
    for (Eigen::Index c = 0; c < s.resp.cols(); ++c) {
      s.resp.col(c) = s.resp.col(c).cwiseProduct(s.inverse_sum);
    }
    s.lse.array() += s.sum.array().log();
  }

  // sum_d log C(m, x_d); each term is the same double with or without the table.
  static double log_binomial(const Eigen::Ref<const RowVector<T>>& x, int trials,
                             const std::vector<double>& log_choose) {
    double sum = 0;
    if (!log_choose.empty()) {
      for (Eigen::Index j = 0; j < x.size(); ++j) {
        sum += log_choose[static_cast<std::size_t>(x[j])];
      }
      return sum;
    }
    const double log_m_factorial = std::lgamma(trials + 1.0);
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      const double v = static_cast<double>(x[j]);
      sum += log_m_factorial - std::lgamma(v + 1.0) - std::lgamma(trials - v + 1.0);
    }
    return sum;
  }

  // Adds one tile's packed statistics to `slot`.
  void add_tile_statistics(const PreparedModel& model, const Plan<T>& plan, std::int64_t begin,
                           std::int64_t rows, Scratch<T>& s, double* slot) const {
    const int k = model.k;
    responsibilities(model, plan, begin, rows, s);
    double log_likelihood = 0, weight_sum = 0;
    if (weight_) {
      for (std::int64_t i = 0; i < rows; ++i) {
        const double w = weight_[begin + i];
        s.resp.row(i) *= static_cast<T>(w);
        log_likelihood += w * static_cast<double>(s.lse[i]);
        weight_sum += w;
      }
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
    const std::size_t size = static_cast<std::size_t>(k) * plan.features;
    for (std::size_t i = 0; i < size; ++i) t_out[i] += static_cast<double>(t_in[i]);
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
  int threads_ = 1;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(const DataView& x, const double* sample_weight,
                                        const EngineOptions& options) {
  if (x.space != MemorySpace::kHost) {
    throw InvalidArgument("the CPU engine needs data in host memory");
  }
  if (x.dtype == DType::kFloat32) {
    return std::make_unique<CpuEngine<float>>(x, sample_weight, options);
  }
  return std::make_unique<CpuEngine<double>>(x, sample_weight, options);
}

}  // namespace emix
