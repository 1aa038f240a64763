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

// sum_n w_n H_n, H_n = -sum_k p(k | x_n) log p(k | x_n), of validated rows x (weights: host,
// x.rows values, or null), in slices on engines of their own; deterministic for any thread count.
double weighted_entropy(const Model& model, const DataView& x, const EngineOptions& engine_options,
                        const double* sample_weight);

// One FitOptions per candidate, covariance types in the given order, then K; InvalidArgument
// for an empty grid.
std::vector<FitOptions> candidate_options(const SelectOptions& options);

// sum_n w_n H_n of each model, for the ICL.
using Entropies = std::function<std::vector<double>(const std::vector<const Model*>&)>;

// Fits and scores every candidate of `options` on `engine`, whose rows x d data (of type dtype)
// the caller has validated or validates as it reads them. gather_weights gives sampled rows'
// weights, weight_total the sum of all weights (N without weights; called once, after the
// fits), and entropies_of is called once, with every fitted candidate's model. The report's seconds
// are the caller's to set.
SelectReport select_on(Engine& engine, std::int64_t rows, int d, DType dtype,
                       const WeightGather& gather_weights,
                       const std::function<double()>& weight_total, const SelectOptions& options,
                       const Entropies& entropies_of);

}  // namespace emix
