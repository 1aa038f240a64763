// Stopping a long call from outside it: Ctrl-C in Python, a deadline, a user's cancel button.
#pragma once

#include <chrono>
#include <functional>

namespace emix {

namespace detail {
void poll_interrupt();
}

// While an InterruptCheck lives, the library's calls made on its thread (fit, select, predict,
// score, accumulate, sample, ...) run `check` on that thread, under the floating-point modes it had
// when the check was made, about every 50 ms of their work: between the pieces of a CPU pass (a
// 64th of it or less), between initialisation's k-means steps and between iterations. An exception
// the check throws ends the call and propagates out of it as the call's own errors do: what the
// call holds is freed and its outputs are left as they were. FitOptions::on_iteration stops a fit
// between iterations; this reaches inside one, and into calls that have no options. Not checked:
// the GPU engine's passes, a covariance's factorisation, and the MPI fit and selection (one rank
// stopping alone would leave the others waiting; on_iteration stops them all).
//
//   std::atomic<bool> cancel{false};  // set by another thread
//   emix::InterruptCheck check([&] {
//     if (cancel) throw std::runtime_error("cancelled");
//   });
//   emix::FitReport r = emix::fit(x, options);  // may throw std::runtime_error
//
// Checks nest: the innermost on a thread applies, and the one around it again once it ends.
// They may end in any order, but each on the thread that made it: destroying a check on
// another thread aborts the program, as that thread could be running it at that moment.
class InterruptCheck {
 public:
  explicit InterruptCheck(std::function<void()> check);
  ~InterruptCheck();
  InterruptCheck(const InterruptCheck&) = delete;
  InterruptCheck& operator=(const InterruptCheck&) = delete;

 private:
  friend void detail::poll_interrupt();
  std::function<void()> check_;
  InterruptCheck* outer_;
  std::chrono::steady_clock::time_point last_run_;
  unsigned fp_modes_;  // the thread's floating-point control register at construction
};

}  // namespace emix
