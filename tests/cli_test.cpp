// The `emix` program end to end: each test runs the built binary (EMIX_CLI_PATH) in a fresh
// temporary folder and checks its exit code, its messages and the files it leaves behind.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

namespace {

namespace fs = std::filesystem;
using emix::testing::CliRun;
using emix::testing::CliTest;
using emix::testing::read_text;

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_text(path)); }

TEST_F(CliTest, GenerateFitPredictScore) {
  CliRun r = emix("generate --n 2000 --d 3 -k 3 --seed 11 -o data.npy --truth truth.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  ASSERT_EQ(x.rows(), 2000);
  ASSERT_EQ(x.cols(), 3);
  const nlohmann::json truth = read_json(path("truth.json"));
  EXPECT_EQ(truth.at("n_components"), 3);
  EXPECT_EQ(truth.at("n_features"), 3);

  // The same seed gives the same file, byte for byte.
  r = emix("generate --n 2000 --d 3 -k 3 --seed 11 -o again.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text(path("again.npy")), read_text(path("data.npy")));

  r = emix(
      "fit data.npy -k 3 --device cpu --seed 1 -o model.json --labels labels.npy "
      "--responsibilities resp.npy");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("mean log-likelihood"), std::string::npos) << r.err;
  const nlohmann::json model = read_json(path("model.json"));
  EXPECT_EQ(model.at("format"), "emix-model");
  EXPECT_EQ(model.at("n_components"), 3);
  const double fit_mean = model.at("fit").at("mean_log_likelihood").get<double>();
  ASSERT_TRUE(std::isfinite(fit_mean));

  const emix::HostMatrix labels = emix::io::read_matrix(path("labels.npy").string());
  const emix::HostMatrix resp = emix::io::read_matrix(path("resp.npy").string());
  ASSERT_EQ(labels.rows(), 2000);
  ASSERT_EQ(labels.cols(), 1);
  ASSERT_EQ(resp.rows(), 2000);
  ASSERT_EQ(resp.cols(), 3);
  for (std::int64_t n = 0; n < 2000; ++n) {
    double sum = 0;
    int best = 0;
    for (int k = 0; k < 3; ++k) {
      sum += resp.at(n, k);
      if (resp.at(n, k) > resp.at(n, best)) best = k;
    }
    // Responsibilities are normalised in double: 1e-12 is a few hundred ulps of slack.
    ASSERT_NEAR(sum, 1.0, 1e-12) << "row " << n;
    ASSERT_EQ(labels.at(n, 0), best) << "row " << n;
  }

  // predict (and --proba) recompute what fit wrote, with the same engine: identical files.
  r = emix("predict model.json data.npy -o predicted.npy --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text(path("predicted.npy")), read_text(path("labels.npy")));
  r = emix("predict model.json data.npy -o proba.npy --proba --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text(path("proba.npy")), read_text(path("resp.npy")));

  // score prints the mean log-likelihood per row under the written model: the quantity fit
  // reported at its final parameters. The model file holds the parameters to 17 digits and the
  // sum runs in double, so 1e-9 relative is loose for rounding yet catches any real difference.
  r = emix("score model.json data.npy --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  char* end = nullptr;
  const double scored = std::strtod(r.out.c_str(), &end);
  ASSERT_NE(end, r.out.c_str()) << r.out;
  ASSERT_TRUE(std::isfinite(scored));
  EXPECT_NEAR(scored, fit_mean, 1e-9 * std::abs(fit_mean));

  // The data are well separated (means >= 8 apart, covariance eigenvalues <= 2.5), so the fit
  // reaches the maximum-likelihood solution, which scores at least as high as the true model.
  r = emix("score truth.json data.npy --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GE(scored, std::strtod(r.out.c_str(), nullptr) - 1e-12);

  // Only the outputs asked for, and no temporaries.
  EXPECT_EQ(listing(),
            (std::set<std::string>{"again.npy", "data.npy", "labels.npy", "model.json",
                                   "predicted.npy", "proba.npy", "resp.npy", "truth.json"}));
}

TEST_F(CliTest, VersionAndHelp) {
  CliRun r = emix("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("emix 0."), std::string::npos) << r.out;
  r = emix("fit --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--init-model"), std::string::npos) << r.out;
}

// Arguments a user can get wrong are named before anything runs or prints.
TEST_F(CliTest, MistypedCommandsAndOptionsAreNamed) {
  expect_failure("fti data.npy -k 2 -o model.json", {"unknown command 'fti'", "fit, select"});
  generate(20);
  // An option the command lacks is named with the one meant, even where a required one is
  // missing too: CLI11 said "The following arguments were not expected: 2 --n-component", or
  // "--output is required" for a mistyped --max-iter.
  expect_failure("fit data.npy --n-component 2 -o m.json",
                 {"emix fit has no option --n-component: did you mean --n-components? (emix fit "
                  "--help lists the options)"});
  expect_failure("fit data.npy -k 2 --max_iter 5",
                 {"no option --max_iter: did you mean --max-iter?"});
  expect_failure("fit data.npy -k 2 --covariance-type full -o m.json",
                 {"no option --covariance-type: did you mean --covariance?"});
  expect_failure("fit data.npy -k 2 --cov full -o m.json", {"did you mean --covariance?"});
  expect_failure("fit data.npy -k 2 --random-state 1 -o m.json", {"did you mean --seed?"});
  expect_failure("fit data.npy -K 2 -o m.json", {"no option -K: did you mean -k?"});
  expect_failure("select data.npy --kmax 3", {"no option --kmax: did you mean --n-components?"});
  expect_failure("score m.json data.npy -o x", {"emix score has no option -o (emix score --help"});
  expect_failure("fit data.npy -k 2 -k 3 -o m.json",
                 {"--n-components is given 2 times: give it once"});
  // A missing or an extra argument: what the command takes.
  expect_failure("predict data.npy -o p.npy",
                 {"INPUT is required: emix predict MODEL INPUT [options]"});
  expect_failure("fit data.npy extra.csv -k 2 -o m.json",
                 {"extra.csv: emix fit INPUT [options] (emix fit --help lists the options)"});
  expect_failure("fit data.npy -k 2 --map-chunk-rows -5 -o model.json",
                 {"--map-chunk-rows: must be 0 or more, not -5"});
  const CliRun demo = emix("demo --threads 100000");
  EXPECT_EQ(demo.code, 2);
  EXPECT_EQ(demo.out, "");  // nothing printed before the refusal
  // In the flag's words, not the library's ("--threads 100000: n_threads is 100000, ...").
  EXPECT_EQ(demo.err, "emix: error: --threads 100000: must be 0 (OpenMP's default) to 1024\n");
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -o model.json").code, 0);
  write("empty.csv", "");
  expect_failure("score model.json empty.csv", {"empty.csv"});
  // Data and model in each other's place, or select's table given as a model.
  expect_failure("predict data.npy model.json -o p.npy",
                 {"data.npy: a .npy file (data), not a model file; data? a model file is a JSON "
                  "object, as emix fit -o writes it (emix predict and score take MODEL first, "
                  "then INPUT)"});
  write("rows.csv", "a,b\n1,2\n");
  expect_failure("score rows.csv model.json", {"rows.csv: not valid JSON", "take MODEL first"});
  expect_failure("fit model.json -k 2 -o m2.json",
                 {"model.json: a JSON file (a model file?), read as data"});
  ASSERT_EQ(
      emix("select data.npy -k 1..2 --covariance diag --device cpu --table t.json -o b.json").code,
      0);
  expect_failure("score t.json data.npy", {"a table of emix select's candidates (--table)"});
  // An output named for another format than the one written (.npy bytes in l.csv, which the
  // next reader parses as text).
  expect_failure("fit data.npy -k 2 -o m2.json --labels l.csv",
                 {"--labels l.csv: writes a NumPy int32 array; name it .npy"});
  expect_failure("predict model.json data.npy -o p.txt", {"-o p.txt", "name it .npy"});
  expect_failure("fit data.npy -k 2 -o m.npy",
                 {"-o m.npy: writes a JSON model file; name it .json"});
  // A value the option's type cannot hold is named with the kind of value wanted.
  expect_failure("generate --n 1e6 --d 2 -k 2 -o g.npy",
                 {"--n: the value \"1e6\" is not a whole number in decimal digits (INT)"});
  // Whole numbers are decimal: CLI11 alone read 010 as octal 8 and 0x10 as 16.
  expect_failure("generate --n 0x10 --d 2 -k 2 -o g.npy",
                 {"--n: the value \"0x10\" is not a whole number in decimal digits (INT)"});
  ASSERT_EQ(emix("fit data.npy -k 010 --max-iter 08 --tol 0 -o padded.json").code, 0);
  const std::string padded = read_text(path("padded.json"));
  EXPECT_NE(padded.find("\"n_components\": 10"), std::string::npos) << padded;
  EXPECT_NE(padded.find("\"n_iter\": 8"), std::string::npos) << padded;
  expect_failure("fit data.npy -k 99999999999 -o m.json",
                 {"--n-components 99999999999: not a whole number in digits (INT) within the "
                  "option's range"});
  expect_failure("fit data.npy -k 2 --tol abc -o m.json", {"--tol abc: not a number (FLOAT)"});
  // Beyond double's range, CLI11 alone read 1e400 as infinity (refused as "--tol inf") and
  // 1e-400 as 0 (no regularisation, without a word).
  expect_failure("fit data.npy -k 2 --tol 1e400 -o m.json",
                 {"--tol: the value \"1e400\" is beyond the range of a double"});
  expect_failure("select data.npy -k 1..2 --reg-covar 1e-400 -o m.json",
                 {"--reg-covar: the value \"1e-400\" is below the smallest positive double"});
  expect_failure("fit data.npy -k 2 --tol 1e400x -o m.json",
                 {"--tol 1e400x: not a number (FLOAT)"});
  expect_failure("fit data.npy -k 2 --init random --kmeans-iter 3 -o m.json",
                 {"--kmeans-iter applies to --init kmeans++ only"});
  expect_failure("select data.npy -k 1..2 --init random-from-data --kmeans-iter 0",
                 {"--kmeans-iter applies to --init kmeans++ only"});
  // With --init-model the model is the start: --init was ignored, and --n-init 5 ran five
  // identical fits ("best of 5 inits: #1").
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -q -o start.json").code, 0);
  expect_failure("fit data.npy --init-model start.json --init random -o m.json",
                 {"--init random does not apply with --init-model"});
  expect_failure("fit data.npy --init-model start.json --n-init 5 -o m.json",
                 {"--n-init 5 with --init-model: every restart would start from the same model"});
  // The library's sentence names its field; the program's names the flag typed.
  std::string start = read_text(path("start.json"));
  const std::size_t weights = start.find("\"weights\"");
  ASSERT_NE(weights, std::string::npos);
  const std::size_t open = start.find('[', weights), close = start.find(']', open);
  start.replace(open, close - open + 1, "[1.0, 0.0]");
  std::ofstream(path("zero.json")) << start;
  expect_failure("fit data.npy --init-model zero.json --fixed-weights -o m.json",
                 {"--fixed-weights: --fixed-weights keeps the initial weights, and component 1"});
  expect_failure("select data.npy -k 1..2 -o best.csv", {"-o best.csv", "name it .json"});
  // 32 TB: more than any disk this runs on has free, refused before a byte is written.
  expect_failure("generate --n 1000000000000 --d 4 -k 2 -o g.npy",
                 {"-o g.npy: the data need 3.2e+04 GB, more than the", "GB free on the disk"});
  expect_failure("generate --n 5 --d 2 -k 2 -o g.csv",
                 {"-o g.csv: writes a NumPy array; name it .npy"});
  expect_failure("generate --n 5 --d 2 -k 2 -o g.npy --truth t.npy",
                 {"--truth t.npy: writes a JSON model file; name it .json"});
  EXPECT_FALSE(fs::exists(path("m.npy")));
  EXPECT_FALSE(fs::exists(path("g.csv")));
  EXPECT_FALSE(fs::exists(path("g.npy")));
  expect_failure("select data.npy -k 1..2 --plot-width 500", {"--plot-width requires --plot"});
  // generate refuses what cannot apply, as fit does.
  expect_failure("generate --n 5 --d 2 -k 2 --trials 3 -o g.npy",
                 {"--trials applies to binomial mixtures only"});
  expect_failure("generate --n 5 --d 2 -k 2 --family bernoulli --covariance diag -o g.npy",
                 {"--covariance applies to Gaussian mixtures only"});
  expect_failure("select data.npy -k 1..2 --family bernoulli --covariance tied",
                 {"covariance types apply to Gaussian mixtures only"});
  expect_failure("fit data.npy -k 2 --family bernoulli --covariance tied -o b.json",
                 {"--covariance applies to Gaussian mixtures only (the family is bernoulli)"});
}

// CLI11 converts an empty value to 0: `--tol ""` (an unset shell variable) ran a fit with tol
// 0, `--max-iter ""` one of 0 iterations, with exit code 0; `--sample-weight ""` fitted without
// weights. Every option of every command refuses an empty value, naming the option.
TEST_F(CliTest, EmptyValueOfAnOptionIsRefused) {
  generate(20);
  for (const std::string option :
       {"--reg-covar", "--tol", "--prob-epsilon", "--max-iter", "--kmeans-iter", "--threads",
        "--n-init", "--chunk-rows", "--map-chunk-rows", "--dims"}) {
    const std::string type =
        option == "--reg-covar" || option == "--tol" || option == "--prob-epsilon" ? "FLOAT"
                                                                                   : "INT";
    expect_failure("fit data.npy -k 2 -o model.json " + option + " \"\"",
                   {option + ": the value \"\" is not a number (" + type + ")"});
    expect_failure("select data.npy -k 1..2 " + option + " \"\"",
                   {option + ": the value \"\" is not a number (" + type + ")"});
  }
  expect_failure("fit data.npy -k \"\" -o model.json",
                 {"--n-components: the value \"\" is not a number (INT)"});
  expect_failure("fit data.npy -k 2 --seed \"\" -o model.json",
                 {"--seed: the value \"\" is empty"});
  expect_failure("fit data.npy -k 2 --sample-weight \"\" -o model.json",
                 {"--sample-weight: the value \"\" is empty"});
  expect_failure("fit data.npy -k 2 --init-model \"\" -o model.json",
                 {"--init-model: the value \"\" is empty"});
  expect_failure("fit \"\" -k 2 -o model.json", {"INPUT: the value \"\" is empty"});
  expect_failure("select data.npy -k \"\"", {"--n-components: the value \"\" is empty"});
  expect_failure("generate --n \"\" --d 2 -k 2 -o g.npy", {"--n: the value \"\" is not a number"});
  expect_failure("predict model.json data.npy --threads \"\" -o l.npy",
                 {"--threads: the value \"\" is not a number"});
  expect_failure("score model.json data.npy --threads \"\"",
                 {"--threads: the value \"\" is not a number"});
  const CliRun demo = emix("demo --threads \"\"");
  EXPECT_EQ(demo.code, 2);
  EXPECT_NE(demo.err.find("--threads: the value \"\" is not a number"), std::string::npos)
      << demo.err;
}

TEST_F(CliTest, MissingInputFile) {
  expect_failure("fit nothing.npy -k 2 -o model.json --labels labels.npy", {"nothing.npy"});
}

TEST_F(CliTest, ZeroComponents) {
  generate(20);
  expect_failure("fit data.npy -k 0 -o model.json", {"-k 0: must be at least 1"});
}

TEST_F(CliTest, MoreComponentsThanRows) {
  generate(20);
  expect_failure("fit data.npy -k 50 -o model.json --labels labels.npy",
                 {"-k 50 is larger than the number of rows (20) in data.npy"});
  // K from --init-model: the message named a -k that was never given.
  ASSERT_EQ(emix("fit data.npy -k 2 -o two.json").code, 0);
  write("one.csv", "1,2,3\n");
  expect_failure("fit one.csv --init-model two.json -o model.json",
                 {"--init-model two.json has 2 components, more than the number of rows (1) in "
                  "one.csv"});
}

// The initialisation draws K starting points from a sample of at most 131072 rows; -k above it
// was refused as "init_max_rows: init_max_rows is 131072, must be at least n_components", an
// option the program does not have. select's grid stops below the limit.
TEST_F(CliTest, MoreComponentsThanTheInitialisationTakesNamesK) {
  generate(20);
  const std::string limit = std::to_string(emix::FitOptions().init_max_rows);
  expect_failure("fit data.npy -k 131073 -o model.json",
                 {"-k 131073: emix fits at most " + limit + " components"});
  const CliRun r = emix("fit data.npy -k 131073 -o model.json");
  EXPECT_EQ(r.err.find("init_max_rows"), std::string::npos) << r.err;
  expect_failure("select data.npy -k 1,131073", {"-k 1,131073: K = 131073 is outside 1..100000"});
  expect_failure("select data.npy -k 1..99999999999",
                 {"-k 1..99999999999: K = 99999999999 is outside 1..100000"});
}

TEST_F(CliTest, NanInCsvNamesRowAndColumn) {
  write("data.csv", "1,2,3\n4,5,6\n7,8,nan\n10,11,12\n");
  expect_failure("fit data.csv -k 2 -o model.json", {"data.csv", "row 3", "column 3"});
}

TEST_F(CliTest, RaggedCsv) {
  write("data.csv", "1,2,3\n4,5\n7,8,9\n");
  expect_failure("fit data.csv -k 1 -o model.json", {"data.csv", "row 2"});
}

TEST_F(CliTest, BernoulliWithATwo) {
  write("data.txt", "0 1\n1 1\n0 2\n1 0\n");
  expect_failure("fit data.txt -k 2 --family bernoulli -o model.json",
                 {"data.txt: row 3, column 2 is 2, but a Bernoulli mixture needs 0 or 1"});
}

// --prob-epsilon keeps a Bernoulli mixture's probabilities in [eps, 1 - eps] (an all-zero column
// gives eps), as the library's option does; out of (0, 0.5) it is refused by its flag.
TEST_F(CliTest, ProbEpsilonBoundsBernoulliProbabilities) {
  write("data.txt", "0 1\n0 1\n0 0\n0 1\n0 0\n0 1\n");
  ASSERT_EQ(emix("fit data.txt -k 1 --family bernoulli --prob-epsilon 0.05 -o b.json").code, 0);
  const nlohmann::json model = read_json(path("b.json"));
  EXPECT_EQ(model["probabilities"][0][0].get<double>(), 0.05);
  EXPECT_NEAR(model["probabilities"][0][1].get<double>(), 4.0 / 6.0, 1e-15);
  expect_failure("select data.txt -k 1 --family bernoulli --prob-epsilon 0.5",
                 {"--prob-epsilon 0.5: must be in [2^-53 (1.1e-16), 0.5)"});
  // Column 1 is all 0: its clamp to 1 - 2e-17, which is 1, made the log-likelihood NaN. 6e-17
  // is below 2^-53 too, though 1 - 6e-17 rounds below 1.
  for (const char* epsilon : {"2e-17", "6e-17"}) {
    expect_failure(std::string("fit data.txt -k 2 --family bernoulli --prob-epsilon ") + epsilon +
                       " -o b.json",
                   {std::string("--prob-epsilon ") + epsilon + ": must be at least 2^-53"});
  }
  ASSERT_EQ(emix("fit data.txt -k 2 --family bernoulli --prob-epsilon 1.2e-16 -o b.json").code, 0);
}

// An option of another family would be ignored, with exit code 0: refused, as --trials and
// --covariance are.
TEST_F(CliTest, OptionsOfAnotherFamilyAreRefused) {
  write("data.txt", "0 1\n0 1\n0 0\n0 1\n0 0\n0 1\n");
  for (const std::string command : {"fit data.txt -k 1 -o b.json", "select data.txt -k 1..2"}) {
    expect_failure(command + " --family bernoulli --reg-covar 0.5",
                   {"--reg-covar applies to Gaussian mixtures only (the family is bernoulli"});
    expect_failure(command + " --family binomial --trials 2 --reg-covar 0",
                   {"--reg-covar applies to Gaussian mixtures only (the family is binomial"});
    expect_failure(command + " --prob-epsilon 0.1",
                   {"--prob-epsilon applies to Bernoulli and binomial mixtures only"});
  }
  EXPECT_FALSE(fs::exists(path("b.json")));
}

// What the library says of the whole input ("data: ...", "sample weights ...") names the file.
TEST_F(CliTest, WholeInputProblemsNameTheFile) {
  write("data.txt", "1 2\n3 4\n5 7\n");
  write("zero.txt", "0\n0\n0\n");
  expect_failure("fit data.txt -k 1 --sample-weight zero.txt -o model.json",
                 {"zero.txt: the sample weights sum to 0"});
  // The summary's mean is over the weights' sum, and says so (it said "per row").
  write("half.txt", "0.5\n0.5\n0.5\n");
  const CliRun weighted = emix("fit data.txt -k 1 --sample-weight half.txt -o model.json");
  ASSERT_EQ(weighted.code, 0) << weighted.err;
  EXPECT_NE(weighted.err.find("per unit of weight"), std::string::npos) << weighted.err;
  EXPECT_NE(weighted.err.find("over 3 rows, weights summing to 1.5)"), std::string::npos)
      << weighted.err;
  const CliRun selected = emix("select data.txt -k 1 --covariance diag --sample-weight half.txt");
  ASSERT_EQ(selected.code, 0) << selected.err;
  EXPECT_NE(selected.out.find("per unit of weight"), std::string::npos) << selected.out;
  write("raw.bin", std::string(16, '\0'));
  expect_failure("fit raw.bin -k 1 -o model.json", {"raw.bin", "--dtype and --dims"});
  // Raw weights beside raw data: the library's message asked for the --dtype and --dims given.
  write("w.bin", std::string(24, '\0'));
  expect_failure("fit raw.bin --dtype float64 --dims 2 -k 1 --sample-weight w.bin -o model.json",
                 {"--sample-weight w.bin: raw binary weights are not read"});
}

// A model the data's precision cannot take was "model: a covariance is too small for float32
// data (...); use float64 data": the file unnamed, and advice in the library's words.
TEST_F(CliTest, AModelFloat32CannotHoldIsNamedInItsFile) {
  write("tiny.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
            "n_components": 1, "n_features": 2, "weights": [1.0], "means": [[0, 0]],
            "covariances": [[1e-40, 1]]})");
  write("data.csv", "1,2\n3,4\n5,7\n");
  const std::string problem = ": a covariance is too small for float32 data";
  const std::string advice = "; use --precision double";
  expect_failure("score tiny.json data.csv --precision float", {"tiny.json" + problem, advice});
  expect_failure("predict tiny.json data.csv --precision float -o labels.npy",
                 {"tiny.json" + problem, advice});
  expect_failure("fit data.csv --init-model tiny.json --precision float -o model.json",
                 {"--init-model tiny.json" + problem, advice});
  EXPECT_EQ(emix("score tiny.json data.csv").code, 0);  // float64: taken
}

TEST_F(CliTest, BinomialCountAboveTrials) {
  write("data.txt", "0 1\n3 4\n5 2\n");
  expect_failure("fit data.txt -k 2 --family binomial --trials 4 -o model.json",
                 {"data.txt: row 3, column 1 is 5"});
}

TEST_F(CliTest, InitModelWithOtherFeatureCount) {
  generate(100);
  write("init.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
            "n_components": 2, "n_features": 2, "weights": [0.5, 0.5],
            "means": [[0, 0], [1, 1]], "covariances": [[1, 1], [1, 1]]})");
  expect_failure("fit data.npy --init-model init.json -o model.json",
                 {"init.json", "n_features 2", "3 columns"});
}

TEST_F(CliTest, InitModelWeightsNotSummingToOne) {
  generate(100);
  write("init.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
            "n_components": 2, "n_features": 3, "weights": [0.5, 0.6],
            "means": [[0, 0, 0], [1, 1, 1]], "covariances": [[1, 1, 1], [1, 1, 1]]})");
  expect_failure("fit data.npy --init-model init.json -o model.json", {"init.json", "weights"});
}

TEST_F(CliTest, InitModelCovarianceNotPositiveDefinite) {
  generate(100);
  // Eigenvalues of [[1, 2, 0], [2, 1, 0], [0, 0, 1]] are 3, -1 and 1.
  write("init.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "full",
            "n_components": 1, "n_features": 3, "weights": [1], "means": [[0, 0, 0]],
            "covariances": [[[1, 2, 0], [2, 1, 0], [0, 0, 1]]]})");
  expect_failure("fit data.npy --init-model init.json -o model.json",
                 {"init.json", "positive definite"});
}

TEST_F(CliTest, InitModelDisagreeingWithExplicitFlags) {
  generate(100);
  ASSERT_EQ(emix("fit data.npy -k 2 --covariance diag -o init.json --quiet").code, 0);
  expect_failure("fit data.npy --init-model init.json --covariance full -o model.json",
                 {"--covariance full", "diag"});
  expect_failure("fit data.npy --init-model init.json -k 3 -o model.json", {"-k 3"});
  // Flags left out are taken from the init model.
  const CliRun r = emix("fit data.npy --init-model init.json -o model.json --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_json(path("model.json")).at("covariance"), "diag");
}

TEST_F(CliTest, UnknownFamily) {
  generate(20);
  expect_failure("fit data.npy -k 2 --family poisson -o model.json", {"--family", "poisson"});
}

TEST_F(CliTest, PredictWithModelOfOtherShape) {
  generate(100);
  ASSERT_EQ(emix("fit data.npy -k 2 -o model.json --quiet").code, 0);
  write("wide.csv", "1,2,3,4\n5,6,7,8\n");
  expect_failure("predict model.json wide.csv -o labels.npy", {"wide.csv", "4 columns"});
}

// A model the Python package fitted on named columns records them; a header that names the same
// columns in another order was evaluated as it stood (the score of the wrong columns, said
// nothing of), where Python refuses it. Other names are taken in order, with a warning.
TEST_F(CliTest, ColumnsNamedInAnotherOrderThanTheModelsAreRefused) {
  write("named.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
            "n_components": 1, "n_features": 2, "weights": [1], "means": [[0, 10]],
            "covariances": [[1, 1]],
            "estimator": {"class": "GaussianMixture", "feature_names_in": ["a", "b"]}})");
  write("in_order.csv", "a,b\n0.5,10.5\n-0.5,9\n");
  write("swapped.csv", "b,a\n10.5,0.5\n9,-0.5\n");
  write("other.csv", "x,y\n0.5,10.5\n-0.5,9\n");
  write("unnamed.csv", "0.5,10.5\n-0.5,9\n");
  const CliRun right = emix("score named.json in_order.csv");
  ASSERT_EQ(right.code, 0) << right.err;
  expect_failure("score named.json swapped.csv",
                 {"swapped.csv: its header names the columns b, a, and the model (named.json) "
                  "was fitted on a, b: the same names in another order; write the columns in "
                  "the model's order"});
  expect_failure("predict named.json swapped.csv -o labels.npy", {"in another order"});
  const CliRun other = emix("score named.json other.csv");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(other.out, right.out);
  EXPECT_NE(other.err.find("warning: other.csv: its header names the columns x, y, and the model "
                           "(named.json) was fitted on a, b: the columns are taken in their "
                           "order"),
            std::string::npos)
      << other.err;
  const CliRun unnamed = emix("score named.json unnamed.csv");
  ASSERT_EQ(unnamed.code, 0) << unnamed.err;
  EXPECT_EQ(unnamed.out, right.out);
  EXPECT_EQ(unnamed.err.find("warning"), std::string::npos) << unnamed.err;
  // Names that are numbers (pandas' default names, as strings) in another order over counts are
  // read as a row, as binary or count data may begin: a warning, not a refusal.
  write("numbered.json",
        R"({"format": "emix-model", "version": 1, "family": "gaussian", "covariance": "diag",
            "n_components": 1, "n_features": 2, "weights": [1], "means": [[0, 10]],
            "covariances": [[1, 1]], "estimator": {"feature_names_in": ["0", "1"]}})");
  write("numbered.csv", "1,0\n10,1\n9,0\n");
  const CliRun numbered = emix("score numbered.json numbered.csv");
  ASSERT_EQ(numbered.code, 0) << numbered.err;
  EXPECT_NE(numbered.err.find("warning: numbered.csv: line 1 (1, 0) holds the names of the "
                              "features the model (numbered.json) was fitted on, in another "
                              "order, and was read as a row of data: if it is a header, delete it "
                              "and write the columns in the model's order (0, 1)"),
            std::string::npos)
      << numbered.err;
  write("binary.csv", "0,1\n1,1\n");
  EXPECT_EQ(emix("score numbered.json binary.csv").code, 0);
}

