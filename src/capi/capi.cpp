// The C API (include/emix/emix.h) over the C++ one: every entry point runs inside
// capi::guarded, so no exception crosses into C.
#include "capi/capi.hpp"

#include "core/evaluation.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "emix/version.hpp"

namespace emix::capi {

namespace {

thread_local std::string g_last_error;

struct InterruptCheckSetting {
  emix_interrupt_check check = nullptr;
  void* user_data = nullptr;
};
thread_local InterruptCheckSetting g_interrupt_check;

// The C API converts its int constants to the C++ enums by value: these pin the two together,
// so that reordering an enumerator cannot change the C ABI silently.
template <typename Enum>
constexpr bool same_value(Enum value, int c_value) {
  return static_cast<int>(value) == c_value;
}
static_assert(same_value(Family::kGaussian, EMIX_GAUSSIAN) &&
              same_value(Family::kBernoulli, EMIX_BERNOULLI) &&
              same_value(Family::kBinomial, EMIX_BINOMIAL));
static_assert(same_value(Covariance::kFull, EMIX_FULL) &&
              same_value(Covariance::kDiag, EMIX_DIAG) &&
              same_value(Covariance::kSpherical, EMIX_SPHERICAL) &&
              same_value(Covariance::kTied, EMIX_TIED));
static_assert(same_value(Init::kKMeansPlusPlus, EMIX_INIT_KMEANSPP) &&
              same_value(Init::kRandom, EMIX_INIT_RANDOM) &&
              same_value(Init::kRandomFromData, EMIX_INIT_RANDOM_FROM_DATA));
static_assert(same_value(Device::kAuto, EMIX_DEVICE_AUTO) &&
              same_value(Device::kCpu, EMIX_DEVICE_CPU) &&
              same_value(Device::kGpu, EMIX_DEVICE_GPU));
static_assert(same_value(DType::kFloat32, EMIX_FLOAT32) &&
              same_value(DType::kFloat64, EMIX_FLOAT64));
static_assert(same_value(MemorySpace::kHost, EMIX_HOST) &&
              same_value(MemorySpace::kDevice, EMIX_DEVICE));

template <typename Enum>
Enum enum_value(int value, int count, const char* what, const char* names) {
  if (value < 0 || value >= count) {
    throw InvalidArgument(std::string(what) + " is " + std::to_string(value) + "; expected " +
                          names);
  }
  return static_cast<Enum>(value);
}

Family family_of(int value) {
  return enum_value<Family>(value, 3, "family",
                            "EMIX_GAUSSIAN (0), EMIX_BERNOULLI (1) or EMIX_BINOMIAL (2)");
}

EngineOptions engine_of(const emix_options* options) {
  if (options == nullptr) return EngineOptions{};
  require(options, "options");
  return options->fit.engine;
}

template <typename Handle>
void require_live(const Handle* p, std::uint64_t tag, const char* name, const char* type) {
  require(static_cast<const void*>(p), name);
  if (p->tag != tag) {
    throw InvalidArgument(std::string(name) + " is not a live " + type +
                          " (destroyed, or another kind of handle)");
  }
}

template <typename Handle>
bool retire_live(Handle* p, std::uint64_t tag, const char* function, const char* type) {
  if (p == nullptr) return false;
  if (p->tag != tag) {
    record_error(EMIX_INVALID_ARGUMENT, function,
                 (std::string("not a live ") + type +
                  " (destroyed already, or another kind of handle); nothing freed")
                     .c_str());
    return false;
  }
  // Volatile, so that the store before the delete is kept.
  *static_cast<volatile std::uint64_t*>(&p->tag) = 0;
  return true;
}

// Copies one of the model's arrays out; `what` names it for the message when it is empty.
emix_status copy_array(const char* fn, const emix_model* model, double* out,
                       const std::vector<double> Model::*member, const char* what) {
  return guarded(fn, [&] {
    require(model, "model");
    require(out, "the output buffer");
    const std::vector<double>& values = model->model.*member;
    if (values.empty()) {
      throw InvalidArgument(std::string("a ") + to_string(model->model.family) + " model has no " +
                            what);
    }
    std::memcpy(out, values.data(), values.size() * sizeof(double));
  });
}

// The shared shape of the scalar evaluations: check the model and output, build the view.
template <typename Body>
emix_status evaluate(const char* fn, const emix_model* model, const void* x, int64_t rows,
                     int64_t cols, int dtype, int memory, const void* out, Body&& body) {
  return guarded(fn, [&] {
    require(model, "model");
    require(out, "the output buffer");
    body(data_view(x, rows, cols, dtype, memory));
  });
}

// The handle's model checked and factored, by this evaluation if it is the first.
std::shared_ptr<const CheckedModel> checked_model_of(const emix_model* model,
                                                     const EngineOptions& engine) {
  validate(engine);  // before its threads factor the model
  const std::lock_guard<std::mutex> lock(model->checked_mutex);
  if (model->checked == nullptr) {
    CheckedModel checked = validate_and_prepare(model->model, engine.n_threads);
    checked.prepared.engine_cache = std::make_shared<EngineCache>();  // kept as it is from here
    model->checked = std::make_shared<const CheckedModel>(std::move(checked));
  }
  return model->checked;
}

// The per-row evaluations: written straight into the caller's buffer, which is in the data's
// memory space (a copy in between doubled the peak memory of a large predict_proba). Data
// without rows write nothing and may come with null pointers.
emix_status evaluate_into(const char* fn, const emix_model* model, const emix_options* options,
                          const void* x, int64_t rows, int64_t cols, int dtype, int memory,
                          const void* out, RowResults results) {
  return guarded(fn, [&] {
    require(model, "model");
    if (rows != 0) require(out, "the output buffer");
    const DataView view = data_view(x, rows, cols, dtype, memory);
    results.on_device = view.space == MemorySpace::kDevice;
    const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
    const EngineOptions engine = engine_of(options);
    evaluate_rows(model->model, *checked_model_of(model, engine), view, engine, results);
  });
}

// emix_bic, emix_aic and their weighted forms; criterion is bic_checked or aic_checked.
template <typename Criterion>
emix_status information_criterion(const char* fn, Criterion criterion, const emix_model* model,
                                  const emix_options* options, const void* x, int64_t rows,
                                  int64_t cols, int dtype, int memory, const double* sample_weight,
                                  double* out) {
  return evaluate(fn, model, x, rows, cols, dtype, memory, out, [&](const DataView& view) {
    const EngineOptions engine = engine_of(options);
    *out =
        criterion(model->model, checked_model_of(model, engine).get(), view, engine, sample_weight);
  });
}

}  // namespace

Covariance covariance_of(int value) {
  return enum_value<Covariance>(
      value, 4, "covariance", "EMIX_FULL (0), EMIX_DIAG (1), EMIX_SPHERICAL (2) or EMIX_TIED (3)");
}

emix_status record_error(emix_status status, const char* function, const char* message) noexcept {
  try {
    // The library's message may open with the call's own name ("maximize: ..."): said once.
    const std::string call(function);
    const std::string bare = call.rfind("emix_", 0) == 0 ? call.substr(5) + ": " : std::string();
    const std::string text(message);
    g_last_error =
        call + ": " + (!bare.empty() && text.rfind(bare, 0) == 0 ? text.substr(bare.size()) : text);
  } catch (...) {
    g_last_error.clear();  // no memory for the message; the status still says what happened
  }
  return status;
}

CallerInterruptCheck::CallerInterruptCheck() {
  const InterruptCheckSetting setting = g_interrupt_check;
  if (setting.check == nullptr) return;
  check_.emplace([setting] {
    if (setting.check(setting.user_data) != 0) {
      throw Cancelled("the interrupt check stopped the call");
    }
  });
}

void require(const void* p, const char* name) {
  if (!p) throw InvalidArgument(std::string(name) + " is NULL");
}

void require(const emix_options* p, const char* name) {
  require_live(p, kOptionsTag, name, "emix_options");
}
void require(const emix_model* p, const char* name) {
  require_live(p, kModelTag, name, "emix_model");
}
void require(const emix_statistics* p, const char* name) {
  require_live(p, kStatisticsTag, name, "emix_statistics");
}
void require(const emix_selection* p, const char* name) {
  require_live(p, kSelectionTag, name, "emix_selection");
}

bool retire(emix_options* handle, const char* function) {
  return retire_live(handle, kOptionsTag, function, "emix_options");
}
bool retire(emix_model* handle, const char* function) {
  return retire_live(handle, kModelTag, function, "emix_model");
}
bool retire(emix_statistics* handle, const char* function) {
  return retire_live(handle, kStatisticsTag, function, "emix_statistics");
}
bool retire(emix_selection* handle, const char* function) {
  return retire_live(handle, kSelectionTag, function, "emix_selection");
}

DataView data_view(const void* x, std::int64_t rows, std::int64_t cols, int dtype, int memory) {
  DataView view;
  view.data = x;
  view.rows = rows;
  view.cols = cols;
  view.dtype = enum_value<DType>(dtype, 2, "dtype", "EMIX_FLOAT32 (0) or EMIX_FLOAT64 (1)");
  view.space = enum_value<MemorySpace>(memory, 2, "memory", "EMIX_HOST (0) or EMIX_DEVICE (1)");
  if (rows < 0 || cols < 0) {
    throw InvalidArgument("data: rows and cols must be >= 0, got " + std::to_string(rows) + " x " +
                          std::to_string(cols));
  }
  return view;
}

FitOptions fit_options(const emix_options& handle) {
  FitOptions options = handle.fit;
  if (handle.callback || handle.control) {
    const emix_iteration_callback callback = handle.callback;
    const emix_iteration_control control = handle.control;
    void* const user_data = handle.user_data;
    options.on_iteration = [callback, control, user_data](const IterationInfo& info) {
      const emix_iteration_info c{info.init_run,       info.iteration,
                                  info.log_likelihood, info.mean_log_likelihood,
                                  info.change,         info.seconds};
      if (callback) callback(&c, user_data);
      if (control && control(&c, user_data) != 0) {
        throw Cancelled("the iteration control stopped the fit (init_run " +
                        std::to_string(info.init_run) + ", iteration " +
                        std::to_string(info.iteration) + ")");
      }
    };
  }
  return options;
}

void deliver(FitReport&& report, emix_model** model, emix_fit_result* result) {
  auto handle = std::make_unique<emix_model>();
  if (result) {
    result->log_likelihood = report.log_likelihood;
    result->mean_log_likelihood = report.mean_log_likelihood;
    result->n_iter = report.n_iter;
    result->converged = report.converged ? 1 : 0;
    result->best_init = report.best_init;
    result->n_warnings = static_cast<int>(report.warnings.size());
    result->seconds = report.seconds;
  }
  handle->model = report.model;
  handle->warnings = report.warnings;
  handle->report = std::move(report);
  *model = handle.release();
}

}  // namespace emix::capi

