// Times the GPU engine's E-step with its statistics (Engine::accumulate, one EM iteration's
// device work) on synthetic data, and prints seconds per iteration, the rate at which X is read,
// the arithmetic rate, and the memory floor (X's bytes over the measured copy bandwidth, reads
// plus writes). A second
// table times full covariance with each scatter method (batched GEMM, tiled, fused) per shape.
//
// Plain main(), no Google Benchmark (the GPU machine may not have it). accumulate() returns the
// statistics on the host, so it is synchronous: wall-clock time around it is the iteration's
// time. Each case is validated against the CPU engine on its first rows before it is timed.
//
//   gpu_timing [--quick]     (--quick: smaller sizes, for a smoke test)
#include <cuda_runtime_api.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_random.hpp"
#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "emix/emix.hpp"
#include "kernels/gpu_engine.hpp"

namespace {

using Clock = std::chrono::steady_clock;

#define CHECK_CUDA(expr)                                                         \
  do {                                                                           \
    const cudaError_t status_ = (expr);                                          \
    if (status_ != cudaSuccess) {                                                \
      std::fprintf(stderr, "%s failed: %s\n", #expr, cudaGetErrorName(status_)); \
      std::exit(2);                                                              \
    }                                                                            \
  } while (0)

struct Case {
  const char* label;
  std::int64_t n;
  int d;
  int k;
  emix::Covariance covariance;
  emix::DType dtype;
  bool stream;  // host data streamed through the device every iteration
};

using emix::bench::normal;
using emix::bench::splitmix;
using emix::bench::uniform;

// K well-separated components: means uniform in [-4, 4]^D, unit-variance-ish covariances.
emix::Model make_model(const Case& c) {
  emix::Model m;
  m.covariance = c.covariance;
  m.n_components = c.k;
  m.n_features = c.d;
  m.weights.assign(c.k, 1.0 / c.k);
  std::uint64_t s = 12345;
  for (int i = 0; i < c.k * c.d; ++i) m.means.push_back(-4.0 + 8.0 * uniform(s));
  m.covariances.resize(m.covariance_size());
  if (c.covariance == emix::Covariance::kFull) {
    for (int k = 0; k < c.k; ++k) {
      for (int i = 0; i < c.d; ++i) {
        for (int j = 0; j < c.d; ++j) {
          m.covariances[(static_cast<std::size_t>(k) * c.d + i) * c.d + j] =
              i == j ? 1.0 + 0.1 * k / c.k : (std::abs(i - j) == 1 ? 0.2 : 0.0);
        }
      }
    }
  } else {
    for (double& v : m.covariances) v = 0.5 + uniform(s);
  }
  return m;
}

// Rows drawn around the component means (row n from component n % K), in parallel and
// independent of the thread count.
template <typename T>
std::vector<T> make_data(const Case& c, const emix::Model& m) {
  std::vector<T> x(static_cast<std::size_t>(c.n) * c.d);
#pragma omp parallel for schedule(static)
  for (std::int64_t n = 0; n < c.n; ++n) {
    std::uint64_t s = splitmix(static_cast<std::uint64_t>(n) * 7919 + 17);
    const int k = static_cast<int>(n % c.k);
    for (int j = 0; j < c.d; ++j) {
      x[static_cast<std::size_t>(n) * c.d + j] =
          static_cast<T>(m.means[static_cast<std::size_t>(k) * c.d + j] + 0.7 * normal(s));
    }
  }
  return x;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Device-to-device copy bandwidth (read + write bytes per second): the memory floor's rate.
double copy_bandwidth() {
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMemset(a, 1, bytes));
  CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    CHECK_CUDA(cudaDeviceSynchronize());
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaFree(b));
  return 2.0 * static_cast<double>(bytes) / median(t);
}

// Largest |gpu - cpu| over the statistics, relative to the largest |cpu|.
template <typename T>
double validate(const Case& c, const std::vector<T>& x, const emix::PreparedModel& p) {
  const std::int64_t rows = std::min<std::int64_t>(c.n, 100000);
  const std::vector<double> xd(x.begin(), x.begin() + rows * c.d);
  emix::EngineOptions cpu_o;
  cpu_o.device = emix::Device::kCpu;
  auto cpu = emix::make_cpu_engine(emix::DataView::host(xd.data(), rows, c.d), nullptr, cpu_o);
  emix::EngineOptions gpu_o;
  gpu_o.device = emix::Device::kGpu;
  auto gpu = emix::make_gpu_engine(emix::DataView::host(x.data(), rows, c.d), nullptr, gpu_o);
  std::vector<double> a(p.layout.size()), b(p.layout.size());
  cpu->accumulate(p, a.data());
  gpu->accumulate(p, b.data());
  double scale = 0, worst = 0;
  for (double v : a) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst / scale;
}

// Times accumulate() on x with the current scatter method and prints one row; `method` is
// printed after the data column when not null (the scatter table).
template <typename T>
void time_case(const Case& c, const std::vector<T>& x, const emix::PreparedModel& p,
               double bandwidth, double gen_s, const char* method) {
  const double check = validate(c, x, p);

  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  if (c.stream) o.device_memory_limit = std::int64_t{1} << 30;  // data beyond 1 GiB stream
  const auto up_start = Clock::now();
  auto engine = emix::make_gpu_engine(emix::DataView::host(x.data(), c.n, c.d), nullptr, o);
  std::vector<double> stats(p.layout.size());
  engine->accumulate(p, stats.data());  // warm-up: sizes the buffers
  const double setup_s = std::chrono::duration<double>(Clock::now() - up_start).count();
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    engine->accumulate(p, stats.data());
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  const double t = median(times);
  const double x_bytes = static_cast<double>(c.n) * c.d * sizeof(T);
  const double n = static_cast<double>(c.n), k = c.k, d = c.d;
  // full: the log-density GEMM and the scatter GEMM, 2 N K D^2 each; diag: about 8 N K D.
  const double flops =
      c.covariance == emix::Covariance::kFull ? 4.0 * n * k * d * d : 8.0 * n * k * d;
  // X read once at the memory's full rate (a read-only pass can use all of it), as emix_bench
  // counts it; before 2026-11-27 this program used half the rate, a floor twice as lenient.
  const double floor_s = x_bytes / bandwidth;
  std::printf("%-22s %11lld %4d %4d %-5s %-8s %-8s ", c.label, static_cast<long long>(c.n), c.d,
              c.k, emix::to_string(c.covariance), emix::to_string(c.dtype),
              c.stream ? "streamed" : "resident");
  if (method != nullptr) std::printf("%-6s ", method);
  std::printf("%10.4f %9.1f %9.1f %9.3f %8.1f %9.1e  (gen %.1fs, setup %.1fs)\n", t,
              x_bytes / t / 1e9, flops / t / 1e9, floor_s * 1e3, t / floor_s, check, gen_s,
              setup_s);
  std::fflush(stdout);
}

template <typename T>
std::vector<T> generate(const Case& c, const emix::Model& m, double* gen_s) {
  const auto gen_start = Clock::now();
  std::vector<T> x = make_data<T>(c, m);
  *gen_s = std::chrono::duration<double>(Clock::now() - gen_start).count();
  return x;
}

template <typename T>
void run_case(const Case& c, double bandwidth) {
  const emix::Model m = make_model(c);
  const emix::PreparedModel p = emix::prepare(m);
  double gen_s = 0;
  const std::vector<T> x = generate<T>(c, m, &gen_s);
  time_case(c, x, p, bandwidth, gen_s, nullptr);
}

// Full / tied covariance: the same data timed with each scatter method (emix::gpu::ScatterMethod:
// batched GEMM, tiled kernel, and the single-pass fused kernel where the shape fits it), one row
// per method, so that the fastest per shape can be read off one run.
template <typename T>
void run_scatter_case(const Case& c, double bandwidth) {
  const emix::Model m = make_model(c);
  const emix::PreparedModel p = emix::prepare(m);
  double gen_s = 0;
  const std::vector<T> x = generate<T>(c, m, &gen_s);
  const std::pair<emix::gpu::ScatterMethod, const char*> methods[] = {
      {emix::gpu::ScatterMethod::kBatchedGemm, "gemm"},
      {emix::gpu::ScatterMethod::kTiled, "tiled"},
      {emix::gpu::ScatterMethod::kFused, "fused"}};
  for (const auto& [method, name] : methods) {
    // The fused kernel takes only small K x D^2; elsewhere kFused would time the default again.
    if (method == emix::gpu::ScatterMethod::kFused && !emix::gpu::fused_full_fits(c.d, c.k)) {
      continue;
    }
    emix::gpu::set_scatter_method(method);
    time_case(c, x, p, bandwidth, gen_s, name);
  }
  emix::gpu::set_scatter_method(emix::gpu::ScatterMethod::kAuto);
}

void print_header(bool with_method) {
  std::printf("%-22s %11s %4s %4s %-5s %-8s %-8s ", "case", "N", "D", "K", "cov", "dtype", "data");
  if (with_method) std::printf("%-6s ", "method");
  std::printf("%10s %9s %9s %9s %8s %9s\n", "s/iter", "GB/s(X)", "GFLOP/s", "floor_ms", "x_floor",
              "check");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!emix::gpu_available()) {
    std::printf("no CUDA device answers on this machine\n");
    return 1;
  }
  int device = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  cudaDeviceProp props{};
  CHECK_CUDA(cudaGetDeviceProperties(&props, device));
  std::size_t free_bytes = 0, total_bytes = 0;
  CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  const double bandwidth = copy_bandwidth();
  std::printf("emix gpu_timing: %s, %.1f GiB, %d threads on the host, %s\n", props.name,
              static_cast<double>(total_bytes) / (1 << 30), omp_get_max_threads(), date);
  std::printf("device-to-device copy: %.0f GB/s (read + write); floor = X bytes at that rate\n",
              bandwidth / 1e9);
  print_header(false);

