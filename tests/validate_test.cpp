// The library's argument checks (src/core/validate.cpp) on the cases a reliability probe found
// passing and then failing later: tiny variances, absurd option values, fits larger than the
// machine, NaN answers, and messages that copy unbounded input.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <Eigen/Core>

#include "core/evaluation.hpp"
#include "core/initialize.hpp"
#include "core/prepared_model.hpp"
#include "core/validate.hpp"
#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::DataError;
using emix::Family;
using emix::InvalidArgument;
using emix::Model;
using emix::OptionError;

template <typename E, typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

Model diag_model(double variance) {
  Model m;
  m.family = Family::kGaussian;
  m.covariance = Covariance::kDiag;
  m.n_components = 1;
  m.n_features = 2;
  m.weights = {1};
  m.means = {0, 0};
  m.covariances = {variance, 1};
  return m;
}

// Old: 5e-324 passed (it is > 0); every density was then NaN.
TEST(ModelValidation, VarianceWhoseInverseOverflowsIsRejected) {
  EXPECT_EQ(
      error_of<InvalidArgument>([] { diag_model(5e-324).validate(); }),
      "model: covariances[0][0] is 5e-324, too small: 1 / variance overflows double precision "
      "(variances must be at least 2.2250738585072014e-308)");
  diag_model(DBL_MIN).validate();  // the smallest normal double is still invertible
  // Named as the file nests them (it said covariances[3] for component 1's feature 1).
  Model two = diag_model(1);
  two.n_components = 2;
  two.weights = {0.5, 0.5};
  two.means = {0, 0, 1, 1};
  two.covariances = {1, 1, 1, -1};
  EXPECT_EQ(error_of<InvalidArgument>([&] { two.validate(); }),
            "model: covariances[1][1] is -1 (variances must be positive)");
  two.covariance = Covariance::kSpherical;
  two.covariances = {1, 0};
  EXPECT_EQ(error_of<InvalidArgument>([&] { two.validate(); }),
            "model: covariances[1] is 0 (variances must be positive)");

  // A full covariance whose inverse overflows although its Cholesky factor exists.
  Model full;
  full.family = Family::kGaussian;
  full.covariance = Covariance::kFull;
  full.n_components = 1;
  full.n_features = 2;
  full.weights = {1};
  full.means = {0, 0};
  full.covariances = {1e-310, 0, 0, 1e-310};  // factor 1e-155 exists; the inverse is 1e310
  EXPECT_EQ(error_of<InvalidArgument>([&] { full.validate(); }),
            "model: covariance 0 is too close to singular: its inverse overflows double "
            "precision");
  full.covariances = {1e-300, 0, 0, 1e-300};
  full.validate();
}

// A variance fine in double but whose inverse float32 cannot hold: the float32 E-step would
// compute with inf.
TEST(ModelValidation, PrecisionBeyondFloat32IsRejectedForFloat32Data) {
  const Model m = diag_model(1e-39);
  const std::vector<float> x32 = {0, 0, 1, 1};
  const std::vector<double> x64 = {0, 0, 1, 1};
  const emix::CheckedModel checked = emix::validate_and_prepare(m, 1);
  const std::string message = error_of<InvalidArgument>([&] {
    emix::validate_checked_model_for_data(m, checked, emix::DataView::host(x32.data(), 2, 2));
  });
  EXPECT_EQ(message.rfind("model: a covariance is too small for float32 data (an entry of its "
                          "inverse is 1.0000000000000001e+39, beyond float32's range); use "
                          "float64 data",
                          0),
            0u)
      << message;
  emix::validate_checked_model_for_data(m, checked, emix::DataView::host(x64.data(), 2, 2));
}

// validate_and_prepare lets prepare's factorisation stand for Model::validate's: the same
// errors, word for word, and the prepared model prepare() gives, bitwise, on any thread count.
TEST(ModelValidation, OneFactorisationChecksAndPreparesAsTheTwoDid) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  const int d = 150;  // wide enough that the factors' panels run on threads
  for (const Covariance c : {Covariance::kFull, Covariance::kTied}) {
    Model m;
    m.covariance = c;
    m.n_components = 3;
    m.n_features = d;
    m.weights = {0.2, 0.3, 0.5};
    for (int i = 0; i < 3 * d; ++i) m.means.push_back(normal(rng));
    const int blocks = c == Covariance::kTied ? 1 : 3;
    for (int b = 0; b < blocks; ++b) {
      Eigen::MatrixXd a = Eigen::MatrixXd::NullaryExpr(d, d, [&] { return normal(rng); });
      const Eigen::MatrixXd spd = a * a.transpose() / d + Eigen::MatrixXd::Identity(d, d);
      for (int i = 0; i < d * d; ++i) m.covariances.push_back(spd.data()[i]);
    }
    const emix::PreparedModel expected = emix::prepare(m);
    for (const int threads : {1, 2}) {
      const emix::CheckedModel checked = emix::validate_and_prepare(m, threads);
      EXPECT_EQ(checked.prepared.prec_chol, expected.prec_chol);
      EXPECT_EQ(checked.prepared.mean_prec, expected.mean_prec);
      EXPECT_EQ(checked.prepared.log_norm, expected.log_norm);
      EXPECT_EQ(checked.prepared.log_weights, expected.log_weights);
      EXPECT_GT(checked.largest_precision, 0);
    }
    // Broken the three ways Model::validate names, in the last block (component 2 or tied).
    const std::size_t last = static_cast<std::size_t>(blocks - 1) * d * d;
    const auto same_error = [&](const Model& broken) {
      const std::string expected_message = error_of<InvalidArgument>([&] { broken.validate(); });
      EXPECT_EQ(error_of<InvalidArgument>([&] { emix::validate_and_prepare(broken, 2); }),
                expected_message);
      return expected_message;
    };
    Model indefinite = m;
    indefinite.covariances[last] = -1;
    EXPECT_NE(same_error(indefinite).find("is not positive definite"), std::string::npos);
    Model asymmetric = m;
    asymmetric.covariances[last + 1] += 1;
    EXPECT_NE(same_error(asymmetric).find("is not symmetric"), std::string::npos);
    if (c == Covariance::kFull) {
      // Two components broken two ways: the first one's problem is named, as validate names it
      // (the one-factorisation check takes the symmetry of all components first).
      Model two_ways = m;
      two_ways.covariances[0] = -1;                                    // component 0: not definite
      two_ways.covariances[static_cast<std::size_t>(d) * d + 1] += 1;  // component 1: asymmetric
      EXPECT_NE(same_error(two_ways).find("covariance 0 is not positive definite"),
                std::string::npos);
    }
    Model overflowing = m;
    // Its factor (1e-155 I) exists; its inverse (1e310 I) does not.
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        overflowing.covariances[last + static_cast<std::size_t>(i * d + j)] = i == j ? 1e-310 : 0;
      }
    }
    EXPECT_NE(same_error(overflowing).find("too close to singular"), std::string::npos);
  }
}

