// Prediction, scoring and sampling on a fitted model.
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/criteria.hpp"
#include "core/engine.hpp"
#include "core/evaluation.hpp"
#include "core/interrupt.hpp"
#include "core/prepared_model.hpp"
#include "core/sampling.hpp"
#include "core/threads.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/version.hpp"

namespace emix {

const char* version() { return EMIX_VERSION_STRING; }

namespace {

// Before results of the data's size are allocated: a shape that can be read (data without rows
// have no results) and results (`bytes_per_row` each, `what`) that fit in memory.
void check_results_fit(const DataView& x, double bytes_per_row, const std::string& what) {
  if (x.rows != 0) check_data_shape(x);
  check_result_memory(x.rows, bytes_per_row, what);
}

// Rows of a Gaussian block that an engine left NaN (their log-density or responsibilities) or
// at a log-density of -inf: evaluated again by far_row_log_joints, all gathered in one call
// (from a GPU, one copy). A row with a value that is not finite (device data are not scanned
// before) stays NaN, for check_evaluation to refuse; one truly too far from every component
// stays -inf.
void evaluate_far_rows(const PreparedModel& m, Engine& engine, std::int64_t rows, double* log_prob,
                       double* resp, std::int32_t* labels) {
  if (m.family != Family::kGaussian) return;
  const std::size_t k = static_cast<std::size_t>(m.k);
  const std::size_t d = static_cast<std::size_t>(m.d);
  std::vector<std::int64_t> far;
  for (std::int64_t n = 0; n < rows; ++n) {
    const std::size_t i = static_cast<std::size_t>(n);
    bool again = std::isnan(log_prob[i]) || log_prob[i] == -std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; resp != nullptr && !again && c < k; ++c) {
      again = std::isnan(resp[i * k + c]);
    }
    if (again) far.push_back(n);
  }
  if (far.empty()) return;
  std::vector<double> x(far.size() * d), log_joint(k);
  engine.gather_rows(far.data(), static_cast<std::int64_t>(far.size()), x.data());
  for (std::size_t f = 0; f < far.size(); ++f) {
    const double* row = &x[f * d];
    if (!std::all_of(row, row + d, [](double v) { return std::isfinite(v); })) continue;
    const std::size_t i = static_cast<std::size_t>(far[f]);
    far_row_log_joints(m, row, log_joint.data());
    const auto nearest = std::max_element(log_joint.begin(), log_joint.end());
    const double top = *nearest;
    double total = 0;
    if (std::isfinite(top)) {
      for (const double value : log_joint) total += std::exp(value - top);
    }
    log_prob[i] = std::isfinite(top) ? top + std::log(total) : top;
    for (std::size_t c = 0; resp != nullptr && c < k; ++c) {
      resp[i * k + c] = std::isfinite(top) ? std::exp(log_joint[c] - log_prob[i]) : 0.0;
    }
    if (labels != nullptr) labels[i] = static_cast<std::int32_t>(nearest - log_joint.begin());
  }
}

}  // namespace

void far_row_log_joints(const PreparedModel& m, const double* x, double* log_joint) {
  const std::size_t d = static_cast<std::size_t>(m.d);
  std::vector<double> t(d);
  for (int c = 0; c < m.k; ++c) {
    const double* mean = &m.means[static_cast<std::size_t>(c) * d];
    double scale = 0;
    for (std::size_t j = 0; j < d; ++j) {
      t[j] = 0.5 * x[j] - 0.5 * mean[j];
      scale = std::max(scale, std::abs(t[j]));
    }
    double squared_norm = 0;
    if (scale > 0) {
      for (double& value : t) value /= scale;
      for (std::size_t i = 0; i < d; ++i) {  // y_i = sum_j t_j U[j][i], U upper triangular
        double y = 0;
        switch (m.covariance) {
          case Covariance::kFull:
          case Covariance::kTied: {
            const std::size_t factor =
                m.covariance == Covariance::kFull ? static_cast<std::size_t>(c) * d * d : 0;
            for (std::size_t j = 0; j <= i; ++j) y += t[j] * m.prec_chol[factor + j * d + i];
            break;
          }
          case Covariance::kDiag:
            y = t[i] * m.prec_chol[static_cast<std::size_t>(c) * d + i];
            break;
          case Covariance::kSpherical:
            y = t[i] * m.prec_chol[static_cast<std::size_t>(c)];
            break;
        }
        squared_norm += y * y;
      }
    }
    const double distance = 2 * scale;  // t was taken at half scale
    log_joint[c] = m.log_weights[static_cast<std::size_t>(c)] +
                   m.log_norm[static_cast<std::size_t>(c)] -
                   0.5 * (squared_norm * distance * distance);
  }
}

