// The seam between engines and the M-step: sufficient statistics in one flat, additive buffer
// of doubles. Chunks, threads, GPUs and MPI ranks merge partial statistics by element-wise sum.
#pragma once

#include <cstddef>

#include "emix/model.hpp"

namespace emix {

// Offsets into the statistics buffer for K components over D features.
//
//   [kLogLikelihood]   sum_n w_n log p(x_n)
//   [kWeightSum]       sum_n w_n
//   nk      K          N_k = sum_n g_nk                      with g_nk = w_n * p(k | x_n)
//   s       K x D      S_k = sum_n g_nk (x_n - c_k)          c_k = PreparedModel::centres
//   q       Gaussian full / tied: K x D x D  Q_k = sum_n g_nk (x_n - c_k)(x_n - c_k)^T
//           Gaussian diag / spherical: K x D  its diagonal;  Bernoulli / binomial: none
struct StatisticsLayout {
  static constexpr std::size_t kLogLikelihood = 0;
  static constexpr std::size_t kWeightSum = 1;

  int k = 0;
  int d = 0;
  bool full_scatter = false;  // q holds D x D blocks
  bool has_scatter = false;   // q exists at all

  StatisticsLayout() = default;
  StatisticsLayout(Family family, Covariance covariance, int k, int d);

  std::size_t nk() const { return 2; }
  std::size_t s() const { return nk() + static_cast<std::size_t>(k); }
  std::size_t q() const { return s() + static_cast<std::size_t>(k) * d; }
  std::size_t q_per_component() const {
    return has_scatter ? (full_scatter ? static_cast<std::size_t>(d) * d : d) : 0;
  }
  std::size_t size() const { return q() + static_cast<std::size_t>(k) * q_per_component(); }
};

}  // namespace emix
