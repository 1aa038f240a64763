// emix::InterruptCheck: a caller's check that the library runs inside its long calls, whose
// exception stops them.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

struct Stop : std::runtime_error {
  Stop() : std::runtime_error("stop") {}
};

emix::Sample data(std::int64_t n) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 4, 16, /*seed=*/3);
  return emix::sample(truth, n, 4);
}

emix::FitOptions full_fit(int k) {
  emix::FitOptions o;
  o.n_components = k;
  o.covariance = Covariance::kFull;
  o.engine.device = emix::Device::kCpu;
  o.engine.n_threads = 2;
  return o;
}

// A check due after `after`, then thrown at its next run; counts its runs.
struct Deadline {
  std::chrono::steady_clock::time_point at;
  int runs = 0;
  void operator()() {
    ++runs;
    if (std::chrono::steady_clock::now() >= at) throw Stop();
  }
};

// The check runs inside one iteration's pass, not only between iterations: a fit of one
// iteration of about a second stops a tenth of a second after the deadline, its exception out.
TEST(InterruptCheck, StopsAFitInsideItsPass) {
  const emix::Sample s = data(400000);
  const emix::DataView x = emix::DataView::host(s.x.data(), 400000, 16);
  emix::FitOptions o = full_fit(64);
  o.max_iter = 1;
  o.tol = 0;
  const auto start = std::chrono::steady_clock::now();
  emix::fit(x, o);
  const auto whole = std::chrono::steady_clock::now() - start;

  Deadline deadline{std::chrono::steady_clock::now() + whole / 2};
  const auto stopped_start = std::chrono::steady_clock::now();
  {
    const emix::InterruptCheck check([&] { deadline(); });
    EXPECT_THROW(emix::fit(x, o), Stop);
  }
  const auto stopped = std::chrono::steady_clock::now() - stopped_start;
  EXPECT_GT(deadline.runs, 2);  // about every 50 ms: several runs before the deadline
  EXPECT_LT(stopped, whole * 3 / 4)
      << std::chrono::duration<double>(stopped).count() << " s against "
      << std::chrono::duration<double>(whole).count() << " s for the whole fit";
  // Once the check is gone, the same call runs to its end.
  EXPECT_EQ(emix::fit(x, o).n_iter, 1);
}

// Predict has no options and no iterations: the check still reaches inside it.
TEST(InterruptCheck, StopsPredictAndIsRunOnlyOnItsThread) {
  const emix::Sample s = data(400000);
  const emix::DataView x = emix::DataView::host(s.x.data(), 400000, 16);
  emix::FitOptions o = full_fit(64);
  o.max_iter = 2;
  const emix::Model model = emix::fit(emix::DataView::host(s.x.data(), 20000, 16), o).model;
  emix::EngineOptions engine = o.engine;
  const auto start = std::chrono::steady_clock::now();
  emix::predict_proba(model, x, engine);
  const auto whole = std::chrono::steady_clock::now() - start;

  const std::thread::id caller = std::this_thread::get_id();
  bool other_thread = false;
  const emix::InterruptCheck check([&] {
    if (std::this_thread::get_id() != caller) other_thread = true;
    throw Stop();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // the check is due at once
  const auto stopped_start = std::chrono::steady_clock::now();
  EXPECT_THROW(emix::predict_proba(model, x, engine), Stop);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_start, whole / 2);
  EXPECT_FALSE(other_thread);
  // Another thread's calls run without it.
  std::thread([&] { EXPECT_NO_THROW(emix::predict(model, x, engine)); }).join();
}

// Checks nest: the inner one applies while it lives, the outer one again after.
TEST(InterruptCheck, InnerCheckAppliesThenTheOuterAgain) {
  const emix::Sample s = data(200000);
  const emix::DataView x = emix::DataView::host(s.x.data(), 200000, 16);
  emix::FitOptions o = full_fit(16);
  o.max_iter = 2;
  const emix::Model model = emix::fit(emix::DataView::host(s.x.data(), 20000, 16), o).model;
  int outer_runs = 0, inner_runs = 0;
  const emix::InterruptCheck outer([&] { ++outer_runs; });
  {
    const emix::InterruptCheck inner([&] { ++inner_runs; });
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    emix::predict_proba(model, x, o.engine);
  }
  EXPECT_GT(inner_runs, 0);
  EXPECT_EQ(outer_runs, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  emix::predict_proba(model, x, o.engine);
  EXPECT_GT(outer_runs, 0);
}

}  // namespace
