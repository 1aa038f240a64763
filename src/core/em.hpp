// The EM driver's entry point behind every fit: fit() in memory, the chunked fit (chunked_fit.cpp,
// also emix.dask's), mpi::fit() and each candidate of select(). Each hands it an engine over
// every row (for MPI, one that combines the ranks' statistics; for chunks, one that walks them)
// and gets the same iterations.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "emix/fit.hpp"
#include "emix/statistics.hpp"

namespace emix {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start);

// The random stream of restart `run` of a fit seeded `seed`: initialisation, then re-seeding.
std::mt19937_64 run_rng(std::uint64_t seed, int run);

// Whether a restart whose log-likelihood is `candidate` replaces the best so far (taken in run
// order): only when higher by more than 1e-10 relative. Restarts that reach the same optimum
// differ in their last bits, by the grouping of their sums, which chunks, MPI ranks or a GPU
// change (1e-13 relative and less in the tests); a strict comparison let those bits choose, so
// that a distributed fit returned another restart, its components in another order, than one
// process. Within 1e-10 the first restart stays.
bool better_restart(double candidate, double best);

// One EM run from an initial model, advanced one iteration at a time, so that several runs
// (restarts, model-selection candidates) can share each pass over the data. Each run's
// arithmetic is what it would be alone.
class EmRun {
 public:
  // dtype: the data's element type (float32 E-steps hold the precisions in float).
  EmRun(std::int64_t n_rows, DType dtype, const FitOptions& options, int run_index,
        std::mt19937_64 rng, Model initial);

  bool done() const { return done_; }
  const Model& model() const { return model_; }
  // Prepares the current model for its E-step (prepared() until the next call).
  const PreparedModel& prepare_next();
  const PreparedModel& prepared() const { return prepared_; }
  // The E-step's statistics under prepared(), from a pass that began at `start`: records the
  // iteration, tests convergence and, unless done, takes the M-step (re-seeding empty or
  // collapsed components with rows gathered from `engine`).
  void advance(Engine& engine, const Statistics& stats, Clock::time_point start);
  // The model, history, iterations, convergence, times and warnings so far.
  FitReport& report() { return report_; }
  // sum_n w_n H_n, the responsibilities' entropy under report().model (its last E-step's), once
  // asked for by want_entropy() before the run's first pass (0 otherwise: fit() has no use for
  // it, and the CPU engine then saves its cost).
  double entropy() const { return entropy_; }
  void want_entropy() { want_entropy_ = true; }
  // Ends the run as failed (a NumericalError's message), for callers that keep the other runs
  // going (model selection).
  void fail(const std::string& why) {
    failure_ = why;
    done_ = true;
  }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  // Why the run's components kept collapsing to its end (re-seeded in two or more iterations
  // of its last tenth of max_iter), or empty: its log-likelihood then grows without bound on
  // points, and says nothing about the model's fit.
  const std::string& kept_collapsing() const { return kept_collapsing_; }

 private:
  double record_iteration(const Statistics& stats, Clock::time_point start);
  void note_kept_collapsing();
  Model m_step(Engine& engine, const Statistics& stats, std::vector<int>* empty);
  std::vector<int> collapsed_in_step(const Model& next, const std::vector<int>& empty);
  void restart_collapsed(Engine& engine, Model& next, const std::vector<int>& singular,
                         const std::vector<int>& empty);
  void reseed(Engine& engine, Model& next, int c, const char* why,
              const std::vector<double>* restart_covariance = nullptr);
  bool data_in_subspace(Engine& engine);
  PrepareOptions prepare_options() const;

  static constexpr int kMaxReseedWarnings = 20;
  static constexpr int kMaxReseeds = 1000;

  std::int64_t n_rows_;
  DType dtype_;
  FitOptions options_;
  int run_;
  std::mt19937_64 rng_;
  Model model_;
  PreparedModel prepared_;
  // model_ prepared by the M-step's singularity check (full covariances), for prepare_next.
  std::optional<PreparedModel> next_prepared_;
  MaximizeOptions mstep_;
  FitReport report_;
  int iteration_ = 0;
  double previous_mean_ = 0;
  double entropy_ = 0;
  bool want_entropy_ = false;
  int reseeds_ = 0;
  // Whether the step that made model_ re-seeded a component: the change in log-likelihood
  // across it is not an EM step's, and says nothing about convergence.
  bool reseeded_last_step_ = false;
  std::vector<int> reseed_iterations_;  // the iterations whose parameters re-seeds made
  bool subspace_checked_ = false;
  bool done_ = false;
  std::string failure_;
  std::string kept_collapsing_;
};

// Advances every run to its end; each pass over the data serves the runs not yet done
// (Engine::accumulate_many). Returns the number of passes. A NumericalError of one run (a
// covariance that is not positive definite, a log-likelihood that is not finite) ends the whole
// call, unless `isolate_failures`: then it ends that run only (EmRun::failed), and the others go
// on.
int run_together(Engine& engine, const std::vector<EmRun*>& runs, bool isolate_failures = false);

// The parts of a report that come from outside the run: the engine, the precision, the
// initialisation's notes and the warnings about convergence and identifiability.
void finish_report(FitReport& report, const Engine& engine, DType dtype, const FitOptions& options,
                   const std::vector<std::string>& notes);

// Writes the sample weights of rows idx[0..count) to out (1 where the fit has no weights).
using WeightGather = std::function<void(const std::int64_t* idx, std::int64_t count, double* out)>;

// EM with restarts from validated options; `engine` holds n_rows rows of n_features columns.
// NumericalError when every restart's components kept collapsing to its end.
FitReport run_em(Engine& engine, std::int64_t n_rows, int n_features, DType dtype,
                 const WeightGather& gather_weights, const FitOptions& options);

}  // namespace emix
