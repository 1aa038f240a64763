// emix_bench: Google Benchmark suite for emix's E-step, M-step and whole EM iterations, per
// engine (CPU; GPU when the build has CUDA and a device answers), family and covariance type, on
// synthetic data, with each case's time set against a measured floor.
//
//   emix_bench [--short] [Google Benchmark flags, e.g. --benchmark_filter=estep/cpu]
//   EMIX_BENCH_SHORT=1 emix_bench          (the same as --short)
//
// Benchmarks (names are step/engine/family[-covariance][/sep]/dtype/N:/D:/K:):
//   estep      Engine::accumulate: the E-step with its sufficient statistics (engine.hpp), on
//              data the engine already holds (a GPU engine has uploaded it once).
//   iteration  prepare + accumulate + maximize: one whole EM iteration as the driver runs it
//              (without the driver's convergence bookkeeping and re-seeding).
//   mstep      maximize(): new parameters from the statistics (host, double, the same for every
//              engine, so registered once as "host"); independent of N.
//   prepare    prepare(): the per-iteration precomputation (Cholesky factors, logs); host.
//   read       io::read_matrix of a float64 or float32 .npy (written once to TMPDIR, read from
//              the page cache) into float64 or float32, with the finite check a fit asks for:
//              the set-up every `emix fit` of a file pays before its first E-step
//              (read/npy/FILE-to-DTYPE/N:/D:). bytes/s counts the file's data bytes.
//
// Grid (pruned so that a full run ends; see register_all):
//   gaussian full and diag   estep: N in {1e4, 1e5, 1e6, 1e7} x D in {2, 16, 64} x K in
//                            {2, 16, 64}, float32 and float64; iteration: the same grid in each
//                            engine's usual precision (CPU float64, GPU float32).
//   spherical, tied,         estep and iteration on a reduced grid: N in {1e5, 1e7} x D in
//   bernoulli, binomial      {2, 16, 64} x K = 16, CPU float64 and GPU float32. Their E-steps
//                            share the full/diag code paths (spherical/diag: [u, u^2] features;
//                            tied/full: [u, u u^T]; Bernoulli/binomial: one GEMM on x), so the
//                            reduced grid shows their cost without tripling the run.
//   mstep, prepare           D in {2, 16, 64} x K in {2, 16, 64}, all six models.
//   K scan                   gaussian full and diag estep, N = 1e6, D = 16, every K from 1 to
//                            17, float32 and float64, overlapping and well-separated data: the K
//                            that part-fill the kernels' blocks.
//   .../sep/...              gaussian full and diag estep, N in {1e5, 1e6}, D = K = 16, float32
//                            and float64, on well-separated data (source means 80 apart instead of
//                            8, as `emix generate` makes): almost every log-responsibility is
//                            below -700, the case in which subnormal arithmetic once made the CPU
//                            engine 40-80x slower. Its time should match the overlapping case's.
// Skipped (never registered, counted in a line printed at start): cases whose data would not fit
// host memory (available memory from sysconf / /proc/meminfo) or, for the GPU, device memory
// (cudaMemGetInfo); CPU cases above EMIX_BENCH_CPU_MAX_FLOP FLOPs per iteration (default 3e11,
// about 3 s an iteration on 2 cores) and GPU cases above EMIX_BENCH_GPU_MAX_FLOP (default 5e13).
// Without CUDA in the build, or with no device answering, the GPU benchmarks are not registered
// and the reason is printed once.
//
// Counters (estep and iteration): items_per_second = rows per second; bytes/s and FLOP/s =
// estep_bytes() and estep_flops() per iteration over the measured time; floor_mem_ms = bytes /
// measured memory bandwidth; floor_flop_ms (GPU) = FLOPs / measured GEMM rate (SGEMM for float32
// data, DGEMM for float64); x_floor = time per iteration / max(floor_mem, floor_flop) (1 would be
// at the floor). The rates are measured once at start-up and printed: on the CPU, an OpenMP sum
// over a 512 MiB buffer (read bandwidth); on the GPU, a 1 GiB device-to-device cudaMemcpy
// (bandwidth = 2 x bytes / time: it reads and writes) and 8192^3 cuBLAS SGEMM / DGEMM.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if EMIX_HAS_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

#include "bench/bench_random.hpp"
#include "core/engine.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "emix/emix.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using emix::Covariance;
using emix::DType;
using emix::Family;

constexpr int kTrials = 8;  // binomial: trials per entry

// ------------------------------------------------------------------------------------------
// Work per iteration

// FLOPs of one E-step with its statistics (Engine::accumulate), for N rows, D features and K
// components. Counted per row and component as a dense implementation executes them (the form
// in which engines run them: GEMMs), each multiply and each add one FLOP:
//   full      4 D^2 + 6 D + 6:  Mahalanobis term y = x^T U_k - mean_prec_k with U_k the
//             precision's Cholesky factor, as a dense D x D mat-vec (2 D^2), the subtraction and
//             ||y||^2 (3 D); scatter Q_k += (g u) u^T, u = x - c_k, dense (2 D^2), and u, g u,
//             S_k += g u (3 D); 6 for the log-weights, log-sum-exp, responsibility and N_k.
//             (Exploiting symmetry and triangularity would halve the D^2 terms: a floor from this
//             count is up to 2x lenient for full covariance.)
//   tied      as full, but x^T U is shared by the K components: 2 D^2 per row, plus per row and
//             component 2 D^2 + 6 D + 6 (the scatter is still per component).
//   diag      9 D + 6:  y = x * p - m (2 D), ||y||^2 (2 D); u, g u, S += g u (3 D), Q += (g u) u
//             (2 D).
//   spherical 8 D + 6:  ||x - mu||^2 (3 D) times one precision; statistics as diag (5 D).
//   bernoulli / binomial  4 D + 6:  x . logit_k (2 D) and S_k += g x (2 D); the binomial
//             coefficient term is per row and independent of k (not counted).
// The M-step, O(K D^2) to O(K D^3), is independent of N and not counted.
double estep_flops(Family family, Covariance covariance, double n, double d, double k) {
  double per_row_component = 0, per_row = 0;
  if (family != Family::kGaussian) {
    per_row_component = 4 * d + 6;
  } else {
    switch (covariance) {
      case Covariance::kFull:
        per_row_component = 4 * d * d + 6 * d + 6;
        break;
      case Covariance::kTied:
        per_row = 2 * d * d;
        per_row_component = 2 * d * d + 6 * d + 6;
        break;
      case Covariance::kDiag:
        per_row_component = 9 * d + 6;
        break;
      case Covariance::kSpherical:
        per_row_component = 8 * d + 6;
        break;
    }
  }
  return n * (per_row + k * per_row_component);
}

