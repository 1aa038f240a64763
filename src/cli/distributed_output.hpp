// Under mpirun: per-row outputs of a distributed fit (labels, responsibilities) written by rank 0
// from every rank's rows, in rank order, so the file is the one a single process would write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emix::cli {

// Collective over MPI_COMM_WORLD. `path` (rank 0's temporary output name; ignored elsewhere)
// receives the labels of all total_rows rows, int32, each rank passing its own.
void write_distributed_labels(const std::string& path, const std::vector<std::int32_t>& local,
                              std::int64_t total_rows);
// The same for responsibilities, total_rows x k float64, streamed (rank 0 holds one piece).
void write_distributed_responsibilities(const std::string& path, const std::vector<double>& local,
                                        std::int64_t total_rows, int k);

}  // namespace emix::cli
