// The CPU engine: Eigen for the GEMM-shaped parts, OpenMP across tiles of rows.
//
// Determinism: the rows are cut into tiles of a size that depends only on (K, D, element type),
// never on the thread count. Tile t is added into slot t % n_slots, each slot walking its tiles
// in increasing order; the slots are then summed in slot order. Whichever thread runs a slot,
// the additions happen in the same order, so the result is bitwise independent of n_threads.
#define EIGEN_DONT_PARALLELIZE  // one thread per tile; OpenMP parallelism is across tiles

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

// The prepared model converted to the data's element type and laid out for GEMMs.
template <typename T>
struct TypedModel {
  Matrix<T> prec_cat;     // full: D x (K*D), [U_1 ... U_K]; tied: D x D
  Matrix<T> mean_prec;    // K x D
  Matrix<T> means;        // K x D
  Matrix<T> prec_diag;    // diag: K x D; spherical: K x 1
  Matrix<T> logit_t;      // D x K (Bernoulli / binomial)
  RowVector<T> log_norm;  // 1 x K, includes log_weights
};

template <typename T>
TypedModel<T> make_typed(const PreparedModel& p) {
  TypedModel<T> t;
  const int k = p.k, d = p.d;
  t.log_norm.resize(k);
  for (int c = 0; c < k; ++c) t.log_norm[c] = static_cast<T>(p.log_norm[c] + p.log_weights[c]);
  if (p.family != Family::kGaussian) {
    t.logit_t = Eigen::Map<const RowMatrix<double>>(p.logit.data(), k, d).transpose().cast<T>();
    return t;
  }
  t.mean_prec = Eigen::Map<const RowMatrix<double>>(p.mean_prec.data(), k, d).cast<T>();
  t.means = Eigen::Map<const RowMatrix<double>>(p.means.data(), k, d).cast<T>();
  switch (p.covariance) {
    case Covariance::kFull:
      t.prec_cat.resize(d, static_cast<Eigen::Index>(k) * d);
      for (int c = 0; c < k; ++c) {
        t.prec_cat.middleCols(static_cast<Eigen::Index>(c) * d, d) =
            Eigen::Map<const RowMatrix<double>>(&p.prec_chol[static_cast<std::size_t>(c) * d * d],
                                                d, d)
                .cast<T>();
      }
      break;
    case Covariance::kTied:
      t.prec_cat = Eigen::Map<const RowMatrix<double>>(p.prec_chol.data(), d, d).cast<T>();
      break;
    case Covariance::kDiag:
      t.prec_diag = Eigen::Map<const RowMatrix<double>>(p.prec_chol.data(), k, d).cast<T>();
      break;
    case Covariance::kSpherical:
      t.prec_diag = Eigen::Map<const Vector<double>>(p.prec_chol.data(), k).cast<T>();
      break;
  }
  return t;
}

// Per-thread work space for one tile, sized once.
template <typename T>
struct Scratch {
  Matrix<T> x;         // B x D, the tile minus its shift (column-major for the GEMMs)
  Matrix<T> y;         // B x (K*D) or B x D: X U
  Matrix<T> log_dens;  // B x K: log w_k + log p(x_n | k), then responsibilities g_nk
  Vector<T> lse;       // B
  Matrix<T> z;         // B x (K*D) responsibility-scaled rows (full / tied scatter)
  Matrix<T> gx;        // K x D
  Matrix<T> q;         // (K*D) x D or K x D
  RowVector<double> shift;
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
    const TypedModel<T> typed = make_typed<T>(model);
    const std::int64_t block = block_rows(model);
    const std::int64_t n_tiles = (n_ + block - 1) / block;
    const std::size_t size = model.layout.size();
    // Slots bound memory to about 64 MiB of partial statistics; their count depends only on
    // the statistics' size.
    const std::int64_t n_slots = std::clamp<std::int64_t>(
        static_cast<std::int64_t>((64u << 20) / (size * sizeof(double))), 1, 64);
    const std::int64_t used_slots = std::min(n_slots, std::max<std::int64_t>(n_tiles, 1));
    std::vector<double> slots(static_cast<std::size_t>(used_slots) * size, 0.0);

#pragma omp parallel num_threads(threads_)
    {
      Scratch<T> scratch;
      std::vector<double> tile_stats(size);
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t s = 0; s < used_slots; ++s) {
        double* slot = &slots[static_cast<std::size_t>(s) * size];
        for (std::int64_t t = s; t < n_tiles; t += used_slots) {
          const std::int64_t begin = t * block;
          const std::int64_t rows = std::min(block, n_ - begin);
          tile_statistics(model, typed, begin, rows, scratch, tile_stats.data());
          for (std::size_t i = 0; i < size; ++i) slot[i] += tile_stats[i];
        }
      }
    }
    std::fill(stats, stats + size, 0.0);
    for (std::int64_t s = 0; s < used_slots; ++s) {
      const double* slot = &slots[static_cast<std::size_t>(s) * size];
      for (std::size_t i = 0; i < size; ++i) stats[i] += slot[i];
    }
  }

  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    const TypedModel<T> typed = make_typed<T>(model);
    const std::int64_t block = block_rows(model);
    const std::int64_t n_tiles = (n_ + block - 1) / block;
    const int k = model.k;
