// `emix select` end to end: the table, the best model (equal to `emix fit` of that candidate),
// determinism, the PNG plot and the errors for bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.hpp"

namespace {

namespace fs = std::filesystem;
using emix::testing::CliRun;
using emix::testing::CliTest;
using emix::testing::read_text;

struct Row {
  int k = 0;
  std::string covariance;
  double log_likelihood = 0, mean_log_likelihood = 0;
  long long n_parameters = 0;
  double bic = 0, aic = 0, icl = 0;
  int n_iter = 0;
  std::string converged, seconds, best, failed;
};

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

std::vector<Row> read_table(const fs::path& path) {
  std::stringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "n_components,covariance,log_likelihood,mean_log_likelihood,n_parameters,bic,aic,icl,"
            "n_iter,converged,seconds,best,failed,error");
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    // The error, last, is empty or quoted where it holds commas: the 13 columns before it are
    // plain.
    const std::vector<std::string> f = split(line, ',');
    EXPECT_GE(f.size(), 13u) << line;
    if (f.size() < 13) break;
    Row r;
    r.k = std::stoi(f[0]);
    r.covariance = f[1];
    r.log_likelihood = std::strtod(f[2].c_str(), nullptr);
    r.mean_log_likelihood = std::strtod(f[3].c_str(), nullptr);
    r.n_parameters = std::stoll(f[4]);
    r.bic = std::strtod(f[5].c_str(), nullptr);
    r.aic = std::strtod(f[6].c_str(), nullptr);
    r.icl = std::strtod(f[7].c_str(), nullptr);
    r.n_iter = std::stoi(f[8]);
    r.converged = f[9];
    r.seconds = f[10];
    r.best = f[11];
    r.failed = f[12];
    rows.push_back(r);
  }
  return rows;
}

// The model file without its wall times, which differ between any two runs.
nlohmann::json without_times(nlohmann::json model) {
  for (const char* key : {"seconds", "setup_seconds", "init_seconds", "iteration_seconds"}) {
    model.at("fit").erase(key);
  }
  return model;
}

// The table without its seconds column.
std::string without_seconds(const std::string& csv) {
  std::stringstream in(csv);
  std::string line, out;
  while (std::getline(in, line)) {
    std::vector<std::string> f = split(line, ',');
    if (f.size() > 10) f.erase(f.begin() + 10);
    for (std::size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + f[i];
    out += "\n";
  }
  return out;
}

std::uint32_t big_endian_u32(const std::string& bytes, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + 3]));
}

