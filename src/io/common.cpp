#include "io/common.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/validate.hpp"
#include "emix/errors.hpp"

namespace emix::io::detail {
namespace {

template <typename S>
S load(const unsigned char* p, bool swap) {
  S value;
  if (swap) {
    unsigned char bytes[sizeof(S)];
    for (std::size_t i = 0; i < sizeof(S); ++i) bytes[i] = p[sizeof(S) - 1 - i];
    std::memcpy(&value, bytes, sizeof(S));
  } else {
    std::memcpy(&value, p, sizeof(S));
  }
  return value;
}

// A conservative screen: true only when every value of src[0, count) (floating point, native
// byte order) converts to D by a plain cast without an error: finite where check_finite asks,
// and, if finite, within D's range. A block it fails goes through the value-by-value loop, which
// finds the first bad value, if any (values that round down to FLT_MAX fail the screen and
// convert). No early exit and no branch, so that it vectorises: the screen and the plain
// conversion after it cost less than the value-by-value loop.
template <typename S, typename D>
bool all_convertible(const unsigned char* src, std::size_t count, bool check_finite) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<D>::max()) <
                                  static_cast<double>(std::numeric_limits<S>::max())
                              ? static_cast<double>(std::numeric_limits<D>::max())
                              : static_cast<double>(std::numeric_limits<S>::max());
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  bool bad = false;
  if (check_finite) {
    for (std::size_t i = 0; i < count; ++i) {
      const double magnitude = std::fabs(static_cast<double>(load<S>(src + i * sizeof(S), false)));
      bad |= !(magnitude <= kMax);  // NaN, +-inf, or beyond D's range
    }
  } else if constexpr (sizeof(D) < sizeof(S)) {
    for (std::size_t i = 0; i < count; ++i) {
      const double magnitude = std::fabs(static_cast<double>(load<S>(src + i * sizeof(S), false)));
      bad |= magnitude > kMax && magnitude < kInfinity;  // finite, yet beyond D's range
    }
  }
  return !bad;
}

template <typename S, typename D>
std::size_t convert_each(const unsigned char* src, bool swap, std::size_t count, D* dst,
                         bool check_finite, double* bad_value) {
  if constexpr (std::is_same_v<S, bool>) {
    for (std::size_t i = 0; i < count; ++i) dst[i] = src[i] != 0 ? D(1) : D(0);
  } else if constexpr (std::is_integral_v<S>) {
    // Every integer fits in float's range, so none can fail the finite check. Through double
    // even for float: a float32 read is then exactly the float64 read narrowed (int64 -> float
    // directly can round differently from int64 -> double -> float beyond 2^53).
    for (std::size_t i = 0; i < count; ++i) {
      dst[i] = static_cast<D>(static_cast<double>(load<S>(src + i * sizeof(S), swap)));
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      const double value = static_cast<double>(load<S>(src + i * sizeof(S), swap));
      D out;
      if constexpr (std::is_same_v<D, float>) {
        out = narrow_to_float(value);
      } else {
        out = value;
      }
      // A finite value that the narrowing made infinite always stops: it would be a silent
      // change of the data.
      if (!std::isfinite(out) && (check_finite || std::isfinite(value))) {
        *bad_value = value;
        return i;
      }
      dst[i] = out;
    }
  }
  return count;
}

template <typename S, typename D>
std::size_t convert_typed(const unsigned char* src, bool swap, std::size_t count, D* dst,
                          bool check_finite, double* bad_value) {
  if constexpr (std::is_floating_point_v<S>) {
    if (!swap) {
      constexpr std::size_t kBlock = 4096;
      for (std::size_t first = 0; first < count; first += kBlock) {
        const std::size_t n = std::min(kBlock, count - first);
        const unsigned char* block = src + first * sizeof(S);
        if (!all_convertible<S, D>(block, n, check_finite)) {
          // The screen is conservative (values rounding down to FLT_MAX fail it too): only a
          // value convert_each refuses ends the conversion.
          const std::size_t done =
              convert_each<S, D>(block, false, n, dst + first, check_finite, bad_value);
          if (done < n) return first + done;
          continue;
        }
        for (std::size_t i = 0; i < n; ++i) {
          dst[first + i] = static_cast<D>(load<S>(block + i * sizeof(S), false));
        }
      }
      return count;
    }
  }
  return convert_each<S, D>(src, swap, count, dst, check_finite, bad_value);
}