TEST_F(CliTest, OutputIntoMissingFolder) {
  generate(20);
  expect_failure("fit data.npy -k 2 -o no/such/model.json", {"no/such"});
  expect_failure("generate --n 10 --d 2 -k 2 -o no/such/data.npy", {"no/such"});
}

TEST_F(CliTest, OutputOverwritingAnInput) {
  generate(20);
  ASSERT_EQ(emix("fit data.npy -k 2 -o model.json --quiet").code, 0);
  const std::string model = read_text(path("model.json"));
  expect_failure("predict model.json data.npy -o ./model.json", {"model.json", "input"});
  expect_failure("fit data.npy -k 2 -o data.npy", {"data.npy", "input"});
  expect_failure("fit data.npy -k 2 -o out.npy --labels out.npy", {"out.npy", "same file"});
  // Outputs not yet written, spelled differently or named through a dangling link.
  expect_failure("fit data.npy -k 2 -o m.json --labels a.npy --responsibilities ./a.npy",
                 {"./a.npy", "--labels a.npy goes to the same file"});
  fs::create_symlink("target.npy", path("link.npy"));
  expect_failure("fit data.npy -k 2 -o m.json --labels link.npy --responsibilities target.npy",
                 {"target.npy", "--labels link.npy goes to the same file"});
  EXPECT_FALSE(fs::exists(path("a.npy")));
  EXPECT_FALSE(fs::exists(path("target.npy")));
  EXPECT_EQ(read_text(path("model.json")), model);
  // A model refined in place: the init model is read whole before the fit, and the new one is
  // renamed over it at the end. Only -o may replace it.
  expect_failure("fit data.npy --init-model model.json -o m2.json --labels model.json",
                 {"model.json", "input"});
  const std::string steps = " --tol 0 --max-iter 3 --quiet";
  ASSERT_EQ(emix("fit data.npy --init-model model.json -o beside.json" + steps).code, 0);
  ASSERT_EQ(emix("fit data.npy --init-model model.json -o model.json" + steps).code, 0);
  const emix::Model in_place = emix::io::read_model(path("model.json"));
  const emix::Model beside = emix::io::read_model(path("beside.json"));
  EXPECT_EQ(in_place.means, beside.means);
  EXPECT_EQ(in_place.covariances, beside.covariances);
  EXPECT_NE(read_text(path("model.json")), model);
}

