// A program that still holds GPU engines when it exits: one with the general path's cuBLAS
// handle and one streaming from registered host memory, both in globals whose destructors run
// after the CUDA runtime has torn itself down. CTest fails the run if anything is printed to
// stderr (the engine used to print cudaErrorCudartUnloading lines there). Without a GPU it says
// so and passes.
#include <cstdio>
#include <memory>
#include <vector>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "emix/emix.hpp"
#include "kernels/gpu_engine.hpp"

namespace {
std::vector<double> g_data;
std::unique_ptr<emix::Engine> g_general;
std::unique_ptr<emix::Engine> g_streaming;
}  // namespace

int main() {
  if (!emix::gpu_available()) {
    std::printf("skipped: %s\n", emix::gpu_unavailable_reason().c_str());
    return 0;
  }
  emix::Model model;
  model.covariance = emix::Covariance::kFull;
  model.n_components = 2;
  model.n_features = 2;
  model.weights = {0.5, 0.5};
  model.means = {0, 0, 3, 3};
  model.covariances = {1, 0, 0, 1, 1, 0.5, 0.5, 1};
  g_data = emix::sample(model, 5000, 7).x;
  const emix::DataView view = emix::DataView::host(g_data.data(), 5000, 2);
  const emix::PreparedModel prepared = emix::prepare(model);
  std::vector<double> stats(prepared.layout.size());

  emix::EngineOptions options;
  options.device = emix::Device::kGpu;
  emix::gpu::GpuSettings general;
  general.path = emix::gpu::GpuPath::kGeneral;
  g_general = emix::gpu::create_engine(view, nullptr, options, general);
  g_general->accumulate(prepared, stats.data());

  options.device_memory_limit = 1 << 20;  // streams the 80 KB of data in chunks
  options.chunk_rows = 1000;
  g_streaming = emix::gpu::create_engine(view, nullptr, options);
  g_streaming->accumulate(prepared, stats.data());
  std::printf("log-likelihood %.6f; exiting with two engines held\n", stats[0]);
  return 0;
}
