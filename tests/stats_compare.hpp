// Statistics compared element by element against scales that bound them (the GPU engine's
// tests and the CPU emulation of its kernels).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/prepared_model.hpp"
#include "test_util.hpp"

namespace emix::testing {

// Compares two statistics buffers element by element, each against a scale that bounds it:
//   log-likelihood: max(|ll|, W);  W, N_k: W;  entropy: W max(1, log K) (H_n <= log K);
//   S_kd: sqrt(N_k Q_kdd) for Gaussians (Cauchy-Schwarz), N_k m for Bernoulli / binomial;
//   Q_kij: sqrt(Q_kii Q_kjj).
// Every scale is floored at 1e-9 W. Reports the first element over tol. Tied scatters are
// compared as their sum over components, held in Q_0 (all that tied's M-step reads; the CPU
// engine may form it pooled), and S_kd against sqrt(N_k sum_j Q_jdd).
inline ::testing::AssertionResult stats_close(const emix::PreparedModel& prepared,
                                              std::vector<double> gpu, std::vector<double> cpu,
                                              double tol) {
  const emix::StatisticsLayout& layout = prepared.layout;
  if (gpu.size() != layout.size() || cpu.size() != layout.size()) {
    return ::testing::AssertionFailure() << "sizes " << gpu.size() << " / " << cpu.size();
  }
  const bool tied = prepared.covariance == emix::Covariance::kTied && layout.has_scatter;
  gpu = with_summed_tied_scatter(std::move(gpu), tied, layout.k, layout.q(),
                                 layout.q_per_component());
  cpu = with_summed_tied_scatter(std::move(cpu), tied, layout.k, layout.q(),
                                 layout.q_per_component());
  const int k = layout.k, d = layout.d;
  const double w = cpu[emix::StatisticsLayout::kWeightSum];
  const auto q_at = [&](int c, int i, int j) {
    if (!layout.has_scatter) return 0.0;
    if (tied) c = 0;
    if (layout.full_scatter) {
      return cpu[layout.q() + (static_cast<std::size_t>(c) * d + i) * d + j];
    }
    return cpu[layout.q() + static_cast<std::size_t>(c) * d + i];
  };
  double worst = 0;
  std::size_t worst_at = 0;
  const auto check = [&](std::size_t e, double scale) {
    scale = std::max(scale, 1e-9 * w);
    const double r = std::abs(gpu[e] - cpu[e]) / scale;
    if (!(r <= worst) || std::isnan(r)) {
      worst = std::isnan(r) ? INFINITY : r;
      worst_at = e;
    }
  };
  check(0, std::max(std::abs(cpu[0]), w));
  check(1, w);
  check(emix::StatisticsLayout::kEntropy, w * std::max(1.0, std::log(static_cast<double>(k))));
  for (int c = 0; c < k; ++c) {
    check(layout.nk() + c, w);
    const double nk = cpu[layout.nk() + c];
    for (int j = 0; j < d; ++j) {
      const double scale =
          layout.has_scatter ? std::sqrt(std::max(0.0, nk * q_at(c, j, j))) : nk * prepared.trials;
      check(layout.s() + static_cast<std::size_t>(c) * d + j, scale);
    }
    if (!layout.has_scatter) continue;
    for (int i = 0; i < d; ++i) {
      const int j_end = layout.full_scatter ? d : 1;
      for (int j = 0; j < j_end; ++j) {
        const int jj = layout.full_scatter ? j : i;
        const std::size_t e = layout.q() + static_cast<std::size_t>(c) * layout.q_per_component() +
                              (layout.full_scatter ? static_cast<std::size_t>(i) * d + j : i);
        check(e, std::sqrt(std::max(0.0, q_at(c, i, i) * q_at(c, jj, jj))));
      }
    }
  }
  if (worst <= tol) return ::testing::AssertionSuccess() << "worst " << worst;
  return ::testing::AssertionFailure()
         << "element " << worst_at << " (layout: nk at " << layout.nk() << ", s at " << layout.s()
         << ", q at " << layout.q() << "): gpu " << gpu[worst_at] << " cpu " << cpu[worst_at]
         << ", scaled difference " << worst << " > " << tol;
}

}  // namespace emix::testing