// A value that is not finite was named by its place in the flat array: "'probabilities'[6] is
// nan" of a model of two components, as if the seventh.
TEST(ModelValidation, AValueThatIsNotFiniteIsNamedByItsIndexInEachDimension) {
  Model m = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, 4);
  m.covariances[1 * 9 + 2 * 3 + 1] = NAN;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: 'covariances'[1][2][1] is nan");
  m = emix::testing::random_model(Family::kGaussian, Covariance::kTied, 2, 3, 4);
  m.covariances[5] = INFINITY;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }), "model: 'covariances'[1][2] is inf");
  m.means[4] = -INFINITY;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }), "model: 'means'[1][1] is -inf");
  m = emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 2, 6, 4);
  m.probabilities[6] = NAN;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: 'probabilities'[1][0] is nan");
  m.weights[1] = NAN;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }), "model: 'weights'[1] is nan");
}

// K x D x D is checked before it is computed; it could wrap 64 bits.
TEST(ModelValidation, ShapesTooLargeToCountAreRejectedBeforeAnyArrayIsRead) {
  Model m;
  m.family = Family::kGaussian;
  m.covariance = Covariance::kFull;
  m.n_components = std::numeric_limits<int>::max();
  m.n_features = 1 << 20;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: n_components x n_features x n_features = 2147483647 x 1048576 x 1048576 "
            "covariance values is more than emix supports");
  m.n_features = (1 << 20) + 1;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: n_features is 1048577, more than the 1048576 emix supports");
}

// Old: --threads 100000 reached libgomp, which crashed (SIGSEGV).
TEST(OptionValidation, ThreadCountsBeyondTheLimitAreAnOptionError) {
  emix::EngineOptions e;
  e.n_threads = 100000;
  try {
    emix::validate(e);
    ADD_FAILURE() << "no exception";
  } catch (const OptionError& error) {
    EXPECT_EQ(error.option(), "n_threads");
    EXPECT_STREQ(error.what(), "n_threads is 100000, must be 0 (OpenMP's default) to 1024");
  }
  e.n_threads = emix::kMaxThreads;
  emix::validate(e);
  e.chunk_rows = -1;
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(e); }),
            "chunk_rows is -1, must be 0 (chosen from the GPU's memory) or more");

  emix::FitOptions o;
  o.tol = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "tol is nan, must be a finite number >= 0");
  o.tol = 1e-3;
  o.engine.n_threads = -1;
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "n_threads is -1, must be 0 (OpenMP's default) to 1024");
  // sample() took any count: -5 ran, 100000 failed to start its threads.
  const emix::Model model =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, 1);
  EXPECT_EQ(error_of<OptionError>([&] { emix::sample(model, 10, 1, -5); }),
            "n_threads is -5, must be 0 (OpenMP's default) to 1024");
  EXPECT_EQ(error_of<OptionError>([&] { emix::sample(model, 10, 1, 100000); }),
            "n_threads is 100000, must be 0 (OpenMP's default) to 1024");
}

// A covariance type on a discrete family was accepted and ignored (EMIX_DIAG with Bernoulli
// through the C API); a model's bad probability is named by component and feature.
TEST(OptionValidation, CovarianceTypesApplyToGaussianMixturesOnly) {
  emix::FitOptions o;
  o.family = Family::kBernoulli;
  o.covariance = Covariance::kDiag;
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "covariance type diag applies to Gaussian mixtures only (a bernoulli mixture keeps the "
            "default, full)");
  o.covariance = Covariance::kFull;
  emix::validate(o);
  Model m;
  m.family = Family::kBinomial;
  m.trials = 3;
  m.n_components = 2;
  m.n_features = 3;
  m.weights = {0.5, 0.5};
  m.probabilities = {0.1, 0.2, 0.3, 0.4, 1.5, 0.6};
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: probabilities[1][1] is 1.5, outside [0, 1]");
  m.probabilities[4] = 0.5;
  m.covariance = Covariance::kTied;
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: covariance type tied applies to Gaussian mixtures only (a binomial model's is "
            "the default, full)");
}

// Enumerators cast from integers out of range passed validate(); the fit then crashed (a
// covariance of 9 read past a switch) or ran with whatever the value fell through to.
TEST(OptionValidation, EnumeratorsOutOfRangeAreRefused) {
  emix::FitOptions o;
  o.covariance = static_cast<Covariance>(9);
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "covariance is 9, not one of full, diag, spherical, tied");
  o.covariance = Covariance::kFull;
  o.family = static_cast<Family>(-1);
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "family is -1, not one of gaussian, bernoulli, binomial");
  o.family = Family::kGaussian;
  o.init = static_cast<emix::Init>(3);
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "init is 3, not one of kmeans++, random, random-from-data");
  o.init = emix::Init::kRandom;
  o.engine.device = static_cast<emix::Device>(7);
  EXPECT_EQ(error_of<OptionError>([&] { emix::validate(o); }),
            "device is 7, not one of auto, cpu, gpu");
  o.engine.device = emix::Device::kCpu;
  emix::validate(o);

  Model m = diag_model(1.0);
  m.covariance = static_cast<Covariance>(4);
  EXPECT_EQ(error_of<InvalidArgument>([&] { m.validate(); }),
            "model: covariance is 4, not one of full, diag, spherical, tied");
  std::vector<double> x = {0, 1, 2, 3};
  emix::DataView view = emix::DataView::host(x.data(), 2, 2);
  view.dtype = static_cast<emix::DType>(5);
  EXPECT_EQ(error_of<InvalidArgument>([&] { emix::fit(view, o); }),
            "data: element type 5 is neither DType::kFloat32 nor DType::kFloat64");
  emix::SelectOptions select;
  select.n_components = {1};
  select.criterion = static_cast<emix::Criterion>(3);
  EXPECT_EQ(error_of<InvalidArgument>(
                [&] { emix::select(emix::DataView::host(x.data(), 2, 2), select); }),
            "select: criterion is 3, not one of bic, aic, icl");
}

