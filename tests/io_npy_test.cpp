// .npy reading and writing, the atomic writer and HostMatrix. The .npy inputs are built byte by
// byte here (no Python at test time), so each case states exactly what NumPy would have written.
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "io_test_util.hpp"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "emix/errors.hpp"
#include "emix/io.hpp"

namespace {

using emix::testing::dict;
using emix::testing::expect_error;
using emix::testing::npy;
using emix::testing::values_of;

namespace fs = std::filesystem;
using emix::DType;
using emix::HostMatrix;
using emix::InvalidArgument;
using emix::IoError;
namespace io = emix::io;

// A fresh directory per test, removed afterwards.
class NpyTest : public emix::testing::TempDirTest {};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <typename T>
std::string bytes_of(const std::vector<T>& values, bool big_endian = false) {
  std::string out;
  for (const T& v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    if (big_endian) std::reverse(b, b + sizeof(T));
    out.append(b, sizeof(T));
  }
  return out;
}

TEST_F(NpyTest, WriteReadRoundTripIsBitwiseInBothPrecisions) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.0, 1e3);
  std::vector<double> d(7 * 3);
  for (double& v : d) v = normal(rng);
  d[0] = std::numeric_limits<double>::denorm_min();
  d[1] = -0.0;
  std::vector<float> f(d.begin(), d.end());

  io::write_npy(path("d.npy"), d.data(), 7, 3);
  io::write_npy(path("f.npy"), f.data(), 7, 3);
  io::ReadOptions as_double;
  const HostMatrix md = io::read_matrix(path("d.npy"), as_double);
  ASSERT_EQ(md.rows(), 7);
  ASSERT_EQ(md.cols(), 3);
  ASSERT_EQ(md.dtype(), DType::kFloat64);
  EXPECT_EQ(std::memcmp(md.data(), d.data(), d.size() * sizeof(double)), 0);

  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  const HostMatrix mf = io::read_matrix(path("f.npy"), as_float);
  ASSERT_EQ(mf.dtype(), DType::kFloat32);
  EXPECT_EQ(std::memcmp(mf.data(), f.data(), f.size() * sizeof(float)), 0);
  // float32 on disk read as float64: exact widening.
  const HostMatrix mfd = io::read_matrix(path("f.npy"), as_double);
  for (std::size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(mfd.as<double>()[i], static_cast<double>(f[i]));
  }

  // HostMatrix overload.
  io::write_npy(path("m.npy"), mf);
  EXPECT_EQ(read_bytes(path("m.npy")), read_bytes(path("f.npy")));
  EXPECT_EQ(entries(), (std::vector<std::string>{"d.npy", "f.npy", "m.npy"}));
}

TEST_F(NpyTest, WrittenHeaderIsWhatNumPyWrites) {
  const double data[12] = {};
  io::write_npy(path("a.npy"), data, 3, 4);
  const std::string bytes = read_bytes(path("a.npy"));
  // NumPy 1.x/2.x: np.save of a (3, 4) float64 array, format 1.0, data at byte 128.
  ASSERT_EQ(bytes.size(), 128u + 96u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8),
            118);
  const std::string header = bytes.substr(10, 118);
  EXPECT_EQ(header.rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", 0), 0u)
      << header;
  EXPECT_EQ(header.back(), '\n');

  io::write_npy(path("labels.npy"), std::vector<std::int32_t>{3, -1, 7, 0, 2});
  const std::string labels = read_bytes(path("labels.npy"));
  ASSERT_EQ(labels.size() % 4, 0u);
  const std::size_t offset = labels.size() - 5 * 4;
  EXPECT_EQ(offset % 64, 0u);
  EXPECT_NE(labels.find("{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"),
            std::string::npos);
  EXPECT_EQ(io::read_vector(path("labels.npy")), (std::vector<double>{3, -1, 7, 0, 2}));
}

