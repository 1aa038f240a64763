// The engine-level part of emix::select, shared by the selection over an array (select.cpp) and
// over a chunk source (chunked_fit.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/em.hpp"
#include "core/engine.hpp"
#include "emix/select.hpp"

namespace emix {

// One FitOptions per candidate, covariance types in the given order, then K; InvalidArgument
// for an empty grid.
std::vector<FitOptions> candidate_options(const SelectOptions& options);

// Fits and scores every candidate of `options` on `engine`, whose rows x d data (of type dtype)
// the caller has validated or validates as it reads them. gather_weights gives sampled rows'
// weights, weight_total the sum of all weights (N without weights; called once, after the
// fits). Each candidate's ICL takes the entropy its last E-step accumulated. The report's
// seconds are the caller's to set.
SelectReport select_on(Engine& engine, std::int64_t rows, int d, DType dtype,
                       const WeightGather& gather_weights,
                       const std::function<double()>& weight_total, const SelectOptions& options);

}  // namespace emix
