// Properties every fit must have: EM never lowers the likelihood; K = 1 is the sample mean and
// covariance; results do not depend on the thread count; integer sample weights equal repeated
// rows; a known mixture is recovered.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "core/em.hpp"
#include "core/maximize.hpp"
#include "core/threads.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

struct Shape {
  Family family;
  Covariance covariance;
};

const Shape kShapes[] = {
    {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
    {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
    {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull}};

emix::FitOptions options_for(const Shape& s, int k) {
  emix::FitOptions o;
  o.family = s.family;
  o.covariance = s.covariance;
  o.n_components = k;
  o.trials = s.family == Family::kBinomial ? 6 : 1;
  o.engine.device = emix::Device::kCpu;
  return o;
}

class EveryShape : public ::testing::TestWithParam<Shape> {};

TEST_P(EveryShape, LogLikelihoodNeverDecreases) {
  const Shape s = GetParam();
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    const emix::Model truth =
        emix::testing::random_model(s.family, s.covariance, 3, 4, seed, 6, 1.5);
    const emix::Sample data = emix::sample(truth, 3000, seed);
    emix::FitOptions o = options_for(s, 4);  // one more component than the truth
    o.tol = 0;
    o.max_iter = 40;
    o.seed = seed;
    o.init = emix::Init::kRandom;
    const emix::FitReport r = emix::fit(emix::DataView::host(data.x.data(), 3000, 4), o);
    ASSERT_EQ(r.history.size(), 41u);
    for (std::size_t i = 1; i < r.history.size(); ++i) {
      // Rounding only: 1e-10 of the log-likelihood's magnitude.
      EXPECT_GE(r.history[i], r.history[i - 1] - 1e-10 * std::abs(r.history[i - 1]))
          << emix::testing::describe(s.family, s.covariance) << " seed " << seed << " step " << i;
    }
  }
}

TEST_P(EveryShape, BitwiseIdenticalWithOneTwoAndThreeThreads) {
  const Shape s = GetParam();
  // Work enough for several threads in every pass (threads_for_work: 2^22 multiply-adds each):
  // three for the k-means steps over 2^17 rows x 8 centres x 10 features and for the engine's
  // passes, two for the k-means++ seeding (4 candidates a step).
  const int k = 8, d = 10;
  const emix::Model truth = emix::testing::random_model(s.family, s.covariance, k, d, 21, 6, 2.0);
  const std::int64_t n = 1 << 17;
  ASSERT_GE(emix::threads_for_work(static_cast<double>(n) * k * d, 3), 3);
  const emix::Sample data = emix::sample(truth, n, 22);
  std::vector<emix::FitReport> reports;
  for (int threads : {1, 2, 3}) {
    emix::FitOptions o = options_for(s, k);
    o.tol = 0;
    o.max_iter = 5;
    o.seed = 5;
    o.engine.n_threads = threads;
    reports.push_back(emix::fit(emix::DataView::host(data.x.data(), n, d), o));
  }
  const auto same = [](const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() &&
           (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
  };
  for (int i = 1; i < 3; ++i) {
    EXPECT_TRUE(same(reports[0].history, reports[i].history)) << i + 1 << " threads";
    EXPECT_TRUE(same(reports[0].model.weights, reports[i].model.weights)) << i + 1 << " threads";
    EXPECT_TRUE(same(reports[0].model.means, reports[i].model.means)) << i + 1 << " threads";
    EXPECT_TRUE(same(reports[0].model.covariances, reports[i].model.covariances));
    EXPECT_TRUE(same(reports[0].model.probabilities, reports[i].model.probabilities));
  }
}

TEST_P(EveryShape, IntegerSampleWeightsEqualRepeatedRows) {
  const Shape s = GetParam();
  const emix::Model truth = emix::testing::random_model(s.family, s.covariance, 2, 3, 31, 6, 2.0);
  const std::int64_t n = 800;
  const emix::Sample data = emix::sample(truth, n, 32);
  std::mt19937_64 rng(33);
  std::uniform_int_distribution<int> count(0, 3);
  std::vector<double> weights(n), repeated;
  for (std::int64_t i = 0; i < n; ++i) {
    weights[i] = count(rng);
    for (int r = 0; r < weights[i]; ++r) {
      repeated.insert(repeated.end(), data.x.begin() + i * 3, data.x.begin() + (i + 1) * 3);
    }
  }
  emix::FitOptions o = options_for(s, 2);
  o.init_model = emix::testing::random_model(s.family, s.covariance, 2, 3, 34, 6, 2.0);
  o.tol = 0;
  o.max_iter = 15;
  const emix::FitReport weighted =
      emix::fit(emix::DataView::host(data.x.data(), n, 3), o, weights.data());
  const emix::FitReport plain = emix::fit(
      emix::DataView::host(repeated.data(), static_cast<std::int64_t>(repeated.size() / 3), 3), o);
  // Same sums in a different order: agreement to rounding, 1e-9 after 15 iterations.
  using emix::testing::max_relative_difference;
  EXPECT_LE(max_relative_difference(weighted.model.weights, plain.model.weights), 1e-9);
  EXPECT_LE(max_relative_difference(weighted.model.means, plain.model.means), 1e-9);
  EXPECT_LE(max_relative_difference(weighted.model.covariances, plain.model.covariances), 1e-9);
  EXPECT_LE(max_relative_difference(weighted.model.probabilities, plain.model.probabilities), 1e-9);
  EXPECT_NEAR(weighted.log_likelihood, plain.log_likelihood, 1e-9 * std::abs(plain.log_likelihood));
}

// Only the weights' ratios matter: uniform weights of 2^-590 (a power of two scales every sum
// exactly) give the unweighted fit bitwise, k-means start included, and its log-likelihood times
// 2^-590. Below 2^-600 they are refused: uniform weights of 1e-302 once left every component
// "empty" and returned a model of nonsense.
TEST_P(EveryShape, TinyUniformWeightsGiveTheUnweightedFitOrAreRefused) {
  const Shape s = GetParam();
  const emix::Model truth = emix::testing::random_model(s.family, s.covariance, 2, 3, 41, 6, 2.0);
  const std::int64_t n = 600;
  const emix::Sample data = emix::sample(truth, n, 42);
  emix::FitOptions o = options_for(s, 2);
  o.seed = 43;
  o.tol = 0;
  o.max_iter = 10;
  const emix::DataView x = emix::DataView::host(data.x.data(), n, 3);
  const emix::FitReport plain = emix::fit(x, o);
  const std::vector<double> tiny(n, std::ldexp(1.0, -590));
  const emix::FitReport weighted = emix::fit(x, o, tiny.data());
  EXPECT_EQ(weighted.model.weights, plain.model.weights);
  EXPECT_EQ(weighted.model.means, plain.model.means);
  EXPECT_EQ(weighted.model.covariances, plain.model.covariances);
  EXPECT_EQ(weighted.model.probabilities, plain.model.probabilities);
  EXPECT_EQ(weighted.log_likelihood, std::ldexp(plain.log_likelihood, -590));
  const std::vector<double> tinier(n, 1e-302);
  try {
    emix::fit(x, o, tinier.data());
    ADD_FAILURE() << "weights of 1e-302 were taken";
  } catch (const emix::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("the largest is 1e-302"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("scale them up"), std::string::npos) << e.what();
  }
  // A score has no responsibilities to lose: such weights are taken, and weigh every row alike
  // (the sums in another order: 1e-12).
  const double unweighted = emix::score(plain.model, x, o.engine);
  EXPECT_NEAR(emix::score(plain.model, x, o.engine, tinier.data()), unweighted,
              1e-12 * std::abs(unweighted));
}

INSTANTIATE_TEST_SUITE_P(All, EveryShape, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Shape>& param_info) {
                           std::string name = emix::testing::describe(param_info.param.family,
                                                                      param_info.param.covariance);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Restarts are taken in order; a later one replaces the best only when higher by more than
// 1e-10 relative, so that restarts at one optimum, whose log-likelihoods differ by the grouping
// of their sums (chunks, MPI ranks: 1e-13 relative and less), do not let those bits choose.
TEST(Em, ARestartWinsOnlyBeyondRounding) {
  const double best = -2541609.2531539183;
  EXPECT_FALSE(emix::better_restart(best * (1 - 1e-13), best));  // a last-bits difference
  EXPECT_FALSE(emix::better_restart(best, best));
  EXPECT_FALSE(emix::better_restart(best * (1 + 1e-6), best));  // lower
  EXPECT_TRUE(emix::better_restart(best * (1 - 1e-8), best));   // a better optimum
  EXPECT_TRUE(emix::better_restart(0.5, -0.5));
  EXPECT_TRUE(emix::better_restart(best, -INFINITY));  // after a failed run
  EXPECT_FALSE(emix::better_restart(NAN, best));
  EXPECT_FALSE(emix::better_restart(-INFINITY, best));
}

TEST(Em, OneComponentIsTheSampleMeanAndCovariance) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 1, 3, 41);
  const emix::Sample data = emix::sample(truth, 1000, 42);
  emix::FitOptions o;
  o.n_components = 1;
  o.reg_covar = 0;
  const emix::FitReport r = emix::fit(emix::DataView::host(data.x.data(), 1000, 3), o);
  std::vector<double> mean(3, 0.0), cov(9, 0.0);
  for (int i = 0; i < 1000; ++i) {
    for (int a = 0; a < 3; ++a) mean[a] += data.x[i * 3 + a] / 1000;
  }
  for (int i = 0; i < 1000; ++i) {
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) {
        cov[a * 3 + b] += (data.x[i * 3 + a] - mean[a]) * (data.x[i * 3 + b] - mean[b]) / 1000;
      }
    }
  }
  EXPECT_LE(emix::testing::max_relative_difference(r.model.means, mean), 1e-12);
  EXPECT_LE(emix::testing::max_relative_difference(r.model.covariances, cov), 1e-12);
  EXPECT_TRUE(r.converged);
}