TEST_F(NpyTest, ReadsFormatVersionsOneTwoAndThree) {
  const std::vector<double> v = {1.5, -2.25, 3, 4, 5, 6};
  for (int major = 1; major <= 3; ++major) {
    const std::string name = "v" + std::to_string(major) + ".npy";
    write_bytes(path(name), npy(dict("<f8", "(2, 3)"), bytes_of(v), major));
    const HostMatrix m = io::read_matrix(path(name));
    EXPECT_EQ(m.rows(), 2);
    EXPECT_EQ(m.cols(), 3);
    EXPECT_EQ(values_of(m), v) << "version " << major;
  }
  // Python 2 headers: double quotes, keys in another order, long literals.
  write_bytes(
      path("py2.npy"),
      npy("{\"shape\": (3L, 2L), \"fortran_order\": False, \"descr\": \"<f8\"}", bytes_of(v)));
  const HostMatrix m = io::read_matrix(path("py2.npy"));
  EXPECT_EQ(m.rows(), 3);
  EXPECT_EQ(m.cols(), 2);
  EXPECT_EQ(values_of(m), v);

  write_bytes(path("v4.npy"), npy(dict("<f8", "(2, 3)"), bytes_of(v), 4));
  expect_error<IoError>([&] { io::read_matrix(path("v4.npy")); },
                        path("v4.npy") + ": unsupported .npy format version 4.0");
}

TEST_F(NpyTest, ReadsFortranOrder) {
  // The 2 x 3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
  write_bytes(path("f.npy"),
              npy(dict("<f8", "(2, 3)", true), bytes_of(std::vector<double>{1, 4, 2, 5, 3, 6})));
  EXPECT_EQ(values_of(io::read_matrix(path("f.npy"))), (std::vector<double>{1, 2, 3, 4, 5, 6}));

  // A row range of a Fortran-order array: rows 1..2 of a 4 x 2 int16 matrix.
  write_bytes(path("g.npy"),
              npy(dict("<i2", "(4, 2)", true),
                  bytes_of(std::vector<std::int16_t>{10, 20, 30, 40, -1, -2, -3, -4})));
  io::ReadOptions options;
  options.first_row = 1;
  options.row_count = 2;
  EXPECT_EQ(values_of(io::read_matrix(path("g.npy"), options)),
            (std::vector<double>{20, -2, 30, -3}));
}

