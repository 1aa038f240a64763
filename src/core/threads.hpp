// How many OpenMP threads a call of emix runs on.
#pragma once

#include <cmath>

namespace emix {

// `requested`, or OpenMP's default for 0 or less, at most what OMP_THREAD_LIMIT leaves (see
// threads.cpp); but 1 in a process forked after emix had run a region on several threads: GNU
// OpenMP's thread pool does not survive fork(), and the child's first parallel region of more
// than one thread never returned (a C program that forked after a fit of 2 threads hung in its
// child's fit). One thread is what such a child can use.
// Only emix's own regions count: a child forked after the caller's OpenMP regions alone is not
// seen, and the caller gives it n_threads = 1 (emix.h says so). Counting the parent's threads at
// fork() would see them, but also every thread of OpenBLAS or of a Python interpreter, which
// leave GNU OpenMP's pool alone: every multiprocessing child of a NumPy session would run on
// one thread.
// The first time a count is asked for, emix starts that many threads itself (threads.cpp):
// where they cannot start (ulimit -v) it throws OutOfMemory naming the remedy, where GNU OpenMP
// would have ended the process.
int usable_threads(int requested);

// Threads for a parallel pass of about `multiply_adds` of work, at most `threads`: one per 2^22
// of them. Each parallel region wakes every thread, microseconds on an idle machine but up to a
// scheduler time slice (4 ms) on a busy one, which small data cannot repay: a diag fit of
// breast_cancer (569 x 30) took 20-28 ms an iteration with two threads on busy cores, 0.05 ms
// with one; a whole fit of 20000 rows of one feature, 1.7 ms on an idle machine, took 56 ms
// with every core busy while the initialisation opened regions of two threads, 1.75 ms since
// (bench/results/small-fits-busy-machine-2026-12-07.md). Callers' results do not depend on the
// thread count.
inline int threads_for_work(double multiply_adds, int threads) {
  constexpr double kWorkPerThread = 1 << 22;
  const double wanted = std::ceil(multiply_adds / kWorkPerThread);
  return wanted >= threads ? threads : wanted > 1 ? static_cast<int>(wanted) : 1;
}

}  // namespace emix
