// The JSON model file: round trips, the layout other programs read, and every malformed input.
#include <unistd.h>

#include <gtest/gtest.h>

#include "io_test_util.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "emix/model.hpp"

namespace {

using emix::testing::expect_error;
using emix::testing::values_of;

namespace fs = std::filesystem;
using emix::Covariance;
using emix::Family;
using emix::InvalidArgument;
using emix::IoError;
using emix::Model;
namespace io = emix::io;

class ModelFileTest : public emix::testing::TempDirTest {};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Random valid parameters with awkward doubles (no short decimal form), so that a round trip
// that lost a digit would show.
Model random_model(Family family, Covariance covariance, int k, int d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.05, 1.0);
  Model m;
  m.family = family;
  m.covariance = covariance;
  m.n_components = k;
  m.n_features = d;
  double total = 0;
  for (int i = 0; i < k; ++i) {
    m.weights.push_back(unit(rng));
    total += m.weights.back();
  }
  for (double& w : m.weights) w /= total;
  if (family != Family::kGaussian) {
    m.trials = family == Family::kBinomial ? 7 : 1;
    for (int i = 0; i < k * d; ++i) m.probabilities.push_back(unit(rng) * 0.9);
    return m;
  }
  for (int i = 0; i < k * d; ++i) m.means.push_back((unit(rng) - 0.5) * 1e4 / 3.0);
  auto spd = [&](std::vector<double>* out) {
    // A A^T + d I: symmetric positive definite, with exactly symmetric entries.
    std::vector<double> a(static_cast<std::size_t>(d * d));
    for (double& v : a) v = unit(rng) - 0.5;
    for (int r = 0; r < d; ++r) {
      for (int c = 0; c < d; ++c) {
        double s = r == c ? d : 0.0;
        for (int j = 0; j < d; ++j) {
          s += a[static_cast<std::size_t>(r * d + j)] * a[static_cast<std::size_t>(c * d + j)];
        }
        out->push_back(s);
      }
    }
  };
  switch (covariance) {
    case Covariance::kFull:
      for (int i = 0; i < k; ++i) spd(&m.covariances);
      break;
    case Covariance::kTied:
      spd(&m.covariances);
      break;
    case Covariance::kDiag:
      for (int i = 0; i < k * d; ++i) m.covariances.push_back(unit(rng) / 7.0);
      break;
    case Covariance::kSpherical:
      for (int i = 0; i < k; ++i) m.covariances.push_back(unit(rng) / 7.0);
      break;
  }
  return m;
}

// memcmp of an empty vector's data() (which may be null) is undefined behaviour even for 0 bytes.
bool bitwise_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

void expect_same(const Model& a, const Model& b) {
  EXPECT_EQ(a.family, b.family);
  if (a.family == Family::kGaussian) {
    EXPECT_EQ(a.covariance, b.covariance);
  }
  EXPECT_EQ(a.n_components, b.n_components);
  EXPECT_EQ(a.n_features, b.n_features);
  EXPECT_EQ(a.trials, b.trials);
  EXPECT_TRUE(bitwise_equal(a.weights, b.weights));
  EXPECT_TRUE(bitwise_equal(a.means, b.means));
  EXPECT_TRUE(bitwise_equal(a.covariances, b.covariances));
  EXPECT_TRUE(bitwise_equal(a.probabilities, b.probabilities));
}

