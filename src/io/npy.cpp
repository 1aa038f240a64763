// NumPy .npy files: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// A 6-byte magic string, a version, a header length and a Python dict literal such as
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), } padded with spaces to a multiple
// of 64 bytes, then the raw elements.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io/common.hpp"

namespace emix::io {
namespace detail {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

struct NpyHeader {
  std::string descr;
  Scalar scalar = Scalar::kFloat64;
  bool swap = false;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::uint64_t data_offset = 0;
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += std::to_string(shape[i]);
    if (i + 1 < shape.size() || shape.size() == 1) text += ",";
    if (i + 1 < shape.size()) text += " ";
  }
  return text + ")";
}

// The subset of Python literal syntax that NumPy writes in .npy headers: a dict of string keys
// whose values are strings, True / False or tuples of integers. Anything else (a list, in the
// descr of a structured array) is skipped and reported as unsupported by the caller.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  struct Value {
    enum class Kind { kString, kBool, kTuple, kOther } kind = Kind::kOther;
    std::string string;
    bool boolean = false;
    std::vector<std::int64_t> ints;
  };

  template <typename OnEntry>
  void parse_dict(OnEntry on_entry) {
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      on_entry(key, parse_value());
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') fail("expected ',' or '}'");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    // An excerpt from where parsing stopped: the header may be long and hold any bytes.
    throw_io(path_, "malformed .npy header (" + what + " at character " + std::to_string(pos_) +
                        "): " + excerpt(text_.substr(std::min(pos_, text_.size()))));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    ++pos_;
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }
  Value parse_value() {
    Value value;
    const char c = peek();
    if (c == '\'' || c == '"') {
      value.kind = Value::Kind::kString;
      value.string = parse_string();
    } else if (text_.substr(pos_, 4) == "True") {
      value.kind = Value::Kind::kBool;
      value.boolean = true;
      pos_ += 4;
    } else if (text_.substr(pos_, 5) == "False") {
      value.kind = Value::Kind::kBool;
      pos_ += 5;
    } else if (c == '(') {
      value.kind = Value::Kind::kTuple;
      ++pos_;
      while (true) {
        skip_space();
        if (peek() == ')') break;
        value.ints.push_back(parse_int());
        skip_space();
        if (peek() == ',')
          ++pos_;
        else if (peek() != ')')
          fail("expected ',' or ')' in the shape");
      }
      ++pos_;
    } else {
      skip_other();
    }
    return value;
  }
  std::int64_t parse_int() {
    const std::size_t start = pos_;
    std::int64_t value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      const int digit = peek() - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
        fail("dimension too large");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer");
    if (peek() == 'L') ++pos_;  // Python 2 long literals
    return value;
  }
  // Skips one value of another kind: balanced brackets and quoted strings.
  void skip_other() {
    int depth = 0;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\'' || c == '"') {
        parse_string();
        continue;
      }
      if (c == '[' || c == '(' || c == '{') ++depth;
      if (c == ']' || c == ')' || c == '}') {
        if (depth == 0) return;
        --depth;
      }
      if (c == ',' && depth == 0) return;
      ++pos_;
    }
    fail("unterminated value");
  }

  std::string_view text_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

[[noreturn]] void unsupported_dtype(const std::string& path, const std::string& descr,
                                    const char* kind) {
  throw_io(path, "unsupported dtype " + excerpt(descr) + " (" + kind +
                     "); emix reads bool, integer, float32 and float64 arrays");
}

