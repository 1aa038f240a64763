// The CPU kernels' run-time dispatch: the level the engine picks is one this CPU supports (by
// /proc/cpuinfo's flags, an account independent of the compiler's __builtin_cpu_supports), it is
// the highest such level compiled in, and every level the CPU supports fits the same model.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/em.hpp"
#include "cpu/cpu_engine.hpp"
#include "cpu/cpu_kernels.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;
using emix::cpu::IsaLevel;

std::vector<IsaLevel> compiled() {
  IsaLevel levels[8];
  const int count = emix::cpu::compiled_levels(levels, 8);
  return std::vector<IsaLevel>(levels, levels + count);
}

// The CPU flags the kernel lists for the first processor, or none where there is no cpuinfo.
std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

// The features GCC's -march=x86-64-vN may use (the x86-64 psABI's micro-architecture levels).
bool flags_allow(const std::set<std::string>& f, IsaLevel level) {
  const auto has = [&f](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      if (f.count(n) == 0) return false;
    }
    return true;
  };
  const bool v2 = has({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"});
  const bool v3 = v2 && has({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"});
  const bool v4 = v3 && has({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"});
  switch (level) {
    case IsaLevel::kBaseline:
    case IsaLevel::kNative:
      return true;
    case IsaLevel::kV2:
      return v2;
    case IsaLevel::kV3:
      return v3;
    case IsaLevel::kV4:
      return v4;
  }
  return false;
}

TEST(CpuDispatch, PicksTheHighestCompiledLevelThisCpuSupports) {
  const std::set<std::string> flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags to check the CPU's levels against";
  const IsaLevel picked = emix::cpu::best_level();
  EXPECT_TRUE(flags_allow(flags, picked)) << emix::cpu::to_string(picked);
  for (IsaLevel level : compiled()) {
    // The compiler's account and the kernel's agree on every compiled level...
    EXPECT_EQ(emix::cpu::cpu_supports(level), flags_allow(flags, level))
        << emix::cpu::to_string(level);
    // ...and none above the picked one is usable.
    if (static_cast<int>(level) > static_cast<int>(picked)) {
      EXPECT_FALSE(flags_allow(flags, level)) << emix::cpu::to_string(level);
    }
  }
}

TEST(CpuDispatch, FitReportNamesALevelThisCpuSupports) {
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 5);
  const emix::Sample s = emix::sample(truth, 200, 6);
  emix::FitOptions options;
  options.n_components = 2;
  options.covariance = Covariance::kDiag;
  options.engine.device = emix::Device::kCpu;
  options.engine.n_threads = 1;
  const emix::FitReport r = emix::fit(emix::DataView::host(s.x.data(), 200, 3), options);
  // "cpu (1 thread, LEVEL)"
  const std::string prefix = "cpu (1 thread, ";
  ASSERT_EQ(r.engine.rfind(prefix, 0), 0u) << r.engine;
  ASSERT_EQ(r.engine.back(), ')') << r.engine;
  const std::string name = r.engine.substr(prefix.size(), r.engine.size() - prefix.size() - 1);
  const IsaLevel level = emix::cpu::parse_level(name.c_str());
  const std::set<std::string> flags = cpuinfo_flags();
  if (!flags.empty()) {
    EXPECT_TRUE(flags_allow(flags, level)) << name;
  }
}

TEST(CpuDispatch, UnknownOrUnavailableLevelsAreRefused) {
  EXPECT_THROW(emix::cpu::parse_level("avx1024"), emix::InvalidArgument);
  for (IsaLevel level :
       {IsaLevel::kBaseline, IsaLevel::kV2, IsaLevel::kV3, IsaLevel::kV4, IsaLevel::kNative}) {
    const std::vector<IsaLevel> levels = compiled();
    const bool usable = std::find(levels.begin(), levels.end(), level) != levels.end() &&
                        emix::cpu::cpu_supports(level);
    if (usable) {
      EXPECT_EQ(emix::cpu::parse_level(emix::cpu::to_string(level)), level);
    } else {
      EXPECT_THROW(emix::cpu::parse_level(emix::cpu::to_string(level)), emix::InvalidArgument)
          << emix::cpu::to_string(level);
    }
  }
}

struct LevelCase {
  Family family;
  Covariance covariance;
  bool float32;
};

class EveryLevel : public ::testing::TestWithParam<LevelCase> {};

// Levels differ in vector width and in FMA contraction, so in rounding: float64 models agree to
// 1e-10 relative (rounding of ~1e-16 per operation, carried through 8 iterations of a
// well-conditioned fit, stays many orders below that), float32 ones to 1e-4 (float32
// log-densities and GEMMs round at 6e-8; EM carries that through the iterations).
TEST_P(EveryLevel, GivesTheSameModel) {
  const LevelCase c = GetParam();
  const int k = 4, d = 6;
  const std::int64_t n = 5000;
  const int trials = c.family == Family::kBinomial ? 6 : 1;
  const emix::Model truth =
      emix::testing::random_model(c.family, c.covariance, k, d, 77, trials, 2.0);
  const emix::Sample s = emix::sample(truth, n, 78);
  const std::vector<float> xf(s.x.begin(), s.x.end());
  const emix::DataView x =
      c.float32 ? emix::DataView::host(xf.data(), n, d) : emix::DataView::host(s.x.data(), n, d);
  emix::FitOptions options;
  options.n_components = k;
  options.family = c.family;
  options.covariance = c.covariance;
  options.trials = trials;
  options.tol = 0;
  options.max_iter = 8;
  options.seed = 3;
  options.engine.n_threads = 2;
  const emix::WeightGather ones = [](const std::int64_t*, std::int64_t count, double* out) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = 1.0;
  };
  std::vector<emix::FitReport> reports;
  std::vector<IsaLevel> ran;
  for (IsaLevel level : compiled()) {
    if (!emix::cpu::cpu_supports(level)) continue;
    emix::cpu::CpuEngineSettings settings;
    settings.level = level;
    const auto engine = emix::cpu::make_engine(x, nullptr, options.engine, settings);
    reports.push_back(emix::run_em(*engine, n, d, x.dtype, ones, options));
    ran.push_back(level);
  }
  if (reports.size() < 2) GTEST_SKIP() << "only one level compiled or supported here";
  const double tol = c.float32 ? 1e-4 : 1e-10;
  for (std::size_t i = 1; i < reports.size(); ++i) {
    const std::string what = std::string(emix::cpu::to_string(ran[i])) + " against " +
                             emix::cpu::to_string(ran[0]) + ", " +
                             emix::testing::describe(c.family, c.covariance) +
                             (c.float32 ? " float32" : " float64");
    const emix::Model& a = reports[0].model;
    const emix::Model& b = reports[i].model;
    EXPECT_LE(emix::testing::max_relative_difference(reports[0].history, reports[i].history), tol)
        << what;
    EXPECT_LE(emix::testing::max_relative_difference(a.weights, b.weights), tol) << what;
    EXPECT_LE(emix::testing::max_relative_difference(a.means, b.means), tol) << what;
    EXPECT_LE(emix::testing::max_relative_difference(a.covariances, b.covariances), tol) << what;
    EXPECT_LE(emix::testing::max_relative_difference(a.probabilities, b.probabilities), tol)
        << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, EveryLevel,
                         ::testing::Values(LevelCase{Family::kGaussian, Covariance::kFull, false},
                                           LevelCase{Family::kGaussian, Covariance::kFull, true},
                                           LevelCase{Family::kGaussian, Covariance::kDiag, false},
                                           LevelCase{Family::kGaussian, Covariance::kDiag, true},
                                           LevelCase{Family::kGaussian, Covariance::kTied, false},
                                           LevelCase{Family::kGaussian, Covariance::kSpherical,
                                                     false},
                                           LevelCase{Family::kBernoulli, Covariance::kFull, false},
                                           LevelCase{Family::kBinomial, Covariance::kFull, true}),
                         [](const ::testing::TestParamInfo<LevelCase>& param_info) {
                           std::string name = emix::testing::describe(param_info.param.family,
                                                                      param_info.param.covariance) +
                                              (param_info.param.float32 ? "_float32" : "_float64");
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

}  // namespace