void evaluate_rows(const Model& model, const DataView& x, const EngineOptions& options,
                   const RowResults& results, const BlockLogDensities& each_block,
                   std::int64_t block_rows) {
  validate(options);
  evaluate_rows(model, validate_and_prepare(model, options.n_threads), x, options, results,
                each_block, block_rows);
}

void evaluate_rows(const Model& model, const CheckedModel& checked, const DataView& x,
                   const EngineOptions& options, const RowResults& results,
                   const BlockLogDensities& each_block, std::int64_t block_rows) {
  validate(options);
  if (x.rows == 0) {
    // A rank's or a chunk's share of nothing, as accumulate takes it: no results.
    check_model_width(model, x.cols);
    return;
  }
  validate_checked_model_for_data(model, checked, x);
  const PreparedModel& prepared = checked.prepared;
  const std::size_t k = static_cast<std::size_t>(model.n_components);
  const bool assigning = results.resp != nullptr || results.labels != nullptr;
  // Host buffers for what the caller does not take in host memory: the log-densities
  // (check_evaluation reads them) and, for results in device memory, all of them, their
  // responsibilities in blocks K times shorter (2^24 x K doubles was 1.3 GB at K = 10).
  const bool staged = results.on_device;
  const std::int64_t staged_rows = staged && results.resp
                                       ? std::max<std::int64_t>(1, block_rows / model.n_components)
                                       : block_rows;
  const std::int64_t rows_per_block = std::clamp<std::int64_t>(staged_rows, 1, x.rows);
  const std::size_t block = static_cast<std::size_t>(rows_per_block);
  std::vector<double> log_prob_block(results.log_prob && !staged ? 0 : block);
  std::vector<double> resp_block(results.resp && staged ? block * k : 0);
  std::vector<std::int32_t> labels_block(results.labels && staged ? block : 0);
  const std::size_t row_bytes = static_cast<std::size_t>(x.cols) * dtype_size(x.dtype);

  for (std::int64_t first = 0; first < x.rows; first += rows_per_block) {
    const std::int64_t rows = std::min(rows_per_block, x.rows - first);
    const std::size_t offset = static_cast<std::size_t>(first);
    DataView part = x;
    part.data = static_cast<const char*>(x.data) + offset * row_bytes;
    part.rows = rows;
    double* log_prob = log_prob_block.empty() ? results.log_prob + offset : log_prob_block.data();
    double* resp = !results.resp ? nullptr : staged ? resp_block.data() : results.resp + offset * k;
    std::int32_t* labels = !results.labels ? nullptr
                           : staged        ? labels_block.data()
                                           : results.labels + offset;
    const std::unique_ptr<Engine> engine = make_engine(part, nullptr, options);
    engine->evaluate(prepared, log_prob, resp, labels);
    bool refused = false, zero_density = false;
    try {
      check_evaluation(log_prob, resp, rows, model.n_components, assigning, first, &zero_density);
    } catch (const DataError&) {
      refused = true;
    }
    // Only a block the check refuses, or one with a Gaussian density that rounded to zero (the
    // GPU's general path cancels near a mean far from the data's centre), pays for looking
    // again: those rows are evaluated by far_row_log_joints, and what is still wrong is refused.
    if (refused || (zero_density && prepared.family == Family::kGaussian)) {
      evaluate_far_rows(prepared, *engine, rows, log_prob, resp, labels);
      check_evaluation(log_prob, resp, rows, model.n_components, assigning, first);
    }
    if (resp != nullptr && x.dtype == DType::kFloat32) {
      // Each responsibility of a float32 evaluation holds float's 7 digits, and its row summed
      // to 1 only within 1e-7, which NumPy's choice(p=row) refuses (it asks 1.5e-8 of float64
      // rows): each row divided by its sum in double.
      for (std::size_t row = 0; row < static_cast<std::size_t>(rows) * k; row += k) {
        double sum = 0;
        for (std::size_t c = 0; c < k; ++c) sum += resp[row + c];
        for (std::size_t c = 0; c < k; ++c) resp[row + c] /= sum;
      }
    }
    if (staged) {
      const std::size_t n = static_cast<std::size_t>(rows);
      if (results.log_prob) {
        copy_host_to_device(results.log_prob + offset, log_prob, n * sizeof(double));
      }
      if (results.resp)
        copy_host_to_device(results.resp + offset * k, resp, n * k * sizeof(double));
      if (results.labels) {
        copy_host_to_device(results.labels + offset, labels, n * sizeof(std::int32_t));
      }
    }
    if (each_block) each_block(first, rows, log_prob);
  }
}

