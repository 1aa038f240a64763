// The C API's statistics functions against the C++ ones: statistics of two halves merged,
// serialised and maximised give bitwise the C++ results; bad calls give statuses and messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "emix/emix.h"
#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

TEST(CapiStatistics, MatchTheCppApi) {
  const emix::Model truth =
      emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kFull, 3, 4, 71);
  const std::int64_t n = 1000;
  const std::vector<double> x = emix::sample(truth, n, 72).x;
  emix_model* model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_FULL, 3, 4, 1, truth.weights.data(),
                              truth.means.data(), truth.covariances.data(), nullptr, &model),
            EMIX_OK)
      << emix_last_error();
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  ASSERT_EQ(emix_options_set_device(options, EMIX_DEVICE_CPU), EMIX_OK);

  emix_statistics *first = nullptr, *second = nullptr;
  ASSERT_EQ(
      emix_accumulate(model, options, x.data(), 600, 4, EMIX_FLOAT64, EMIX_HOST, nullptr, &first),
      EMIX_OK)
      << emix_last_error();
  ASSERT_EQ(emix_accumulate(model, options, x.data() + 600 * 4, 400, 4, EMIX_FLOAT64, EMIX_HOST,
                            nullptr, &second),
            EMIX_OK);
  ASSERT_EQ(emix_statistics_merge(first, second), EMIX_OK);

  // The same in C++.
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  emix::Statistics cpp = emix::accumulate(truth, emix::DataView::host(x.data(), 600, 4), cpu);
  cpp.merge(emix::accumulate(truth, emix::DataView::host(x.data() + 600 * 4, 400, 4), cpu));

  int64_t size = 0;
  ASSERT_EQ(emix_statistics_serialize(first, nullptr, 0, &size), EMIX_OK);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  ASSERT_EQ(emix_statistics_serialize(first, bytes.data(), size, &size), EMIX_OK);
  EXPECT_EQ(bytes, cpp.serialize());
  double ll = 0, w = 0;
  ASSERT_EQ(emix_statistics_totals(first, &ll, &w), EMIX_OK);
  EXPECT_EQ(ll, cpp.log_likelihood());
  EXPECT_EQ(w, 1000.0);
  double entropy = -1;
  ASSERT_EQ(emix_statistics_entropy(first, &entropy), EMIX_OK);
  EXPECT_EQ(entropy, cpp.entropy());
  EXPECT_GT(entropy, 0.0);
  EXPECT_EQ(emix_statistics_entropy(first, nullptr), EMIX_INVALID_ARGUMENT);

  emix_statistics* back = nullptr;
  ASSERT_EQ(emix_statistics_deserialize(bytes.data(), size, &back), EMIX_OK);
  emix_model* next = nullptr;
  ASSERT_EQ(emix_maximize(model, back, options, &next), EMIX_OK) << emix_last_error();
  const emix::Model expected = emix::maximize(truth, cpp);
  std::vector<double> means(12);
  ASSERT_EQ(emix_model_get_means(next, means.data()), EMIX_OK);
  EXPECT_EQ(means, expected.means);

  // Failures: a status and a message naming the problem, no exception.
  const std::int64_t needed = size;
  std::int64_t told = 0;
  EXPECT_EQ(emix_statistics_serialize(first, bytes.data(), needed - 1, &told),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("the statistics need"), std::string::npos);
  EXPECT_EQ(told, needed);  // the size to allocate, also from the failed call
  // A failed creating call sets its output to NULL (a variable still holding a live handle would
  // lose it, hence a fresh one).
  emix_statistics* refused = first;
  EXPECT_EQ(emix_statistics_deserialize(bytes.data(), 5, &refused), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("header"), std::string::npos);
  EXPECT_EQ(refused, nullptr);
  EXPECT_EQ(emix_statistics_merge(first, nullptr), EMIX_INVALID_ARGUMENT);
  refused = second;
  EXPECT_EQ(emix_accumulate(nullptr, options, x.data(), 10, 4, EMIX_FLOAT64, EMIX_HOST, nullptr,
                            &refused),
            EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(refused, nullptr);

  emix_model_destroy(next);
  emix_statistics_destroy(back);
  emix_statistics_destroy(first);
  emix_statistics_destroy(second);
  emix_model_destroy(model);
  emix_options_destroy(options);
}