TEST_F(NpyTest, ReadsEveryIntegerWidthBoolAndBothByteOrders) {
  struct Case {
    std::string descr;
    std::string data;
    std::vector<double> expected;
  };
  const std::vector<Case> cases = {
      {"|b1", std::string("\x01\x00\x01\x01", 4), {1, 0, 1, 1}},
      {"|i1", bytes_of(std::vector<std::int8_t>{-128, -1, 0, 127}), {-128, -1, 0, 127}},
      {"|u1", bytes_of(std::vector<std::uint8_t>{0, 1, 200, 255}), {0, 1, 200, 255}},
      {"<i2", bytes_of(std::vector<std::int16_t>{-32768, -2, 3, 32767}), {-32768, -2, 3, 32767}},
      {"<u2", bytes_of(std::vector<std::uint16_t>{0, 1, 40000, 65535}), {0, 1, 40000, 65535}},
      {"<i4",
       bytes_of(std::vector<std::int32_t>{-2147483647 - 1, -5, 6, 2147483647}),
       {-2147483648.0, -5, 6, 2147483647}},
      {"<u4",
       bytes_of(std::vector<std::uint32_t>{0, 7, 3000000000u, 4294967295u}),
       {0, 7, 3000000000.0, 4294967295.0}},
      {"<i8",
       bytes_of(std::vector<std::int64_t>{-(std::int64_t{1} << 40), -1, 0, 1 << 30}),
       {-1099511627776.0, -1, 0, 1073741824.0}},
      {"<u8",
       bytes_of(std::vector<std::uint64_t>{0, 1, std::uint64_t{1} << 63, 12}),
       {0, 1, 9223372036854775808.0, 12}},
      {"<f4", bytes_of(std::vector<float>{0.5f, -1.25f, 3e30f, 0}), {0.5, -1.25, double(3e30f), 0}},
      {">f8", bytes_of(std::vector<double>{0.1, -2, 1e300, 4}, true), {0.1, -2, 1e300, 4}},
      {">f4", bytes_of(std::vector<float>{0.1f, -2, 8, 4}, true), {double(0.1f), -2, 8, 4}},
      {">i4", bytes_of(std::vector<std::int32_t>{-70000, 1, 2, 3}, true), {-70000, 1, 2, 3}},
      {">u2", bytes_of(std::vector<std::uint16_t>{65535, 256, 1, 0}, true), {65535, 256, 1, 0}},
      {">i8", bytes_of(std::vector<std::int64_t>{-3, 1, 2, 3}, true), {-3, 1, 2, 3}},
      {"|u1", std::string("\x00\x01\x02\x03", 4), {0, 1, 2, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.descr);
    write_bytes(path("x.npy"), npy(dict(c.descr, "(2, 2)"), c.data));
    EXPECT_EQ(values_of(io::read_matrix(path("x.npy"))), c.expected);
  }
  // A NumPy bool array holds 0 / 1, but any non-zero byte reads as true.
  write_bytes(path("b.npy"), npy(dict("|b1", "(3,)"), std::string("\x02\x00\xff", 3)));
  EXPECT_EQ(values_of(io::read_matrix(path("b.npy"))), (std::vector<double>{1, 0, 1}));
}

TEST_F(NpyTest, OneDimensionalArrayIsAColumn) {
  write_bytes(path("v.npy"), npy(dict("<f8", "(4,)"), bytes_of(std::vector<double>{1, 2, 3, 4})));
  const HostMatrix m = io::read_matrix(path("v.npy"));
  EXPECT_EQ(m.rows(), 4);
  EXPECT_EQ(m.cols(), 1);
  EXPECT_EQ(io::read_vector(path("v.npy")), (std::vector<double>{1, 2, 3, 4}));
  // N x 1 and 1 x N are vectors as well; N x 2 is not.
  write_bytes(path("r.npy"), npy(dict("<f8", "(1, 3)"), bytes_of(std::vector<double>{5, 6, 7})));
  EXPECT_EQ(io::read_vector(path("r.npy")), (std::vector<double>{5, 6, 7}));
  write_bytes(path("c.npy"),
              npy(dict("<i4", "(3, 1)"), bytes_of(std::vector<std::int32_t>{5, 6, 7})));
  EXPECT_EQ(io::read_vector(path("c.npy")), (std::vector<double>{5, 6, 7}));
  write_bytes(path("m.npy"), npy(dict("<f8", "(2, 2)"), bytes_of(std::vector<double>{1, 2, 3, 4})));
  expect_error<IoError>(
      [&] { io::read_vector(path("m.npy")); },
      path("m.npy") + ": expected a vector (N values, N x 1 or 1 x N), got a 2 x 2 matrix");
  // An empty array reads as 0 rows.
  write_bytes(path("e.npy"), npy(dict("<f8", "(0, 3)"), ""));
  const HostMatrix e = io::read_matrix(path("e.npy"));
  EXPECT_EQ(e.rows(), 0);
  EXPECT_EQ(e.cols(), 3);
}

TEST_F(NpyTest, RejectsScalarsAndArraysOfMoreThanTwoDimensions) {
  write_bytes(path("s.npy"), npy(dict("<f8", "()"), bytes_of(std::vector<double>{1})));
  expect_error<IoError>(
      [&] { io::read_matrix(path("s.npy")); },
      path("s.npy") + ": is a 0-d array (a single value); expected a 1-D or 2-D array");
  write_bytes(path("t.npy"),
              npy(dict("<f8", "(2, 1, 2)"), bytes_of(std::vector<double>{1, 2, 3, 4})));
  expect_error<IoError>(
      [&] { io::read_matrix(path("t.npy")); },
      path("t.npy") + ": is a 3-D array of shape (2, 1, 2); expected a 1-D or 2-D array");
}

TEST_F(NpyTest, MissingTruncatedAndBadMagicFilesNameTheFileAndTheProblem) {
  expect_error<IoError>([&] { io::read_matrix(path("nope.npy")); },
                        path("nope.npy") + ": cannot open: No such file or directory");
  expect_error<IoError>([&] { io::read_vector(path("nope.npy")); },
                        path("nope.npy") + ": cannot open: No such file or directory");
  try {
    io::read_matrix(path("nope.npy"));
    ADD_FAILURE() << "a missing file was read";
  } catch (const IoError& e) {  // what a caller tells a missing file from a malformed one by
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_EQ(e.path(), path("nope.npy"));
  }

  const std::string full =
      npy(dict("<f8", "(3, 2)"), bytes_of(std::vector<double>{1, 2, 3, 4, 5, 6}));
  write_bytes(path("t.npy"), full.substr(0, full.size() - 3));
  expect_error<IoError>([&] { io::read_matrix(path("t.npy")); },
                        path("t.npy") +
                            ": truncated: the header says (3, 2) float64 (48 bytes "
                            "of data) but only 45 bytes follow it");
  // More bytes than the header's shape: a row the header does not count is not dropped.
  write_bytes(path("long.npy"), full + std::string(8, '\0'));
  const std::string long_message =
      path("long.npy") +
      ": the header says (3, 2) float64 (48 bytes of data) but 56 bytes follow it: the header "
      "does not describe the whole file";
  expect_error<IoError>([&] { io::read_matrix(path("long.npy")); }, long_message);
  expect_error<IoError>([&] { io::count_rows(path("long.npy")); }, long_message);
  expect_error<IoError>([&] { io::MappedNpy(path("long.npy"), DType::kFloat64); }, long_message);
  // Cut inside the header.
  write_bytes(path("h.npy"), full.substr(0, 40));
  expect_error<IoError>([&] { io::read_matrix(path("h.npy")); }, path("h.npy") + ": truncated");
  write_bytes(path("p.npy"), full.substr(0, 8));
  expect_error<IoError>([&] { io::read_matrix(path("p.npy")); }, path("p.npy") + ": truncated");

  std::string bad = full;
  bad[1] = 'X';
  write_bytes(path("bad.npy"), bad);
  expect_error<IoError>([&] { io::read_matrix(path("bad.npy")); },
                        path("bad.npy") + ": not a .npy file (bad magic string)");
  write_bytes(path("empty.npy"), "");
  expect_error<IoError>([&] { io::read_matrix(path("empty.npy")); },
                        path("empty.npy") + ": the file is empty (0 bytes), not a .npy file");

  write_bytes(path("junk.npy"), npy("{'descr': '<f8', 'shape': (2, 2) 'x'}", ""));
  expect_error<IoError>([&] { io::read_matrix(path("junk.npy")); },
                        path("junk.npy") + ": malformed .npy header");
  write_bytes(path("noshape.npy"), npy("{'descr': '<f8', 'fortran_order': False}", ""));
  expect_error<IoError>([&] { io::read_matrix(path("noshape.npy")); },
                        path("noshape.npy") + ": malformed .npy header: no 'shape' key");

  fs::create_directory(dir_ / "sub.npy");
  expect_error<IoError>([&] { io::read_matrix(path("sub.npy")); },
                        path("sub.npy") + ": is a directory");
}

TEST_F(NpyTest, UnsupportedDtypesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<c16", "unsupported dtype '<c16' (complex)"},
      {"|O", "unsupported dtype '|O' (Python objects)"},
      {"<U5", "unsupported dtype '<U5' (unicode strings)"},
      {"|S3", "unsupported dtype '|S3' (byte strings)"},
      {"<f2", "unsupported dtype '<f2' (float16)"},
      {"<M8[ns]", "unsupported dtype '<M8[ns]' (dates or times)"},
      {"<f16", "unsupported dtype '<f16' (extended-precision float)"},
      // NumPy's name where its code belongs, or a code without its size.
      {"float64",
       "unsupported dtype 'float64' (not a type code and a size in bytes, such as "
       "'<f8')"},
      {"<f", "unsupported dtype '<f' (not a type code and a size in bytes, such as '<f8')"},
  };
  for (const auto& [descr, message] : cases) {
    write_bytes(path("x.npy"), npy(dict(descr, "(2, 2)"), std::string(64, '\0')));
    expect_error<IoError>([&] { io::read_matrix(path("x.npy")); }, path("x.npy") + ": " + message);
  }
  write_bytes(path("rec.npy"), npy("{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': "
                                   "False, 'shape': (2,), }",
                                   std::string(24, '\0')));
  expect_error<IoError>([&] { io::read_matrix(path("rec.npy")); },
                        path("rec.npy") + ": unsupported dtype (a structured array)");
}

