// The commands that run on every rank under mpirun (fit, select): each rank reads its own share
// of INPUT's rows and of --sample-weight, and runs every step so that a failure on one rank
// ends every rank instead of leaving the others waiting. Without MPI each step simply runs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cli/common.hpp"
#include "cli/mpi_session.hpp"
#include "emix/errors.hpp"

#if EMIX_HAS_MPI
#include "mpi/collective.hpp"
#endif

namespace emix::cli {

// Runs `step`; under mpirun, then throws on every rank when it failed on any.
template <typename Step>
void on_every_rank(Step&& step) {
#if EMIX_HAS_MPI
  if (mpi_active()) return mpi::on_every_rank(MPI_COMM_WORLD, std::forward<Step>(step));
#endif
  step();
}

// This rank's rows of INPUT under mpirun: its even share (mpi::shard_rows), in memory, values
// checked by the reader (a rank's error reaches the others as text only, naming the file).
// INPUT that reads once (a pipe, standard input) is read whole by a single rank and refused
// with several.
struct RankRows {
  InputMatrix x;
  std::int64_t total_rows = 0;  // of the whole INPUT
  std::int64_t first_row = 0;   // this rank's first row of INPUT, from 0
};
// --memory-map and --map-chunk-rows (each rank holds its rows in memory) are refused.
RankRows read_rank_rows(const std::string& input, const DataArgs& data,
                        const std::string& memory_map, std::int64_t map_chunk_rows);

// The weights of rows [first_row, first_row + row_count) of an N-value file of total_rows
// values, checked (finite, >= 0) and named by the file's row when they are not.
std::vector<double> load_sample_weights(const std::string& path, std::int64_t total_rows,
                                        std::int64_t first_row, std::int64_t row_count,
                                        const std::string& input);

// The values the family refuses (a Bernoulli 0.5) in this rank's rows, named by the file's row
// and line as one process names them, which mpi::fit and mpi::select, given rows alone, cannot.
// A collective: every rank throws when one does.
void check_rank_values(const DataView& x, const FitOptions& options, const DataFiles& files);

// Runs a collective library call (mpi::fit, mpi::select): an error about the data that every
// rank holds alike is named by its file, as one process names it, and still held alike.
template <typename Call>
auto naming_files_on_every_rank(const DataFiles& files, Call&& call) -> decltype(call()) {
#if EMIX_HAS_MPI
  try {
    return call();
  } catch (const InvalidArgument& e) {
    if (!mpi::raised_on_every_rank(e)) throw;
    try {
      rethrow_whole_input_in_file(e, files);
    } catch (const InvalidArgument& named) {
      mpi::throw_on_every_rank(named.what());
    }
  }
#else
  (void)files;
  return call();
#endif
}

}  // namespace emix::cli
