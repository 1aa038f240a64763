// An engine runs the E-step over one data set: for a prepared model it returns the sufficient
// statistics (statistics.hpp) and, on request, per-point results. It holds the data (uploaded
// once, for a GPU) for the whole fit. The EM driver owns everything else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "emix/data.hpp"
#include "emix/options.hpp"
#include "prepared_model.hpp"

namespace emix {

class Engine {
 public:
  virtual ~Engine() = default;

  // For example "cpu (2 threads, avx512)" (the CPU kernels' instruction-set level last) or
  // "gpu (NVIDIA H100 80GB HBM3)".
  virtual std::string name() const = 0;

  // Writes model.layout.size() doubles to stats (host memory): the statistics of all rows
  // under `model`. Deterministic: the same inputs give bitwise the same output.
  virtual void accumulate(const PreparedModel& model, double* stats) = 0;

  // The statistics of several models from one pass over the data: stats[i] receives
  // models[i]->layout.size() doubles, bitwise what accumulate(*models[i], stats[i]) gives.
  // Engines that can share each tile's read among the models override this; the default takes
  // one pass per model.
  virtual void accumulate_many(const std::vector<const PreparedModel*>& models,
                               const std::vector<double*>& stats) {
    for (std::size_t i = 0; i < models.size(); ++i) accumulate(*models[i], stats[i]);
  }

  // Per-row results into host buffers; any of them may be null.
  //   log_prob  N      log p(x_n)
  //   resp      N x K  p(k | x_n), row-major
  //   labels    N      argmax_k p(k | x_n) (lowest k on ties)
  virtual void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                        std::int32_t* labels) = 0;

  // Copies rows idx[0..count) to out (count x D, double, host), for initialisation and
  // re-seeding.
  virtual void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) = 0;

  // Runs a check of this process's own resources (its memory, say) that may fail here and not
  // elsewhere: an engine over several processes (MPI ranks) runs it on every one and throws on
  // all when one fails, so that none is left waiting at the next exchange.
  virtual void check_everywhere(const std::function<void()>& check) { check(); }
};

// The data (and sample weights, host, N values or null) must outlive the engine.
std::unique_ptr<Engine> make_cpu_engine(const DataView& x, const double* sample_weight,
                                        const EngineOptions& options);
// Throws NotAvailable in a build without CUDA or when no device answers.
std::unique_ptr<Engine> make_gpu_engine(const DataView& x, const double* sample_weight,
                                        const EngineOptions& options);
// Picks by options.device (kAuto: GPU when one answers, else CPU; device data needs the GPU).
std::unique_ptr<Engine> make_engine(const DataView& x, const double* sample_weight,
                                    const EngineOptions& options);

// Copies host bytes to device memory; NotAvailable in a build without CUDA.
void copy_host_to_device(void* device_destination, const void* host_source, std::size_t bytes);

}  // namespace emix
