// What the C API's translation units share: the handles' contents, the exception barrier and
// argument conversions.
#pragma once

#include <exception>
#include <new>
#include <optional>
#include <string>

#include "emix/emix.h"
#include "emix/errors.hpp"
#include "emix/fit.hpp"

struct emix_options {
  emix::FitOptions fit;
  emix_iteration_callback callback = nullptr;
  void* user_data = nullptr;
};

struct emix_model {
  emix::Model model;
  std::optional<emix::FitReport> report;  // when the model came from a fit
};

namespace emix::capi {

// Throws InvalidArgument "FUNCTION: NAME is NULL" when p is null.
void require(const void* p, const char* function, const char* name);
DataView data_view(const void* x, std::int64_t rows, std::int64_t cols, int dtype, int memory);
// The options a fit runs with: a copy of handle's, with its C callback wired in.
FitOptions fit_options(const emix_options& handle);
// Stores a fit's outcome in a new model handle and the result struct (which may be null).
void deliver(FitReport&& report, emix_model** model, emix_fit_result* result);

// Records "FUNCTION: MESSAGE" for emix_last_error() and returns status.
emix_status record_error(emix_status status, const char* function, const char* message) noexcept;

// Runs `body`; maps any exception to a status code and records its message for
// emix_last_error(). Never throws.
template <typename Body>
emix_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return EMIX_OK;
  } catch (const InvalidArgument& e) {
    return record_error(EMIX_INVALID_ARGUMENT, function, e.what());
  } catch (const IoError& e) {
    return record_error(EMIX_IO_ERROR, function, e.what());
  } catch (const NotAvailable& e) {
    return record_error(EMIX_NOT_AVAILABLE, function, e.what());
  } catch (const OutOfMemory& e) {
    return record_error(EMIX_OUT_OF_MEMORY, function, e.what());
  } catch (const NumericalError& e) {
    return record_error(EMIX_NUMERICAL_ERROR, function, e.what());
  } catch (const CudaError& e) {
    return record_error(EMIX_CUDA_ERROR, function, e.what());
  } catch (const MpiError& e) {
    return record_error(EMIX_MPI_ERROR, function, e.what());
  } catch (const std::bad_alloc&) {
    return record_error(EMIX_OUT_OF_MEMORY, function, "out of host memory");
  } catch (const std::exception& e) {
    return record_error(EMIX_INTERNAL_ERROR, function, e.what());
  } catch (...) {
    return record_error(EMIX_INTERNAL_ERROR, function, "unknown exception");
  }
}

}  // namespace emix::capi