TEST_F(NpyTest, NonFiniteValuesNameRowAndColumn) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // 3 x 3, C order: NaN at row 2, column 3 (1-based) and Inf later.
  write_bytes(path("n.npy"), npy(dict("<f8", "(3, 3)"),
                                 bytes_of(std::vector<double>{0, 1, 2, 3, 4, nan, 6, inf, 8})));
  expect_error<InvalidArgument>([&] { io::read_matrix(path("n.npy")); },
                                path("n.npy") + ": row 2, column 3 is nan");
  // Row numbers count from the start of the file, not of the range read.
  io::ReadOptions from_third;
  from_third.first_row = 2;
  expect_error<InvalidArgument>([&] { io::read_matrix(path("n.npy"), from_third); },
                                path("n.npy") + ": row 3, column 2 is inf");
  // The same matrix in Fortran order still reports the first bad value in row order.
  write_bytes(path("f.npy"), npy(dict("<f8", "(3, 3)", true),
                                 bytes_of(std::vector<double>{0, 3, 6, 1, 4, -inf, 2, nan, 8})));
  expect_error<InvalidArgument>([&] { io::read_matrix(path("f.npy")); },
                                path("f.npy") + ": row 2, column 3 is nan");
  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  expect_error<InvalidArgument>([&] { io::read_matrix(path("f.npy"), as_float); },
                                path("f.npy") + ": row 2, column 3 is nan");
  // Big-endian float32 -inf.
  write_bytes(path("b.npy"),
              npy(dict(">f4", "(2,)"), bytes_of(std::vector<float>{1, -float(inf)}, true)));
  expect_error<InvalidArgument>([&] { io::read_matrix(path("b.npy")); },
                                path("b.npy") + ": row 2, column 1 is -inf");
  // A finite float64 too large for float32.
  write_bytes(path("big.npy"), npy(dict("<f8", "(1, 2)"), bytes_of(std::vector<double>{1, 1e300})));
  expect_error<InvalidArgument>(
      [&] { io::read_matrix(path("big.npy"), as_float); },
      path("big.npy") + ": row 1, column 2: 1e+300 does not fit in float32");
  EXPECT_EQ(io::read_matrix(path("big.npy")).at(0, 1), 1e300);

  // Without the check NaN and Inf in the file pass through, but a finite value is never
  // silently made infinite by the narrowing to float32.
  io::ReadOptions lenient;
  lenient.require_finite = false;
  const HostMatrix m = io::read_matrix(path("n.npy"), lenient);
  EXPECT_TRUE(std::isnan(m.at(1, 2)));
  EXPECT_EQ(m.at(2, 1), inf);
  lenient.dtype = DType::kFloat32;
  expect_error<InvalidArgument>(
      [&] { io::read_matrix(path("big.npy"), lenient); },
      path("big.npy") + ": row 1, column 2: 1e+300 does not fit in float32");
}