// Five components on three distinct points, duplicated (30 rows, D = 1), two of them started
// far from every point: they empty in the first E-step and are re-seeded.
struct ThreePointsFiveComponents {
  std::vector<double> x;
  emix::FitOptions options;
  ThreePointsFiveComponents() {
    for (int i = 0; i < 30; ++i) x.push_back(i % 3 == 0 ? 0.0 : (i % 3 == 1 ? 10.0 : 20.0));
    options.n_components = 5;
    options.covariance = Covariance::kSpherical;
    options.max_iter = 20;
    emix::Model init;
    init.covariance = Covariance::kSpherical;
    init.n_components = 5;
    init.n_features = 1;
    init.weights = {0.2, 0.2, 0.2, 0.2, 0.2};
    init.means = {0, 10, 20, 1000, 2000};
    init.covariances = {1, 1, 1, 1, 1};
    options.init_model = init;
  }
  emix::FitReport fit() const { return emix::fit(emix::DataView::host(x.data(), 30, 1), options); }
};

TEST(Em, EmptyComponentIsReseededNotNan) {
  ThreePointsFiveComponents p;
  p.options.tol = 0;
  const emix::FitReport r = p.fit();
  bool reseeded = false;
  for (const auto& w : r.warnings) reseeded |= w.find("re-seeded") != std::string::npos;
  EXPECT_TRUE(reseeded);
  for (double v : r.model.means) EXPECT_TRUE(std::isfinite(v));
  for (double v : r.model.covariances) EXPECT_TRUE(std::isfinite(v) && v > 0);
  EXPECT_TRUE(std::isfinite(r.log_likelihood));
}