using emix::capi::copy_array;
using emix::capi::evaluate;
using emix::capi::evaluate_into;
using emix::capi::guarded;
using emix::capi::information_criterion;
using emix::capi::require;

extern "C" {

const char* emix_version(void) { return emix::version(); }

const char* emix_last_error(void) { return emix::capi::g_last_error.c_str(); }

const char* emix_status_name(emix_status status) {
  switch (status) {
    case EMIX_OK:
      return "EMIX_OK";
    case EMIX_INVALID_ARGUMENT:
      return "EMIX_INVALID_ARGUMENT";
    case EMIX_IO_ERROR:
      return "EMIX_IO_ERROR";
    case EMIX_NOT_AVAILABLE:
      return "EMIX_NOT_AVAILABLE";
    case EMIX_OUT_OF_MEMORY:
      return "EMIX_OUT_OF_MEMORY";
    case EMIX_NUMERICAL_ERROR:
      return "EMIX_NUMERICAL_ERROR";
    case EMIX_CUDA_ERROR:
      return "EMIX_CUDA_ERROR";
    case EMIX_MPI_ERROR:
      return "EMIX_MPI_ERROR";
    case EMIX_INTERNAL_ERROR:
      return "EMIX_INTERNAL_ERROR";
    case EMIX_CANCELLED:
      return "EMIX_CANCELLED";
    default:
      return "unknown emix_status";
  }
}

int emix_gpu_available(void) {
  int available = 0;
  guarded("emix_gpu_available", [&] { available = emix::gpu_available() ? 1 : 0; });
  return available;
}

const char* emix_gpu_unavailable_reason(void) {
  // The answer does not change within a process (the check runs once), so one copy serves.
  static const std::string reason = [] {
    std::string text = "the GPU check failed";
    guarded("emix_gpu_unavailable_reason", [&] { text = emix::gpu_unavailable_reason(); });
    return text;
  }();
  return reason.c_str();
}

emix_status emix_set_interrupt_check(emix_interrupt_check check, void* user_data) {
  return guarded("emix_set_interrupt_check", [&] {
    emix::capi::g_interrupt_check = {check, check != nullptr ? user_data : nullptr};
  });
}

// ---- Options ----------------------------------------------------------------------------------

emix_status emix_options_create(emix_options** options) {
  return guarded("emix_options_create", [&] {
    emix::capi::clear_output(options);
    require(options, "options");
    *options = new emix_options();
  });
}

void emix_options_destroy(emix_options* options) {
  if (emix::capi::retire(options, "emix_options_destroy")) delete options;
}

// One setter: checks the handle, then applies `set` to the options.
#define EMIX_OPTION_SETTER(NAME, TYPE, BODY)                               \
  emix_status emix_options_set_##NAME(emix_options* options, TYPE value) { \
    return guarded("emix_options_set_" #NAME, [&] {                        \
      require(options, "options");                                         \
      emix::FitOptions& o = options->fit;                                  \
      BODY;                                                                \
    });                                                                    \
  }

