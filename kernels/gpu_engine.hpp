// The GPU engine's entry points, in plain C++ (no CUDA headers): src/ includes this, and only
// src/core/engine_factory.cpp, which alone decides whether a GPU engine exists.
#pragma once

#include <memory>
#include <string>

#include "core/engine.hpp"

namespace emix::gpu {

// True when a CUDA device answers (cudaGetDeviceCount > 0 and the runtime initialises).
bool device_available();
// The current device's name, for example "NVIDIA H100 80GB HBM3".
std::string device_name();
// A GPU engine over x (host or device memory). Throws CudaError / OutOfMemory.
std::unique_ptr<Engine> create_engine(const DataView& x, const double* sample_weight,
                                      const EngineOptions& options);

}  // namespace emix::gpu
