// emix::InterruptCheck: a caller's check that the library runs inside its long calls, whose
// exception stops them.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "cpu/fp_environment.hpp"
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

// `rows` rows of data() and a model of `k` full components fitted on 20000 of them, for calls
// that evaluate it.
struct Evaluation {
  emix::Sample sample;
  emix::FitOptions options;
  emix::Model model;
  emix::DataView x() const {
    return emix::DataView::host(sample.x.data(), static_cast<std::int64_t>(sample.labels.size()),
                                16);
  }
};

Evaluation evaluation(std::int64_t rows, int k) {
  Evaluation e;
  e.sample = data(rows);
  e.options = full_fit(k);
  e.options.max_iter = 2;
  e.model = emix::fit(emix::DataView::host(e.sample.x.data(), 20000, 16), e.options).model;
  return e;
}

using Clock = std::chrono::steady_clock;

// A check that throws at its first run from `at` on; counts its runs and notes when it threw.
struct Deadline {
  explicit Deadline(Clock::time_point due) : at(due) {}
  Clock::time_point at;
  int runs = 0;
  Clock::time_point thrown;
  void operator()() {
    ++runs;
    if (Clock::now() >= at) {
      thrown = Clock::now();
      throw Stop();
    }
  }
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The check runs inside one iteration's pass, not only between iterations: a fit of one
// iteration of about a second stops a moment after the deadline, with the check's exception. The
// time from the throw to the call's end is one piece of a pass (a 64th) and the unwinding.
TEST(InterruptCheck, StopsAFitInsideItsPass) {
  const emix::Sample s = data(400000);
  const emix::DataView x = emix::DataView::host(s.x.data(), 400000, 16);
  emix::FitOptions o = full_fit(64);
  o.max_iter = 1;
  o.tol = 0;
  const auto start = Clock::now();
  emix::fit(x, o);
  const auto whole = Clock::now() - start;

  Deadline deadline(Clock::now() + whole / 2);
  {
    const emix::InterruptCheck check([&] { deadline(); });
    EXPECT_THROW(emix::fit(x, o), Stop);
  }
  const auto after_throw = Clock::now() - deadline.thrown;
  EXPECT_GE(deadline.runs, 1);
  EXPECT_LT(after_throw, whole / 4) << seconds(after_throw) << " s after the check threw, against "
                                    << seconds(whole) << " s for the whole fit";
  // Once the check is gone, the same call runs to its end.
  EXPECT_EQ(emix::fit(x, o).n_iter, 1);
}

// Initialisation runs the check inside its passes too: 'random' starts from random
// responsibilities and takes one M-step over 131,072 rows, as long as an E-step (an audit's
// K = 50, D = 96 waited 2 s for it). No gap between the check's runs, from the call's start to
// its end, is more than a small part of the call.
TEST(InterruptCheck, RunsInsideTheRandomInitialisation) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 4, 64, /*seed=*/5);
  const emix::Sample s = emix::sample(truth, 131072, 6);
  const emix::DataView x = emix::DataView::host(s.x.data(), 131072, 64);
  emix::FitOptions o = full_fit(64);
  o.init = emix::Init::kRandom;
  o.max_iter = 0;  // the initialisation and the E-step that scores it
  std::vector<Clock::time_point> runs;
  Clock::time_point start;
  {
    const emix::InterruptCheck check([&] { runs.push_back(Clock::now()); });
    start = Clock::now();
    emix::fit(x, o);
  }
  runs.push_back(Clock::now());
  Clock::duration longest{0};
  Clock::time_point last = start;
  for (const Clock::time_point t : runs) {
    longest = std::max(longest, t - last);
    last = t;
  }
  const Clock::duration whole = runs.back() - start;
  EXPECT_LT(longest, whole / 4) << seconds(longest) << " s without a check in a call of "
                                << seconds(whole) << " s";
}