// Old: a fixed weight of 0 re-seeded its component every iteration (a warning each, advice about
// duplicates and reg_covar, no convergence): no row can join such a component.
TEST(OptionValidation, AFixedWeightOfZeroIsRefused) {
  Model m;
  m.family = Family::kBernoulli;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {1.0, 0.0};
  m.probabilities = {0.2, 0.8};
  emix::FitOptions o;
  o.family = Family::kBernoulli;
  o.n_components = 2;
  o.init_model = m;
  emix::validate(o);  // a weight of 0 that the fit may change
  o.fixed_weights = true;
  try {
    emix::validate(o);
    ADD_FAILURE() << "no exception";
  } catch (const OptionError& error) {
    EXPECT_EQ(error.option(), "fixed_weights");
    EXPECT_STREQ(error.what(),
                 "fixed_weights keeps the initial weights, and component 1 (0-based) has weight "
                 "0: no row can join it; give it a weight > 0, or fit one component fewer");
  }
}

// Old: fit -k 100000 on 200,000 rows allocated until bad_alloc ("out of memory", exit 1).
TEST(FitValidation, AFitLargerThanTheMachineIsRefusedBeforeAllocating) {
  emix::FitOptions o;
  o.n_components = 1000000;
  o.init = emix::Init::kRandom;
  const std::string message =
      error_of<emix::OutOfMemory>([&] { emix::check_fit_memory(10000000, 2, o); });
  EXPECT_EQ(message.rfind("n_components = 1000000 needs at least 1048.6 GB of memory "
                          "(initialisation holds 131072 sampled rows x 2 features and their "
                          "random responsibilities, 131072 x 1000000 components in double "
                          "precision), more than the ",
                          0),
            0u)
      << message;
  o.n_components = 2;  // 4 MB of initialisation
  emix::check_fit_memory(10000000, 2, o);
}

// Old: every initialisation was counted as two sample x K matrices, 1.6 GB for K = 1000 on
// 100,000 rows, and such a fit was refused under a 1.5 GB limit; k-means++ works from labels
// and peaked at 55 MB there (bench/results/init-memory-2026-12-07.md). The counts are the
// arrays initialize.cpp allocates, in closed form.
TEST(FitValidation, InitialisationMemoryCountsWhatEachInitialisationHolds) {
  emix::FitOptions o;
  o.n_components = 1000;
  const double rows = 100000, d = 2, blocks = 49;  // ceil(100000 / 2048)
  o.init = emix::Init::kKMeansPlusPlus;
  emix::InitMemory m = emix::initialization_memory(100000, 2, o);
  const double candidates = 2 + 6;  // 2 + floor(ln 1000), kmeans()'s draws per seeding step
  EXPECT_EQ(m.bytes, 8 * (2 * rows * d + (candidates + 6) * rows + blocks * 1000 * (d + 1)));
  EXPECT_FALSE(m.responsibilities_dominate);
  o.init = emix::Init::kRandom;
  m = emix::initialization_memory(100000, 2, o);
  EXPECT_EQ(m.bytes, 8 * (rows * d + rows * 1000));
  EXPECT_TRUE(m.responsibilities_dominate);
  o.init = emix::Init::kRandomFromData;  // the rows' nearest seed, as lloyd() finds it
  m = emix::initialization_memory(100000, 2, o);
  EXPECT_EQ(m.bytes, 8 * (2 * rows * d + 3 * rows + blocks * 1000 * (d + 1)));
  o.family = emix::Family::kBernoulli;  // the rows alone
  EXPECT_EQ(emix::initialization_memory(100000, 2, o).bytes, 8 * rows * d);
  o.family = emix::Family::kGaussian;
  o.init_model = emix::Model();  // no initialisation at all
  EXPECT_EQ(emix::initialization_memory(100000, 2, o).bytes, 0);
}

// Old: --n-init 30000000 reserved its runs until bad_alloc ("out of memory", exit 1); every
// restart's run is held until the joint passes end, so the check counts each.
TEST(FitValidation, RestartsLargerThanTheMachineAreRefusedBeforeAllocating) {
  emix::FitOptions o;
  o.n_components = 2;
  o.n_init = 30000000;
  const std::string message = error_of<emix::OutOfMemory>([&] { emix::check_fit_memory(4, 2, o); });
  EXPECT_NE(message.find("n_components = 2, n_init = 30000000 needs at least"), std::string::npos)
      << message;
  EXPECT_NE(message.find("use fewer components or fewer restarts"), std::string::npos) << message;
  o.n_init = 100;
  emix::check_fit_memory(4, 2, o);
}