// Bytes one E-step must move: X read once (N x D elements), plus writing the statistics (K x D^2
// doubles at most, negligible). Responsibilities never go to memory (the engines tile them).
double estep_bytes(std::int64_t n, int d, DType dtype, std::size_t stats_doubles) {
  return static_cast<double>(n) * d * static_cast<double>(emix::dtype_size(dtype)) +
         8.0 * static_cast<double>(stats_doubles);
}

// ------------------------------------------------------------------------------------------
// Machine: memory and measured rates

struct Rates {
  double host_read_bw = 0;  // bytes / s
  bool gpu = false;
  std::string gpu_name;
  std::string gpu_skip_reason;
  double gpu_bw = 0;      // bytes / s (copy: 2 x bytes / time)
  double gpu_sgemm = 0;   // FLOP / s
  double gpu_dgemm = 0;   // FLOP / s
  double gpu_free = 0;    // bytes, at start-up
  double host_avail = 0;  // bytes
};
Rates g_rates;

double host_available_bytes() {
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double avail = static_cast<double>(sysconf(_SC_AVPHYS_PAGES)) * page;  // free pages only
  // MemAvailable also counts the page cache the kernel would give back.
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") avail = std::max(avail, kib * 1024.0);
  }
  return avail;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Read bandwidth of host memory with every OpenMP thread: the best of 5 sums over a buffer far
// larger than the caches (first touched by the threads that read it).
double measure_host_read_bandwidth(std::size_t bytes) {
  const std::int64_t n = static_cast<std::int64_t>(bytes / sizeof(double));
  std::unique_ptr<double[]> buffer(new double[static_cast<std::size_t>(n)]);
  double* p = buffer.get();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<double>(i & 1023);
  double best = 1e30, sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    double sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (std::int64_t i = 0; i < n; ++i) sum += p[i];
    best = std::min(best, seconds_since(start));
    sink += sum;
  }
  benchmark::DoNotOptimize(sink);
  return static_cast<double>(n) * sizeof(double) / best;
}

#if EMIX_HAS_CUDA
// One failed CUDA or cuBLAS call makes the measurement (and so the GPU benchmarks) give up with
// a reason instead of exiting.
bool cuda_ok(cudaError_t status, const char* what, std::string* why) {
  if (status == cudaSuccess) return true;
  *why = std::string(what) + ": " + cudaGetErrorName(status);
  return false;
}

// Device-to-device copy of `bytes`: 2 x bytes / time, best of 5.
double measure_gpu_copy_bandwidth(std::size_t bytes, std::string* why) {
  void *a = nullptr, *b = nullptr;
  double result = 0;
  if (cuda_ok(cudaMalloc(&a, bytes), "cudaMalloc", why) &&
      cuda_ok(cudaMalloc(&b, bytes), "cudaMalloc", why) &&
      cuda_ok(cudaMemset(a, 1, bytes), "cudaMemset", why) &&
      cuda_ok(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy", why) &&
      cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", why)) {
    double best = 1e30;
    bool ok = true;
    for (int rep = 0; rep < 5 && ok; ++rep) {
      const auto start = Clock::now();
      ok = cuda_ok(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy", why) &&
           cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", why);
      best = std::min(best, seconds_since(start));
    }
    if (ok) result = 2.0 * static_cast<double>(bytes) / best;
  }
  if (a != nullptr) cudaFree(a);
  if (b != nullptr) cudaFree(b);
  return result;
}

// cuBLAS GEMM rate on n x n x n (FP32 with CUBLAS_DEFAULT_MATH: no TF32), best of 3.
template <typename T>
double measure_gpu_gemm_rate(int n, std::string* why) {
  const std::size_t bytes = static_cast<std::size_t>(n) * n * sizeof(T);
  T *a = nullptr, *b = nullptr, *c = nullptr;
  cublasHandle_t handle = nullptr;
  double result = 0;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    *why = "cublasCreate failed";
    return 0;
  }
  cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
  if (cuda_ok(cudaMalloc(reinterpret_cast<void**>(&a), bytes), "cudaMalloc", why) &&
      cuda_ok(cudaMalloc(reinterpret_cast<void**>(&b), bytes), "cudaMalloc", why) &&
      cuda_ok(cudaMalloc(reinterpret_cast<void**>(&c), bytes), "cudaMalloc", why) &&
      cuda_ok(cudaMemset(a, 0, bytes), "cudaMemset", why) &&
      cuda_ok(cudaMemset(b, 0, bytes), "cudaMemset", why)) {
    const T one = 1, zero = 0;
    const auto gemm = [&]() {
      if constexpr (std::is_same_v<T, float>) {
        return cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c,
                           n);
      } else {
        return cublasDgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c,
                           n);
      }
    };
    double best = 1e30;
    bool ok = gemm() == CUBLAS_STATUS_SUCCESS &&
              cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", why);  // warm-up
    for (int rep = 0; rep < 3 && ok; ++rep) {
      const auto start = Clock::now();
      ok = gemm() == CUBLAS_STATUS_SUCCESS &&
           cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", why);
      best = std::min(best, seconds_since(start));
    }
    if (ok) {
      result = 2.0 * n * static_cast<double>(n) * n / best;
    } else if (why->empty()) {
      *why = "cuBLAS GEMM failed";
    }
  }
  if (a != nullptr) cudaFree(a);
  if (b != nullptr) cudaFree(b);
  if (c != nullptr) cudaFree(c);
  cublasDestroy(handle);
  return result;
}
#endif