TEST_F(ModelFileTest, RoundTripIsBitwiseForEveryFamilyAndCovariance) {
  struct Case {
    Family family;
    Covariance covariance;
  };
  const Case cases[] = {
      {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
      {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
      {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull}};
  std::uint64_t seed = 1;
  for (const Case& c : cases) {
    for (const auto& [k, d] : {std::pair{1, 1}, std::pair{3, 4}, std::pair{2, 5}}) {
      SCOPED_TRACE(std::string(emix::to_string(c.family)) + " " + emix::to_string(c.covariance) +
                   " k=" + std::to_string(k) + " d=" + std::to_string(d) +
                   " seed=" + std::to_string(seed));
      const Model m = random_model(c.family, c.covariance, k, d, seed++);
      io::write_model(path("m.json"), m);
      expect_same(io::read_model(path("m.json")), m);
    }
  }
  // Values whose shortest decimal forms are long, tiny or huge.
  Model m = random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 99);
  m.means = {0.1,
             1.0 / 3.0,
             -std::numeric_limits<double>::denorm_min(),
             std::numeric_limits<double>::max(),
             -0.0,
             123456789.123456789};
  io::write_model(path("m.json"), m);
  expect_same(io::read_model(path("m.json")), m);
  EXPECT_EQ(entries(), std::vector<std::string>{"m.json"});
}

// The "estimator" section (the Python package's class, parameters and feature names) is kept as
// written and read back whole; a file without one reads as empty; text that is not JSON is
// refused before anything is written, and other JSON (a file's, as read) is written as it is.
TEST_F(ModelFileTest, TheEstimatorSectionIsKeptForItsReader) {
  const Model m = random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 7);
  const std::string section =
      R"({"class":"GaussianMixture","feature_names_in":["a","b","c"],"params":{"tol":1e-05}})";
  io::write_model(path("m.json"), m, nullptr, section);
  std::string fit = "stale", estimator;
  expect_same(io::read_model(path("m.json"), &fit, &estimator), m);
  EXPECT_EQ(fit, "");
  EXPECT_EQ(estimator, section);
  io::write_model(path("bare.json"), m);
  io::read_model(path("bare.json"), &fit, &estimator);
  EXPECT_EQ(estimator, "");
  for (const std::string bad : {"{\"class\": ", "[1, 2", "nul"}) {
    EXPECT_THROW(io::write_model(path("bad.json"), m, nullptr, bad), emix::InvalidArgument) << bad;
  }
  EXPECT_EQ(entries(), (std::vector<std::string>{"bare.json", "m.json"}));
  for (const std::string other : {"[1,2]", "3", "null"}) {
    io::write_model(path("other.json"), m, nullptr, other);
    io::read_model(path("other.json"), &fit, &estimator);
    EXPECT_EQ(estimator, other);
  }
}