// Wide full or tied models: the D x D covariances take the memory, and the advice says so (it
// said "use fewer components" at K = 1); a tied model's one matrix was not counted at all.
TEST(FitValidation, WideCovarianceMatricesLargerThanTheMachineSuggestDiagOrSpherical) {
  emix::FitOptions o;
  o.n_components = 1;
  o.covariance = Covariance::kFull;
  std::string message = error_of<emix::OutOfMemory>([&] { emix::check_fit_memory(10, 200000, o); });
  EXPECT_NE(message.find("(the model and its statistics hold 1 components x 200000 x 200000 "
                         "values several times)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("; use covariance diag or spherical (D values a component, not D x D), "
                         "or fewer components"),
            std::string::npos)
      << message;
  o.covariance = Covariance::kTied;
  o.n_components = 4;
  message = error_of<emix::OutOfMemory>([&] { emix::check_fit_memory(10, 200000, o); });
  EXPECT_NE(message.find("(the model and its statistics hold a 200000 x 200000 covariance several "
                         "times)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("; use covariance diag or spherical (D values a component, not a D x D "
                         "matrix)"),
            std::string::npos)
      << message;
  o.covariance = Covariance::kDiag;
  emix::check_fit_memory(10, 200000, o);
}

// Old: 4 copies of the D x D covariances were counted where a fit holds about 9.5 (peak RSS,
// bench/results/fit-memory-wide-covariances-2026-12-05.md), so a full fit with D x D x 8 bytes
// near a quarter of the machine started and was killed by the kernel. A model whose
// covariances take a seventh of the machine is now refused.
TEST(FitValidation, AFullModelIsCountedWithTheCopiesAFitHolds) {
  emix::FitOptions o;
  o.n_components = 1;
  o.covariance = Covariance::kFull;
  const std::string refused =
      error_of<emix::OutOfMemory>([&] { emix::check_fit_memory(10, 1000000, o); });
  const std::size_t at = refused.find("more than the ");
  ASSERT_NE(at, std::string::npos) << refused;
  const double machine_bytes = std::stod(refused.substr(at + 14)) * 1e9;  // "... 23.4 GB of"
  const auto d = static_cast<std::int64_t>(std::sqrt(machine_bytes / 8 / 7));
  EXPECT_THROW(emix::check_fit_memory(10, d, o), emix::OutOfMemory) << "D = " << d;
  o.covariance = Covariance::kTied;
  EXPECT_THROW(emix::check_fit_memory(10, d, o), emix::OutOfMemory) << "D = " << d;
  // A third of that D (a ninth of the matrix) fits.
  emix::check_fit_memory(10, d / 3, o);
}

// Drawn in parallel by blocks of rows, each with its own generator: the same bits whatever the
// threads, and sample(n)'s first rows are sample(m) for m < n (blocks do not depend on n).
TEST(Sampling, DrawsDependOnTheSeedAloneAndExtendAShorterSample) {
  const std::int64_t n = 150000, m = 70001;  // three blocks; m ends inside the second
  for (const auto& kind : emix::testing::kAllKinds) {
    const emix::Model model =
        emix::testing::random_model(kind.family, kind.covariance, 3, 4, 8, /*trials=*/9);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const emix::Sample one = emix::sample(model, n, 42);
    omp_set_num_threads(std::max(threads, 2));
    const emix::Sample many = emix::sample(model, n, 42);
    omp_set_num_threads(threads);
    const std::string what = emix::testing::describe(kind.family, kind.covariance);
    EXPECT_EQ(one.x, many.x) << what;
    EXPECT_EQ(one.labels, many.labels) << what;
    const emix::Sample shorter = emix::sample(model, m, 42);
    EXPECT_TRUE(std::equal(shorter.x.begin(), shorter.x.end(), many.x.begin())) << what;
    EXPECT_NE(emix::sample(model, m, 43).x, shorter.x) << what;
  }
}

// Old: sample(10^12) ended in bad_alloc.
TEST(Sampling, MoreRowsThanTheMachineHoldsAreRefusedBeforeAllocating) {
  const emix::Model m = emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 1);
  const std::string message =
      error_of<emix::OutOfMemory>([&] { emix::sample(m, std::int64_t{1} << 40, 1); });
  EXPECT_EQ(message.rfind("sample: 1099511627776 rows x 3 features need", 0), 0u) << message;
}

// N x K responsibilities are the result of predict_proba; their size is checked before it is
// allocated, as each evaluation's results: what it allocates, not the three results together
// (12 + 8 K bytes a row refused 2^31 rows' log-densities, 17 GB, as 26 GB on a 25 GB machine).
TEST(Evaluation, ResultsLargerThanTheMachineAreRefusedBeforeAllocating) {
  const std::string message = error_of<emix::OutOfMemory>([] {
    emix::check_result_memory(std::int64_t{1} << 40, 8000, "1000 responsibilities (float64)");
  });
  // 2^40 x 8 x 1000 bytes.
  EXPECT_EQ(message.rfind("the results for 1099511627776 rows (1000 responsibilities (float64) "
                          "per row) need 8796093.0 GB of memory, more than the ",
                          0),
            0u)
      << message;
  emix::check_result_memory(1000, 8000, "");
  // Through the evaluations: each names its own results.
  const emix::Model m = emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 1, 1);
  const double x = 0;
  const emix::DataView huge = emix::DataView::host(&x, std::int64_t{1} << 50, 1);
  EXPECT_EQ(error_of<emix::OutOfMemory>([&] { emix::predict(m, huge); })
                .rfind("the results for 1125899906842624 rows (a label (int32) per row) need "
                       "4503599.6 GB",
                       0),
            0u);
  EXPECT_EQ(error_of<emix::OutOfMemory>([&] { emix::score_samples(m, huge); })
                .rfind("the results for 1125899906842624 rows (a log-density (float64) per row) "
                       "need 9007199.3 GB",
                       0),
            0u);
}

// The CPU engine, whatever answers: its log-densities of full models are GEMMs over the features
// [u, u u^T], where a row of 1e200 makes inf - inf = NaN. (The GPU engine's triangular form gives
// -inf there, density zero, which check_evaluation lets through as documented.)
emix::EngineOptions cpu_engine() {
  emix::EngineOptions o;
  o.device = emix::Device::kCpu;
  return o;
}

// Old: score and predict_proba returned NaN for data too large for the element type; then such
// rows were refused as "log-density nan" where a diag model gave -inf for the same row (an
// audit's report). The engines' expansion about a centre overflows to inf - inf; the rows it
// leaves NaN are evaluated again without it: their density rounds to zero (-inf) like any row
// too far out, the others' values are untouched, and predict refuses the far one, naming it.
TEST(Evaluation, RowsTheExpansionOverflowsAreEvaluatedAgain) {
  const std::vector<double> x = {0, 0, 1e200, 1e200, 1, 1};
  const auto view = emix::DataView::host(x.data(), 3, 2);
  const std::vector<double> near = {0, 0, 1, 1};
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical, Covariance::kTied}) {
    SCOPED_TRACE(to_string(covariance));
    const Model m = emix::testing::random_model(Family::kGaussian, covariance, 2, 2, 3);
    const std::vector<double> log_prob = emix::score_samples(m, view, cpu_engine());
    const std::vector<double> alone =
        emix::score_samples(m, emix::DataView::host(near.data(), 2, 2), cpu_engine());
    EXPECT_EQ(log_prob[0], alone[0]);
    EXPECT_EQ(log_prob[1], -std::numeric_limits<double>::infinity());
    EXPECT_EQ(log_prob[2], alone[1]);
    EXPECT_EQ(emix::score(m, view, cpu_engine()), -std::numeric_limits<double>::infinity());
    try {
      emix::predict(m, view, cpu_engine());
      ADD_FAILURE() << "no exception";
    } catch (const DataError& e) {
      EXPECT_EQ(e.row(), 2);
      EXPECT_NE(std::string(e.what()).find("cannot be assigned to a component"), std::string::npos)
          << e.what();
    }
  }
}