// Decides whether the GPU benchmarks run (g_rates.gpu) and measures the floors' rates.
void measure_rates(bool short_mode) {
  g_rates.host_avail = host_available_bytes();
  g_rates.host_read_bw = measure_host_read_bandwidth(std::size_t{short_mode ? 256u : 512u} << 20);
#if EMIX_HAS_CUDA
  if (!emix::gpu_available()) {
    g_rates.gpu_skip_reason = "no CUDA device answers on this machine";
    return;
  }
  std::string why;
  int device = 0;
  cudaDeviceProp props{};
  std::size_t free_bytes = 0, total_bytes = 0;
  if (!cuda_ok(cudaGetDevice(&device), "cudaGetDevice", &why) ||
      !cuda_ok(cudaGetDeviceProperties(&props, device), "cudaGetDeviceProperties", &why) ||
      !cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", &why)) {
    g_rates.gpu_skip_reason = why;
    return;
  }
  g_rates.gpu_name = props.name;
  g_rates.gpu_free = static_cast<double>(free_bytes);
  // 1 GiB copies and 8192^2 matrices where the memory allows (both need < 2 GiB free).
  const std::size_t copy_bytes = std::min<std::size_t>(std::size_t{1} << 30, free_bytes / 4);
  const int gemm_n = free_bytes > (std::size_t{3} << 30) ? 8192 : 2048;
  g_rates.gpu_bw = measure_gpu_copy_bandwidth(copy_bytes, &why);
  if (g_rates.gpu_bw > 0) g_rates.gpu_sgemm = measure_gpu_gemm_rate<float>(gemm_n, &why);
  if (g_rates.gpu_sgemm > 0) g_rates.gpu_dgemm = measure_gpu_gemm_rate<double>(gemm_n, &why);
  if (g_rates.gpu_dgemm > 0) {
    g_rates.gpu = true;
  } else {
    g_rates.gpu_skip_reason = "measuring the GPU's floors failed: " + why;
  }
#else
  g_rates.gpu_skip_reason = "this build of emix has no CUDA (configure with -DEMIX_CUDA=ON)";
#endif
}

// ------------------------------------------------------------------------------------------
// Synthetic data: fixed seeds, generated in parallel, each row from its index alone (so the same
// whatever the thread count), independent of K so that one data set serves every K.

enum class Kind { kGaussian, kBernoulli, kBinomial };
Kind kind_of(Family family) {
  return family == Family::kGaussian    ? Kind::kGaussian
         : family == Family::kBernoulli ? Kind::kBernoulli
                                        : Kind::kBinomial;
}

constexpr int kSourceComponents = 8;  // the mixture the rows are drawn from

using emix::bench::splitmix;
using emix::bench::uniform;

struct DataKey {
  Kind kind = Kind::kGaussian;
  DType dtype = DType::kFloat64;
  std::int64_t n = 0;
  int d = 0;
  bool separated = false;  // Gaussian: source means uniform in [-40, 40]^D instead of [-4, 4]^D
  bool operator==(const DataKey& o) const {
    return kind == o.kind && dtype == o.dtype && n == o.n && d == o.d && separated == o.separated;
  }
};

// Rows from an 8-component source: Gaussian: means uniform in [-4, 4]^D ([-40, 40]^D when
// separated), noise of standard
// deviation 0.7 (a sum of four uniforms: cheap and near normal); Bernoulli: 0/1 with
// per-component probabilities in [0.1, 0.9]; binomial: counts out of kTrials drawn exactly by
// inverting the CDF.
template <typename T>
void generate(const DataKey& key, T* x) {
  const int d = key.d;
  std::vector<double> centre(static_cast<std::size_t>(kSourceComponents) * d);
  std::uint64_t s = 20261126 + static_cast<std::uint64_t>(key.kind);
  for (double& v : centre) {
    const double half_width = key.separated ? 40.0 : 4.0;
    v = key.kind == Kind::kGaussian ? half_width * (2.0 * uniform(s) - 1.0)
                                    : 0.1 + 0.8 * uniform(s);
  }
  std::vector<double> cdf;  // binomial: per (component, feature), kTrials + 1 values
  if (key.kind == Kind::kBinomial) {
    cdf.resize(centre.size() * (kTrials + 1));
    for (std::size_t i = 0; i < centre.size(); ++i) {
      const double p = centre[i];
      double acc = 0;
      for (int t = 0; t <= kTrials; ++t) {
        acc += std::exp(std::lgamma(kTrials + 1.0) - std::lgamma(t + 1.0) -
                        std::lgamma(kTrials - t + 1.0) + t * std::log(p) +
                        (kTrials - t) * std::log1p(-p));
        cdf[i * (kTrials + 1) + t] = acc;
      }
    }
  }
  const double noise = 0.7 * std::sqrt(3.0);  // sum of 4 uniforms - 2 has variance 1/3
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < key.n; ++row) {
    std::uint64_t r = splitmix(static_cast<std::uint64_t>(row) * 0x632be59bd9b4e019ULL + 1);
    const int c = static_cast<int>(splitmix(r) % kSourceComponents);
    T* out = x + row * d;
    const double* mean = centre.data() + static_cast<std::size_t>(c) * d;
    for (int j = 0; j < d; ++j) {
      double v = 0;
      if (key.kind == Kind::kGaussian) {
        v = mean[j] + noise * (uniform(r) + uniform(r) + uniform(r) + uniform(r) - 2.0);
      } else if (key.kind == Kind::kBernoulli) {
        v = uniform(r) < mean[j] ? 1.0 : 0.0;
      } else {
        const double u = uniform(r);
        const double* f = cdf.data() + (static_cast<std::size_t>(c) * d + j) * (kTrials + 1);
        int t = 0;
        while (t < kTrials && u > f[t]) ++t;
        v = t;
      }
      out[j] = static_cast<T>(v);
    }
  }
}

