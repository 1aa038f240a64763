// The GPU engine's entry points, in plain C++ (no CUDA headers): src/ includes this, and only
// src/core/engine_factory.cpp, which alone decides whether a GPU engine exists.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/engine.hpp"
#include "kernels/engine_plan.hpp"

namespace emix::gpu {

// True when a CUDA device answers (cudaGetDeviceCount > 0 and the runtime initialises) and cuBLAS
// loads.
bool device_available();
// Why device_available() is false, in words ("" when it is true).
const std::string& unavailable_reason();
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
// chunk by chunk on every call, straight from page-locked memory (the caller's, or the
// caller's pageable memory registered for the engine's lifetime) or through pinned staging
// buffers. Device data are used in place. The budget covers the data and every buffer of the
// engine's plan (engine_plan.hpp); the CUDA context and cuBLAS's fixed workspace (32 MiB, general
// path with full or tied covariance only) are outside it.
std::unique_ptr<Engine> create_engine(const DataView& x, const double* sample_weight,
                                      const EngineOptions& options,
                                      const GpuSettings& settings = {});

// How a GPU engine placed its work, for tests, benchmarks and reports.
struct EngineInfo {
  bool device_input = false;  // the caller's device memory, used in place
  bool streaming = false;     // host data copied in chunks on every call
  bool host_registered =
      false;             // streaming: the caller's pageable memory, page-locked by the engine
  bool staging = false;  // streaming: through pinned staging buffers
  int stream_slots = 0;  // streaming: chunks in flight
  std::int64_t chunk_rows = 0;    // rows per launch of the last call (0 before the first call)
  std::int64_t device_bytes = 0;  // device memory the engine holds now
  std::int64_t pinned_bytes = 0;  // pinned host memory the engine holds now
  bool fused = false;             // the last call ran the single-pass kernel
  int tile_rows = 0;              // its tile
  int blocks = 0;                 // its widest grid
  bool register_kernel = false;   // its statistics by the register kernel (row_registers)
  std::string general_reason;     // why the general path, when it ran
};
// Throws InvalidArgument when `engine` is not a GPU engine.
EngineInfo engine_info(const Engine& engine);

}  // namespace emix::gpu