void parse_descr(const std::string& path, NpyHeader* header) {
  const std::string& descr = header->descr;
  std::string_view rest = descr;
  char order = '|';
  if (!rest.empty() && (rest[0] == '<' || rest[0] == '>' || rest[0] == '|' || rest[0] == '=')) {
    order = rest[0];
    rest.remove_prefix(1);
  }
  if (rest.empty()) unsupported_dtype(path, descr, "empty type code");
  const char kind = rest[0];
  std::string_view size_text = rest.substr(1);
  int size = 0;
  for (char c : size_text) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || size > 1000) {
      size = -1;
      break;
    }
    size = size * 10 + (c - '0');
  }
  // A number's code is followed by its size in bytes ("<f8"); 'float64' is NumPy's name, not
  // its code, and was called an extended-precision float.
  if (std::string_view("biuf").find(kind) != std::string_view::npos && size <= 0) {
    unsupported_dtype(path, descr, "not a type code and a size in bytes, such as '<f8'");
  }
  switch (kind) {
    case 'b':
      if (size != 1) unsupported_dtype(path, descr, "bool of unusual size");
      header->scalar = Scalar::kBool;
      break;
    case 'i':
    case 'u': {
      const bool is_signed = kind == 'i';
      if (size == 1)
        header->scalar = is_signed ? Scalar::kInt8 : Scalar::kUInt8;
      else if (size == 2)
        header->scalar = is_signed ? Scalar::kInt16 : Scalar::kUInt16;
      else if (size == 4)
        header->scalar = is_signed ? Scalar::kInt32 : Scalar::kUInt32;
      else if (size == 8)
        header->scalar = is_signed ? Scalar::kInt64 : Scalar::kUInt64;
      else
        unsupported_dtype(path, descr, "integer of unusual size");
      break;
    }
    case 'f':
      if (size == 4)
        header->scalar = Scalar::kFloat32;
      else if (size == 8)
        header->scalar = Scalar::kFloat64;
      else if (size == 2)
        unsupported_dtype(path, descr, "float16");
      else
        unsupported_dtype(path, descr, "extended-precision float");
      break;
    case 'c':
      unsupported_dtype(path, descr, "complex");
    case 'O':
      unsupported_dtype(path, descr, "Python objects");
    case 'U':
      unsupported_dtype(path, descr, "unicode strings");
    case 'S':
    case 'a':
      unsupported_dtype(path, descr, "byte strings");
    case 'V':
      unsupported_dtype(path, descr, "raw bytes or records");
    case 'M':
    case 'm':
      unsupported_dtype(path, descr, "dates or times");
    default:
      unsupported_dtype(path, descr, "unknown type code");
  }
  const bool file_little = order == '<' || (order != '>' && kHostLittleEndian);
  header->swap = scalar_size(header->scalar) > 1 && file_little != kHostLittleEndian;
}

NpyHeader read_header(InputFile& file) {
  const std::string& path = file.path();
  // The header's shape is checked against the file's size, which a pipe has none of: its
  // reading ended in "the file has 0 bytes".
  if (!file.regular()) {
    throw_io(path,
             "emix reads a .npy only from a regular file, not from a pipe, a FIFO or a device; "
             "write it to a regular file named *.npy");
  }
  unsigned char prefix[12];
  const std::size_t got = file.read_some(prefix, 10);
  if (got == 0) throw_io(path, "the file is empty (0 bytes), not a .npy file");
  if (got < kMagicSize || std::memcmp(prefix, kMagic, kMagicSize) != 0) {
    throw_io(path, "not a .npy file (bad magic string)");
  }
  if (got < 10) throw_io(path, "truncated: the file ends inside the .npy header");
  const int major = prefix[6];
  const int minor = prefix[7];
  if (major < 1 || major > 3 || minor != 0) {
    throw_io(path, "unsupported .npy format version " + std::to_string(major) + "." +
                       std::to_string(minor) + " (emix reads 1.0, 2.0 and 3.0)");
  }
  std::uint64_t header_size = 0;
  std::uint64_t prefix_size = 10;
  if (major == 1) {
    header_size = prefix[8] | (std::uint64_t{prefix[9]} << 8);
  } else {
    file.read_exact(prefix + 10, 2, "the .npy header");
    prefix_size = 12;
    header_size = prefix[8] | (std::uint64_t{prefix[9]} << 8) | (std::uint64_t{prefix[10]} << 16) |
                  (std::uint64_t{prefix[11]} << 24);
  }
  // NumPy writes headers of a few hundred bytes for the arrays emix reads (and reads at most
  // 10,000 bytes itself unless told otherwise); a larger claim is not read into memory.
  constexpr std::uint64_t kMaxHeaderSize = 1 << 16;
  if (header_size > kMaxHeaderSize) {
    throw_io(path, "the .npy header says it is " + std::to_string(header_size) +
                       " bytes long; emix reads headers of at most " +
                       std::to_string(kMaxHeaderSize) + " bytes");
  }
  if (header_size > file.size() - std::min(file.size(), prefix_size)) {
    throw_io(path, "truncated: the .npy header says it is " + std::to_string(header_size) +
                       " bytes long but the file has " + std::to_string(file.size()) + " bytes");
  }
  std::string text(static_cast<std::size_t>(header_size), '\0');
  file.read_exact(text.data(), text.size(), "the .npy header");

  NpyHeader header;
  header.data_offset = prefix_size + header_size;
  bool has_descr = false, has_order = false, has_shape = false;
  HeaderParser parser(text, path);
  parser.parse_dict([&](const std::string& key, const HeaderParser::Value& value) {
    using Kind = HeaderParser::Value::Kind;
    if (key == "descr") {
      if (value.kind != Kind::kString) {
        throw_io(path,
                 "unsupported dtype (a structured array); emix reads bool, integer, "
                 "float32 and float64 arrays");
      }
      header.descr = value.string;
      has_descr = true;
    } else if (key == "fortran_order") {
      if (value.kind != Kind::kBool) throw_io(path, "malformed .npy header: bad 'fortran_order'");
      header.fortran_order = value.boolean;
      has_order = true;
    } else if (key == "shape") {
      if (value.kind != Kind::kTuple) throw_io(path, "malformed .npy header: bad 'shape'");
      header.shape = value.ints;
      has_shape = true;
    }
  });
  if (!has_descr || !has_order || !has_shape) {
    throw_io(path, std::string("malformed .npy header: no '") +
                       (!has_descr   ? "descr"
                        : !has_order ? "fortran_order"
                                     : "shape") +
                       "' key");
  }
  parse_descr(path, &header);
  return header;
}

}  // namespace