TEST_F(NpyTest, RowRangesReadOnlyThoseRows) {
  std::vector<double> v(10 * 2);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  // Rows outside the range hold NaN: a reader that converted them would fail.
  v[0] = std::numeric_limits<double>::quiet_NaN();
  v[19] = std::numeric_limits<double>::quiet_NaN();
  write_bytes(path("r.npy"), npy(dict("<f8", "(10, 2)"), bytes_of(v)));

  io::ReadOptions options;
  options.first_row = 3;
  options.row_count = 4;
  EXPECT_EQ(values_of(io::read_matrix(path("r.npy"), options)),
            (std::vector<double>{6, 7, 8, 9, 10, 11, 12, 13}));
  options.row_count = 0;
  EXPECT_EQ(io::read_matrix(path("r.npy"), options).rows(), 0);
  options.first_row = 10;
  options.row_count = -1;
  EXPECT_EQ(io::read_matrix(path("r.npy"), options).rows(), 0);

  options.first_row = 8;
  options.row_count = 3;
  expect_error<InvalidArgument>(
      [&] { io::read_matrix(path("r.npy"), options); },
      path("r.npy") + ": rows [8, 11) requested but the file has 10 rows");
  options.first_row = 11;
  options.row_count = -1;
  expect_error<InvalidArgument>(
      [&] { io::read_matrix(path("r.npy"), options); },
      path("r.npy") + ": first_row 11 is past the end: the file has 10 rows");
  options.first_row = -1;
  expect_error<InvalidArgument>([&] { io::read_matrix(path("r.npy"), options); },
                                path("r.npy") + ": first_row must be >= 0, got -1");
  options.first_row = 0;
  options.row_count = -2;
  expect_error<InvalidArgument>([&] { io::read_matrix(path("r.npy"), options); },
                                path("r.npy") + ": row_count must be >= 0");
}

