// Online EM: stepwise EM (Cappé & Moulines, 2009) over a stream of batches, for data seen once
// or too many to re-read every iteration. Each batch's statistics under the current model are
// blended into running statistics with a decaying step size, and the M-step runs on those.
//
// It is not exact EM: its iterates depend on the batches' order and sizes, and it converges
// (with step sizes that decay) to a stationary point of the likelihood of the stream's
// distribution, with noise of the order of the last steps. On data that can be read again, fit()
// (in memory, or over a ChunkSource) gives the exact maximum-likelihood iterates instead.
#pragma once

#include <cstdint>

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"
#include "emix/statistics.hpp"

namespace emix {

struct OnlineOptions {
  // Step t (0, 1, 2, ...) has size (t + step_offset)^-step_decay: step_decay in (0.5, 1] (the
  // range of Robbins-Monro), step_offset >= 1. The running statistics start as the initial
  // model's own (Statistics::implied_by). step_offset 1: the first batch's statistics replace
  // them outright. To continue a model fitted on N rows with batches of B rows, step_decay 1
  // and step_offset N / B + 1 make the running statistics the mean of the fit's (as N / B
  // batches) and every batch's since.
  double step_decay = 0.6;
  double step_offset = 1.0;
  MStepOptions mstep;
};

class OnlineEm {
 public:
  // Throws InvalidArgument for an invalid model or options.
  explicit OnlineEm(Model initial, const OnlineOptions& options = {});
  // Resumes a stream where it stopped (a checkpoint, a pickled estimator): `model`, `running`,
  // `steps` and `last_mean_log_likelihood` as model(), running_statistics(), steps() and
  // last_mean_log_likelihood() were; the options may be new ones. The next step is then bitwise
  // the step the stopped object would have taken with them. Throws InvalidArgument for an
  // invalid model or options, statistics of another shape than the model, or negative steps.
  OnlineEm(Model model, const OnlineOptions& options, Statistics running, std::int64_t steps,
           double last_mean_log_likelihood);

  // One step on a batch of rows (N x D, host or device; sample_weight: host, N values or null):
  // the batch's statistics under model(), per unit of weight, blended into the running ones
  // (moved onto model()'s means first), then the M-step. A batch of zero total weight changes
  // nothing.
  void partial_fit(const DataView& batch, const EngineOptions& engine = {},
                   const double* sample_weight = nullptr);

  const Model& model() const { return model_; }
  std::int64_t steps() const { return steps_; }
  // Per unit of weight, centred on the means of the model they were last maximised from.
  const Statistics& running_statistics() const { return running_; }
  // The last batch's mean log-likelihood under the model before its step.
  double last_mean_log_likelihood() const { return last_mean_log_likelihood_; }

 private:
  Model model_;
  OnlineOptions options_;
  Statistics running_;
  std::int64_t steps_ = 0;
  double last_mean_log_likelihood_ = 0;
};

}  // namespace emix
