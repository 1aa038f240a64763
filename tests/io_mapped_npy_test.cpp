// io::MappedNpy: every chunking of every kind of .npy file gives, chunk after chunk, bitwise the
// rows read_matrix reads, with read-ahead by MADV_WILLNEED or by its thread, on every pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"
#include "io_test_util.hpp"

namespace {

using emix::DType;
using emix::io::MappedNpy;

// A .npy file (format 1.0) of raw little-endian `data`.
void write_raw_npy(const std::string& path, const std::string& descr, bool fortran,
                   std::int64_t rows, std::int64_t cols, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << emix::testing::npy(
      emix::testing::dict(descr, "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")",
                          fortran),
      data);
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

class MappedNpyTest : public emix::testing::TempDirTest {
 protected:
  static constexpr std::int64_t kRows = 1003;  // prime: every chunking leaves a short last chunk
  static constexpr std::int64_t kCols = 5;

  // values[r * kCols + c], distinct, some negative, exactly representable in float32 and int16.
  static std::vector<double> values() {
    std::vector<double> v(static_cast<std::size_t>(kRows * kCols));
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] = static_cast<double>(static_cast<std::int64_t>(i * 7919 % 20011) - 10000);
    }
    return v;
  }

  // Every chunk of `source`, concatenated, compared bitwise with read_matrix of the file.
  static void expect_chunks_equal_file(MappedNpy& source, const std::string& path, DType dtype) {
    emix::io::ReadOptions options;
    options.dtype = dtype;
    const emix::HostMatrix whole = emix::io::read_matrix(path, options);
    ASSERT_EQ(source.rows(), whole.rows());
    ASSERT_EQ(source.cols(), whole.cols());
    const std::size_t row_bytes = static_cast<std::size_t>(whole.cols()) * emix::dtype_size(dtype);
    for (int pass = 0; pass < 2; ++pass) {
      std::int64_t row = 0;
      for (std::int64_t i = 0; i < source.n_chunks(); ++i) {
        const emix::DataView view = source.chunk(i);
        ASSERT_EQ(view.dtype, dtype);
        ASSERT_EQ(view.cols, whole.cols());
        ASSERT_EQ(view.rows, std::min(source.chunk_rows(), whole.rows() - row)) << "chunk " << i;
        ASSERT_EQ(std::memcmp(view.data,
                              static_cast<const unsigned char*>(whole.data()) +
                                  static_cast<std::size_t>(row) * row_bytes,
                              static_cast<std::size_t>(view.rows) * row_bytes),
                  0)
            << "pass " << pass << ", chunk " << i << " (rows from " << row << ")";
        row += view.rows;
      }
      ASSERT_EQ(row, whole.rows());
    }
    // Out of order, as an initialisation's gather reads them.
    if (source.n_chunks() > 3) {
      const emix::DataView late = source.chunk(source.n_chunks() - 1);
      const emix::DataView early = source.chunk(1);
      EXPECT_EQ(std::memcmp(early.data,
                            static_cast<const unsigned char*>(whole.data()) +
                                static_cast<std::size_t>(source.chunk_rows()) * row_bytes,
                            static_cast<std::size_t>(early.rows) * row_bytes),
                0);
      (void)late;
    }
  }
};