template <typename D>
std::size_t convert_to(const unsigned char* src, Scalar scalar, bool swap, std::size_t count,
                       D* dst, bool check_finite, double* bad_value) {
  switch (scalar) {
    case Scalar::kBool:
      return convert_typed<bool>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kInt8:
      return convert_typed<std::int8_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kUInt8:
      return convert_typed<std::uint8_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kInt16:
      return convert_typed<std::int16_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kUInt16:
      return convert_typed<std::uint16_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kInt32:
      return convert_typed<std::int32_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kUInt32:
      return convert_typed<std::uint32_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kInt64:
      return convert_typed<std::int64_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kUInt64:
      return convert_typed<std::uint64_t>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kFloat32:
      return convert_typed<float>(src, swap, count, dst, check_finite, bad_value);
    case Scalar::kFloat64:
      return convert_typed<double>(src, swap, count, dst, check_finite, bad_value);
  }
  return count;
}

}  // namespace

std::size_t scalar_size(Scalar scalar) {
  switch (scalar) {
    case Scalar::kBool:
    case Scalar::kInt8:
    case Scalar::kUInt8:
      return 1;
    case Scalar::kInt16:
    case Scalar::kUInt16:
      return 2;
    case Scalar::kInt32:
    case Scalar::kUInt32:
    case Scalar::kFloat32:
      return 4;
    case Scalar::kInt64:
    case Scalar::kUInt64:
    case Scalar::kFloat64:
      return 8;
  }
  return 1;
}

const char* scalar_name(Scalar scalar) {
  switch (scalar) {
    case Scalar::kBool:
      return "bool";
    case Scalar::kInt8:
      return "int8";
    case Scalar::kUInt8:
      return "uint8";
    case Scalar::kInt16:
      return "int16";
    case Scalar::kUInt16:
      return "uint16";
    case Scalar::kInt32:
      return "int32";
    case Scalar::kUInt32:
      return "uint32";
    case Scalar::kInt64:
      return "int64";
    case Scalar::kUInt64:
      return "uint64";
    case Scalar::kFloat32:
      return "float32";
    case Scalar::kFloat64:
      return "float64";
  }
  return "?";
}

bool parse_scalar_name(std::string_view name, Scalar* scalar) {
  static constexpr Scalar kAll[] = {Scalar::kBool,    Scalar::kInt8,   Scalar::kUInt8,
                                    Scalar::kInt16,   Scalar::kUInt16, Scalar::kInt32,
                                    Scalar::kUInt32,  Scalar::kInt64,  Scalar::kUInt64,
                                    Scalar::kFloat32, Scalar::kFloat64};
  for (Scalar s : kAll) {
    if (name == scalar_name(s)) {
      *scalar = s;
      return true;
    }
  }
  return false;
}

float narrow_to_float(double value) {
  // Rounded to nearest as the conversion rounds within float's range: up to half a unit in the
  // last place past FLT_MAX (2^103) is FLT_MAX, from there on infinity (the tie goes to even,
  // which FLT_MAX's odd significand is not); "3.4028235e38", FLT_MAX printed with 8 digits,
  // is FLT_MAX, as NumPy reads it. The cast itself is undefined beyond the range.
  constexpr float kMax = std::numeric_limits<float>::max();
  constexpr double kFirstInfinite = static_cast<double>(kMax) + 0x1p103;
  const float sign = value < 0 ? -1.0f : 1.0f;
  if (std::abs(value) >= kFirstInfinite) return sign * std::numeric_limits<float>::infinity();
  if (std::abs(value) > static_cast<double>(kMax)) return sign * kMax;
  return static_cast<float>(value);
}

std::size_t convert(const unsigned char* src, Scalar scalar, bool swap, std::size_t count,
                    DType dtype, void* dst, bool check_finite, double* bad_value) {
  if (dtype == DType::kFloat32) {
    return convert_to(src, scalar, swap, count, static_cast<float*>(dst), check_finite, bad_value);
  }
  return convert_to(src, scalar, swap, count, static_cast<double*>(dst), check_finite, bad_value);
}