class SelectTest : public CliTest {
 protected:
  // 1,500 rows of a well-separated 3-component mixture in 2-D.
  void SetUp() override {
    CliTest::SetUp();
    const CliRun r = emix("generate --n 1500 --d 2 -k 3 --seed 21 -o data.npy");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // True when this build draws plots; otherwise --plot must fail up front, naming the package
  // (libcairo2-dev for a build without cairo's header, libcairo2 where the library is missing).
  bool plots() {
    const CliRun r = emix("select data.npy -k 1 --plot probe.png");
    if (r.code == 0) {
      fs::remove(path("probe.png"));
      return true;
    }
    EXPECT_NE(r.err.find("libcairo2"), std::string::npos) << r.err;
    return false;
  }
};

TEST_F(SelectTest, TableAndBestModelEqualTheFitOfThatCandidate) {
  const CliRun r = emix(
      "select data.npy -k 1..4 --covariance full,diag --seed 3 --device cpu -o best.json "
      "--table table.csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Row> rows = read_table(path("table.csv"));
  ASSERT_EQ(rows.size(), 8u);
  std::size_t best = rows.size();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE("row " + std::to_string(i));
    EXPECT_EQ(rows[i].k, static_cast<int>(i % 4) + 1);
    EXPECT_EQ(rows[i].covariance, i < 4 ? "full" : "diag");
    // The criteria from the log-likelihood and the parameter count (N = 1500 rows).
    const double p = static_cast<double>(rows[i].n_parameters);
    EXPECT_NEAR(rows[i].bic, -2 * rows[i].log_likelihood + p * std::log(1500.0),
                1e-9 * std::abs(rows[i].bic));
    EXPECT_NEAR(rows[i].aic, -2 * rows[i].log_likelihood + 2 * p, 1e-9 * std::abs(rows[i].aic));
    EXPECT_GE(rows[i].icl, rows[i].bic - 1e-9 * std::abs(rows[i].bic));  // entropy >= 0
    if (rows[i].best == "true") {
      EXPECT_EQ(best, rows.size()) << "two rows marked best";
      best = i;
    }
  }
  ASSERT_LT(best, rows.size());
  for (const Row& row : rows) EXPECT_GE(row.bic, rows[best].bic);
  // Three well-separated components: the true K wins.
  EXPECT_EQ(rows[best].k, 3);
  // The printed table marks the same row.
  EXPECT_NE(r.out.find("* "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("best by bic: K = 3, covariance " + rows[best].covariance),
            std::string::npos)
      << r.out;

  // `emix fit` of the chosen candidate, same seed: the same model file, times aside.
  const CliRun f = emix("fit data.npy -k 3 --covariance " + rows[best].covariance +
                        " --seed 3 --device cpu -o fit.json");
  ASSERT_EQ(f.code, 0) << f.err;
  const nlohmann::json selected = nlohmann::json::parse(read_text(path("best.json")));
  const nlohmann::json fitted = nlohmann::json::parse(read_text(path("fit.json")));
  EXPECT_EQ(without_times(selected), without_times(fitted));
  EXPECT_EQ(selected.at("fit").at("log_likelihood").get<double>(), rows[best].log_likelihood);

  // Every other candidate equals its own fit too (one of each covariance type, checked).
  const CliRun g = emix("fit data.npy -k 2 --covariance diag --seed 3 --device cpu -o k2.json");
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_EQ(nlohmann::json::parse(read_text(path("k2.json"))).at("fit").at("log_likelihood"),
            rows[5].log_likelihood);

  // score accepts the best model.
  const CliRun s = emix("score best.json data.npy --device cpu");
  EXPECT_EQ(s.code, 0) << s.err;
}

TEST_F(SelectTest, TwoRunsWriteTheSameFiles) {
  const bool png = plots();
  const std::string plot_a = png ? " --plot a.png" : "";
  const std::string plot_b = png ? " --plot b.png" : "";
  CliRun r = emix("select data.npy -k 1,2,3,5 --covariance diag,spherical --n-init 2 --seed 9 " +
                  std::string("--criterion icl -o a.json --table a.csv") + plot_a);
  ASSERT_EQ(r.code, 0) << r.err;
  r = emix("select data.npy -k 1,2,3,5 --covariance diag,spherical --n-init 2 --seed 9 " +
           std::string("--criterion icl -o b.json --table b.csv") + plot_b);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(without_seconds(read_text(path("a.csv"))), without_seconds(read_text(path("b.csv"))));
  EXPECT_EQ(without_times(nlohmann::json::parse(read_text(path("a.json")))),
            without_times(nlohmann::json::parse(read_text(path("b.json")))));
  if (png) {
    EXPECT_EQ(read_text(path("a.png")), read_text(path("b.png")));
  }
  // A third run with another seed may differ; the K it picks is recorded in the table.
  EXPECT_EQ(read_table(path("a.csv")).size(), 8u);
}

// Without -k and --covariance the grid is emix.select's default too: K = 1..10 with every
// covariance type, in the table's order (types as listed, then K); the discrete families take
// no covariance type, so one candidate per K.
TEST_F(SelectTest, TheDefaultGridIsEveryCovarianceTypeAtK1To10) {
  CliRun r = emix("select data.npy --max-iter 3 --seed 1 --device cpu --table t.csv -q");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Row> rows = read_table(path("t.csv"));
  ASSERT_EQ(rows.size(), 40u);
  const char* types[] = {"full", "diag", "spherical", "tied"};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].covariance, types[i / 10]) << "row " << i;
    EXPECT_EQ(rows[i].k, static_cast<int>(i % 10) + 1) << "row " << i;
  }
  ASSERT_EQ(emix("generate --n 300 --d 4 -k 2 --family bernoulli --seed 2 -o bits.npy").code, 0);
  r = emix(
      "select bits.npy --family bernoulli --max-iter 3 --seed 1 --device cpu --table b.csv -q");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Row> bits = read_table(path("b.csv"));
  ASSERT_EQ(bits.size(), 10u);
  for (std::size_t i = 0; i < bits.size(); ++i) {
    EXPECT_EQ(bits[i].covariance, "-") << "row " << i;
    EXPECT_EQ(bits[i].k, static_cast<int>(i) + 1) << "row " << i;
  }
}

