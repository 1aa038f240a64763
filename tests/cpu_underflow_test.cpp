// The CPU engine on well-separated data, where almost every responsibility underflows: the
// engine, which flushes negligible terms to zero and runs with FTZ / DAZ, must give the model
// that a reference keeping every subnormal gives; and it must leave its caller's floating-point
// mode (MXCSR) as it found it on every thread, also when a call ends in an exception.
#include <gtest/gtest.h>
#include <omp.h>

#include <cfenv>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/em.hpp"
#include "cpu/cpu_engine.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/emix.h"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "test_util.hpp"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace {

using emix::Covariance;
using emix::Family;

constexpr int kK = 16;
constexpr int kD = 4;

// Sixteen Gaussians of variance 1 to 1.3 on the corners of a hypercube of side 100: a row's
// log-density under any other component is at least about 100^2 / (2 * 2.6) = 1900 below its own
// (with the doubled variances of the start below), far past 700.
emix::Model separated_model() {
  emix::Model m;
  m.family = Family::kGaussian;
  m.covariance = Covariance::kFull;
  m.n_components = kK;
  m.n_features = kD;
  m.weights.assign(kK, 1.0 / kK);
  for (int c = 0; c < kK; ++c) {
    const double grid[kD] = {100.0 * (c % 2), 100.0 * ((c / 2) % 2), 100.0 * ((c / 4) % 2),
                             100.0 * (c / 8)};
    for (double v : grid) m.means.push_back(v);
    for (int a = 0; a < kD; ++a) {
      for (int b = 0; b < kD; ++b) m.covariances.push_back(a == b ? 1.0 + 0.1 * (c % 4) : 0.0);
    }
  }
  return m;
}

// Share of log p(k | x_n) below -700, from the engine's own per-row log-densities' definition:
// log p(k | x) = log w_k + log N(x | k) - log p(x).
double share_below_minus_700(const emix::Model& m, const std::vector<double>& x, std::int64_t n) {
  std::int64_t below = 0;
  std::vector<double> v(kK);
  for (std::int64_t i = 0; i < n; ++i) {
    double max = -INFINITY;
    for (int c = 0; c < kK; ++c) {
      double maha = 0;
      for (int j = 0; j < kD; ++j) {
        const double diff = x[i * kD + j] - m.means[c * kD + j];
        maha += diff * diff / m.covariances[c * kD * kD + j * kD + j];
      }
      v[c] = std::log(m.weights[c]) - 0.5 * maha;  // constants cancel against log p(x) but
      for (int j = 0; j < kD; ++j) {               // the log-determinant does not
        v[c] -= 0.5 * std::log(m.covariances[c * kD * kD + j * kD + j]);
      }
      max = std::max(max, v[c]);
    }
    double sum = 0;
    for (double t : v) sum += std::exp(t - max);
    for (double t : v) below += t - max - std::log(sum) < -700 ? 1 : 0;
  }
  return static_cast<double>(below) / static_cast<double>(n * kK);
}

emix::FitReport fit_with(const emix::cpu::CpuEngineSettings& settings, const std::vector<double>& x,
                         std::int64_t n, const emix::Model& start, int threads) {
  emix::EngineOptions engine_options;
  engine_options.device = emix::Device::kCpu;
  engine_options.n_threads = threads;
  const auto engine = emix::cpu::make_engine(emix::DataView::host(x.data(), n, kD), nullptr,
                                             engine_options, settings);
  emix::FitOptions options;
  options.n_components = kK;
  options.init_model = start;
  options.tol = 0;
  options.max_iter = 6;
  options.engine = engine_options;
  const emix::WeightGather ones = [](const std::int64_t*, std::int64_t count, double* out) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = 1.0;
  };
  return emix::run_em(*engine, n, kD, emix::DType::kFloat64, ones, options);
}

