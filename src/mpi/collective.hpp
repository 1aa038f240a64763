// The collectives a distributed fit is built from, each deterministic and identical on every
// rank, and the rule that keeps a failure on one rank from leaving the others waiting.
#pragma once

#include "emix/emix_mpi.h"  // <mpi.h>, without MPI's C++ bindings

#include <cstdint>
#include <exception>
#include <string>

namespace emix::mpi {

// Throws MpiError naming `call` unless rc is MPI_SUCCESS.
void check(int rc, const char* call);

// InvalidArgument unless MPI is initialized and not yet finalized: any other MPI call then would
// end the process (MPI_Initialized and MPI_Finalized alone may be called at any time).
void require_initialized();
// Collective over comm: refuses, on every rank, a libemix of another release than this
// libemix_mpi on any rank.
void require_one_release(MPI_Comm comm);

// Collective. Every rank passes what its last local step threw (or null). When any rank failed,
// every rank throws: the exception type of the lowest failing rank, with its message prefixed
// "rank R of P: ". Returns normally on every rank when none failed.
void raise_if_any_failed(MPI_Comm comm, const std::exception_ptr& local_error);

// Whether `error` is what raise_if_any_failed last threw on this thread: every rank holds the
// same error, so that one of them can report it for all.
bool raised_on_every_rank(const std::exception& error);

// After the EM driver threw `error` without an exchange: an InvalidArgument or NumericalError
// there follows from values every rank holds alike (options, summed statistics), so every rank
// threw it; it is marked so (raised_on_every_rank), and one rank reports it. Other errors (out
// of memory, say) may be this rank's alone and are left unmarked.
void held_by_every_rank(const std::exception& error);

// Throws InvalidArgument(message), as every rank does at this point: for a check of values the
// ranks exchanged, which each rank makes alike (raised_on_every_rank then holds).
[[noreturn]] void throw_on_every_rank(const std::string& message);

// Collective. Runs `step` on this rank, then raise_if_any_failed with what it threw, so that a
// step failing on one rank ends every rank instead of leaving the others waiting.
template <typename Step>
void on_every_rank(MPI_Comm comm, Step&& step) {
  std::exception_ptr error;
  try {
    step();
  } catch (...) {
    error = std::current_exception();
  }
  raise_if_any_failed(comm, error);
}

// Collective. Sums `count` doubles elementwise across ranks in a fixed binomial-tree order and
// broadcasts the result, so every rank holds bitwise the same sums whatever MPI_Allreduce's
// algorithm would have done. On one rank the values are left as they are.
void ordered_sum(MPI_Comm comm, double* values, std::int64_t count);

// Collective. Elementwise sum where each element is nonzero on at most one rank (an exact
// operation in any order): how rows owned by one rank reach all.
void exclusive_sum(MPI_Comm comm, double* values, std::int64_t count);

}  // namespace emix::mpi
