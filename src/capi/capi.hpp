// What the C API's translation units share: the handles' contents, the exception barrier and
// argument conversions.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "capi/status.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/emix.h"
#include "emix/fit.hpp"

struct emix_options {
  emix::FitOptions fit;
  emix_iteration_callback callback = nullptr;
  emix_iteration_control control = nullptr;  // at most one of callback and control is set
  void* user_data = nullptr;
};

struct emix_model {
  emix::Model model;
  std::optional<emix::FitReport> report;  // when the model came from a fit, or a file's record
  std::vector<std::string> warnings;      // the fit's, or emix_maximize's
  std::string estimator_section;          // a file's "estimator" section, written back as read
};

namespace emix::capi {

// Throws InvalidArgument "NAME is NULL" when p is null (guarded prefixes the function's name).
void require(const void* p, const char* name);
DataView data_view(const void* x, std::int64_t rows, std::int64_t cols, int dtype, int memory);
// The options a fit runs with: a copy of handle's, with its C callback wired in.
FitOptions fit_options(const emix_options& handle);
// Stores a fit's outcome in a new model handle and the result struct (which may be null).
void deliver(FitReport&& report, emix_model** model, emix_fit_result* result);

// A creating call's output handle is NULL until the call succeeds, so that a caller that
// destroys it after a failure frees nothing (rather than whatever the variable held).
template <typename Handle>
void clear_output(Handle** out) noexcept {
  if (out != nullptr) *out = nullptr;
}

// Records "FUNCTION: MESSAGE" for emix_last_error() and returns status.
emix_status record_error(emix_status status, const char* function, const char* message) noexcept;

// Runs `body`; maps any exception to a status code and records its message for
// emix_last_error(). Never throws.
template <typename Body>
emix_status guarded(const char* function, Body&& body) noexcept {
  try {
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
