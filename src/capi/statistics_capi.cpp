// The C API's statistics functions (emix.h, "Sufficient statistics") over emix/statistics.hpp.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi/capi.hpp"
#include "core/maximize.hpp"
#include "emix/errors.hpp"
#include "emix/statistics.hpp"

using emix::capi::guarded;
using emix::capi::require;

namespace {

// emix_accumulate and emix_accumulate_about: the statistics about `centres` where given (K x D),
// else about the model's means.
emix_status accumulate_about_or_means(const char* function, const emix_model* model,
                                      const emix_options* options, const double* centres,
                                      bool centres_given, const void* x, int64_t rows, int64_t cols,
                                      int dtype, int memory, const double* sample_weight,
                                      emix_statistics** statistics) {
  return guarded(function, [&] {
    emix::capi::clear_output(statistics);
    require(model, "model");
    if (centres_given) require(centres, "centres");
    require(statistics, "statistics");
    if (options != nullptr) require(options, "options");  // NULL: the defaults
    const emix::DataView view = emix::capi::data_view(x, rows, cols, dtype, memory);
    const emix::EngineOptions engine = options ? options->fit.engine : emix::EngineOptions{};
    auto handle = std::make_unique<emix_statistics>();
    if (centres_given) {
      const std::size_t size = static_cast<std::size_t>(model->model.n_components) *
                               static_cast<std::size_t>(model->model.n_features);
      handle->statistics = emix::accumulate_about(
          model->model, std::vector<double>(centres, centres + size), view, engine, sample_weight);
    } else {
      handle->statistics = emix::accumulate(model->model, view, engine, sample_weight);
    }
    *statistics = handle.release();
  });
}

}  // namespace

emix_status emix_accumulate(const emix_model* model, const emix_options* options, const void* x,
                            int64_t rows, int64_t cols, int dtype, int memory,
                            const double* sample_weight, emix_statistics** statistics) {
  return accumulate_about_or_means("emix_accumulate", model, options, nullptr, false, x, rows, cols,
                                   dtype, memory, sample_weight, statistics);
}

emix_status emix_accumulate_about(const emix_model* model, const emix_options* options,
                                  const double* centres, const void* x, int64_t rows, int64_t cols,
                                  int dtype, int memory, const double* sample_weight,
                                  emix_statistics** statistics) {
  return accumulate_about_or_means("emix_accumulate_about", model, options, centres, true, x, rows,
                                   cols, dtype, memory, sample_weight, statistics);
}

emix_status emix_scatter_lost_digits(const emix_model* next, const emix_statistics* statistics,
                                     int* lost) {
  return guarded("emix_scatter_lost_digits", [&] {
    require(next, "next");
    require(statistics, "statistics");
    require(lost, "lost");
    *lost = emix::scatter_lost_digits(next->model, statistics->statistics) ? 1 : 0;
  });
}

void emix_statistics_destroy(emix_statistics* statistics) {
  if (emix::capi::retire(statistics, "emix_statistics_destroy")) delete statistics;
}

emix_status emix_statistics_merge(emix_statistics* into, const emix_statistics* other) {
  return guarded("emix_statistics_merge", [&] {
    require(into, "into");
    require(other, "other");
    into->statistics.merge(other->statistics);
  });
}

emix_status emix_statistics_totals(const emix_statistics* statistics, double* log_likelihood,
                                   double* weight_sum) {
  return guarded("emix_statistics_totals", [&] {
    require(statistics, "statistics");
    if (log_likelihood) *log_likelihood = statistics->statistics.log_likelihood();
    if (weight_sum) *weight_sum = statistics->statistics.weight_sum();
  });
}

emix_status emix_statistics_entropy(const emix_statistics* statistics, double* entropy) {
  return guarded("emix_statistics_entropy", [&] {
    require(statistics, "statistics");
    require(entropy, "entropy");
    *entropy = statistics->statistics.entropy();
  });
}

