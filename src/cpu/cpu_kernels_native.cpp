// The CPU kernels compiled for one instruction-set level (flags: src/cpu/CMakeLists.txt).
#define Eigen emix_eigen_native
#define EMIX_CPU_KERNELS_NAMESPACE native
#define EMIX_CPU_KERNELS_LEVEL kNative
#include "cpu/cpu_kernels_impl.hpp"
