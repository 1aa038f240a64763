// Exceptions thrown by emix. Outcomes of a fit (non-convergence, re-seeded components,
// identifiability) are not errors: they are reported in FitReport::warnings.
#pragma once

#include <stdexcept>
#include <string>

namespace emix {

// Base of every exception emix throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad argument, option, model or data value; the message names it.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read or written, or whose contents are malformed; the message names
// the file (and row / column where that applies).
class IoError : public Error {
 public:
  using Error::Error;
};

// A capability this build or this machine lacks (for example a GPU engine in a CPU-only build).
class NotAvailable : public Error {
 public:
  using Error::Error;
};

// Host or device memory could not be allocated; the message says how much was asked for.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

// A numerical failure that no policy could recover from (for example a covariance that stays
// singular after re-seeding).
class NumericalError : public Error {
 public:
  using Error::Error;
};

// A CUDA runtime or cuBLAS call failed; the message carries the call and the error's name.
class CudaError : public Error {
 public:
  using Error::Error;
};

// An MPI call failed, or another rank of a distributed fit failed (the message names the rank).
class MpiError : public Error {
 public:
  using Error::Error;
};

}  // namespace emix