TEST_F(ModelFileTest, LayoutIsTheDocumentedOne) {
  Model m = random_model(Family::kGaussian, Covariance::kFull, 2, 3, 5);
  emix::FitReport report;
  report.log_likelihood = -1234.5;
  report.mean_log_likelihood = -1.2345;
  report.history = {-2000, -1500.25, -1234.5};
  report.n_iter = 2;
  report.converged = true;
  report.best_init = 1;
  report.engine = "cpu (2 threads)";
  report.precision = "float64";
  report.seconds = 0.25;
  report.warnings = {"component 1 was re-seeded at iteration 3", "a \"quoted\", warning"};
  io::write_model(path("g.json"), m, &report);

  const std::string text = read_text(path("g.json"));
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["format"], "emix-model");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["family"], "gaussian");
  EXPECT_EQ(j["covariance"], "full");
  EXPECT_EQ(j["n_components"], 2);
  EXPECT_EQ(j["n_features"], 3);
  ASSERT_EQ(j["weights"].size(), 2u);
  ASSERT_EQ(j["means"].size(), 2u);
  ASSERT_EQ(j["means"][1].size(), 3u);
  EXPECT_EQ(j["means"][1][2].get<double>(), m.means[5]);
  ASSERT_EQ(j["covariances"].size(), 2u);
  ASSERT_EQ(j["covariances"][1].size(), 3u);
  ASSERT_EQ(j["covariances"][1][2].size(), 3u);
  EXPECT_EQ(j["covariances"][1][2][0].get<double>(), m.covariances[9 + 6]);
  EXPECT_FALSE(j.contains("probabilities"));
  EXPECT_FALSE(j.contains("trials"));
  const auto& fit = j["fit"];
  EXPECT_EQ(fit["log_likelihood"], -1234.5);
  EXPECT_EQ(fit["mean_log_likelihood"], -1.2345);
  EXPECT_EQ(fit["history"], nlohmann::json({-2000.0, -1500.25, -1234.5}));
  EXPECT_EQ(fit["n_iter"], 2);
  EXPECT_EQ(fit["converged"], true);
  EXPECT_EQ(fit["engine"], "cpu (2 threads)");
  EXPECT_EQ(fit["precision"], "float64");
  EXPECT_EQ(fit["seconds"], 0.25);
  EXPECT_EQ(fit["warnings"][1], "a \"quoted\", warning");
  EXPECT_EQ(fit["best_init"], 1);
  // Keys in the documented order, and each row of a matrix on one line.
  EXPECT_LT(text.find("\"format\""), text.find("\"version\""));
  EXPECT_LT(text.find("\"weights\""), text.find("\"means\""));
  EXPECT_LT(text.find("\"covariances\""), text.find("\"fit\""));
  EXPECT_EQ(text.back(), '\n');
  // The fit section is ignored on reading.
  expect_same(io::read_model(path("g.json")), m);

  const Model b = random_model(Family::kBinomial, Covariance::kFull, 2, 2, 6);
  io::write_model(path("b.json"), b);
  const auto jb = nlohmann::json::parse(read_text(path("b.json")));
  EXPECT_EQ(jb["family"], "binomial");
  EXPECT_EQ(jb["trials"], 7);
  EXPECT_FALSE(jb.contains("covariance"));
  EXPECT_FALSE(jb.contains("means"));
  EXPECT_FALSE(jb.contains("fit"));
  EXPECT_EQ(jb["probabilities"].size(), 2u);
  const Model c = random_model(Family::kBernoulli, Covariance::kFull, 2, 1, 7);
  io::write_model(path("c.json"), c);
  EXPECT_EQ(nlohmann::json::parse(read_text(path("c.json")))["trials"], 1);
}

TEST_F(ModelFileTest, InitModelNeedsOnlyTheParameters) {
  const std::string p = file("init.json", R"({
    "family": "gaussian", "covariance": "spherical",
    "weights": [0.25, 0.75],
    "means": [[0, 1, 2], [3, 4, 5]],
    "covariances": [1, 2]
  })");
  const Model m = io::read_model(p);
  EXPECT_EQ(m.n_components, 2);
  EXPECT_EQ(m.n_features, 3);
  EXPECT_EQ(m.covariance, Covariance::kSpherical);
  EXPECT_EQ(m.means, (std::vector<double>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(m.covariances, (std::vector<double>{1, 2}));

  // The seed's three-coin model: pi, p, q as a two-component Bernoulli mixture with D = 1.
  const std::string coin = file("coin.json", R"({"family": "bernoulli",
    "weights": [0.46, 0.54], "probabilities": [[0.55], [0.67]]})");
  const Model c = io::read_model(coin);
  EXPECT_EQ(c.family, Family::kBernoulli);
  EXPECT_EQ(c.n_components, 2);
  EXPECT_EQ(c.n_features, 1);
  EXPECT_EQ(c.trials, 1);
  EXPECT_EQ(c.probabilities, (std::vector<double>{0.55, 0.67}));

  const std::string tied = file("tied.json", R"({"family": "gaussian", "covariance": "tied",
    "n_components": 1, "n_features": 2, "weights": [1],
    "means": [[0, 0]], "covariances": [[2, 0.5], [0.5, 1]]})");
  EXPECT_EQ(io::read_model(tied).covariances, (std::vector<double>{2, 0.5, 0.5, 1}));
}

