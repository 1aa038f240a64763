// The GPU engine's entry points, in plain C++ (no CUDA headers): src/ includes this, and only
// src/core/engine_factory.cpp, which alone decides whether a GPU engine exists.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/engine.hpp"

namespace emix::gpu {

// True when a CUDA device answers (cudaGetDeviceCount > 0 and the runtime initialises).
bool device_available();
// Copies host bytes to memory of a CUDA device (the C API's results for device data).
void copy_to_device(void* device_destination, const void* host_source, std::size_t bytes);
// CUDA devices this process can use (0 when none answers).
int device_count();
// The current device's name, for example "NVIDIA H100 80GB HBM3".
std::string device_name();
// A GPU engine over x (host or device memory). Throws CudaError / OutOfMemory. With
// options.gpu_device >= 0 it first makes that device current for the calling thread.
//
// Host data are uploaded once when they fit in the memory budget (options.device_memory_limit,
// or the device's free memory less a margin); otherwise they are streamed through the device
// chunk by chunk on every call. Device data are used in place. The budget covers the data and
// the per-chunk buffers; the CUDA context and cuBLAS's fixed workspace (32 MiB, full and tied
// covariance only) are outside it.
std::unique_ptr<Engine> create_engine(const DataView& x, const double* sample_weight,
                                      const EngineOptions& options);

// How a GPU engine placed its work, for tests and reports.
struct EngineInfo {
  bool device_input = false;      // the caller's device memory, used in place
  bool streaming = false;         // host data copied in chunks on every call
  std::int64_t chunk_rows = 0;    // rows per chunk (0 until the first call sized the buffers)
  std::int64_t device_bytes = 0;  // device memory the engine holds now
  bool tiled_scatter = false;     // the last accumulate summed the scatter by the tiled kernel
  bool fused_full = false;        // the last accumulate ran full / tied in the single-pass kernel
};
// Throws InvalidArgument when `engine` is not a GPU engine.
EngineInfo engine_info(const Engine& engine);

// For tests: with false, diag / spherical / Bernoulli / binomial statistics take the general
// kernels (one per step) instead of the single-pass fused kernel. Process-wide; default true.
void set_fused_kernels(bool enabled);

// How full / tied covariance scatter matrices are summed per block of rows: kBatchedGemm, a
// batched cuBLAS GEMM over sqrt(g)(x - c_k) blocks; kTiled, a kernel that reads the staged rows
// and responsibilities directly; kFused, E-step and all statistics in one kernel reading X once,
// where a block can hold K x D^2 sums (small D and K; otherwise as kAuto). kAuto: kFused where
// it fits (unless set_fused_kernels(false)), else scatter_method_for. For tests and benchmarks;
// process-wide; default kAuto.
enum class ScatterMethod { kAuto, kBatchedGemm, kTiled, kFused };
void set_scatter_method(ScatterMethod method);
// The method kAuto takes for D features and K components.
ScatterMethod scatter_method_for(int d, int k);
// Whether kFused can run full / tied covariance with D features and K components in one pass
// (in blocks of 256 rows, those of a chunk of 256 rows or more).
bool fused_full_fits(int d, int k);

}  // namespace emix::gpu
