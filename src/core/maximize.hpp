// The M-step: new parameters from the sufficient statistics alone (host, double).
#pragma once

#include <vector>

#include "core/prepared_model.hpp"
#include "emix/model.hpp"

namespace emix {

struct MaximizeOptions {
  double reg_covar = 1e-6;
  double prob_epsilon = 1e-10;
  bool fixed_weights = false;
};

// Statistics below this share of the total weight mean a component is empty: its parameters
// would be 0/0.
constexpr double kEmptyComponentShare = 1e-12;

// New parameters from `stats` (layout of `prepared`, centres prepared.centres). Components whose
// N_k is (numerically) zero keep their current parameters and are listed in `empty`; the caller
// re-seeds them. With fixed_weights, `current`'s weights are kept.
Model maximize(const Model& current, const PreparedModel& prepared, const double* stats,
               const MaximizeOptions& options, std::vector<int>* empty);

}  // namespace emix