// One data set at a time (the benchmarks are registered grouped by data, see register_all), and
// the engines built on it.
struct Workspace {
  DataKey key;
  std::vector<float> f32;
  std::vector<double> f64;
  std::unique_ptr<emix::Engine> cpu, gpu;

  emix::DataView view() const {
    return key.dtype == DType::kFloat32 ? emix::DataView::host(f32.data(), key.n, key.d)
                                        : emix::DataView::host(f64.data(), key.n, key.d);
  }
  double at(std::int64_t row, int j) const {
    const std::size_t i = static_cast<std::size_t>(row) * key.d + j;
    return key.dtype == DType::kFloat32 ? f32[i] : f64[i];
  }
};
Workspace g_work;

Workspace& workspace(const DataKey& key) {
  if (!(g_work.key == key) || (g_work.f32.empty() && g_work.f64.empty())) {
    g_work.cpu.reset();
    g_work.gpu.reset();
    std::vector<float>().swap(g_work.f32);
    std::vector<double>().swap(g_work.f64);
    g_work.key = key;
    const std::size_t size = static_cast<std::size_t>(key.n) * key.d;
    if (key.dtype == DType::kFloat32) {
      g_work.f32.resize(size);
      generate(key, g_work.f32.data());
    } else {
      g_work.f64.resize(size);
      generate(key, g_work.f64.data());
    }
  }
  return g_work;
}

emix::Engine& engine(Workspace& w, bool gpu) {
  std::unique_ptr<emix::Engine>& e = gpu ? w.gpu : w.cpu;
  if (!e) {
    emix::EngineOptions options;
    options.device = gpu ? emix::Device::kGpu : emix::Device::kCpu;
    e = gpu ? emix::make_gpu_engine(w.view(), nullptr, options)
            : emix::make_cpu_engine(w.view(), nullptr, options);
  }
  return *e;
}

// A valid K-component model whose means (probabilities) come from K data rows spread over the
// set: equal weights; full / tied: a banded covariance (diagonal 1 + 0.25 (k mod 3), 0.2 next to
// it: positive definite), diag: 0.5 to 1.5, spherical: 1 + 0.1 (k mod 5); Bernoulli: 0.25 or
// 0.75 by the row's bit; binomial: (x + 1) / (m + 2).
emix::Model make_model(Family family, Covariance covariance, int k, const Workspace& w) {
  const int d = w.key.d;
  emix::Model m;
  m.family = family;
  m.covariance = covariance;
  m.n_components = k;
  m.n_features = d;
  m.trials = family == Family::kBinomial ? kTrials : 1;
  m.weights.assign(k, 1.0 / k);
  const std::int64_t stride = std::max<std::int64_t>(1, w.key.n / k);
  for (int c = 0; c < k; ++c) {
    const std::int64_t row = (c * stride + c * 7919) % w.key.n;
    for (int j = 0; j < d; ++j) {
      const double v = w.at(row, j);
      if (family == Family::kGaussian) {
        m.means.push_back(v);
      } else if (family == Family::kBernoulli) {
        m.probabilities.push_back(v > 0.5 ? 0.75 : 0.25);
      } else {
        m.probabilities.push_back((v + 1.0) / (kTrials + 2.0));
      }
    }
  }
  if (family != Family::kGaussian) return m;
  m.covariances.resize(m.covariance_size());
  const auto banded = [d](double* a, int c) {
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        a[i * d + j] = i == j ? 1.0 + 0.25 * (c % 3) : (std::abs(i - j) == 1 ? 0.2 : 0.0);
      }
    }
  };
  std::uint64_t s = 99;
  switch (covariance) {
    case Covariance::kFull:
      for (int c = 0; c < k; ++c) banded(&m.covariances[static_cast<std::size_t>(c) * d * d], c);
      break;
    case Covariance::kTied:
      banded(m.covariances.data(), 0);
      break;
    case Covariance::kDiag:
      for (double& v : m.covariances) v = 0.5 + uniform(s);
      break;
    case Covariance::kSpherical:
      for (int c = 0; c < k; ++c) m.covariances[c] = 1.0 + 0.1 * (c % 5);
      break;
  }
  return m;
}

// ------------------------------------------------------------------------------------------
// The benchmarks

enum class Step { kEStep, kIteration, kMStep, kPrepare, kInit };

struct Spec {
  Step step = Step::kEStep;
  bool gpu = false;
  Family family = Family::kGaussian;
  Covariance covariance = Covariance::kFull;
  DType dtype = DType::kFloat64;
  std::int64_t n = 0;
  int d = 0;
  int k = 0;
  bool separated = false;
};

