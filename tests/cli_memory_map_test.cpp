// `emix fit` through a memory mapping (--memory-map): the same model as the in-memory fit to
// 1e-12 relative in float64, through mapped pages used as they are and through chunks converted
// from float32 or from Fortran order; the same errors, naming file, row, column and value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_test_util.hpp"
#include "emix/io.hpp"
#include "io_test_util.hpp"

namespace {

namespace fs = std::filesystem;
using emix::testing::CliRun;
using emix::testing::CliTest;
using emix::testing::read_text;

// A .npy file (format 1.0) of `rows` x `cols` elements given in C order, written in C or
// Fortran order, with `descr` ("<f8", "<f4") naming the bytes in `values`.
template <typename T>
void write_npy_file(const fs::path& path, const std::vector<T>& values, std::int64_t rows,
                    std::int64_t cols, const char* descr, bool fortran) {
  std::vector<T> ordered = values;
  if (fortran) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) ordered[c * rows + r] = values[r * cols + c];
    }
  }
  std::ofstream out(path, std::ios::binary);
  out << emix::testing::npy(
      emix::testing::dict(descr, "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")",
                          fortran),
      std::string(reinterpret_cast<const char*>(ordered.data()), ordered.size() * sizeof(T)));
}

// Largest difference between two arrays of numbers in two model files, relative to the largest
// magnitude in the array (an off-diagonal covariance near 0 has no relative precision of its
// own).
void flatten(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const nlohmann::json& e : j) flatten(e, out);
  } else {
    out.push_back(j.get<double>());
  }
}

double max_relative(const nlohmann::json& a, const nlohmann::json& b, const char* key) {
  std::vector<double> x, y;
  flatten(a.at(key), x);
  flatten(b.at(key), y);
  EXPECT_EQ(x.size(), y.size()) << key;
  double scale = 0, worst = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    worst = std::max(worst, std::abs(x[i] - y[i]));
  }
  return worst / std::max(scale, 1e-300);
}

// The two fits give the same model to 1e-12 relative: the sums of statistics differ only in
// their order (chunk by chunk against thread slots), about 1e-15 per iteration; 1e-12 leaves
// room for 25 iterations of amplification, and a real difference (a lost or doubled chunk,
// rows shifted by one) moves the parameters by far more.
void expect_same_model(const fs::path& mapped, const fs::path& in_memory) {
  const nlohmann::json a = nlohmann::json::parse(read_text(mapped));
  const nlohmann::json b = nlohmann::json::parse(read_text(in_memory));
  EXPECT_EQ(a.at("fit").at("n_iter"), b.at("fit").at("n_iter"));
  for (const char* key : {"weights", "means", "covariances"}) {
    EXPECT_LE(max_relative(a, b, key), 1e-12) << key;
  }
  const double la = a.at("fit").at("log_likelihood").get<double>();
  const double lb = b.at("fit").at("log_likelihood").get<double>();
  EXPECT_LE(std::abs(la - lb), 1e-12 * std::abs(lb));
}

class MemoryMapTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    CliRun r = emix("generate --n 5000 --d 3 -k 4 --seed 8 -o data.npy");
    ASSERT_EQ(r.code, 0) << r.err;
    r = emix("generate --n 5000 --d 3 -k 4 --seed 8 --precision float -o data32.npy");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  std::string fit_args() const {
    return " -k 4 --covariance full --seed 4 --tol 0 --max-iter 25 --device cpu";
  }
};

