// Initial parameters for EM: k-means++ (+ k-means), random responsibilities, random rows.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/em.hpp"
#include "core/engine.hpp"
#include "emix/errors.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

// Fewer rows of positive weight than components: the data cannot give this K a start. Model
// selection fails that K alone and fits the others.
class TooFewRows : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A uniform sample of `count` of the rows 0..n_rows-1 without replacement (Floyd's algorithm),
// in increasing order. kAuto picks how the rows taken are remembered (a bit per row, or a hash
// set for many rows); the sample is the same either way, as the test of both checks.
enum class RowSampler { kAuto, kFlags, kHashSet };
std::vector<std::int64_t> sample_rows(std::int64_t n_rows, std::int64_t count, std::mt19937_64& rng,
                                      RowSampler sampler = RowSampler::kAuto);

// What initialisation surely holds at its peak for `sample` rows (at most init_max_rows) of
// `cols` features, beside the data (a lower bound: the M-step's per-thread sums are not
// counted): the sampled rows; k-means++ also a centred copy of them, its seeding's vectors of
// the rows and k-means' per-block K x D sums (it works from labels, with no rows x components
// matrix); random also the rows' random responsibilities (rows x K). Nothing with an init
// model.
struct InitMemory {
  double bytes = 0;
  bool responsibilities_dominate = false;  // random's rows x K matrix is most of it
  std::string what;                        // "initialisation holds ...", in words
};
InitMemory initialization_memory(std::int64_t sample, std::int64_t cols, const FitOptions& options);

// Initial parameters from (a sample of at most options.init_max_rows of) the engine's rows;
// gather_weights gives the sampled rows' weights.
Model initialize(Engine& engine, std::int64_t n_rows, int n_features,
                 const WeightGather& gather_weights, const FitOptions& options,
                 std::mt19937_64& rng, std::vector<std::string>* notes);

// One initial model per covariance type (Gaussian; other families pass one entry), or the
// NumericalError that type's M-step gave. The sample, its k-means (or random assignment) and
// the draws from rng are shared: each model is bitwise what initialize() gives with that
// covariance type and rng, and rng ends as it would. `notes` receive the notes once.
struct InitialModel {
  std::optional<Model> model;
  std::string failure;
  std::vector<std::string> notes;  // this covariance type's own (a repaired singular start)
};
std::vector<InitialModel> initialize_each(Engine& engine, std::int64_t n_rows, int n_features,
                                          const WeightGather& gather_weights,
                                          const FitOptions& options,
                                          const std::vector<Covariance>& covariances,
                                          std::mt19937_64& rng, std::vector<std::string>* notes);

}  // namespace emix
