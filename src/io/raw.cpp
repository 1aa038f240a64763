// Raw binary: rows of raw_cols elements of raw_dtype, in the host's byte order, no header.
#include <cstdint>
#include <limits>
#include <string>

#include "emix/errors.hpp"
#include "io/common.hpp"

namespace emix::io::detail {

namespace {

// The element type on disk and the number of rows; throws naming what is wrong.
std::int64_t raw_rows(const std::string& path, const ReadOptions& options, InputFile& file,
                      Scalar* element) {
  Scalar scalar;
  const std::string name = quote_path(path);
  if (options.raw_dtype.empty()) {
    throw InvalidArgument(name +
                          ": raw binary needs its element type and its number of columns "
                          "(the program's --dtype and --dims; ReadOptions::raw_dtype and "
                          "raw_cols)");
  }
  if (!parse_scalar_name(options.raw_dtype, &scalar)) {
    throw InvalidArgument(name + ": unknown raw dtype " + excerpt(options.raw_dtype) +
                          " (expected float32, float64, int8, uint8, int16, uint16, int32, "
                          "uint32, int64, uint64 or bool)");
  }
  if (options.raw_cols < 1) {
    throw InvalidArgument(name + ": raw binary needs raw_cols >= 1, got " +
                          std::to_string(options.raw_cols));
  }
  // A row must have a size in bytes that int64 holds: D x the element size could otherwise wrap
  // (to 0 for D = 2^61 of float64, which then divided the file size).
  const std::uint64_t item = scalar_size(scalar);
  if (static_cast<std::uint64_t>(options.raw_cols) >
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / item) {
    throw InvalidArgument(name + ": raw_cols " + std::to_string(options.raw_cols) + " of " +
                          scalar_name(scalar) + " makes a row larger than 2^63 bytes");
  }
  const std::uint64_t row_bytes = static_cast<std::uint64_t>(options.raw_cols) * item;
  if (file.size() % row_bytes != 0) {
    throw_io(path, "size " + std::to_string(file.size()) +
                       " bytes is not a multiple of the row size " + std::to_string(row_bytes) +
                       " bytes (" + std::to_string(options.raw_cols) + " columns of " +
                       scalar_name(scalar) + ")");
  }
  *element = scalar;
  return static_cast<std::int64_t>(file.size() / row_bytes);
}

}  // namespace

std::int64_t count_raw_rows(const std::string& path, const ReadOptions& options) {
  InputFile file(path);
  Scalar scalar;
  return raw_rows(path, options, file, &scalar);
}

HostMatrix read_raw(const std::string& path, const ReadOptions& options) {
  check_row_options(path, options);
  InputFile file(path);
  Scalar scalar;
  const std::int64_t rows = raw_rows(path, options, file, &scalar);
  const RowRange range = resolve_rows(path, options, rows);
  return read_row_major(file, 0, scalar, false, options.raw_cols, range, options);
}

}  // namespace emix::io::detail
