// Options of fit(): initialisations, restarts, seeds, fixed weights, and the errors that bad
// arguments get.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/initialize.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

struct Data {
  emix::Model truth;
  emix::Sample sample;
  emix::DataView view() const {
    return emix::DataView::host(sample.x.data(), static_cast<std::int64_t>(sample.labels.size()),
                                truth.n_features);
  }
};

Data make_data(Family family, Covariance covariance, std::int64_t n, std::uint64_t seed) {
  Data data;
  data.truth = emix::testing::random_model(family, covariance, 3, 4, seed, 5, 3.0);
  data.sample = emix::sample(data.truth, n, seed + 1);
  return data;
}

emix::FitOptions options(Family family, Covariance covariance) {
  emix::FitOptions o;
  o.family = family;
  o.covariance = covariance;
  o.trials = family == Family::kBinomial ? 5 : 1;
  o.n_components = 3;
  o.engine.device = emix::Device::kCpu;
  return o;
}

TEST(Init, EveryMethodGivesAFiniteConvergedFitForEveryFamily) {
  const std::pair<Family, Covariance> shapes[] = {
      {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
      {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
      {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull}};
  for (const auto& [family, covariance] : shapes) {
    const Data data = make_data(family, covariance, 2000, 3);
    for (emix::Init init :
         {emix::Init::kKMeansPlusPlus, emix::Init::kRandom, emix::Init::kRandomFromData}) {
      emix::FitOptions o = options(family, covariance);
      o.init = init;
      o.seed = 9;
      o.max_iter = 300;
      const emix::FitReport r = emix::fit(data.view(), o);
      const std::string what =
          emix::testing::describe(family, covariance) + " init " + emix::to_string(init);
      EXPECT_TRUE(std::isfinite(r.log_likelihood)) << what;
      EXPECT_TRUE(r.converged) << what;
      EXPECT_NO_THROW(r.model.validate()) << what;
      EXPECT_EQ(r.history.size(), static_cast<std::size_t>(r.n_iter) + 1) << what;
    }
  }
}

TEST(Init, SameSeedSameModelBitwiseOtherSeedOtherStart) {
  const Data data = make_data(Family::kGaussian, Covariance::kFull, 3000, 5);
  emix::FitOptions o = options(Family::kGaussian, Covariance::kFull);
  o.seed = 77;
  o.max_iter = 3;
  o.tol = 0;
  const emix::FitReport a = emix::fit(data.view(), o);
  const emix::FitReport b = emix::fit(data.view(), o);
  ASSERT_EQ(a.model.means.size(), b.model.means.size());
  EXPECT_EQ(0, std::memcmp(a.model.means.data(), b.model.means.data(),
                           a.model.means.size() * sizeof(double)));
  EXPECT_EQ(0, std::memcmp(a.history.data(), b.history.data(), a.history.size() * sizeof(double)));
  // Another seed, another start (random responsibilities differ for every seed; k-means
  // often finds the same partition from different draws).
  o.init = emix::Init::kRandom;
  const emix::FitReport c = emix::fit(data.view(), o);
  o.seed = 78;
  const emix::FitReport d = emix::fit(data.view(), o);
  EXPECT_NE(c.history[0], d.history[0]);
}

TEST(Init, MoreRestartsNeverEndLower) {
  // Restart 0 uses the same stream for any n_init, so the best of five includes it.
  const Data data = make_data(Family::kGaussian, Covariance::kDiag, 2000, 6);
  emix::FitOptions o = options(Family::kGaussian, Covariance::kDiag);
  o.n_components = 6;  // more than the truth: several local optima
  o.init = emix::Init::kRandom;
  o.seed = 4;
  const emix::FitReport one = emix::fit(data.view(), o);
  o.n_init = 5;
  const emix::FitReport five = emix::fit(data.view(), o);
  EXPECT_GE(five.log_likelihood, one.log_likelihood);
  EXPECT_GE(five.best_init, 0);
  EXPECT_LT(five.best_init, 5);
}

TEST(FixedWeights, KeepTheInitialWeightsExactly) {
  const Data data = make_data(Family::kGaussian, Covariance::kFull, 2000, 7);
  emix::FitOptions o = options(Family::kGaussian, Covariance::kFull);
  o.init_model = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 3, 4, 8);
  o.init_model->weights = {0.5, 0.3, 0.2};
  o.fixed_weights = true;
  o.tol = 0;
  o.max_iter = 10;
  const emix::FitReport r = emix::fit(data.view(), o);
  EXPECT_EQ(r.model.weights, (std::vector<double>{0.5, 0.3, 0.2}));
  EXPECT_NE(r.model.means, o.init_model->means);  // the rest was estimated
  for (std::size_t i = 1; i < r.history.size(); ++i) {
    EXPECT_GE(r.history[i], r.history[i - 1] - 1e-10 * std::abs(r.history[i - 1]));
  }
}

TEST(InitModel, IsUsedExactlyAsGivenWithComponentOrderKept) {
  const Data data = make_data(Family::kGaussian, Covariance::kDiag, 500, 9);
  emix::FitOptions o = options(Family::kGaussian, Covariance::kDiag);
  o.init_model = data.truth;
  o.max_iter = 0;
  const emix::FitReport r = emix::fit(data.view(), o);
  EXPECT_EQ(r.model.means, data.truth.means);
  EXPECT_EQ(r.n_iter, 0);
  ASSERT_EQ(r.history.size(), 1u);
  // history[0] is the log-likelihood under the given parameters.
  const std::vector<double> lp = emix::score_samples(data.truth, data.view());
  double total = 0;
  for (double v : lp) total += v;
  EXPECT_NEAR(r.history[0], total, 1e-12 * std::abs(total));
}

// ---- errors ----

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const emix::InvalidArgument& e) {
    return e.what();
  }
  return "(no InvalidArgument thrown)";
}

