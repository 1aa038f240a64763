// The CPU engine's internal factory: the public make_cpu_engine (core/engine.hpp) with settings
// that tests and benchmarks choose explicitly.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "core/engine.hpp"
#include "cpu/cpu_kernels.hpp"

namespace emix::cpu {

struct CpuEngineSettings {
  // The kernels' instruction-set level; unset: the EMIX_CPU_LEVEL environment variable
  // ("x86-64", "x86-64-v2", "avx2", "avx512" or "native") where it is set, else the highest
  // level the CPU supports.
  std::optional<IsaLevel> level;
  // Test-only reference: keep negligible responsibilities (no exp_or_zero flush) and leave
  // FTZ / DAZ off, i.e. compute with the subnormals that the engine normally never makes.
  bool keep_negligible = false;
  // Bound on one model's per-slot sums in a pass (its slot count is the largest power of two up
  // to 64 that fits); tests lower it so that models of one pass differ in slot count.
  std::size_t slot_memory_bytes = std::size_t{64} << 20;
};

std::unique_ptr<Engine> make_engine(const DataView& x, const double* sample_weight,
                                    const EngineOptions& options,
                                    const CpuEngineSettings& settings);

// The feature columns of one pass for a model's shape: D (Bernoulli, binomial), 2 D (diag,
// spherical) or D + D (D + 1) / 2 (full, tied). InvalidArgument where they exceed an int (full or
// tied over 65,535 features or more), whose plans and kernels count them in int.
int feature_count(Family family, Covariance covariance, int d);

// The level EMIX_CPU_LEVEL names, or best_level() when it is unset or empty; InvalidArgument
// for a name that is not a level, or a level this build or CPU lacks.
IsaLevel level_from_environment();
IsaLevel parse_level(const char* name);

}  // namespace emix::cpu
