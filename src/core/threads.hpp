// How many OpenMP threads a call of emix runs on.
#pragma once

namespace emix {

// `requested`, or OpenMP's default for 0 or less; but 1 in a process forked after emix had run
// a region on several threads: GNU OpenMP's thread pool does not survive fork(), and the
// child's first parallel region of more than one thread never returned (a C program that forked
// after a fit of 2 threads hung in its child's fit). One thread is what such a child can use.
// Only emix's own regions count: a child forked after the caller's OpenMP regions alone is not
// seen, and the caller gives it n_threads = 1.
// The first time a count is asked for, emix starts that many threads itself (threads.cpp):
// where they cannot start (ulimit -v) it throws OutOfMemory naming the remedy, where GNU OpenMP
// would have ended the process.
int usable_threads(int requested);

}  // namespace emix