TEST(Errors, NameTheBadValue) {
  const Data data = make_data(Family::kGaussian, Covariance::kFull, 20, 10);
  emix::FitOptions o = options(Family::kGaussian, Covariance::kFull);
  o.n_components = 0;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }), "n_components is 0, must be at least 1");
  o.n_components = 21;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }),
            "n_components = 21 is larger than the number of rows (20)");

  std::vector<double> x = data.sample.x;
  x[4 * 4 + 2] = std::numeric_limits<double>::quiet_NaN();
  o.n_components = 2;
  EXPECT_EQ(error_of([&] { emix::fit(emix::DataView::host(x.data(), 20, 4), o); }),
            "data: row 5, column 3 is nan");

  std::vector<double> bits(20, 1.0);
  bits[7] = 2;
  emix::FitOptions b = options(Family::kBernoulli, Covariance::kFull);
  b.n_components = 2;
  EXPECT_EQ(error_of([&] { emix::fit(emix::DataView::host(bits.data(), 20, 1), b); }),
            "data: row 8, column 1 is 2, but a Bernoulli mixture needs 0 or 1");

  std::vector<double> w(20, 1.0);
  w[3] = -1;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o, w.data()); }),
            "sample weights: row 4 is -1, but a sample weight must be a finite number >= 0");

  emix::Model bad = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 4, 11);
  bad.weights = {0.5, 0.6};
  o.init_model = bad;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }), "model: weights sum to 1.1, not 1");
  bad.weights = {0.5, 0.5};
  bad.covariances[1] += 1;  // (0, 1) of component 0, not (1, 0)
  o.init_model = bad;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }), "model: covariance 0 is not symmetric");
  bad = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 4, 11);
  for (int i = 0; i < 16; ++i) bad.covariances[i] = 1.0;  // rank one
  o.init_model = bad;
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }),
            "model: covariance 0 is not positive definite");
  o.init_model = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, 11);
  EXPECT_EQ(error_of([&] { emix::fit(data.view(), o); }),
            "init model has 3 features, but the data have 4 columns");
}

