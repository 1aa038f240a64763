// Options for fitting and evaluating mixtures.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "emix/model.hpp"

namespace emix {

enum class Init {
  kKMeansPlusPlus,  // greedy k-means++ seeding refined by a few k-means iterations (default)
  kRandom,          // random responsibilities (scikit-learn's init_params="random")
  kRandomFromData,  // K distinct random rows as seeds, each row assigned to the nearest (Gaussian;
                    // Bernoulli / binomial: halfway between a row and the data); scikit-learn's
                    // "random_from_data"
};
enum class Device { kAuto, kCpu, kGpu };

const char* to_string(Init init);  // "kmeans++", "random", "random-from-data"
const char* to_string(Device device);
Init parse_init(const std::string& name);
Device parse_device(const std::string& name);

// Where and how the E-step runs. Results never depend on n_threads.
struct EngineOptions {
  Device device = Device::kAuto;  // kAuto: the GPU engine when a GPU answers, else the CPU
  // CPU engine: OpenMP threads, 0 = OpenMP's default; at most what OMP_THREAD_LIMIT leaves
  // (inside the caller's parallel regions, an even share of it). A process
  // forked after emix ran several threads runs it on one: GNU OpenMP's thread pool does not
  // survive fork(). A child forked after the program's own OpenMP regions (on the same GNU
  // OpenMP) is not seen: set 1 there, or its first parallel region never returns.
  int n_threads = 0;
  std::int64_t block_rows = 0;  // CPU engine: rows per tile, 0 = chosen from K and D
  std::int64_t chunk_rows = 0;  // GPU engine: rows per device chunk, 0 = chosen from memory
  // GPU engine: device memory it may use, in bytes (0 = what is free). Host data that do not fit
  // are streamed through in chunks every iteration instead of uploaded once.
  std::int64_t device_memory_limit = 0;
  bool allow_tf32 = false;  // GPU engine: TF32 matrix products (faster, less exact)
  // GPU engine: the CUDA device to run on, made current for the calling thread; -1 = the
  // current device. (mpi::fit picks one per rank when this is -1.)
  int gpu_device = -1;
};

// What happened in one EM iteration (passed to FitOptions::on_iteration).
struct IterationInfo {
  int init_run = 0;           // which of the n_init restarts
  int iteration = 0;          // 0 = the initial parameters
  double log_likelihood = 0;  // total, sum_n w_n log p(x_n)
  double mean_log_likelihood = 0;
  double change = 0;   // change in mean log-likelihood from the previous iteration
  double seconds = 0;  // wall time of this iteration
};

struct FitOptions {
  int n_components = 1;
  Family family = Family::kGaussian;
  Covariance covariance = Covariance::kFull;
  int trials = 1;  // binomial: trials per entry; 1 for other families (another is refused)

  Init init = Init::kKMeansPlusPlus;
  // Starting parameters, used exactly as given (component order kept); overrides `init`.
  std::optional<Model> init_model;
  int kmeans_iter = 10;  // k-means refinement steps after k-means++
  std::int64_t init_max_rows =
      1 << 17;                 // initialisation sees a random sample of at most this many rows
  bool fixed_weights = false;  // keep the initial mixing weights
  int n_init = 1;              // restarts; the best final log-likelihood wins
  int max_iter = 100;
  double tol = 1e-3;        // on the change in mean log-likelihood per sample; 0 = max_iter steps
  double reg_covar = 1e-6;  // added to covariance diagonals
  double prob_epsilon = 1e-10;  // Bernoulli / binomial probabilities kept in [eps, 1 - eps]
  std::uint64_t seed = 0;

  EngineOptions engine;
  std::function<void(const IterationInfo&)> on_iteration;  // progress; may be empty
};

// Throw InvalidArgument naming the first option out of range: what fit() and the evaluation
// functions check before they look at the data (an init model is validated too), so that a
// caller can check options before reading a large input.
void validate(const EngineOptions& options);
void validate(const FitOptions& options);

}  // namespace emix