// The change in log-likelihood across a step that re-seeded is not an EM step's: with a tol that
// any change meets, the fit above still takes the step after its re-seeds before it converges.
TEST(Em, AStepThatReseededDoesNotCountTowardConvergence) {
  ThreePointsFiveComponents p;
  p.options.tol = 1e300;
  const emix::FitReport r = p.fit();
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.n_iter, 2);
  p.options.max_iter = 1;  // the first step's re-seeds, as the test above checks
  bool reseeded = false;
  for (const auto& w : p.fit().warnings) {
    reseeded |= w.find("iteration 1: component") != std::string::npos;
  }
  EXPECT_TRUE(reseeded);
}

// Constant data (one point, N times) with the default reg_covar: every component sits on the
// point with covariance reg_covar, and each row's log-density is -D/2 log(2 pi reg_covar),
// whatever the weights. With K >= 3, k-means leaves components no row chose, with an identity
// covariance; restarted from it beside components of variance 1e-6 they took a 1e-12 share and
// emptied again every step, until "components kept collapsing" failed the fit (scikit-learn
// fits it). They now restart from the other components' covariance.
TEST(Em, ConstantDataFitsEveryComponentOnThePoint) {
  for (const double value : {0.0, 5.0}) {
    const std::vector<double> x(1000 * 3, value);
    for (const Covariance covariance :
         {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical, Covariance::kTied}) {
      for (const int k : {3, 5}) {
        emix::FitOptions o;
        o.n_components = k;
        o.covariance = covariance;
        o.seed = 0;
        emix::FitReport r;
        ASSERT_NO_THROW(r = emix::fit(emix::DataView::host(x.data(), 1000, 3), o))
            << emix::to_string(covariance) << " K = " << k;
        const double exact = -1.5 * std::log(2 * M_PI * o.reg_covar);
        // The covariance is reg_covar plus the scatter of equal rows about their mean (round-off
        // of 5.0); 1e-9 relative allows for that, far below a wrong model.
        EXPECT_NEAR(r.mean_log_likelihood, exact, 1e-9 * std::abs(exact))
            << emix::to_string(covariance) << " K = " << k;
        EXPECT_TRUE(r.converged);
      }
    }
  }
}

