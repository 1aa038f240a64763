#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::io {
namespace {

std::string lower_extension(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return {};
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// kAuto: .npy is NumPy; .bin / .raw, or any file when a raw dtype is given, is raw binary;
// everything else is text.
FileFormat resolve_format(const std::string& path, const ReadOptions& options) {
  if (options.format != FileFormat::kAuto) return options.format;
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return FileFormat::kNpy;
  if (ext == ".bin" || ext == ".raw" || !options.raw_dtype.empty()) return FileFormat::kRaw;
  return FileFormat::kText;
}

}  // namespace

HostMatrix read_matrix(const std::string& path, const ReadOptions& options) {
  switch (resolve_format(path, options)) {
    case FileFormat::kNpy:
      return detail::read_npy(path, options);
    case FileFormat::kRaw:
      return detail::read_raw(path, options);
    case FileFormat::kText:
    case FileFormat::kAuto:
      break;
  }
  return detail::read_text(path, options);
}

std::int64_t count_rows(const std::string& path, const ReadOptions& options) {
  switch (resolve_format(path, options)) {
    case FileFormat::kNpy:
      return detail::count_npy_rows(path);
    case FileFormat::kRaw:
      return detail::count_raw_rows(path, options);
    case FileFormat::kText:
    case FileFormat::kAuto:
      break;
  }
  ReadOptions all = options;
  all.first_row = 0;
  all.row_count = -1;
  all.require_finite = false;
  return detail::read_text(path, all).rows();
}

std::int64_t text_line_of_row(const std::string& path, std::int64_t row) {
  ReadOptions options;
  if (resolve_format(path, options) != FileFormat::kText) return 0;
  return detail::text_line_of_data_row(path, row);
}

std::vector<double> read_vector(const std::string& path) {
  ReadOptions options;
  options.dtype = DType::kFloat64;
  const HostMatrix matrix = read_matrix(path, options);
  if (matrix.cols() != 1 && matrix.rows() != 1) {
    throw IoError(
        detail::quote_path(path) + ": expected a vector (N values, N x 1 or 1 x N), got a " +
        std::to_string(matrix.rows()) + " x " + std::to_string(matrix.cols()) + " matrix");
  }
  const double* values = matrix.as<double>();
  return std::vector<double>(values, values + matrix.rows() * matrix.cols());
}

}  // namespace emix::io