// Predict has no options and no iterations: the check still reaches inside it, on the calling
// thread alone.
TEST(InterruptCheck, StopsPredictAndIsRunOnlyOnItsThread) {
  const Evaluation e = evaluation(400000, 64);
  const emix::DataView x = e.x();
  const emix::Model& model = e.model;
  const emix::EngineOptions& engine = e.options.engine;
  const auto start = Clock::now();
  emix::predict_proba(model, x, engine);
  const auto whole = Clock::now() - start;

  const std::thread::id caller = std::this_thread::get_id();
  bool other_thread = false;
  Deadline deadline(Clock::now());  // due at its first run
  const emix::InterruptCheck check([&] {
    if (std::this_thread::get_id() != caller) other_thread = true;
    deadline();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // past the 50 ms between runs
  EXPECT_THROW(emix::predict_proba(model, x, engine), Stop);
  const auto after_throw = Clock::now() - deadline.thrown;
  EXPECT_LT(after_throw, whole / 4) << seconds(after_throw) << " s against " << seconds(whole);
  EXPECT_FALSE(other_thread);
  // Another thread's calls run without it.
  std::thread([&] { EXPECT_NO_THROW(emix::predict(model, x, engine)); }).join();
}

// sample() runs the check too, on the calling thread alone, inside a block of rows as well as
// between blocks, and while the other threads draw the last blocks: a Gaussian over 256 full
// features in one block (65,536 rows take about a second) and binomial counts in several. The
// call ends soon after the check is due, not only soon after it threw.
TEST(InterruptCheck, StopsSample) {
  const std::pair<emix::Model, std::int64_t> draws[] = {
      {emix::testing::random_model(Family::kGaussian, Covariance::kFull, 4, 256, /*seed=*/8),
       65536},
      {emix::testing::random_model(Family::kBinomial, Covariance::kFull, 8, 64, /*seed=*/8,
                                   /*trials=*/50),
       200000}};
  for (const auto& [model, n] : draws) {
    SCOPED_TRACE(model.family == Family::kGaussian ? "gaussian" : "binomial");
    const auto start = Clock::now();
    emix::sample(model, n, 1, 2);
    const auto whole = Clock::now() - start;

    const std::thread::id caller = std::this_thread::get_id();
    bool other_thread = false;
    Deadline deadline(Clock::now() + whole / 2);
    {
      const emix::InterruptCheck check([&] {
        if (std::this_thread::get_id() != caller) other_thread = true;
        deadline();
      });
      EXPECT_THROW(emix::sample(model, n, 1, 2), Stop);
    }
    const auto after_due = Clock::now() - deadline.at;
    EXPECT_GE(deadline.runs, 1);
    // The check runs about every 50 ms.
    EXPECT_LT(after_due, whole / 4 + std::chrono::milliseconds(50))
        << seconds(after_due) << " s after the check was due, against " << seconds(whole);
    EXPECT_FALSE(other_thread);
  }
}

// The check runs under the caller's floating-point modes, not the pass's (which flushes
// subnormal numbers to zero: a check's own arithmetic would have lost them).
TEST(InterruptCheck, RunsUnderTheCallersFloatingPointModes) {
  const Evaluation e = evaluation(400000, 16);
  const unsigned caller_flush = emix::cpu::fp_control_register() & emix::cpu::fp_flush_bits();
  int runs = 0, under_other_modes = 0;
  {
    const emix::InterruptCheck check([&] {
      ++runs;
      if ((emix::cpu::fp_control_register() & emix::cpu::fp_flush_bits()) != caller_flush) {
        ++under_other_modes;
      }
    });
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(60));  // a run due at the first piece
      emix::predict_proba(e.model, e.x(), e.options.engine);
    }
  }
  EXPECT_GE(runs, 5);
  EXPECT_EQ(under_other_modes, 0);
}

// Checks nest: the inner one applies while it lives, the outer one again after.
TEST(InterruptCheck, InnerCheckAppliesThenTheOuterAgain) {
  const Evaluation e = evaluation(200000, 16);
  int outer_runs = 0, inner_runs = 0;
  const emix::InterruptCheck outer([&] { ++outer_runs; });
  {
    const emix::InterruptCheck inner([&] { ++inner_runs; });
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    emix::predict_proba(e.model, e.x(), e.options.engine);
  }
  EXPECT_GT(inner_runs, 0);
  EXPECT_EQ(outer_runs, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  emix::predict_proba(e.model, e.x(), e.options.engine);
  EXPECT_GT(outer_runs, 0);
}

// Checks held by unique_ptr may end out of order: the outer one ending first dropped the inner,
// live one, and the inner one's end then gave back the destroyed outer one, which the next call
// ran (a crash).
TEST(InterruptCheck, ChecksMayEndInAnyOrder) {
  const Evaluation e = evaluation(200000, 16);
  int outer_runs = 0, inner_runs = 0;
  auto outer = std::make_unique<emix::InterruptCheck>([&] { ++outer_runs; });
  auto inner = std::make_unique<emix::InterruptCheck>([&] { ++inner_runs; });
  outer.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  emix::predict_proba(e.model, e.x(), e.options.engine);
  EXPECT_GT(inner_runs, 0);
  inner.reset();
  const int inner_before = inner_runs;
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  emix::predict_proba(e.model, e.x(), e.options.engine);
  EXPECT_EQ(inner_runs, inner_before);
  EXPECT_EQ(outer_runs, 0);
}

TEST(InterruptCheckDeathTest, EndingOnAnotherThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto check = std::make_unique<emix::InterruptCheck>([] {});
  EXPECT_DEATH(std::thread([&] { check.reset(); }).join(),
               "emix::InterruptCheck destroyed on a thread other than the one that made it");
}

}  // namespace