#pragma omp parallel num_threads(threads_)
    {
      Scratch<T> scratch;
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t t = 0; t < n_tiles; ++t) {
        const std::int64_t begin = t * block;
        const std::int64_t rows = std::min(block, n_ - begin);
        responsibilities(model, typed, begin, rows, scratch);
        for (std::int64_t i = 0; i < rows; ++i) {
          const std::int64_t row = begin + i;
          if (log_prob) log_prob[row] = static_cast<double>(scratch.lse[i]);
          if (resp) {
            for (int c = 0; c < k; ++c) {
              resp[row * k + c] = static_cast<double>(scratch.log_dens(i, c));
            }
          }
          if (labels) {
            Eigen::Index best = 0;
            scratch.log_dens.row(i).maxCoeff(&best);
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
  // Rows per tile: the B x (K*D) work matrices stay within about 512 KiB (L2).
  std::int64_t block_rows(const PreparedModel& model) const {
    if (options_.block_rows > 0) return options_.block_rows;
    const std::int64_t row_bytes =
        static_cast<std::int64_t>(sizeof(T)) * std::max(model.k * std::max(model.d, 1), 8);
    return std::clamp<std::int64_t>((512 << 10) / (2 * row_bytes), 64, 2048) / 16 * 16;
  }

  // Fills scratch.log_dens with p(k | x_n) (not yet weighted) and scratch.lse with log p(x_n)
  // for rows [begin, begin + rows); scratch.x holds the tile minus scratch.shift.
  void responsibilities(const PreparedModel& model, const TypedModel<T>& typed, std::int64_t begin,
                        std::int64_t rows, Scratch<T>& s) const {
    const int k = model.k, d = d_;
    Eigen::Map<const RowMatrix<T>> tile(data_ + begin * d, rows, d);
    auto& log_dens = s.log_dens;
    log_dens.resize(rows, k);
    switch (model.family) {
      case Family::kGaussian:
        switch (model.covariance) {
          case Covariance::kFull:
            s.y.noalias() = tile * typed.prec_cat;
            for (int c = 0; c < k; ++c) {
              log_dens.col(c) = (s.y.middleCols(static_cast<Eigen::Index>(c) * d, d).rowwise() -
                                 typed.mean_prec.row(c))
                                    .rowwise()
                                    .squaredNorm();
            }
            break;
          case Covariance::kTied:
            s.y.noalias() = tile * typed.prec_cat;
            for (int c = 0; c < k; ++c) {
              log_dens.col(c) = (s.y.rowwise() - typed.mean_prec.row(c)).rowwise().squaredNorm();
            }
            break;
          case Covariance::kDiag:
            for (int c = 0; c < k; ++c) {
              log_dens.col(c) = ((tile.rowwise() - typed.means.row(c)).array().rowwise() *
                                 typed.prec_diag.row(c).array())
                                    .matrix()
                                    .rowwise()
                                    .squaredNorm();
            }
            break;
          case Covariance::kSpherical:
            for (int c = 0; c < k; ++c) {
              const T prec = typed.prec_diag(c, 0);
              log_dens.col(c) =
                  (tile.rowwise() - typed.means.row(c)).rowwise().squaredNorm() * (prec * prec);
            }
            break;
        }
        log_dens = (T(-0.5) * log_dens).rowwise() + typed.log_norm;
        break;
      case Family::kBernoulli:
      case Family::kBinomial:
        log_dens.noalias() = tile * typed.logit_t;
        log_dens.rowwise() += typed.log_norm;
        if (model.family == Family::kBinomial) {
          for (std::int64_t i = 0; i < rows; ++i) {
            log_dens.row(i).array() += static_cast<T>(log_binomial(tile.row(i), model.trials));
          }
        }
        break;
    }
    // Log-sum-exp over components, then responsibilities in place.
    s.lse = log_dens.rowwise().maxCoeff();
    for (std::int64_t i = 0; i < rows; ++i) {
      if (!std::isfinite(s.lse[i])) s.lse[i] = 0;  // all -inf: keep exp() finite
    }
    log_dens = (log_dens.colwise() - s.lse).array().exp().matrix();
    const Vector<T> sum = log_dens.rowwise().sum();
    log_dens.array().colwise() /= sum.array();
    s.lse.array() += sum.array().log();
  }

  static double log_binomial(const Eigen::Ref<const RowVector<T>>& x, int trials) {
    double sum = 0;
    const double log_m_factorial = std::lgamma(trials + 1.0);
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      const double v = static_cast<double>(x[j]);
      sum += log_m_factorial - std::lgamma(v + 1.0) - std::lgamma(trials - v + 1.0);
    }
    return sum;
  }

  // The statistics of one tile, in double, shifted by the model's centres.
  void tile_statistics(const PreparedModel& model, const TypedModel<T>& typed, std::int64_t begin,
                       std::int64_t rows, Scratch<T>& s, double* out) const {
    const int k = model.k, d = d_;
    const StatisticsLayout& layout = model.layout;
    responsibilities(model, typed, begin, rows, s);
    auto& g = s.log_dens;  // responsibilities, weighted below
    double log_likelihood = 0, weight_sum = 0;
    if (weight_) {
      for (std::int64_t i = 0; i < rows; ++i) {
        const double w = weight_[begin + i];
        g.row(i) *= static_cast<T>(w);
        log_likelihood += w * static_cast<double>(s.lse[i]);
        weight_sum += w;
      }
    } else {
      for (std::int64_t i = 0; i < rows; ++i) log_likelihood += static_cast<double>(s.lse[i]);
      weight_sum = static_cast<double>(rows);
    }
    out[StatisticsLayout::kLogLikelihood] = log_likelihood;
    out[StatisticsLayout::kWeightSum] = weight_sum;
    const RowVector<double> nk = g.colwise().sum().template cast<double>();
    Eigen::Map<RowVector<double>>(out + layout.nk(), k) = nk;

    Eigen::Map<const RowMatrix<T>> tile(data_ + begin * d, rows, d);
    if (!layout.has_scatter) {
      // Centres are zero and the counts are small integers: no shift needed.
      s.gx.noalias() = g.transpose() * tile;
      Eigen::Map<RowMatrix<double>>(out + layout.s(), k, d) = s.gx.template cast<double>();
      return;
    }
    // Sums are taken around the tile's mean m (small values, little rounding), then moved to
    // each component's centre c in double:
    //   sum g (x - c)            = s_m + N (m - c)
    //   sum g (x - c)(x - c)^T   = Q_m + (m - c) s_m^T + s_m (m - c)^T + N (m - c)(m - c)^T
    s.shift = tile.template cast<double>().colwise().mean();
    s.x = tile.rowwise() - s.shift.template cast<T>();
    s.gx.noalias() = g.transpose() * s.x;  // K x D
    if (layout.full_scatter) {
      s.z.resize(rows, static_cast<Eigen::Index>(k) * d);
      for (int c = 0; c < k; ++c) {
        s.z.middleCols(static_cast<Eigen::Index>(c) * d, d) =
            s.x.array().colwise() * g.col(c).array();
      }
      s.q.noalias() = s.z.transpose() * s.x;  // (K*D) x D
    } else {
      s.q.noalias() = g.transpose() * s.x.array().square().matrix();  // K x D
    }
    Eigen::Map<const RowMatrix<double>> centres(model.centres.data(), k, d);
    for (int c = 0; c < k; ++c) {
      const RowVector<double> delta = s.shift - centres.row(c);
      const RowVector<double> sm = s.gx.row(c).template cast<double>();
      Eigen::Map<RowVector<double>>(out + layout.s() + static_cast<std::size_t>(c) * d, d) =
          sm + nk[c] * delta;
      double* q_out = out + layout.q() + static_cast<std::size_t>(c) * layout.q_per_component();
      if (layout.full_scatter) {
        Eigen::Map<RowMatrix<double>> q(q_out, d, d);
        q = s.q.middleRows(static_cast<Eigen::Index>(c) * d, d).template cast<double>();
        q += delta.transpose() * sm + sm.transpose() * delta + nk[c] * delta.transpose() * delta;
      } else {
        Eigen::Map<RowVector<double>> q(q_out, d);
        q = s.q.row(c).template cast<double>().array() + 2.0 * delta.array() * sm.array() +
            nk[c] * delta.array().square();
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
