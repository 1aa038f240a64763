// cuBLAS, opened with dlopen when the GPU engine first needs it rather than linked: a program
// linked with emix starts on a machine without CUDA's libraries, and a CPU fit does not map
// cuBLAS's 600 MB (libcublas and libcublasLt) or spend the time to load them.
#pragma once

#include <cublas_v2.h>

#include <string>
#include <vector>

namespace emix::gpu {

// The cuBLAS functions emix calls: each one's field in CublasApi and its symbol in the library.
#define EMIX_CUBLAS_FUNCTIONS(X)                      \
  X(create, cublasCreate_v2)                          \
  X(destroy, cublasDestroy_v2)                        \
  X(set_stream, cublasSetStream_v2)                   \
  X(set_workspace, cublasSetWorkspace_v2)             \
  X(set_atomics_mode, cublasSetAtomicsMode)           \
  X(set_pointer_mode, cublasSetPointerMode_v2)        \
  X(set_math_mode, cublasSetMathMode)                 \
  X(sgemm, cublasSgemm_v2)                            \
  X(dgemm, cublasDgemm_v2)                            \
  X(sgemm_strided_batched, cublasSgemmStridedBatched) \
  X(dgemm_strided_batched, cublasDgemmStridedBatched) \
  X(status_name, cublasGetStatusName)                 \
  X(status_string, cublasGetStatusString)

// Pointers to them, with the header's own types.
struct CublasApi {
#define EMIX_CUBLAS_FIELD(field, symbol) decltype(&symbol) field = nullptr;
  EMIX_CUBLAS_FUNCTIONS(EMIX_CUBLAS_FIELD)
#undef EMIX_CUBLAS_FIELD
};

// Where cuBLAS is looked for, in order: its soname (LD_LIBRARY_PATH, the system's library path),
// then the folder of the toolkit emix was built with.
std::vector<std::string> cublas_candidates();

// Opens the first candidate that loads and has every function above. Throws NotAvailable naming
// each candidate and why it failed. The library stays loaded for the life of the process.
CublasApi load_cublas(const std::vector<std::string>& candidates);

// Why cuBLAS cannot be loaded from cublas_candidates(), or "" when it can. Tries once per
// process, on the first call to this or to cublas().
const std::string& cublas_unavailable_reason();

// The loaded library. Throws NotAvailable (with cublas_unavailable_reason()) where it cannot be.
const CublasApi& cublas();

// True once the program has begun to exit after loading cuBLAS: cuBLAS's own clean-up may have
// run, so a handle is left to the process's end rather than destroyed.
bool cublas_exiting();

}  // namespace emix::gpu
