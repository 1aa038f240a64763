// Fitting, prediction and scoring.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

struct FitReport {
  Model model;
  double log_likelihood = 0;       // total sum_n w_n log p(x_n | model) at the final parameters
  double mean_log_likelihood = 0;  // log_likelihood / sum_n w_n
  // Total log-likelihood under theta(0), theta(1), ..., theta(n_iter) of the best restart.
  std::vector<double> history;
  int n_iter = 0;  // M-steps taken
  bool converged = false;
  int best_init = 0;
  std::string engine;     // for example "cpu (2 threads)" or "gpu (NVIDIA H100 80GB HBM3)"
  std::string precision;  // "float32" / "float64": the data's element type
  // Wall times, seconds. seconds: the whole fit (validation, set-up, initialisation, EM).
  // setup_seconds: validation and the engine's set-up (for a GPU, the upload of the data).
  // init_seconds: initialisation of every restart (k-means++, k-means, ...).
  // iteration_seconds[i], i = 0 ... n_iter, of the best restart: the E-step under theta(i) and
  // the M-step to theta(i + 1) (the last entry has no M-step). Per-iteration speed is their
  // median or mean, free of set-up and initialisation.
  double seconds = 0;
  double setup_seconds = 0;
  double init_seconds = 0;
  std::vector<double> iteration_seconds;
  std::vector<std::string> warnings;
};

// Fits a mixture to x (N x D). sample_weight: host, N non-negative values (repetition counts),
// or null for all ones. Throws InvalidArgument on bad options or data, DataError on values
// (NaN, infinities) named by row and column, and NumericalError where the data leave no
// solution (a covariance singular with reg_covar 0, components that kept collapsing to the end
// in every restart).
FitReport fit(const DataView& x, const FitOptions& options, const double* sample_weight = nullptr);

// Most probable component of each row (N).
std::vector<std::int32_t> predict(const Model& model, const DataView& x,
                                  const EngineOptions& engine = {});
// Responsibilities p(k | x_n), N x K row-major.
std::vector<double> predict_proba(const Model& model, const DataView& x,
                                  const EngineOptions& engine = {});
// log p(x_n) per row (N).
std::vector<double> score_samples(const Model& model, const DataView& x,
                                  const EngineOptions& engine = {});
// Weighted mean of log p(x_n).
double score(const Model& model, const DataView& x, const EngineOptions& engine = {},
             const double* sample_weight = nullptr);

// -2 log L + p log W, and -2 log L + 2 p, with p = model.n_parameters(), log L the weighted sum
// sum_n w_n log p(x_n) and W the sum of the weights (N without; select's table counts so too).
double bic(const Model& model, const DataView& x, const EngineOptions& engine = {},
           const double* sample_weight = nullptr);
double aic(const Model& model, const DataView& x, const EngineOptions& engine = {},
           const double* sample_weight = nullptr);

// A model checked and factored once, for many evaluations. predict and the functions above
// check the model and factor each full or tied covariance on every call (at K = 16, D = 512
// that is 0.13 s, where the evaluation of a few rows takes milliseconds); an Evaluator does it
// once, in its constructor, and its methods give bitwise the results of those functions on its
// model. An Evaluator is immutable and cheap to copy (the copies share one prepared model); its
// methods may run on several threads at once.
class Evaluator {
 public:
  // Throws InvalidArgument as Model::validate. n_threads: threads that factor covariances of
  // 128 features or more (0: OpenMP's default); the factors are the same for any count.
  explicit Evaluator(Model model, int n_threads = 0);

  const Model& model() const;

  std::vector<std::int32_t> predict(const DataView& x, const EngineOptions& engine = {}) const;
  std::vector<double> predict_proba(const DataView& x, const EngineOptions& engine = {}) const;
  std::vector<double> score_samples(const DataView& x, const EngineOptions& engine = {}) const;
  double score(const DataView& x, const EngineOptions& engine = {},
               const double* sample_weight = nullptr) const;
  double bic(const DataView& x, const EngineOptions& engine = {},
             const double* sample_weight = nullptr) const;
  double aic(const DataView& x, const EngineOptions& engine = {},
             const double* sample_weight = nullptr) const;

 private:
  struct State;  // the model and its factors
  std::shared_ptr<const State> state_;
};

// Draws n points from the model: x (n x D, row-major) and the component of each. The draws
// depend on the seed alone (blocks of 65,536 rows, each from its own generator seeded by the
// seed and the block, drawn in parallel): the same whatever the threads, and the first m rows
// of sample(n) are sample(m). n_threads: 0 for OpenMP's default.
struct Sample {
  std::vector<double> x;
  std::vector<std::int32_t> labels;
};
Sample sample(const Model& model, std::int64_t n, std::uint64_t seed, int n_threads = 0);

// True when this build has a GPU engine, a CUDA device answers and cuBLAS loads.
bool gpu_available();
// Why gpu_available() is false, in words ("" when it is true).
std::string gpu_unavailable_reason();
// True when this build has a GPU engine (compiled with CUDA), whether or not a device answers.
bool gpu_built();
// CUDA devices the GPU engine can use (0 without CUDA or without a device).
int gpu_count();

}  // namespace emix
