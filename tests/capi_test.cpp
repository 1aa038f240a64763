// The C API (emix/emix.h) against the C++ API it wraps: the same fits and evaluations, every
// option reaching the fit, and every failure a status code with a message (no exception).
#include "emix/emix.h"

#include <gtest/gtest.h>
#include <pthread.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sanitizers.hpp"
#include "test_util.hpp"

namespace emix {
namespace {

using testing::random_model;

// Owns the handles a test creates.
struct Handles {
  emix_options* options = nullptr;
  std::vector<emix_model*> models;
  Handles() { EXPECT_EQ(emix_options_create(&options), EMIX_OK); }
  ~Handles() {
    for (emix_model* m : models) emix_model_destroy(m);
    emix_options_destroy(options);
  }
  emix_model* keep(emix_model* m) {
    models.push_back(m);
    return m;
  }
  // A handle of a Gaussian model's arrays (emix_model_create; the C enum's covariance values are
  // Covariance's), kept; null where it failed.
  emix_model* create(const Model& m) {
    emix_model* handle = nullptr;
    EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, static_cast<int>(m.covariance), m.n_components,
                                m.n_features, 1, m.weights.data(), m.means.data(),
                                m.covariances.data(), nullptr, &handle),
              EMIX_OK)
        << emix_last_error();
    return handle == nullptr ? nullptr : keep(handle);
  }
};

std::vector<double> get(const emix_model* m, emix_status (*getter)(const emix_model*, double*),
                        std::size_t n) {
  std::vector<double> out(n);
  EXPECT_EQ(getter(m, out.data()), EMIX_OK) << emix_last_error();
  return out;
}

struct Shape {
  Family family;
  Covariance covariance;
};

class CapiFit : public ::testing::TestWithParam<Shape> {};