// Data scaled by a power of two fit the scaled model (exactly in exact arithmetic) until their
// variances near the smallest normal number, where the engine's flush-to-zero drops products of
// responsibilities and squared deviations: the fit then refuses them, naming the remedy, where
// it returned covariances 5 % off (float64 data scaled by 1e-154) or 10 % off (float32, 1e-19).
TEST(Em, VariancesNearTheSubnormalsAreRefusedAboveThemExact) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 2, 9);
  const emix::Sample s = emix::sample(truth, 2000, 10);
  const auto fit_scaled = [&](int exponent, bool as_float) {
    std::vector<double> x = s.x;
    for (double& v : x) v = std::ldexp(v, exponent);
    std::vector<float> xf(x.begin(), x.end());
    emix::FitOptions o;
    o.n_components = 2;
    o.covariance = Covariance::kDiag;
    o.reg_covar = 0;
    o.seed = 3;
    return as_float ? emix::fit(emix::DataView::host(xf.data(), 2000, 2), o)
                    : emix::fit(emix::DataView::host(x.data(), 2000, 2), o);
  };
  const emix::FitReport plain = fit_scaled(0, false);
  const emix::FitReport small = fit_scaled(-440, false);  // variances about 2^-880, 1e-265
  for (std::size_t i = 0; i < plain.model.covariances.size(); ++i) {
    EXPECT_NEAR(std::ldexp(small.model.covariances[i], 880), plain.model.covariances[i],
                1e-10 * plain.model.covariances[i]);
  }
  // Below 2^-512 the start's own sums of squares are flushed to zero: a variance of 0, which
  // was blamed on rows that coincide ("increase reg_covar"), for data of 2000 distinct rows;
  // so were rows at 2^-500 that differ by 2^-530 (their deviations' squares flush).
  for (const auto& [exponent, as_float] : {std::pair{-505, false}, std::pair{-515, false},
                                           std::pair{-540, false}, std::pair{-62, true}}) {
    try {
      fit_scaled(exponent, as_float);
      ADD_FAILURE() << "data scaled by 2^" << exponent << " were fitted";
    } catch (const emix::NumericalError& e) {
      EXPECT_NE(std::string(e.what()).find("flushes to zero"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rescale the data"), std::string::npos) << e.what();
    }
  }
  // From a start far above the data's scale, every component reaches it at the first M-step:
  // each was re-seeded as "collapsed (singular covariance)" from its own covariance, every step,
  // and the fit ended in "kept collapsing" (or, at tol 0, returned the start unfitted).
  std::vector<double> x = s.x;
  for (double& v : x) v = std::ldexp(v, -505);
  emix::FitOptions o;
  o.n_components = 2;
  o.covariance = Covariance::kDiag;
  o.reg_covar = 0;
  o.init_model = truth;
  for (double& m : o.init_model->means) m = std::ldexp(m, -505);
  for (const double tol : {1e-3, 0.0}) {
    o.tol = tol;
    o.max_iter = 10;
    try {
      emix::fit(emix::DataView::host(x.data(), 2000, 2), o);
      ADD_FAILURE() << "data of variance 2^-1010 from a start of variance 1 were fitted";
    } catch (const emix::NumericalError& e) {
      EXPECT_NE(std::string(e.what()).find("the covariance of every component has a variance"),
                std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("rescale the data"), std::string::npos) << e.what();
    }
  }
  std::vector<double> offset = s.x;
  for (double& v : offset) v = std::ldexp(1.0, -500) + std::ldexp(v, -530);
  emix::FitOptions single;
  single.n_components = 1;
  single.reg_covar = 0;
  try {
    emix::fit(emix::DataView::host(offset.data(), 2000, 2), single);
    ADD_FAILURE() << "rows of 2^-500 + 2^-530 N(0, 1) were fitted";
  } catch (const emix::NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("flushes to zero"), std::string::npos) << e.what();
  }
  // Rows that coincide at 2^-400, where distinct rows' deviations (at least 2^-452) square to
  // normal numbers: nothing was flushed, and the message names the rows, not the scale.
  std::vector<double> same(200, std::ldexp(1.0, -400));
  try {
    emix::fit(emix::DataView::host(same.data(), 100, 2), single);
    ADD_FAILURE() << "100 coinciding rows were fitted with reg_covar 0";
  } catch (const emix::NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("rows that coincide"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("flushes to zero"), std::string::npos) << e.what();
  }
}