EMIX_OPTION_SETTER(n_components, int, o.n_components = value)
EMIX_OPTION_SETTER(family, int, o.family = emix::capi::family_of(value))
EMIX_OPTION_SETTER(covariance, int, o.covariance = emix::capi::covariance_of(value))
EMIX_OPTION_SETTER(trials, int, o.trials = value)
EMIX_OPTION_SETTER(
    init, int,
    o.init = emix::capi::enum_value<emix::Init>(value, 3, "init",
                                                "EMIX_INIT_KMEANSPP (0), EMIX_INIT_RANDOM (1) or "
                                                "EMIX_INIT_RANDOM_FROM_DATA (2)"))
EMIX_OPTION_SETTER(kmeans_iter, int, o.kmeans_iter = value)
EMIX_OPTION_SETTER(init_max_rows, int64_t, o.init_max_rows = value)
EMIX_OPTION_SETTER(fixed_weights, int, o.fixed_weights = value != 0)
EMIX_OPTION_SETTER(n_init, int, o.n_init = value)
EMIX_OPTION_SETTER(max_iter, int, o.max_iter = value)
EMIX_OPTION_SETTER(tol, double, o.tol = value)
EMIX_OPTION_SETTER(reg_covar, double, o.reg_covar = value)
EMIX_OPTION_SETTER(prob_epsilon, double, o.prob_epsilon = value)
EMIX_OPTION_SETTER(seed, uint64_t, o.seed = value)
EMIX_OPTION_SETTER(device, int,
                   o.engine.device = emix::capi::enum_value<emix::Device>(
                       value, 3, "device",
                       "EMIX_DEVICE_AUTO (0), EMIX_DEVICE_CPU (1) or EMIX_DEVICE_GPU (2)"))
