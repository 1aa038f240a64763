// Reading and writing data matrices (.npy, CSV / whitespace text, raw binary) and model files
// (JSON). Every writer goes through an OutputFile, so a failed write never leaves a partial file
// and never replaces anything but a regular file. Errors throw IoError (unreadable or malformed
// file) or InvalidArgument (bad values), naming the file and, where it applies, row and column
// (1-based, as a person counts them); text from a file is quoted as a short printable excerpt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "emix/chunks.hpp"
#include "emix/data.hpp"
#include "emix/fit.hpp"
#include "emix/model.hpp"

namespace emix::io {

// kAuto: a .npy is NumPy; a .bin or .raw, or any file when raw_dtype is given, raw binary;
// anything else text, unless its first bytes show NumPy, zip, gzip or other binary data (a .npy
// under another name is read as one; the others are refused with what they are).
enum class FileFormat { kAuto, kNpy, kText, kRaw };

struct ReadOptions {
  FileFormat format = FileFormat::kAuto;
  DType dtype = DType::kFloat64;  // element type of the returned matrix
  // Raw binary only: element type on disk ("float32", "float64", "int8", "uint8", "int16",
  // "uint16", "int32", "uint32", "int64", "uint64") and the number of columns.
  std::string raw_dtype;
  std::int64_t raw_cols = 0;
  // Rows [first_row, first_row + row_count) only (row_count -1: to the end); for sharded reads.
  std::int64_t first_row = 0;
  std::int64_t row_count = -1;
  // NaN / Inf in the file is an error naming file, row and column. Without it they pass through
  // (fit and the evaluation functions then reject them, naming row and column). A finite value
  // that does not fit the element type (1e300 as float32, 1e400 in text) is an error either way:
  // it would silently become inf.
  bool require_finite = true;
};

// An N x D matrix. A 1-D .npy array of length N is read as N x 1.
HostMatrix read_matrix(const std::string& path, const ReadOptions& options = {});
// The number of rows read_matrix would return for row_count -1 and first_row 0: from the header
// (.npy) or the size (raw binary) without reading data; a text file is read through.
std::int64_t count_rows(const std::string& path, const ReadOptions& options = {});
// A vector of N values (.npy 1-D or N x 1, or one value per text line).
std::vector<double> read_vector(const std::string& path);
// The 1-based line of a text file on which its data row `row` (1-based, header, comments and
// blank lines not counted) stands, for messages about a value read from it; 0 when the file is
// not text (by its name and first bytes; raw binary read with ReadOptions::raw_dtype has no
// lines either, which only the caller knows), is not a regular file (a pipe or a FIFO, which
// cannot be read again), or has fewer rows.
std::int64_t text_line_of_row(const std::string& path, std::int64_t row);
// A guess about a text file's first line that a user may have meant otherwise: the 1-based line
// the reader takes for column names (a header) although its cells are numbers (in quotes,
// "1","2"; years, 2019,2020,2021; pandas' numbered names 0, 1, ... over rows written as reals);
// or the line of such numbered names that it takes for a row, since the rows under it are whole
// numbers (counts, or pandas' header of them) or none follow (only_line), or of quoted numbers
// over lines that quote every cell (every_line_quoted). line 0: no guess (not text, a plain row,
// or a header of names).
struct FirstLineGuess {
  std::int64_t line = 0;
  bool read_as_header = false;
  bool only_line = false;
  // Read as a row: numbers in quotes over lines that quote every cell (Python's csv.QUOTE_ALL),
  // rather than pandas' numbered names.
  bool every_line_quoted = false;
};
FirstLineGuess text_first_line_guess(const std::string& path);
// A text file's first line as read_matrix takes it: its 1-based line, its cells without their
// quotes, and whether it is a header (names, or numbers that the rows under them make one) or a
// row. Line 0 and no cells where the file is not text or not a regular file (a pipe, read once
// already) or has no line of data.
struct TextFirstLine {
  std::int64_t line = 0;
  std::vector<std::string> cells;
  bool header = false;
};
TextFirstLine text_first_line(const std::string& path);

// A .npy file memory-mapped read-only (and advised for sequential reading), given as chunks of
// rows in `dtype`: for fitting data larger than memory (emix::fit(ChunkSource&, ...)). When the
// file already holds `dtype` in C order and the host's byte order, a chunk is a view of the
// mapped pages and nothing is copied (direct()); otherwise each chunk is converted into a buffer
// of chunk_rows rows (any dtype read_matrix reads, Fortran order too). While one chunk is used
// the next two are requested from the disk (MADV_WILLNEED), so reading overlaps the E-step, and
// the one before leaves the process's page tables (MADV_DONTNEED) and, for a file larger than
// half the physical memory, the page cache (POSIX_FADV_DONTNEED), which a pass over such a file
// could not reuse anyway.
// The first time a chunk is given its values are checked: NaN / Inf, or a value too large for
// float32, throws InvalidArgument "PATH: row R, column C is nan" (rows of the whole file,
// 1-based), as read_matrix does. A truncated or malformed file throws IoError at construction.
class MappedNpy final : public ChunkSource {
 public:
  // How the next chunks are read ahead. kAuto: by a thread of its own for a file larger than
  // half the physical memory (MADV_WILLNEED alone is carried out by the thread that asks, so
  // reading and computing would take turns), by MADV_WILLNEED otherwise.
  enum class ReadAhead { kAuto, kThread, kAdvise };
  // chunk_rows 0: about 64 MiB of `dtype` per chunk.
  MappedNpy(const std::string& path, DType dtype, std::int64_t chunk_rows = 0,
            ReadAhead read_ahead = ReadAhead::kAuto);
  ~MappedNpy() override;
  MappedNpy(const MappedNpy&) = delete;
  MappedNpy& operator=(const MappedNpy&) = delete;

