// The C API's model selection against emix::select: the same candidates bitwise, their models
// through emix_selection_model equal to emix_fit's, and bad calls refused with messages.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "emix/emix.h"
#include "emix/emix.hpp"
#include "sanitizers.hpp"
#include "test_util.hpp"

namespace {

struct SelectData {
  std::int64_t n = 1500;
  std::vector<double> x, w;
};

SelectData select_data() {
  SelectData d;
  const emix::Model truth = emix::testing::random_model(emix::Family::kGaussian,
                                                        emix::Covariance::kFull, 3, 2, 81, 1, 6.0);
  d.x = emix::sample(truth, d.n, 82).x;
  for (std::int64_t i = 0; i < d.n; ++i) d.w.push_back(0.5 + static_cast<double>(i % 3));
  return d;
}

emix_options* cpu_options() {
  emix_options* options = nullptr;
  EXPECT_EQ(emix_options_create(&options), EMIX_OK);
  EXPECT_EQ(emix_options_set_device(options, EMIX_DEVICE_CPU), EMIX_OK);
  EXPECT_EQ(emix_options_set_seed(options, 4), EMIX_OK);
  EXPECT_EQ(emix_options_set_n_init(options, 2), EMIX_OK);
  return options;
}

TEST(CapiSelect, MatchesTheCppSelectionAndEmixFit) {
  const SelectData d = select_data();
  emix_options* options = cpu_options();
  const int ks[] = {1, 2, 3, 4};
  const int covariances[] = {EMIX_DIAG, EMIX_FULL};
  emix_selection* selection = nullptr;
  ASSERT_EQ(emix_select(options, ks, 4, covariances, 2, EMIX_CRITERION_ICL, d.x.data(), d.n, 2,
                        EMIX_FLOAT64, EMIX_HOST, d.w.data(), &selection),
            EMIX_OK)
      << emix_last_error();

  emix::SelectOptions o;
  o.n_components = {1, 2, 3, 4};
  o.covariances = {emix::Covariance::kDiag, emix::Covariance::kFull};
  o.criterion = emix::Criterion::kIcl;
  o.fit.engine.device = emix::Device::kCpu;
  o.fit.seed = 4;
  o.fit.n_init = 2;
  const emix::SelectReport cpp =
      emix::select(emix::DataView::host(d.x.data(), d.n, 2), o, d.w.data());

  int count = 0, best = -1, passes = 0;
  ASSERT_EQ(emix_selection_summary(selection, &count, &best, &passes), EMIX_OK);
  ASSERT_EQ(count, 8);
  EXPECT_EQ(best, static_cast<int>(cpp.best));
  EXPECT_EQ(passes, cpp.passes);
  for (int i = 0; i < count; ++i) {
    const emix::SelectCandidate& c = cpp.candidates[static_cast<std::size_t>(i)];
    SCOPED_TRACE("candidate " + std::to_string(i));
    emix_candidate got{};
    ASSERT_EQ(emix_selection_candidate(selection, i, &got), EMIX_OK);
    EXPECT_EQ(got.n_components, c.n_components);
    EXPECT_EQ(got.covariance, static_cast<int>(c.covariance));
    EXPECT_EQ(got.failed, 0);
    EXPECT_EQ(got.n_iter, c.fit.n_iter);
    EXPECT_EQ(got.best_init, c.fit.best_init);
    EXPECT_EQ(got.n_parameters, c.n_parameters);
    EXPECT_EQ(got.log_likelihood, c.fit.log_likelihood);
    EXPECT_EQ(got.bic, c.bic);
    EXPECT_EQ(got.aic, c.aic);
    EXPECT_EQ(got.icl, c.icl);
    EXPECT_EQ(got.n_warnings, static_cast<int>(c.fit.warnings.size()));
    for (int w = 0; w < got.n_warnings; ++w) {
      const char* text = nullptr;
      ASSERT_EQ(emix_selection_warning(selection, i, w, &text), EMIX_OK);
      EXPECT_EQ(std::string(text), c.fit.warnings[static_cast<std::size_t>(w)]);
    }

    // The candidate's model is emix_fit's with its K and covariance type, bitwise.
    emix_model* model = nullptr;
    ASSERT_EQ(emix_selection_model(selection, i, &model), EMIX_OK) << emix_last_error();
    ASSERT_EQ(emix_options_set_n_components(options, c.n_components), EMIX_OK);
    ASSERT_EQ(emix_options_set_covariance(options, static_cast<int>(c.covariance)), EMIX_OK);
    emix_model* fitted = nullptr;
    emix_fit_result result{};
    ASSERT_EQ(emix_fit(options, d.x.data(), d.n, 2, EMIX_FLOAT64, EMIX_HOST, d.w.data(), &fitted,
                       &result),
              EMIX_OK);
    std::vector<double> a(static_cast<std::size_t>(c.n_components) * 2),
        b(static_cast<std::size_t>(c.n_components) * 2);
    ASSERT_EQ(emix_model_get_means(model, a.data()), EMIX_OK);
    ASSERT_EQ(emix_model_get_means(fitted, b.data()), EMIX_OK);
    EXPECT_EQ(a, b);
    EXPECT_EQ(result.log_likelihood, got.log_likelihood);
    emix_model_destroy(fitted);
    emix_model_destroy(model);
  }
  emix_selection_destroy(selection);
  emix_options_destroy(options);
}

TEST(CapiSelect, BadCallsAreRefusedNamingTheProblem) {
  const SelectData d = select_data();
  emix_options* options = cpu_options();
  const int ks[] = {1, 2, 2};
  const int covariances[] = {EMIX_DIAG, 9};
  emix_selection* selection = reinterpret_cast<emix_selection*>(&selection);  // not NULL yet
  const auto refused = [&](emix_status status, const char* words) {
    EXPECT_EQ(status, EMIX_INVALID_ARGUMENT);
    EXPECT_NE(std::string(emix_last_error()).find(words), std::string::npos) << emix_last_error();
    EXPECT_EQ(selection, nullptr);  // cleared on failure
  };
  refused(emix_select(options, ks, 0, nullptr, 0, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "emix_select: n_k is 0");
  refused(emix_select(options, ks, 3, nullptr, 0, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "n_components[2] is 2, as n_components[1] is");
  refused(emix_select(options, ks, 2, covariances, 2, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "covariances[1] is 9; expected EMIX_FULL (0)");
  refused(emix_select(options, ks, 2, nullptr, 0, 3, d.x.data(), d.n, 2, EMIX_FLOAT64, EMIX_HOST,
                      nullptr, &selection),
          "criterion is 3");
  refused(emix_select(options, nullptr, 2, nullptr, 0, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "n_components is NULL");
  const int too_many[] = {3, 131073};
  refused(emix_select(options, too_many, 2, nullptr, 0, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "n_components[1] is 131073, more than init_max_rows (131072)");
  ASSERT_EQ(emix_options_set_family(options, EMIX_BERNOULLI), EMIX_OK);
  refused(emix_select(options, ks, 2, covariances, 1, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                      EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
          "covariance types apply to Gaussian mixtures only");
  ASSERT_EQ(emix_options_set_family(options, EMIX_GAUSSIAN), EMIX_OK);

  // K = 2000 exceeds the rows: that candidate fails alone, and has no model.
  const int grid[] = {2000, 3};
  ASSERT_EQ(emix_select(options, grid, 2, covariances, 1, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                        EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
            EMIX_OK)
      << emix_last_error();
  emix_candidate c{};
  ASSERT_EQ(emix_selection_candidate(selection, 0, &c), EMIX_OK);
  EXPECT_EQ(c.failed, 1);
  EXPECT_TRUE(std::isinf(c.bic));
  int best = -1;
  ASSERT_EQ(emix_selection_summary(selection, nullptr, &best, nullptr), EMIX_OK);
  EXPECT_EQ(best, 1);
  emix_model* model = reinterpret_cast<emix_model*>(&model);
  EXPECT_EQ(emix_selection_model(selection, 0, &model), EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(emix_last_error()).find("candidate 0 (K = 2000, diag) failed"),
            std::string::npos)
      << emix_last_error();
  EXPECT_EQ(emix_selection_candidate(selection, 2, &c), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("index 2 is outside [0, 2)"), std::string::npos);
  // Another kind of handle is refused, and frees nothing.
  emix_selection_destroy(reinterpret_cast<emix_selection*>(options));
  EXPECT_NE(std::string(emix_last_error()).find("not a live emix_selection"), std::string::npos);
  emix_selection_destroy(selection);
#if !EMIX_TEST_ADDRESS_SANITIZER      // reads the freed handle's tag on purpose
  emix_selection_destroy(selection);  // a second destroy frees nothing, and says so
  EXPECT_NE(std::string(emix_last_error()).find("not a live emix_selection"), std::string::npos);
#endif
  emix_options_destroy(options);
}

// A control that stops one candidate's iteration stops the whole selection: EMIX_CANCELLED and
// no handle.
TEST(CapiSelect, AControlThatStopsCancelsTheSelection) {
  const SelectData d = select_data();
  emix_options* options = cpu_options();
  int calls = 0;
  ASSERT_EQ(emix_options_set_iteration_control(
                options,
                [](const emix_iteration_info* info, void* seen) {
                  ++*static_cast<int*>(seen);
                  return info->iteration == 1 ? 1 : 0;
                },
                &calls),
            EMIX_OK);
  const int ks[] = {1, 2, 3};
  emix_selection* selection = reinterpret_cast<emix_selection*>(&calls);
  EXPECT_EQ(emix_select(options, ks, 3, nullptr, 0, EMIX_CRITERION_BIC, d.x.data(), d.n, 2,
                        EMIX_FLOAT64, EMIX_HOST, nullptr, &selection),
            EMIX_CANCELLED);
  EXPECT_EQ(selection, nullptr);
  EXPECT_GT(calls, 0);
  emix_options_destroy(options);
}

// Sample weights so large that -2 log L overflows: the fits succeed (as emix_fit's do), their
// criteria are infinite, and none is taken for a failed one (which crashed emix_select when all
// were, and emix_selection_model on the chosen one).
TEST(CapiSelect, CriteriaThatOverflowAreNotFailures) {
  std::vector<double> x, w;
  for (int i = 0; i < 100; ++i) {
    x.push_back(0.5 + 1e-3 * std::sin(0.7 * i));
    w.push_back(3e305);
  }
  emix_options* options = cpu_options();
  const int ks[] = {1, 2};
  const int full[] = {EMIX_FULL};
  emix_selection* selection = nullptr;
  ASSERT_EQ(emix_select(options, ks, 2, full, 1, EMIX_CRITERION_BIC, x.data(), 100, 1, EMIX_FLOAT64,
                        EMIX_HOST, w.data(), &selection),
            EMIX_OK)
      << emix_last_error();
  int best = -1;
  ASSERT_EQ(emix_selection_summary(selection, nullptr, &best, nullptr), EMIX_OK);
  for (int i = 0; i < 2; ++i) {
    emix_candidate c{};
    ASSERT_EQ(emix_selection_candidate(selection, i, &c), EMIX_OK);
    EXPECT_EQ(c.failed, 0) << "candidate " << i;
    EXPECT_TRUE(std::isinf(c.bic)) << "candidate " << i << ": " << c.bic;
  }
  emix_model* model = nullptr;
  EXPECT_EQ(emix_selection_model(selection, best, &model), EMIX_OK) << emix_last_error();
  emix_model_destroy(model);
  emix_selection_destroy(selection);
  emix_options_destroy(options);
}

}  // namespace
