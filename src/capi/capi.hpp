// What the C API's translation units share: the handles' contents, the exception barrier and
// argument conversions.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "capi/status.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/emix.h"
#include "emix/fit.hpp"
#include "emix/interrupt.hpp"
#include "emix/select.hpp"
#include "emix/statistics.hpp"

// Every handle begins with a tag naming its type, which require() checks and destroying clears:
// a pointer to another handle type, or to a handle already destroyed (whose memory the allocator
// has reused, as glibc's does at once), is an error naming the argument rather than a crash, and
// a second destroy frees nothing.
namespace emix::capi {
constexpr std::uint64_t kOptionsTag = 0x736e6f6974706f45;     // "Eoptions", little-endian
constexpr std::uint64_t kModelTag = 0x6c65646f6d78696d;       // "mixmodel"
constexpr std::uint64_t kStatisticsTag = 0x7374617473786d65;  // "emxstats"
constexpr std::uint64_t kSelectionTag = 0x7463656c6573786d;   // "mxselect"
}  // namespace emix::capi

struct emix_options {
  std::uint64_t tag = emix::capi::kOptionsTag;
  emix::FitOptions fit;
  emix_iteration_callback callback = nullptr;
  emix_iteration_control control = nullptr;  // at most one of callback and control is set
  void* user_data = nullptr;
};

struct emix_model {
  std::uint64_t tag = emix::capi::kModelTag;
  emix::Model model;
  // The model checked and factored by its first evaluation, for the next ones (the handle's
  // model never changes): checked_model_of.
  mutable std::mutex checked_mutex;
  mutable std::shared_ptr<const emix::CheckedModel> checked;
  std::optional<emix::FitReport> report;  // when the model came from a fit
  std::vector<std::string> warnings;      // the fit's, the file's, or emix_maximize's
  std::string fit_section;                // a file's "fit" section, written back as read
  std::string estimator_section;          // a file's "estimator" section, written back as read
};

struct emix_statistics {
  std::uint64_t tag = emix::capi::kStatisticsTag;
  emix::Statistics statistics;
};

struct emix_selection {
  std::uint64_t tag = emix::capi::kSelectionTag;
  emix::SelectReport report;
};

namespace emix::capi {

// Throws InvalidArgument "NAME is NULL" when p is null (guarded prefixes the function's name).
void require(const void* p, const char* name);
// The same, and for a handle, "NAME is not a live emix_model (destroyed, or another kind of
// handle)" when its tag is not its type's.
void require(const emix_options* p, const char* name);
void require(const emix_model* p, const char* name);
void require(const emix_statistics* p, const char* name);
void require(const emix_selection* p, const char* name);
// For a destroy function: whether `handle` is a live handle of its type (NULL is not, silently);
// when it is, its tag is cleared, so that a second destroy of it frees nothing. Otherwise the
// reason is recorded for emix_last_error().
bool retire(emix_options* handle, const char* function);
bool retire(emix_model* handle, const char* function);
bool retire(emix_statistics* handle, const char* function);
bool retire(emix_selection* handle, const char* function);
DataView data_view(const void* x, std::int64_t rows, std::int64_t cols, int dtype, int memory);
// The options a fit runs with: a copy of handle's, with its C callback wired in.
FitOptions fit_options(const emix_options& handle);
// Stores a fit's outcome in a new model handle and the result struct (which may be null).
void deliver(FitReport&& report, emix_model** model, emix_fit_result* result);
// A covariance type from its C value, or InvalidArgument naming the values.
Covariance covariance_of(int value);
// The selection a call asks for: the handle's fit options (callback wired in) with the grid
// checked (K >= 1 and covariance types each once; covariance types for Gaussians only, all
// four when none are given) and the criterion.
SelectOptions select_options(const emix_options& handle, const int* n_components, int n_k,
                             const int* covariances, int n_covariances, int criterion);

// A creating call's output handle is NULL until the call succeeds, so that a caller that
// destroys it after a failure frees nothing (rather than whatever the variable held).
template <typename Handle>
void clear_output(Handle** out) noexcept {
  if (out != nullptr) *out = nullptr;
}

// Records "FUNCTION: MESSAGE" for emix_last_error() and returns status.
emix_status record_error(emix_status status, const char* function, const char* message) noexcept;

// The calling thread's emix_set_interrupt_check, if any, as the emix::InterruptCheck of one
// call: made before the call's non-stop floating-point modes, so that the check runs under the
// caller's.
class CallerInterruptCheck {
 public:
  CallerInterruptCheck();

 private:
  std::optional<InterruptCheck> check_;
};

// Runs `body`; maps any exception to a status code and records its message for
// emix_last_error(). Never throws.
template <typename Body>
emix_status guarded(const char* function, Body&& body) noexcept {
  try {
    const CallerInterruptCheck interrupt;
    // C and Fortran callers that trap exceptions (feenableexcept, gfortran -ffpe-trap) keep
    // their traps, but not inside the library, whose arithmetic overflows on purpose.
    const cpu::ScopedNonStopFp non_stop;
    body();
    return EMIX_OK;
  } catch (...) {
    std::string message;
    const emix_status status = status_of(std::current_exception(), &message);
    return record_error(status, function, message.c_str());
  }
}

}  // namespace emix::capi