std::string model_name(Family family, Covariance covariance) {
  return family == Family::kGaussian ? std::string("gaussian-") + emix::to_string(covariance)
                                     : std::string(emix::to_string(family));
}

std::string spec_name(const Spec& s) {
  static const char* const steps[] = {"estep", "iteration", "mstep", "prepare", "init"};
  std::string name = steps[static_cast<int>(s.step)];
  const bool host = s.step == Step::kMStep || s.step == Step::kPrepare;
  name += host ? "/host/" : (s.gpu ? "/gpu/" : "/cpu/");
  name += model_name(s.family, s.covariance);
  if (s.separated) name += "/sep";
  if (!host) {
    name += s.dtype == DType::kFloat32 ? "/f32" : "/f64";
    name += "/N:" + std::to_string(s.n);
  }
  name += "/D:" + std::to_string(s.d) + "/K:" + std::to_string(s.k);
  return name;
}

// Rows / s, bytes / s, FLOP / s, the floors and time / floor, from the loop's own wall time.
void report(benchmark::State& state, const Spec& s, double seconds, std::size_t stats_doubles) {
  const double iters = static_cast<double>(state.iterations());
  if (iters <= 0) return;
  const double per_iter = seconds / iters;
  const double bytes = estep_bytes(s.n, s.d, s.dtype, stats_doubles);
  const double flops = estep_flops(s.family, s.covariance, static_cast<double>(s.n), s.d, s.k);
  state.SetItemsProcessed(state.iterations() * s.n);
  state.counters["bytes/s"] = benchmark::Counter(bytes * iters, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(flops * iters, benchmark::Counter::kIsRate);
  double floor_s = 0;
  if (s.gpu) {
    const double mem = bytes / g_rates.gpu_bw;
    const double flop =
        flops / (s.dtype == DType::kFloat32 ? g_rates.gpu_sgemm : g_rates.gpu_dgemm);
    state.counters["floor_mem_ms"] = mem * 1e3;
    state.counters["floor_flop_ms"] = flop * 1e3;
    floor_s = std::max(mem, flop);
  } else {
    floor_s = bytes / g_rates.host_read_bw;
    state.counters["floor_mem_ms"] = floor_s * 1e3;
  }
  state.counters["x_floor"] = per_iter / floor_s;
}

void run_estep(benchmark::State& state, const Spec& s) {
  Workspace& w = workspace({kind_of(s.family), s.dtype, s.n, s.d, s.separated});
  emix::Engine& e = engine(w, s.gpu);
  emix::PreparedModel prepared = emix::prepare(make_model(s.family, s.covariance, s.k, w));
  prepared.entropy = false;  // as fit() runs it: only model selection asks for the entropy
  std::vector<double> stats(prepared.layout.size());
  e.accumulate(prepared, stats.data());  // warm-up (a GPU engine sizes its buffers)
  const auto start = Clock::now();
  for (auto _ : state) {
    e.accumulate(prepared, stats.data());
    benchmark::DoNotOptimize(stats.data());
    benchmark::ClobberMemory();
  }
  report(state, s, seconds_since(start), stats.size());
}

void run_iteration(benchmark::State& state, const Spec& s) {
  Workspace& w = workspace({kind_of(s.family), s.dtype, s.n, s.d, s.separated});
  emix::Engine& e = engine(w, s.gpu);
  const emix::Model initial = make_model(s.family, s.covariance, s.k, w);
  emix::Model model = initial;
  const emix::MaximizeOptions mopt;
  std::vector<double> stats(emix::prepare(initial).layout.size());
  std::vector<int> empty;
  e.accumulate(emix::prepare(initial), stats.data());  // warm-up
  const auto start = Clock::now();
  for (auto _ : state) {
    emix::PreparedModel prepared;
    try {
      prepared = emix::prepare(model);
    } catch (const emix::NumericalError&) {  // a collapsed component: start over (rare)
      model = initial;
      prepared = emix::prepare(model);
    }
    prepared.entropy = false;  // as fit() runs it
    e.accumulate(prepared, stats.data());
    emix::Model next = emix::maximize(model, prepared, stats.data(), mopt, &empty);
    // The driver would re-seed empty components; the benchmark starts over instead.
    model = empty.empty() ? std::move(next) : initial;
    benchmark::DoNotOptimize(model.weights.data());
  }
  report(state, s, seconds_since(start), stats.size());
}

// M-step and prepare: statistics from the CPU engine on 20,000 rows, computed once per model
// shape (the M-step and prepare benchmarks of one shape, registered one after the other, share it).
struct HostCase {
  std::string name;
  emix::Model model;
  emix::PreparedModel prepared;
  std::vector<double> stats;
};

const HostCase& host_case(const Spec& s) {
  static HostCase cached;
  const std::string name =
      model_name(s.family, s.covariance) + "/" + std::to_string(s.d) + "/" + std::to_string(s.k);
  if (cached.name != name) {
    Workspace w;
    w.key = {kind_of(s.family), DType::kFloat64, 20000, s.d};
    w.f64.resize(static_cast<std::size_t>(w.key.n) * s.d);
    generate(w.key, w.f64.data());
    cached.model = make_model(s.family, s.covariance, s.k, w);
    cached.prepared = emix::prepare(cached.model);
    cached.stats.assign(cached.prepared.layout.size(), 0.0);
    emix::EngineOptions options;
    options.device = emix::Device::kCpu;
    emix::make_cpu_engine(w.view(), nullptr, options)
        ->accumulate(cached.prepared, cached.stats.data());
    cached.name = name;
  }
  return cached;
}

void run_mstep(benchmark::State& state, const Spec& s) {
  const HostCase& c = host_case(s);
  const emix::MaximizeOptions mopt;
  std::vector<int> empty;
  for (auto _ : state) {
    emix::Model next = emix::maximize(c.model, c.prepared, c.stats.data(), mopt, &empty);
    benchmark::DoNotOptimize(next.weights.data());
  }
  state.SetItemsProcessed(state.iterations() * s.k);  // components / s
}

void run_prepare(benchmark::State& state, const Spec& s) {
  const HostCase& c = host_case(s);
  for (auto _ : state) {
    emix::PreparedModel p = emix::prepare(c.model);
    benchmark::DoNotOptimize(p.log_norm.data());
  }
  state.SetItemsProcessed(state.iterations() * s.k);  // components / s
}

// fit()'s default initialisation (k-means++ seeding and 10 k-means steps on a sample of at most
// 131,072 rows, then the M-step from the labels) as FitReport::init_seconds times it, without
// the validation and first E-step that fit() adds; a new seed each time, so that the sample and
// seeding differ as between users' runs.
void run_init(benchmark::State& state, const Spec& s) {
  Workspace& w = workspace({kind_of(s.family), s.dtype, s.n, s.d, s.separated});
  emix::FitOptions o;
  o.family = s.family;
  o.covariance = s.covariance;
  o.n_components = s.k;
  o.max_iter = 0;
  o.engine.device = s.gpu ? emix::Device::kGpu : emix::Device::kCpu;
  std::uint64_t seed = 0;
  for (auto _ : state) {
    o.seed = seed++;
    const emix::FitReport r = emix::fit(w.view(), o);
    state.SetIterationTime(r.init_seconds);
  }
}

void run(benchmark::State& state, Spec s) {
  try {
    switch (s.step) {
      case Step::kEStep:
        run_estep(state, s);
        break;
      case Step::kIteration:
        run_iteration(state, s);
        break;
      case Step::kMStep:
        run_mstep(state, s);
        break;
      case Step::kPrepare:
        run_prepare(state, s);
        break;
      case Step::kInit:
        run_init(state, s);
        break;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// ------------------------------------------------------------------------------------------
// Registration

struct Limits {
  double cpu_max_flop = 3e11;
  double gpu_max_flop = 5e13;
  int not_fitting_host = 0, not_fitting_gpu = 0, over_cpu_budget = 0, over_gpu_budget = 0;
};
Limits g_limits;

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

// Registers s unless it would not fit memory or is over the work budget (then counts why).
void add(const Spec& s, double min_time) {
  if (s.step == Step::kEStep || s.step == Step::kIteration) {
    const double data = static_cast<double>(s.n) * s.d * emix::dtype_size(s.dtype);
    const double flops = estep_flops(s.family, s.covariance, static_cast<double>(s.n), s.d, s.k);
    if (data > 0.6 * g_rates.host_avail) {
      ++g_limits.not_fitting_host;
      return;
    }
    if (s.gpu && data + 1.5 * (1 << 30) > 0.9 * g_rates.gpu_free) {
      ++g_limits.not_fitting_gpu;
      return;
    }
    if (!s.gpu && flops > g_limits.cpu_max_flop) {
      ++g_limits.over_cpu_budget;
      return;
    }
    if (s.gpu && flops > g_limits.gpu_max_flop) {
      ++g_limits.over_gpu_budget;
      return;
    }
  }
  benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(spec_name(s).c_str(), run, s);
  if (s.step == Step::kInit) {
    b->UseManualTime();
  } else {
    b->UseRealTime();
  }
  b->Unit(s.step == Step::kMStep || s.step == Step::kPrepare ? benchmark::kMicrosecond
                                                             : benchmark::kMillisecond);
  if (min_time > 0) b->MinTime(min_time);
}

// A .npy of n x d values of `file_type` in TMPDIR (or /tmp), written on first use and removed
// at exit. Values from a mixture, as data files hold.
const std::string& npy_file(DType file_type, std::int64_t n, int d) {
  struct Files {
    std::map<std::string, std::string> paths;
    ~Files() {
      for (const auto& entry : paths) std::remove(entry.second.c_str());
    }
  };
  static Files files;
  const std::string name =
      std::string(emix::to_string(file_type)) + "-" + std::to_string(n) + "x" + std::to_string(d);
  auto found = files.paths.find(name);
  if (found != files.paths.end()) return found->second;
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                           "/emix_bench_read_" + std::to_string(getpid()) + "_" + name + ".npy";
  DataKey key;
  key.dtype = file_type;
  key.n = n;
  key.d = d;
  if (file_type == DType::kFloat32) {
    std::vector<float> x(static_cast<std::size_t>(n) * d);
    generate(key, x.data());
    emix::io::write_npy(path, x.data(), n, d);
  } else {
    std::vector<double> x(static_cast<std::size_t>(n) * d);
    generate(key, x.data());
    emix::io::write_npy(path, x.data(), n, d);
  }
  return files.paths.emplace(name, path).first->second;
}

void add_read(DType file_type, DType dtype, std::int64_t n, int d, double min_time) {
  const std::string name = std::string("read/npy/") +
                           (file_type == DType::kFloat32 ? "f32" : "f64") + "-to-" +
                           (dtype == DType::kFloat32 ? "f32" : "f64") + "/N:" + std::to_string(n) +
                           "/D:" + std::to_string(d);
  const double bytes =
      static_cast<double>(n) * d * static_cast<double>(emix::dtype_size(file_type));
  if (bytes * 2 > 0.6 * g_rates.host_avail) {
    ++g_limits.not_fitting_host;
    return;
  }
  benchmark::internal::Benchmark* b =
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
        const std::string& path = npy_file(file_type, n, d);
        emix::io::ReadOptions options;
        options.dtype = dtype;
        (void)emix::io::read_matrix(path, options);  // into the page cache
        for (auto _ : state) {
          emix::HostMatrix x = emix::io::read_matrix(path, options);
          benchmark::DoNotOptimize(x.data());
        }
        state.counters["bytes/s"] = benchmark::Counter(
            bytes * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
        state.counters["floor_mem_ms"] = bytes / g_rates.host_read_bw * 1e3;
      });
  b->Unit(benchmark::kMillisecond)->UseRealTime();
  if (min_time > 0) b->MinTime(min_time);
}

void add_reads(std::int64_t n, int d, double min_time) {
  for (const DType file_type : {DType::kFloat64, DType::kFloat32}) {
    for (const DType dtype : {DType::kFloat64, DType::kFloat32}) {
      add_read(file_type, dtype, n, d, min_time);
    }
  }
}

const Covariance kCovariances[] = {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical,
                                   Covariance::kTied};
const std::pair<Family, Covariance> kModels[] = {
    {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
    {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
    {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull}};

void register_all() {
  const std::int64_t kN[] = {10000, 100000, 1000000, 10000000};
  const std::int64_t kNReduced[] = {100000, 10000000};
  const int kD[] = {2, 16, 64};
  const int kK[] = {2, 16, 64};
  std::vector<bool> engines = {false};
  if (g_rates.gpu) engines.push_back(true);

  // Host steps first: they need no large data.
  for (const auto& [family, covariance] : kModels) {
    for (int d : kD) {
      for (int k : kK) {
        add({Step::kMStep, false, family, covariance, DType::kFloat64, 0, d, k}, 0);
        add({Step::kPrepare, false, family, covariance, DType::kFloat64, 0, d, k}, 0);
      }
    }
  }
  add_reads(10000000, 16, 0);
  // Grouped by data set (kind, dtype, N, D) so that each is generated once.
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (std::int64_t n : kN) {
      for (int d : kD) {
        for (bool gpu : engines) {
          const DType usual = gpu ? DType::kFloat32 : DType::kFloat64;
          for (Covariance cov : kCovariances) {
            const bool reduced = cov == Covariance::kSpherical || cov == Covariance::kTied;
            if (reduced && (dtype != usual || std::find(std::begin(kNReduced), std::end(kNReduced),
                                                        n) == std::end(kNReduced))) {
              continue;
            }
            for (int k : kK) {
              if (reduced && k != 16) continue;
              add({Step::kEStep, gpu, Family::kGaussian, cov, dtype, n, d, k}, 0);
              if (dtype == usual) {
                add({Step::kIteration, gpu, Family::kGaussian, cov, dtype, n, d, k}, 0);
              }
            }
          }
        }
      }
    }
  }
  // Initialisation (k-means++ and k-means on the sample, the M-step from its labels): the CPU,
  // on which every engine initialises.
  for (bool separated : {false, true}) {
    for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
      for (int k : {2, 8, 16, 64}) {
        add({Step::kInit, false, Family::kGaussian, cov, DType::kFloat64, 1000000, 16, k,
             separated},
            0);
      }
    }
  }
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (std::int64_t n : {std::int64_t{100000}, std::int64_t{1000000}}) {
      for (bool gpu : engines) {
        for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
          add({Step::kEStep, gpu, Family::kGaussian, cov, dtype, n, 16, 16, true}, 0);
        }
      }
    }
  }
  // Every K from 1 to 17 (2 and 16 are in the grid above), on overlapping and on well-separated
  // data: kernels work in blocks of components (eight, or a vector's lanes), and a K that does
  // not fill its last block must not cost as much as a K that does (K = 2 full once cost two
  // thirds of K = 16).
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (bool gpu : engines) {
      for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
        for (const bool separated : {false, true}) {
          for (int k = 1; k <= 17; ++k) {
            if (k == 16 || (k == 2 && !separated)) continue;
            add({Step::kEStep, gpu, Family::kGaussian, cov, dtype, 1000000, 16, k, separated}, 0);
          }
        }
      }
    }
  }
  for (Family family : {Family::kBernoulli, Family::kBinomial}) {
    for (bool gpu : engines) {
      const DType dtype = gpu ? DType::kFloat32 : DType::kFloat64;
      for (std::int64_t n : kNReduced) {
        for (int d : kD) {
          add({Step::kEStep, gpu, family, Covariance::kFull, dtype, n, d, 16}, 0);
          add({Step::kIteration, gpu, family, Covariance::kFull, dtype, n, d, 16}, 0);
        }
      }
    }
  }
}

