// Prediction, scoring and sampling on a fitted model.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <random>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/version.hpp"

namespace emix {

const char* version() { return EMIX_VERSION_STRING; }

namespace {

struct Evaluation {
  std::vector<double> log_prob;
  std::vector<double> resp;
  std::vector<std::int32_t> labels;
};

// log_prob is always computed: check_evaluation() needs it to refuse a NaN answer.
Evaluation evaluate(const Model& model, const DataView& x, const EngineOptions& options,
                    bool want_resp, bool want_labels) {
  validate(options);
  validate_model_for_data(model, x);
  check_result_memory(x.rows, want_resp ? model.n_components : 0);
  const PreparedModel prepared = prepare(model);
  std::unique_ptr<Engine> engine = make_engine(x, nullptr, options);
  Evaluation e;
  const std::size_t n = static_cast<std::size_t>(x.rows);
  e.log_prob.resize(n);
  if (want_resp) e.resp.resize(n * static_cast<std::size_t>(model.n_components));
  if (want_labels) e.labels.resize(n);
  engine->evaluate(prepared, e.log_prob.data(), want_resp ? e.resp.data() : nullptr,
                   want_labels ? e.labels.data() : nullptr);
  check_evaluation(e.log_prob, e.resp, model.n_components, want_resp || want_labels);
  return e;
}

}  // namespace

std::vector<std::int32_t> predict(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  return evaluate(model, x, engine, false, true).labels;
}

std::vector<double> predict_proba(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  return evaluate(model, x, engine, true, false).resp;
}

std::vector<double> score_samples(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  return evaluate(model, x, engine, false, false).log_prob;
}

double score(const Model& model, const DataView& x, const EngineOptions& engine,
             const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;
  check_data_shape(x);  // before x.rows weights are read
  validate_sample_weight(sample_weight, x.rows);
  const std::vector<double> log_prob = score_samples(model, x, engine);
  double total = 0, weight = 0;
  for (std::size_t n = 0; n < log_prob.size(); ++n) {
    const double w = sample_weight ? sample_weight[n] : 1.0;
    total += w * log_prob[n];
    weight += w;
  }
  return total / weight;
}

double bic(const Model& model, const DataView& x, const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  const double log_likelihood = score(model, x, engine) * static_cast<double>(x.rows);
  return -2.0 * log_likelihood +
         static_cast<double>(model.n_parameters()) * std::log(static_cast<double>(x.rows));
}

double aic(const Model& model, const DataView& x, const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  const double log_likelihood = score(model, x, engine) * static_cast<double>(x.rows);
  return -2.0 * log_likelihood + 2.0 * static_cast<double>(model.n_parameters());
}

Sample sample(const Model& model, std::int64_t n, std::uint64_t seed, int n_threads) {
  const cpu::ScopedNonStopFp non_stop;
  model.validate();
  if (n < 0) throw InvalidArgument("sample: n is " + std::to_string(n) + ", must be >= 0");
  check_sample_memory(n, model.n_features);
  const int k = model.n_components, d = model.n_features;
  const std::size_t du = static_cast<std::size_t>(d);

  // Per component: a factor A with A A^T = covariance (full, tied: one for tied), or the
  // standard deviations (diag, spherical: a D x D factor of zeros cost K D^2).
  std::vector<Eigen::MatrixXd> factors;
  Eigen::MatrixXd deviations(k, d);
  const bool dense = model.covariance == Covariance::kFull || model.covariance == Covariance::kTied;
  if (model.family == Family::kGaussian) {
    using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    for (int c = 0; c < k; ++c) {
      switch (model.covariance) {
        case Covariance::kFull:
          factors.push_back(Eigen::LLT<Eigen::MatrixXd>(
                                Eigen::Map<const RowMatrix>(&model.covariances[c * du * du], d, d))
                                .matrixL());
          break;
        case Covariance::kTied:
          if (c == 0) {
            factors.push_back(Eigen::LLT<Eigen::MatrixXd>(
                                  Eigen::Map<const RowMatrix>(model.covariances.data(), d, d))
                                  .matrixL());
          }
          break;
        case Covariance::kDiag:
          for (int j = 0; j < d; ++j) deviations(c, j) = std::sqrt(model.covariances[c * du + j]);
          break;
        case Covariance::kSpherical:
          deviations.row(c).setConstant(std::sqrt(model.covariances[c]));
          break;
      }
    }
  }

  Sample out;
  out.x.resize(static_cast<std::size_t>(n) * du);
  out.labels.resize(static_cast<std::size_t>(n));
  // Blocks of rows, each drawn from its own generator seeded by (seed, block): the sample
  // depends on the seed alone, never on the threads that draw it, which run a block each
  // (one thread took 2-6x NumPy's time for a million rows).
  constexpr std::int64_t kBlockRows = std::int64_t{1} << 16;
  const std::int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
  const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
  std::exception_ptr failure;  // the first, rethrown here: none may leave a parallel region
  const unsigned caller_modes = cpu::fp_control_register();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (blocks > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    try {
      const cpu::ScopedFpModes modes(caller_modes);
      std::seed_seq sequence{static_cast<std::uint32_t>(seed),
                             static_cast<std::uint32_t>(seed >> 32), static_cast<std::uint32_t>(b),
                             static_cast<std::uint32_t>(b >> 32)};
      std::mt19937_64 rng(sequence);
      std::discrete_distribution<int> component(model.weights.begin(), model.weights.end());
      std::normal_distribution<double> normal(0.0, 1.0);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);  // Bernoulli: a draw below p
      const std::int64_t first_row = b * kBlockRows, end = std::min(n, first_row + kBlockRows);
      if (model.family == Family::kBinomial) {
        // The labels first, then component by component, its rows in order, with its D
        // distributions made once (one made per value cost most of the time; all K x D of them
        // at once, memory), each component from its own generator: the first m rows stay
        // sample(m)'s.
        std::vector<bool> present(static_cast<std::size_t>(k), false);
        for (std::int64_t i = first_row; i < end; ++i) {
          const int c = component(rng);
          out.labels[static_cast<std::size_t>(i)] = c;
          present[static_cast<std::size_t>(c)] = true;
        }
        std::vector<std::binomial_distribution<int>> counts;
        for (int c = 0; c < k; ++c) {
          if (!present[static_cast<std::size_t>(c)]) continue;
          std::seed_seq own{static_cast<std::uint32_t>(seed),
                            static_cast<std::uint32_t>(seed >> 32), static_cast<std::uint32_t>(b),
                            static_cast<std::uint32_t>(b >> 32), static_cast<std::uint32_t>(c) + 1};
          std::mt19937_64 values(own);
          counts.clear();
          for (int j = 0; j < d; ++j) {
            counts.emplace_back(model.trials, model.probabilities[static_cast<std::size_t>(c) * du +
                                                                  static_cast<std::size_t>(j)]);
          }
          for (std::int64_t i = first_row; i < end; ++i) {
            if (out.labels[static_cast<std::size_t>(i)] != c) continue;
            double* row = &out.x[static_cast<std::size_t>(i) * du];
            for (int j = 0; j < d; ++j) row[j] = counts[static_cast<std::size_t>(j)](values);
          }
        }
        continue;
      }
      Eigen::VectorXd z(d);
      for (std::int64_t i = first_row; i < end; ++i) {
        const int c = component(rng);
        out.labels[static_cast<std::size_t>(i)] = c;
        double* row = &out.x[static_cast<std::size_t>(i) * du];
        const std::size_t first = static_cast<std::size_t>(c) * du;
        if (model.family == Family::kBernoulli) {
          for (int j = 0; j < d; ++j) {
            row[j] = uniform(rng) < model.probabilities[first + j] ? 1 : 0;
          }
          continue;
        }
        for (int j = 0; j < d; ++j) z[j] = normal(rng);
        const Eigen::Map<const Eigen::VectorXd> mean(&model.means[first], d);
        if (dense) {
          const Eigen::MatrixXd& factor =
              factors[model.covariance == Covariance::kTied ? 0 : static_cast<std::size_t>(c)];
          Eigen::Map<Eigen::VectorXd>(row, d) = mean + factor.triangularView<Eigen::Lower>() * z;
        } else {
          Eigen::Map<Eigen::VectorXd>(row, d) =
              mean + deviations.row(c).transpose().cwiseProduct(z);
        }
      }
    } catch (...) {
#pragma omp critical(emix_sample_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

}  // namespace emix