// A C caller can tell when statistics summed about the model's means lost digits of the new
// covariances (two tight clusters 100 standard deviations of the model from its means), and take
// the exact step as emix_fit does: the same rows again about the new means. Both calls give
// bitwise what the C++ API gives, and the exact step is emix_fit's first step to 1e-12.
TEST(CapiStatistics, AStepWhoseSumsLostDigitsIsDetectedAndTakenAgainAboutTheNewMeans) {
  const int k = 2, d = 2;
  const std::int64_t n = 400;
  std::vector<double> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      const double wobble = 1e-3 * static_cast<double>((i * 7 + j * 3) % 11 - 5);
      x[static_cast<std::size_t>(i * d + j)] = (i < n / 2 ? 1000.0 : -1000.0) + wobble;
    }
  }
  const std::vector<double> weights{0.5, 0.5}, means{900, 900, -900, -900};
  const std::vector<double> covariances{1, 0, 0, 1, 1, 0, 0, 1};
  emix_model* model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_FULL, k, d, 1, weights.data(), means.data(),
                              covariances.data(), nullptr, &model),
            EMIX_OK)
      << emix_last_error();
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  ASSERT_EQ(emix_options_set_device(options, EMIX_DEVICE_CPU), EMIX_OK);

  emix_statistics* about_means = nullptr;
  ASSERT_EQ(emix_accumulate(model, options, x.data(), n, d, EMIX_FLOAT64, EMIX_HOST, nullptr,
                            &about_means),
            EMIX_OK);
  emix_model* rough = nullptr;
  ASSERT_EQ(emix_maximize(model, about_means, options, &rough), EMIX_OK) << emix_last_error();
  int lost = -1;
  ASSERT_EQ(emix_scatter_lost_digits(rough, about_means, &lost), EMIX_OK) << emix_last_error();
  EXPECT_EQ(lost, 1);

  std::vector<double> new_means(static_cast<std::size_t>(k * d));
  ASSERT_EQ(emix_model_get_means(rough, new_means.data()), EMIX_OK);
  emix_statistics* about_new = nullptr;
  ASSERT_EQ(emix_accumulate_about(model, options, new_means.data(), x.data(), n, d, EMIX_FLOAT64,
                                  EMIX_HOST, nullptr, &about_new),
            EMIX_OK)
      << emix_last_error();
  emix_model* exact = nullptr;
  ASSERT_EQ(emix_maximize(model, about_new, options, &exact), EMIX_OK) << emix_last_error();
  ASSERT_EQ(emix_scatter_lost_digits(exact, about_new, &lost), EMIX_OK);
  EXPECT_EQ(lost, 0);
  std::vector<double> got(static_cast<std::size_t>(k * d * d));
  ASSERT_EQ(emix_model_get_covariances(exact, got.data()), EMIX_OK);

  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  const emix::DataView view = emix::DataView::host(x.data(), n, d);
  emix::Model start;
  start.family = emix::Family::kGaussian;
  start.covariance = emix::Covariance::kFull;
  start.n_components = k;
  start.n_features = d;
  start.weights = weights;
  start.means = means;
  start.covariances = covariances;
  const emix::Model cpp = emix::maximize(start, emix::accumulate_about(start, new_means, view, cpu),
                                         emix::MStepOptions{});
  EXPECT_EQ(got, cpp.covariances);
  emix::FitOptions one_step;
  one_step.n_components = k;
  one_step.init_model = start;
  one_step.max_iter = 1;
  one_step.tol = 0;
  one_step.engine = cpu;
  const emix::Model fitted = emix::fit(view, one_step).model;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], fitted.covariances[i], 1e-12 * std::abs(fitted.covariances[i] + 1e-300))
        << i;
  }
  std::vector<double> rough_covariances(got.size());
  ASSERT_EQ(emix_model_get_covariances(rough, rough_covariances.data()), EMIX_OK);
  EXPECT_GT(std::abs(rough_covariances[0] - fitted.covariances[0]),
            1e-9 * fitted.covariances[0]);  // what the check is for

  emix_statistics* refused = about_new;
  EXPECT_EQ(emix_accumulate_about(model, options, nullptr, x.data(), n, d, EMIX_FLOAT64, EMIX_HOST,
                                  nullptr, &refused),
            EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(refused, nullptr);
  EXPECT_NE(std::string(emix_last_error()).find("centres"), std::string::npos);
  EXPECT_EQ(emix_scatter_lost_digits(rough, about_means, nullptr), EMIX_INVALID_ARGUMENT);

  emix_model_destroy(exact);
  emix_statistics_destroy(about_new);
  emix_model_destroy(rough);
  emix_statistics_destroy(about_means);
  emix_model_destroy(model);
  emix_options_destroy(options);
}