// The data are screened a block of rows at a time (16384 values) and only a block that holds a
// bad value is read again for its name. Whatever block and column it falls in, in float64 and
// float32, the first bad value in row-major order is the one named; the values each family
// does take (-0, subnormals, 0 and trials) pass.
template <typename T>
void expect_screened(Family family, int trials, const std::vector<T>& good,
                     const std::vector<std::pair<T, std::string>>& bad) {
  const std::int64_t rows = 20000, cols = 3;  // 5461 rows per block: four blocks
  std::vector<T> x(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = good[i % good.size()];
  emix::FitOptions o = options(family, Covariance::kFull);
  o.trials = trials;
  o.n_components = 1;
  o.max_iter = 0;
  const auto view = [&] { return emix::DataView::host(x.data(), rows, cols); };
  EXPECT_NO_THROW(emix::fit(view(), o)) << "the good values alone";
  const std::int64_t positions[] = {0, 5461 * cols - 1, 5461 * cols, 3 * 5461 * cols + 4,
                                    rows * cols - 1};
  for (const auto& [value, problem] : bad) {
    for (std::int64_t at : positions) {
      const T kept = x[static_cast<std::size_t>(at)];
      x[static_cast<std::size_t>(at)] = value;
      const std::string name = "data: row " + std::to_string(at / cols + 1) + ", column " +
                               std::to_string(at % cols + 1) + " " + problem;
      EXPECT_EQ(error_of([&] { emix::fit(view(), o); }), name) << sizeof(T) << " bytes";
      // A second bad value later on does not change which is named.
      const std::size_t later = static_cast<std::size_t>(std::min(at + 7, rows * cols - 1));
      const T kept_later = x[later];
      if (later != static_cast<std::size_t>(at)) x[later] = value;
      EXPECT_EQ(error_of([&] { emix::fit(view(), o); }), name) << sizeof(T) << " bytes";
      x[later] = kept_later;
      x[static_cast<std::size_t>(at)] = kept;
    }
  }
}

template <typename T>
void expect_every_family_screened() {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  expect_screened<T>(Family::kGaussian, 1,
                     {T(1.5), T(-0.0), std::numeric_limits<T>::denorm_min(), T(-3e4), T(3)},
                     {{nan, "is nan"}, {-nan, "is nan"}, {inf, "is inf"}, {-inf, "is -inf"}});
  expect_screened<T>(Family::kBernoulli, 1, {T(0), T(1), T(-0.0), T(1), T(0)},
                     {{T(2), "is 2, but a Bernoulli mixture needs 0 or 1"},
                      {T(-1), "is -1, but a Bernoulli mixture needs 0 or 1"},
                      {T(0.5), "is 0.5, but a Bernoulli mixture needs 0 or 1"},
                      {nan, "is nan"}});
  const std::string binomial =
      ", but a binomial mixture with trials = 5 needs a whole number "
      "of successes in 0..5";
  expect_screened<T>(Family::kBinomial, 5, {T(0), T(5), T(-0.0), T(2), T(3)},
                     {{T(6), "is 6" + binomial},
                      {T(-1), "is -1" + binomial},
                      {T(2.5), "is 2.5" + binomial},
                      {inf, "is inf"},
                      {nan, "is nan"}});
}

TEST(Errors, TheFirstBadValueIsNamedWhicheverBlockItIsIn) {
  expect_every_family_screened<double>();
  expect_every_family_screened<float>();
}

// Initialisation's sample: flags per row (few rows per sampled row) and a hash set (many) must
// give the same rows, in increasing order, without repeats, and use the generator alike.
TEST(InitSample, FlagsAndHashSetDrawTheSameRows) {
  const std::pair<std::int64_t, std::int64_t> cases[] = {
      {1, 1},      {64, 1},      {65, 1},   {640, 10},         {641, 10},
      {1000, 999}, {1000, 1000}, {129, 64}, {1000000, 131072}, {5000000, 1000}};
  for (const auto& [n, m] : cases) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      std::mt19937_64 a(seed), b(seed), c(seed);
      const std::vector<std::int64_t> flags = emix::sample_rows(n, m, a, emix::RowSampler::kFlags);
      const std::vector<std::int64_t> hashed =
          emix::sample_rows(n, m, b, emix::RowSampler::kHashSet);
      const std::vector<std::int64_t> automatic = emix::sample_rows(n, m, c);
      ASSERT_EQ(flags.size(), static_cast<std::size_t>(m)) << n << " " << m;
      EXPECT_EQ(flags, hashed) << n << " " << m << " seed " << seed;
      EXPECT_EQ(flags, automatic) << n << " " << m << " seed " << seed;
      EXPECT_EQ(a(), b()) << "the generators drew alike";
      EXPECT_GE(flags.front(), 0);
      EXPECT_LT(flags.back(), n);
      for (std::size_t i = 1; i < flags.size(); ++i) ASSERT_LT(flags[i - 1], flags[i]);
    }
  }
}

}  // namespace