TEST_F(NpyTest, ReadsArraysLargerThanOneBlock) {
  // 500,000 x 3 float32 = 6 MB on disk: the reader's 4 MiB blocks end mid-file.
  const std::int64_t rows = 500000, cols = 3;
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 9973) - 17.5f;
  io::write_npy(path("big.npy"), v.data(), rows, cols);
  const HostMatrix m = io::read_matrix(path("big.npy"));
  ASSERT_EQ(m.rows(), rows);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(m.as<double>()[i], static_cast<double>(v[i])) << "element " << i;
  }
  io::ReadOptions tail;
  tail.first_row = rows - 5;
  const HostMatrix t = io::read_matrix(path("big.npy"), tail);
  ASSERT_EQ(t.rows(), 5);
  EXPECT_EQ(t.at(4, 2), static_cast<double>(v.back()));
}

TEST_F(NpyTest, ConversionIsExactAndNamesTheFirstBadValueWhereverItIs) {
  // The reader screens blocks of 4096 values and looks value by value only in a block that
  // fails: values every conversion must keep or round as static_cast does, and a bad value at
  // each edge of the blocks, in both element types and with and without the finite check.
  const std::int64_t rows = 3000, cols = 5;  // 15,000 values: three blocks and part of a fourth
  const double big = 1e300;
  // Half a unit in the last place past FLT_MAX: the first double that rounds to float's infinity.
  const double above_float = static_cast<double>(FLT_MAX) + 0x1p103;
  const double rounds_to_max = std::nextafter(above_float, 0.0);
  std::vector<double> v(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(static_cast<double>(i) - 7000.5, -9);
  const double specials[] = {-0.0,    5e-324,   1e-40,         -1e-310,
                             FLT_MAX, -FLT_MAX, rounds_to_max, 1.0 / 3.0};
  for (std::size_t i = 0; i < std::size(specials); ++i) v[4090 + i] = specials[i];
  io::write_npy(path("good.npy"), v.data(), rows, cols);
  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  const HostMatrix d64 = io::read_matrix(path("good.npy"));
  const HostMatrix d32 = io::read_matrix(path("good.npy"), as_float);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(std::memcmp(&d64.as<double>()[i], &v[i], sizeof(double)), 0) << "element " << i;
    const float narrowed = static_cast<float>(v[i]);
    ASSERT_EQ(std::memcmp(&d32.as<float>()[i], &narrowed, sizeof(float)), 0) << "element " << i;
  }

  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::size_t at :
       {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{12288}, v.size() - 1}) {
    const std::string where =
        ": row " + std::to_string(at / cols + 1) + ", column " + std::to_string(at % cols + 1);
    std::vector<double> bad = v;
    bad[at] = nan;
    if (at + 1 < v.size()) bad.back() = nan;  // a later one is not the one named
    io::write_npy(path("nan.npy"), bad.data(), rows, cols);
    expect_error<InvalidArgument>([&] { io::read_matrix(path("nan.npy")); },
                                  path("nan.npy") + where + " is nan");
    expect_error<InvalidArgument>([&] { io::read_matrix(path("nan.npy"), as_float); },
                                  path("nan.npy") + where + " is nan");
    const std::vector<float> narrow(bad.begin(), bad.end());
    io::write_npy(path("nan32.npy"), narrow.data(), rows, cols);
    expect_error<InvalidArgument>([&] { io::read_matrix(path("nan32.npy")); },
                                  path("nan32.npy") + where + " is nan");

    // Too large for float32: refused with or without the finite check; NaN before it is not.
    bad = v;
    bad[at] = at % 2 == 0 ? above_float : -big;
    if (at > 0) bad[at - 1] = nan;
    io::write_npy(path("big.npy"), bad.data(), rows, cols);
    io::ReadOptions lenient = as_float;
    lenient.require_finite = false;
    expect_error<InvalidArgument>([&] { io::read_matrix(path("big.npy"), lenient); },
                                  path("big.npy") + where + ": ");
    const HostMatrix kept = io::read_matrix(path("big.npy"), [] {
      io::ReadOptions o;
      o.require_finite = false;
      return o;
    }());
    EXPECT_EQ(kept.as<double>()[at], bad[at]);
  }
}

