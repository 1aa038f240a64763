// Which instruction-set levels this build compiled (EMIX_CPU_LEVEL_* from src/cpu/CMakeLists.txt)
// and which of them the CPU running us supports.
#include <string>

#include "cpu/cpu_kernels.hpp"
#include "emix/errors.hpp"

namespace emix::cpu {

// Each level's tables (cpu_kernels_impl.hpp).
#define EMIX_DECLARE_LEVEL(ns)        \
  namespace ns {                      \
  const Kernels<float>& table_f32();  \
  const Kernels<double>& table_f64(); \
  const DenseKernels& table_dense();  \
  }
#if EMIX_CPU_LEVEL_NATIVE
EMIX_DECLARE_LEVEL(native)
#else
EMIX_DECLARE_LEVEL(baseline)
#endif
#if EMIX_CPU_LEVEL_V2
EMIX_DECLARE_LEVEL(v2)
#endif
#if EMIX_CPU_LEVEL_V3
EMIX_DECLARE_LEVEL(v3)
#endif
#if EMIX_CPU_LEVEL_V4
EMIX_DECLARE_LEVEL(v4)
#endif
#undef EMIX_DECLARE_LEVEL

const char* to_string(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline:
      return "x86-64";
    case IsaLevel::kV2:
      return "x86-64-v2";
    case IsaLevel::kV3:
      return "avx2";
    case IsaLevel::kV4:
      return "avx512";
    case IsaLevel::kNative:
      return "native";
  }
  return "unknown";
}

int compiled_levels(IsaLevel* out, int capacity) {
  const IsaLevel levels[] = {
#if EMIX_CPU_LEVEL_NATIVE
    IsaLevel::kNative,
#else
    IsaLevel::kBaseline,
#endif
#if EMIX_CPU_LEVEL_V2
    IsaLevel::kV2,
#endif
#if EMIX_CPU_LEVEL_V3
    IsaLevel::kV3,
#endif
#if EMIX_CPU_LEVEL_V4
    IsaLevel::kV4,
#endif
  };
  const int count = static_cast<int>(sizeof levels / sizeof levels[0]);
  for (int i = 0; i < count && i < capacity; ++i) out[i] = levels[i];
  return count;
}

// What the CPU reports (cpuid, and the OS's saving of the wider registers, which
// __builtin_cpu_supports checks too). The baseline and a native build run wherever this program
// was built to run.
bool cpu_supports(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline:
    case IsaLevel::kNative:
      return true;
#if defined(__x86_64__) && defined(__clang__)
    // clang 14 (Debian 12's) knows no level names here (a build error): the levels' features it
    // can ask for instead (every CPU with AVX2 and BMI2 has v3's F16C, LZCNT and MOVBE, and v2's
    // CMPXCHG16B and LAHF come with SSE4.2).
    case IsaLevel::kV2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("sse3") &&
             __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1") &&
             __builtin_cpu_supports("sse4.2");
    case IsaLevel::kV3:
      return cpu_supports(IsaLevel::kV2) && __builtin_cpu_supports("avx") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    case IsaLevel::kV4:
      return cpu_supports(IsaLevel::kV3) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#elif defined(__x86_64__) && defined(__GNUC__)
    case IsaLevel::kV2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("x86-64-v2");
    case IsaLevel::kV3:
      __builtin_cpu_init();
      return __builtin_cpu_supports("x86-64-v3");
    case IsaLevel::kV4:
      __builtin_cpu_init();
      return __builtin_cpu_supports("x86-64-v4");
#else
    default:
      return false;
#endif
  }
  return false;
}

IsaLevel best_level() {
  IsaLevel levels[8];
  const int count = compiled_levels(levels, 8);
  IsaLevel best = levels[0];
  for (int i = 1; i < count; ++i) {
    if (cpu_supports(levels[i])) best = levels[i];
  }
  return best;
}

namespace {

bool compiled(IsaLevel level) {
  IsaLevel levels[8];
  const int count = compiled_levels(levels, 8);
  for (int i = 0; i < count; ++i) {
    if (levels[i] == level) return true;
  }
  return false;
}

void check_usable(IsaLevel level) {
  if (!compiled(level)) {
    throw InvalidArgument(std::string("CPU kernels for ") + to_string(level) +
                          ": not compiled into this build of emix");
  }
  if (!cpu_supports(level)) {
    throw InvalidArgument(std::string("CPU kernels for ") + to_string(level) +
                          ": this CPU does not support that instruction set");
  }
}

// A level's tables; InvalidArgument for a level this build did not compile.
struct LevelTables {
  const Kernels<float>& (*f32)();
  const Kernels<double>& (*f64)();
  const DenseKernels& (*dense)();
};

LevelTables tables_of(IsaLevel level) {
  switch (level) {
#if EMIX_CPU_LEVEL_NATIVE
    case IsaLevel::kNative:
      return {&native::table_f32, &native::table_f64, &native::table_dense};
#else
    case IsaLevel::kBaseline:
      return {&baseline::table_f32, &baseline::table_f64, &baseline::table_dense};
#endif
#if EMIX_CPU_LEVEL_V2
    case IsaLevel::kV2:
      return {&v2::table_f32, &v2::table_f64, &v2::table_dense};
#endif
#if EMIX_CPU_LEVEL_V3
    case IsaLevel::kV3:
      return {&v3::table_f32, &v3::table_f64, &v3::table_dense};
#endif
#if EMIX_CPU_LEVEL_V4
    case IsaLevel::kV4:
      return {&v4::table_f32, &v4::table_f64, &v4::table_dense};
#endif
    default:
      break;
  }
  throw InvalidArgument("CPU kernels: unknown instruction-set level");
}

}  // namespace

const Kernels<float>& kernels_f32(IsaLevel level) {
  check_usable(level);
  return tables_of(level).f32();
}

const Kernels<double>& kernels_f64(IsaLevel level) {
  check_usable(level);
  return tables_of(level).f64();
}

const DenseKernels& dense_kernels() {
  static const DenseKernels& table = tables_of(best_level()).dense();
  return table;
}

}  // namespace emix::cpu