TEST_F(ModelFileTest, MalformedFilesNameTheKeyAndTheFile) {
  const std::string missing = path("missing.json");
  expect_error<IoError>([&] { io::read_model(missing); },
                        missing + ": cannot open: No such file or directory");

  const std::string bad = file("bad.json", "{\"family\": \"gaussian\",\n \"weights\": [1,]}");
  expect_error<IoError>([&] { io::read_model(bad); },
                        bad + ": not valid JSON: line 2, column 16, in 'weights'[1]: syntax error");
  // The token read is escaped as every excerpt is ("\n"), not as nlohmann writes it
  // ("<U+000A>").
  const std::string broken =
      file("broken.json", "{\"family\": \"gaussian\",\n \"weights\": [1,\n\t]}");
  expect_error<IoError>([&] { io::read_model(broken); }, "; last read: '1,\\n\\t]'");

  // nlohmann's lexer ends its input at a NUL byte: what followed one was never read. NUL bytes
  // that end the file (padding) are its end.
  const std::string valid = R"({"family": "gaussian", "covariance": "diag", "weights": [1],
    "means": [[0]], "covariances": [[1]]})";
  EXPECT_NO_THROW(io::read_model(file("padded.json", valid + std::string(3, '\0') + "\n")));
  const std::string nul = file("nul.json", valid + std::string(1, '\0') + "not JSON {");
  expect_error<IoError>([&] { io::read_model(nul); },
                        nul + ": not valid JSON: line 2, column 42: a NUL byte");

  const std::string twice = file("twice.json", R"({"family": "gaussian", "covariance": "diag",
    "weights": [1], "means": [[0]], "covariances": [[1]], "means": [[5]]})");
  expect_error<IoError>([&] { io::read_model(twice); },
                        twice + ": 'means' is given twice; a model file names each field once");

  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"([1, 2])", "the top level is an array, expected an object"},
      {R"({"covariance": "diag", "weights": [1], "means": [[0]], "covariances": [[1]]})",
       "missing key 'family'"},
      {R"({"family": 3, "covariance": "diag", "weights": [1], "means": [[0]], "covariances": [[1]]})",
       "'family' is the number 3, expected a string"},
      {R"({"family": "gaussian", "weights": [1], "means": [[0]], "covariances": [[1]]})",
       "missing key 'covariance'"},
      {R"({"family": "gaussian", "covariance": "diag", "means": [[0]], "covariances": [[1]]})",
       "missing key 'weights'"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": [1], "covariances": [[1]]})",
       "missing key 'means'"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": [1], "means": [[0]]})",
       "missing key 'covariances'"},
      {R"({"family": "gaussian", "covariance": "diag", "n_components": 2,
           "weights": [0.5, 0.5], "means": [[0, 1], [2, 3], [4, 5]], "covariances": [[1, 1], [1, 1]]})",
       "'means' has 3 rows, expected n_components = 2"},
      {R"({"family": "gaussian", "covariance": "diag", "n_components": 2, "n_features": 2,
           "weights": [0.5, 0.5], "means": [[0, 1], [2, 3, 4]], "covariances": [[1, 1], [1, 1]]})",
       "'means'[1] has 3 values, expected n_features = 2"},
      {R"({"family": "gaussian", "covariance": "diag", "n_components": 3,
           "weights": [0.5, 0.5], "means": [[0, 1], [2, 3]], "covariances": [[1, 1], [1, 1]]})",
       "'weights' has 2 values, expected n_components = 3"},
      {R"({"family": "gaussian", "covariance": "diag",
           "weights": [0.5, "0.5"], "means": [[0, 1], [2, 3]], "covariances": [[1, 1], [1, 1]]})",
       "'weights'[1] is the string '0.5', expected a number"},
      {R"({"family": "gaussian", "covariance": "diag",
           "weights": [0.5, 0.5], "means": [[0, 1], [2, null]], "covariances": [[1, 1], [1, 1]]})",
       "'means'[1][1] is null, expected a number"},
      {R"({"family": "gaussian", "covariance": "diag",
           "weights": [0.5, 0.5], "means": [[0, 1], [2, 3]], "covariances": [1, 1]})",
       "'covariances'[0] is the number 1, expected an array of 2 numbers (n_features)"},
      {R"({"family": "gaussian", "covariance": "full",
           "weights": [0.5, 0.5], "means": [[0, 1], [2, 3]], "covariances": [[[1, 0], [0, 1]]]})",
       "'covariances' has 1 matrices, expected n_components = 2"},
      {R"({"family": "gaussian", "covariance": "full",
           "weights": [1], "means": [[0, 1]], "covariances": [[[1, 0], [0, 1, 2]]]})",
       "'covariances'[0][1] has 3 values, expected n_features = 2"},
      {R"({"family": "gaussian", "covariance": "tied",
           "weights": [1], "means": [[0, 1]], "covariances": [[1, 0]]})",
       "'covariances' has 1 rows, expected n_features = 2"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": {"a": 1},
           "means": [[0]], "covariances": [[1]]})",
       "'weights' is an object, expected an array of numbers"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": [],
           "means": [[0]], "covariances": [[1]]})",
       "'weights' is empty"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": [1],
           "means": [0], "covariances": [[1]]})",
       "cannot tell the number of features: give 'n_features', or 'means' as an array of rows"},
      {R"({"family": "gaussian", "covariance": "diag", "n_components": 0, "weights": [1],
           "means": [[0]], "covariances": [[1]]})",
       "'n_components' is 0, expected an integer from 1 to 2147483647"},
      {R"({"family": "gaussian", "covariance": "diag", "n_features": 1.5, "weights": [1],
           "means": [[0]], "covariances": [[1]]})",
       "'n_features' is the number 1.5, expected an integer"},
      {R"({"format": "something-else", "family": "bernoulli", "weights": [1],
           "probabilities": [[0.5]]})",
       "'format' is the string 'something-else', expected \"emix-model\""},
      {R"({"format": "emix-model", "version": 2, "family": "bernoulli", "weights": [1],
           "probabilities": [[0.5]]})",
       "unsupported model version 2 (this emix reads version 1)"},
      {R"({"family": "binomial", "weights": [1], "probabilities": [[0.5]]})",
       "missing key 'trials'"},
      {R"({"family": "binomial", "trials": -2, "weights": [1], "probabilities": [[0.5]]})",
       "'trials' is -2, expected an integer from 1 to 2147483647"},
      {R"({"family": "bernoulli", "trials": 3, "weights": [1], "probabilities": [[0.5]]})",
       "'trials' is 3 but a bernoulli model has 1 trial per entry"},
      {R"({"family": "bernoulli", "weights": [1], "means": [[0.5]]})",
       "'means' belongs to Gaussian models, not a bernoulli one"},
      {R"({"family": "bernoulli", "covariance": "diag", "weights": [1], "probabilities": [[0.5]]})",
       "'covariance' belongs to Gaussian models, not a bernoulli one"},
      {R"({"family": "gaussian", "covariance": "diag", "weights": [1], "means": [[0]],
           "covariances": [[1]], "probabilities": [[0.5]]})",
       "'probabilities' belongs to Bernoulli and binomial models, not a gaussian one"},
  };
  for (const Case& c : cases) {
    const std::string p = file("model.json", c.json);
    expect_error<IoError>([&] { io::read_model(p); }, p + ": " + c.message);
  }
  // The other kind's keys at the values the C API reports for a model of this kind are read.
  const Model bernoulli = io::read_model(file("b.json", R"({"family": "bernoulli",
    "covariance": "full", "weights": [1], "probabilities": [[0.5]]})"));
  EXPECT_EQ(bernoulli.probabilities, std::vector<double>{0.5});
  const Model gaussian = io::read_model(file("g.json", R"({"family": "gaussian", "trials": 1,
    "covariance": "diag", "weights": [1], "means": [[0]], "covariances": [[2]]})"));
  EXPECT_EQ(gaussian.covariances, std::vector<double>{2});
}

