// The information criteria, written once for the estimators' bic() / aic() and select's table:
// a model of `parameters` free parameters (Model::n_parameters) whose rows, of total weight
// `weight` (N without sample weights), have log-likelihood `log_likelihood`.
#pragma once

#include <cmath>
#include <cstdint>

namespace emix {

inline double bic_of(double log_likelihood, std::int64_t parameters, double weight) {
  return -2.0 * log_likelihood + static_cast<double>(parameters) * std::log(weight);
}

inline double aic_of(double log_likelihood, std::int64_t parameters) {
  return -2.0 * log_likelihood + 2.0 * static_cast<double>(parameters);
}

}  // namespace emix
