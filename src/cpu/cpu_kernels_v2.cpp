// The CPU kernels compiled for one instruction-set level (flags: src/cpu/CMakeLists.txt).
#define Eigen emix_eigen_v2
#define EMIX_CPU_KERNELS_NAMESPACE v2
#define EMIX_CPU_KERNELS_LEVEL kV2
#include "cpu/cpu_kernels_impl.hpp"
