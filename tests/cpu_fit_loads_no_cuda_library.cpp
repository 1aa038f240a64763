// A CPU fit in a build with the GPU engine maps no CUDA library: cuBLAS is opened only when a GPU
// engine needs it, so emix starts on machines without CUDA's libraries and a CPU user does not
// pay for loading them. Fails, listing them, if /proc/self/maps names one after the fit.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "emix/emix.hpp"

int main() {
  emix::Model truth;
  truth.covariance = emix::Covariance::kFull;
  truth.n_components = 2;
  truth.n_features = 2;
  truth.weights = {0.5, 0.5};
  truth.means = {0, 0, 4, 4};
  truth.covariances = {1, 0, 0, 1, 1, 0.5, 0.5, 1};
  const std::vector<double> x = emix::sample(truth, 2000, 11).x;

  emix::FitOptions options;
  options.n_components = 2;
  options.covariance = emix::Covariance::kFull;
  options.engine.device = emix::Device::kCpu;
  const emix::FitReport report = emix::fit(emix::DataView::host(x.data(), 2000, 2), options);
  std::printf("CPU fit: %d iterations, mean log-likelihood %.6f\n", report.n_iter,
              report.mean_log_likelihood);

  std::ifstream maps("/proc/self/maps");
  if (!maps) {
    std::printf("skipped: /proc/self/maps cannot be read\n");
    return 0;
  }
  int mapped = 0;
  for (std::string line; std::getline(maps, line);) {
    // libcublas and libcublasLt; libcuda (the driver) and libcudart.
    if (line.find("libcublas") != std::string::npos || line.find("libcuda") != std::string::npos) {
      std::fprintf(stderr, "mapped after a CPU fit: %s\n", line.c_str());
      ++mapped;
    }
  }
  return mapped == 0 ? 0 : 1;
}