// A row at a mean far from the other's (a model given, not fitted: a fit refuses such data):
// whichever form computes it, the answer is the closed form, log w_0 + log N(0 | 0, Sigma_0),
// the other component's share rounding to zero.
TEST(Evaluation, ARowAtAFarMeanGetsItsClosedForm) {
  constexpr double kFar = 1e200;
  const double pi = std::acos(-1.0);
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical, Covariance::kTied}) {
    SCOPED_TRACE(to_string(covariance));
    Model m;
    m.family = Family::kGaussian;
    m.covariance = covariance;
    m.n_components = 2;
    m.n_features = 2;
    m.weights = {0.25, 0.75};
    m.means = {kFar, -kFar, -kFar, kFar};
    double log_det = 0;  // of Sigma_0
    switch (covariance) {
      case Covariance::kFull:
        m.covariances = {2, 0.5, 0.5, 1, 1, 0, 0, 1};
        log_det = std::log(2 * 1 - 0.5 * 0.5);
        break;
      case Covariance::kTied:
        m.covariances = {2, 0.5, 0.5, 1};
        log_det = std::log(2 * 1 - 0.5 * 0.5);
        break;
      case Covariance::kDiag:
        m.covariances = {2, 3, 1, 1};
        log_det = std::log(2.0 * 3.0);
        break;
      case Covariance::kSpherical:
        m.covariances = {2, 1};
        log_det = 2 * std::log(2.0);
        break;
    }
    const std::vector<double> x = {kFar, -kFar};
    const double expected = std::log(0.25) - std::log(2 * pi) - 0.5 * log_det;
    const std::vector<double> log_prob =
        emix::score_samples(m, emix::DataView::host(x.data(), 1, 2), cpu_engine());
    // A few roundings of values near 1: 1e-14 relative.
    EXPECT_NEAR(log_prob[0], expected, 1e-14 * std::abs(expected));
    EXPECT_EQ(emix::predict(m, emix::DataView::host(x.data(), 1, 2), cpu_engine())[0], 0);
  }
}

// The form evaluate_rows falls back on gives what the engine gives on rows within reach: the
// same log-densities to 1e-12 relative (two ways of summing the same D terms, D = 3), for every
// covariance type; and -inf, never NaN, for a component a row is out of reach of.
TEST(Evaluation, TheFarRowFormAgreesWithTheEngineOnOrdinaryRows) {
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical, Covariance::kTied}) {
    SCOPED_TRACE(to_string(covariance));
    const Model m = emix::testing::random_model(Family::kGaussian, covariance, 3, 3, 11);
    const emix::PreparedModel prepared = emix::prepare(m);
    const std::vector<double> x = {0.5, -1, 2, 3, 3, 3, -4, 0, 1e-3, 10, -10, 7};
    const std::vector<double> engine =
        emix::score_samples(m, emix::DataView::host(x.data(), 4, 3), cpu_engine());
    for (std::size_t n = 0; n < 4; ++n) {
      double log_joint[3];
      emix::far_row_log_joints(prepared, &x[3 * n], log_joint);
      const double top = *std::max_element(log_joint, log_joint + 3);
      double total = 0;
      for (const double value : log_joint) total += std::exp(value - top);
      EXPECT_NEAR(top + std::log(total), engine[n], 1e-12 * std::abs(engine[n])) << "row " << n;
    }
    const double far[3] = {1.7e308, -1.7e308, 1e308};
    double log_joint[3];
    emix::far_row_log_joints(prepared, far, log_joint);
    for (const double value : log_joint) EXPECT_EQ(value, -std::numeric_limits<double>::infinity());
  }
}

// The huge row alone is out of reach, whichever of two rows it is: the CPU engine centres every
// row on a point fixed by the data (a median of sampled rows), which one huge value must not move.
TEST(Evaluation, OneHugeRowOfTwoIsTheOneOutOfReach) {
  const Model m = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 2, 3);
  for (const std::int64_t huge : {0, 1}) {
    std::vector<double> x(4, 1.0);
    x[2 * huge] = x[2 * huge + 1] = 1e200;
    const std::vector<double> log_prob =
        emix::score_samples(m, emix::DataView::host(x.data(), 2, 2), cpu_engine());
    EXPECT_EQ(log_prob[static_cast<std::size_t>(huge)], -std::numeric_limits<double>::infinity());
    EXPECT_TRUE(std::isfinite(log_prob[static_cast<std::size_t>(1 - huge)]));
  }
}

// A row far enough out that every component's log-density overflows to -inf (1e155 in double)
// has a log-density, -inf, but no nearest component: predict_proba returned a row of zeros and
// predict the label 0 (an audit's report). Both now refuse it, naming the row; score_samples
// keeps -inf, the density rounded to zero.
TEST(Evaluation, ARowEveryComponentGivesMinusInfinityIsNotAssigned) {
  const std::vector<double> x = {0, 0, 1e155, 0, 1, 1};
  const auto view = emix::DataView::host(x.data(), 3, 2);
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical, Covariance::kTied}) {
    const Model m = emix::testing::random_model(Family::kGaussian, covariance, 2, 2, 5);
    const std::vector<double> log_prob = emix::score_samples(m, view, cpu_engine());
    EXPECT_EQ(log_prob[1], -std::numeric_limits<double>::infinity()) << to_string(covariance);
    EXPECT_TRUE(std::isfinite(log_prob[0]) && std::isfinite(log_prob[2]));
    for (const auto& call :
         std::vector<std::function<void()>>{[&] { emix::predict_proba(m, view, cpu_engine()); },
                                            [&] { emix::predict(m, view, cpu_engine()); }}) {
      try {
        call();
        ADD_FAILURE() << to_string(covariance) << ": no exception";
      } catch (const DataError& e) {
        EXPECT_EQ(e.row(), 2) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot be assigned to a component"),
                  std::string::npos)
            << e.what();
      }
    }
  }
}