TEST_F(ModelFileTest, InvalidValuesAreRejectedNamingTheFile) {
  // Parsing succeeds; Model::validate() objects, and its message gets the file name.
  const std::string sum = file("sum.json", R"({"family": "bernoulli", "weights": [0.2, 0.3],
    "probabilities": [[0.5], [0.5]]})");
  expect_error<InvalidArgument>([&] { io::read_model(sum); }, sum + ": ");
  expect_error<InvalidArgument>([&] { io::read_model(sum); }, "weights");
  const std::string spd = file("spd.json", R"({"family": "gaussian", "covariance": "full",
    "weights": [1], "means": [[0, 0]], "covariances": [[[1, 2], [2, 1]]]})");
  expect_error<InvalidArgument>([&] { io::read_model(spd); }, spd + ": ");
  expect_error<InvalidArgument>([&] { io::read_model(spd); }, "positive definite");
  const std::string family = file("family.json", R"({"family": "poisson", "weights": [1]})");
  expect_error<InvalidArgument>([&] { io::read_model(family); }, family + ": 'family': ");
  expect_error<InvalidArgument>([&] { io::read_model(family); }, "poisson");
  const std::string cov = file("cov.json", R"({"family": "gaussian", "covariance": "banded",
    "weights": [1], "means": [[0]], "covariances": [[1]]})");
  expect_error<InvalidArgument>([&] { io::read_model(cov); }, cov + ": 'covariance': ");
  expect_error<InvalidArgument>([&] { io::read_model(cov); }, "banded");
}

