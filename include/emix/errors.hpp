// Exceptions thrown by emix. Outcomes of a fit (non-convergence, re-seeded components,
// identifiability) are not errors: they are reported in FitReport::warnings.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

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

// A value in the data or in the sample weights that the call cannot take (NaN, a 2 for a
// Bernoulli mixture, a negative weight). what() reads "data: row 3, column 2 is nan"; row() and
// column() say where (1-based, within the array passed), so that a caller who read the values
// from a file can name the file's own row.
class DataError : public InvalidArgument {
 public:
  enum class Source { kData, kSampleWeight };

  // `problem` continues the sentence: "is nan", "is 2, but a Bernoulli mixture needs 0 or 1".
  DataError(Source source, std::int64_t row, std::int64_t column, const std::string& problem)
      : InvalidArgument(describe(source, row, column) + " " + problem),
        source_(source),
        row_(row),
        column_(column),
        problem_(problem) {}

  Source source() const { return source_; }
  std::int64_t row() const { return row_; }
  // 0 for a sample weight, and for a problem of the whole row (one that cannot be evaluated).
  std::int64_t column() const { return column_; }
  const std::string& problem() const { return problem_; }

 private:
  static std::string describe(Source source, std::int64_t row, std::int64_t column) {
    if (source == Source::kSampleWeight) return "sample weights: row " + std::to_string(row);
    if (column == 0) return "data: row " + std::to_string(row);
    return "data: row " + std::to_string(row) + ", column " + std::to_string(column);
  }

  Source source_;
  std::int64_t row_;
  std::int64_t column_;
  std::string problem_;
};

// An option out of range (FitOptions, EngineOptions). what() reads "max_iter is -1, must be
// >= 0"; option() is the field's name ("max_iter"), so that a program with its own names for the
// options (the emix command line) can name its own.
class OptionError : public InvalidArgument {
 public:
  OptionError(const std::string& option, const std::string& message)
      : InvalidArgument(message), option_(option) {}
  const std::string& option() const { return option_; }

 private:
  std::string option_;
};

// A file that cannot be read or written, or whose contents are malformed; the message names
// the file (and row / column where that applies). Where a system call failed, error_number() is
// its errno (ENOENT, EACCES, ...), so that a caller can tell a missing file from a full disk;
// it is 0 for malformed contents. path() is the file's name as given, where one is known.
class IoError : public Error {
 public:
  using Error::Error;
  IoError(const std::string& message, int error_number, std::string path)
      : Error(message), error_number_(error_number), path_(std::move(path)) {}

  int error_number() const { return error_number_; }
  const std::string& path() const { return path_; }

 private:
  int error_number_ = 0;
  std::string path_;
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

// A fit its caller stopped: what the C API's iteration control throws when it returns nonzero.
// FitOptions::on_iteration may throw it, or anything: the fit ends and the exception reaches
// the caller (in an MPI fit, every rank).
class Cancelled : public Error {
 public:
  using Error::Error;
};

}  // namespace emix
