// Reading each rank's share of the input under mpirun (ranks.hpp).
#include "cli/ranks.hpp"

#include "core/validate.hpp"
#include "emix/io.hpp"

#if EMIX_HAS_MPI
#include "emix/mpi.hpp"
#endif

namespace emix::cli {

RankRows read_rank_rows(const std::string& input, const DataArgs& data,
                        const std::string& memory_map, std::int64_t map_chunk_rows) {
  if (memory_map == "on") {
    throw InvalidArgument(
        "--memory-map: not under mpirun (each rank reads its own rows into "
        "memory)");
  }
  if (map_chunk_rows != 0) {
    throw InvalidArgument(
        "--map-chunk-rows: not under mpirun (each rank reads its own rows into "
        "memory)");
  }
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
  const std::string extension = lower_extension(path);
  if (extension == ".bin" || extension == ".raw") {
    // --dtype and --dims describe INPUT; the library's own message asked for them.
    throw InvalidArgument("--sample-weight " + path +
                          ": raw binary weights are not read (--dtype and --dims describe "
                          "INPUT); write the weights as .npy or text, one value per row");
  }
  std::vector<double> weights;
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
    weights.assign(m.as<double>(), m.as<double>() + m.rows() * m.cols());
  } else {
    // A share of the file: every rank reads its own rows of it.
    if (reads_once(path)) {
      throw InvalidArgument("--sample-weight " + path +
                            " is not a regular file: under mpirun with " +
                            std::to_string(mpi_size()) +
                            " ranks each rank reads its own rows of it, which a pipe or standard "
                            "input cannot give; write the weights to a file");
    }
    const std::int64_t rows_in_file = io::count_rows(path);
    if (rows_in_file == 1 && total_rows > 1) {
      throw InvalidArgument("--sample-weight " + path +
                            ": its values are on one row; under mpirun the weights file must "
                            "hold one value per row (N values, or N x 1)");
    }
    io::ReadOptions options;
    options.require_finite = false;
    if (rows_in_file > 0) {
      // Its width before its count: a 5 x 3 file was said to hold 5 values.
      options.row_count = 1;
      const std::int64_t cols = io::read_matrix(path, options).cols();
      if (cols != 1) {
        throw InvalidArgument("--sample-weight " + path + ": expected one value per row, got a " +
                              std::to_string(rows_in_file) + " x " + std::to_string(cols) +
                              " matrix (under mpirun the weights file must be N values or N x 1)");
      }
    }
    check_weight_count(path, rows_in_file, total_rows, input);
    options.first_row = first_row;
    options.row_count = row_count;
    const HostMatrix m = io::read_matrix(path, options);
    weights.assign(m.as<double>(), m.as<double>() + m.rows());
  }
  // Checked here, where the file and the first row are known (under mpirun the library would
  // name the row within this rank's share).
  try {
    validate_sample_weight(weights.data(), static_cast<std::int64_t>(weights.size()), false);
  } catch (const DataError& e) {
    rethrow_in_file(e, DataFiles{input, path, first_row});
  } catch (const InvalidArgument& e) {  // "sample weights sum to inf": the file's name too
    rethrow_whole_input_in_file(e, DataFiles{input, path, first_row});
  }
  return weights;
}

void check_rank_values(const DataView& x, const FitOptions& options, const DataFiles& files) {
  on_every_rank([&] {
    if (x.rows > 0) naming_files(files, [&] { validate_fit_data(x, options); });
  });
}

}  // namespace emix::cli