// emix_maximize names components left without weight in the new model's warnings, and refuses
// statistics without any weight (whose M-step would give NaN weights).
TEST(CapiStatistics, MaximizeReportsEmptyComponentsAndRefusesNoWeight) {
  const double weights[2] = {0.5, 0.5}, means[2] = {0.0, 100.0}, variances[2] = {1.0, 1.0};
  emix_model* model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_DIAG, 2, 1, 1, weights, means, variances, nullptr,
                              &model),
            EMIX_OK)
      << emix_last_error();
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  ASSERT_EQ(emix_options_set_device(options, EMIX_DEVICE_CPU), EMIX_OK);
  const double x[4] = {-1.0, 0.0, 1.0, 0.5};  // all far from component 1's mean

  emix_statistics* statistics = nullptr;
  ASSERT_EQ(emix_accumulate(model, options, x, 4, 1, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
            EMIX_OK);
  emix_model* next = nullptr;
  ASSERT_EQ(emix_maximize(model, statistics, options, &next), EMIX_OK) << emix_last_error();
  int count = 0;
  ASSERT_EQ(emix_model_warning_count(next, &count), EMIX_OK);
  ASSERT_EQ(count, 1);
  const char* text = nullptr;
  ASSERT_EQ(emix_model_warning(next, 0, &text), EMIX_OK);
  EXPECT_NE(std::string(text).find("component(s) 1 (0-based) had no weight"), std::string::npos)
      << text;
  emix_model_destroy(next);
  emix_statistics_destroy(statistics);

  const double zero[4] = {0, 0, 0, 0};
  ASSERT_EQ(emix_accumulate(model, options, x, 4, 1, EMIX_FLOAT64, EMIX_HOST, zero, &statistics),
            EMIX_OK);
  next = nullptr;
  EXPECT_EQ(emix_maximize(model, statistics, options, &next), EMIX_INVALID_ARGUMENT);
  // The library's "maximize: " after the call's name said once.
  EXPECT_EQ(std::string(emix_last_error()).rfind("emix_maximize: the statistics hold no weight", 0),
            0u)
      << emix_last_error();
  EXPECT_EQ(next, nullptr);
  emix_statistics_destroy(statistics);

  // Options out of range: the message names the option and its value, as emix_fit's do.
  ASSERT_EQ(emix_accumulate(model, options, x, 4, 1, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
            EMIX_OK);
  ASSERT_EQ(emix_options_set_reg_covar(options, -1.0), EMIX_OK);
  EXPECT_EQ(emix_maximize(model, statistics, options, &next), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("reg_covar is -1, must be a finite number >= 0"),
            std::string::npos)
      << emix_last_error();
  ASSERT_EQ(emix_options_set_reg_covar(options, 1e-6), EMIX_OK);
  ASSERT_EQ(emix_options_set_prob_epsilon(options, 5.0), EMIX_OK);
  EXPECT_EQ(emix_maximize(model, statistics, options, &next), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(
      std::string(emix_last_error()).find("prob_epsilon is 5, must be in [2^-53 (1.1e-16), 0.5)"),
      std::string::npos)
      << emix_last_error();
  EXPECT_EQ(next, nullptr);
  emix_statistics_destroy(statistics);
  emix_model_destroy(model);
  emix_options_destroy(options);
}

// Two full components of unit covariance at `means`, the statistics of `rows` rows x (2
// features), and emix_maximize with reg_covar 0: refused, naming covariance `component` and what
// to do; with the default reg_covar, a model.
void expect_collapse_refused(const double* means, const double* x, std::int64_t rows,
                             int component) {
  const double weights[2] = {0.5, 0.5}, covariances[8] = {1, 0, 0, 1, 1, 0, 0, 1};
  emix_model* model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_FULL, 2, 2, 0, weights, means, covariances,
                              nullptr, &model),
            EMIX_OK)
      << emix_last_error();
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  ASSERT_EQ(emix_options_set_device(options, EMIX_DEVICE_CPU), EMIX_OK);
  emix_statistics* statistics = nullptr;
  ASSERT_EQ(
      emix_accumulate(model, options, x, rows, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
      EMIX_OK);
  ASSERT_EQ(emix_options_set_reg_covar(options, 0.0), EMIX_OK);
  emix_model* next = nullptr;
  EXPECT_EQ(emix_maximize(model, statistics, options, &next), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error())
                .find("covariance " + std::to_string(component) + " is not positive definite"),
            std::string::npos)
      << emix_last_error();
  EXPECT_NE(std::string(emix_last_error()).find("a fit re-seeds such a component"),
            std::string::npos)
      << emix_last_error();
  EXPECT_EQ(next, nullptr);
  ASSERT_EQ(emix_options_set_reg_covar(options, 1e-6), EMIX_OK);  // the default: no collapse
  ASSERT_EQ(emix_maximize(model, statistics, options, &next), EMIX_OK) << emix_last_error();
  emix_model_destroy(next);
  emix_statistics_destroy(statistics);
  emix_model_destroy(model);
  emix_options_destroy(options);
}

