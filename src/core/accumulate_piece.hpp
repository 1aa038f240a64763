// accumulate() of a piece of the rows whose sample weights the caller judges together with every
// other piece's: emix.dask's blocks and Python's chunk sources, where one piece may hold only
// tiny weights beside pieces of normal ones. The public accumulate() applies a fit's rule on the
// largest weight (check_largest_sample_weight) to the rows it is given; the caller of this one
// applies it to the largest of all the pieces' weights.
#pragma once

#include <vector>

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"
#include "emix/statistics.hpp"

namespace emix {

// About `centres` (K x D) where not null, else the model's means.
Statistics accumulate_piece(const Model& model, const std::vector<double>* centres,
                            const DataView& x, const EngineOptions& engine,
                            const double* sample_weight);

}  // namespace emix