// A representative subset for a quick look (about 15 s on 2 cores): each kind of step and every
// model at D = K = 16, full and diag also on well-separated data; the CPU at N = 1e5 (and 1e6 for
// full and diag, the first cases), the GPU at N = 1e6 plus the two large cases
// (full N = 1e7, D = K = 32; diag N = 1e7, D = K = 8, a tenth of the N = 1e8).
void register_short() {
  const double t = 0.2;
  for (const auto& [family, covariance] : kModels) {
    add({Step::kMStep, false, family, covariance, DType::kFloat64, 0, 16, 16}, t);
  }
  add({Step::kPrepare, false, Family::kGaussian, Covariance::kFull, DType::kFloat64, 0, 16, 16}, t);
  add_reads(1000000, 16, t);
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    for (Covariance cov : kCovariances) {
      add({Step::kEStep, false, Family::kGaussian, cov, dtype, 100000, 16, 16}, t);
    }
  }
  add({Step::kIteration, false, Family::kGaussian, Covariance::kFull, DType::kFloat64, 100000, 16,
       16},
      t);
  for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
    add({Step::kEStep, false, Family::kGaussian, cov, DType::kFloat64, 1000000, 16, 16}, t);
  }
  // Initialisation, overlapping and well-separated data (the sample's k-means runs its ten steps
  // on the first, and stops early on the second).
  for (bool separated : {false, true}) {
    add({Step::kInit, false, Family::kGaussian, Covariance::kFull, DType::kFloat64, 1000000, 16, 16,
         separated},
        t);
  }
  // K that leave the kernels' blocks part-filled: fewer than half a vector, and one past eight.
  for (int k : {3, 9}) {
    add({Step::kEStep, false, Family::kGaussian, Covariance::kFull, DType::kFloat64, 100000, 16, k},
        t);
  }
  for (Family family : {Family::kBernoulli, Family::kBinomial}) {
    add({Step::kEStep, false, family, Covariance::kFull, DType::kFloat64, 100000, 16, 16}, t);
  }
  // Well-separated data beside the overlapping cases above (same shape, N, D, K).
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
      add({Step::kEStep, false, Family::kGaussian, cov, dtype, 100000, 16, 16, true}, t);
    }
  }
  if (!g_rates.gpu) return;
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    for (Covariance cov : {Covariance::kFull, Covariance::kDiag}) {
      add({Step::kEStep, true, Family::kGaussian, cov, dtype, 1000000, 16, 16}, t);
    }
  }
  add({Step::kIteration, true, Family::kGaussian, Covariance::kFull, DType::kFloat32, 1000000, 16,
       16},
      t);
  add({Step::kEStep, true, Family::kBernoulli, Covariance::kFull, DType::kFloat32, 1000000, 16, 16},
      t);
  add({Step::kEStep, true, Family::kGaussian, Covariance::kFull, DType::kFloat32, 10000000, 32, 32},
      t);
  add({Step::kEStep, true, Family::kGaussian, Covariance::kDiag, DType::kFloat32, 10000000, 8, 8},
      t);
}