TEST_F(NpyTest, FailedWritesLeaveNoFile) {
  const double data[4] = {1, 2, 3, 4};
  const std::string target = (dir_ / "no_such_dir" / "x.npy").string();
  expect_error<IoError>(
      [&] { io::write_npy(target, data, 2, 2); },
      target + ": cannot write: the folder " + (dir_ / "no_such_dir").string() + " does not exist");
  EXPECT_FALSE(fs::exists(target));
  // A folder where the file should go is refused before anything is written.
  fs::create_directory(dir_ / "taken.npy");
  fs::create_directory(dir_ / "taken.npy" / "child");
  expect_error<IoError>([&] { io::write_npy(path("taken.npy"), data, 2, 2); },
                        path("taken.npy") + ": cannot write: it is a folder");
  EXPECT_EQ(entries(), std::vector<std::string>{"taken.npy"});

  expect_error<InvalidArgument>([&] { io::write_npy(path("y.npy"), data, -1, 2); },
                                "write_npy(" + path("y.npy") + "): negative shape -1 x 2");
  expect_error<InvalidArgument>(
      [&] { io::write_npy(path("y.npy"), static_cast<const double*>(nullptr), 2, 2); },
      "null data");
  EXPECT_EQ(entries(), std::vector<std::string>{"taken.npy"});
}

TEST_F(NpyTest, OverwriteReplacesTheWholeFile) {
  std::vector<double> big(1000, 1.0);
  io::write_npy(path("x.npy"), big.data(), 1000, 1);
  const double small[2] = {5, 6};
  io::write_npy(path("x.npy"), small, 1, 2);
  EXPECT_EQ(values_of(io::read_matrix(path("x.npy"))), (std::vector<double>{5, 6}));
  EXPECT_EQ(entries(), std::vector<std::string>{"x.npy"});
}

// The file-size limit makes write(2) fail with EFBIG part way, the way a full disk would.
TEST_F(NpyTest, WriteErrorsDuringWriteOrFlushLeaveNoFile) {
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old_limit;
  limit.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);

  // Large: write(2) fails part way.
  std::vector<double> big(20000, 2.0);
  bool threw_big = false, threw_small = false;
  std::string message_big, message_small;
  try {
    io::write_npy(path("big.npy"), big.data(), 20000, 1);
  } catch (const IoError& e) {
    threw_big = true;
    message_big = e.what();
  }
  // Small, but still past the limit.
  std::vector<double> small(200, 2.0);
  try {
    io::write_npy(path("small.npy"), small.data(), 200, 1);
  } catch (const IoError& e) {
    threw_small = true;
    message_small = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_TRUE(threw_big);
  EXPECT_TRUE(threw_small);
  EXPECT_EQ(message_big.rfind(path("big.npy") + ": cannot write: write failed", 0), 0u)
      << message_big;
  EXPECT_EQ(message_small.rfind(path("small.npy") + ": cannot write: write failed", 0), 0u)
      << message_small;
  EXPECT_TRUE(entries().empty());
}

TEST_F(NpyTest, NpyWriterStreamsRowsAndCommits) {
  std::vector<double> all(7 * 3);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = 0.5 * static_cast<double>(i);
  {
    io::NpyWriter writer(path("s.npy"), DType::kFloat64, 7, 3);
    writer.append(all.data(), 2);
    writer.append(all.data() + 6, 0);
    writer.append(all.data() + 6, 5);
    EXPECT_FALSE(fs::exists(path("s.npy")));  // not before commit
    writer.commit();
  }
  io::write_npy(path("ref.npy"), all.data(), 7, 3);
  EXPECT_EQ(read_bytes(path("s.npy")), read_bytes(path("ref.npy")));

  std::vector<float> f = {1, 2, 3, 4};
  {
    io::NpyWriter writer(path("f.npy"), DType::kFloat32, 2, 2);
    writer.append(f.data(), 2);
    writer.commit();
    expect_error<IoError>([&] { writer.append(f.data(), 0); }, "already committed");
  }
  io::ReadOptions as_float;
  as_float.dtype = DType::kFloat32;
  const HostMatrix m = io::read_matrix(path("f.npy"), as_float);
  EXPECT_EQ(std::memcmp(m.data(), f.data(), 16), 0);
  EXPECT_EQ(entries(), (std::vector<std::string>{"f.npy", "ref.npy", "s.npy"}));
}