namespace {

// The header's shape and element type, checked: 1-D or 2-D, not too large, and the whole array
// present in the file.
NpyLayout layout_of(InputFile& file) {
  const std::string& path = file.path();
  const NpyHeader header = read_header(file);
  if (header.shape.empty()) {
    throw_io(path, "is a 0-d array (a single value); expected a 1-D or 2-D array");
  }
  if (header.shape.size() > 2) {
    throw_io(path, "is a " + std::to_string(header.shape.size()) + "-D array of shape " +
                       shape_text(header.shape) + "; expected a 1-D or 2-D array");
  }
  NpyLayout layout;
  layout.scalar = header.scalar;
  layout.swap = header.swap;
  layout.rows = header.shape[0];
  layout.cols = header.shape.size() == 2 ? header.shape[1] : 1;
  // A 1-D array, or one column, is the same bytes in either order.
  layout.fortran_order = header.fortran_order && header.shape.size() == 2 && layout.cols != 1;
  layout.data_offset = header.data_offset;
  const std::size_t item = scalar_size(header.scalar);
  const auto max_elements =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / 8;
  if (layout.cols != 0 && static_cast<std::uint64_t>(layout.rows) >
                              max_elements / static_cast<std::uint64_t>(layout.cols)) {
    throw_io(path, "shape " + shape_text(header.shape) + " is too large");
  }
  const std::uint64_t data_bytes =
      static_cast<std::uint64_t>(layout.rows) * static_cast<std::uint64_t>(layout.cols) * item;
  const std::uint64_t available = file.size() - header.data_offset;
  if (available < data_bytes) {
    throw_io(path, "truncated: the header says " + shape_text(header.shape) + " " +
                       scalar_name(header.scalar) + " (" + std::to_string(data_bytes) +
                       " bytes of data) but only " + std::to_string(available) +
                       " bytes follow it");
  }
  if (available > data_bytes) {
    // numpy writes nothing after the data; bytes there mean that the header and the data
    // disagree (rows appended without the header being rewritten, two files joined), and
    // reading the rows the header names would drop the rest without a word.
    throw_io(path, "the header says " + shape_text(header.shape) + " " +
                       scalar_name(header.scalar) + " (" + std::to_string(data_bytes) +
                       " bytes of data) but " + std::to_string(available) +
                       " bytes follow it: the header does not describe the whole file");
  }
  return layout;
}

}  // namespace

NpyLayout npy_layout(const std::string& path) {
  InputFile file(path);
  return layout_of(file);
}

std::int64_t count_npy_rows(const std::string& path) { return npy_layout(path).rows; }

