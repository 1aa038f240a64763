// Fits and selections over MPI: each rank holds a shard of the rows; the ranks' sufficient
// statistics are combined in a fixed order every iteration, so every rank gets the same model, and
// that model equals (to rounding) the single-process fit of all rows concatenated in rank order.
// Available when emix was built with MPI (EMIX_WITH_MPI in emix/config.h).
#pragma once

#include "emix/emix_mpi.h"  // <mpi.h>, without MPI's C++ bindings

#include <cstdint>

#include "emix/config.h"
#include "emix/data.hpp"
#include "emix/fit.hpp"
#include "emix/options.hpp"
#include "emix/select.hpp"

namespace emix::mpi {

// Collective over `comm`: every rank calls it with its own rows (`local_rows`, possibly none:
// rows = 0) and the same options; local_sample_weight holds weights of the local rows or is
// null (on every rank). Each rank runs the engine options.engine asks for; with the GPU and
// engine.gpu_device = -1, rank r of a node uses that node's GPU r mod (GPUs on the node).
// k-means++ initialisation samples across all ranks exactly as fit() would on the concatenated
// rows. A problem on any rank (bad values, a width that differs, fit options that differ other
// than options.engine, a failing engine) throws on every rank, with the same message naming the
// rank; no rank is left waiting. emix's own MPI calls run on a duplicate of `comm` that returns
// errors (MpiError) rather than ending the job.
FitReport fit(MPI_Comm comm, const DataView& local_rows, const FitOptions& options,
              const double* local_sample_weight = nullptr);

// Model selection (emix/select.hpp) over the ranks' rows, collective over `comm` as fit() is:
// every rank passes its own rows and weights and the same options (the grid included), and
// gets the same candidates, criteria and choice (times and the engine's name are each rank's
// own). Each pass over the data
// is one exchange of every running candidate's statistics; each candidate equals mpi::fit() with
// its K and covariance type bitwise, and emix::select() of the rows concatenated in rank order to
// rounding. A candidate with more components than there are rows on all ranks fails alone, as in
// emix::select().
SelectReport select(MPI_Comm comm, const DataView& local_rows, const SelectOptions& options,
                    const double* local_sample_weight = nullptr);

// The rows [first_row, first_row + row_count) that rank `rank` of `size` holds when
// total_rows are split as evenly as possible, in rank order.
struct Shard {
  std::int64_t first_row = 0;
  std::int64_t row_count = 0;
};
Shard shard_rows(std::int64_t total_rows, int rank, int size);

}  // namespace emix::mpi