TEST_F(MappedNpyTest, EveryKindOfFileAndChunkingGivesTheFilesRows) {
  const std::vector<double> v = values();
  const std::vector<float> f(v.begin(), v.end());
  std::vector<std::int16_t> i16(v.begin(), v.end());
  std::vector<double> fortran(v.size());
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kCols; ++c) {
      fortran[static_cast<std::size_t>(c * kRows + r)] = v[static_cast<std::size_t>(r * kCols + c)];
    }
  }
  write_raw_npy(path("f8.npy"), "<f8", false, kRows, kCols, bytes_of(v));
  write_raw_npy(path("f4.npy"), "<f4", false, kRows, kCols, bytes_of(f));
  write_raw_npy(path("i2.npy"), "<i2", false, kRows, kCols, bytes_of(i16));
  write_raw_npy(path("fortran.npy"), "<f8", true, kRows, kCols, bytes_of(fortran));
  std::string swapped = bytes_of(v);
  for (std::size_t i = 0; i < swapped.size(); i += 8) {
    std::reverse(swapped.begin() + static_cast<std::ptrdiff_t>(i),
                 swapped.begin() + static_cast<std::ptrdiff_t>(i + 8));
  }
  write_raw_npy(path("big.npy"), ">f8", false, kRows, kCols, swapped);

  struct Case {
    const char* file;
    DType dtype;
    bool direct;
  };
  const Case cases[] = {
      {"f8.npy", DType::kFloat64, true},       {"f8.npy", DType::kFloat32, false},
      {"f4.npy", DType::kFloat32, true},       {"f4.npy", DType::kFloat64, false},
      {"i2.npy", DType::kFloat64, false},      {"fortran.npy", DType::kFloat64, false},
      {"fortran.npy", DType::kFloat32, false}, {"big.npy", DType::kFloat64, false}};
  for (const Case& c : cases) {
    for (const std::int64_t chunk_rows : {std::int64_t{1}, std::int64_t{7}, std::int64_t{1000},
                                          std::int64_t{5000}, std::int64_t{0}}) {
      for (const auto read_ahead : {MappedNpy::ReadAhead::kAdvise, MappedNpy::ReadAhead::kThread}) {
        SCOPED_TRACE(std::string(c.file) + " as " + emix::to_string(c.dtype) + ", chunk_rows " +
                     std::to_string(chunk_rows) +
                     (read_ahead == MappedNpy::ReadAhead::kThread ? ", thread" : ", advise"));
        MappedNpy source(path(c.file), c.dtype, chunk_rows, read_ahead);
        EXPECT_EQ(source.direct(), c.direct);
        const std::int64_t expected_chunk =
            chunk_rows == 0 ? kRows : std::min<std::int64_t>(chunk_rows, kRows);
        EXPECT_EQ(source.chunk_rows(), expected_chunk);
        EXPECT_EQ(source.n_chunks(), (kRows + expected_chunk - 1) / expected_chunk);
        expect_chunks_equal_file(source, path(c.file), c.dtype);
        if (c.direct) {
          EXPECT_EQ(source.view().rows, kRows);
        } else {
          EXPECT_THROW(source.view(), emix::InvalidArgument);
        }
      }
    }
  }
}

TEST_F(MappedNpyTest, BadValuesAreNamedByTheFilesRowOnTheFirstPass) {
  std::vector<double> v = values();
  v[static_cast<std::size_t>(600 * kCols + 3)] = -std::numeric_limits<double>::infinity();
  write_raw_npy(path("bad.npy"), "<f8", false, kRows, kCols, bytes_of(v));
  for (const DType dtype : {DType::kFloat64, DType::kFloat32}) {
    MappedNpy source(path("bad.npy"), dtype, 100, MappedNpy::ReadAhead::kThread);
    for (std::int64_t i = 0; i < 6; ++i) EXPECT_NO_THROW(source.chunk(i));
    try {
      source.chunk(6);
      ADD_FAILURE() << "chunk 6 holds row 601's -inf";
    } catch (const emix::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("bad.npy: row 601, column 4 is -inf"), std::string::npos)
          << e.what();
    }
  }
  // A file cut short is refused before anything is mapped.
  const std::string whole = bytes_of(values());
  write_raw_npy(path("short.npy"), "<f8", false, kRows, kCols, whole.substr(0, whole.size() - 8));
  try {
    MappedNpy source(path("short.npy"), DType::kFloat64);
    ADD_FAILURE() << "a truncated file was mapped";
  } catch (const emix::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MappedNpy(path("short.npy"), DType::kFloat64, -1), emix::Error);
}

}  // namespace