// A cluster of identical rows gives its k-means start a singular covariance when reg_covar is
// 0; the fit starts that component from the data's overall covariance, says so, and goes on
// (scikit-learn stops with "ill-defined empirical covariance"; emix stopped before iteration 0).
TEST(Em, ASingularStartingCovarianceStartsFromTheOverallOne) {
  const std::vector<double> x = emix::testing::rows_with_a_coinciding_cluster();
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical}) {
    emix::FitOptions o;
    o.n_components = 3;
    o.covariance = covariance;
    o.reg_covar = 0;
    o.max_iter = 5;
    o.seed = 1;
    emix::FitReport r;
    ASSERT_NO_THROW(r = emix::fit(emix::DataView::host(x.data(), 600, 3), o))
        << emix::to_string(covariance);
    bool noted = false;
    for (const auto& w : r.warnings) {
      noted |= w.find("had a singular covariance") != std::string::npos &&
               w.find("started from the data's overall covariance") != std::string::npos;
    }
    // A spherical variance of equal rows may round to a tiny positive number instead of 0,
    // which counts as singular too (covariance_unresolved).
    EXPECT_TRUE(noted) << emix::to_string(covariance);
    EXPECT_TRUE(std::isfinite(r.log_likelihood));
  }
}

// Rows in a subspace (a constant column) with reg_covar 0, from a start the caller gives (a
// valid covariance that k-means' start would not have): every M-step's covariance is singular,
// and re-seeding cannot help. The fit said so only after max_iter re-seeds, returned a model of
// a random row's mean and the start's covariance, and blamed duplicated rows (an audit's
// report); scikit-learn stops at the first step. Now the fit stops at the first collapse,
// naming the subspace.
TEST(Em, AGivenStartOnRowsInASubspaceStopsAtTheFirstCollapse) {
  std::mt19937_64 rng(24);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int n = 500;
  std::vector<double> x;
  for (int i = 0; i < n; ++i) x.insert(x.end(), {normal(rng), normal(rng), 2.5});
  for (const Covariance covariance : {Covariance::kFull, Covariance::kDiag}) {
    for (const int k : {1, 3}) {
      emix::Model start;
      start.covariance = covariance;
      start.n_components = k;
      start.n_features = 3;
      start.weights.assign(k, 1.0 / k);
      for (int c = 0; c < k; ++c) start.means.insert(start.means.end(), {c - 1.0, 0.0, 2.5});
      start.covariances.assign(start.covariance_size(), 0.0);
      for (int c = 0; c < k; ++c) {
        for (int j = 0; j < 3; ++j) {
          start.covariances[covariance == Covariance::kFull ? c * 9 + j * 4 : c * 3 + j] = 1.0;
        }
      }
      emix::FitOptions o;
      o.n_components = k;
      o.covariance = covariance;
      o.reg_covar = 0;
      o.init_model = start;
      const std::string where =
          std::string(emix::to_string(covariance)) + ", K " + std::to_string(k);
      try {
        emix::fit(emix::DataView::host(x.data(), n, 3), o);
        ADD_FAILURE() << where << ": fitted";
      } catch (const emix::NumericalError& e) {
        EXPECT_NE(std::string(e.what()).find("lie in a subspace"), std::string::npos)
            << where << ": " << e.what();
      }
      // With reg_covar the same start fits: the check does not refuse a fit that can go on.
      o.reg_covar = 1e-6;
      EXPECT_NO_THROW(emix::fit(emix::DataView::host(x.data(), n, 3), o)) << where;
    }
  }
}

// Five points repeated five times, K = 8 and reg_covar 0 (a user's report): components on
// coinciding rows got covariances of 1e-37 to 1e-202 (the far rows' negligible shares), which the
// factorisation's relative test passed. Their log-densities ran to 1e44, and two equal
// log-likelihoods between re-seeds called the fit converged at -3e44 a row. Such a covariance
// now counts as collapsed (covariance_unresolved), a step that re-seeded does not count toward
// convergence, and a fit whose components kept collapsing to its end fails, saying why (its
// model, returned with a warning, had covariances of 1e-23 and a log-likelihood of -2e21 a row),
// or stops where a collapsed component has nothing valid to restart from.
TEST(Em, ComponentsThatKeepCollapsingOnCoincidingRowsFailTheFit) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> points(10);
  for (double& v : points) v = normal(rng);
  std::vector<double> x;
  for (int p = 0; p < 5; ++p) {
    for (int r = 0; r < 5; ++r) x.insert(x.end(), {points[2 * p], points[2 * p + 1]});
  }
  int kept_collapsing = 0;
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical}) {
    for (const std::uint64_t seed : {1, 2, 3, 4, 5, 6}) {
      emix::FitOptions o;
      o.n_components = 8;
      o.covariance = covariance;
      o.reg_covar = 0;
      o.seed = seed;
      const std::string where =
          std::string(emix::to_string(covariance)) + ", seed " + std::to_string(seed);
      try {
        const emix::FitReport r = emix::fit(emix::DataView::host(x.data(), 25, 2), o);
        ADD_FAILURE() << where << ": fitted, converged " << r.converged << ", "
                      << r.mean_log_likelihood << " a row";
      } catch (const emix::NumericalError& e) {
        const std::string why = e.what();
        EXPECT_NE(why.find("increase reg_covar"), std::string::npos) << where << ": " << why;
        kept_collapsing += why.find("kept collapsing to the end") != std::string::npos;
      }
    }
  }
  EXPECT_GT(kept_collapsing, 0);
}

