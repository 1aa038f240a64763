// Reading each rank's share of the input under mpirun (ranks.hpp).
#include "cli/ranks.hpp"

#include "core/validate.hpp"
#include "emix/io.hpp"

#if EMIX_HAS_MPI
#include "emix/mpi.hpp"
#endif

namespace emix::cli {

RankRows read_rank_rows(const std::string& input, const DataArgs& data) {
  RankRows mine;
  if (reads_once(input)) {
    // Standard input or a pipe reads once, and reaches rank 0 alone: one rank reads it whole;
    // several cannot share it (counting the rows first read the pipe to its end).
    if (mpi_size() > 1) {
      const std::string name = input == "/dev/stdin" ? "- (standard input)" : input;
      throw InvalidArgument("INPUT " + name + " is not a regular file: under mpirun with " +
                            std::to_string(mpi_size()) +
                            " ranks each rank reads its own rows of the file, which a pipe or "
                            "standard input cannot give; write the data to a file");
    }
    mine.x = InputMatrix(load_data(input, data, true, 0, -1));
    mine.total_rows = mine.x.rows();
    return mine;
  }
  mine.total_rows = count_input_rows(input, data);
  std::int64_t row_count = mine.total_rows;
#if EMIX_HAS_MPI
  const mpi::Shard shard = mpi::shard_rows(mine.total_rows, mpi_rank(), mpi_size());
  mine.first_row = shard.first_row;
  row_count = shard.row_count;
#endif
  mine.x = InputMatrix(load_data(input, data, true, mine.first_row, row_count));
  return mine;
}

namespace {

// The library takes the weights as a bare array, so only here can their count be checked.
void check_weight_count(const std::string& path, std::int64_t values, std::int64_t rows,
                        const std::string& input) {
  if (values != rows) {
    throw InvalidArgument("--sample-weight " + path + " has " + count_of(values, "value") +
                          ", but " + input + " has " + count_of(rows, "row"));
  }
}

}  // namespace

std::vector<double> load_sample_weights(const std::string& path, std::int64_t total_rows,
                                        std::int64_t first_row, std::int64_t row_count,
                                        const std::string& input) {
  if (first_row == 0 && row_count == total_rows) {
    io::ReadOptions options;
    options.require_finite = false;
    const HostMatrix m = io::read_matrix(path, options);
    if (m.cols() != 1 && m.rows() != 1) {
      throw InvalidArgument("--sample-weight " + path + ": expected one value per row, got a " +
                            std::to_string(m.rows()) + " x " + std::to_string(m.cols()) +
                            " matrix");
    }
    check_weight_count(path, m.rows() * m.cols(), total_rows, input);
    return std::vector<double>(m.as<double>(), m.as<double>() + m.rows() * m.cols());
  }
  check_weight_count(path, io::count_rows(path), total_rows, input);
  io::ReadOptions options;
  options.first_row = first_row;
  options.row_count = row_count;
  options.require_finite = false;
  const HostMatrix m = io::read_matrix(path, options);
  if (m.cols() != 1) {
    throw InvalidArgument("--sample-weight " + path + ": expected one value per row, got " +
                          std::to_string(m.cols()) +
                          " columns (under mpirun the weights file "
                          "must be N values or N x 1)");
  }
  std::vector<double> weights(m.as<double>(), m.as<double>() + m.rows());
  // Checked here, where the file and this share's first row are known: the library would name
  // the row within the share.
  try {
    validate_sample_weight(weights.data(), m.rows(), false);
  } catch (const DataError& e) {
    rethrow_in_file(e, DataFiles{input, path, first_row});
  }
  return weights;
}

}  // namespace emix::cli
