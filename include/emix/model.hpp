// Mixture models: parameters only, in double precision, on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emix {

enum class Family { kGaussian, kBernoulli, kBinomial };

// scikit-learn's GaussianMixture covariance types.
enum class Covariance { kFull, kDiag, kSpherical, kTied };

const char* to_string(Family family);          // "gaussian", "bernoulli", "binomial"
const char* to_string(Covariance covariance);  // "full", "diag", "spherical", "tied"
Family parse_family(const std::string& name);  // throws InvalidArgument naming the value
Covariance parse_covariance(const std::string& name);

// A K-component mixture over D features. Every array is row-major and double.
//
//   weights        K            mixing weights, each in [0, 1], summing to 1
//   means          K x D        Gaussian only (empty for Bernoulli / binomial)
//   covariances    full: K x D x D, diag: K x D, spherical: K, tied: D x D   (Gaussian only)
//   probabilities  K x D        Bernoulli / binomial only: success probability per trial
//   trials         m            binomial: trials per entry (each x in 0..m); 1 for Bernoulli
struct Model {
  Family family = Family::kGaussian;
  Covariance covariance = Covariance::kFull;
  int n_components = 0;
  int n_features = 0;
  int trials = 1;
  std::vector<double> weights;
  std::vector<double> means;
  std::vector<double> covariances;
  std::vector<double> probabilities;

  // Number of doubles `covariances` holds for this model's shape.
  std::size_t covariance_size() const;
  // Free parameters (for BIC / AIC), counted as scikit-learn does.
  std::int64_t n_parameters() const;
  // Throws InvalidArgument naming the first problem: shapes, weights that are negative or do not
  // sum to 1 (within 1e-6), non-finite values, covariances that are not symmetric positive
  // definite, probabilities outside [0, 1], trials < 1.
  void validate() const;
};

}  // namespace emix