  const std::int64_t scale = quick ? 10 : 1;
  // Cap the largest case by device memory: the data plus ~1 GiB of chunk buffers.
  const std::int64_t max_rows_d8 = static_cast<std::int64_t>(
      std::max<double>(1e6, (static_cast<double>(free_bytes) - (3.0 * (1 << 30))) / (8 * 4)));
  using emix::Covariance;
  using emix::DType;
  const Case cases[] = {
      {"full-1e6-16x16-f32", 1000000 / scale, 16, 16, Covariance::kFull, DType::kFloat32, false},
      {"full-1e6-16x16-f64", 1000000 / scale, 16, 16, Covariance::kFull, DType::kFloat64, false},
      {"full-1e7-32x32-f32", 10000000 / scale, 32, 32, Covariance::kFull, DType::kFloat32, false},
      {"diag-1e8-8x8-f32", std::min<std::int64_t>(100000000 / scale, max_rows_d8), 8, 8,
       Covariance::kDiag, DType::kFloat32, false},
      {"diag-1e8-8x8-f32-strm", std::min<std::int64_t>(100000000 / scale, max_rows_d8), 8, 8,
       Covariance::kDiag, DType::kFloat32, true},
  };
  for (const Case& c : cases) {
    if (c.dtype == DType::kFloat32) {
      run_case<float>(c, bandwidth);
    } else {
      run_case<double>(c, bandwidth);
    }
  }

  // Full covariance scatter matrices: batched GEMM, tiled kernel, fused kernel, float32.
  std::printf(
      "\nscatter method, full covariance (the automatic choice today: %s)\n",
      emix::gpu::scatter_method_for(16, 16) == emix::gpu::ScatterMethod::kTiled ? "tiled" : "gemm");
  print_header(true);
  const Case scatter_cases[] = {
      {"scatter-1e6-16x16-f32", 1000000 / scale, 16, 16, Covariance::kFull, DType::kFloat32, false},
      {"scatter-1e7-32x32-f32", 10000000 / scale, 32, 32, Covariance::kFull, DType::kFloat32,
       false},
      {"scatter-1e6-8x4-f32", 1000000 / scale, 8, 4, Covariance::kFull, DType::kFloat32, false},
      {"scatter-1e6-64x8-f32", 1000000 / scale, 64, 8, Covariance::kFull, DType::kFloat32, false},
  };
  for (const Case& c : scatter_cases) run_scatter_case<float>(c, bandwidth);
  std::printf("check: max |gpu - cpu| / max |cpu| over the statistics of the first 1e5 rows\n");
  return 0;
}