EMIX_OPTION_SETTER(n_threads, int, o.engine.n_threads = value)
EMIX_OPTION_SETTER(block_rows, int64_t, o.engine.block_rows = value)
EMIX_OPTION_SETTER(chunk_rows, int64_t, o.engine.chunk_rows = value)
EMIX_OPTION_SETTER(device_memory_limit, int64_t, o.engine.device_memory_limit = value)
EMIX_OPTION_SETTER(allow_tf32, int, o.engine.allow_tf32 = value != 0)
EMIX_OPTION_SETTER(gpu_device, int, o.engine.gpu_device = value)

#undef EMIX_OPTION_SETTER

emix_status emix_options_set_init_model(emix_options* options, const emix_model* model) {
  return guarded("emix_options_set_init_model", [&] {
    require(options, "options");
    if (model) {
      require(model, "model");
      options->fit.init_model = model->model;
    } else {
      options->fit.init_model.reset();
    }
  });
}

emix_status emix_options_set_iteration_callback(emix_options* options,
                                                emix_iteration_callback callback, void* user_data) {
  return guarded("emix_options_set_iteration_callback", [&] {
    require(options, "options");
    options->callback = callback;
    options->control = nullptr;
    options->user_data = user_data;
  });
}

emix_status emix_options_set_iteration_control(emix_options* options,
                                               emix_iteration_control control, void* user_data) {
  return guarded("emix_options_set_iteration_control", [&] {
    require(options, "options");
    options->control = control;
    options->callback = nullptr;
    options->user_data = user_data;
  });
}

// ---- Models -----------------------------------------------------------------------------------

