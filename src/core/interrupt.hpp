// Where the library's long calls run the caller's InterruptCheck (emix/interrupt.hpp).
#pragma once

#include <exception>

#include "emix/interrupt.hpp"

namespace emix::detail {

// Runs the calling thread's InterruptCheck when it is due (50 ms after its last run); what it
// throws propagates. Outside parallel regions only.
void poll_interrupt();

// The same inside a parallel region, whose boundary no exception may cross: false on every
// thread but the one that holds the check (the region's first), and there, true once the check
// has thrown, its exception kept in `error` for the caller to rethrow after the region.
bool interrupt_requested(std::exception_ptr& error) noexcept;

}  // namespace emix::detail
