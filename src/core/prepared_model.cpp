#include "core/prepared_model.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <string>

#include <Eigen/Core>

#include "core/cholesky.hpp"
#include "core/pointwise.hpp"
#include "core/threads.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// Below this size a full covariance's factorisation takes less than starting threads does.
constexpr int kThreadedFactorFeatures = 128;

// PrepareOptions::threads, 0 read as OpenMP's default.
int thread_count(const PrepareOptions& options) { return usable_threads(options.threads); }

// U with U U^T = cov^-1, upper triangular (scikit-learn's precisions_cholesky), written
// row-major to out, and sum log diag(U) to log_det. Throws NumericalError naming `what` if cov
// does not factor; with report_singular, returns false instead where numerically_singular(cov,
// d, reg_covar) would call it singular.
bool precision_cholesky(const double* cov, int d, int threads, const std::string& what,
                        bool report_singular, double reg_covar, double* out, double* log_det,
                        bool model_errors) {
  Eigen::MatrixXd lower;
  const bool factored = cholesky_factor(cov, d, lower);
  if (report_singular && singular_factor(factored, lower, cov, reg_covar)) return false;
  if (model_errors && !(factored && lower.diagonal().minCoeff() > 0)) {
    throw InvalidArgument("model: " + what + " is not positive definite");
  }
  if (!factored) {
    // Rounding decides whether a singular covariance fails to factor or leaves a pivot of 0.
    throw NumericalError(
        what + " is singular or not positive definite (its Cholesky factorisation failed)");
  }
  if (!(lower.diagonal().minCoeff() > 0)) {
    throw NumericalError(what + " is singular");
  }
  // U = L^-T, and U row-major is L^-1 column-major.
  const Eigen::MatrixXd inverse = lower_triangular_inverse(lower, threads);
  Eigen::Map<Eigen::MatrixXd>(out, d, d) = inverse;
  *log_det = inverse.diagonal().array().log().sum();
  return true;
}

}  // namespace

double largest_discrete_terms(const PreparedModel& p, bool with_bias) {
  if (p.family == Family::kGaussian) return 0;
  const double trials = p.family == Family::kBinomial ? p.trials : 1.0;
  double largest = 0;
  for (int c = 0; c < p.k; ++c) {
    double sum = 0;
    for (int j = 0; j < p.d; ++j) sum += std::abs(p.logit[static_cast<std::size_t>(c) * p.d + j]);
    const double bias = with_bias ? std::abs(p.log_norm[c] + p.log_weights[c]) : 0.0;
    largest = std::max(largest, trials * sum + bias);
  }
  return largest;
}

bool weights_outside_float_range(const double* sample_weight, std::int64_t n) {
  if (sample_weight == nullptr) return false;
  const double low = std::ldexp(1.0, -100), high = std::ldexp(1.0, 100);
  for (std::int64_t i = 0; i < n; ++i) {
    const double w = sample_weight[i];
    if (w > 0 && (w < low || w > high)) return true;
  }
  return false;
}

PreparedModel prepare(const Model& model, double prob_epsilon) {
  PrepareOptions options;
  options.prob_epsilon = prob_epsilon;
  return prepare(model, options);
}