emix_status emix_model_create(int family, int covariance, int n_components, int n_features,
                              int trials, const double* weights, const double* means,
                              const double* covariances, const double* probabilities,
                              emix_model** model) {
  const char* fn = "emix_model_create";
  return guarded(fn, [&] {
    emix::capi::clear_output(model);
    require(model, "model");
    require(weights, "weights");
    auto handle = std::make_unique<emix_model>();
    emix::Model& m = handle->model;
    m.family = emix::capi::family_of(family);
    m.covariance = m.family == emix::Family::kGaussian ? emix::capi::covariance_of(covariance)
                                                       : emix::Covariance::kFull;
    m.n_components = n_components;
    m.n_features = n_features;
    m.trials = m.family == emix::Family::kBinomial ? trials : 1;
    // The array lengths below come from K and D: the library checks them before they are used.
    emix::validate_model_shape(m);
    const auto k = static_cast<std::size_t>(n_components);
    const auto kd = k * static_cast<std::size_t>(n_features);
    m.weights.assign(weights, weights + k);
    if (m.family == emix::Family::kGaussian) {
      require(means, "means (a Gaussian model needs them)");
      require(covariances, "covariances (a Gaussian model needs them)");
      m.means.assign(means, means + kd);
      m.covariances.assign(covariances, covariances + m.covariance_size());
    } else {
      require(probabilities, "probabilities (a Bernoulli or binomial model needs them)");
      m.probabilities.assign(probabilities, probabilities + kd);
    }
    m.validate();
    *model = handle.release();
  });
}

void emix_model_destroy(emix_model* model) {
  if (emix::capi::retire(model, "emix_model_destroy")) delete model;
}

emix_status emix_model_read(const char* path, emix_model** model) {
  return guarded("emix_model_read", [&] {
    emix::capi::clear_output(model);
    require(path, "path");
    require(model, "model");
    auto handle = std::make_unique<emix_model>();
    handle->model = emix::io::read_model(path, &handle->fit_section, &handle->estimator_section);
    // The file's record of its fit comes along: its warnings, and the section as it was read
    // when written again (read into a report and written from it, a section with fields missing
    // or of other types came back with invented ones: a log-likelihood of 0, n_iter 0).
    emix::FitReport report;
    if (emix::io::read_fit_report(handle->fit_section, &report)) handle->warnings = report.warnings;
    *model = handle.release();
  });
}

emix_status emix_model_write(const emix_model* model, const char* path) {
  return guarded("emix_model_write", [&] {
    require(model, "model");
    require(path, "path");
    emix::io::write_model(path, model->model, model->report ? &*model->report : nullptr,
                          model->estimator_section, model->fit_section);
  });
}

emix_status emix_model_shape(const emix_model* model, int* family, int* covariance,
                             int* n_components, int* n_features, int* trials) {
  return guarded("emix_model_shape", [&] {
    require(model, "model");
    const emix::Model& m = model->model;
    if (family) *family = static_cast<int>(m.family);
    if (covariance) *covariance = static_cast<int>(m.covariance);
    if (n_components) *n_components = m.n_components;
    if (n_features) *n_features = m.n_features;
    if (trials) *trials = m.trials;
  });
}

emix_status emix_model_covariance_size(const emix_model* model, int64_t* size) {
  return guarded("emix_model_covariance_size", [&] {
    require(model, "model");
    require(size, "size");
    *size = static_cast<int64_t>(model->model.covariances.size());
  });
}

emix_status emix_model_get_weights(const emix_model* model, double* weights) {
  return copy_array("emix_model_get_weights", model, weights, &emix::Model::weights, "weights");
}

emix_status emix_model_get_means(const emix_model* model, double* means) {
  return copy_array("emix_model_get_means", model, means, &emix::Model::means, "means");
}

emix_status emix_model_get_covariances(const emix_model* model, double* covariances) {
  return copy_array("emix_model_get_covariances", model, covariances, &emix::Model::covariances,
                    "covariances");
}

emix_status emix_model_get_probabilities(const emix_model* model, double* probabilities) {
  return copy_array("emix_model_get_probabilities", model, probabilities,
                    &emix::Model::probabilities, "probabilities");
}

emix_status emix_model_n_parameters(const emix_model* model, int64_t* n_parameters) {
  return guarded("emix_model_n_parameters", [&] {
    require(model, "model");
    require(n_parameters, "n_parameters");
    *n_parameters = model->model.n_parameters();
  });
}