TEST_F(SelectTest, JsonTable) {
  const CliRun r = emix("select data.npy -k 2..3 --covariance tied --seed 1 --table t.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // --quiet
  const nlohmann::json t = nlohmann::json::parse(read_text(path("t.json")));
  EXPECT_EQ(t.at("format"), "emix-select");
  EXPECT_EQ(t.at("criterion"), "bic");
  ASSERT_EQ(t.at("candidates").size(), 2u);
  const auto best = t.at("best").get<std::size_t>();
  ASSERT_LT(best, 2u);
  EXPECT_LE(t.at("candidates")[best].at("bic").get<double>(),
            t.at("candidates")[1 - best].at("bic").get<double>());
  EXPECT_EQ(t.at("candidates")[0].at("covariance"), "tied");
}

TEST_F(SelectTest, PlotIsAPngOfTheStatedSize) {
  if (!plots()) {
    expect_failure("select data.npy -k 1..3 --plot p.png -o m.json", {"--plot", "libcairo2"});
    GTEST_SKIP() << "no cairo here: --plot refused up front, as checked";
  }
  const CliRun r = emix(
      "select data.npy -k 1..5 --covariance full,diag,spherical --seed 2 --plot p.png "
      "--plot-width 640 --plot-height 400");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string png = read_text(path("p.png"));
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(big_endian_u32(png, 8), 13u);  // IHDR's length
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian_u32(png, 16), 640u);
  EXPECT_EQ(big_endian_u32(png, 20), 400u);
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
}

// A K larger than the data fails alone, with its reason in the table; the others are compared.
TEST_F(SelectTest, AKLargerThanTheDataFailsAloneWithItsReasonInTheTable) {
  write("four.csv", "1,2\n3,5\n6,7\n9,8\n");
  const CliRun r =
      emix("select four.csv -k 1..5 --covariance diag --device cpu -o m.json --table t.csv -q");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string table = read_text(path("t.csv"));
  EXPECT_NE(table.find(",best,failed,error\n"), std::string::npos) << table;
  EXPECT_NE(table.find("\n5,diag,-inf,-inf,"), std::string::npos) << table;
  EXPECT_NE(table.find(",false,true,K = 5 is more than the 4 rows\n"), std::string::npos) << table;
  EXPECT_NE(table.find("\n1,diag,"), std::string::npos) << table;
  const CliRun json = emix(
      "select four.csv -k 1..5 --covariance diag --device cpu -o m.json "
      "--table t.json -q");
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_NE(read_text(path("t.json"))
                .find("\"failed\": true, \"error\": \"K = 5 is more than the 4 "
                      "rows\"}"),
            std::string::npos)
      << read_text(path("t.json"));
}

TEST_F(SelectTest, BadArgumentsFailBeforeAnyOutput) {
  expect_failure("select data.npy -k 0..3 -o m.json --table t.csv", {"-k 0..3", "K = 0"});
  expect_failure("select data.npy -k 4..2 -o m.json", {"-k 4..2", "ends before it starts"});
  expect_failure("select data.npy -k 2,x -o m.json", {"-k 2,x", "\"x\" is not a whole number"});
  expect_failure("select data.npy -k 1,2,2 -o m.json", {"K = 2 is given twice"});
  expect_failure("select data.npy -k 1..3 --covariance full,banana -o m.json",
                 {"--covariance full,banana", "\"banana\""});
  expect_failure("select data.npy -k 1..3 --table t.txt -o m.json", {"--table t.txt", ".csv"});
  expect_failure("select data.npy -k 1..3 --reg-covar -1 -o m.json --table t.csv", {"--reg-covar"});
  expect_failure("select data.npy -k 1501..2000 -o m.json --table t.csv",
                 {"K = 1501", "larger than the number of rows (1500)", "data.npy"});
  expect_failure("select missing.npy -k 1..3 -o m.json", {"missing.npy"});
  expect_failure("select data.npy -k 1..3 -o data.npy", {"-o data.npy", "refusing"});
  write("bad.csv", "1,2\n3,nan\n5,6\n7,8\n");
  expect_failure("select bad.csv -k 1..2 -o m.json", {"bad.csv: row 2, column 2 is nan"});
  // The limit on the grid holds over all its ranges together.
  expect_failure("select data.npy -k 1..2500,2501..5000 -o m.json", {"more than 4096 values"});
}