PreparedModel prepare(const Model& model, const PrepareOptions& options) {
  const double prob_epsilon = options.prob_epsilon;
  PreparedModel p;
  p.family = model.family;
  p.covariance = model.covariance;
  p.k = model.n_components;
  p.d = model.n_features;
  p.trials = model.family == Family::kGaussian ? 1 : model.trials;
  p.layout = StatisticsLayout(model.family, model.covariance, p.k, p.d);
  const std::size_t k = static_cast<std::size_t>(p.k);
  const std::size_t d = static_cast<std::size_t>(p.d);

  p.log_weights.resize(k);
  for (std::size_t c = 0; c < k; ++c) p.log_weights[c] = std::log(model.weights[c]);
  p.log_norm.assign(k, 0.0);
  p.centres.assign(k * d, 0.0);

  if (model.family != Family::kGaussian) {
    p.logit.resize(k * d);
    for (std::size_t c = 0; c < k; ++c) {
      double log_norm = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double prob =
            std::clamp(model.probabilities[c * d + j], prob_epsilon, 1.0 - prob_epsilon);
        const double log_q = std::log1p(-prob);
        p.logit[c * d + j] = std::log(prob) - log_q;
        log_norm += log_q;
      }
      p.log_norm[c] = p.trials * log_norm;
    }
    return p;
  }

  p.means = model.means;
  p.centres = model.means;
  p.mean_prec.assign(k * d, 0.0);
  const double* cov = model.covariances.data();
  std::vector<double> log_det(k, 0.0);
  switch (model.covariance) {
    case Covariance::kFull: {
      p.prec_chol.resize(k * d * d);
      // Large components factor in parallel, or, one at a time, each inverse's panels do; a
      // component's numbers are the same either way.
      const int threads = p.d >= kThreadedFactorFeatures ? thread_count(options) : 1;
      const bool across = threads > 1 && p.k > 1;
      std::vector<char> factored(k, 1);
      std::vector<std::exception_ptr> errors(k);
      const unsigned caller_modes = cpu::fp_control_register();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (across)
      for (int c = 0; c < p.k; ++c) {
        const std::size_t at = static_cast<std::size_t>(c) * d * d;
        try {
          const cpu::ScopedFpModes modes(caller_modes);
          factored[c] = precision_cholesky(
              cov + at, p.d, across ? 1 : threads,
              (options.model_errors ? "covariance " : "covariance of component ") +
                  std::to_string(c),
              options.singular != nullptr, options.reg_covar, &p.prec_chol[at], &log_det[c],
              options.model_errors);
        } catch (...) {
          errors[c] = std::current_exception();
        }
      }
      for (const std::exception_ptr& error : errors) {
        if (error) std::rethrow_exception(error);
      }
      for (std::size_t c = 0; c < k; ++c) {
        if (!factored[c]) {
          options.singular->push_back(static_cast<int>(c));
          continue;
        }
        Eigen::Map<const RowMatrix> u(&p.prec_chol[c * d * d], p.d, p.d);
        Eigen::Map<const Eigen::RowVectorXd> mean(&p.means[c * d], p.d);
        Eigen::Map<Eigen::RowVectorXd>(&p.mean_prec[c * d], p.d) = mean * u;
      }
      break;
    }
    case Covariance::kTied: {
      p.prec_chol.resize(d * d);
      double shared = 0;
      precision_cholesky(cov, p.d, p.d >= kThreadedFactorFeatures ? thread_count(options) : 1,
                         "tied covariance", false, 0, p.prec_chol.data(), &shared,
                         options.model_errors);
      Eigen::Map<const RowMatrix> u(p.prec_chol.data(), p.d, p.d);
      for (std::size_t c = 0; c < k; ++c) {
        log_det[c] = shared;
        Eigen::Map<const Eigen::RowVectorXd> mean(&p.means[c * d], p.d);
        Eigen::Map<Eigen::RowVectorXd>(&p.mean_prec[c * d], p.d) = mean * u;
      }
      break;
    }
    case Covariance::kDiag: {
      p.prec_chol.resize(k * d);
      for (std::size_t i = 0; i < k * d; ++i) {
        if (!(cov[i] > 0)) {
          throw NumericalError("variance " + std::to_string(i % d) + " of component " +
                               std::to_string(i / d) + " is not positive");
        }
        p.prec_chol[i] = 1.0 / std::sqrt(cov[i]);
        log_det[i / d] += std::log(p.prec_chol[i]);
        p.mean_prec[i] = p.means[i] * p.prec_chol[i];
      }
      break;
    }
    case Covariance::kSpherical: {
      p.prec_chol.resize(k);
      for (std::size_t c = 0; c < k; ++c) {
        if (!(cov[c] > 0)) {
          throw NumericalError("variance of component " + std::to_string(c) + " is not positive");
        }
        p.prec_chol[c] = 1.0 / std::sqrt(cov[c]);
        log_det[c] = static_cast<double>(d) * std::log(p.prec_chol[c]);
        for (std::size_t j = 0; j < d; ++j) {
          p.mean_prec[c * d + j] = p.means[c * d + j] * p.prec_chol[c];
        }
      }
      break;
    }
  }
  for (std::size_t c = 0; c < k; ++c) {
    p.log_norm[c] = -0.5 * static_cast<double>(d) * kLog2Pi + log_det[c];
  }
  return p;
}

StatisticsLayout::StatisticsLayout(Family family, Covariance covariance, int k_, int d_)
    : k(k_), d(d_) {
  has_scatter = family == Family::kGaussian;
  full_scatter =
      has_scatter && (covariance == Covariance::kFull || covariance == Covariance::kTied);
}

void unpack_scatter(const StatisticsLayout& layout, const double* in, double* out) {
  const StatisticsLayout packed = layout.packed();
  std::copy(in, in + layout.q(), out);
  if (!layout.has_scatter) return;
  if (!layout.full_scatter) {
    std::copy(in + layout.q(), in + layout.size(), out + layout.q());
    return;
  }
  for (int c = 0; c < layout.k; ++c) {
    for (int i = 0; i < layout.d; ++i) {
      for (int j = i; j < layout.d; ++j) {
        const double v = in[packed.q_at(c, i, j)];
        out[layout.q_at(c, i, j)] = v;
        out[layout.q_at(c, j, i)] = v;
      }
    }
  }
}

std::shared_ptr<const std::vector<double>> log_binomial_coefficient_table(int trials) {
  static std::mutex mutex;
  static std::shared_ptr<const std::vector<double>> last;
  const std::lock_guard<std::mutex> lock(mutex);
  if (last == nullptr || static_cast<std::int64_t>(last->size()) != std::int64_t{trials} + 1) {
    auto table = std::make_shared<std::vector<double>>(static_cast<std::size_t>(trials) + 1);
    // log_binomial_coefficient takes the smaller of v and m - v: half the calls.
    for (int v = 0; v <= trials / 2; ++v) {
      (*table)[static_cast<std::size_t>(v)] = (*table)[static_cast<std::size_t>(trials - v)] =
          log_binomial_coefficient(trials, v);
    }
    last = std::move(table);
  }
  return last;
}

}  // namespace emix