// Two clusters and one far row, K = 3 and reg_covar 0: the third component shrinks onto the far
// row. Restarted at a random row with its own last covariance (the one shrinking), it took that
// row alone and collapsed again a step later, 196 times in 200 iterations, and the fit did not
// converge. A collapsed component now restarts from the other components' covariances, by
// weight, and the fit converges after a few re-seeds.
TEST(Em, ACollapsedComponentRestartsFromTheOtherComponentsCovariances) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x;
  for (int i = 0; i < 1000; ++i) {
    const double shift = i < 500 ? 0.0 : 5.0;
    x.insert(x.end(), {normal(rng) + shift, normal(rng) + shift});
  }
  x.insert(x.end(), {100.0, 100.0});
  const std::int64_t n = 1001;
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical}) {
    const std::string where = emix::to_string(covariance);
    emix::Model start;
    start.covariance = covariance;
    start.n_components = 3;
    start.n_features = 2;
    start.weights = {0.45, 0.45, 0.1};
    start.means = {0.0, 0.0, 5.0, 5.0, 100.0, 100.0};
    start.covariances.assign(start.covariance_size(), 0.0);
    const std::size_t per = start.covariance_size() / 3;
    for (int c = 0; c < 3; ++c) {
      for (int j = 0; j < (covariance == Covariance::kSpherical ? 1 : 2); ++j) {
        start.covariances[c * per + (covariance == Covariance::kFull ? j * 3 : j)] =
            c == 2 ? 1e-2 : 1.0;
      }
    }
    emix::FitOptions o;
    o.n_components = 3;
    o.covariance = covariance;
    o.reg_covar = 0;
    o.init_model = start;
    o.seed = 2;
    // One iteration: component 2 (on the far row alone) collapses and is re-seeded; the model
    // returned is the re-seeded one.
    o.max_iter = 1;
    const emix::FitReport one = emix::fit(emix::DataView::host(x.data(), n, 2), o);
    ASSERT_FALSE(one.warnings.empty()) << where;
    EXPECT_NE(one.warnings[0].find("component 2 collapsed"), std::string::npos) << where;
    const emix::Model& m = one.model;
    const double total = m.weights[0] + m.weights[1];
    for (std::size_t i = 0; i < per; ++i) {
      const double pooled =
          (m.weights[0] * m.covariances[i] + m.weights[1] * m.covariances[per + i]) / total;
      // The weights were renormalised after the pool was taken: their ratio keeps it to a few
      // units in the last place.
      EXPECT_NEAR(m.covariances[2 * per + i], pooled, 1e-14 * (std::abs(pooled) + 1))
          << where << ", element " << i;
    }
    o.max_iter = 200;
    const emix::FitReport all = emix::fit(emix::DataView::host(x.data(), n, 2), o);
    EXPECT_TRUE(all.converged) << where << ": " << all.n_iter << " iterations";
    const auto reseeds = std::count_if(
        all.warnings.begin(), all.warnings.end(),
        [](const std::string& w) { return w.find("re-seeded") != std::string::npos; });
    EXPECT_LE(reseeds, 3) << where;
  }
}