emix_status emix_model_warning_count(const emix_model* model, int* count) {
  return guarded("emix_model_warning_count", [&] {
    require(model, "model");
    require(count, "count");
    *count = static_cast<int>(model->warnings.size());
  });
}

emix_status emix_model_warning(const emix_model* model, int index, const char** text) {
  return guarded("emix_model_warning", [&] {
    require(model, "model");
    require(text, "text");
    const int count = static_cast<int>(model->warnings.size());
    if (index < 0 || index >= count) {
      throw emix::InvalidArgument("index " + std::to_string(index) + " is outside [0, " +
                                  std::to_string(count) + ")");
    }
    *text = model->warnings[static_cast<std::size_t>(index)].c_str();
  });
}

// ---- Fitting, prediction, scoring -------------------------------------------------------------

emix_status emix_fit(const emix_options* options, const void* x, int64_t rows, int64_t cols,
                     int dtype, int memory, const double* sample_weight, emix_model** model,
                     emix_fit_result* result) {
  return guarded("emix_fit", [&] {
    emix::capi::clear_output(model);
    require(options, "options");
    require(model, "model");
    const emix::DataView view = emix::capi::data_view(x, rows, cols, dtype, memory);
    emix::capi::deliver(emix::fit(view, emix::capi::fit_options(*options), sample_weight), model,
                        result);
  });
}

emix_status emix_predict(const emix_model* model, const emix_options* options, const void* x,
                         int64_t rows, int64_t cols, int dtype, int memory, int32_t* labels) {
  emix::RowResults results;
  results.labels = labels;
  return evaluate_into("emix_predict", model, options, x, rows, cols, dtype, memory, labels,
                       results);
}

emix_status emix_predict_proba(const emix_model* model, const emix_options* options, const void* x,
                               int64_t rows, int64_t cols, int dtype, int memory, double* resp) {
  emix::RowResults results;
  results.resp = resp;
  return evaluate_into("emix_predict_proba", model, options, x, rows, cols, dtype, memory, resp,
                       results);
}

emix_status emix_score_samples(const emix_model* model, const emix_options* options, const void* x,
                               int64_t rows, int64_t cols, int dtype, int memory,
                               double* log_prob) {
  emix::RowResults results;
  results.log_prob = log_prob;
  return evaluate_into("emix_score_samples", model, options, x, rows, cols, dtype, memory, log_prob,
                       results);
}

emix_status emix_score(const emix_model* model, const emix_options* options, const void* x,
                       int64_t rows, int64_t cols, int dtype, int memory,
                       const double* sample_weight, double* score) {
  return evaluate(
      "emix_score", model, x, rows, cols, dtype, memory, score, [&](const emix::DataView& view) {
        const emix::EngineOptions engine = emix::capi::engine_of(options);
        *score =
            emix::score_checked(model->model, emix::capi::checked_model_of(model, engine).get(),
                                view, engine, sample_weight);
      });
}

emix_status emix_bic_weighted(const emix_model* model, const emix_options* options, const void* x,
                              int64_t rows, int64_t cols, int dtype, int memory,
                              const double* sample_weight, double* bic) {
  return information_criterion("emix_bic_weighted", &emix::bic_checked, model, options, x, rows,
                               cols, dtype, memory, sample_weight, bic);
}

emix_status emix_aic_weighted(const emix_model* model, const emix_options* options, const void* x,
                              int64_t rows, int64_t cols, int dtype, int memory,
                              const double* sample_weight, double* aic) {
  return information_criterion("emix_aic_weighted", &emix::aic_checked, model, options, x, rows,
                               cols, dtype, memory, sample_weight, aic);
}

emix_status emix_bic(const emix_model* model, const emix_options* options, const void* x,
                     int64_t rows, int64_t cols, int dtype, int memory, double* bic) {
  return information_criterion("emix_bic", &emix::bic_checked, model, options, x, rows, cols, dtype,
                               memory, nullptr, bic);
}

emix_status emix_aic(const emix_model* model, const emix_options* options, const void* x,
                     int64_t rows, int64_t cols, int dtype, int memory, double* aic) {
  return information_criterion("emix_aic", &emix::aic_checked, model, options, x, rows, cols, dtype,
                               memory, nullptr, aic);
}

}  // extern "C"
