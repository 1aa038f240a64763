// Reading and writing data matrices (.npy, CSV / whitespace text, raw binary) and model files
// (JSON). Every writer writes to a temporary name beside the target and renames it into place,
// so a failed write never leaves a partial file. Errors throw IoError (unreadable or malformed
// file) or InvalidArgument (bad values), naming the file and, where it applies, row and column
// (1-based, as a person counts them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "emix/data.hpp"
#include "emix/fit.hpp"
#include "emix/model.hpp"

namespace emix::io {

enum class FileFormat { kAuto, kNpy, kText, kRaw };  // kAuto: by extension (.npy, else text)

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
  bool require_finite = true;  // NaN / Inf is an error naming file, row and column
};

// An N x D matrix. A 1-D .npy array of length N is read as N x 1.
HostMatrix read_matrix(const std::string& path, const ReadOptions& options = {});
// The number of rows read_matrix would return for row_count -1 and first_row 0: from the header
// (.npy) or the size (raw binary) without reading data; a text file is read through.
std::int64_t count_rows(const std::string& path, const ReadOptions& options = {});
// A vector of N values (.npy 1-D or N x 1, or one value per text line).
std::vector<double> read_vector(const std::string& path);

// Writes a 2-D .npy file (format 1.0, little-endian, C order).
void write_npy(const std::string& path, const HostMatrix& matrix);
void write_npy(const std::string& path, const double* data, std::int64_t rows, std::int64_t cols);
void write_npy(const std::string& path, const float* data, std::int64_t rows, std::int64_t cols);
// 1-D int32 array (labels).
void write_npy(const std::string& path, const std::vector<std::int32_t>& values);

// Writes a .npy file of known shape block by block, for data larger than memory. The file
// appears at `path` only when commit() succeeds; destroyed uncommitted, it leaves nothing.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, DType dtype, std::int64_t rows, std::int64_t cols);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;
  // Appends `rows` rows (row-major, of the writer's dtype).
  void append(const void* data, std::int64_t rows);
  void commit();  // throws IoError unless exactly the declared number of rows was appended

 private:
  struct State;
  State* state_;
};

// The model file format (see README): {"format": "emix-model", "version": 1, ...}.
// read_model needs only the parameters; it validates them (Model::validate).
Model read_model(const std::string& path);
// Writes the model and, when `report` is given, its "fit" section.
void write_model(const std::string& path, const Model& model, const FitReport* report = nullptr);

}  // namespace emix::io
