#include "core/threads.hpp"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "emix/errors.hpp"

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

// The most threads a region of emix has been seen to start (see startable below).
std::atomic<int> threads_verified{1};

// OMP_STACKSIZE (or GOMP_STACKSIZE) in bytes, as GNU OpenMP reads it: a number with an optional
// unit B, K (the default), M or G; 0 where unset or unreadable (the threads' default stack).
std::size_t openmp_stack_bytes() {
  const char* text = std::getenv("OMP_STACKSIZE");
  if (text == nullptr) text = std::getenv("GOMP_STACKSIZE");
  if (text == nullptr) return 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text) return 0;
  while (*end == ' ') ++end;
  switch (*end) {
    case 'b':
    case 'B':
      return value;
    case '\0':
    case 'k':
    case 'K':
      return value << 10;
    case 'm':
    case 'M':
      return value << 20;
    case 'g':
    case 'G':
      return value << 30;
    default:
      return 0;
  }
}

// Starts `count` threads that all exist at once, each with the stack GNU OpenMP would give its
// own, then ends them: 0, or pthread_create's error. GNU OpenMP cannot report a thread it failed
// to start: it prints "Thread creation failed" and calls exit(1), ending the caller's process (a
// Python session with it). The threads' stacks (8 MiB each by default) are what fails first under
// ulimit -v; glibc keeps the stacks of ended threads for the next ones, OpenMP's.
int startable(int count) {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  if (const std::size_t stack = openmp_stack_bytes(); stack > 0) {
    pthread_attr_setstacksize(&attributes, stack);
  }
  std::vector<pthread_t> started;
  started.reserve(static_cast<std::size_t>(count));
  // Held until every thread is started: each waits on it (asleep, not spinning) and ends.
  std::mutex gate;
  gate.lock();
  int error = 0;
  for (int i = 0; i < count && error == 0; ++i) {
    pthread_t thread;
    error = pthread_create(
        &thread, &attributes,
        [](void* held) -> void* {
          auto& opened = *static_cast<std::mutex*>(held);
          opened.lock();
          opened.unlock();
          return nullptr;
        },
        &gate);
    if (error == 0) started.push_back(thread);
  }
  gate.unlock();
  for (const pthread_t thread : started) pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
  return error;
}

// OMP_THREAD_LIMIT caps the threads of all teams together (a count above it would be reported,
// not run): inside the caller's parallel regions, what the enclosing teams leave, shared evenly
// among their threads (GNU OpenMP gives the first to ask more; results never depend on it).
int threads_the_limit_leaves() {
  int left = std::max(1, omp_get_thread_limit());
  for (int level = 1; level <= omp_get_level(); ++level) {
    left /= std::max(1, omp_get_team_size(level));
  }
  return std::max(1, left);
}

}  // namespace

int usable_threads(int requested) {
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
  if (forked_after_threads.load(std::memory_order_relaxed)) return 1;
  const int threads =
      std::min(requested > 0 ? requested : omp_get_max_threads(), threads_the_limit_leaves());
  // Inside the caller's parallel region at OpenMP's nesting limit, a region of emix runs on one
  // thread whatever it asks: none to start.
  const bool nested = omp_get_active_level() >= omp_get_max_active_levels();
  if (!nested && threads > threads_verified.load(std::memory_order_relaxed)) {
    if (const int error = startable(threads - 1)) {
      throw OutOfMemory("cannot start " + std::to_string(threads) +
                        " threads: " + std::generic_category().message(error) +
                        " (each reserves its stack, 8 MiB by default or OMP_STACKSIZE, against "
                        "ulimit -v and the process limits): ask for fewer threads (n_threads, or "
                        "OMP_NUM_THREADS)");
    }
    int verified = threads_verified.load(std::memory_order_relaxed);
    while (verified < threads && !threads_verified.compare_exchange_weak(verified, threads)) {
    }
  }
  if (threads > 1) threads_started.store(true, std::memory_order_relaxed);
  return threads;
}

}  // namespace emix