TEST_F(NpyTest, NpyWriterWithoutCommitOrWithMissingRowsLeavesNothing) {
  std::vector<double> row(3, 1.0);
  { io::NpyWriter writer(path("a.npy"), DType::kFloat64, 5, 3); }
  {
    io::NpyWriter writer(path("b.npy"), DType::kFloat64, 5, 3);
    writer.append(row.data(), 1);
  }
  {
    io::NpyWriter writer(path("c.npy"), DType::kFloat64, 5, 3);
    writer.append(row.data(), 1);
    expect_error<IoError>([&] { writer.commit(); },
                          path("c.npy") + ": cannot write: 1 of the declared 5 rows were written");
    expect_error<InvalidArgument>([&] { writer.append(row.data(), 5); },
                                  "appending 5 rows to the 1 written exceeds the declared 5");
  }
  EXPECT_TRUE(entries().empty());
  expect_error<IoError>([&] { io::NpyWriter w(path("none/x.npy"), DType::kFloat64, 1, 1); },
                        path("none/x.npy") + ": cannot write");
  expect_error<InvalidArgument>([&] { io::NpyWriter w(path("n.npy"), DType::kFloat64, -1, 1); },
                                "negative shape");
  EXPECT_TRUE(entries().empty());
}

// A header length is read from the file; a huge claim is refused before being allocated.
TEST_F(NpyTest, HeadersLongerThan64KiBAreRefusedBeforeBeingRead) {
  std::string bytes = "\x93NUMPY\x02";
  bytes += '\0';
  bytes += std::string("\x00\x00\x00\x40", 4);  // 2^30 bytes, version 2's 4-byte length
  write_bytes(path("h.npy"), bytes);
  expect_error<IoError>([&] { io::read_matrix(path("h.npy")); },
                        path("h.npy") +
                            ": the .npy header says it is 1073741824 bytes long; emix "
                            "reads headers of at most 65536 bytes");
  // A malformed header is quoted from where parsing stopped, shortly.
  write_bytes(path("m.npy"), npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3x" +
                                     std::string(5000, 'x') + "), }",
                                 ""));
  try {
    io::read_matrix(path("m.npy"));
    ADD_FAILURE() << "no exception";
  } catch (const IoError& e) {
    EXPECT_LT(std::string(e.what()).size(), 300u) << e.what();
    EXPECT_NE(std::string(e.what()).find("(expected ',' or ')' in the shape at character 55): "
                                         "'xxxxxxxxxx"),
              std::string::npos)
        << e.what();
  }
}

TEST(HostMatrixTest, ShapeAccessAndConversion) {
  HostMatrix m(DType::kFloat64, 2, 3);
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(m.cols(), 3);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(m.as<double>()[i], 0.0);  // zero-initialised
  for (int i = 0; i < 6; ++i) m.as<double>()[i] = 0.1 * i;
  EXPECT_EQ(m.at(1, 2), 0.1 * 5);
  EXPECT_THROW(m.at(2, 0), InvalidArgument);
  EXPECT_THROW(m.at(0, -1), InvalidArgument);

  const HostMatrix f = m.converted(DType::kFloat32);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.at(1, 2), static_cast<double>(static_cast<float>(0.1 * 5)));
  const HostMatrix back = f.converted(DType::kFloat64);
  EXPECT_EQ(back.at(1, 2), static_cast<double>(static_cast<float>(0.5)));
  const HostMatrix same = m.converted(DType::kFloat64);
  EXPECT_EQ(std::memcmp(same.data(), m.data(), 6 * sizeof(double)), 0);

  HostMatrix huge(DType::kFloat64, 1, 1);
  huge.as<double>()[0] = -1e300;
  EXPECT_EQ(huge.converted(DType::kFloat32).at(0, 0), -std::numeric_limits<double>::infinity());

  // Odd float32 element counts still fit in the double-typed storage.
  HostMatrix odd(DType::kFloat32, 1, 3);
  odd.as<float>()[2] = 7.0f;
  EXPECT_EQ(odd.at(0, 2), 7.0);
  EXPECT_EQ(odd.view().rows, 1);
  EXPECT_EQ(odd.view().dtype, DType::kFloat32);

  EXPECT_THROW(HostMatrix(DType::kFloat32, -1, 2), InvalidArgument);
  EXPECT_THROW(HostMatrix(DType::kFloat64, std::int64_t{1} << 40, std::int64_t{1} << 40),
               InvalidArgument);
  EXPECT_STREQ(emix::to_string(DType::kFloat32), "float32");
  EXPECT_STREQ(emix::to_string(DType::kFloat64), "float64");
}

}  // namespace
