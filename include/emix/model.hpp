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

// The extents of a Gaussian mixture's covariances (and of their precision factors), outermost
// first: full {K, D, D}, diag {K, D}, spherical {K}, tied {D, D}. The one statement of the rule,
// for sizes, model files and the messages that name a value by its index.
std::vector<std::size_t> covariance_extents(Covariance covariance, int k, int d);

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
  // Number of doubles of one block of `covariances`: a component's (D x D, D or 1), or for tied
  // covariances the one all components share (D x D).
  std::size_t covariance_block_size() const;
  // Free parameters (for BIC / AIC), counted as scikit-learn does.
  std::int64_t n_parameters() const;
  // Throws InvalidArgument naming the first problem: shapes, weights that are negative or do not
  // sum to 1 (within 1e-6), non-finite values, covariances that are not symmetric positive
  // definite, probabilities outside [0, 1], trials < 1.
  void validate() const;
};

}  // namespace emix
