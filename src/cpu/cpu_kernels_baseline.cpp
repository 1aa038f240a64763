// The CPU kernels compiled for one instruction-set level (flags: src/cpu/CMakeLists.txt).
#define Eigen emix_eigen_baseline
#define EMIX_CPU_KERNELS_NAMESPACE baseline
#define EMIX_CPU_KERNELS_LEVEL kBaseline
#include "cpu/cpu_kernels_impl.hpp"
