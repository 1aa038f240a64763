// The one translation unit that decides whether a GPU engine exists.
#include "core/engine.hpp"

#include "emix/errors.hpp"
#include "emix/fit.hpp"

#if EMIX_HAS_CUDA
#include "kernels/gpu_engine.hpp"
#endif

namespace emix {

bool gpu_available() {
#if EMIX_HAS_CUDA
  return gpu::device_available();
#else
  return false;
#endif
}

std::string gpu_unavailable_reason() {
#if EMIX_HAS_CUDA
  return gpu::unavailable_reason();
#else
  return "this build of emix has no GPU support (built without CUDA)";
#endif
}

bool gpu_built() { return EMIX_HAS_CUDA; }

int gpu_count() {
#if EMIX_HAS_CUDA
  return gpu::device_count();
#else
  return 0;
#endif
}

void copy_host_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
#if EMIX_HAS_CUDA
  gpu::copy_to_device(device_destination, host_source, bytes);
#else
  (void)device_destination;
  (void)host_source;
  (void)bytes;
  throw NotAvailable("device memory: this build of emix has no GPU support (built without CUDA)");
#endif
}

std::unique_ptr<Engine> make_gpu_engine(const DataView& x, const double* sample_weight,
                                        const EngineOptions& options) {
#if EMIX_HAS_CUDA
  if (!gpu::device_available()) throw NotAvailable("device gpu: " + gpu::unavailable_reason());
  return gpu::create_engine(x, sample_weight, options, gpu::settings_from_environment());
#else
  (void)x;
  (void)sample_weight;
  (void)options;
  throw NotAvailable("device gpu: this build of emix has no GPU support (built without CUDA)");
#endif
}

std::unique_ptr<Engine> make_engine(const DataView& x, const double* sample_weight,
                                    const EngineOptions& options) {
  switch (options.device) {
    case Device::kCpu:
      if (x.space == MemorySpace::kDevice) {
        throw InvalidArgument("device cpu: the data are in GPU memory; use device gpu or auto");
      }
      return make_cpu_engine(x, sample_weight, options);
    case Device::kGpu:
      return make_gpu_engine(x, sample_weight, options);
    case Device::kAuto:
      if (x.space == MemorySpace::kDevice || gpu_available()) {
        return make_gpu_engine(x, sample_weight, options);
      }
      return make_cpu_engine(x, sample_weight, options);
  }
  throw InvalidArgument("unknown device");
}

}  // namespace emix