std::string format(const char* fmt, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, v);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  // --short (or EMIX_BENCH_SHORT=1) is ours; remove it before Google Benchmark parses the rest.
  bool short_mode = std::getenv("EMIX_BENCH_SHORT") != nullptr &&
                    std::strcmp(std::getenv("EMIX_BENCH_SHORT"), "0") != 0 &&
                    *std::getenv("EMIX_BENCH_SHORT") != '\0';
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) {
      short_mode = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  g_limits.cpu_max_flop = env_number("EMIX_BENCH_CPU_MAX_FLOP", g_limits.cpu_max_flop);
  g_limits.gpu_max_flop = env_number("EMIX_BENCH_GPU_MAX_FLOP", g_limits.gpu_max_flop);
  measure_rates(short_mode);

  std::fprintf(stderr, "emix_bench%s: %d OpenMP threads; host memory available %.1f GiB\n",
               short_mode ? " --short" : "", omp_get_max_threads(), g_rates.host_avail / (1 << 30));
  std::fprintf(stderr, "  CPU floor: memory read bandwidth %.1f GB/s (OpenMP sum over %d MiB)\n",
               g_rates.host_read_bw / 1e9, short_mode ? 256 : 512);
  benchmark::AddCustomContext("cpu_read_GBps", format("%.2f", g_rates.host_read_bw / 1e9));
  if (g_rates.gpu) {
    std::fprintf(stderr,
                 "  GPU %s, %.1f GiB free: copy bandwidth %.0f GB/s (2 x bytes / time of a "
                 "device-to-device cudaMemcpy); SGEMM %.1f TFLOP/s, DGEMM %.1f TFLOP/s (cuBLAS)\n",
                 g_rates.gpu_name.c_str(), g_rates.gpu_free / (1 << 30), g_rates.gpu_bw / 1e9,
                 g_rates.gpu_sgemm / 1e12, g_rates.gpu_dgemm / 1e12);
    benchmark::AddCustomContext("gpu", g_rates.gpu_name);
    benchmark::AddCustomContext("gpu_copy_GBps", format("%.1f", g_rates.gpu_bw / 1e9));
    benchmark::AddCustomContext("gpu_sgemm_TFLOPs", format("%.2f", g_rates.gpu_sgemm / 1e12));
    benchmark::AddCustomContext("gpu_dgemm_TFLOPs", format("%.2f", g_rates.gpu_dgemm / 1e12));
  } else {
    std::fprintf(stderr, "  GPU benchmarks not registered: %s\n", g_rates.gpu_skip_reason.c_str());
    benchmark::AddCustomContext("gpu", "none: " + g_rates.gpu_skip_reason);
  }

  if (short_mode) {
    register_short();
  } else {
    register_all();
  }
  if (g_limits.not_fitting_host + g_limits.not_fitting_gpu + g_limits.over_cpu_budget +
          g_limits.over_gpu_budget >
      0) {
    std::fprintf(stderr,
                 "  not registered: %d (data over 60%% of available host memory), %d (over GPU "
                 "memory), %d (CPU over EMIX_BENCH_CPU_MAX_FLOP=%.3g per iteration), %d (GPU "
                 "over EMIX_BENCH_GPU_MAX_FLOP=%.3g)\n",
                 g_limits.not_fitting_host, g_limits.not_fitting_gpu, g_limits.over_cpu_budget,
                 g_limits.cpu_max_flop, g_limits.over_gpu_budget, g_limits.gpu_max_flop);
  }
  std::fflush(stderr);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