TEST_F(ModelFileTest, FailedWritesLeaveTheOldFileOrNothing) {
  const Model good = random_model(Family::kGaussian, Covariance::kDiag, 2, 2, 3);
  io::write_model(path("m.json"), good);
  const std::string before = read_text(path("m.json"));

  Model nan = good;
  nan.means[3] = std::numeric_limits<double>::quiet_NaN();
  expect_error<InvalidArgument>(
      [&] { io::write_model(path("m.json"), nan); },
      path("m.json") + ": cannot write the model: 'means' element 3 is nan");
  Model short_means = good;
  short_means.means.pop_back();
  expect_error<InvalidArgument>(
      [&] { io::write_model(path("m.json"), short_means); },
      path("m.json") +
          ": cannot write the model: 'means' has 3 values, expected n_components x n_features = 4");
  // A model read_model would refuse (a singular covariance, as emix_maximize gives a component
  // that collapsed without reg_covar) is not written either.
  Model singular = random_model(Family::kGaussian, Covariance::kFull, 2, 2, 3);
  for (int i = 0; i < 4; ++i) singular.covariances[i] = 1.0;
  expect_error<InvalidArgument>([&] { io::write_model(path("m.json"), singular); },
                                "is not positive definite");
  EXPECT_EQ(read_text(path("m.json")), before);

  const std::string target = path("no/dir/m.json");
  expect_error<IoError>([&] { io::write_model(target, good); }, target + ": cannot write");
  EXPECT_EQ(entries(), std::vector<std::string>{"m.json"});
}

// Old: 100,000 deep crashed (SIGSEGV in dump() while the message was built); 20,000 deep gave a
// 40 KB message.
TEST_F(ModelFileTest, DeepNestingIsRefusedWhileParsing) {
  for (const std::size_t depth : {100000u, 20000u, 33u}) {
    const std::string p = file("deep.json", std::string(depth, '[') + std::string(depth, ']'));
    expect_error<IoError>([&] { io::read_model(p); },
                          p + ": arrays and objects nested more than 32 deep, in [0][0]");
    try {
      io::read_model(p);
    } catch (const IoError& e) {
      EXPECT_LT(std::string(e.what()).size(), 400u);
    }
  }
  // Inside a key: the path names it.
  const std::string k = file("k.json", "{\"means\": " + std::string(40, '[') + "]}");
  expect_error<IoError>([&] { io::read_model(k); },
                        k + ": arrays and objects nested more than 32 deep, in 'means'[0][0]");
  // 32 deep is still parsed (and then rejected for what it holds, not how deep it is).
  const std::string ok = file("ok.json", std::string(32, '[') + std::string(32, ']'));
  expect_error<IoError>([&] { io::read_model(ok); }, "the top level is an array");
}