// An Evaluator checks and factors its model once, and the CPU engine keeps its evaluation plans
// with it; its results are those of the functions that do it all per call, bitwise, for every
// family and covariance type, float64 and float32 data through one evaluator (whose plans are
// kept apart), the expanded and the direct path (D >= 128 full), a model far from the origin
// (expanded about a component, or in double for float data), again and again, and from several
// threads at once.
TEST(Evaluation, AnEvaluatorGivesTheResultsOfTheFunctionsOnItsModel) {
  struct Case {
    Family family;
    Covariance covariance;
    int d;
    double spread;
  };
  const std::vector<Case> cases = {{Family::kGaussian, Covariance::kFull, 5, 5.0},
                                   {Family::kGaussian, Covariance::kTied, 5, 5.0},
                                   {Family::kGaussian, Covariance::kDiag, 5, 5.0},
                                   {Family::kGaussian, Covariance::kSpherical, 5, 5.0},
                                   {Family::kBernoulli, Covariance::kFull, 5, 5.0},
                                   {Family::kBinomial, Covariance::kFull, 5, 5.0},
                                   {Family::kGaussian, Covariance::kFull, 130, 5.0},
                                   {Family::kGaussian, Covariance::kFull, 5, 1e5},
                                   {Family::kGaussian, Covariance::kDiag, 5, 1e5}};
  for (const Case& c : cases) {
    SCOPED_TRACE(emix::testing::describe(c.family, c.covariance) + ", D = " + std::to_string(c.d) +
                 ", spread " + std::to_string(c.spread));
    const int d = c.d;
    const Model m = emix::testing::random_model(c.family, c.covariance, 3, d, 21, 4, c.spread);
    const emix::Sample drawn = emix::sample(m, 300, 8, 1);
    const std::vector<float> narrow(drawn.x.begin(), drawn.x.end());
    std::vector<double> weights(6000);  // for up to 6000 rows
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = 0.5 + static_cast<double>(i % 7);
    const emix::Evaluator evaluator(m, 2);
    EXPECT_EQ(evaluator.model().covariances, m.covariances);
    const auto check = [&](const emix::DataView& x) {
      const emix::EngineOptions o = cpu_engine();
      for (int again = 0; again < 2; ++again) {
        EXPECT_EQ(evaluator.predict(x, o), emix::predict(m, x, o));
        EXPECT_EQ(evaluator.predict_proba(x, o), emix::predict_proba(m, x, o));
        EXPECT_EQ(evaluator.score_samples(x, o), emix::score_samples(m, x, o));
        EXPECT_EQ(evaluator.score(x, o, weights.data()), emix::score(m, x, o, weights.data()));
        EXPECT_EQ(evaluator.bic(x, o), emix::bic(m, x, o));
        EXPECT_EQ(evaluator.aic(x, o), emix::aic(m, x, o));
      }
    };
    check(emix::DataView::host(drawn.x.data(), 300, d));
    check(emix::DataView::host(narrow.data(), 300, d));
    check(emix::DataView::host(drawn.x.data() + 7 * d, 1, d));  // one row
    check(emix::DataView::host(narrow.data() + 7 * d, 1, d));
    if (d >= 128) {
      // Enough float rows for the float direct path, whose plan reads the data (kept apart).
      const emix::Sample more = emix::sample(m, 6000, 9, 1);
      const std::vector<float> many(more.x.begin(), more.x.end());
      check(emix::DataView::host(many.data(), 6000, d));
      check(emix::DataView::host(narrow.data(), 300, d));
    }
    const auto view = emix::DataView::host(drawn.x.data(), 300, d);
    const std::vector<double> expected = emix::score_samples(m, view, cpu_engine());
    std::vector<std::vector<double>> got(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < got.size(); ++t) {
      threads.emplace_back([&, t] {
        emix::EngineOptions o = cpu_engine();
        o.n_threads = 1;
        for (int repeat = 0; repeat < 5; ++repeat) got[t] = evaluator.score_samples(view, o);
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const std::vector<double>& values : got) EXPECT_EQ(values, expected);
  }
}

// An Evaluator refuses what the functions refuse: a model Model::validate refuses (in its
// constructor, with that message) and data of another width.
TEST(Evaluation, AnEvaluatorRefusesWhatTheFunctionsRefuse) {
  Model m = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, 4);
  m.covariances[4] = -2;  // component 0's second variance
  const std::string message = error_of<InvalidArgument>([&] { m.validate(); });
  EXPECT_EQ(error_of<InvalidArgument>([&] { emix::Evaluator evaluator(m); }), message);
  EXPECT_THROW(emix::Evaluator(
                   emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 4), -1),
               InvalidArgument);
  const emix::Evaluator evaluator(
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 4));
  const std::vector<double> x(8, 0.5);
  EXPECT_EQ(
      error_of<InvalidArgument>([&] { evaluator.predict(emix::DataView::host(x.data(), 2, 4)); }),
      "the model has 3 features, but the data have 4 columns");
}

// Per-row results are computed a block of rows at a time (core/evaluation.hpp), so that a score
// holds one block's log-densities, not all of them: blocks of 7 rows give bitwise what one block
// of every row gives, for every family and covariance type, in float64 and float32.
TEST(Evaluation, BlocksOfRowsGiveTheValuesOfOneBlock) {
  struct Case {
    Family family;
    Covariance covariance;
  };
  for (const Case c :
       {Case{Family::kGaussian, Covariance::kFull}, Case{Family::kGaussian, Covariance::kDiag},
        Case{Family::kGaussian, Covariance::kSpherical}, Case{Family::kGaussian, Covariance::kTied},
        Case{Family::kBernoulli, Covariance::kFull}, Case{Family::kBinomial, Covariance::kFull}}) {
    const Model m = emix::testing::random_model(c.family, c.covariance, 3, 4, 17);
    const std::int64_t n = 52;  // 7 blocks of 7 and one of 3
    const std::vector<double> x = emix::sample(m, n, 18).x;
    const std::vector<float> x32(x.begin(), x.end());
    for (const emix::DataView view :
         {emix::DataView::host(x.data(), n, 4), emix::DataView::host(x32.data(), n, 4)}) {
      const auto evaluated = [&](std::int64_t block_rows, std::vector<std::int64_t>* firsts) {
        std::vector<double> log_prob(n), resp(n * 3);
        std::vector<std::int32_t> labels(n);
        emix::RowResults results;
        results.log_prob = log_prob.data();
        results.resp = resp.data();
        results.labels = labels.data();
        emix::evaluate_rows(
            m, view, cpu_engine(), results,
            [&](std::int64_t first, std::int64_t rows, const double* block) {
              firsts->push_back(first);
              // The block's log-densities are the caller's, in place.
              EXPECT_EQ(block, log_prob.data() + first);
              EXPECT_LE(rows, block_rows);
            },
            block_rows);
        return std::make_tuple(log_prob, resp, labels);
      };
      std::vector<std::int64_t> one_block, blocks;
      const auto whole = evaluated(n, &one_block);
      const auto blocked = evaluated(7, &blocks);
      const std::string name = std::string(to_string(c.family)) + " " + to_string(c.covariance) +
                               " " + to_string(view.dtype);
      EXPECT_EQ(std::get<0>(blocked), std::get<0>(whole)) << name;
      EXPECT_EQ(std::get<1>(blocked), std::get<1>(whole)) << name;
      EXPECT_EQ(std::get<2>(blocked), std::get<2>(whole)) << name;
      EXPECT_EQ(one_block, std::vector<std::int64_t>({0}));
      EXPECT_EQ(blocks, std::vector<std::int64_t>({0, 7, 14, 21, 28, 35, 42, 49})) << name;
      // score sums the blocks in row order, as a sum over all rows at once.
      double total = 0;
      for (const double v : std::get<0>(whole)) total += v;
      EXPECT_EQ(emix::score(m, view, cpu_engine()), total / static_cast<double>(n)) << name;
    }
  }
}