TEST(CpuUnderflow, SeparatedFitEqualsAReferenceThatKeepsSubnormals) {
  const emix::Model truth = separated_model();
  const std::int64_t n = 6000;
  const emix::Sample data = emix::sample(truth, n, 20261201);
  // Start off the truth (means moved by 0.3, covariances doubled) so that EM has work to do.
  emix::Model start = truth;
  for (double& v : start.means) v += 0.3;
  for (double& v : start.covariances) v *= 2.0;
  // The premise: at least 90 % of the log-responsibilities under the start lie below -700 (at
  // most 15 / 16: a row's own component's is near 0).
  ASSERT_GE(share_below_minus_700(start, data.x, n), 0.9);

  emix::cpu::CpuEngineSettings reference;
  reference.keep_negligible = true;
  const emix::FitReport expected = fit_with(reference, data.x, n, start, 2);
  const emix::FitReport got = fit_with({}, data.x, n, start, 2);

  // The reference does compute with subnormal responsibilities (otherwise this test would
  // compare the engine with itself), and the engine never produces one.
  emix::EngineOptions eo;
  eo.n_threads = 2;
  const auto view = emix::DataView::host(data.x.data(), n, kD);
  const emix::PreparedModel prepared = emix::prepare(start);
  std::vector<double> resp_reference(static_cast<std::size_t>(n) * kK), resp(resp_reference.size());
  emix::cpu::make_engine(view, nullptr, eo, reference)
      ->evaluate(prepared, nullptr, resp_reference.data(), nullptr);
  emix::cpu::make_engine(view, nullptr, eo, {})->evaluate(prepared, nullptr, resp.data(), nullptr);
  const auto subnormals = [](const std::vector<double>& r) {
    std::int64_t count = 0;
    for (double v : r) count += v != 0 && std::abs(v) < DBL_MIN ? 1 : 0;
    return count;
  };
  EXPECT_GT(subnormals(resp_reference), n);  // about K - 1 per row
  EXPECT_EQ(subnormals(resp), 0);

  // 1e-12 relative: the flushed terms are below 5e-283 of their row's largest, so the two fits
  // differ only by rounding (and FMA contraction), which stays near 1e-15 over 6 iterations.
  const double tol = 1e-12;
  EXPECT_LE(emix::testing::max_relative_difference(expected.history, got.history), tol);
  EXPECT_LE(emix::testing::max_relative_difference(expected.model.weights, got.model.weights), tol);
  EXPECT_LE(emix::testing::max_relative_difference(expected.model.means, got.model.means), tol);
  EXPECT_LE(
      emix::testing::max_relative_difference(expected.model.covariances, got.model.covariances),
      tol);
}

// ---- The caller's floating-point mode --------------------------------------------------------

// MXCSR mode bits (FTZ, DAZ, rounding, masks; not the sticky status flags, which any arithmetic
// sets) of every thread of a `threads`-thread OpenMP team, indexed by thread number.
std::vector<unsigned> team_modes(int threads) {
  std::vector<unsigned> modes(static_cast<std::size_t>(threads), 0);
#pragma omp parallel num_threads(threads)
  modes[static_cast<std::size_t>(omp_get_thread_num())] =
      emix::cpu::fp_mode_bits(emix::cpu::fp_control_register());
  return modes;
}

#if defined(__x86_64__)
// Sets MXCSR's mode bits on every thread of a `threads`-thread team (status flags cleared). GNU
// OpenMP's workers keep what they set from one region to the next; LLVM's (clang's -fopenmp)
// give each worker the calling thread's modes as every region starts, and the calling thread
// its own back as it ends: the calling thread's, set outside a region, serve both.
void set_team_mode(int threads, unsigned mode) {
#pragma omp parallel num_threads(threads)
  _mm_setcsr(mode);
  _mm_setcsr(mode);  // the calling thread's, outside the region
}
#endif

class CallerFpMode : public ::testing::TestWithParam<unsigned> {};

TEST_P(CallerFpMode, FitPredictScoreLeaveEveryThreadsModeAsItWas) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "MXCSR is x86-64's; the guard does nothing elsewhere";
#else
  constexpr int kThreads = 2;
  const unsigned mode = GetParam();
  const emix::Model truth = separated_model();
  const std::int64_t n = 3000;
  const emix::Sample data = emix::sample(truth, n, 7);
  const auto x = emix::DataView::host(data.x.data(), n, kD);
  emix::EngineOptions eo;
  eo.device = emix::Device::kCpu;
  eo.n_threads = kThreads;
  emix::FitOptions options;
  options.n_components = kK;
  options.max_iter = 3;
  options.engine = eo;

  set_team_mode(kThreads, mode);  // the calling thread is thread 0 of the team
  const std::vector<unsigned> before = team_modes(kThreads);
  ASSERT_EQ(before[0], emix::cpu::fp_mode_bits(mode));
  const auto check = [&](const char* after_what) {
    EXPECT_EQ(emix::cpu::fp_mode_bits(emix::cpu::fp_control_register()), before[0])
        << "calling thread, after " << after_what;
    const std::vector<unsigned> after = team_modes(kThreads);
    for (int t = 1; t < kThreads; ++t) {
      EXPECT_EQ(after[t], before[t]) << "OpenMP worker " << t << ", after " << after_what;
    }
  };

  const emix::FitReport report = emix::fit(x, options);
  check("fit");
  emix::predict(report.model, x, eo);
  check("predict");
  emix::predict_proba(report.model, x, eo);
  check("predict_proba");
  emix::score(report.model, x, eo);
  check("score");

  // A fit that ends in an exception: the progress callback throws after the first E-step.
  emix::FitOptions throwing = options;
  throwing.on_iteration = [](const emix::IterationInfo& info) {
    if (info.iteration == 1) throw std::runtime_error("stop");
  };
  EXPECT_THROW(emix::fit(x, throwing), std::runtime_error);
  check("a fit that threw");
  // And one the library refuses: more components than positive-weight rows in the sample.
  std::vector<double> weights(static_cast<std::size_t>(n), 0.0);
  weights[0] = weights[1] = 1.0;
  EXPECT_THROW(emix::fit(x, options, weights.data()), emix::InvalidArgument);
  check("a fit the library refused");
  set_team_mode(kThreads, 0x1F80);  // the default, for the tests that follow