// Old: exit 1 with "[json.exception.out_of_range.406] number overflow parsing '1e400'", naming
// neither the file nor the field.
TEST_F(ModelFileTest, NumbersBeyondDoubleNameFileLineAndField) {
  const std::string p = file("big.json", "{\"weights\": [1],\n \"covariances\": [[1, -1e400]]}");
  expect_error<IoError>([&] { io::read_model(p); },
                        p + ": line 2, column 27, in 'covariances'[0][1]: the number '-1e400' is "
                            "out of the range of a double");
  const std::string digits = file("d.json", "{\"weights\": [1" + std::string(400, '0') + "]}");
  expect_error<IoError>([&] { io::read_model(digits); },
                        "in 'weights'[0]: the number '1000000000000000000000000000000000000000...' "
                        "(401 bytes) is out of the range of a double");
}

// Old: a 20 MB string in a model made a 20 MB error line, control bytes and NULs included.
TEST_F(ModelFileTest, StringsAndTokensAreQuotedAsShortExcerpts) {
  const std::string p =
      file("s.json", "{\"family\": \"" + std::string(20000000, 'f') + "\\u0000\\u001b\"}");
  try {
    io::read_model(p);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(std::string(e.what()),
              p + ": 'family': unknown family 'ffffffffffffffffffffffffffffffffffffffff...' "
                  "(20000002 bytes) (expected one of: gaussian, bernoulli, binomial)");
  }
  const std::string garbage = file("g.json", "{\"a\": tru" + std::string(1000000, 'e') + "}");
  try {
    io::read_model(garbage);
    ADD_FAILURE() << "no exception";
  } catch (const IoError& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u) << e.what();
    EXPECT_NE(std::string(e.what()).find(garbage + ": not valid JSON: line 1, column "),
              std::string::npos)
        << e.what();
  }
  const std::string version = file("v.json", "{\"version\": \"" + std::string(100000, 'v') + "\"}");
  expect_error<IoError>(
      [&] { io::read_model(version); },
      "unsupported model version the string 'vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
      "...' (100000 bytes)");
}

// Old: 2147483647 x the element size was reserved before the arrays were compared with it.
TEST_F(ModelFileTest, ArraysAreCheckedAgainstHugeClaimedShapesWithoutReserving) {
  const std::string p = file("w.json", R"({"family": "gaussian", "covariance": "full",
    "n_components": 2147483647, "n_features": 2147483647, "weights": [1], "means": [[0]],
    "covariances": [[[1]]]})");
  expect_error<IoError>([&] { io::read_model(p); },
                        p + ": 'weights' has 1 values, expected n_components = 2147483647");
}

// The same model written and read through a symbolic link: the link stays.
TEST_F(ModelFileTest, WritingThroughALinkKeepsTheLink) {
  const Model m = random_model(Family::kGaussian, Covariance::kTied, 2, 3, 5);
  std::filesystem::create_symlink("target.json", dir_ / "link.json");
  io::write_model(path("link.json"), m);
  EXPECT_TRUE(std::filesystem::is_symlink(dir_ / "link.json"));
  expect_same(io::read_model(path("target.json")), m);
}

// The column names the program checks INPUT's header against: the Python package's
// feature_names_in_, or none where the section records none or is no JSON it reads (the section
// is a record read_model ignores, so nothing throws).
TEST(EstimatorSection, FeatureNamesAreReadOrNone) {
  EXPECT_EQ(io::estimator_feature_names(R"({"class": "X", "feature_names_in": ["a", "b c"]})"),
            (std::vector<std::string>{"a", "b c"}));
  for (const char* section : {"", "[]", "{", R"({"class": "X"})", R"({"feature_names_in": "a"})",
                              R"({"feature_names_in": ["a", 1]})"}) {
    EXPECT_TRUE(io::estimator_feature_names(section).empty()) << section;
  }
}

}  // namespace