emix_status emix_statistics_serialize(const emix_statistics* statistics, void* buffer,
                                      int64_t capacity, int64_t* size) {
  return guarded("emix_statistics_serialize", [&] {
    require(statistics, "statistics");
    require(size, "size");
    const std::vector<std::uint8_t> bytes = statistics->statistics.serialize();
    const auto needed = static_cast<int64_t>(bytes.size());
    *size = needed;  // also when the buffer is too small, so that the caller can size it
    if (buffer != nullptr) {
      if (capacity < needed) {
        throw emix::InvalidArgument("the buffer holds " + std::to_string(capacity) +
                                    " bytes; the statistics need " + std::to_string(needed));
      }
      std::memcpy(buffer, bytes.data(), bytes.size());
    }
  });
}

emix_status emix_statistics_deserialize(const void* bytes, int64_t size,
                                        emix_statistics** statistics) {
  return guarded("emix_statistics_deserialize", [&] {
    emix::capi::clear_output(statistics);
    require(bytes, "bytes");
    require(statistics, "statistics");
    if (size < 0) throw emix::InvalidArgument("size is " + std::to_string(size));
    auto handle = std::make_unique<emix_statistics>();
    handle->statistics = emix::Statistics::deserialize(bytes, static_cast<std::size_t>(size));
    *statistics = handle.release();
  });
}

emix_status emix_maximize(const emix_model* model, const emix_statistics* statistics,
                          const emix_options* options, emix_model** next) {
  return guarded("emix_maximize", [&] {
    emix::capi::clear_output(next);
    require(model, "model");
    require(statistics, "statistics");
    require(next, "next");
    emix::MStepOptions m;
    if (options != nullptr) {
      require(options, "options");
      m.reg_covar = options->fit.reg_covar;
      m.prob_epsilon = options->fit.prob_epsilon;
      m.fixed_weights = options->fit.fixed_weights;
    }
    auto handle = std::make_unique<emix_model>();
    std::vector<int> empty;
    handle->model = emix::maximize(model->model, statistics->statistics, m, &empty);
    // emix::maximize returns a collapsed component as it is, for a C++ caller to re-seed; a C
    // caller got EMIX_OK and a model every later call refused, even emix_model_write, or, where
    // rounding left its factorisation a pivot just above 0, one that scored rows at -4e15. A
    // tied covariance has no component to re-seed: a fit fails on it.
    const bool tied = handle->model.covariance == emix::Covariance::kTied;
    const std::string why =
        tied ? ": the rows lie in a subspace (a constant column, or one that combines others) or "
               "spread beyond double precision (rescale the data); increase reg_covar from 0"
             : ": its rows lie in a subspace (a component collapsed; reg_covar > 0 prevents it) or "
               "spread beyond double precision (rescale the data); a fit re-seeds such a "
               "component";
    try {
      handle->model.validate();
    } catch (const emix::InvalidArgument& e) {
      throw emix::InvalidArgument(std::string(e.what()) + why);
    }
    std::vector<int> collapsed;
    try {
      collapsed = emix::collapsed_components(handle->model, m.reg_covar);
    } catch (const emix::NumericalError&) {  // the tied covariance
      throw emix::InvalidArgument("model: tied covariance is not positive definite" + why);
    }
    if (!collapsed.empty()) {
      throw emix::InvalidArgument("model: covariance " + std::to_string(collapsed.front()) +
                                  " is not positive definite" + why);
    }
    if (!empty.empty()) {  // told through the model's warnings, as a fit's are
      std::string which;
      for (const int c : empty) which += (which.empty() ? "" : ", ") + std::to_string(c);
      handle->warnings.push_back("component(s) " + which +
                                 " (0-based) had no weight (N_k of 0, or under 1e-12 of "
                                 "the total for a Gaussian one) and kept the model's "
                                 "parameters; a fit would re-seed them");
    }
    *next = handle.release();
  });
}
