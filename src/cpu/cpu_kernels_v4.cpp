// The CPU kernels compiled for one instruction-set level (flags: src/cpu/CMakeLists.txt).
#define Eigen emix_eigen_v4
#define EMIX_CPU_KERNELS_NAMESPACE v4
#define EMIX_CPU_KERNELS_LEVEL kV4
#include "cpu/cpu_kernels_impl.hpp"
