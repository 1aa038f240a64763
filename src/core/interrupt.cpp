#include "core/interrupt.hpp"

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

InterruptCheck::~InterruptCheck() { current_check = outer_; }

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