namespace {

// evaluate_rows with the model's validate_and_prepare, or, when `checked` is null, taking it.
void evaluate_model_rows(const Model& model, const CheckedModel* checked, const DataView& x,
                         const EngineOptions& engine, const RowResults& results,
                         const BlockLogDensities& each_block = {}) {
  if (checked != nullptr) {
    evaluate_rows(model, *checked, x, engine, results, each_block);
  } else {
    evaluate_rows(model, x, engine, results, each_block);
  }
}

std::vector<std::int32_t> predict_checked(const Model& model, const CheckedModel* checked,
                                          const DataView& x, const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  check_results_fit(x, sizeof(std::int32_t), "a label (int32)");
  std::vector<std::int32_t> labels(static_cast<std::size_t>(x.rows));
  RowResults results;
  results.labels = labels.data();
  evaluate_model_rows(model, checked, x, engine, results);
  return labels;
}

std::vector<double> predict_proba_checked(const Model& model, const CheckedModel* checked,
                                          const DataView& x, const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  check_results_fit(x, 8.0 * model.n_components,
                    std::to_string(model.n_components) + " responsibilities (float64)");
  std::vector<double> resp(static_cast<std::size_t>(x.rows) *
                           static_cast<std::size_t>(std::max(model.n_components, 0)));
  RowResults results;
  results.resp = resp.data();
  evaluate_model_rows(model, checked, x, engine, results);
  return resp;
}

std::vector<double> score_samples_checked(const Model& model, const CheckedModel* checked,
                                          const DataView& x, const EngineOptions& engine) {
  const cpu::ScopedNonStopFp non_stop;
  check_results_fit(x, sizeof(double), "a log-density (float64)");
  std::vector<double> log_prob(static_cast<std::size_t>(x.rows));
  RowResults results;
  results.log_prob = log_prob.data();
  evaluate_model_rows(model, checked, x, engine, results);
  return log_prob;
}

}  // namespace

namespace {

struct LogLikelihood {
  double total = 0;   // sum_n w_n log p(x_n)
  double weight = 0;  // sum_n w_n (N without weights)
};

LogLikelihood weighted_log_likelihood(const Model& model, const CheckedModel* checked,
                                      const DataView& x, const EngineOptions& engine,
                                      const double* sample_weight) {
  check_data_shape(x);  // before x.rows weights are read; and a mean of no rows is undefined
  validate_sample_weight(sample_weight, x.rows);
  // Summed a block at a time, in row order: the per-row log-densities are never held whole.
  LogLikelihood sum;
  evaluate_model_rows(model, checked, x, engine, RowResults{},
                      [&](std::int64_t first_row, std::int64_t rows, const double* log_prob) {
                        for (std::int64_t i = 0; i < rows; ++i) {
                          const double w = sample_weight ? sample_weight[first_row + i] : 1.0;
                          sum.total += w * log_prob[i];
                          sum.weight += w;
                        }
                      });
  return sum;
}

}  // namespace

double score_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                     const EngineOptions& engine, const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;
  const LogLikelihood sum = weighted_log_likelihood(model, checked, x, engine, sample_weight);
  return sum.total / sum.weight;
}

