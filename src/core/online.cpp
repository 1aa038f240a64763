#include "emix/online.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "core/maximize.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

void check_options(const OnlineOptions& options) {
  if (!(options.step_decay > 0.5 && options.step_decay <= 1.0)) {
    throw InvalidArgument("online EM: step_decay = " + std::to_string(options.step_decay) +
                          " is outside (0.5, 1]");
  }
  if (!(options.step_offset >= 1.0) || !std::isfinite(options.step_offset)) {
    throw InvalidArgument("online EM: step_offset = " + std::to_string(options.step_offset) +
                          " is below 1");
  }
  validate_mstep_options(options.mstep.reg_covar, options.mstep.prob_epsilon);
}

}  // namespace

OnlineEm::OnlineEm(Model model, const OnlineOptions& options, Statistics running,
                   std::int64_t steps, double last_mean_log_likelihood)
    : model_(std::move(model)),
      options_(options),
      running_(std::move(running)),
      steps_(steps),
      last_mean_log_likelihood_(last_mean_log_likelihood) {
  model_.validate();
  check_options(options_);
  const int trials = model_.family == Family::kBinomial ? model_.trials : 1;
  if (running_.family() != model_.family || running_.covariance() != model_.covariance ||
      running_.n_components() != model_.n_components ||
      running_.n_features() != model_.n_features || running_.trials() != trials) {
    const auto shape = [](int k, int d, int m) {
      return std::to_string(k) + " components, " + std::to_string(d) + " features, " +
             std::to_string(m) + " trials";
    };
    throw InvalidArgument("online EM: the running statistics are of " +
                          shape(running_.n_components(), running_.n_features(), running_.trials()) +
                          " (or another family or covariance type), the model of " +
                          shape(model_.n_components, model_.n_features, trials));
  }
  check_statistics_sizes(running_, "online EM: the running statistics");
  if (steps_ < 0) throw InvalidArgument("online EM: steps = " + std::to_string(steps_) + " < 0");
}

OnlineEm::OnlineEm(Model initial, const OnlineOptions& options)
    : model_(std::move(initial)), options_(options) {
  model_.validate();
  check_options(options_);
  // The model's own statistics: with a first step of size 1 (step_offset 1) the first batch
  // replaces them; with a smaller one the model keeps its share.
  running_ = Statistics::implied_by(model_, options_.mstep.reg_covar);
}

void OnlineEm::partial_fit(const DataView& batch, const EngineOptions& engine,
                           const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
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
  model_ = maximize_statistics(model_, blended, options_.mstep, nullptr, false);
  running_ = std::move(blended);
  ++steps_;
}

}  // namespace emix
