// Under mpirun: per-row outputs of a distributed fit (labels, responsibilities) written by rank 0
// from every rank's rows, in rank order, so the file is the one a single process would write.
#pragma once

#include <cstdint>
#include <vector>

#include "emix/io.hpp"

namespace emix::cli {

// Collective over MPI_COMM_WORLD. `out` (rank 0's staged output, not committed here; null on
// the other ranks) receives the labels of all total_rows rows, int32, each rank passing its own.
void write_distributed_labels(io::OutputFile* out, const std::vector<std::int32_t>& local,
                              std::int64_t total_rows);
// The same for responsibilities, total_rows x k float64, streamed (rank 0 holds one piece).
void write_distributed_responsibilities(io::OutputFile* out, const std::vector<double>& local,
                                        std::int64_t total_rows, int k);

}  // namespace emix::cli