double bic_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                   const EngineOptions& engine, const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;
  const LogLikelihood sum = weighted_log_likelihood(model, checked, x, engine, sample_weight);
  return bic_of(sum.total, model.n_parameters(), sum.weight);
}

double aic_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                   const EngineOptions& engine, const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;
  const LogLikelihood sum = weighted_log_likelihood(model, checked, x, engine, sample_weight);
  return aic_of(sum.total, model.n_parameters());
}

std::vector<std::int32_t> predict(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  return predict_checked(model, nullptr, x, engine);
}

std::vector<double> predict_proba(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  return predict_proba_checked(model, nullptr, x, engine);
}

std::vector<double> score_samples(const Model& model, const DataView& x,
                                  const EngineOptions& engine) {
  return score_samples_checked(model, nullptr, x, engine);
}

double score(const Model& model, const DataView& x, const EngineOptions& engine,
             const double* sample_weight) {
  return score_checked(model, nullptr, x, engine, sample_weight);
}

double bic(const Model& model, const DataView& x, const EngineOptions& engine,
           const double* sample_weight) {
  return bic_checked(model, nullptr, x, engine, sample_weight);
}

double aic(const Model& model, const DataView& x, const EngineOptions& engine,
           const double* sample_weight) {
  return aic_checked(model, nullptr, x, engine, sample_weight);
}

struct Evaluator::State {
  Model model;
  CheckedModel checked;
};

Evaluator::Evaluator(Model model, int n_threads) {
  if (n_threads < 0 || n_threads > kMaxThreads) {
    throw InvalidArgument("Evaluator: n_threads is " + std::to_string(n_threads) +
                          ", must be 0 (OpenMP's default) to " + std::to_string(kMaxThreads));
  }
  const cpu::ScopedNonStopFp non_stop;
  CheckedModel checked = validate_and_prepare(model, n_threads);
  checked.prepared.engine_cache = std::make_shared<EngineCache>();  // kept as it is from here
  state_ = std::make_shared<const State>(State{std::move(model), std::move(checked)});
}

const Model& Evaluator::model() const { return state_->model; }

std::vector<std::int32_t> Evaluator::predict(const DataView& x, const EngineOptions& engine) const {
  return predict_checked(state_->model, &state_->checked, x, engine);
}

std::vector<double> Evaluator::predict_proba(const DataView& x, const EngineOptions& engine) const {
  return predict_proba_checked(state_->model, &state_->checked, x, engine);
}

std::vector<double> Evaluator::score_samples(const DataView& x, const EngineOptions& engine) const {
  return score_samples_checked(state_->model, &state_->checked, x, engine);
}

double Evaluator::score(const DataView& x, const EngineOptions& engine,
                        const double* sample_weight) const {
  return score_checked(state_->model, &state_->checked, x, engine, sample_weight);
}

double Evaluator::bic(const DataView& x, const EngineOptions& engine,
                      const double* sample_weight) const {
  return bic_checked(state_->model, &state_->checked, x, engine, sample_weight);
}

double Evaluator::aic(const DataView& x, const EngineOptions& engine,
                      const double* sample_weight) const {
  return aic_checked(state_->model, &state_->checked, x, engine, sample_weight);
}

Sample sample(const Model& model, std::int64_t n, std::uint64_t seed, int n_threads) {
  return sample_in_blocks(model, n, n_threads, std::int64_t{1} << 16, [seed](std::int64_t block) {
    return std::array<std::uint32_t, 4>{
        static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
        static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32)};
  });
}