void throw_not_finite(const std::string& path, std::int64_t row, std::int64_t col, double value,
                      DType dtype, const std::string& suffix) {
  std::string where =
      quote_path(path) + ": row " + std::to_string(row) + ", column " + std::to_string(col);
  if (std::isnan(value)) throw InvalidArgument(where + " is nan" + suffix);
  if (std::isinf(value))
    throw InvalidArgument(where + (value > 0 ? " is inf" : " is -inf") + suffix);
  char text[32];
  const auto end = std::to_chars(text, text + sizeof(text), value).ptr;  // shortest round trip
  throw InvalidArgument(where + ": " + std::string(text, end) + " does not fit in " +
                        to_string(dtype) + suffix);
}

void check_row_options(const std::string& path, const ReadOptions& options) {
  if (options.first_row < 0) {
    throw InvalidArgument(quote_path(path) + ": first_row must be >= 0, got " +
                          std::to_string(options.first_row));
  }
  if (options.row_count < -1) {
    throw InvalidArgument(quote_path(path) + ": row_count must be >= 0 (or -1 for all rows), got " +
                          std::to_string(options.row_count));
  }
}

RowRange resolve_rows(const std::string& path, const ReadOptions& options,
                      std::int64_t total_rows) {
  check_row_options(path, options);
  if (options.first_row > total_rows) {
    throw InvalidArgument(quote_path(path) + ": first_row " + std::to_string(options.first_row) +
                          " is past the end: the file has " + std::to_string(total_rows) + " rows");
  }
  RowRange range;
  range.first = options.first_row;
  range.count = options.row_count < 0 ? total_rows - options.first_row : options.row_count;
  if (range.count > total_rows - range.first) {
    throw InvalidArgument(quote_path(path) + ": rows [" + std::to_string(range.first) + ", " +
                          std::to_string(range.first + range.count) +
                          ") requested but the file has " + std::to_string(total_rows) + " rows");
  }
  return range;
}

std::string excerpt(std::string_view text, std::size_t max_bytes) {
  return quoted_excerpt(text, max_bytes);
}

std::string quote_path(const std::string& path) {
  if (path.empty()) return "'' (an empty path)";
  constexpr std::size_t kMaxPath = 512;
  const bool plain = path.size() <= kMaxPath && std::none_of(path.begin(), path.end(), [](char c) {
                       const auto u = static_cast<unsigned char>(c);
                       return u < 0x20 || u == 0x7f;
                     });
  if (plain) return path;
  return quoted_excerpt(path, kMaxPath);
}

std::string lower_extension(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return {};
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

void throw_io(const std::string& path, const std::string& message, int error) {
  std::string text = quote_path(path) + ": " + message;
  if (error != 0) text += std::string(": ") + std::strerror(error);
  throw IoError(text, error, path);
}

int own_descriptor_named(const std::string& path) {
  if (path == "/dev/stdin") return STDIN_FILENO;
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  std::string number;
  for (const std::string& prefix : {std::string("/dev/fd/"), std::string("/proc/self/fd/"),
                                    "/proc/" + std::to_string(::getpid()) + "/fd/"}) {
    if (path.compare(0, prefix.size(), prefix) == 0) number = path.substr(prefix.size());
  }
  if (number.empty() || number.size() > 9 ||
      number.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoi(number);
}

namespace {

// A name of one of this process's descriptors (the CLI's "-" is /dev/stdin) over a regular file
// that something read part way: opened anew by name, the file is read from its start, and the
// rows an earlier command of the shell consumed (`{ head -n 1000 > /dev/null; emix score m -; }
// < data.csv`) were read again, silently.
void refuse_descriptor_read_part_way(const std::string& path) {
  const int descriptor = own_descriptor_named(path);
  if (descriptor < 0) return;
  struct stat info;
  if (::fstat(descriptor, &info) != 0 || !S_ISREG(info.st_mode)) return;
  const off_t offset = ::lseek(descriptor, 0, SEEK_CUR);
  if (offset <= 0) return;
  throw_io(path, "the file behind it was already read up to byte " + std::to_string(offset) +
                     ", and emix reads a file from its start: give the file's name, or pipe "
                     "what is left (tail -c +" +
                     std::to_string(offset + 1) + " FILE | emix ...)");
}

// The file; for /dev/stdin (the CLI's "-") that is not a regular file, the process's own
// descriptor 0: a socket has no name to open again (ENXIO), and a pipe's is the same stream.
// A regular file is opened by name and read from its start, as seeking and mapping need.
std::FILE* open_input(const std::string& path) {
  struct stat standard_input;
  if (path == "/dev/stdin" && ::fstat(0, &standard_input) == 0 &&
      !S_ISREG(standard_input.st_mode)) {
    const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    std::FILE* file = ::fdopen(fd, "rb");
    if (file == nullptr) {
      const int error = errno;
      ::close(fd);
      errno = error;
    }
    return file;
  }
  return std::fopen(path.c_str(), "rb");
}

}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  // The C library would read the name up to the NUL: another file.
  if (path.find('\0') != std::string::npos) throw_io(path, "a file name holds no NUL byte");
  refuse_descriptor_read_part_way(path);
  file_ = open_input(path);
  if (file_ == nullptr) throw_io(path, "cannot open", errno);
  struct stat info;
  if (::fstat(::fileno(file_), &info) != 0) {
    const int error = errno;
    std::fclose(file_);
    throw_io(path, "cannot stat", error);
  }
  if (S_ISDIR(info.st_mode)) {
    std::fclose(file_);
    throw IoError(quote_path(path) + ": is a directory, not a file", EISDIR, path);
  }
  regular_ = S_ISREG(info.st_mode);
  size_ = regular_ ? static_cast<std::uint64_t>(info.st_size) : 0;
}

InputFile::~InputFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void InputFile::seek(std::uint64_t offset) {
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()) ||
      ::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) {
    throw_io(path_, "cannot seek to byte " + std::to_string(offset), errno);
  }
}

