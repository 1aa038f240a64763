#include "core/interrupt.hpp"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "cpu/fp_environment.hpp"

namespace emix {
namespace {

// The innermost check of each thread. A parallel region's other threads have none: they never
// run it, whatever thread started the region.
thread_local InterruptCheck* current_check = nullptr;

// Often enough that Ctrl-C answers at once, seldom enough that the check (in Python, taking the
// GIL) costs nothing measurable.
constexpr std::chrono::milliseconds kInterval{50};

}  // namespace

InterruptCheck::InterruptCheck(std::function<void()> check)
    : check_(std::move(check)),
      outer_(current_check),
      last_run_(std::chrono::steady_clock::now()),
      fp_modes_(cpu::fp_control_register()) {
  current_check = this;
}

InterruptCheck::~InterruptCheck() {
  // Checks held by unique_ptr or as members may end in any order: this one is unlinked where it
  // is, and the checks inside it stay. (Resetting the thread's innermost to outer_ dropped a live
  // inner check, and later gave back one already destroyed.)
  for (InterruptCheck** link = &current_check; *link != nullptr; link = &(*link)->outer_) {
    if (*link == this) {
      *link = outer_;
      return;
    }
  }
  // Not in this thread's chain: made on another thread, which may be running this very check
  // now. Going on would leave that thread a pointer to a destroyed check.
  std::fputs(
      "emix::InterruptCheck destroyed on a thread other than the one that made it; aborting\n",
      stderr);
  std::abort();
}

namespace detail {

void poll_interrupt() {
  InterruptCheck* check = current_check;
  if (check == nullptr || !check->check_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - check->last_run_ < kInterval) return;
  check->last_run_ = now;
  // The caller's modes, not those of the pass it interrupts (flushed subnormals, masked traps).
  const cpu::ScopedFpModes modes(check->fp_modes_);
  check->check_();
}

bool interrupt_requested(std::exception_ptr& error) noexcept {
  if (current_check == nullptr) return false;
  if (error) return true;
  try {
    poll_interrupt();
  } catch (...) {
    error = std::current_exception();
    return true;
  }
  return false;
}

}  // namespace detail
}  // namespace emix