#endif
}

// 0x1F80: the default (every exception masked, round to nearest, FTZ and DAZ off); 0x9F80: FTZ
// already on, DAZ off; 0x1FC0: DAZ on, FTZ off. A guard must restore exactly the mix it found,
// not the default and not "both on".
INSTANTIATE_TEST_SUITE_P(Modes, CallerFpMode, ::testing::Values(0x1F80u, 0x9F80u, 0x1FC0u),
                         [](const ::testing::TestParamInfo<unsigned>& param_info) {
                           char name[16];
                           std::snprintf(name, sizeof name, "mxcsr_%04X", param_info.param);
                           return std::string(name);
                         });

// A caller that traps floating-point exceptions on every thread (feenableexcept, gfortran
// -ffpe-trap: its OpenMP workers inherit the traps): the library's arithmetic that overflows or
// divides by zero on purpose must not kill it with SIGFPE (an audit did: a component emptied by
// identical rows takes log 0 in prepare(); a row of 1e300 overflows its features in a worker),
// and every thread has its traps on again afterwards; nor must a reader's strtod of 1e400.
// Without the guards this test dies.
TEST(CallerFpTraps, DegenerateFitsAndHugeRowsRunAndTheTrapsStayOn) {
#if !defined(__x86_64__) || !defined(__GLIBC__)
  GTEST_SKIP() << "feenableexcept and MXCSR are glibc's and x86-64's";
#else
  constexpr int kThreads = 2;
  constexpr unsigned kTrapping = 0x1F80u & ~0x680u;  // invalid, divide-by-zero, overflow trap
  emix::EngineOptions eo;
  eo.device = emix::Device::kCpu;
  eo.n_threads = kThreads;
  std::vector<double> same(200, 3.0);  // 100 identical rows, D = 2
  std::vector<double> bits(60);        // 20 identical Bernoulli rows, D = 3
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = i % 3 == 0 ? 1.0 : 0.0;
  const emix::Sample data = emix::sample(separated_model(), 300, 5);
  std::vector<double> huge = data.x;
  huge[kD + 1] = 1e300;  // row 1

  set_team_mode(kThreads, kTrapping);
  feenableexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW);  // x87 as well, on this thread
  emix::FitOptions options;
  options.n_components = 2;
  options.engine = eo;
  const emix::FitReport identical = emix::fit(emix::DataView::host(same.data(), 100, 2), options);
  emix::FitOptions bernoulli = options;
  bernoulli.family = emix::Family::kBernoulli;
  const emix::FitReport constant = emix::fit(emix::DataView::host(bits.data(), 20, 3), bernoulli);
  emix::FitOptions gaussian = options;
  gaussian.n_components = kK;
  const emix::FitReport fitted = emix::fit(emix::DataView::host(data.x.data(), 300, kD), gaussian);
  const std::vector<double> log_prob =
      emix::score_samples(fitted.model, emix::DataView::host(huge.data(), 300, kD), eo);
  // The C API, as C and Fortran callers reach it.
  emix_options* c_options = nullptr;
  ASSERT_EQ(emix_options_create(&c_options), EMIX_OK);
  emix_options_set_n_components(c_options, 2);
  emix_model* c_model = nullptr;
  const emix_status c_status =
      emix_fit(c_options, same.data(), 100, 2, EMIX_FLOAT64, EMIX_HOST, nullptr, &c_model, nullptr);
  // Readers: strtod raises overflow on 1e400, which the reader then names.
  const std::string csv = ::testing::TempDir() + "caller_fp_traps.csv";
  {
    std::ofstream out(csv);
    out << "1,2\n3,1e400\n";
  }
  bool named = false;
  try {
    emix::io::read_matrix(csv);
  } catch (const emix::Error& e) {
    named = std::string(e.what()).find("1e400") != std::string::npos;
  }
  std::remove(csv.c_str());
  const int traps = fegetexcept();
  const std::vector<unsigned> modes = team_modes(kThreads);
  fedisableexcept(FE_ALL_EXCEPT);
  set_team_mode(kThreads, 0x1F80);  // the default, for the tests that follow

  EXPECT_EQ(traps, FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(modes[t], emix::cpu::fp_mode_bits(kTrapping)) << "thread " << t;
  }
  EXPECT_FALSE(identical.warnings.empty());  // the emptied component, reported
  EXPECT_TRUE(std::isfinite(identical.log_likelihood));
  EXPECT_TRUE(std::isfinite(constant.log_likelihood));
  EXPECT_EQ(log_prob[1], -std::numeric_limits<double>::infinity()) << "the row of 1e300";
  EXPECT_TRUE(std::isfinite(log_prob[2]));
  EXPECT_EQ(c_status, EMIX_OK) << emix_last_error();
  EXPECT_TRUE(named) << "the CSV reader names the value it could not hold";
  emix_model_destroy(c_model);
  emix_options_destroy(c_options);