// A row that cannot be evaluated is named by its row in the data, not in its block.
TEST(Evaluation, ARowRefusedInALaterBlockIsNamedByItsRowInTheData) {
  const Model m = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 2, 3);
  std::vector<double> x(20, 1.0);
  x[16] = x[17] = 1e200;  // row 9
  std::vector<std::int32_t> labels(10);
  emix::RowResults results;
  results.labels = labels.data();  // a row out of reach has no label
  try {
    emix::evaluate_rows(m, emix::DataView::host(x.data(), 10, 2), cpu_engine(), results, {}, 4);
    ADD_FAILURE() << "no exception";
  } catch (const DataError& e) {
    EXPECT_EQ(e.row(), 9) << e.what();
  }
}

// Data without rows (an empty rank's or chunk's share) have no per-row results, as accumulate
// takes them; a mean of no rows (score, and bic and aic from it) is refused, naming why.
TEST(Evaluation, DataWithoutRowsHaveNoResultsAndNoScore) {
  const Model m = emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 3);
  const emix::DataView empty = emix::DataView::host(static_cast<const double*>(nullptr), 0, 3);
  EXPECT_TRUE(emix::predict(m, empty, cpu_engine()).empty());
  EXPECT_TRUE(emix::predict_proba(m, empty, cpu_engine()).empty());
  EXPECT_TRUE(emix::score_samples(m, empty, cpu_engine()).empty());
  for (const auto& call : std::vector<std::function<void()>>{
           [&] { emix::score(m, empty, cpu_engine()); }, [&] { emix::bic(m, empty, cpu_engine()); },
           [&] { emix::aic(m, empty, cpu_engine()); }}) {
    EXPECT_THROW(
        try { call(); } catch (const InvalidArgument& e) {
          EXPECT_STREQ(e.what(), "data: no rows");
          throw;
        },
        InvalidArgument);
  }
  // The width is still the model's.
  const emix::DataView narrow = emix::DataView::host(static_cast<const double*>(nullptr), 0, 2);
  EXPECT_THROW(
      try { emix::predict(m, narrow, cpu_engine()); } catch (const InvalidArgument& e) {
        EXPECT_STREQ(e.what(), "the model has 3 features, but the data have 2 columns");
        throw;
      },
      InvalidArgument);
}

// A fit refuses a value whose square overflows, naming it, rather than failing later with a
// "singular covariance" (double) or a NaN log-likelihood (float): 2^500 and 2^60 are the limits.
TEST(FitValidation, ValuesWhoseSquaresOverflowAreNamed) {
  emix::FitOptions o;
  o.n_components = 1;
  std::vector<double> x = {0, 1, 2, 3, 4, 5};
  x[3] = -std::ldexp(1.0, 500);
  try {
    emix::validate_fit_data(emix::DataView::host(x.data(), 3, 2), o);
    ADD_FAILURE() << "no exception";
  } catch (const DataError& e) {
    EXPECT_EQ(e.row(), 2);
    EXPECT_EQ(e.column(), 2);
    // The square of 2^500 does not overflow: the reason is the sums' (it said "squares of
    // values beyond 3.27e150 overflow double precision").
    EXPECT_NE(std::string(e.what()).find(
                  "too large: a Gaussian fit takes magnitudes below 3.273390607896142e+150 "
                  "(2^500), so that its sums of squares over rows and features stay within "
                  "double precision; rescale the data"),
              std::string::npos)
        << e.what();
  }
  x[3] = -std::ldexp(1.0, 499);  // below the limit
  emix::validate_fit_data(emix::DataView::host(x.data(), 3, 2), o);
  std::vector<float> f = {0, 1, 2, 3, 4, 5};
  f[4] = std::ldexp(1.0f, 60);
  EXPECT_THROW(emix::validate_fit_data(emix::DataView::host(f.data(), 3, 2), o), DataError);
  f[4] = std::ldexp(1.0f, 59);
  emix::validate_fit_data(emix::DataView::host(f.data(), 3, 2), o);
  // An evaluation takes a far outlier (its density is just very small): the limit is a fit's.
  const Model m = emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 1, 2, 3);
  std::vector<double> outlier = {0, 0, 1e160, 0};
  const std::vector<double> log_prob =
      emix::score_samples(m, emix::DataView::host(outlier.data(), 2, 2));
  EXPECT_TRUE(std::isfinite(log_prob[0]));
  o.family = Family::kBernoulli;  // the limit is the Gaussian family's
  std::vector<double> ones(6, 1.0);
  emix::validate_fit_data(emix::DataView::host(ones.data(), 3, 2), o);
}

// float rounds a trial count above 2^24 up: 16777219 became 16777220, which then passed as a
// count of successes (the model gave it log-density -inf; the same data in double were refused).
TEST(FitValidation, Float32CountsAboveTrialsBeyond2To24AreNamed) {
  emix::FitOptions o;
  o.family = Family::kBinomial;
  o.trials = 16777219;
  o.n_components = 1;
  std::vector<float> counts = {0, 16777216, 16777220, 3};
  const std::string message = error_of<emix::DataError>(
      [&] { emix::validate_fit_data(emix::DataView::host(counts.data(), 2, 2), o); });
  EXPECT_NE(message.find("row 2, column 1"), std::string::npos) << message;
  EXPECT_NE(message.find("is 16777220"), std::string::npos) << message;
  counts[2] = 16777218;  // representable and within the trials
  emix::validate_fit_data(emix::DataView::host(counts.data(), 2, 2), o);
}