TEST_P(CapiFit, EqualsTheCppFitAndEvaluations) {
  const Shape s = GetParam();
  const Model truth = random_model(s.family, s.covariance, 3, 4, 21, 5);
  const Sample data = sample(truth, 800, 22);
  FitOptions cpp;
  cpp.n_components = 3;
  cpp.family = s.family;
  cpp.covariance = s.covariance;
  cpp.trials = s.family == Family::kBinomial ? 5 : 1;
  cpp.seed = 3;
  cpp.max_iter = 25;
  cpp.engine.device = Device::kCpu;
  const DataView view = DataView::host(data.x.data(), 800, 4);
  const FitReport expected = fit(view, cpp);

  Handles h;
  emix_options_set_n_components(h.options, 3);
  emix_options_set_family(h.options, static_cast<int>(s.family));
  emix_options_set_covariance(h.options, static_cast<int>(s.covariance));
  if (s.family == Family::kBinomial) emix_options_set_trials(h.options, 5);
  emix_options_set_seed(h.options, 3);
  emix_options_set_max_iter(h.options, 25);
  ASSERT_EQ(emix_options_set_device(h.options, EMIX_DEVICE_CPU), EMIX_OK);
  emix_model* model = nullptr;
  emix_fit_result result{};
  ASSERT_EQ(
      emix_fit(h.options, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, &result),
      EMIX_OK)
      << emix_last_error();
  h.keep(model);

  EXPECT_EQ(result.n_iter, expected.n_iter);
  EXPECT_EQ(result.converged, expected.converged ? 1 : 0);
  EXPECT_EQ(result.log_likelihood, expected.log_likelihood);
  int family = -1, covariance = -1, k = 0, d = 0, trials = 0;
  ASSERT_EQ(emix_model_shape(model, &family, &covariance, &k, &d, &trials), EMIX_OK);
  EXPECT_EQ(family, static_cast<int>(s.family));
  EXPECT_EQ(k, 3);
  EXPECT_EQ(d, 4);
  const Model& m = expected.model;
  EXPECT_EQ(get(model, emix_model_get_weights, 3), m.weights);
  if (s.family == Family::kGaussian) {
    EXPECT_EQ(covariance, static_cast<int>(s.covariance));
    std::int64_t size = 0;
    ASSERT_EQ(emix_model_covariance_size(model, &size), EMIX_OK);
    EXPECT_EQ(static_cast<std::size_t>(size), m.covariances.size());
    EXPECT_EQ(get(model, emix_model_get_means, 12), m.means);
    EXPECT_EQ(get(model, emix_model_get_covariances, m.covariances.size()), m.covariances);
    EXPECT_EQ(emix_model_get_probabilities(model, std::vector<double>(12).data()),
              EMIX_INVALID_ARGUMENT);
  } else {
    EXPECT_EQ(get(model, emix_model_get_probabilities, 12), m.probabilities);
    EXPECT_EQ(emix_model_get_means(model, std::vector<double>(12).data()), EMIX_INVALID_ARGUMENT);
  }
  std::int64_t p = 0;
  ASSERT_EQ(emix_model_n_parameters(model, &p), EMIX_OK);
  EXPECT_EQ(p, m.n_parameters());

  // Evaluations, with float data too.
  std::vector<float> xf(data.x.begin(), data.x.end());
  const DataView view_f = DataView::host(xf.data(), 800, 4);
  std::vector<std::int32_t> labels(800);
  ASSERT_EQ(
      emix_predict(model, h.options, xf.data(), 800, 4, EMIX_FLOAT32, EMIX_HOST, labels.data()),
      EMIX_OK);
  EXPECT_EQ(labels, predict(m, view_f, cpp.engine));
  std::vector<double> resp(800 * 3), log_prob(800);
  ASSERT_EQ(emix_predict_proba(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST,
                               resp.data()),
            EMIX_OK);
  EXPECT_EQ(resp, predict_proba(m, view));
  // float32 rows: the C API's responsibilities are the C++ ones, each row summing to 1 in double
  // (before, only the C++ function divided them by their sum: 2e-7 off through the C API).
  ASSERT_EQ(
      emix_predict_proba(model, h.options, xf.data(), 800, 4, EMIX_FLOAT32, EMIX_HOST, resp.data()),
      EMIX_OK);
  EXPECT_EQ(resp, predict_proba(m, view_f, cpp.engine));
  for (std::size_t row = 0; row < resp.size(); row += 3) {
    EXPECT_NEAR(resp[row] + resp[row + 1] + resp[row + 2], 1.0, 1e-15) << row / 3;
  }
  ASSERT_EQ(emix_score_samples(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST,
                               log_prob.data()),
            EMIX_OK);
  EXPECT_EQ(log_prob, score_samples(m, view));
  double value = 0;
  ASSERT_EQ(
      emix_score(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, nullptr, &value),
      EMIX_OK);
  EXPECT_EQ(value, score(m, view));
  ASSERT_EQ(emix_bic(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, &value),
            EMIX_OK);
  EXPECT_EQ(value, bic(m, view));
  ASSERT_EQ(emix_aic(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, &value),
            EMIX_OK);
  EXPECT_EQ(value, aic(m, view));

  // Weighted criteria count a row of weight 2 as the row twice: the first 400 rows weighted 2,
  // the rest 0, against those rows written out twice. The sums of log L run in another order:
  // equal to 1e-12 relative (800 terms of size 10 summed in double lose about 1e-13).
  std::vector<double> weights(800, 0.0);
  std::fill(weights.begin(), weights.begin() + 400, 2.0);
  std::vector<double> twice(data.x.begin(), data.x.begin() + 400 * 4);
  twice.insert(twice.end(), data.x.begin(), data.x.begin() + 400 * 4);
  using Criterion = emix_status (*)(const emix_model*, const emix_options*, const void*, int64_t,
                                    int64_t, int, int, double*);
  using WeightedCriterion = emix_status (*)(const emix_model*, const emix_options*, const void*,
                                            int64_t, int64_t, int, int, const double*, double*);
  const std::vector<std::pair<Criterion, WeightedCriterion>> criteria = {
      {emix_bic, emix_bic_weighted}, {emix_aic, emix_aic_weighted}};
  for (const auto& [unweighted, weighted] : criteria) {
    double of_weights = 0, of_repeats = 0, of_rows = 0;
    ASSERT_EQ(weighted(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST,
                       weights.data(), &of_weights),
              EMIX_OK)
        << emix_last_error();
    ASSERT_EQ(
        unweighted(model, nullptr, twice.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, &of_repeats),
        EMIX_OK);
    EXPECT_NEAR(of_weights, of_repeats, 1e-12 * std::abs(of_repeats));
    ASSERT_EQ(unweighted(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, &of_rows),
              EMIX_OK);
    EXPECT_NE(of_weights, of_rows);  // the weights reached the criterion
    ASSERT_EQ(weighted(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST, nullptr,
                       &of_weights),
              EMIX_OK);
    EXPECT_EQ(of_weights, of_rows);
    weights[7] = -1;
    EXPECT_EQ(weighted(model, nullptr, data.x.data(), 800, 4, EMIX_FLOAT64, EMIX_HOST,
                       weights.data(), &of_weights),
              EMIX_INVALID_ARGUMENT);
    EXPECT_NE(std::string(emix_last_error()).find("row 8 is -1"), std::string::npos)
        << emix_last_error();
    weights[7] = 2;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryFamily, CapiFit,
                         ::testing::Values(Shape{Family::kGaussian, Covariance::kFull},
                                           Shape{Family::kGaussian, Covariance::kDiag},
                                           Shape{Family::kGaussian, Covariance::kSpherical},
                                           Shape{Family::kGaussian, Covariance::kTied},
                                           Shape{Family::kBernoulli, Covariance::kFull},
                                           Shape{Family::kBinomial, Covariance::kFull}),
                         [](const ::testing::TestParamInfo<Shape>& param_info) {
                           std::string name = testing::describe(param_info.param.family,
                                                                param_info.param.covariance);
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

void count_iterations(const emix_iteration_info* info, void* user_data) {
  auto* seen = static_cast<std::vector<int>*>(user_data);
  seen->push_back(info->init_run * 1000 + info->iteration);
}

TEST(CapiOptions, EveryOptionReachesTheFit) {
  const Model truth = random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 5);
  const Sample data = sample(truth, 500, 6);
  Handles h;
  emix_model* start = h.create(truth);
  ASSERT_NE(start, nullptr);
  std::vector<int> seen;
  emix_options_set_n_components(h.options, 2);
  emix_options_set_covariance(h.options, EMIX_DIAG);
  emix_options_set_init_model(h.options, start);
  emix_options_set_fixed_weights(h.options, 1);
  emix_options_set_max_iter(h.options, 4);
  emix_options_set_tol(h.options, 0);
  emix_options_set_reg_covar(h.options, 1e-3);
  emix_options_set_device(h.options, EMIX_DEVICE_CPU);
  emix_options_set_n_threads(h.options, 1);
  emix_options_set_block_rows(h.options, 64);
  emix_options_set_iteration_callback(h.options, count_iterations, &seen);
  emix_model* model = nullptr;
  emix_fit_result result{};
  ASSERT_EQ(
      emix_fit(h.options, data.x.data(), 500, 3, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, &result),
      EMIX_OK)
      << emix_last_error();
  h.keep(model);
  EXPECT_EQ(result.n_iter, 4);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(get(model, emix_model_get_weights, 2), truth.weights);  // fixed

  FitOptions cpp;
  cpp.n_components = 2;
  cpp.covariance = Covariance::kDiag;
  cpp.init_model = truth;
  cpp.fixed_weights = true;
  cpp.max_iter = 4;
  cpp.tol = 0;
  cpp.reg_covar = 1e-3;
  cpp.engine.device = Device::kCpu;
  cpp.engine.n_threads = 1;
  cpp.engine.block_rows = 64;  // tiles group the sums: bitwise equality needs the same tiles
  const FitReport expected = fit(DataView::host(data.x.data(), 500, 3), cpp);
  EXPECT_EQ(get(model, emix_model_get_covariances, 6), expected.model.covariances);

  // Restarts and random initialisation: n_init picks the best, best_init says which.
  Handles r;
  emix_options_set_n_components(r.options, 2);
  emix_options_set_covariance(r.options, EMIX_DIAG);
  emix_options_set_init(r.options, EMIX_INIT_RANDOM_FROM_DATA);
  emix_options_set_n_init(r.options, 3);
  emix_options_set_seed(r.options, 8);
  emix_options_set_kmeans_iter(r.options, 2);
  emix_options_set_init_max_rows(r.options, 100);
  emix_options_set_device(r.options, EMIX_DEVICE_CPU);
  ASSERT_EQ(
      emix_fit(r.options, data.x.data(), 500, 3, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, &result),
      EMIX_OK);
  r.keep(model);
  FitOptions restarts;
  restarts.n_components = 2;
  restarts.covariance = Covariance::kDiag;
  restarts.init = Init::kRandomFromData;
  restarts.n_init = 3;
  restarts.seed = 8;
  restarts.kmeans_iter = 2;
  restarts.init_max_rows = 100;
  restarts.engine.device = Device::kCpu;
  const FitReport best = fit(DataView::host(data.x.data(), 500, 3), restarts);
  EXPECT_EQ(result.best_init, best.best_init);
  EXPECT_EQ(result.log_likelihood, best.log_likelihood);
}

TEST(CapiModels, FilesRoundTripAndWarningsAreReadable) {
  const Model truth = random_model(Family::kBernoulli, Covariance::kFull, 2, 1, 9);
  std::vector<double> x(400);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 3 == 0 ? 1.0 : 0.0;
  Handles h;
  emix_options_set_n_components(h.options, 2);
  emix_options_set_family(h.options, EMIX_BERNOULLI);
  emix_options_set_device(h.options, EMIX_DEVICE_CPU);
  emix_model* model = nullptr;
  emix_fit_result result{};
  ASSERT_EQ(
      emix_fit(h.options, x.data(), 400, 1, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, &result),
      EMIX_OK);
  h.keep(model);
  // One Bernoulli feature: not identifiable, which the fit reports as a warning.
  int count = 0;
  ASSERT_EQ(emix_model_warning_count(model, &count), EMIX_OK);
  EXPECT_EQ(count, result.n_warnings);
  ASSERT_GE(count, 1);
  const char* text = nullptr;
  ASSERT_EQ(emix_model_warning(model, count - 1, &text), EMIX_OK);
  EXPECT_NE(std::string(text).find("not identifiable"), std::string::npos) << text;
  EXPECT_EQ(emix_model_warning(model, count, &text), EMIX_INVALID_ARGUMENT);

  const std::string path = ::testing::TempDir() + "capi_model.json";
  ASSERT_EQ(emix_model_write(model, path.c_str()), EMIX_OK) << emix_last_error();
  emix_model* back = nullptr;
  ASSERT_EQ(emix_model_read(path.c_str(), &back), EMIX_OK) << emix_last_error();
  h.keep(back);
  EXPECT_EQ(get(back, emix_model_get_probabilities, 2),
            get(model, emix_model_get_probabilities, 2));
  EXPECT_EQ(get(back, emix_model_get_weights, 2), get(model, emix_model_get_weights, 2));
  // The model read back keeps the file's record of its fit: its warnings, and the same file
  // when written again (an audit found both dropped), with an "estimator" section a Python save
  // added.
  int back_count = 0;
  ASSERT_EQ(emix_model_warning_count(back, &back_count), EMIX_OK);
  EXPECT_EQ(back_count, count);
  ASSERT_EQ(emix_model_warning(back, count - 1, &text), EMIX_OK);
  EXPECT_NE(std::string(text).find("not identifiable"), std::string::npos) << text;
  const auto read_json = [](const std::string& file) {
    std::ifstream in(file);
    return nlohmann::ordered_json::parse(in);
  };
  nlohmann::ordered_json written = read_json(path);
  ASSERT_TRUE(written.contains("fit"));
  written["estimator"] = {{"class", "BernoulliMixture"}};
  {
    std::ofstream out(path);
    out << written.dump();
  }
  emix_model* third = nullptr;
  ASSERT_EQ(emix_model_read(path.c_str(), &third), EMIX_OK) << emix_last_error();
  h.keep(third);
  const std::string again = path + ".again.json";
  ASSERT_EQ(emix_model_write(third, again.c_str()), EMIX_OK) << emix_last_error();
  EXPECT_EQ(read_json(again), written);

  // A section with fields missing or of other types is written back as it was, not as a record
  // read into a report (which invented log_likelihood 0, n_iter 0, converged false, ...); an
  // "estimator" section too, which other programs own (null was read, then refused on writing).
  written["fit"] = {{"n_iter", "x"}, {"warnings", {"note", 3}}};
  written["estimator"] = nullptr;
  {
    std::ofstream out(path);
    out << written.dump();
  }
  emix_model* fourth = nullptr;
  ASSERT_EQ(emix_model_read(path.c_str(), &fourth), EMIX_OK) << emix_last_error();
  h.keep(fourth);
  ASSERT_EQ(emix_model_warning_count(fourth, &back_count), EMIX_OK);
  EXPECT_EQ(back_count, 1);  // the one string among the file's warnings
  ASSERT_EQ(emix_model_write(fourth, again.c_str()), EMIX_OK) << emix_last_error();
  EXPECT_EQ(read_json(again), written);
  std::remove(path.c_str());
  std::remove(again.c_str());
}

// A caller that destroys its handles after a failed call, or checks them for NULL, must find
// NULL there, not what the variable held before (a handle destroyed earlier, or garbage).
TEST(CapiErrors, AFailedCallLeavesItsOutputNull) {
  Handles h;
  const double x[6] = {0, 1, 2, 3, NAN, 5};
  auto* const stale_model = reinterpret_cast<emix_model*>(std::uintptr_t{0xdeadbeef});
  emix_model* model = stale_model;
  EXPECT_EQ(emix_fit(h.options, x, 3, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
  model = stale_model;
  EXPECT_EQ(emix_model_read("/nonexistent/model.json", &model), EMIX_IO_ERROR);
  EXPECT_EQ(model, nullptr);
  model = stale_model;
  const double weights[2] = {0.7, 0.7}, means[2] = {0, 1}, variances[2] = {1, 1};
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, 2, 1, 1, weights, means, variances,
                              nullptr, &model),
            EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
  auto* statistics = reinterpret_cast<emix_statistics*>(std::uintptr_t{0xdeadbeef});
  const unsigned char junk[16] = {};
  EXPECT_NE(emix_statistics_deserialize(junk, sizeof junk, &statistics), EMIX_OK);
  EXPECT_EQ(statistics, nullptr);
  statistics = reinterpret_cast<emix_statistics*>(std::uintptr_t{0xdeadbeef});
  EXPECT_EQ(
      emix_accumulate(nullptr, nullptr, x, 3, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
      EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(statistics, nullptr);
  model = stale_model;
  EXPECT_EQ(emix_maximize(nullptr, nullptr, nullptr, &model), EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(model, nullptr);
}

// One spherical unit Gaussian at the origin of 2-D, for the tests of the calls around a model.
emix_model* unit_model() {
  const double weight[1] = {1}, centre[2] = {0, 0}, unit[1] = {1};
  emix_model* model = nullptr;
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, 1, 2, 1, weight, centre, unit, nullptr,
                              &model),
            EMIX_OK)
      << emix_last_error();
  return model;
}

// Stops at the iteration user_data points to, counting the calls in the next int.
int stop_at_iteration(const emix_iteration_info* info, void* user_data) {
  int* state = static_cast<int*>(user_data);
  ++state[1];
  return info->iteration == state[0] ? 1 : 0;
}

// The iteration control stops a fit where the callback can only watch it: EMIX_CANCELLED, no
// model, a message naming where it stopped. Setting a plain callback afterwards removes it.
TEST(CapiOptions, TheIterationControlStopsTheFit) {
  const Model truth = random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 5);
  const Sample data = sample(truth, 500, 6);
  Handles h;
  emix_options_set_n_components(h.options, 2);
  emix_options_set_device(h.options, EMIX_DEVICE_CPU);
  emix_options_set_tol(h.options, 0);
  emix_options_set_max_iter(h.options, 50);
  int state[2] = {3, 0};  // stop at iteration 3
  ASSERT_EQ(emix_options_set_iteration_control(h.options, stop_at_iteration, state), EMIX_OK);
  auto* const stale = reinterpret_cast<emix_model*>(std::uintptr_t{0xdeadbeef});
  emix_model* model = stale;
  EXPECT_EQ(
      emix_fit(h.options, data.x.data(), 500, 3, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
      EMIX_CANCELLED);
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(state[1], 4);  // iterations 0 to 3
  EXPECT_STREQ(emix_last_error(),
               "emix_fit: the iteration control stopped the fit (init_run 0, iteration 3)");
  EXPECT_STREQ(emix_status_name(EMIX_CANCELLED), "EMIX_CANCELLED");

  // A control that never stops leaves the fit as it was.
  state[0] = -1;
  state[1] = 0;
  emix_fit_result result{};
  ASSERT_EQ(
      emix_fit(h.options, data.x.data(), 500, 3, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, &result),
      EMIX_OK)
      << emix_last_error();
  h.keep(model);
  EXPECT_EQ(result.n_iter, 50);
  EXPECT_EQ(state[1], 51);

  std::vector<int> seen;
  state[0] = 0;
  state[1] = 0;
  ASSERT_EQ(emix_options_set_iteration_callback(h.options, count_iterations, &seen), EMIX_OK);
  emix_options_set_max_iter(h.options, 2);
  ASSERT_EQ(
      emix_fit(h.options, data.x.data(), 500, 3, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
      EMIX_OK);
  h.keep(model);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(state[1], 0);  // the control was removed
}

// emix_set_interrupt_check's state: how many times it ran, the call it stops at (0: never),
// and whether it saw the caller's trap on invalid operations.
struct InterruptState {
  int runs = 0;
  int stop_at = 0;
  bool saw_caller_traps = true;
};

int interrupt_check(void* user_data) {
  auto* state = static_cast<InterruptState*>(user_data);
  ++state->runs;
#if defined(__x86_64__)
  if ((_mm_getcsr() & _MM_MASK_INVALID) != 0) state->saw_caller_traps = false;  // masked
#endif
  return state->runs == state->stop_at ? 1 : 0;
}

// The interrupt check stops a fit inside it (no iteration control could: max_iter is one
// iteration of a long pass) and a call without options; it belongs to the thread that set it,
// runs under that thread's floating-point modes, and leaves results as they are when it does
// not stop them.
TEST(CapiInterrupt, TheCheckStopsTheCallsOfItsThread) {
  const Model truth = random_model(Family::kGaussian, Covariance::kFull, 4, 16, 3);
  const Sample data = sample(truth, 400000, 4);  // a pass of 16 full components: well over 50 ms
  const std::int64_t rows = 400000;
  Handles h;
  emix_options_set_n_components(h.options, 16);
  emix_options_set_device(h.options, EMIX_DEVICE_CPU);
  emix_options_set_n_threads(h.options, 2);  // a call of well over 50 ms on any machine
  emix_options_set_tol(h.options, 0);
  emix_options_set_max_iter(h.options, 2);
  emix_model* plain = nullptr;
  ASSERT_EQ(emix_fit(h.options, data.x.data(), rows, 16, EMIX_FLOAT64, EMIX_HOST, nullptr, &plain,
                     nullptr),
            EMIX_OK)
      << emix_last_error();
  h.keep(plain);

  InterruptState never;
  ASSERT_EQ(emix_set_interrupt_check(interrupt_check, &never), EMIX_OK);
#if defined(__x86_64__)
  const unsigned caller_csr = _mm_getcsr();
  _mm_setcsr(caller_csr & ~_MM_MASK_INVALID);  // traps invalid operations
#endif
  emix_model* checked = nullptr;
  const emix_status checked_status = emix_fit(h.options, data.x.data(), rows, 16, EMIX_FLOAT64,
                                              EMIX_HOST, nullptr, &checked, nullptr);
#if defined(__x86_64__)
  _mm_setcsr(caller_csr);
#endif
  ASSERT_EQ(checked_status, EMIX_OK) << emix_last_error();
  h.keep(checked);
  EXPECT_GT(never.runs, 0);
  EXPECT_TRUE(never.saw_caller_traps);
  EXPECT_EQ(get(checked, emix_model_get_means, 16 * 16), get(plain, emix_model_get_means, 16 * 16));

  InterruptState first;
  first.stop_at = 1;
  ASSERT_EQ(emix_set_interrupt_check(interrupt_check, &first), EMIX_OK);
  auto* const stale = reinterpret_cast<emix_model*>(std::uintptr_t{0xdeadbeef});
  emix_model* model = stale;
  EXPECT_EQ(emix_fit(h.options, data.x.data(), rows, 16, EMIX_FLOAT64, EMIX_HOST, nullptr, &model,
                     nullptr),
            EMIX_CANCELLED);
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(first.runs, 1);
  EXPECT_STREQ(emix_last_error(), "emix_fit: the interrupt check stopped the call");

  // 256 unit components: a prediction of well over 50 ms.
  const int wide = 256;
  std::vector<double> weights(wide, 1.0 / wide), means(wide * 16), unit(wide * 16 * 16, 0.0);
  for (std::size_t i = 0; i < means.size(); ++i) means[i] = data.x[i];
  for (int k = 0; k < wide; ++k) {
    for (int d = 0; d < 16; ++d) unit[(k * 16 + d) * 16 + d] = 1;
  }
  emix_model* many = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_FULL, wide, 16, 1, weights.data(), means.data(),
                              unit.data(), nullptr, &many),
            EMIX_OK)
      << emix_last_error();
  h.keep(many);
  first.runs = 0;
  std::vector<std::int32_t> labels(rows, -7);
  EXPECT_EQ(emix_predict(many, h.options, data.x.data(), rows, 16, EMIX_FLOAT64, EMIX_HOST,
                         labels.data()),
            EMIX_CANCELLED);
  EXPECT_EQ(first.runs, 1);

  // Another thread's calls do not run this thread's check.
  emix_status other = EMIX_INTERNAL_ERROR;
  std::thread([&] {
    emix_model* m = nullptr;
    other =
        emix_fit(h.options, data.x.data(), rows, 16, EMIX_FLOAT64, EMIX_HOST, nullptr, &m, nullptr);
    emix_model_destroy(m);
  }).join();
  EXPECT_EQ(other, EMIX_OK);
  EXPECT_EQ(first.runs, 1);

  ASSERT_EQ(emix_set_interrupt_check(nullptr, nullptr), EMIX_OK);
  EXPECT_EQ(emix_predict(plain, h.options, data.x.data(), rows, 16, EMIX_FLOAT64, EMIX_HOST,
                         labels.data()),
            EMIX_OK);
  EXPECT_EQ(first.runs, 1);
}

// A model handle is checked and factored by its first evaluation and keeps that for the next
// ones (it never changes): evaluations from several threads at once, the first ones among them,
// give the C++ functions' results bitwise.
TEST(CapiEvaluation, AHandleEvaluatedFromThreadsGivesTheFunctionsResults) {
  const emix::Model truth =
      emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kFull, 4, 6, 17);
  const emix::Sample drawn = emix::sample(truth, 500, 3, 1);
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  const std::vector<double> expected =
      emix::score_samples(truth, emix::DataView::host(drawn.x.data(), 500, 6), cpu);
  const double expected_bic = emix::bic(truth, emix::DataView::host(drawn.x.data(), 500, 6), cpu);
  Handles h;
  ASSERT_EQ(emix_options_set_device(h.options, EMIX_DEVICE_CPU), EMIX_OK);
  emix_model* model = h.create(truth);
  ASSERT_NE(model, nullptr);
  std::vector<std::vector<double>> got(4, std::vector<double>(500));
  std::vector<double> bics(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 3; ++repeat) {
        EXPECT_EQ(emix_score_samples(model, h.options, drawn.x.data(), 500, 6, EMIX_FLOAT64,
                                     EMIX_HOST, got[t].data()),
                  EMIX_OK);
        EXPECT_EQ(
            emix_bic(model, h.options, drawn.x.data(), 500, 6, EMIX_FLOAT64, EMIX_HOST, &bics[t]),
            EMIX_OK);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t t = 0; t < got.size(); ++t) {
    EXPECT_EQ(got[t], expected);
    EXPECT_EQ(bics[t], expected_bic);
  }
}

// A host thread of 128 KiB of stack (musl's default, as on Alpine; an OMP_STACKSIZE) fits a full
// model over 160 features, evaluates and selects, and reads a model back: Eigen's triangular
// solve kept up to 128 KiB of scratch space on the stack and crashed it (SIGSEGV), and a model
// file was read through a 64 KiB buffer there. Run in a child process, whose crash fails the
// test rather than ending the others.
TEST(CapiHost, AThreadOfMuslsDefaultStackFitsAndReadsModels) {
  if (EMIX_TEST_ADDRESS_SANITIZER) {
    GTEST_SKIP() << "AddressSanitizer's redzones take several times the stack of a plain build";
  }
  const emix::Model truth =
      emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kFull, 3, 160, 5);
  const emix::Sample drawn = emix::sample(truth, 2000, 7, 1);
  const std::string path = ::testing::TempDir() + "capi_small_stack.json";
  struct Work {
    const double* x;
    const char* path;
    bool ok;
  } work{drawn.x.data(), path.c_str(), false};
  const auto on_small_stack = [](void* argument) -> void* {
    Work& w = *static_cast<Work*>(argument);
    emix_options* options = nullptr;
    emix_model* model = nullptr;
    emix_model* again = nullptr;
    emix_selection* selection = nullptr;
    std::vector<std::int32_t> labels(2000);
    const int grid[] = {1, 2};
    w.ok = emix_options_create(&options) == EMIX_OK &&
           emix_options_set_device(options, EMIX_DEVICE_CPU) == EMIX_OK &&
           emix_options_set_n_components(options, 3) == EMIX_OK &&
           emix_options_set_max_iter(options, 3) == EMIX_OK &&
           emix_fit(options, w.x, 2000, 160, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr) ==
               EMIX_OK &&
           emix_predict(model, options, w.x, 2000, 160, EMIX_FLOAT64, EMIX_HOST, labels.data()) ==
               EMIX_OK &&
           emix_select(options, grid, 2, nullptr, 0, 0, w.x, 2000, 160, EMIX_FLOAT64, EMIX_HOST,
                       nullptr, &selection) == EMIX_OK &&
           emix_model_write(model, w.path) == EMIX_OK && emix_model_read(w.path, &again) == EMIX_OK;
    emix_selection_destroy(selection);
    emix_model_destroy(again);
    emix_model_destroy(model);
    emix_options_destroy(options);
    return nullptr;
  };
  EXPECT_EXIT(
      {
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setstacksize(&attributes, 128 * 1024);
        pthread_t thread;
        if (pthread_create(&thread, &attributes, on_small_stack, &work) != 0) std::exit(3);
        pthread_join(thread, nullptr);
        std::exit(work.ok ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "");
  std::remove(path.c_str());
}

// A rank or chunk without rows (an MPI code's empty shard) evaluates to no results, as
// emix_accumulate takes it: the data and output pointers may then be NULL (malloc(0) may give
// NULL). A score, a mean over no rows, is refused.
TEST(CapiEvaluation, NoRowsWriteNothingAndHaveNoScore) {
  Handles h;
  emix_model* model = h.keep(unit_model());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(emix_predict(model, h.options, nullptr, 0, 2, EMIX_FLOAT64, EMIX_HOST, nullptr),
            EMIX_OK)
      << emix_last_error();
  EXPECT_EQ(emix_predict_proba(model, h.options, nullptr, 0, 2, EMIX_FLOAT32, EMIX_HOST, nullptr),
            EMIX_OK);
  double untouched = 42;
  EXPECT_EQ(
      emix_score_samples(model, h.options, nullptr, 0, 2, EMIX_FLOAT64, EMIX_HOST, &untouched),
      EMIX_OK);
  EXPECT_EQ(untouched, 42);
  EXPECT_EQ(
      emix_score(model, h.options, nullptr, 0, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &untouched),
      EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(), "emix_score: data: no rows");
  EXPECT_EQ(emix_predict(model, h.options, nullptr, 0, 3, EMIX_FLOAT64, EMIX_HOST, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_predict: the model has 2 features, but the data have 3 columns");
  // With rows, the output buffer is needed.
  const double x[2] = {0, 1};
  EXPECT_EQ(emix_predict(model, h.options, x, 1, 2, EMIX_FLOAT64, EMIX_HOST, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(), "emix_predict: the output buffer is NULL");
}

// Handles carry their kind: a pointer to another kind of handle is an error naming the argument
// (it used to be read as the wrong type), and destroying it frees nothing; a destroyed handle,
// used or destroyed again, is named too (a double free before). The last part reads freed
// memory on purpose, so AddressSanitizer builds skip it.
TEST(CapiErrors, HandlesOfAnotherKindOrDestroyedAreNamed) {
  Handles h;
  emix_model* model = h.keep(unit_model());
  ASSERT_NE(model, nullptr);
  int family = -1, covariance = -1, k = -1, d = -1, trials = -1;
  EXPECT_EQ(emix_model_shape(reinterpret_cast<const emix_model*>(h.options), &family, &covariance,
                             &k, &d, &trials),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_model_shape: model is not a live emix_model (destroyed, or another kind of "
               "handle)");
  EXPECT_EQ(k, -1);
  const double x[2] = {0, 1};
  int32_t label = -1;
  EXPECT_EQ(emix_predict(model, reinterpret_cast<const emix_options*>(model), x, 1, 2, EMIX_FLOAT64,
                         EMIX_HOST, &label),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_predict: options is not a live emix_options (destroyed, or another kind of "
               "handle)");
  double total = 0;
  EXPECT_EQ(
      emix_statistics_totals(reinterpret_cast<const emix_statistics*>(model), &total, nullptr),
      EMIX_INVALID_ARGUMENT);
  // The statistics calls, whose options may be NULL, check a handle given.
  const auto* not_options = reinterpret_cast<const emix_options*>(model);
  emix_statistics* statistics = nullptr;
  EXPECT_EQ(
      emix_accumulate(model, not_options, x, 1, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
      EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_accumulate: options is not a live emix_options (destroyed, or another kind "
               "of handle)");
  ASSERT_EQ(emix_accumulate(model, nullptr, x, 1, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &statistics),
            EMIX_OK);
  emix_model* next = nullptr;
  EXPECT_EQ(emix_maximize(model, statistics, not_options, &next), EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_maximize: options is not a live emix_options (destroyed, or another kind "
               "of handle)");
  EXPECT_EQ(next, nullptr);
  emix_statistics_destroy(statistics);
  emix_model_destroy(reinterpret_cast<emix_model*>(h.options));  // frees nothing
  EXPECT_STREQ(emix_last_error(),
               "emix_model_destroy: not a live emix_model (destroyed already, or another kind "
               "of handle); nothing freed");
  EXPECT_EQ(emix_options_set_n_components(h.options, 2), EMIX_OK);  // still alive
  ASSERT_EQ(emix_model_shape(model, &family, &covariance, &k, &d, &trials), EMIX_OK);
  EXPECT_EQ(k, 1);
#if !EMIX_TEST_ADDRESS_SANITIZER
  emix_model* doomed = unit_model();
  ASSERT_NE(doomed, nullptr);
  emix_model_destroy(doomed);
  EXPECT_EQ(emix_model_shape(doomed, &family, &covariance, &k, &d, &trials), EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("is not a live emix_model"), std::string::npos);
  emix_model_destroy(doomed);  // a double free before
  EXPECT_STREQ(emix_last_error(),
               "emix_model_destroy: not a live emix_model (destroyed already, or another kind "
               "of handle); nothing freed");
#endif
}

TEST(CapiErrors, EveryFailureIsAStatusWithAMessage) {
  Handles h;
  emix_model* model = nullptr;
  const double x[6] = {0, 1, 2, 3, NAN, 5};

  EXPECT_EQ(emix_fit(nullptr, x, 3, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(), "emix_fit: options is NULL");
  EXPECT_EQ(emix_fit(h.options, x, 3, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("row 3, column 1 is nan"), std::string::npos)
      << emix_last_error();
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(emix_fit(h.options, x, 3, 2, 7, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("dtype is 7"), std::string::npos);
  emix_options_set_n_components(h.options, 5);
  EXPECT_EQ(emix_fit(h.options, x, 2, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("larger than the number of rows"),
            std::string::npos);
  EXPECT_EQ(emix_options_set_covariance(h.options, -1), EMIX_INVALID_ARGUMENT);
  EXPECT_EQ(emix_options_set_device(nullptr, EMIX_DEVICE_CPU), EMIX_INVALID_ARGUMENT);

  const double bad_weights[2] = {0.7, 0.7};
  const double means[2] = {0, 1};
  const double variances[2] = {1, 1};
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, 2, 1, 1, bad_weights, means, variances,
                              nullptr, &model),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("sum"), std::string::npos) << emix_last_error();
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, 2, 1, 1, bad_weights, nullptr,
                              variances, nullptr, &model),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("means"), std::string::npos);

  // Old: K x D x D (2^71 here) wrapped before the arrays were copied from the caller's buffers.
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_FULL, 2147483647, 1 << 20, 1, variances, means,
                              variances, nullptr, &model),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_model_create: model: n_components x n_features x n_features = 2147483647 x "
               "1048576 x 1048576 covariance values is more than emix supports");
  EXPECT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_DIAG, 0, 1, 1, variances, means, variances,
                              nullptr, &model),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_model_create: model: n_components is 0, must be at least 1");
  // Option values are the library's to check: an absurd thread count is refused at the fit.
  emix_options_set_n_components(h.options, 1);
  emix_options_set_n_threads(h.options, 100000);
  const double two_rows[4] = {0, 1, 2, 3};
  EXPECT_EQ(emix_fit(h.options, two_rows, 2, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_fit: n_threads is 100000, must be 0 (OpenMP's default) to 1024");
  emix_options_set_n_threads(h.options, 0);
  EXPECT_EQ(model, nullptr);
  // A trials count for a Bernoulli fit is a binomial fit meant: it was ignored.
  emix_options_set_family(h.options, EMIX_BERNOULLI);
  emix_options_set_trials(h.options, 3);
  EXPECT_EQ(emix_fit(h.options, two_rows, 2, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(),
               "emix_fit: trials is 3, but trials applies to binomial mixtures only (a bernoulli "
               "mixture keeps the default, 1)");
  emix_options_set_family(h.options, EMIX_GAUSSIAN);
  emix_options_set_trials(h.options, 1);
  EXPECT_EQ(model, nullptr);
  // A row count no memory holds (a mixed-up argument): refused before a value is read; scanning
  // the values crashed.
  EXPECT_EQ(emix_fit(h.options, two_rows, std::int64_t{1} << 62, 8, EMIX_FLOAT64, EMIX_HOST,
                     nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("more than any memory holds"), std::string::npos)
      << emix_last_error();
  const double one_weight[1] = {1}, centre[2] = {0, 0}, unit[1] = {1};
  emix_model* unit_model = nullptr;
  ASSERT_EQ(emix_model_create(EMIX_GAUSSIAN, EMIX_SPHERICAL, 1, 2, 1, one_weight, centre, unit,
                              nullptr, &unit_model),
            EMIX_OK);
  h.keep(unit_model);
  int32_t label = 0;
  EXPECT_EQ(emix_predict(unit_model, h.options, two_rows, std::int64_t{1} << 60, 2, EMIX_FLOAT64,
                         EMIX_HOST, &label),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("more than any memory holds"), std::string::npos)
      << emix_last_error();
  // Sample weights are read only once the size is known to be one memory holds (score read
  // 2^60 of them, past the caller's two).
  const double two_weights[2] = {1, 1};
  double score = 0;
  EXPECT_EQ(emix_score(unit_model, h.options, two_rows, std::int64_t{1} << 60, 2, EMIX_FLOAT64,
                       EMIX_HOST, two_weights, &score),
            EMIX_INVALID_ARGUMENT);
  EXPECT_NE(std::string(emix_last_error()).find("more than any memory holds"), std::string::npos)
      << emix_last_error();
  emix_options_set_n_components(h.options, 0);
  EXPECT_EQ(emix_fit(h.options, two_rows, 2, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
            EMIX_INVALID_ARGUMENT);
  EXPECT_STREQ(emix_last_error(), "emix_fit: n_components is 0, must be at least 1");
  emix_options_set_n_components(h.options, 1);

  EXPECT_EQ(emix_model_read("/nonexistent/model.json", &model), EMIX_IO_ERROR);
  EXPECT_NE(std::string(emix_last_error()).find("/nonexistent/model.json"), std::string::npos);

  if (!gpu_available()) {
    emix_options_set_n_components(h.options, 1);
    emix_options_set_device(h.options, EMIX_DEVICE_GPU);
    const double fine[4] = {0, 1, 2, 3};
    EXPECT_EQ(emix_fit(h.options, fine, 2, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &model, nullptr),
              EMIX_NOT_AVAILABLE);
    EXPECT_NE(std::string(emix_last_error()).find("gpu"), std::string::npos);
    // The reason the fit gives is the one emix_gpu_unavailable_reason() gives.
    const std::string reason = emix_gpu_unavailable_reason();
    EXPECT_FALSE(reason.empty());
    EXPECT_NE(std::string(emix_last_error()).find(reason), std::string::npos) << reason;
    EXPECT_EQ(emix_gpu_available(), 0);
    // Device memory needs the GPU engine (a host pointer stands in: it is never dereferenced).
    emix_options_set_device(h.options, EMIX_DEVICE_AUTO);
    EXPECT_EQ(emix_fit(h.options, fine, 2, 2, EMIX_FLOAT64, EMIX_DEVICE, nullptr, &model, nullptr),
              EMIX_NOT_AVAILABLE);
  }
  if (gpu_available()) {
    EXPECT_STREQ(emix_gpu_unavailable_reason(), "");
  }
  EXPECT_STREQ(emix_status_name(EMIX_NOT_AVAILABLE), "EMIX_NOT_AVAILABLE");
  EXPECT_STREQ(emix_version(), EMIX_VERSION_STRING);
  emix_model_destroy(nullptr);
  emix_options_destroy(nullptr);
}

}  // namespace
}  // namespace emix
