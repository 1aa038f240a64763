// The M-step: new parameters from the sufficient statistics alone (host, double).
#pragma once

#include <vector>

#include "core/prepared_model.hpp"
#include "core/statistics.hpp"
#include "emix/model.hpp"
#include "emix/statistics.hpp"

namespace emix {

using MaximizeOptions = MStepOptions;

// Statistics below this share of the total weight mean a component is empty: its parameters
// would be 0/0.
constexpr double kEmptyComponentShare = 1e-12;

// New parameters from `stats` (in `layout`, centred on `centres`, K x D). Components whose N_k
// is (numerically) zero keep their current parameters and are listed in `empty`; the caller
// re-seeds them. With fixed_weights, `current`'s weights are kept. Needs nothing of the model the
// statistics came from but these two.
Model maximize(const Model& current, const StatisticsLayout& layout, const double* centres,
               const double* stats, const MaximizeOptions& options, std::vector<int>* empty);

// The same with the layout and centres of `prepared`.
inline Model maximize(const Model& current, const PreparedModel& prepared, const double* stats,
                      const MaximizeOptions& options, std::vector<int>* empty) {
  return maximize(current, prepared.layout, prepared.centres.data(), stats, options, empty);
}

}  // namespace emix