// A standard deviation under half a unit in the last place of the mean is what a collapse onto
// coinciding rows leaves; one of a few units, or the same variance beside a small mean, is
// data's (nanosecond timestamps near 1.7e18 a microsecond apart, values near 1e8 spread by
// 5e-8, which scikit-learn fits with reg_covar 0 and a first version of this rule refused).
TEST(Em, AVarianceWithinTheMeansRoundingIsUnresolved) {
  emix::Model m;
  m.family = Family::kGaussian;
  m.n_components = 2;
  m.n_features = 2;
  m.weights = {0.5, 0.5};
  m.means = {1.0, -2.0, 1e-20, 3e-21};
  for (const Covariance covariance :
       {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical}) {
    m.covariance = covariance;
    const double v = 1e-37;  // (eps / 4)^2 = 3.1e-33 beside a mean of 1; 1e-3 of 1e-20's
    if (covariance == Covariance::kFull) m.covariances = {v, 0, 0, v, v, 0, 0, v};
    if (covariance == Covariance::kDiag) m.covariances = {v, v, v, v};
    if (covariance == Covariance::kSpherical) m.covariances = {v, v};
    EXPECT_TRUE(emix::covariance_unresolved(m, 0)) << emix::to_string(covariance);
    EXPECT_FALSE(emix::covariance_unresolved(m, 1)) << emix::to_string(covariance);
    for (double& c : m.covariances) c = c == v ? 1e-30 : c;  // a sd of 4.5 eps
    EXPECT_FALSE(emix::covariance_unresolved(m, 0)) << emix::to_string(covariance);
  }
  m.covariance = Covariance::kDiag;
  m.covariances = {1.0, 1e-37, 1.0, 1.0};  // one coordinate is enough
  EXPECT_TRUE(emix::covariance_unresolved(m, 0));
  m.means = {1.7e18, 1e8, 1.7e18, 1e8};
  m.covariances = {1e6, 2.5e-15, 8e3, 2e-17};
  EXPECT_FALSE(emix::covariance_unresolved(m, 0));  // sd 1000 and 5e-8: 3.9 and 3.4 ulps
  EXPECT_TRUE(emix::covariance_unresolved(m, 1));   // sd 89 and 4.5e-9: 0.35 and 0.30 ulps
  m.covariance = Covariance::kTied;
  m.covariances = {1e-37, 0, 0, 1e-37};
  EXPECT_FALSE(emix::covariance_unresolved(m, 0));  // the tied rules are numerically_singular's
}

// Two equal columns and reg_covar 0: every full covariance of the data is singular, though its
// Cholesky factorisation may succeed with a pivot of 1e-16 of the variance (rounding). That
// gave a log-density of +16 per row and a "converged" model with K = 1, which select then chose
// as the best; it is an error now (scikit-learn's "ill-defined empirical covariance"), for one
// component or several, on data drawn with several seeds (most gave such a model before).
TEST(Em, ColumnsThatRepeatEachOtherAreAnErrorWithoutReg_covar) {
  for (const std::uint64_t data_seed : {1, 2, 3, 4, 5, 6, 7, 8}) {
    std::mt19937_64 rng(data_seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> x;
    for (int i = 0; i < 1000; ++i) {
      const double v = normal(rng) + (i % 2 == 0 ? 5.0 : 0.0);
      x.insert(x.end(), {v, v});
    }
    const emix::DataView view = emix::DataView::host(x.data(), 1000, 2);
    for (const int k : {1, 2}) {
      emix::FitOptions o;
      o.n_components = k;
      o.reg_covar = 0;
      EXPECT_THROW(emix::fit(view, o), emix::NumericalError)
          << "K = " << k << ", data " << data_seed;
      // The default reg_covar: a valid model, each covariance's least eigenvalue about reg_covar
      // (the line's width; 1e-16 of the variance before).
      o.reg_covar = 1e-6;
      const emix::FitReport r = emix::fit(view, o);
      for (int c = 0; c < k; ++c) {
        const double* a = &r.model.covariances[static_cast<std::size_t>(c) * 4];
        const double mean = (a[0] + a[3]) / 2, det = a[0] * a[3] - a[1] * a[2];
        const double least = mean - std::sqrt(mean * mean - det);
        EXPECT_GT(least, 0.5e-6) << "K = " << k << ", component " << c;
      }
    }
  }
}

// A column that sums 19 others of spread 1000: the covariance's least eigenvalue is reg_covar
// (1e-6) beside a variance of 2e7 in that column, a pivot far below what the reg_covar = 0 rule
// above takes for rounding. With reg_covar > 0 every eigenvalue has that floor, and the fit goes
// on as scikit-learn's does (it briefly failed with "singular", one component or three).
TEST(Em, AColumnThatSumsTheOthersFitsWithReg_covar) {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> normal(0.0, 1000.0);
  const int d = 20;
  std::vector<double> x;
  for (int i = 0; i < 2000; ++i) {
    double sum = 0;
    for (int j = 0; j + 1 < d; ++j) {
      const double v = normal(rng) + (i % 3) * 5000.0;
      x.push_back(v);
      sum += v;
    }
    x.push_back(sum);
  }
  const emix::DataView view = emix::DataView::host(x.data(), 2000, d);
  for (const int k : {1, 3}) {
    emix::FitOptions o;
    o.n_components = k;
    o.max_iter = 20;
    emix::FitReport r;
    ASSERT_NO_THROW(r = emix::fit(view, o)) << "K = " << k;
    EXPECT_TRUE(std::isfinite(r.log_likelihood)) << "K = " << k;
  }
}

// Greedy k-means++ (2 + ln K candidates a step, the one leaving the least potential kept, as
// scikit-learn seeds): 16 separated components in 16-D (means drawn N(0, 20^2) in each feature),
// 30,000 rows, and the default initialisation from ten seeds. With one candidate a step, 1 of
// the 10 reached the best fit here, the others 0.37-1.1 a row below it (a user's report: 8 of 20
// on 2e5 rows of `emix generate`, where scikit-learn reached it from 9 of 10).
TEST(Initialisation, EverySeedReachesTheBestFitOfSixteenComponents) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 16, 16, 21, 1, 20);
  const emix::Sample s = emix::sample(truth, 30000, 22);
  const emix::DataView view = emix::DataView::host(s.x.data(), 30000, 16);
  std::vector<double> scores;
  for (const std::uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
    emix::FitOptions o;
    o.n_components = 16;
    o.seed = seed;
    scores.push_back(emix::fit(view, o).mean_log_likelihood);
  }
  const double best = *std::max_element(scores.begin(), scores.end());
  for (std::size_t i = 0; i < scores.size(); ++i) {
    // tol is 1e-3 a row: fits that reach the same optimum stop within it of each other.
    EXPECT_GT(scores[i], best - 2e-3) << "seed " << i + 1;
  }
}