  std::int64_t rows() const;
  std::int64_t cols() const;
  std::int64_t chunk_rows() const;
  DType dtype() const;
  // True when chunks are views of the mapping itself (no conversion, no copy).
  bool direct() const;
  // What a mapping of this file in `dtype` would be, from its header alone (IoError as the
  // constructor's for a truncated or malformed file): direct(), and the bytes its rows take in
  // `dtype`.
  struct Layout {
    bool direct = false;
    std::uint64_t bytes = 0;
  };
  static Layout describe(const std::string& path, DType dtype);
  // direct() only: the whole file as one view of the mapping, unchecked (the fit validates it).
  DataView view() const;
  // view() will be read again and again (a fit in memory): the pages are advised as any others
  // (MADV_NORMAL), no longer for one sequential pass, so that they age as other pages do.
  void advise_reuse();
  // Optional sample weights: host, rows() values, outliving the source.
  void set_sample_weight(const double* weights);

  std::int64_t n_chunks() override;
  DataView chunk(std::int64_t i) override;
  const double* chunk_weights(std::int64_t i) override;
  std::int64_t known_rows(std::int64_t i) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One output file, written completely or not at all. What the path names decides how:
//   - nothing yet, or a regular file: the bytes go to a temporary file in the same folder
//     (".NAME.emix-tmp.PID.N"), which commit() renames over the target, so readers see the old
//     file or the new one, never a part of one, and an abandoned write leaves the old file;
//   - a symbolic link: the same, beside the file the link leads to; the link stays a link;
//   - a FIFO or a character device (/dev/null, a terminal): written in place, since there is
//     nothing to replace (a FIFO is opened at the first write, which waits for a reader);
//   - a name of one of this process's descriptors (/dev/stdin, /dev/stdout, /dev/stderr,
//     /dev/fd/N, /proc/self/fd/N), or a symbolic link through one: written in place through a
//     copy of the descriptor, whatever it leads to (a file the shell opened with >> is appended
//     to, and what else goes there is kept);
//   - anything else (a folder, a socket, a block device): refused.
// The constructor makes every check and creates the temporary, so an output that cannot be
// written fails before any slow work. Errors throw IoError naming the path as given.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();  // uncommitted: removes the temporary
  OutputFile(OutputFile&&) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& path() const;
  // False for a FIFO or a device, where a failure part way cannot be undone.
  bool replaced_by_rename() const;
  // Said before the path in the messages of later failures (a program's "-o"), as the program
  // names its outputs; the constructor's messages are the caller's to prefix.
  void set_label(const std::string& label);
  // Writes all `size` bytes or throws IoError (and discards the file).
  void write(const void* data, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Writes the file out to the disk (fsync) and closes it; IoError (and the file discarded) on
  // failure. Later writes throw. commit() calls it where the caller has not: a command with
  // several outputs finishes them all, the slow part, before it renames any.
  void finish();
  // Closes the file and renames it into place; IoError (and the file discarded) on failure.
  void commit();
  // Removes the temporary; later writes and commit() throw.
  void discard() noexcept;

 private:
  [[noreturn]] void fail(const std::string& why, int error);
  struct State;
  std::unique_ptr<State> state_;
};

// Removes the temporary files of every OutputFile not yet committed or discarded, at once.
// Async-signal-safe: for a SIGINT or SIGTERM handler that then ends the process (the
// destructors, which would remove them, do not run then).
void remove_temporary_files() noexcept;
// Whether any OutputFile written in place (standard output, a FIFO, a device: nothing to
// discard) has received bytes. Async-signal-safe: a command that ends early says what is left.
bool in_place_output_begun() noexcept;

// Writes a 2-D .npy file (format 1.0, little-endian, C order).
void write_npy(const std::string& path, const HostMatrix& matrix);
void write_npy(const std::string& path, const double* data, std::int64_t rows, std::int64_t cols);
void write_npy(const std::string& path, const float* data, std::int64_t rows, std::int64_t cols);
// 1-D int32 array (labels).
void write_npy(const std::string& path, const std::vector<std::int32_t>& values);
// The same into an open output, without committing it (the caller commits, for example after
// every output of a command has been written).
void write_npy(OutputFile& out, const double* data, std::int64_t rows, std::int64_t cols);
void write_npy(OutputFile& out, const std::vector<std::int32_t>& values);

// Writes a .npy file of known shape block by block, for data larger than memory. The file
// appears at `path` only when commit() succeeds; destroyed uncommitted, it leaves nothing.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, DType dtype, std::int64_t rows, std::int64_t cols);
  // Into an open output (which must outlive the writer); commit() then only checks the row
  // count, and the caller commits `out`.
  NpyWriter(OutputFile& out, DType dtype, std::int64_t rows, std::int64_t cols);
  // A 1-D int32 array of `rows` values (labels), into an open output as above.
  struct Int32Vector {
    std::int64_t rows = 0;
  };
  NpyWriter(OutputFile& out, Int32Vector shape);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;
  // Appends `rows` rows (row-major, of the writer's element type).
  void append(const void* data, std::int64_t rows);
  void commit();  // throws IoError unless exactly the declared number of rows was appended

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The model file format (see README): {"format": "emix-model", "version": 1, ...}.
// read_model needs only the parameters; it validates them (Model::validate).
Model read_model(const std::string& path);
// The same, from one read of the file, with its "fit" section as JSON text in `fit_section`
// ("" when the file has none): for readers of the record the fit left (the Python package).
// `estimator_section`, where given, likewise receives the "estimator" section.
Model read_model(const std::string& path, std::string* fit_section,
                 std::string* estimator_section = nullptr);
// A "fit" section's text (as read_model gives it) read back into `report`, whose model is left
// alone: what a model read and written again keeps (the C API's handles). A field the section
// lacks or holds as another type (or a count outside 0..INT_MAX) keeps its default, a null
// number (a non-finite value when written) reads as NaN; nothing throws, as the section is a
// record that read_model ignores.
// False when the text is empty or not a JSON object.
bool read_fit_report(const std::string& fit_section, FitReport* report);
// The feature names an "estimator" section (read_model's) records: the Python package's
// feature_names_in_ of a model fitted on named columns. Empty when it records none, or is no
// JSON object (the section is a record read_model ignores: nothing throws).
std::vector<std::string> estimator_feature_names(const std::string& estimator_section);
// Writes the model and, when `report` is given, its "fit" section; a non-empty
// `estimator_section` (JSON text: from the Python package, an object of the estimator's class,
// parameters and feature names; from read_model, whatever the file held) becomes the
// "estimator" section, which other readers ignore.
// Without a report, a non-empty `fit_section` (a file's, as read_model gives it) is written back
// as it was read.
void write_model(const std::string& path, const Model& model, const FitReport* report = nullptr,
                 const std::string& estimator_section = {}, const std::string& fit_section = {});
// The same into an open output, without committing it.
void write_model(OutputFile& out, const Model& model, const FitReport* report = nullptr,
                 const std::string& estimator_section = {}, const std::string& fit_section = {});

}  // namespace emix::io