HostMatrix read_npy(const std::string& path, const ReadOptions& options) {
  check_row_options(path, options);
  InputFile file(path);
  const NpyLayout layout = layout_of(file);
  NpyHeader header;
  header.scalar = layout.scalar;
  header.swap = layout.swap;
  header.data_offset = layout.data_offset;
  const std::int64_t rows = layout.rows;
  const std::int64_t cols = layout.cols;
  const std::size_t item = scalar_size(header.scalar);
  const RowRange range = resolve_rows(path, options, rows);
  if (!layout.fortran_order) {
    return read_row_major(file, header.data_offset, header.scalar, header.swap, cols, range,
                          options);
  }

  // Fortran order: column c is contiguous, so read each column's slice of the row range.
  HostMatrix out(options.dtype, range.count, cols);
  if (range.count == 0) return out;
  const std::size_t out_item = dtype_size(options.dtype);
  const std::size_t block = std::max<std::size_t>(1, (std::size_t{4} << 20) / item);
  std::vector<unsigned char> buffer(
      std::min<std::size_t>(block, static_cast<std::size_t>(range.count)) * item);
  std::vector<unsigned char> converted(
      std::min<std::size_t>(block, static_cast<std::size_t>(range.count)) * out_item);
  auto* dst = static_cast<unsigned char*>(out.data());
  // The first non-finite value in row-major order (the order text files are checked in).
  std::int64_t bad_row = -1, bad_col = -1;
  double bad_value = 0;
  for (std::int64_t c = 0; c < cols; ++c) {
    file.seek(header.data_offset +
              (static_cast<std::uint64_t>(c) * static_cast<std::uint64_t>(rows) +
               static_cast<std::uint64_t>(range.first)) *
                  item);
    for (std::int64_t r = 0; r < range.count;) {
      const std::size_t count =
          std::min<std::size_t>(block, static_cast<std::size_t>(range.count - r));
      file.read_exact(buffer.data(), count * item, "the data");
      double bad = 0;
      const std::size_t done =
          convert(buffer.data(), header.scalar, header.swap, count, options.dtype, converted.data(),
                  options.require_finite, &bad);
      for (std::size_t i = 0; i < done; ++i) {
        std::memcpy(dst + ((static_cast<std::size_t>(r) + i) * static_cast<std::size_t>(cols) +
                           static_cast<std::size_t>(c)) *
                              out_item,
                    converted.data() + i * out_item, out_item);
      }
      if (done < count) {
        const std::int64_t row = r + static_cast<std::int64_t>(done);
        if (bad_row < 0 || row < bad_row) {
          bad_row = row;
          bad_col = c;
          bad_value = bad;
        }
        break;
      }
      r += static_cast<std::int64_t>(count);
    }
  }
  if (bad_row >= 0) {
    throw_not_finite(path, range.first + bad_row + 1, bad_col + 1, bad_value, options.dtype);
  }
  return out;
}

namespace {

// The complete .npy preamble (format 1.0): magic, version, header length and the dict, padded
// with spaces and a newline so that the data start at a multiple of 64 bytes, as NumPy does.
std::string npy_preamble(const char* descr, const std::vector<std::int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  const std::size_t unpadded = 10 + dict.size() + 1;  // + the final newline
  const std::size_t total = (unpadded + 63) / 64 * 64;
  dict.append(total - unpadded, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw InvalidArgument("write_npy: shape too large for a .npy header");
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  return out + dict;
}

void check_shape(const std::string& path, const void* data, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 0) {
    throw InvalidArgument("write_npy(" + quote_path(path) + "): negative shape " +
                          std::to_string(rows) + " x " + std::to_string(cols));
  }
  if (data == nullptr && rows != 0 && cols != 0) {
    throw InvalidArgument("write_npy(" + quote_path(path) + "): null data for a " +
                          std::to_string(rows) + " x " + std::to_string(cols) + " array");
  }
}

void write_array(OutputFile& out, const char* descr, const std::vector<std::int64_t>& shape,
                 const void* data, std::size_t bytes) {
  static_assert(kHostLittleEndian, "the .npy writer writes the host's bytes as little-endian");
  out.write(npy_preamble(descr, shape));
  out.write(data, bytes);
}

void write_array(const std::string& path, const char* descr, const std::vector<std::int64_t>& shape,
                 const void* data, std::size_t bytes) {
  OutputFile out(path);
  write_array(out, descr, shape, data, bytes);
  out.commit();
}

const char* descr_of(DType dtype) { return dtype == DType::kFloat32 ? "<f4" : "<f8"; }

std::size_t byte_count(std::int64_t rows, std::int64_t cols, std::size_t item) {
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * item;
}

}  // namespace
}  // namespace detail

