// Initial parameters for EM: k-means++ (+ k-means), random responsibilities, random rows.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "core/em.hpp"
#include "core/engine.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

// Initial parameters from (a sample of at most options.init_max_rows of) the engine's rows;
// gather_weights gives the sampled rows' weights.
Model initialize(Engine& engine, std::int64_t n_rows, int n_features,
                 const WeightGather& gather_weights, const FitOptions& options,
                 std::mt19937_64& rng, std::vector<std::string>* notes);

}  // namespace emix
