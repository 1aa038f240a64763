// The C API's model selection (emix.h, "Model selection") over emix/select.hpp.
#include <memory>
#include <string>
#include <vector>

#include "capi/capi.hpp"
#include "emix/errors.hpp"
#include "emix/select.hpp"

using emix::capi::guarded;
using emix::capi::require;

namespace emix::capi {

SelectOptions select_options(const emix_options& handle, const int* n_components, int n_k,
                             const int* covariances, int n_covariances, int criterion) {
  SelectOptions o;
  o.fit = fit_options(handle);
  if (n_k < 1) throw InvalidArgument("n_k is " + std::to_string(n_k) + ": the grid needs a K");
  require(n_components, "n_components");
  o.n_components.assign(n_components, n_components + n_k);
  if (n_covariances < 0) {
    throw InvalidArgument("n_covariances is " + std::to_string(n_covariances));
  }
  if (o.fit.family != Family::kGaussian) {
    if (n_covariances > 0) {
      throw InvalidArgument(std::string("covariance types apply to Gaussian mixtures only (the "
                                        "family is ") +
                            to_string(o.fit.family) + "): pass NULL and 0");
    }
    o.covariances = {Covariance::kFull};  // one candidate per K
  } else if (n_covariances == 0) {
    o.covariances = {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical,
                     Covariance::kTied};
  } else {
    require(covariances, "covariances");
    o.covariances.clear();
    for (int i = 0; i < n_covariances; ++i) {
      try {
        o.covariances.push_back(covariance_of(covariances[i]));
      } catch (const InvalidArgument& e) {  // "covariance is 7; expected ...", with its index
        throw InvalidArgument("covariances[" + std::to_string(i) + "]" +
                              std::string(e.what()).substr(std::string("covariance").size()));
      }
    }
  }
  if (criterion < EMIX_CRITERION_BIC || criterion > EMIX_CRITERION_ICL) {
    throw InvalidArgument(
        "criterion is " + std::to_string(criterion) +
        "; expected EMIX_CRITERION_BIC (0), EMIX_CRITERION_AIC (1) or EMIX_CRITERION_ICL (2)");
  }
  o.criterion = static_cast<Criterion>(criterion);
  return o;
}

}  // namespace emix::capi

namespace {

static_assert(static_cast<int>(emix::Criterion::kBic) == EMIX_CRITERION_BIC &&
              static_cast<int>(emix::Criterion::kAic) == EMIX_CRITERION_AIC &&
              static_cast<int>(emix::Criterion::kIcl) == EMIX_CRITERION_ICL);

const emix::SelectCandidate& candidate_at(const emix_selection* selection, int index) {
  require(selection, "selection");
  const auto count = static_cast<int>(selection->report.candidates.size());
  if (index < 0 || index >= count) {
    throw emix::InvalidArgument("index " + std::to_string(index) + " is outside [0, " +
                                std::to_string(count) + ")");
  }
  return selection->report.candidates[static_cast<std::size_t>(index)];
}

}  // namespace

extern "C" {

emix_status emix_select(const emix_options* options, const int* n_components, int n_k,
                        const int* covariances, int n_covariances, int criterion, const void* x,
                        int64_t rows, int64_t cols, int dtype, int memory,
                        const double* sample_weight, emix_selection** selection) {
  return guarded("emix_select", [&] {
    emix::capi::clear_output(selection);
    require(options, "options");
    require(selection, "selection");
    const emix::SelectOptions o = emix::capi::select_options(*options, n_components, n_k,
                                                             covariances, n_covariances, criterion);
    const emix::DataView view = emix::capi::data_view(x, rows, cols, dtype, memory);
    auto handle = std::make_unique<emix_selection>();
    handle->report = emix::select(view, o, sample_weight);
    *selection = handle.release();
  });
}

void emix_selection_destroy(emix_selection* selection) {
  if (emix::capi::retire(selection, "emix_selection_destroy")) delete selection;
}

emix_status emix_selection_summary(const emix_selection* selection, int* n_candidates, int* best,
                                   int* passes) {
  return guarded("emix_selection_summary", [&] {
    require(selection, "selection");
    if (n_candidates) *n_candidates = static_cast<int>(selection->report.candidates.size());
    if (best) *best = static_cast<int>(selection->report.best);
    if (passes) *passes = selection->report.passes;
  });
}

emix_status emix_selection_candidate(const emix_selection* selection, int index,
                                     emix_candidate* candidate) {
  return guarded("emix_selection_candidate", [&] {
    const emix::SelectCandidate& c = candidate_at(selection, index);
    require(candidate, "candidate");
    candidate->n_components = c.n_components;
    candidate->covariance = static_cast<int>(c.covariance);
    candidate->failed = c.failed ? 1 : 0;
    candidate->n_iter = c.fit.n_iter;
    candidate->converged = c.fit.converged ? 1 : 0;
    candidate->best_init = c.fit.best_init;
    candidate->n_warnings = static_cast<int>(c.fit.warnings.size());
    candidate->n_parameters = c.n_parameters;
    candidate->log_likelihood = c.fit.log_likelihood;
    candidate->bic = c.bic;
    candidate->aic = c.aic;
    candidate->icl = c.icl;
    candidate->seconds = c.fit.seconds;
  });
}

emix_status emix_selection_model(const emix_selection* selection, int index, emix_model** model) {
  return guarded("emix_selection_model", [&] {
    emix::capi::clear_output(model);
    const emix::SelectCandidate& c = candidate_at(selection, index);
    require(model, "model");
    if (c.failed) {
      throw emix::InvalidArgument(
          "candidate " + std::to_string(index) + " (K = " + std::to_string(c.n_components) + ", " +
          emix::to_string(c.covariance) + ") failed and has no model: " + c.fit.warnings.back());
    }
    emix::capi::deliver(emix::FitReport(c.fit), model, nullptr);
  });
}

emix_status emix_selection_warning(const emix_selection* selection, int index, int warning,
                                   const char** text) {
  return guarded("emix_selection_warning", [&] {
    const emix::SelectCandidate& c = candidate_at(selection, index);
    require(text, "text");
    const auto count = static_cast<int>(c.fit.warnings.size());
    if (warning < 0 || warning >= count) {
      throw emix::InvalidArgument("warning " + std::to_string(warning) + " is outside [0, " +
                                  std::to_string(count) + ") for candidate " +
                                  std::to_string(index));
    }
    *text = c.fit.warnings[static_cast<std::size_t>(warning)].c_str();
  });
}

}  // extern "C"
