// The CPU kernels compiled for one instruction-set level (flags: src/cpu/CMakeLists.txt).
#define Eigen emix_eigen_v3
#define EMIX_CPU_KERNELS_NAMESPACE v3
#define EMIX_CPU_KERNELS_LEVEL kV3
#include "cpu/cpu_kernels_impl.hpp"
