#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::io {
namespace {

// What a regular file that is not named as binary holds, by its first bytes: a .npy under
// another name is read as one; an archive, a compressed file or other binary data is named as
// such, rather than parsed as text into "the header has 5 columns but row 1 has 1". Pipes and
// devices are left to the text reader (reading their first bytes here would consume them).
FileFormat sniff_text_file(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return FileFormat::kText;
  std::ifstream in(path, std::ios::binary);
  char head[4096];
  in.read(head, sizeof head);
  const std::size_t got = static_cast<std::size_t>(in.gcount());
  const std::string_view start(head, got);
  if (detail::starts_with_npy_magic(start)) return FileFormat::kNpy;
  if (start.rfind("PK\x03\x04", 0) == 0) {
    throw IoError(path +
                  ": a zip archive (an .npz?), which emix does not read: save each array "
                  "with numpy.save as a .npy file");
  }
  if (start.rfind("\x1f\x8b", 0) == 0) {
    throw IoError(path +
                  ": gzip-compressed; decompress it first (emix reads .npy, text, and raw "
                  "binary with --dtype and --dims)");
  }
  if (start.rfind("\xFF\xFE", 0) == 0 || start.rfind("\xFE\xFF", 0) == 0) {
    throw IoError(path +
                  ": UTF-16 text (it begins with a UTF-16 byte-order mark), which emix does not "
                  "read: save it as UTF-8 (Excel: \"CSV UTF-8\"; iconv -f UTF-16 -t UTF-8)");
  }
  const std::size_t nul = start.find('\0');
  if (nul != std::string_view::npos) {
    throw IoError(path + ": binary data (a NUL byte at byte " + std::to_string(nul + 1) +
                  ") where text was expected; raw binary needs --dtype and --dims");
  }
  return FileFormat::kText;
}

// kAuto: .npy is NumPy; .bin / .raw, or any file when a raw dtype is given, is raw binary;
// everything else is text, unless its first bytes say otherwise (sniff_text_file).
FileFormat resolve_format(const std::string& path, const ReadOptions& options) {
  if (options.format != FileFormat::kAuto) return options.format;
  const std::string ext = detail::lower_extension(path);
  if (ext == ".npy") return FileFormat::kNpy;
  if (ext == ".bin" || ext == ".raw" || !options.raw_dtype.empty()) return FileFormat::kRaw;
  return sniff_text_file(path);
}

}  // namespace

HostMatrix read_matrix(const std::string& path, const ReadOptions& options) {
  const cpu::ScopedNonStopFp non_stop;  // strtod raises overflow on 1e400 (fp_environment.hpp)
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
  const cpu::ScopedNonStopFp non_stop;
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
  const cpu::ScopedNonStopFp non_stop;
  // A pipe or FIFO was read once: opened again, a FIFO waits for a writer that never comes.
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return 0;
  if (resolve_format(path, ReadOptions()) != FileFormat::kText) return 0;
  return detail::text_line_of_data_row(path, row);
}

FirstLineGuess text_first_line_guess(const std::string& path) {
  ReadOptions options;
  if (resolve_format(path, options) != FileFormat::kText) return {};
  return detail::text_first_line_guess(path);
}

TextFirstLine text_first_line(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return {};
  if (resolve_format(path, ReadOptions()) != FileFormat::kText) return {};
  return detail::text_first_line(path);
}

std::vector<double> read_vector(const std::string& path) {
  const cpu::ScopedNonStopFp non_stop;
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
