// EMIX_HD marks functions that both the host compiler and nvcc compile: code shared by the CPU
// engine, the GPU kernels and their CPU tests. Such code may not call CUDA-only functions.
#pragma once

#ifdef __CUDACC__
#define EMIX_HD __host__ __device__
#else
#define EMIX_HD
#endif