// "-" is standard input or output, as in most Unix tools: a model fitted from a pipe into a
// pipe equals the one fitted from the file, labels predicted from redirected input equal the
// file's, and each stream is taken once. (A pipe in and a pipe out were once "the same file":
// neither /proc/self/fd link resolves to a path.)
// Started without stderr (2>&-), the first file the program opened took descriptor 2: the
// progress lines went into the model's temporary file, renamed into place with exit status 0.
// Without stdin (<&-), "-" read the program's own output, or hung reading its stdout pipe.
TEST_F(CliTest, ClosedStandardStreamsAreNeverTakenForFiles) {
  generate(200);
  const std::string program = "cd '" + dir_ + "' && '" + EMIX_CLI_PATH + "' ";
  const std::string fit = "fit data.npy -k 2 --device cpu --seed 4 ";
  ASSERT_EQ(std::system((program + fit + "-o m.json --labels l.npy 2>&-").c_str()), 0);
  EXPECT_EQ(nlohmann::json::parse(read_text(path("m.json"))).at("format"), "emix-model");
  EXPECT_EQ(read_text(path("l.npy")).rfind("\x93NUMPY", 0), 0u);
  const std::string err = capture_ + "/closed.txt";
  const auto refused = [&](const std::string& command, const std::string& fragment) {
    SCOPED_TRACE(command);
    const int status = std::system((program + command + " 2> '" + err + "'").c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
    EXPECT_NE(read_text(err).find(fragment), std::string::npos) << read_text(err);
  };
  refused("fit - -k 2 --device cpu -o in.json <&-",
          "INPUT -: standard input is closed (the program was started without it)");
  refused(fit + "-o - >&-", "-o -: standard output is closed");
  EXPECT_FALSE(fs::exists(path("in.json")));
  // A result printed to a closed stdout is lost, and said so (it was printed to /dev/null).
  refused("score m.json data.npy >&-", "standard output:");
}

TEST_F(CliTest, DashIsStandardInputAndOutput) {
  generate(200);
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  std::ostringstream csv;
  csv.precision(17);
  for (std::int64_t n = 0; n < x.rows(); ++n) {
    for (std::int64_t d = 0; d < x.cols(); ++d) csv << (d ? "," : "") << x.at(n, d);
    csv << "\n";
  }
  write("data.csv", csv.str());
  const std::string fit = " -k 2 --device cpu --seed 4 --quiet";
  ASSERT_EQ(emix("fit data.csv -o file.json --labels file.npy" + fit).code, 0);
  const CliRun redirected = emix("fit -" + fit + " -o - < data.csv");
  ASSERT_EQ(redirected.code, 0) << redirected.err;
  const std::string piped_command = "cd '" + dir_ + "' && cat data.csv | '" + EMIX_CLI_PATH +
                                    "' fit -" + fit + " -o - > piped.json";
  ASSERT_EQ(std::system(piped_command.c_str()), 0);
  const nlohmann::json from_file = nlohmann::json::parse(read_text(path("file.json")));
  for (const std::string& text : {redirected.out, read_text(path("piped.json"))}) {
    const nlohmann::json model = nlohmann::json::parse(text);
    EXPECT_EQ(model.at("means"), from_file.at("means"));
    EXPECT_EQ(model.at("covariances"), from_file.at("covariances"));
  }
  ASSERT_EQ(emix("predict file.json - -o labels.npy < data.csv").code, 0);
  EXPECT_EQ(read_text(path("labels.npy")), read_text(path("file.npy")));
  // Standard output is written in place: a shell's >> appends to its file.
  write("log.txt", "before\n");
  const std::string append_command =
      "cd '" + dir_ + "' && '" + EMIX_CLI_PATH + "' fit data.csv" + fit + " -o - >> log.txt";
  ASSERT_EQ(std::system(append_command.c_str()), 0);
  const std::string log = read_text(path("log.txt"));
  ASSERT_EQ(log.rfind("before\n", 0), 0u) << log;
  EXPECT_EQ(nlohmann::json::parse(log.substr(7)).at("means"), from_file.at("means"));
  // select's table goes to stderr when the model goes to stdout.
  const CliRun best = emix("select data.csv -k 1..2 --covariance diag --device cpu --seed 4 -o -");
  ASSERT_EQ(best.code, 0) << best.err;
  EXPECT_EQ(nlohmann::json::parse(best.out).at("format"), "emix-model");
  EXPECT_NE(best.err.find("best by bic"), std::string::npos) << best.err;
  expect_failure("fit -" + fit + " -o - --labels - < data.csv",
                 {"--labels -: standard output is already taken by -o"});
  expect_failure("score - - < file.json", {"INPUT -: standard input is already taken by MODEL"});
}

// --dtype and --dims read a file as headerless raw binary; a .npy read so yielded its header
// as data: exit 0 and a model of garbage whenever its size was a multiple of the row size.
TEST_F(CliTest, NpyFileReadAsRawBinaryIsRefused) {
  generate(20);  // 608 bytes: 152 rows of 4 uint8, or 38 rows of 2 float64
  fs::copy_file(path("data.npy"), path("data.bin"));
  for (const std::string input : {"data.npy", "data.bin"}) {
    expect_failure("fit " + input + " --dtype uint8 --dims 4 -k 2 -o model.json",
                   {input + ": a .npy file (it starts with NumPy's magic bytes), not raw binary",
                    "--dtype and --dims are for raw binary files without a header"});
  }
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -o model.json --quiet").code, 0);
  expect_failure("predict model.json data.npy --dtype float64 --dims 3 -o labels.npy",
                 {"data.npy: a .npy file"});
  // A CSV read as raw binary: its characters became the numbers (means of 52 and 44, the codes
  // of '4' and ',') with exit 0. Its name says it is text.
  write("r.csv", "1,2\n3,4\n5,6\n7,8\n");
  expect_failure("fit r.csv --dtype uint8 --dims 4 -k 1 -o model.json",
                 {"r.csv: named as text (.csv), but --dtype and --dims read raw binary"});
}

// A .bin or .raw file is raw binary by its name; without --dtype the message named the
// library's fields ("ReadOptions::raw_dtype and raw_cols") beside the flags.
TEST_F(CliTest, RawBinaryByItsNameNeedsDtypeAndDims) {
  write("data.bin", std::string(48, '\0'));
  expect_failure("fit data.bin -k 2 -o model.json",
                 {"data.bin: raw binary (by its name, *.bin), which needs --dtype and --dims"});
  EXPECT_EQ(emix("fit data.bin -k 2 -o model.json").err.find("ReadOptions"), std::string::npos);
}

// The library says "max_iter is -1, must be >= 0" and "try a larger max_iter or tol"; the user
// typed --max-iter. Errors and warnings name the flags (errors were "--max-iter: max_iter is
// -1, ...").
TEST_F(CliTest, LibraryMessagesNameTheFlagsTyped) {
  generate(200);
  expect_failure("fit data.npy -k 2 --max-iter -1 -o model.json", {"--max-iter -1: must be >= 0"});
  expect_failure("select data.npy -k 1..2 --n-init 0", {"--n-init 0: must be at least 1"});
  expect_failure("fit data.npy -k 2 --tol nan -o model.json",
                 {"--tol nan: must be a finite number >= 0"});
  const CliRun r = emix("fit data.npy -k 3 --max-iter 1 --tol 1e-12 --device cpu -o m.json -q");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("try a larger --max-iter or --tol"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("max_iter"), std::string::npos) << r.err;
  // A numerical failure's advice too: rows on a line leave a tied covariance singular.
  std::ofstream line(path("line.csv"));
  for (int i = 0; i < 20; ++i) line << i << ',' << 2 * i << '\n';
  line.close();
  expect_failure("fit line.csv -k 2 --covariance tied --reg-covar 0 --device cpu -q -o m.json",
                 {"the tied covariance is singular", "increase --reg-covar"});
}

// A .npy or a PNG written to a terminal garbles it: `-` for a binary output is refused there,
// naming the flag, as gzip refuses; through a pipe it is written as before. script(1) (util-linux,
// in every Debian) gives the command a terminal.
TEST_F(CliTest, BinaryOutputToATerminalIsRefused) {
  if (std::system("script -qec true /dev/null > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "script(1) cannot give a terminal here (not installed, or no pseudo-terminal "
                    "devices): no terminal to run the program on";
  }
  generate(100);
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -q -o model.json").code, 0);
  const auto on_terminal = [&](const std::string& args) {
    const std::string command = "cd '" + dir_ + "' && script -qec \"'" + EMIX_CLI_PATH + "' " +
                                args + "\" /dev/null > '" + capture_ + "/terminal.txt' 2>&1";
    const int status = std::system(command.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(capture_ + "/terminal.txt");
    return r;
  };
  for (const auto& [args, refused] : std::vector<std::pair<std::string, std::string>>{
           {"fit data.npy -k 2 --device cpu -q -o m.json --labels -",
            "--labels -: standard output is a terminal, and this output is .npy (binary)"},
           {"predict model.json data.npy -o -",
            "-o -: standard output is a terminal, and this output is .npy (binary)"},
           {"select data.npy -k 1..2 --device cpu -q --plot -",
            "--plot -: standard output is a terminal, and this output is PNG (binary)"},
           {"generate --n 10 --d 2 -k 2 -o -",
            "-o -: standard output is a terminal, and this output is .npy (binary)"},
           // A path that names the terminal (it went through before).
           {"predict model.json data.npy -o /dev/fd/1",
            "-o /dev/fd/1: names a terminal, and this output is .npy (binary)"},
           {"predict model.json data.npy -o /dev/tty",
            "-o /dev/tty: names a terminal, and this output is .npy (binary)"}}) {
    SCOPED_TRACE(args);
    const CliRun r = on_terminal(args);
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.out.find("emix: error: " + refused), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("NUMPY"), std::string::npos);
  }
  // A model (JSON) is text: it still prints on the terminal.
  const CliRun text = on_terminal("fit data.npy -k 2 --device cpu -q -o -");
  EXPECT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("\"format\": \"emix-model\""), std::string::npos) << text.out;
  // Through a pipe the labels are written.
  const CliRun piped = emix("predict model.json data.npy -o - 2> /dev/null | head -c 6 | od -c");
  EXPECT_NE(piped.out.find("N   U   M   P   Y"), std::string::npos) << piped.out;
}

// Raw binary has no header, so a regular file's rows come from its size; a pipe has none, and
// `cat x.bin | emix fit - --dtype ...` read 0 rows ("-k 2 is larger than the number of rows
// (0)"). A pipe is read to its end and gives the file's model; a partial last row is named.
TEST_F(CliTest, RawBinaryThroughAPipeIsReadToItsEnd) {
  generate(200);
  const emix::HostMatrix x = emix::io::read_matrix(path("data.npy").string());
  std::ofstream(path("data.bin"), std::ios::binary)
      .write(static_cast<const char*>(x.data()),
             static_cast<std::streamsize>(x.rows() * x.cols() * sizeof(double)));
  const std::string fit = " --dtype float64 --dims 3 -k 2 --device cpu --seed 4 --quiet";
  ASSERT_EQ(emix("fit data.bin -o file.json --labels file.npy" + fit).code, 0);
  // `source | emix fit INPUT ...`: the exit code, and the model written to standard output.
  const auto piped = [&](const std::string& source, const std::string& input) {
    const std::string command = "cd '" + dir_ + "' && " + source + " | '" + EMIX_CLI_PATH +
                                "' fit " + input + fit + " -o - 2> '" + capture_ +
                                "/piped.err' > '" + capture_ + "/piped.json'";
    const int status = std::system(command.c_str());
    CliRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_text(capture_ + "/piped.json");
    r.err = read_text(capture_ + "/piped.err");
    return r;
  };
  const nlohmann::json from_file = read_json(path("file.json"));
  for (const std::string input : {"-", "/dev/stdin"}) {
    SCOPED_TRACE(input);
    const CliRun r = piped("cat data.bin", input);
    ASSERT_EQ(r.code, 0) << r.err;
    const nlohmann::json model = nlohmann::json::parse(r.out);
    EXPECT_EQ(model.at("means"), from_file.at("means"));
    EXPECT_EQ(model.at("covariances"), from_file.at("covariances"));
  }
  // Rows 1 to 4 and 4 bytes of row 5.
  const CliRun partial = piped("head -c 100 data.bin", "-");
  EXPECT_EQ(partial.code, 2);
  EXPECT_NE(partial.err.find("/dev/stdin: size 100 bytes is not a multiple of the row size 24 "
                             "bytes (3 columns of float64): it ends inside row 5"),
            std::string::npos)
      << partial.err;
  EXPECT_EQ(partial.out, "");
  // A .npy through a pipe, with a raw dtype, is named as one.
  const CliRun npy = piped("cat data.npy", "-");
  EXPECT_EQ(npy.code, 2);
  EXPECT_NE(npy.err.find("/dev/stdin: a .npy file"), std::string::npos) << npy.err;
}

TEST_F(CliTest, GpuOnMachineWithoutOne) {
  if (emix::gpu_available()) GTEST_SKIP() << "a GPU answers here; the error case cannot occur";
  generate(20);
  expect_failure("fit data.npy -k 2 --device gpu -o model.json",
                 {"--device gpu", emix::gpu_unavailable_reason()});
}

TEST_F(CliTest, DemoPrintsTheSeedsThreeCoinIterates) {
  const CliRun r = emix("demo");
  ASSERT_EQ(r.code, 0) << r.err;
  // theta(1) for the three initial values, to the seed's 4 decimals.
  EXPECT_NE(r.out.find("(0.4619, 0.5346, 0.6561)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(0.5000, 0.6000, 0.6000)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(0.4064, 0.5368, 0.6432)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("identifiable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("s/iteration"), std::string::npos) << r.out;
  EXPECT_TRUE(listing().empty());
}

// Data without rows: predict writes no labels (an empty array, as the library gives none), in
// memory and memory-mapped; a score (a mean over nothing) and a fit are refused, saying so (a fit
// said "-k 1 is larger than the number of rows (0)").
TEST_F(CliTest, DataWithoutRowsHaveNoLabelsAndNoScore) {
  generate(20);
  ASSERT_EQ(emix("fit data.npy -k 2 --device cpu -q -o model.json").code, 0);
  emix::io::write_npy(path("none.npy"), static_cast<const double*>(nullptr), 0, 3);
  for (const std::string map : {"", " --memory-map"}) {
    SCOPED_TRACE(map);
    const CliRun labelled = emix("predict model.json none.npy -q -o labels.npy" + map);
    ASSERT_EQ(labelled.code, 0) << labelled.err;
    const emix::HostMatrix labels = emix::io::read_matrix(path("labels.npy"));
    EXPECT_EQ(labels.rows(), 0);
    ASSERT_EQ(emix("predict model.json none.npy -q --proba -o proba.npy" + map).code, 0);
    const emix::HostMatrix proba = emix::io::read_matrix(path("proba.npy"));
    EXPECT_EQ(proba.rows(), 0);
    EXPECT_EQ(proba.cols(), 2);
  }
  expect_failure("score model.json none.npy", {"none.npy: no rows to score"});
  expect_failure("fit none.npy -k 1 -o m.json", {"none.npy: no rows to fit"});
  expect_failure("select none.npy -k 1..2", {"none.npy: no rows to fit"});
}

}  // namespace

namespace {

// 400 rows: column 1 near the origin, column 2 at `offset` with a spread of about 1.
std::vector<double> far_column(double offset) {
  std::vector<double> x;
  for (int n = 0; n < 400; ++n) {
    x.push_back(0.01 * (n % 97));
    x.push_back(offset + 0.37 * ((n * 7) % 10 - 4.5));
  }
  return x;
}

}  // namespace

// As the Python estimators' dtype='float32' warns: 1e6 + 0.37 k keeps about 0.03 of its spread
// in float32 (its spacing at 1e6 is 0.0625), which the fit cannot recover. Judged from the .npy
// file's own values: a fit in double, data near the origin, whole numbers float32 holds, and a
// file that holds float32 already are not warned of; nor is text, parsed straight into float32.
TEST_F(CliTest, PrecisionFloatWarnsWhereRoundingLosesAColumnsSpread) {
  const auto save = [&](const std::string& name, const std::vector<double>& x) {
    emix::io::write_npy(path(name).string(), x.data(), 400, 2);
  };
  save("far.npy", far_column(1e6));
  CliRun r = emix("fit far.npy -k 1 --device cpu --precision float -o far.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string warning =
      "warning: far.npy: --precision float rounds column 2 (values up to 1e+06, spread ";
  EXPECT_NE(r.err.find(warning), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("use --precision double"), std::string::npos) << r.err;
  const nlohmann::json recorded = read_json(path("far.json")).at("fit").at("warnings");
  ASSERT_EQ(recorded.size(), 1u) << recorded;
  EXPECT_EQ(recorded[0].get<std::string>().rfind("far.npy: --precision float rounds column 2", 0),
            0u);
  // Read through the mapping chunk by chunk, the same.
  r = emix(
      "fit far.npy -k 1 --device cpu --precision float --memory-map --map-chunk-rows 150 "
      "-o mapped.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find(warning), std::string::npos) << r.err;

  std::vector<double> whole = far_column(1e6);
  for (double& v : whole) v = std::round(v);
  save("whole.npy", whole);
  save("near.npy", far_column(3.0));
  const emix::HostMatrix far = emix::io::read_matrix(path("far.npy").string());
  emix::io::write_npy(path("far32.npy").string(), far.converted(emix::DType::kFloat32));
  std::ofstream(path("far.csv")) << "1000000.37,0.5\n1000001.11,0.25\n1000002.3,0.75\n";
  for (const char* quiet : {"fit far.npy -k 1 --device cpu --precision double -o d.json",
                            "fit whole.npy -k 1 --device cpu --precision float -o w.json",
                            "fit near.npy -k 1 --device cpu --precision float -o n.json",
                            "fit far32.npy -k 1 --device cpu --precision float -o f.json",
                            "fit far.csv -k 1 --device cpu --precision float -o t.json"}) {
    r = emix(quiet);
    ASSERT_EQ(r.code, 0) << quiet << ": " << r.err;
    EXPECT_EQ(r.err.find("rounds column"), std::string::npos) << quiet << ": " << r.err;
  }

  // A selection says it once, for all its candidates, and in the best model's file.
  r = emix("select far.npy -k 1..2 --device cpu --precision float -o best.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::size_t first = r.err.find("rounds column 2");
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("rounds column 2", first + 1), std::string::npos) << r.err;
  const nlohmann::json best = read_json(path("best.json")).at("fit").at("warnings");
  EXPECT_NE(best.dump().find("rounds column 2"), std::string::npos) << best;

  // predict and score of such data in float32 are as wrong as a fit of them (at 1e9 every row
  // took one label): they warned of nothing, even where the fit would have.
  ASSERT_EQ(emix("fit far.npy -k 2 --device cpu --precision double -o m.json").code, 0);
  for (const std::string command :
       {"predict m.json far.npy --device cpu --precision float -o labels.npy",
        "predict m.json far.npy --device cpu --precision float --proba -q -o proba.npy",
        "score m.json far.npy --device cpu --precision float",
        "score m.json far.npy --device cpu --precision float --memory-map"}) {
    r = emix(command);
    ASSERT_EQ(r.code, 0) << command << ": " << r.err;
    EXPECT_NE(r.err.find(warning), std::string::npos) << command << ": " << r.err;
    // Not "subtract the column means": the model's means are the data's as they are.
    EXPECT_EQ(r.err.find("subtract"), std::string::npos) << command << ": " << r.err;
  }
  r = emix("score m.json far.npy --device cpu --precision double");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("rounds column"), std::string::npos) << r.err;
}