// Fits N = 100,000 points drawn from a known mixture and matches components to the truth by
// their nearest parameters.
class Recovery : public ::testing::TestWithParam<Shape> {};

TEST_P(Recovery, KnownMixtureIsFittedBack) {
  const Shape s = GetParam();
  // A Bernoulli mixture needs many features to be well identified (3 components on 4 binary
  // features have 14 parameters for 15 pattern frequencies); binomial counts carry more.
  const int k = 3, d = s.family == Family::kBernoulli ? 12 : 4;
  emix::Model truth = emix::testing::random_model(s.family, s.covariance, k, d, 51, 10, 6.0);
  truth.weights = {0.2, 0.3, 0.5};
  const std::int64_t n = 100000;
  const emix::Sample data = emix::sample(truth, n, 52);
  emix::FitOptions o = options_for(s, k);
  o.trials = truth.trials;
  o.n_init = 3;
  o.seed = 53;
  o.tol = 1e-8;
  o.max_iter = 500;
  const emix::FitReport r = emix::fit(emix::DataView::host(data.x.data(), n, d), o);
  const std::vector<double>& fitted_loc =
      s.family == Family::kGaussian ? r.model.means : r.model.probabilities;
  const std::vector<double>& true_loc =
      s.family == Family::kGaussian ? truth.means : truth.probabilities;
  for (int c = 0; c < k; ++c) {
    int match = 0;
    double best = INFINITY;
    for (int f = 0; f < k; ++f) {
      double dist = 0;
      for (int j = 0; j < d; ++j) {
        dist += std::pow(fitted_loc[f * d + j] - true_loc[c * d + j], 2);
      }
      if (dist < best) best = dist, match = f;
    }
    // Standard errors with >= 20,000 points per component are ~1% of a unit spread; these
    // tolerances are several of them.
    EXPECT_NEAR(r.model.weights[match], truth.weights[c], 0.01) << "component " << c;
    const double loc_tol = s.family == Family::kGaussian ? 0.05 : 0.01;
    for (int j = 0; j < d; ++j) {
      EXPECT_NEAR(fitted_loc[match * d + j], true_loc[c * d + j], loc_tol);
    }
    if (s.family == Family::kGaussian && s.covariance == Covariance::kFull) {
      for (int j = 0; j < d * d; ++j) {
        EXPECT_NEAR(r.model.covariances[match * d * d + j], truth.covariances[c * d * d + j], 0.05);
      }
    }
    if (s.family == Family::kGaussian && s.covariance == Covariance::kDiag) {
      for (int j = 0; j < d; ++j) {
        EXPECT_NEAR(r.model.covariances[match * d + j], truth.covariances[c * d + j],
                    0.05 * truth.covariances[c * d + j]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, Recovery,
                         ::testing::Values(Shape{Family::kGaussian, Covariance::kFull},
                                           Shape{Family::kGaussian, Covariance::kDiag},
                                           Shape{Family::kBernoulli, Covariance::kFull},
                                           Shape{Family::kBinomial, Covariance::kFull}),
                         [](const ::testing::TestParamInfo<Shape>& param_info) {
                           std::string name = emix::testing::describe(param_info.param.family,
                                                                      param_info.param.covariance);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