Sample sample_in_blocks(const Model& model, std::int64_t n, int n_threads, std::int64_t block_rows,
                        const BlockSeed& block_seed) {
  const cpu::ScopedNonStopFp non_stop;
  model.validate();
  if (n < 0) throw InvalidArgument("sample: n is " + std::to_string(n) + ", must be >= 0");
  if (block_rows < 1) {
    throw InvalidArgument("sample: blocks of " + std::to_string(block_rows) + " rows");
  }
  EngineOptions thread_count;
  thread_count.n_threads = n_threads;
  validate(thread_count);  // the range, and the message, of every other call's n_threads
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
  // Blocks of rows, each drawn from its own generator: the sample depends on the seeds alone,
  // never on the threads that draw it, which run a block each (one thread took 2-6x NumPy's
  // time for a million rows).
  const std::int64_t blocks = (n + block_rows - 1) / block_rows;
  const int threads = usable_threads(n_threads);
  std::exception_ptr failure;      // the first, rethrown here: none may leave a parallel region
  std::exception_ptr interrupted;  // the caller's InterruptCheck's, from the thread that holds it
  std::atomic<bool> stop{false};
  // The check every ~65,536 multiply-adds of a block's rows (65,536 rows over 512 full features
  // take seconds), counted from the block's first row.
  const std::int64_t rows_per_check =
      std::max<std::int64_t>(1, (std::int64_t{1} << 16) / static_cast<std::int64_t>(du * du));
  const auto stopping = [&](std::int64_t row) {
    if (row % rows_per_check == 0 && detail::interrupt_requested(interrupted)) {
      stop.store(true, std::memory_order_relaxed);
    }
    return stop.load(std::memory_order_relaxed);
  };
  const unsigned caller_modes = cpu::fp_control_register();
  const auto draw_block = [&](std::int64_t b) {
    const cpu::ScopedFpModes modes(caller_modes);
    const std::array<std::uint32_t, 4> words = block_seed(b);
    std::seed_seq sequence(words.begin(), words.end());
    std::mt19937_64 rng(sequence);
    std::discrete_distribution<int> component(model.weights.begin(), model.weights.end());
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);  // Bernoulli: a draw below p
    const std::int64_t first_row = b * block_rows, end = std::min(n, first_row + block_rows);
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
        if (stopping(0)) return;
        if (!present[static_cast<std::size_t>(c)]) continue;
        std::seed_seq own{words[0], words[1], words[2], words[3],
                          static_cast<std::uint32_t>(c) + 1};
        std::mt19937_64 values(own);
        counts.clear();
        for (int j = 0; j < d; ++j) {
          counts.emplace_back(
              model.trials,
              model.probabilities[static_cast<std::size_t>(c) * du + static_cast<std::size_t>(j)]);
        }
        // Counting the rows drawn, not the K x rows labels read: a check per label read cost
        // half again a draw of K = 256 components over one feature.
        std::int64_t drawn = 0;
        for (std::int64_t i = first_row; i < end; ++i) {
          if (out.labels[static_cast<std::size_t>(i)] != c) continue;
          if (stopping(drawn++)) return;
          double* row = &out.x[static_cast<std::size_t>(i) * du];
          for (int j = 0; j < d; ++j) row[j] = counts[static_cast<std::size_t>(j)](values);
        }
      }
      return;
    }
    Eigen::VectorXd z(d);
    for (std::int64_t i = first_row; i < end; ++i) {
      if (stopping(i - first_row)) return;
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
        Eigen::Map<Eigen::VectorXd>(row, d) = mean + deviations.row(c).transpose().cwiseProduct(z);
      }
    }
  };
  std::atomic<std::int64_t> blocks_done{0};
#pragma omp parallel num_threads(threads) if (blocks > 1)
  {
#pragma omp for schedule(dynamic, 1) nowait
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (!stop.load(std::memory_order_relaxed)) {
        try {
          draw_block(b);
        } catch (...) {
#pragma omp critical(emix_sample_failure)
          if (!failure) failure = std::current_exception();
          stop.store(true, std::memory_order_relaxed);
        }
      }
      blocks_done.fetch_add(1, std::memory_order_relaxed);
    }
    // The caller's thread, its share drawn, runs the check while the others draw theirs: it
    // would wait at the region's end for up to a block without it.
#pragma omp master
    while (blocks_done.load(std::memory_order_relaxed) < blocks &&
           !stop.load(std::memory_order_relaxed)) {
      if (detail::interrupt_requested(interrupted)) {
        stop.store(true, std::memory_order_relaxed);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (interrupted) std::rethrow_exception(interrupted);
  return out;
}

}  // namespace emix