TEST_F(MemoryMapTest, MappedPagesGiveTheInMemoryModel) {
  CliRun r = emix("fit data.npy" + fit_args() +
                  " --no-memory-map -o memory.json --labels l0.npy --responsibilities r0.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("memory-mapped"), std::string::npos) << r.err;  // small: in memory
  // 700 rows a chunk: eight chunks, the last one short.
  r = emix("fit data.npy" + fit_args() +
           " --memory-map --map-chunk-rows 700 -o mapped.json --labels l1.npy "
           "--responsibilities r1.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("data.npy: memory-mapped, 8 chunks of 700 rows\n"), std::string::npos)
      << r.err;
  expect_same_model(path("mapped.json"), path("memory.json"));
  const nlohmann::json mapped = nlohmann::json::parse(read_text(path("mapped.json")));
  EXPECT_NE(mapped.at("fit").at("engine").get<std::string>().find("8 chunks"), std::string::npos);

  const emix::HostMatrix l0 = emix::io::read_matrix(path("l0.npy").string());
  const emix::HostMatrix l1 = emix::io::read_matrix(path("l1.npy").string());
  const emix::HostMatrix r0 = emix::io::read_matrix(path("r0.npy").string());
  const emix::HostMatrix r1 = emix::io::read_matrix(path("r1.npy").string());
  ASSERT_EQ(l1.rows(), 5000);
  ASSERT_EQ(r1.rows(), 5000);
  ASSERT_EQ(r1.cols(), 4);
  for (std::int64_t n = 0; n < 5000; ++n) {
    ASSERT_EQ(l0.at(n, 0), l1.at(n, 0)) << "row " << n;
    for (int k = 0; k < 4; ++k) ASSERT_NEAR(r0.at(n, k), r1.at(n, k), 1e-12) << "row " << n;
  }
}

// --map-chunk-rows alone was ignored without a word: for a .npy the automatic choice read it
// whole, and for text or with --no-memory-map it could not apply. It maps a .npy now, and is
// refused where no mapping can be.
TEST_F(MemoryMapTest, ChunkRowsMapTheFileOrAreRefused) {
  CliRun r = emix("fit data.npy" + fit_args() + " --map-chunk-rows 700 -o mapped.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("data.npy: memory-mapped, 8 chunks of 700 rows\n"), std::string::npos)
      << r.err;
  r = emix("score mapped.json data.npy --device cpu --map-chunk-rows 700");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ofstream(path("data.csv")) << "1,2,3\n4,5,6\n7,8,9\n";
  expect_failure("fit data.csv -k 1 --device cpu --map-chunk-rows 700 -o t.json",
                 {"--map-chunk-rows reads .npy files only; data.csv is not one"});
  expect_failure("score mapped.json data.npy --map-chunk-rows 700 --no-memory-map",
                 {"--map-chunk-rows sets the chunks of a mapping, which --no-memory-map turns "
                  "off"});
}

// A float64 .npy fitted in float64 is used in place (no --memory-map, not chunked): the model,
// labels and responsibilities are bitwise those of the copy --no-memory-map reads, and predict
// of the same file gives the fit's labels.
TEST_F(MemoryMapTest, AFileInTheRunsTypeUsedInPlaceGivesBitwiseTheCopysResults) {
  CliRun r = emix("fit data.npy" + fit_args() +
                  " --no-memory-map -o copy.json --labels l0.npy --responsibilities r0.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("fit data.npy" + fit_args() +
           " -o place.json --labels l1.npy --responsibilities r1.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("memory-mapped"), std::string::npos) << r.err;  // not the chunked fit
  nlohmann::json a = nlohmann::json::parse(read_text(path("copy.json")));
  nlohmann::json b = nlohmann::json::parse(read_text(path("place.json")));
  for (nlohmann::json* j : {&a, &b}) {
    for (const char* timing : {"seconds", "setup_seconds", "init_seconds", "iteration_seconds"}) {
      j->at("fit").erase(timing);
    }
  }
  EXPECT_EQ(a, b);
  EXPECT_EQ(read_text(path("l0.npy")), read_text(path("l1.npy")));
  EXPECT_EQ(read_text(path("r0.npy")), read_text(path("r1.npy")));
  r = emix("predict place.json data.npy -o p.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text(path("p.npy")), read_text(path("l1.npy")));
  r = emix("predict place.json data.npy --no-memory-map -o p0.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text(path("p0.npy")), read_text(path("l1.npy")));
  const CliRun in_place = emix("score place.json data.npy");
  const CliRun copy = emix("score place.json data.npy --no-memory-map");
  ASSERT_EQ(in_place.code, 0) << in_place.err;
  EXPECT_EQ(in_place.out, copy.out);

  // A NaN in a file used in place is named as in the copy.
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  std::vector<double> values(x.as<double>(), x.as<double>() + x.rows() * x.cols());
  values[4321 * 3 + 2] = std::numeric_limits<double>::quiet_NaN();  // row 4322, column 3
  write_npy_file(path("nan.npy"), values, x.rows(), x.cols(), "<f8", false);
  expect_failure("fit nan.npy -k 2 -o m.json", {"nan.npy: row 4322, column 3 is nan"});
  expect_failure("predict place.json nan.npy -o p2.npy", {"nan.npy: row 4322, column 3 is nan"});
}

TEST_F(MemoryMapTest, ConvertedChunksGiveTheInMemoryModel) {
  // float32 on disk, fitted in float64: each chunk converted as the in-memory reader converts.
  CliRun r = emix("fit data32.npy" + fit_args() + " --no-memory-map -o memory.json");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("fit data32.npy" + fit_args() + " --memory-map --map-chunk-rows 999 -o mapped.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("converted to float64 chunk by chunk"), std::string::npos) << r.err;
  expect_same_model(path("mapped.json"), path("memory.json"));

  // Fortran order: the same values, column by column.
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  const std::vector<double> values(x.as<double>(), x.as<double>() + x.rows() * x.cols());
  write_npy_file(path("fortran.npy"), values, x.rows(), x.cols(), "<f8", true);
  r = emix("fit data.npy" + fit_args() + " --no-memory-map -o c.json");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("fit fortran.npy" + fit_args() + " --memory-map --map-chunk-rows 1234 -o f.json");
  ASSERT_EQ(r.code, 0) << r.err;
  expect_same_model(path("f.json"), path("c.json"));
}

TEST_F(MemoryMapTest, ErrorsNameFileRowColumnAndValue) {
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  std::vector<double> values(x.as<double>(), x.as<double>() + x.rows() * x.cols());
  values[3210 * 3 + 1] = std::numeric_limits<double>::quiet_NaN();  // row 3211, column 2
  write_npy_file(path("nan.npy"), values, x.rows(), x.cols(), "<f8", false);
  write_npy_file(path("nanf.npy"), values, x.rows(), x.cols(), "<f8", true);
  std::vector<float> narrow(x.as<double>(), x.as<double>() + x.rows() * x.cols());
  narrow[4000 * 3] = std::numeric_limits<float>::infinity();  // row 4001, column 1
  write_npy_file(path("inf32.npy"), narrow, x.rows(), x.cols(), "<f4", false);

  // The in-memory read and the mapping say the same.
  expect_failure("fit nan.npy -k 2 --no-memory-map -o m.json",
                 {"nan.npy: row 3211, column 2 is nan"});
  expect_failure("fit nan.npy -k 2 --memory-map --map-chunk-rows 500 -o m.json --labels l.npy",
                 {"nan.npy: row 3211, column 2 is nan"});
  expect_failure("fit nanf.npy -k 2 --memory-map --map-chunk-rows 500 -o m.json",
                 {"nanf.npy: row 3211, column 2 is nan"});
  expect_failure("fit inf32.npy -k 2 --memory-map --precision double -o m.json",
                 {"inf32.npy: row 4001, column 1 is inf"});
  expect_failure("fit inf32.npy -k 2 --memory-map --precision float -o m.json",
                 {"inf32.npy: row 4001, column 1 is inf"});

  // A bad sample weight: the weights file and its row, mapped or not.
  std::string weights;
  for (std::int64_t i = 0; i < x.rows(); ++i) weights += i == 3210 ? "-1\n" : "1\n";
  write("w.txt", weights);
  expect_failure("fit data.npy -k 2 --no-memory-map --sample-weight w.txt -o m.json",
                 {"w.txt: row 3211 is -1"});
  expect_failure(
      "fit data.npy -k 2 --memory-map --map-chunk-rows 500 --sample-weight w.txt -o m.json",
      {"w.txt: row 3211 is -1"});

  // A file cut short: named, with the sizes, before anything is written.
  const std::string bytes = read_text(path("data.npy"));
  write("short.npy", bytes.substr(0, bytes.size() - 100));
  expect_failure("fit short.npy -k 2 --memory-map -o m.json", {"short.npy", "truncated"});

  // No columns: as the in-memory read says it, not the chunked fit's "chunk 0: no data".
  write_npy_file(path("0cols.npy"), std::vector<double>{}, 50, 0, "<f8", false);
  expect_failure("fit 0cols.npy -k 1 --memory-map -o m.json", {"0cols.npy: no columns"});
  expect_failure("fit 0cols.npy -k 1 --no-memory-map -o m.json", {"0cols.npy: no columns"});

  // Only .npy files can be mapped.
  write("d.csv", "1,2\n3,4\n5,6\n");
  expect_failure("fit d.csv -k 2 --memory-map -o m.json", {"--memory-map", ".npy"});
  expect_failure("fit data.npy -k 2 --memory-map --no-memory-map -o m.json", {"--no-memory-map"});
}

// predict and score of a mapped file, chunk by chunk with the results streamed to their file,
// give the in-memory evaluation's results: the same labels, and responsibilities and a mean
// log-likelihood within 1e-12 (each chunk's engine expands about its own centre, which moves the
// last digits of a log-density, about 1e-15 relative, and nothing else).
TEST_F(MemoryMapTest, PredictAndScoreStreamAMappedFile) {
  CliRun r = emix("fit data.npy" + fit_args() + " --no-memory-map -o m.json");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("predict m.json data.npy --no-memory-map -o l0.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("predict m.json data.npy --no-memory-map --proba -o p0.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("predict m.json data.npy --memory-map --map-chunk-rows 700 --device cpu -o l1.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("data.npy: memory-mapped, 8 chunks of 700 rows\n"), std::string::npos)
      << r.err;
  // float32 on disk, converted chunk by chunk, as the in-memory reader converts it.
  r = emix(
      "predict m.json data32.npy --memory-map --map-chunk-rows 999 --precision double "
      "--proba -o p1.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("predict m.json data32.npy --no-memory-map --precision double --proba -o p32.npy");
  ASSERT_EQ(r.code, 0) << r.err;

  EXPECT_EQ(read_text(path("l0.npy")), read_text(path("l1.npy")));
  const emix::HostMatrix p0 = emix::io::read_matrix(path("p32.npy").string());
  const emix::HostMatrix p1 = emix::io::read_matrix(path("p1.npy").string());
  ASSERT_EQ(p1.rows(), 5000);
  ASSERT_EQ(p1.cols(), 4);
  for (std::int64_t n = 0; n < 5000; ++n) {
    for (int k = 0; k < 4; ++k) ASSERT_NEAR(p0.at(n, k), p1.at(n, k), 1e-12) << "row " << n;
  }

  const CliRun whole = emix("score m.json data.npy --no-memory-map");
  const CliRun mapped = emix("score m.json data.npy --memory-map --map-chunk-rows 700");
  ASSERT_EQ(whole.code, 0) << whole.err;
  ASSERT_EQ(mapped.code, 0) << mapped.err;
  const double a = std::stod(whole.out), b = std::stod(mapped.out);
  EXPECT_LE(std::abs(a - b), 1e-12 * std::abs(a)) << whole.out << " " << mapped.out;
  EXPECT_TRUE(mapped.err.empty()) << mapped.err;  // stdout holds the number, stderr nothing

  // A value the model cannot take, in the seventh chunk, named by the file's row, and a NaN as
  // the in-memory read names it; no output is left behind.
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  std::vector<double> binary(static_cast<std::size_t>(x.rows() * x.cols()), 1.0);
  binary[4321 * 3 + 1] = 0.5;  // row 4322, column 2
  write_npy_file(path("half.npy"), binary, x.rows(), x.cols(), "<f8", false);
  std::vector<double> ones(binary.size(), 1.0);
  write_npy_file(path("ones.npy"), ones, x.rows(), x.cols(), "<f8", false);
  r = emix("fit ones.npy --family bernoulli -k 1 --device cpu -o b.json");
  ASSERT_EQ(r.code, 0) << r.err;
  expect_failure("predict b.json half.npy --memory-map --map-chunk-rows 700 -o l2.npy",
                 {"half.npy: row 4322, column 2", "0.5"});
  expect_failure("score b.json half.npy --memory-map --map-chunk-rows 700", {"half.npy: row 4322"});
  std::vector<double> values(x.as<double>(), x.as<double>() + x.rows() * x.cols());
  values[3210 * 3 + 2] = std::numeric_limits<double>::quiet_NaN();  // row 3211, column 3
  write_npy_file(path("nan.npy"), values, x.rows(), x.cols(), "<f8", false);
  expect_failure("predict m.json nan.npy --memory-map --map-chunk-rows 500 --proba -o p2.npy",
                 {"nan.npy: row 3211, column 3 is nan"});
  expect_failure("score m.json nan.npy --memory-map", {"nan.npy: row 3211, column 3 is nan"});
  expect_failure("predict b.json data.npy --memory-map -o l3.npy", {"data.npy"});
  write_npy_file(path("wide.npy"), values, x.rows() * 3 / 4, 4, "<f8", false);
  expect_failure("score m.json wide.npy --memory-map", {"wide.npy has 4 columns", "n_features 3"});
}

// emix select over a mapped file: the chunked selection, each chunk read once per pass for every
// candidate; the same choice, each candidate's log-likelihood and criteria, and the best model,
// as the in-memory selection to 1e-12 (the sums differ only in their grouping: chunk by chunk
// against thread slots), with weights, and errors naming the file and row.
TEST_F(MemoryMapTest, SelectionOverTheMappedFileEqualsTheInMemoryOne) {
  std::string weights;
  for (int i = 0; i < 5000; ++i) weights += i % 3 == 0 ? "2\n" : "1\n";
  write("w.txt", weights);
  const std::string grid =
      " -k 2..5 --covariance full,diag --seed 4 --device cpu --sample-weight w.txt";
  CliRun r = emix("select data.npy" + grid + " --no-memory-map --table memory.json -o m0.json");
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("select data.npy" + grid +
           " --memory-map --map-chunk-rows 700 --table mapped.json -o m1.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("data.npy: memory-mapped, 8 chunks of 700 rows\n"), std::string::npos)
      << r.err;
  const nlohmann::json a = nlohmann::json::parse(read_text(path("mapped.json")));
  const nlohmann::json b = nlohmann::json::parse(read_text(path("memory.json")));
  EXPECT_EQ(a.at("best"), b.at("best"));
  ASSERT_EQ(a.at("candidates").size(), 8u);
  ASSERT_EQ(b.at("candidates").size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) {
    const nlohmann::json& x = a.at("candidates")[i];
    const nlohmann::json& y = b.at("candidates")[i];
    EXPECT_EQ(x.at("n_components"), y.at("n_components"));
    EXPECT_EQ(x.at("n_iter"), y.at("n_iter")) << i;
    for (const char* key : {"log_likelihood", "bic", "icl"}) {
      const double u = x.at(key).get<double>(), v = y.at(key).get<double>();
      EXPECT_LE(std::abs(u - v), 1e-12 * std::abs(v)) << i << " " << key;
    }
  }
  const nlohmann::json m1 = nlohmann::json::parse(read_text(path("m1.json")));
  const nlohmann::json m0 = nlohmann::json::parse(read_text(path("m0.json")));
  EXPECT_LE(max_relative(m1, m0, "means"), 1e-12);

  // A bad weight, and a file that is not a .npy, named as for emix fit.
  std::string bad = weights;
  bad.insert(bad.find('\n') + 1, "-");  // row 2: -1
  write("bad.txt", bad);
  r = emix("select data.npy -k 2 --memory-map --map-chunk-rows 500 --sample-weight bad.txt");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bad.txt: row 2 is -1"), std::string::npos) << r.err;
  write("d.csv", "1,2\n3,4\n5,6\n");
  r = emix("select d.csv -k 1..2 --memory-map");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--memory-map reads .npy files only"), std::string::npos) << r.err;
}

}  // namespace
