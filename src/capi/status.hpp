// The one mapping between emix's exception types and the C API's status codes: the C API's
// barrier turns exceptions into codes with it, and the MPI fit carries a failure from one rank
// to every rank as a code and a message, thrown again there as the same type.
#pragma once

#include <exception>
#include <string>

#include "emix/emix.h"

namespace emix::capi {

// The status code of `error` (non-null) and its message. Never throws.
emix_status status_of(const std::exception_ptr& error, std::string* message) noexcept;
// Throws the exception type that status_of maps to `status` (emix::Error for the rest).
[[noreturn]] void throw_status(emix_status status, const std::string& message);

}  // namespace emix::capi
