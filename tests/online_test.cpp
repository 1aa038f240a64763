// Online (stepwise) EM on a stationary stream: batches drawn again and again from one data set
// converge to the exact EM fit of that data set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

// Largest |a - b| over the largest |b|, at least 1.
double distance(const std::vector<double>& a, const std::vector<double>& b) {
  return emix::testing::max_relative_difference(a, b, 1.0);
}

double model_distance(const emix::Model& a, const emix::Model& b) {
  return std::max({distance(a.weights, b.weights), distance(a.means, b.means),
                   distance(a.covariances, b.covariances),
                   distance(a.probabilities, b.probabilities)});
}

struct Stream {
  std::vector<double> x;
  std::int64_t n;
  int d;
  emix::Model start;
  emix::Model exact;
};

Stream make_stream(Family family, Covariance covariance, std::uint64_t seed) {
  Stream s;
  s.n = 20000;
  // Bernoulli mixtures of few features are nearly unidentifiable (a flat likelihood that EM of
  // either kind crosses slowly): twelve features separate the components.
  s.d = family == Family::kGaussian ? 3 : 12;
  const emix::Model truth = emix::testing::random_model(family, covariance, 3, s.d, seed, 8, 6.0);
  s.x = emix::sample(truth, s.n, seed + 1).x;
  s.start = truth;
  for (double& m : s.start.means) m += 0.3;
  for (double& c : s.start.covariances) c *= 1.4;
  for (double& p : s.start.probabilities) p = 0.8 * p + 0.1;
  emix::FitOptions o;
  o.family = family;
  o.covariance = covariance;
  o.trials = truth.trials;
  o.n_components = 3;
  o.init_model = s.start;
  o.tol = 1e-12;
  o.max_iter = 2000;
  o.engine.device = emix::Device::kCpu;
  s.exact = emix::fit(emix::DataView::host(s.x.data(), s.n, s.d), o).model;
  return s;
}

// Epochs of shuffled batches of 200 rows; returns the distance to the exact fit after each of
// the given epochs.
std::vector<double> run_online(const Stream& s, std::vector<int> report_after) {
  emix::OnlineEm online(s.start);
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  std::vector<std::int64_t> order(static_cast<std::size_t>(s.n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(99);
  std::vector<double> batch(200 * static_cast<std::size_t>(s.d));
  std::vector<double> out;
  const int epochs = report_after.back();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::int64_t first = 0; first < s.n; first += 200) {
      for (std::int64_t r = 0; r < 200; ++r) {
        std::copy_n(s.x.begin() + order[first + r] * s.d, s.d, batch.begin() + r * s.d);
      }
      online.partial_fit(emix::DataView::host(batch.data(), 200, s.d), cpu);
    }
    if (std::find(report_after.begin(), report_after.end(), epoch) != report_after.end()) {
      out.push_back(model_distance(online.model(), s.exact));
    }
  }
  return out;
}

// After 20 epochs (2000 steps of size 2000^-0.6 ~ 0.01 on batches whose statistics scatter by
// about 1/sqrt(200) ~ 0.07 of their size) the parameters are within 2e-2 of the exact fit's,
// on the scale of each array (3e-3 measured on all three), and closer than after 2 epochs.
TEST(OnlineEm, ConvergesToTheExactFitOnAStationaryStream) {
  const std::pair<Family, Covariance> kinds[] = {{Family::kGaussian, Covariance::kFull},
                                                 {Family::kGaussian, Covariance::kDiag},
                                                 {Family::kBernoulli, Covariance::kFull}};
  for (const auto& [family, covariance] : kinds) {
    SCOPED_TRACE(emix::testing::describe(family, covariance) + " seed 7");
    const Stream s = make_stream(family, covariance, 7);
    const std::vector<double> d = run_online(s, {2, 20});
    EXPECT_LT(d[1], 2e-2);
    EXPECT_LT(d[1], d[0]);
  }
}

TEST(OnlineEm, FirstStepIsOneEmIterationOnTheBatch) {
  const Stream s = make_stream(Family::kGaussian, Covariance::kFull, 8);
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  const emix::DataView batch = emix::DataView::host(s.x.data(), 500, s.d);
  emix::OnlineEm online(s.start);
  online.partial_fit(batch, cpu);
  // Step 0 has size 1: the batch's statistics replace the initial model's.
  const emix::Model em = emix::maximize(s.start, emix::accumulate(s.start, batch, cpu));
  EXPECT_LT(model_distance(online.model(), em), 1e-12);
  EXPECT_EQ(online.steps(), 1);
  EXPECT_THROW(emix::OnlineEm(s.start, emix::OnlineOptions{0.4, 1.0, {}}), emix::InvalidArgument);
  EXPECT_THROW(emix::OnlineEm(s.start, emix::OnlineOptions{0.6, 0.5, {}}), emix::InvalidArgument);
}