// Every candidate's runs are held until the joint passes end, so the grid's memory is checked as
// a whole, before anything starts: 4,096 full-covariance candidates in D = 200 would need about
// 350 TB (each one alone passes the per-fit check).
TEST_F(SelectTest, AGridTooLargeForMemoryIsRefusedUpFront) {
  ASSERT_EQ(emix("generate --n 5000 --d 200 -k 2 --seed 1 -o wide.npy").code, 0);
  expect_failure("select wide.npy -k 1..4096 --covariance full --device cpu -o m.json",
                 {"select: the grid's 4096 candidates need at least", "use fewer or smaller"});
}

// A note or warning that several candidates share is printed once, naming them, not once a
// candidate. Initialisation on a sample of the rows, as it always is for large data, is a note
// (not a warning), which --quiet hides, in select as in fit.
TEST_F(SelectTest, EachDistinctWarningIsPrintedOnceNamingItsCandidates) {
  // More rows than initialisation samples (131,072): every candidate notes its sample.
  ASSERT_EQ(emix("generate --n 140000 --d 1 -k 2 --seed 5 -o many.npy").code, 0);
  const std::string select =
      "select many.npy -k 1..2 --covariance full,diag --max-iter 3 --seed 1 --device cpu";
  const CliRun r = emix(select);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> sample_notes;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("initialisation used a random sample") != std::string::npos) {
      sample_notes.push_back(line);
    }
  }
  ASSERT_EQ(sample_notes.size(), 1u) << r.err;
  EXPECT_EQ(sample_notes[0].rfind("note: every candidate: ", 0), 0u) << sample_notes[0];
  for (const std::string& command :
       {select + " --quiet",
        std::string("fit many.npy -k 2 --max-iter 3 --device cpu -o m.json -q")}) {
    const CliRun quiet = emix(command);
    ASSERT_EQ(quiet.code, 0) << quiet.err;
    EXPECT_EQ(quiet.err, "") << command;
  }
  const CliRun fit = emix("fit many.npy -k 2 --max-iter 3 --device cpu -o m.json");
  EXPECT_NE(fit.err.find("\nnote: initialisation used a random sample of 131072 of the 140000 "
                         "rows\n"),
            std::string::npos)
      << fit.err;
}

// README: --quiet prints neither the table nor the summary; a warning still prints (a failed
// candidate must not pass unseen), on stderr, as emix fit's do. The README said "prints
// nothing".
TEST_F(SelectTest, QuietHidesTheTableButNotTheWarnings) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += std::to_string(i) + " " + std::to_string(2 * i) + "\n";
  write("line.txt", text);
  const CliRun r = emix(
      "select line.txt -k 1..2 --covariance full,diag --reg-covar 0 --seed 1 --device cpu "
      "--quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("warning: K = 1 full, K = 2 full: failed, and left out of the choice", 0),
            0u)
      << r.err;
  const std::string readme = read_text(fs::path(EMIX_SOURCE_DIR) / "README.md");
  EXPECT_EQ(readme.find("`--quiet` prints nothing"), std::string::npos);
  EXPECT_NE(readme.find("warnings (on stderr) still print"), std::string::npos);
}

// A candidate the data cannot support is reported as failed, with its parameter count and no
// finite log-likelihood, and left out of the choice: rows on a line have a singular full
// covariance without reg_covar (diagonal ones are fine).
TEST_F(SelectTest, AFailedCandidateIsSaidToHaveFailed) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += std::to_string(i) + " " + std::to_string(2 * i) + "\n";
  write("line.txt", text);
  const CliRun r = emix(
      "select line.txt -k 1..2 --covariance full,diag --reg-covar 0 --seed 1 "
      "--device cpu --table t.csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<Row> rows = read_table(path("t.csv"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].failed, "true");
  EXPECT_TRUE(std::isinf(rows[0].mean_log_likelihood) && rows[0].mean_log_likelihood < 0);
  EXPECT_EQ(rows[0].n_parameters, 3 + 2);  // K D (D + 1) / 2 + K D + K - 1
  EXPECT_EQ(rows[0].best, "false");
  EXPECT_EQ(rows[2].failed, "false");
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  // The table's reason is in the program's terms, as its warning on stderr: it said "reg_covar".
  const std::string table = read_text(path("t.csv"));
  EXPECT_NE(table.find("--reg-covar"), std::string::npos) << table;
  EXPECT_EQ(table.find("reg_covar"), std::string::npos) << table;
}

}  // namespace