// A component that takes one row with reg_covar 0 collapses (its covariance all zeros):
// emix_maximize returned EMIX_OK and a model that every later call refused, emix_model_write
// included, with no warning saying which component.
TEST(CapiStatistics, MaximizeRefusesACollapsedComponentNamingIt) {
  const double means[4] = {0, 0, 100, 100};
  const double x[10] = {0.1, 0.2, -0.3, 0.5, 0.7, -0.1, 0.2, 0.2, 100, 100};  // one row near 1
  expect_collapse_refused(means, x, 5, 1);
}

// Rows on the line y = x: component 0's new covariance is singular, but rounding left its
// Cholesky factorisation a pivot just above 0, which the model check passes; emix_maximize
// returned EMIX_OK, and the model scored a row off the line at -4.5e15. A fit calls the same
// covariance singular (16 d epsilon of a variance), and so does emix_maximize now.
TEST(CapiStatistics, MaximizeRefusesACovarianceSingularToRounding) {
  const double means[4] = {0.5, 0.5, 2.5, 2.5};
  const double x[8] = {0, 0, 1, 1, 2, 2, 3, 3};
  expect_collapse_refused(means, x, 4, 0);
  // The case this test is for: the model check alone passes the M-step's result.
  emix::Model start;
  start.n_components = 2;
  start.n_features = 2;
  start.weights = {0.5, 0.5};
  start.means.assign(means, means + 4);
  start.covariances = {1, 0, 0, 1, 1, 0, 0, 1};
  emix::MStepOptions unregularised;
  unregularised.reg_covar = 0;
  const emix::Model stepped =
      emix::maximize(start, emix::accumulate(start, emix::DataView::host(x, 4, 2)), unregularised);
  // (Where rounding leaves the pivot at or below 0 instead, as another instruction set may, the
  // model check refuses it alone; either way emix_maximize must.)
  try {
    stepped.validate();
  } catch (const emix::InvalidArgument&) {
    std::printf("note: this build's rounding leaves the pivot at or below 0\n");
  }
  // A tied covariance has no component to re-seed: the advice is reg_covar's.
  emix::Model tied = start;
  tied.covariance = emix::Covariance::kTied;
  tied.covariances = {1, 0, 0, 1};
  emix_model* tied_model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_TIED, 2, 2, 0, tied.weights.data(),
                              tied.means.data(), tied.covariances.data(), nullptr, &tied_model),
            EMIX_OK)
      << emix_last_error();
  emix_statistics* statistics = nullptr;
  ASSERT_EQ(
      emix_accumulate(tied_model, nullptr, x, 4, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
      EMIX_OK);
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  ASSERT_EQ(emix_options_set_reg_covar(options, 0.0), EMIX_OK);
  emix_model* next = nullptr;
  EXPECT_EQ(emix_maximize(tied_model, statistics, options, &next), EMIX_INVALID_ARGUMENT);
  const std::string message = emix_last_error();
  EXPECT_NE(message.find("model: tied covariance is not positive definite: the rows lie in a "
                         "subspace"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("re-seeds"), std::string::npos) << message;
  emix_options_destroy(options);
  emix_statistics_destroy(statistics);
  emix_model_destroy(tied_model);
}

}  // namespace
