// The EM driver's entry point behind fit() and mpi::fit(): both hand it an engine that holds
// every row (for MPI, one that combines the ranks' statistics) and get the same iterations.
#pragma once

#include <cstdint>
#include <functional>

#include "core/engine.hpp"
#include "emix/fit.hpp"

namespace emix {

// Writes the sample weights of rows idx[0..count) to out (1 where the fit has no weights).
using WeightGather = std::function<void(const std::int64_t* idx, std::int64_t count, double* out)>;

// EM with restarts from validated options; `engine` holds n_rows rows of n_features columns.
FitReport run_em(Engine& engine, std::int64_t n_rows, int n_features, DType dtype,
                 const WeightGather& gather_weights, const FitOptions& options);

}  // namespace emix
