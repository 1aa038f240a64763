#include "emix/online.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "emix/errors.hpp"

namespace emix {

OnlineEm::OnlineEm(Model initial, const OnlineOptions& options)
    : model_(std::move(initial)), options_(options) {
  model_.validate();
  if (!(options_.step_decay > 0.5 && options_.step_decay <= 1.0)) {
    throw InvalidArgument("online EM: step_decay = " + std::to_string(options_.step_decay) +
                          " is outside (0.5, 1]");
  }
  if (!(options_.step_offset >= 1.0) || !std::isfinite(options_.step_offset)) {
    throw InvalidArgument("online EM: step_offset = " + std::to_string(options_.step_offset) +
                          " is below 1");
  }
  // The model's own statistics: with a first step of size 1 (step_offset 1) the first batch
  // replaces them; with a smaller one the model keeps its share.
  running_ = Statistics::implied_by(model_, options_.mstep.reg_covar);
}

void OnlineEm::partial_fit(const DataView& batch, const EngineOptions& engine,
                           const double* sample_weight) {
  Statistics s = accumulate(model_, batch, engine, sample_weight);
  const double weight = s.weight_sum();
  if (!(weight > 0)) return;
  last_mean_log_likelihood_ = s.log_likelihood() / weight;
  s.scale(1.0 / weight);
  const double step =
      std::pow(static_cast<double>(steps_) + options_.step_offset, -options_.step_decay);
  Statistics blended = running_.recentred(s.centres());
  blended.scale(1.0 - step);
  s.scale(step);
  blended.merge(s);
  model_ = maximize(model_, blended, options_.mstep);
  running_ = std::move(blended);
  ++steps_;
}

}  // namespace emix
