#include "core/threads.hpp"

#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <mutex>

namespace emix {
namespace {

std::atomic<bool> threads_started{false};
std::atomic<bool> forked_after_threads{false};

// Runs in the child of fork(): an atomic store, as async-signal-safe code may do.
void after_fork_in_child() {
  if (threads_started.load(std::memory_order_relaxed)) {
    forked_after_threads.store(true, std::memory_order_relaxed);
  }
}

}  // namespace

int usable_threads(int requested) {
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  if (forked_after_threads.load(std::memory_order_relaxed)) return 1;
  const int threads = requested > 0 ? requested : omp_get_max_threads();
  if (threads > 1) threads_started.store(true, std::memory_order_relaxed);
  return threads;
}

}  // namespace emix
