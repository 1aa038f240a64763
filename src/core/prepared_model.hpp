// What the E-step needs from a model, precomputed once per iteration on the host in double.
// Engines read only this; they never see Model or the M-step.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emix/model.hpp"
#include "statistics.hpp"

namespace emix {

// Per-point log-densities, for component k and row x (D values):
//
// Gaussian (every covariance type), with U_k the upper-triangular factor of the precision
// (Sigma_k^-1 = U_k U_k^T, scikit-learn's precisions_cholesky) and y = x^T U_k - mean_prec_k:
//     log p(x | k) = log_norm_k - 0.5 * ||y||^2
//     log_norm_k   = -0.5 D log(2 pi) + sum_d log U_k[d][d]
//   full:      prec_chol K x D x D (row-major U_k; entries below the diagonal are 0)
//   tied:      prec_chol D x D (one U shared by all k)
//   diag:      prec_chol K x D (the diagonal of U_k: 1 / sigma_kd)
//   spherical: prec_chol K (1 / sigma_k)
//   mean_prec  K x D: mean_k^T U_k
//
// Bernoulli and binomial (m = trials; m = 1 for Bernoulli), x_d in 0..m:
//     log p(x | k) = log_norm_k + sum_d x_d * logit_kd  + log_binom(x)
//     logit_kd     = log p_kd - log(1 - p_kd)
//     log_norm_k   = m * sum_d log(1 - p_kd)
//     log_binom(x) = sum_d log C(m, x_d)   (0 for Bernoulli; independent of k)
//
// Every family: log_weights_k = log w_k, and the statistics are shifted by centres (K x D):
// the current means for Gaussians, zero for Bernoulli / binomial.
// What engines derive from a prepared model alone, kept for the next calls on the same prepared
// model (an Evaluator's, a C API model handle's): values by key, each made once; two threads that
// miss at once may both make one, and the first stored is kept. Thread-safe.
class EngineCache {
 public:
  template <typename Value, typename Make>
  std::shared_ptr<const Value> get_or_make(const std::string& key, Make&& make) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto found = entries_.find(key);
      if (found != entries_.end()) return std::static_pointer_cast<const Value>(found->second);
    }
    std::shared_ptr<const void> made = std::make_shared<const Value>(make());
    const std::lock_guard<std::mutex> lock(mutex_);
    return std::static_pointer_cast<const Value>(
        entries_.emplace(key, std::move(made)).first->second);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const void>> entries_;
};

struct PreparedModel {
  Family family = Family::kGaussian;
  Covariance covariance = Covariance::kFull;
  int k = 0;
  int d = 0;
  int trials = 1;
  StatisticsLayout layout;

  std::vector<double> log_weights;  // K
  std::vector<double> log_norm;     // K
  std::vector<double> centres;      // K x D

  std::vector<double> prec_chol;  // Gaussian, see above
  std::vector<double> mean_prec;  // Gaussian, K x D
  std::vector<double> means;      // Gaussian, K x D

  std::vector<double> logit;  // Bernoulli / binomial, K x D

  // The statistics' entropy (StatisticsLayout::kEntropy) is wanted. When false an engine may
  // leave it 0 and save its cost (the CPU engine does: about 5 % of a diag float32 E-step); the
  // EM driver asks for it only where a criterion uses it.
  bool entropy = true;

  // Where engines keep what they derive from this model for later calls (the CPU engine's
  // evaluation plans: for a full model of 64 features, five times a one-row predict's own
  // work). Null, keeping nothing, unless the model is kept as it is for several calls: only an
  // Evaluator's and a C API handle's are; anything that changes a prepared model drops it.
  std::shared_ptr<EngineCache> engine_cache;
};

// The clamp of an evaluation's probabilities (predict, score, the statistics under a given
// model): the smallest prob_epsilon a fit takes, so that every fitted model evaluates as its fit
// did (at 1e-10, a model fitted with prob_epsilon 1e-14 scored its own rows 2e-10 off its
// log-likelihood, and rows it nearly forbids whole units off), and a probability of exactly 0 or
// 1 still has a finite log.
inline constexpr double kEvaluationProbEpsilon = 0x1p-53;

struct PrepareOptions {
  // Bernoulli / binomial probabilities are clamped to [prob_epsilon, 1 - prob_epsilon], so that
  // no log is infinite.
  double prob_epsilon = kEvaluationProbEpsilon;
  // Full and tied covariances of 128 features or more factor on up to this many threads (0:
  // OpenMP's default, as EngineOptions::n_threads).
  int threads = 1;
  // Full covariances: when set, a component whose covariance numerically_singular(cov, D,
  // reg_covar) calls singular is listed here (ascending) instead of failing, and the prepared
  // model is for nothing unless the list stays empty. The EM loop's singularity check and its
  // next E-step then take one factorisation.
  std::vector<int>* singular = nullptr;
  double reg_covar = 0;
  // A covariance that does not factor is refused as Model::validate refuses it (InvalidArgument
  // "model: covariance 2 is not positive definite") instead of by NumericalError: for
  // validate_and_prepare, which lets prepare's factorisation stand for the model check's.
  bool model_errors = false;
};

// Throws NumericalError if a covariance is not positive definite.
PreparedModel prepare(const Model& model, const PrepareOptions& options);
PreparedModel prepare(const Model& model, double prob_epsilon = kEvaluationProbEpsilon);

// When float arithmetic would not hold a float model to float32's tolerance against float64
// (1e-4 of a parameter), every engine computes it in double over the float rows: the CPU engine
// promotes the model, the GPU engine takes its general path, which computes in double.
constexpr double kFloat32Tolerance = 1e-4;

// Bernoulli / binomial: the largest size of the terms a log-density sums and that cancel to its
// value (of about -20): m sum_d |logit_kd| + |log w_k + log-normaliser_k|, 2e4 for m = 1000 and
// D = 5; without the bias term where an engine adds it in double. 0 for Gaussians.
double largest_discrete_terms(const PreparedModel& p, bool with_bias = true);

// Whether float arithmetic loses float32's tolerance on terms of that size.
inline bool float_loses_digits(double terms) {
  return 1.1920928955078125e-07 * terms > kFloat32Tolerance;  // float's epsilon, 2^-23
}

// Whether a positive sample weight lies outside [2^-100, 2^100]: engines multiply
// responsibilities by the weights and sum them in the data's element type, where float would
// overflow (weights of 1e35) or flush to zero. Only their ratios matter, but a float fit then
// runs in double rather than rescale them (rescaling would change the reported totals).
bool weights_outside_float_range(const double* sample_weight, std::int64_t n);

// log C(trials, v) for v = 0..trials (pointwise.hpp's log_binomial_coefficient), kept for the
// last `trials` asked for and shared by every engine and iteration: a table per E-step's plan
// cost 30 ms an iteration at 10^6 trials, where the rest of the iteration took 4.
std::shared_ptr<const std::vector<double>> log_binomial_coefficient_table(int trials);

}  // namespace emix
