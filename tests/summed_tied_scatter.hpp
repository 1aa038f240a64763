// The tied scatter summed into Q_0, for comparing statistics: plain C++ (no GoogleTest), so that
// the benchmarks' checks (bench/gpu_timing.cu) use it too.
#pragma once

#include <cstddef>
#include <vector>

namespace emix::testing {

// Statistics values (or an engine's buffer in that layout) with every component's scatter Q_k
// added into Q_0 and the others zero, where `tied`: only their sum is defined, and engines split
// it among the components as they sum it (include/emix/statistics.hpp). q_begin: where the Q_k
// begin; q_block: the values of one Q_k.
inline std::vector<double> with_summed_tied_scatter(std::vector<double> values, bool tied, int k,
                                                    std::size_t q_begin, std::size_t q_block) {
  if (!tied) return values;
  for (int c = 1; c < k; ++c) {
    for (std::size_t e = 0; e < q_block; ++e) {
      values[q_begin + e] += values[q_begin + c * q_block + e];
      values[q_begin + c * q_block + e] = 0;
    }
  }
  return values;
}

}  // namespace emix::testing