namespace {

TEST(Criteria, BicAndAicFollowTheirDefinitionsWithScikitLearnsParameterCounts) {
  // scikit-learn's _n_parameters: covariance parameters + K * D means + K - 1 weights.
  const int k = 3, d = 4;
  const std::pair<Covariance, std::int64_t> gaussian[] = {{Covariance::kFull, k * d * (d + 1) / 2},
                                                          {Covariance::kDiag, k * d},
                                                          {Covariance::kSpherical, k},
                                                          {Covariance::kTied, d * (d + 1) / 2}};
  for (const auto& [covariance, cov_params] : gaussian) {
    const Data data = make_data(Family::kGaussian, covariance, 500, 12);
    const double log_likelihood = 500 * emix::score(data.truth, data.view());
    const std::int64_t p = cov_params + k * d + k - 1;
    EXPECT_EQ(data.truth.n_parameters(), p) << emix::to_string(covariance);
    const auto parameters = static_cast<double>(p);  // a few dozen: exact in double
    EXPECT_NEAR(emix::bic(data.truth, data.view()),
                -2 * log_likelihood + parameters * std::log(500.0),
                1e-9 * std::abs(log_likelihood));
    EXPECT_NEAR(emix::aic(data.truth, data.view()), -2 * log_likelihood + 2.0 * parameters,
                1e-9 * std::abs(log_likelihood));
  }
  const Data bits = make_data(Family::kBernoulli, Covariance::kFull, 500, 13);
  EXPECT_EQ(bits.truth.n_parameters(), k * d + k - 1);
}

}  // namespace

// The report's times: one entry per evaluated parameter set of the best restart, none negative,
// and the parts inside the whole.
TEST(Report, TimesCoverSetUpInitialisationAndEveryIteration) {
  const Data data = make_data(Family::kGaussian, Covariance::kDiag, 4000, 11);
  for (int n_init : {1, 3}) {
    emix::FitOptions o = options(Family::kGaussian, Covariance::kDiag);
    o.max_iter = 4;
    o.tol = 0;
    o.n_init = n_init;
    const emix::FitReport r = emix::fit(data.view(), o);
    ASSERT_EQ(r.iteration_seconds.size(), static_cast<std::size_t>(r.n_iter) + 1) << n_init;
    ASSERT_EQ(r.iteration_seconds.size(), r.history.size()) << n_init;
    double sum = 0;
    for (double s : r.iteration_seconds) {
      EXPECT_GE(s, 0.0);
      sum += s;
    }
    EXPECT_GT(r.init_seconds, 0.0);
    EXPECT_GE(r.setup_seconds, 0.0);
    EXPECT_LE(r.setup_seconds + r.init_seconds + sum, r.seconds) << n_init;
  }
}