// A float32 E-step holds the precisions in float. Data of about 1e-20 without reg_covar have
// covariances of about 1e-40, whose inverses are beyond float's range: the fit reported "the
// log-likelihood is -nan at iteration 0 (check the data for extreme values)", and an init model
// of such covariances the same, where score_samples named the covariance.
TEST(FitValidation, Float32CovariancesTooSmallForFloatAreNamed) {
  std::vector<float> x(400);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng) * 1e-20f;
  const auto data = emix::DataView::host(x.data(), 200, 2);
  for (const Covariance c :
       {Covariance::kFull, Covariance::kTied, Covariance::kDiag, Covariance::kSpherical}) {
    emix::FitOptions o;
    o.n_components = 2;
    o.covariance = c;
    o.reg_covar = 0;
    o.engine.device = emix::Device::kCpu;
    const std::string message = error_of<emix::NumericalError>([&] { emix::fit(data, o); });
    EXPECT_NE(message.find(c == Covariance::kTied ? "the tied covariance is too small for float32"
                                                  : "is too small for float32 data"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("increase reg_covar from 0"), std::string::npos) << message;
    // The same data in double fit.
    std::vector<double> wide(x.begin(), x.end());
    EXPECT_NO_THROW(emix::fit(emix::DataView::host(wide.data(), 200, 2), o));
    o.reg_covar = 1e-6;  // the default: the fit in float runs
    EXPECT_NO_THROW(emix::fit(data, o));
  }
  emix::FitOptions o;
  o.covariance = Covariance::kDiag;
  o.n_components = 1;
  o.engine.device = emix::Device::kCpu;
  o.init_model = diag_model(1e-40);
  EXPECT_EQ(error_of<InvalidArgument>([&] { emix::fit(data, o); }),
            "init model: a covariance is too small for float32 data (an entry of its inverse is "
            "1e+40, beyond float32's range); use float64 data");
}

// A start far from every row (means of 1e150, a variance of 1e-300) puts each at -inf at
// iteration 0; the message blamed the data alone.
TEST(FitValidation, AStartThatScoresEveryRowAtMinusInfinityIsNamed) {
  const std::vector<double> x = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8};
  emix::FitOptions o;
  o.covariance = Covariance::kDiag;
  o.n_components = 1;
  o.engine.device = emix::Device::kCpu;
  Model far = diag_model(1e-300);
  far.means = {1e150, 1e150};
  o.init_model = far;
  const std::string message =
      error_of<emix::NumericalError>([&] { emix::fit(emix::DataView::host(x.data(), 4, 2), o); });
  EXPECT_NE(message.find("at iteration 0 (check the data and the initial model for extreme "
                         "values)"),
            std::string::npos)
      << message;
}

// Only the weights' ratios matter. Equal weights of 1.5e305 (their sum finite) overflowed the
// initialisation's weighted sums, and the fit failed as "covariance of component 0 is singular;
// rows that coincide (duplicates) ...". Weights whose weighted log-likelihood overflows say so.
TEST(FitValidation, HugeSampleWeightsFitOrNameTheWeights) {
  const int n = 200;
  std::vector<double> x(2 * n);
  for (int i = 0; i < n; ++i) {
    x[2 * i] = 10 + 6.0 * (i % 3) + std::sin(1.7 * i);
    x[2 * i + 1] = std::cos(2.3 * i);
  }
  emix::FitOptions o;
  o.n_components = 3;
  o.engine.device = emix::Device::kCpu;
  const auto data = emix::DataView::host(x.data(), n, 2);
  const emix::FitReport unweighted = emix::fit(data, o);
  std::vector<double> huge(n, 1.5e305);
  const emix::FitReport weighted = emix::fit(data, o, huge.data());
  // The same EM from the same start but for rounding (the weights are no power of two apart).
  ASSERT_EQ(weighted.model.means.size(), unweighted.model.means.size());
  for (std::size_t i = 0; i < weighted.model.means.size(); ++i) {
    EXPECT_NEAR(weighted.model.means[i], unweighted.model.means[i], 1e-9) << i;
  }
  EXPECT_NEAR(weighted.mean_log_likelihood, unweighted.mean_log_likelihood, 1e-9);
  std::fill(huge.begin(), huge.end(), 3e305);  // the total log-likelihood overflows
  const std::string message =
      error_of<emix::NumericalError>([&] { emix::fit(data, o, huge.data()); });
  EXPECT_NE(message.find("the sample weights, summing to 6e+307, overflow it: only their ratios "
                         "matter, scale them down"),
            std::string::npos)
      << message;
}

TEST(Messages, QuotedExcerptsAreShortAndPrintable) {
  EXPECT_EQ(emix::quoted_excerpt("abc"), "'abc'");
  EXPECT_EQ(emix::quoted_excerpt(std::string("a\0b\n\x1b'\\\xff", 8)),
            "'a\\x00b\\n\\x1b\\'\\\\\\xff'");
  EXPECT_EQ(emix::quoted_excerpt(std::string(20000000, 'x'), 5), "'xxxxx...' (20000000 bytes)");
  EXPECT_EQ(error_of<InvalidArgument>([] { emix::parse_family(std::string(100000, 'z')); }),
            "unknown family 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...' (100000 bytes) "
            "(expected one of: gaussian, bernoulli, binomial)");
}

// Values are written as short as reads back exactly, and a whole number as one: a count of 10
// was "1e+01" in "needs a whole number of successes in 0..9".
TEST(Messages, NumbersAreShortAndWholeNumbersPlain) {
  EXPECT_EQ(emix::number(10), "10");
  EXPECT_EQ(emix::number(-300), "-300");
  EXPECT_EQ(emix::number(1e15), "1000000000000000");
  EXPECT_EQ(emix::number(0.1), "0.1");
  EXPECT_EQ(emix::number(2.5), "2.5");
  EXPECT_EQ(emix::number(1e300), "1e+300");
  EXPECT_EQ(emix::number(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(emix::number(std::nan("")), "nan");
  EXPECT_EQ(emix::number(-std::numeric_limits<double>::infinity()), "-inf");
}

// Old: "covariance of component 0 is singular or not positive definite (its Cholesky
// factorisation failed)" and nothing more, where a collapse in later iterations advised
// reg_covar: the same advice now comes with the first failure, in a fit.
TEST(FitValidation, ACovarianceThatDoesNotFactorInAFitAdvisesRegCovar) {
  const std::vector<double> x = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2};  // two points, each repeated
  emix::FitOptions o;
  o.n_components = 2;
  o.reg_covar = 0;
  o.engine.device = emix::Device::kCpu;
  try {
    emix::fit(emix::DataView::host(x.data(), 5, 2), o);
    ADD_FAILURE() << "no exception";
  } catch (const emix::NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("rows that coincide (duplicates) or data in a subspace "
                                         "make it so: increase reg_covar from 0"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
