// Pieces shared by the .npy, text and raw readers: element types on disk, conversion to float or
// double, row ranges, finite checks and a checked input file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "emix/data.hpp"
#include "emix/io.hpp"

namespace emix::io::detail {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr bool kHostLittleEndian = false;
#else
constexpr bool kHostLittleEndian = true;
#endif

// Element types a data file may hold.
enum class Scalar {
  kBool,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kFloat32,
  kFloat64
};

std::size_t scalar_size(Scalar scalar);
const char* scalar_name(Scalar scalar);  // "bool", "int8", ..., "float64"
// Parses a raw-binary dtype name ("float32", "uint16", ...); false when unknown.
bool parse_scalar_name(std::string_view name, Scalar* scalar);

// The float nearest to `value`, rounding as the conversion rounds: up to half a unit in the last
// place past FLT_MAX is FLT_MAX, beyond it +-inf (where a plain cast is undefined behaviour).
float narrow_to_float(double value);

// Converts `count` elements at `src` (of type `scalar`, byte-swapped when `swap`) to `dtype`
// at `dst`. Stops at the first element that is finite but does not fit in `dtype` and, with
// `check_finite`, at the first NaN / Inf; stores its source value in *bad_value and returns its
// index. Otherwise returns count.
std::size_t convert(const unsigned char* src, Scalar scalar, bool swap, std::size_t count,
                    DType dtype, void* dst, bool check_finite, double* bad_value);

// Throws InvalidArgument "PATH: row R, column C is nan" (or "is inf", "is -inf", or "VALUE does
// not fit in float32"); row and col are 1-based. `suffix` is appended (for example " (line 9)").
[[noreturn]] void throw_not_finite(const std::string& path, std::int64_t row, std::int64_t col,
                                   double value, DType dtype, const std::string& suffix = {});

struct RowRange {
  std::int64_t first = 0;
  std::int64_t count = 0;
};
// Throws InvalidArgument for a negative first_row or a row_count below -1.
void check_row_options(const std::string& path, const ReadOptions& options);
// The rows options ask for, out of `total_rows`; InvalidArgument when out of range.
RowRange resolve_rows(const std::string& path, const ReadOptions& options, std::int64_t total_rows);

// emix::quoted_excerpt (core/validate.hpp): 'abc...' (20000000 bytes), printable.
std::string excerpt(std::string_view text, std::size_t max_bytes = 40);
// A path for a message: as given when it is at most 512 bytes without control characters
// (UTF-8 names stay readable), else quoted and shortened as excerpt() does.
std::string quote_path(const std::string& path);
// Whether bytes begin as every .npy file does (NumPy's magic string): a .npy named or sent
// where text or a model was expected.
inline bool starts_with_npy_magic(std::string_view bytes) {
  return bytes.substr(0, 6) == std::string_view("\x93NUMPY", 6);
}

// The file name's extension, lower case, with its dot (".npy"); "" for none.
std::string lower_extension(const std::string& path);

// Throws IoError "PATH: MESSAGE: strerror(error)".
[[noreturn]] void throw_io(const std::string& path, const std::string& message, int error = 0);

// The descriptor a name stands for when it is one of this process's own (/dev/stdin,
// /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N, /proc/PID/fd/N with this PID), else -1.
int own_descriptor_named(const std::string& path);

// A file open for reading; every failure throws IoError naming it.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  // The size of a regular file; 0 for a pipe, a FIFO or a device, which have none.
  std::uint64_t size() const { return size_; }
  // A regular file: its size says how much it holds and it can be read again after a seek.
  bool regular() const { return regular_; }
  std::FILE* get() { return file_; }
  void seek(std::uint64_t offset);
  // Reads exactly `size` bytes; `what` names them in the error ("the .npy header").
  void read_exact(void* data, std::size_t size, const char* what);
  // Reads up to `size` bytes; fewer only at the end of the file.
  std::size_t read_some(void* data, std::size_t size);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t size_ = 0;
  bool regular_ = false;
};

// Reads rows [range.first, range.first + range.count) of a row-major array of `cols` columns of
// `scalar` that starts at byte `data_offset`, seeking past the rows before it.
HostMatrix read_row_major(InputFile& file, std::uint64_t data_offset, Scalar scalar, bool swap,
                          std::int64_t cols, RowRange range, const ReadOptions& options);

HostMatrix read_npy(const std::string& path, const ReadOptions& options);
// What a .npy header says, checked as read_npy checks it (1-D or 2-D, the data all present).
struct NpyLayout {
  Scalar scalar = Scalar::kFloat64;
  bool swap = false;           // the file's byte order is not the host's
  bool fortran_order = false;  // column-major (false for 1-D arrays and single columns)
  std::int64_t rows = 0;
  std::int64_t cols = 0;  // 1 for a 1-D array
  std::uint64_t data_offset = 0;
};
NpyLayout npy_layout(const std::string& path);
HostMatrix read_text(const std::string& path, const ReadOptions& options);
HostMatrix read_raw(const std::string& path, const ReadOptions& options);
// The line of a text file on which data row `row` (1-based) stands; 0 past the end.
std::int64_t text_line_of_data_row(const std::string& path, std::int64_t row);
// io::text_first_line_guess for a text file.
FirstLineGuess text_first_line_guess(const std::string& path);
// io::text_first_line for a text file.
TextFirstLine text_first_line(const std::string& path);
// The number of rows, from the header (.npy, checked against the file's size) or the file's size
// (raw), reading no data.
std::int64_t count_npy_rows(const std::string& path);
std::int64_t count_raw_rows(const std::string& path, const ReadOptions& options);

}  // namespace emix::io::detail