void write_npy(const std::string& path, const HostMatrix& matrix) {
  detail::write_array(path, detail::descr_of(matrix.dtype()), {matrix.rows(), matrix.cols()},
                      matrix.data(),
                      detail::byte_count(matrix.rows(), matrix.cols(), dtype_size(matrix.dtype())));
}

void write_npy(const std::string& path, const double* data, std::int64_t rows, std::int64_t cols) {
  detail::check_shape(path, data, rows, cols);
  detail::write_array(path, "<f8", {rows, cols}, data, detail::byte_count(rows, cols, 8));
}

void write_npy(const std::string& path, const float* data, std::int64_t rows, std::int64_t cols) {
  detail::check_shape(path, data, rows, cols);
  detail::write_array(path, "<f4", {rows, cols}, data, detail::byte_count(rows, cols, 4));
}

void write_npy(const std::string& path, const std::vector<std::int32_t>& values) {
  detail::write_array(path, "<i4", {static_cast<std::int64_t>(values.size())}, values.data(),
                      values.size() * sizeof(std::int32_t));
}

void write_npy(OutputFile& out, const double* data, std::int64_t rows, std::int64_t cols) {
  detail::check_shape(out.path(), data, rows, cols);
  detail::write_array(out, "<f8", {rows, cols}, data, detail::byte_count(rows, cols, 8));
}

void write_npy(OutputFile& out, const std::vector<std::int32_t>& values) {
  detail::write_array(out, "<i4", {static_cast<std::int64_t>(values.size())}, values.data(),
                      values.size() * sizeof(std::int32_t));
}

struct NpyWriter::State {
  std::unique_ptr<OutputFile> owned;  // null when writing into a caller's output
  OutputFile* file = nullptr;
  std::size_t item_bytes = 8;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t written = 0;
};

namespace {

void check_writer_shape(const std::string& path, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 0) {
    throw InvalidArgument("NpyWriter(" + detail::quote_path(path) + "): negative shape " +
                          std::to_string(rows) + " x " + std::to_string(cols));
  }
}

}  // namespace

NpyWriter::NpyWriter(const std::string& path, DType dtype, std::int64_t rows, std::int64_t cols)
    : state_(std::make_unique<State>()) {
  check_writer_shape(path, rows, cols);
  state_->owned = std::make_unique<OutputFile>(path);
  state_->file = state_->owned.get();
  state_->item_bytes = dtype_size(dtype);
  state_->rows = rows;
  state_->cols = cols;
  state_->file->write(detail::npy_preamble(detail::descr_of(dtype), {rows, cols}));
}

NpyWriter::NpyWriter(OutputFile& out, DType dtype, std::int64_t rows, std::int64_t cols)
    : state_(std::make_unique<State>()) {
  check_writer_shape(out.path(), rows, cols);
  state_->file = &out;
  state_->item_bytes = dtype_size(dtype);
  state_->rows = rows;
  state_->cols = cols;
  out.write(detail::npy_preamble(detail::descr_of(dtype), {rows, cols}));
}

NpyWriter::NpyWriter(OutputFile& out, Int32Vector shape) : state_(std::make_unique<State>()) {
  check_writer_shape(out.path(), shape.rows, 1);
  state_->file = &out;
  state_->item_bytes = sizeof(std::int32_t);
  state_->rows = shape.rows;
  state_->cols = 1;
  out.write(detail::npy_preamble("<i4", {shape.rows}));
}

NpyWriter::~NpyWriter() = default;

void NpyWriter::append(const void* data, std::int64_t rows) {
  const std::string path = detail::quote_path(state_->file->path());
  if (rows < 0 || rows > state_->rows - state_->written) {
    throw InvalidArgument("NpyWriter(" + path + "): appending " + std::to_string(rows) +
                          " rows to the " + std::to_string(state_->written) +
                          " written exceeds the declared " + std::to_string(state_->rows));
  }
  if (data == nullptr && rows != 0 && state_->cols != 0) {
    throw InvalidArgument("NpyWriter(" + path + "): null data");
  }
  state_->file->write(data, detail::byte_count(rows, state_->cols, state_->item_bytes));
  state_->written += rows;
}

void NpyWriter::commit() {
  if (state_->written != state_->rows) {
    throw IoError(detail::quote_path(state_->file->path()) +
                  ": cannot write: " + std::to_string(state_->written) + " of the declared " +
                  std::to_string(state_->rows) + " rows were written");
  }
  if (state_->owned) state_->file->commit();
}

}  // namespace emix::io
