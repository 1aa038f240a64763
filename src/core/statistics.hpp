// The seam between engines and the M-step: sufficient statistics in one flat, additive buffer
// of doubles. Chunks, threads, GPUs and MPI ranks merge partial statistics by element-wise sum.
// This header is the one definition of the layout: host code and the GPU kernels (which take a
// StatisticsLayout by value) both index the buffer through it.
#pragma once

#include <cstddef>

#include "core/host_device.hpp"
#include "emix/model.hpp"

namespace emix {

// Offsets into the statistics buffer for K components over D features.
//
//   [kLogLikelihood]   sum_n w_n log p(x_n)
//   [kWeightSum]       sum_n w_n
//   [kEntropy]         sum_n w_n H_n,  H_n = -sum_k p(k | x_n) log p(k | x_n): not needed by
//                      the M-step; the responsibilities' entropy, for the ICL, taken in the
//                      same pass
//   nk      K          N_k = sum_n g_nk                      with g_nk = w_n * p(k | x_n)
//   s       K x D      S_k = sum_n g_nk (x_n - c_k)          c_k = PreparedModel::centres
//   q       Gaussian full / tied: K x D x D  Q_k = sum_n g_nk (x_n - c_k)(x_n - c_k)^T
//           Gaussian diag / spherical: K x D  its diagonal;  Bernoulli / binomial: none
//           (tied: only sum_k Q_k is defined; the CPU engine's tiles pool it into Q_0,
//           cpu_kernels_impl.hpp pooled_quadratic_statistics and plan_pooled_scatter)
//
// The packed variant (packed_scatter) holds only the upper triangle of each full Q_k, row by
// row (D (D + 1) / 2 values): what a GPU sums, since Q_k is symmetric. unpack_scatter turns it
// into the layout above, which is what engines return.
struct StatisticsLayout {
  static constexpr std::size_t kLogLikelihood = 0;
  static constexpr std::size_t kWeightSum = 1;
  static constexpr std::size_t kEntropy = 2;

  int k = 0;
  int d = 0;
  bool full_scatter = false;    // q holds D x D blocks (or their upper triangles when packed)
  bool has_scatter = false;     // q exists at all
  bool packed_scatter = false;  // full blocks hold their upper triangle only

  StatisticsLayout() = default;
  StatisticsLayout(Family family, Covariance covariance, int k, int d);

  // This layout with the full scatter packed (the same layout where there is none).
  StatisticsLayout packed() const {
    StatisticsLayout p = *this;
    p.packed_scatter = full_scatter;
    return p;
  }

  EMIX_HD std::size_t nk() const { return 3; }
  EMIX_HD std::size_t s() const { return nk() + static_cast<std::size_t>(k); }
  EMIX_HD std::size_t q() const { return s() + static_cast<std::size_t>(k) * d; }
  EMIX_HD std::size_t q_per_component() const {
    const std::size_t dd = static_cast<std::size_t>(d);
    if (!has_scatter) return 0;
    if (!full_scatter) return dd;
    return packed_scatter ? dd * (dd + 1) / 2 : dd * dd;
  }
  EMIX_HD std::size_t size() const { return q() + static_cast<std::size_t>(k) * q_per_component(); }

  // Index of S_k[j], and of Q_k[i][j] (full scatter; i <= j when packed) or Q_k[i] (diagonal).
  EMIX_HD std::size_t s_at(int c, int j) const {
    return s() + static_cast<std::size_t>(c) * d + static_cast<std::size_t>(j);
  }
  EMIX_HD std::size_t q_at(int c, int i, int j) const {
    const std::size_t base = q() + static_cast<std::size_t>(c) * q_per_component();
    const std::size_t ii = static_cast<std::size_t>(i), jj = static_cast<std::size_t>(j);
    if (!full_scatter) return base + ii;
    if (!packed_scatter) return base + ii * d + jj;
    // Rows 0..i-1 of the upper triangle hold i D - i (i - 1) / 2 values.
    return base + ii * d - ii * (ii - 1) / 2 + (jj - ii);
  }
};

// out (layout.size(), unpacked) from in (packed.size()), where packed = layout.packed():
// every Q_k written in full and exactly symmetric; everything else copied.
void unpack_scatter(const StatisticsLayout& layout, const double* in, double* out);

}  // namespace emix