std::size_t InputFile::read_some(void* data, std::size_t size) {
  const std::size_t got = std::fread(data, 1, size, file_);
  if (got < size && std::ferror(file_) != 0) throw_io(path_, "read failed", errno);
  return got;
}

void InputFile::read_exact(void* data, std::size_t size, const char* what) {
  const std::size_t got = read_some(data, size);
  if (got < size) {
    throw_io(path_, std::string("truncated: the file ends inside ") + what + " (" +
                        std::to_string(got) + " of " + std::to_string(size) + " bytes)");
  }
}

HostMatrix read_row_major(InputFile& file, std::uint64_t data_offset, Scalar scalar, bool swap,
                          std::int64_t cols, RowRange range, const ReadOptions& options) {
  HostMatrix out(options.dtype, range.count, cols);
  if (range.count == 0 || cols == 0) return out;
  const std::size_t item = scalar_size(scalar);
  const std::uint64_t row_bytes = static_cast<std::uint64_t>(cols) * item;
  file.seek(data_offset + static_cast<std::uint64_t>(range.first) * row_bytes);

  // Blocks of whole rows, about 4 MiB each, so a large file never needs a second full copy.
  const std::uint64_t block_rows =
      std::max<std::uint64_t>(1, (std::uint64_t{4} << 20) / std::max<std::uint64_t>(1, row_bytes));
  std::vector<unsigned char> buffer(static_cast<std::size_t>(
      std::min<std::uint64_t>(block_rows, static_cast<std::uint64_t>(range.count)) * row_bytes));
  const std::size_t out_item = dtype_size(options.dtype);
  auto* dst = static_cast<unsigned char*>(out.data());
  for (std::int64_t row = 0; row < range.count;) {
    const auto rows = static_cast<std::int64_t>(
        std::min<std::uint64_t>(block_rows, static_cast<std::uint64_t>(range.count - row)));
    const std::size_t count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    file.read_exact(buffer.data(), count * item, "the data");
    double bad = 0;
    const std::size_t done =
        convert(buffer.data(), scalar, swap, count, options.dtype,
                dst + static_cast<std::size_t>(row) * static_cast<std::size_t>(cols) * out_item,
                options.require_finite, &bad);
    if (done < count) {
      const std::int64_t r = range.first + row + static_cast<std::int64_t>(done) / cols;
      throw_not_finite(file.path(), r + 1, static_cast<std::int64_t>(done) % cols + 1, bad,
                       options.dtype);
    }
    row += rows;
  }
  return out;
}

}  // namespace emix::io::detail