#endif
}

TEST(ScopedFlushDenormals, RestoresTheModeWhenAnExceptionLeavesTheScope) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "MXCSR is x86-64's";
#else
  const unsigned before = emix::cpu::fp_control_register();
  try {
    const emix::cpu::ScopedFlushDenormals flush;
    EXPECT_EQ(emix::cpu::fp_control_register() & emix::cpu::fp_flush_bits(),
              emix::cpu::fp_flush_bits());
    // Under DAZ a subnormal operand reads as zero.
    volatile double tiny = DBL_MIN / 4;
    EXPECT_EQ(tiny * 1.0, 0.0);
    throw std::runtime_error("leaving the scope");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(emix::cpu::fp_mode_bits(emix::cpu::fp_control_register()),
            emix::cpu::fp_mode_bits(before));
  volatile double tiny = DBL_MIN / 4;
  EXPECT_GT(tiny * 1.0, 0.0);
#endif
}

// A subnormal the compiler cannot fold (it folded a volatile local in an OpenMP region, and x * 1
// to x): doubled, it gives 0 under DAZ or FTZ and DBL_MIN / 2 under neither.
volatile double g_subnormal = DBL_MIN / 4;

// A worker helping a thread that flushes subnormals (TilePlan::threads) takes that thread's modes,
// and leaves with its own: a subnormal product is flushed to zero on every thread of the team,
// then as the worker's own modes say (GNU OpenMP's workers keep theirs, not flushing here; LLVM's
// start each region with the calling thread's, flushing).
TEST(ScopedFpModes, AWorkerTakesTheCallersModesForTheScope) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "MXCSR is x86-64's";
#else
  constexpr int kThreads = 3;
  set_team_mode(kThreads, 0x1F80);
  std::vector<double> inside(kThreads, -1.0), after(kThreads, -1.0);
  std::vector<unsigned> own(kThreads, 0), left_with(kThreads, 0);
  {
    const emix::cpu::ScopedFlushDenormals flush;
    const unsigned caller = emix::cpu::fp_control_register();
#pragma omp parallel num_threads(kThreads)
    {
      const auto t = static_cast<std::size_t>(omp_get_thread_num());
      own[t] = emix::cpu::fp_mode_bits(emix::cpu::fp_control_register());
      {
        const emix::cpu::ScopedFpModes modes(caller);
        inside[t] = g_subnormal * 2.0;
      }
      after[t] = g_subnormal * 2.0;
      left_with[t] = emix::cpu::fp_mode_bits(emix::cpu::fp_control_register());
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(inside[t], 0.0) << "thread " << t;
    EXPECT_EQ(left_with[t], own[t]) << "thread " << t;
    EXPECT_EQ(after[t], (own[t] & emix::cpu::fp_flush_bits()) != 0 ? 0.0 : DBL_MIN / 2)
        << "thread " << t;
  }
  for (const unsigned mode : team_modes(kThreads)) EXPECT_EQ(mode, emix::cpu::fp_mode_bits(0x1F80));
#endif
}

}  // namespace
