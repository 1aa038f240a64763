// Random mixtures for `emix generate` and `emix demo`: drawn with a small generator of our own
// (splitmix64, Box-Muller) so that a seed gives the same model on every platform and compiler.
#pragma once

#include <cstdint>

#include "emix/model.hpp"

namespace emix::cli {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double uniform();  // in [0, 1), 53 random bits
  double normal();   // standard normal

 private:
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// A seed for stream `stream` derived from `seed` (independent-looking for neighbouring values).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

// A random K-component mixture over D features:
//   Gaussian: means at least 8 apart where the box allows (covariance eigenvalues lie in
//             [0.5, 2.5], so components are well separated), random SPD covariances of the
//             requested type; beyond 4096 components the means are jittered points of a
//             lattice instead (always 8 apart, drawn in O(K D) rather than O(K^2 D));
//   Bernoulli / binomial: probabilities uniform in [0.05, 0.95];
//   weights: normalised Gamma(4) draws (a Dirichlet(4, ..., 4) draw), so none is tiny.
Model random_model(Family family, Covariance covariance, int k, int d, int trials,
                   std::uint64_t seed);

}  // namespace emix::cli
