// Raw binary: rows of raw_cols elements of raw_dtype, in the host's byte order, no header.
// A regular file's rows are counted from its size; a pipe, a FIFO or standard input has no
// size, so its bytes are read to the end first.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "emix/errors.hpp"
#include "io/common.hpp"

namespace emix::io::detail {

namespace {

// What the options say a row is.
struct RawLayout {
  Scalar scalar = Scalar::kFloat64;
  std::uint64_t row_bytes = 0;
};

// The layout the options describe; throws naming what is wrong.
RawLayout raw_layout(const std::string& path, const ReadOptions& options) {
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
  // Read as raw binary, a CSV's characters became numbers (uint8 gave means of 52 and 44, the
  // codes of '4' and ','), and a model came out without a word. Its name says it is text.
  const std::string extension = lower_extension(path);
  if (extension == ".csv" || extension == ".tsv" || extension == ".tab" || extension == ".txt") {
    throw InvalidArgument(name + ": named as text (" + extension +
                          "), but --dtype and --dims read raw binary; leave them out to read "
                          "it as text, or name a raw file *.bin");
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
  return {scalar, static_cast<std::uint64_t>(options.raw_cols) * item};
}

// A .npy read as raw binary would yield its header as data, and a model fitted to it, without
// a word: NumPy's magic string and a format version it has written (1.0, 2.0 or 3.0) is what
// starts every .npy file, and is most unlikely to start raw numbers.
constexpr std::size_t kNpyPrefixBytes = 8;
bool starts_as_npy(const unsigned char* bytes, std::size_t size) {
  static constexpr unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  return size >= kNpyPrefixBytes && std::memcmp(bytes, kMagic, sizeof kMagic) == 0 &&
         bytes[6] >= 1 && bytes[6] <= 3 && bytes[7] == 0;
}

void refuse_npy(const InputFile& file, const unsigned char* bytes, std::size_t size) {
  if (!starts_as_npy(bytes, size)) return;
  throw_io(file.path(),
           std::string("a .npy file (it starts with NumPy's magic bytes), not raw binary: --dtype "
                       "and --dims are for raw binary files without a header; leave them out ") +
               (file.regular() ? "and its header gives the shape and element type"
                               : "and write it to a regular file named *.npy (a pipe is read as "
                                 "text)"));
}

void check_whole_rows(const std::string& path, std::uint64_t bytes, const RawLayout& layout,
                      const ReadOptions& options) {
  if (bytes % layout.row_bytes == 0) return;
  throw_io(path, "size " + std::to_string(bytes) + " bytes is not a multiple of the row size " +
                     std::to_string(layout.row_bytes) + " bytes (" +
                     std::to_string(options.raw_cols) + " columns of " +
                     scalar_name(layout.scalar) + "): it ends inside row " +
                     std::to_string(bytes / layout.row_bytes + 1));
}

// The rows of a regular file, from its size.
std::int64_t regular_file_rows(InputFile& file, const RawLayout& layout,
                               const ReadOptions& options) {
  if (file.size() >= kNpyPrefixBytes) {
    unsigned char prefix[kNpyPrefixBytes];
    file.read_exact(prefix, sizeof prefix, "the first bytes");
    refuse_npy(file, prefix, sizeof prefix);
    file.seek(0);
  }
  check_whole_rows(file.path(), file.size(), layout, options);
  return static_cast<std::int64_t>(file.size() / layout.row_bytes);
}

// Every byte of a stream (a pipe, a FIFO, standard input), in blocks of whole elements: the
// bytes are held once, with no reallocation that would briefly hold them twice.
struct StreamBytes {
  static constexpr std::size_t kBlockBytes = std::size_t{4} << 20;  // a multiple of every item
  std::vector<std::unique_ptr<unsigned char[]>> blocks;
  std::uint64_t size = 0;
};

StreamBytes read_stream(InputFile& file, const RawLayout& layout, const ReadOptions& options) {
  StreamBytes stream;
  for (;;) {
    auto block = std::make_unique<unsigned char[]>(StreamBytes::kBlockBytes);
    const std::size_t got = file.read_some(block.get(), StreamBytes::kBlockBytes);
    if (stream.blocks.empty()) refuse_npy(file, block.get(), got);
    stream.size += got;
    if (got > 0) stream.blocks.push_back(std::move(block));
    if (got < StreamBytes::kBlockBytes) break;
  }
  check_whole_rows(file.path(), stream.size, layout, options);
  return stream;
}

// Rows `range` of the stream's bytes, converted to options.dtype.
HostMatrix convert_stream(const std::string& path, const StreamBytes& stream,
                          const RawLayout& layout, RowRange range, const ReadOptions& options) {
  const std::int64_t cols = options.raw_cols;
  HostMatrix out(options.dtype, range.count, cols);
  const std::uint64_t item = scalar_size(layout.scalar);
  const std::uint64_t block_items = StreamBytes::kBlockBytes / item;
  const std::uint64_t first =
      static_cast<std::uint64_t>(range.first) * static_cast<std::uint64_t>(cols);
  const std::uint64_t end =
      first + static_cast<std::uint64_t>(range.count) * static_cast<std::uint64_t>(cols);
  const std::size_t out_item = dtype_size(options.dtype);
  auto* dst = static_cast<unsigned char*>(out.data());
  for (std::uint64_t at = first; at < end;) {
    const std::uint64_t block = at / block_items;
    const std::uint64_t offset = at % block_items;
    const std::uint64_t count = std::min(block_items - offset, end - at);
    double bad = 0;
    const std::size_t done = convert(stream.blocks[block].get() + offset * item, layout.scalar,
                                     false, static_cast<std::size_t>(count), options.dtype,
                                     dst + (at - first) * out_item, options.require_finite, &bad);
    if (done < count) {
      const std::uint64_t element = at + done;
      throw_not_finite(path, static_cast<std::int64_t>(element / cols) + 1,
                       static_cast<std::int64_t>(element % cols) + 1, bad, options.dtype);
    }
    at += count;
  }
  return out;
}

}  // namespace

std::int64_t count_raw_rows(const std::string& path, const ReadOptions& options) {
  const RawLayout layout = raw_layout(path, options);
  InputFile file(path);
  if (file.regular()) return regular_file_rows(file, layout, options);
  return static_cast<std::int64_t>(read_stream(file, layout, options).size / layout.row_bytes);
}

HostMatrix read_raw(const std::string& path, const ReadOptions& options) {
  check_row_options(path, options);
  const RawLayout layout = raw_layout(path, options);
  InputFile file(path);
  if (file.regular()) {
    const std::int64_t rows = regular_file_rows(file, layout, options);
    const RowRange range = resolve_rows(path, options, rows);
    return read_row_major(file, 0, layout.scalar, false, options.raw_cols, range, options);
  }
  const StreamBytes stream = read_stream(file, layout, options);
  const auto rows = static_cast<std::int64_t>(stream.size / layout.row_bytes);
  return convert_stream(path, stream, layout, resolve_rows(path, options, rows), options);
}

}  // namespace emix::io::detail
