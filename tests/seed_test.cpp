// The course exercise emix grew from (../shared/seed/homework-em.md): the three-coin model,
// whose printed iterates are right, and the 15-point Gaussian mixture, checked here against an
// independent EM written in the test (the seed's own script had bugs).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "emix/emix.hpp"

namespace {

using emix::Covariance;
using emix::Family;

const std::vector<double> kCoins = {1, 1, 0, 1, 0, 0, 1, 0, 1, 1};

emix::Model three_coin_model(double pi, double p, double q) {
  emix::Model m;
  m.family = Family::kBernoulli;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {pi, 1 - pi};
  m.probabilities = {p, q};
  return m;
}

emix::FitReport three_coin_fit(double pi, double p, double q, int iterations) {
  emix::FitOptions o;
  o.family = Family::kBernoulli;
  o.n_components = 2;
  o.init_model = three_coin_model(pi, p, q);
  o.tol = 0;
  o.max_iter = iterations;
  o.engine.device = emix::Device::kCpu;
  return emix::fit(emix::DataView::host(kCoins.data(), 10, 1), o);
}

struct CoinCase {
  double pi0, p0, q0;
  double pi, p, q;  // the seed's theta(1) = theta(2), printed to 4 decimals
};

class ThreeCoins : public ::testing::TestWithParam<CoinCase> {};

TEST_P(ThreeCoins, FirstTwoIteratesMatchTheSeed) {
  const CoinCase c = GetParam();
  // The seed prints 4 decimals: a correct value lies within half a unit of the last digit.
  const double tol = 0.5e-4 + 1e-12;
  for (int iterations : {1, 2}) {
    const emix::FitReport r = three_coin_fit(c.pi0, c.p0, c.q0, iterations);
    ASSERT_EQ(r.n_iter, iterations);
    EXPECT_NEAR(r.model.weights[0], c.pi, tol) << "theta(" << iterations << ")";
    EXPECT_NEAR(r.model.probabilities[0], c.p, tol) << "theta(" << iterations << ")";
    EXPECT_NEAR(r.model.probabilities[1], c.q, tol) << "theta(" << iterations << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Seed, ThreeCoins,
                         ::testing::Values(CoinCase{0.46, 0.55, 0.67, 0.4619, 0.5346, 0.6561},
                                           CoinCase{0.5, 0.5, 0.5, 0.5, 0.6, 0.6},
                                           CoinCase{0.4, 0.6, 0.7, 0.4064, 0.5368, 0.6432}),
                         [](const ::testing::TestParamInfo<CoinCase>& param_info) {
                           return "start" + std::to_string(param_info.index);
                         });

TEST(ThreeCoins, ReportsTheRidgeOfEqualLikelihood) {
  const emix::FitReport r = three_coin_fit(0.46, 0.55, 0.67, 2);
  bool warned = false;
  for (const std::string& w : r.warnings) warned |= w.find("not identifiable") != std::string::npos;
  EXPECT_TRUE(warned);
  // On the ridge pi p + (1 - pi) q equals the sample mean, 0.6.
  const auto& m = r.model;
  EXPECT_NEAR(m.weights[0] * m.probabilities[0] + m.weights[1] * m.probabilities[1], 0.6, 1e-12);
}

// The ridge in more features: a mixture with more free parameters than its rows' distribution
// (one probability per possible row, less one) is not identifiable either. Two Bernoulli
// components on two features (5 parameters, 3 cells) are warned about; on three (7, 7) not; three
// binomial components of 2 trials on two features (8, 8) not, four (11, 8) are.
TEST(ThreeCoins, MoreParametersThanTheRowsDistributionAreReported) {
  struct Case {
    Family family;
    int k, d, trials;
    bool warned;
  };
  for (const Case c :
       {Case{Family::kBernoulli, 2, 2, 1, true}, Case{Family::kBernoulli, 2, 3, 1, false},
        Case{Family::kBinomial, 3, 2, 2, false}, Case{Family::kBinomial, 4, 2, 2, true}}) {
    std::vector<double> x(static_cast<std::size_t>(40) * c.d);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<double>((i * 7 + i / 5) % (c.trials + 1));
    emix::FitOptions o;
    o.family = c.family;
    o.trials = c.trials;
    o.n_components = c.k;
    o.max_iter = 5;
    o.engine.device = emix::Device::kCpu;
    const emix::FitReport r = emix::fit(emix::DataView::host(x.data(), 40, c.d), o);
    bool warned = false;
    for (const std::string& w : r.warnings)
      warned |= w.find("not identifiable") != std::string::npos;
    EXPECT_EQ(warned, c.warned) << emix::to_string(c.family) << " K = " << c.k << ", D = " << c.d;
  }
}

// ---- the 15-point Gaussian mixture ----

const std::vector<double> kPoints = {-67, -48, 6, 8, 14, 16, 23, 24, 28, 29, 41, 49, 56, 60, 75};

struct Gmm1d {
  double alpha1, mu1, mu2, var1, var2;
};

// Textbook EM for two 1-D Gaussians, written from the formulas (10)-(13) of the seed, with
// both variances around the new means (the seed's script used the old ones, and component 1's
// responsibilities for component 2).
Gmm1d reference_step(const Gmm1d& t) {
  const double pi = std::acos(-1.0);
  double n1 = 0, n2 = 0, s1 = 0, s2 = 0;
  std::vector<double> g1(kPoints.size());
  for (std::size_t j = 0; j < kPoints.size(); ++j) {
    const double y = kPoints[j];
    const double p1 =
        t.alpha1 * std::exp(-(y - t.mu1) * (y - t.mu1) / (2 * t.var1)) / std::sqrt(2 * pi * t.var1);
    const double p2 = (1 - t.alpha1) * std::exp(-(y - t.mu2) * (y - t.mu2) / (2 * t.var2)) /
                      std::sqrt(2 * pi * t.var2);
    g1[j] = p1 / (p1 + p2);
    n1 += g1[j];
    n2 += 1 - g1[j];
    s1 += g1[j] * y;
    s2 += (1 - g1[j]) * y;
  }
  Gmm1d next;
  next.mu1 = s1 / n1;
  next.mu2 = s2 / n2;
  double v1 = 0, v2 = 0;
  for (std::size_t j = 0; j < kPoints.size(); ++j) {
    const double y = kPoints[j];
    v1 += g1[j] * (y - next.mu1) * (y - next.mu1);
    v2 += (1 - g1[j]) * (y - next.mu2) * (y - next.mu2);
  }
  next.var1 = v1 / n1;
  next.var2 = v2 / n2;
  next.alpha1 = n1 / static_cast<double>(kPoints.size());
  return next;
}

class FifteenPoints : public ::testing::TestWithParam<Gmm1d> {};

std::string fifteen_point_start_name(const ::testing::TestParamInfo<Gmm1d>& param_info) {
  static const char* const kNames[] = {"seed_init_A", "seed_init_B", "asymmetric"};
  return kNames[param_info.index];
}

TEST_P(FifteenPoints, EveryIterateMatchesAnIndependentEm) {
  const Gmm1d start = GetParam();
  emix::Model m;
  m.family = Family::kGaussian;
  m.covariance = Covariance::kFull;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {start.alpha1, 1 - start.alpha1};
  m.means = {start.mu1, start.mu2};
  m.covariances = {start.var1, start.var2};
  Gmm1d expected = start;
  // The seed's starts (two identical components) sit on a symmetric fixed point that is
  // unstable: any rounding difference between two correct implementations grows by a constant
  // factor per iteration (about 1e-16 to 1e-7 in 30 iterations). Ten iterations keep that
  // growth well below the tolerance while a real error would show at once.
  for (int iterations = 1; iterations <= 10; ++iterations) {
    expected = reference_step(expected);
    emix::FitOptions o;
    o.n_components = 2;
    o.init_model = m;
    o.tol = 0;
    o.max_iter = iterations;
    o.reg_covar = 0;
    o.engine.device = emix::Device::kCpu;
    const emix::FitReport r = emix::fit(emix::DataView::host(kPoints.data(), 15, 1), o);
    // Same arithmetic up to summation order: 1e-9 relative leaves room for rounding
    // amplified over ten iterations, and is far below any real disagreement.
    const double tol = 1e-9;
    EXPECT_NEAR(r.model.weights[0], expected.alpha1, tol * 1) << "iteration " << iterations;
    EXPECT_NEAR(r.model.means[0], expected.mu1, tol * std::abs(expected.mu1) + 1e-9);
    EXPECT_NEAR(r.model.means[1], expected.mu2, tol * std::abs(expected.mu2) + 1e-9);
    EXPECT_NEAR(r.model.covariances[0], expected.var1, tol * expected.var1);
    EXPECT_NEAR(r.model.covariances[1], expected.var2, tol * expected.var2);
  }
}

// The seed's two starting points (each with two identical components), and an asymmetric one
// whose iterates actually separate the components.
INSTANTIATE_TEST_SUITE_P(Seed, FifteenPoints,
                         ::testing::Values(Gmm1d{0.5, 100, 100, 1000, 1000},
                                           Gmm1d{0.4, 10, 10, 100, 100},
                                           Gmm1d{0.3, -50, 30, 200, 600}),
                         fifteen_point_start_name);

TEST(FifteenPoints, IdenticalComponentsStayIdenticalAtTheOneGaussianSolution) {
  // Two equal components are a fixed point of EM: both converge to the data's mean and
  // (biased) variance, here 20.9333 and 1329.66.
  emix::FitOptions o;
  o.n_components = 2;
  emix::Model m;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {0.5, 0.5};
  m.means = {100, 100};
  m.covariances = {1000, 1000};
  o.init_model = m;
  o.tol = 1e-12;
  o.max_iter = 500;
  o.reg_covar = 0;
  const emix::FitReport r = emix::fit(emix::DataView::host(kPoints.data(), 15, 1), o);
  double mean = 0, var = 0;
  for (double y : kPoints) mean += y / 15;
  for (double y : kPoints) var += (y - mean) * (y - mean) / 15;
  EXPECT_NEAR(r.model.means[0], mean, 1e-9 * std::abs(mean));
  EXPECT_NEAR(r.model.means[1], mean, 1e-9 * std::abs(mean));
  EXPECT_NEAR(r.model.covariances[0], var, 1e-9 * var);
  EXPECT_NEAR(mean, 20.9333, 1e-4);
}

}  // namespace