// The running statistics start as the model's own: their M-step gives the model back, for every
// family and covariance type. (Zero statistics, as before, give NaN means.)
TEST(OnlineEm, TheRunningStatisticsStartAsTheModelsOwn) {
  const std::pair<Family, Covariance> kinds[] = {
      {Family::kGaussian, Covariance::kFull},  {Family::kGaussian, Covariance::kTied},
      {Family::kGaussian, Covariance::kDiag},  {Family::kGaussian, Covariance::kSpherical},
      {Family::kBernoulli, Covariance::kFull}, {Family::kBinomial, Covariance::kFull}};
  for (const auto& [family, covariance] : kinds) {
    SCOPED_TRACE(emix::testing::describe(family, covariance));
    const emix::Model model = emix::testing::random_model(family, covariance, 4, 5, 21, 8, 6.0);
    emix::OnlineOptions options;
    options.mstep.reg_covar = 1e-3;
    const emix::OnlineEm online(model, options);
    const emix::Statistics implied = emix::Statistics::implied_by(model, 1e-3);
    EXPECT_EQ(online.running_statistics().values(), implied.values());
    EXPECT_EQ(implied.weight_sum(), 1.0);
    // 1e-12: one division and one addition per parameter, in double.
    EXPECT_LT(model_distance(emix::maximize(model, implied, options.mstep), model), 1e-12);
  }
}

// step_decay 1 and step_offset m + 1: the first step's statistics are the mean of the model's
// (as m batches) and the batch's. One full-covariance component: mean and covariance in closed
// form.
// The M-step's options were taken unchecked: a NaN reg_covar failed at the first batch blaming a
// scale factor, a negative one at the first batch.
TEST(OnlineEm, TheMStepsOptionsAreCheckedByTheConstructors) {
  const emix::Model model =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, /*seed=*/4);
  for (const double reg_covar : {std::nan(""), -1.0}) {
    emix::OnlineOptions options;
    options.mstep.reg_covar = reg_covar;
    try {
      emix::OnlineEm online(model, options);
      ADD_FAILURE() << "reg_covar " << reg_covar << " was taken";
    } catch (const emix::OptionError& e) {
      EXPECT_EQ(e.option(), "reg_covar");
    }
    EXPECT_THROW(emix::OnlineEm(model, options, emix::Statistics(model), 1, 0.0),
                 emix::OptionError);
  }
  emix::OnlineOptions options;
  options.mstep.prob_epsilon = 0.7;
  EXPECT_THROW(emix::OnlineEm(model, options), emix::OptionError);
}

TEST(OnlineEm, AStepOffsetWeighsTheModelAsThatManyBatches) {
  emix::Model model;
  model.covariance = Covariance::kFull;
  model.n_components = 1;
  model.n_features = 2;
  model.weights = {1.0};
  model.means = {1.0, -2.0};
  model.covariances = {2.0, 0.3, 0.3, 1.0};
  emix::Model other = model;
  other.means = {3.0, 0.5};
  other.covariances = {1.0, -0.2, -0.2, 0.5};
  const std::int64_t n = 500;
  const std::vector<double> x = emix::sample(other, n, 5).x;

  const double m = 9, reg = 1e-6, gamma = 1.0 / (m + 1);
  emix::OnlineOptions options;
  options.step_decay = 1.0;
  options.step_offset = m + 1;
  options.mstep.reg_covar = reg;
  emix::OnlineEm online(model, options);
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  online.partial_fit(emix::DataView::host(x.data(), n, 2), cpu);

  // The batch's mean and second moment about the model's mean, then the blend.
  double xbar[2] = {0, 0}, q[2][2] = {{0, 0}, {0, 0}};
  for (std::int64_t r = 0; r < n; ++r) {
    for (int i = 0; i < 2; ++i) {
      xbar[i] += x[r * 2 + i] / n;
      for (int j = 0; j < 2; ++j) {
        q[i][j] += (x[r * 2 + i] - model.means[i]) * (x[r * 2 + j] - model.means[j]) / n;
      }
    }
  }
  double delta[2];
  for (int i = 0; i < 2; ++i) delta[i] = gamma * (xbar[i] - model.means[i]);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(online.model().means[i], model.means[i] + delta[i], 1e-12);
    for (int j = 0; j < 2; ++j) {
      const double sigma = model.covariances[i * 2 + j] - (i == j ? reg : 0.0);
      const double expected =
          (1 - gamma) * sigma + gamma * q[i][j] - delta[i] * delta[j] + (i == j ? reg : 0.0);
      EXPECT_NEAR(online.model().covariances[i * 2 + j], expected, 1e-12);
    }
  }
}

}  // namespace
