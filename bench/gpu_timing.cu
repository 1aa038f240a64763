// Times the GPU engine against the hardware's floor: one E-step with its statistics
// (Engine::accumulate, synchronous: wall time around it is the iteration's device work plus the
// small parameter upload and statistics copy-back) for the issue-12 targets, every family, both
// element types, the single-pass kernel against the general path and with its softmax fast path,
// data streamed from pinned and from pageable host memory, and a 10^9-row fit. Prints the
// ceilings it measured (device copy, pinned host-to-device copy, cuBLAS SGEMM / DGEMM), then one
// row per case: seconds per iteration (median of 5 after a warm-up), X's read rate, the useful
// FLOP rate, the floor and the ratio.
// Each case is first checked against the CPU engine on its first rows.
//
// Data are made on the device by a counter-based generator (the same rows whatever the launch),
// so that the large cases cost no host time; streamed cases copy them to host memory.
//
//   gpu_timing [--quick] [--ncu] [--csv FILE]
//     --quick  sizes / 10 (a smoke test)
//     --ncu    runs only the main single-pass cases (and diag on the register kernel), one
//              warm-up and one timed call each, for
//              `ncu --kernel-name regex:'fused_estep_kernel|row_estep_kernel'` (scripts/gpu-check)
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "emix/emix.hpp"
#include "kernels/fused_plan.hpp"
#include "kernels/gpu_engine.hpp"
#include "tests/summed_tied_scatter.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using emix::Covariance;
using emix::DType;
using emix::Family;

#define CHECK_CUDA(expr)                                                         \
  do {                                                                           \
    const cudaError_t status_ = (expr);                                          \
    if (status_ != cudaSuccess) {                                                \
      std::fprintf(stderr, "%s failed: %s\n", #expr, cudaGetErrorName(status_)); \
      std::exit(2);                                                              \
    }                                                                            \
  } while (0)

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- data ----

__host__ __device__ inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

__device__ inline double uniform01(std::uint64_t& s) {
  s = splitmix(s);
  return (static_cast<double>(s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Row n comes from component n % K: Gaussian x = mean + 0.7 z (z standard normal, per feature);
// Bernoulli / binomial: successes out of `trials` with the component's probabilities.
template <typename T>
__global__ void generate_kernel(T* x, std::int64_t n, int d, int k, const double* centre,
                                int family, int trials) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; row < n;
       row += stride) {
    std::uint64_t s = splitmix(static_cast<std::uint64_t>(row) * 7919 + 17);
    const int c = static_cast<int>(row % k);
    for (int j = 0; j < d; ++j) {
      const double mu = centre[static_cast<std::int64_t>(c) * d + j];
      double v;
      if (family == 0) {
        const double u1 = uniform01(s), u2 = uniform01(s);
        v = mu + 0.7 * sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
      } else {
        int successes = 0;
        for (int t = 0; t < trials; ++t) successes += uniform01(s) < mu ? 1 : 0;
        v = successes;
      }
      x[row * d + j] = static_cast<T>(v);
    }
  }
}

struct Case {
  std::string label;
  std::int64_t n;
  int d;
  int k;
  Family family;
  Covariance covariance;
  DType dtype;
  enum class Data { kDevice, kPinned, kPageable } data = Data::kDevice;
  emix::gpu::GpuPath path = emix::gpu::GpuPath::kAuto;
  int trials = 1;
  int max_tile_rows = 0;       // the single-pass kernel's tile cap (0: its own choice)
  bool fast_softmax = false;   // GpuSettings::fast_softmax
  bool block_combine = false;  // GpuSettings::block_combine
  bool lean_double = false;    // GpuSettings::lean_double
  bool row_registers = false;  // GpuSettings::row_registers
  // Gaussian means uniform in [-0.5, 0.5]^D instead of [-4, 4]^D: components that overlap, so
  // that every row's responsibilities spread over them (no negligible terms).
  bool overlapping = false;
};

// Well-separated components (means uniform in [-4, 4]^D, unit-ish covariances; with
// c.overlapping in [-0.5, 0.5]^D) or probabilities in [0.1, 0.9].
emix::Model make_model(const Case& c) {
  emix::Model m;
  m.family = c.family;
  m.covariance = c.covariance;
  m.n_components = c.k;
  m.n_features = c.d;
  m.trials = c.family == Family::kBinomial ? c.trials : 1;
  m.weights.assign(c.k, 1.0 / c.k);
  std::uint64_t s = 12345;
  const auto u = [&s] {
    s = splitmix(s);
    return (static_cast<double>(s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  };
  if (c.family != Family::kGaussian) {
    for (int i = 0; i < c.k * c.d; ++i) m.probabilities.push_back(0.1 + 0.8 * u());
    return m;
  }
  const double spread = c.overlapping ? 0.5 : 4.0;
  for (int i = 0; i < c.k * c.d; ++i) m.means.push_back(spread * (2.0 * u() - 1.0));
  m.covariances.resize(m.covariance_size());
  const auto banded = [&](double* out, double scale) {
    for (int i = 0; i < c.d; ++i) {
      for (int j = 0; j < c.d; ++j) {
        out[i * c.d + j] = i == j ? scale : (std::abs(i - j) == 1 ? 0.2 : 0.0);
      }
    }
  };
  switch (c.covariance) {
    case Covariance::kFull:
      for (int k = 0; k < c.k; ++k) {
        banded(&m.covariances[static_cast<std::size_t>(k) * c.d * c.d], 1.0 + 0.1 * k / c.k);
      }
      break;
    case Covariance::kTied:
      banded(m.covariances.data(), 1.0);
      break;
    case Covariance::kDiag:
    case Covariance::kSpherical:
      for (double& v : m.covariances) v = 0.5 + u();
      break;
  }
  return m;
}

// The data on the device (the caller frees), generated from the model's means or probabilities.
void* make_device_data(const Case& c, const emix::Model& m) {
  const std::vector<double>& centre = c.family == Family::kGaussian ? m.means : m.probabilities;
  double* d_centre = nullptr;
  CHECK_CUDA(cudaMalloc(&d_centre, centre.size() * 8));
  CHECK_CUDA(cudaMemcpy(d_centre, centre.data(), centre.size() * 8, cudaMemcpyHostToDevice));
  const std::size_t bytes = static_cast<std::size_t>(c.n) * c.d * emix::dtype_size(c.dtype);
  void* x = nullptr;
  CHECK_CUDA(cudaMalloc(&x, bytes));
  const int family = c.family == Family::kGaussian ? 0 : 1;
  if (c.dtype == DType::kFloat32) {
    generate_kernel<float>
        <<<4096, 256>>>(static_cast<float*>(x), c.n, c.d, c.k, d_centre, family, m.trials);
  } else {
    generate_kernel<double>
        <<<4096, 256>>>(static_cast<double*>(x), c.n, c.d, c.k, d_centre, family, m.trials);
  }
  CHECK_CUDA(cudaGetLastError());
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaFree(d_centre));
  return x;
}

// ---- ceilings ----

struct Ceilings {
  double copy = 0;        // device-to-device, bytes read + written per second
  double h2d_pinned = 0;  // host (pinned) to device, bytes per second
  double sgemm = 0;       // FLOP/s, cuBLAS SGEMM without TF32 (the FP32 SIMT rate)
  double dgemm = 0;       // FLOP/s, cuBLAS DGEMM
};

template <typename Fn>
double best_of(int runs, Fn&& fn) {
  fn();
  CHECK_CUDA(cudaDeviceSynchronize());
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const auto t = Clock::now();
    fn();
    CHECK_CUDA(cudaDeviceSynchronize());
    best = std::min(best, seconds_since(t));
  }
  return best;
}

Ceilings measure_ceilings() {
  Ceilings c;
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr, *h = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  CHECK_CUDA(cudaMallocHost(&h, bytes));
  CHECK_CUDA(cudaMemset(a, 1, bytes));
  std::memset(h, 1, bytes);
  c.copy =
      2.0 * bytes / best_of(5, [&] { CHECK_CUDA(cudaMemcpy(b, a, bytes, cudaMemcpyDefault)); });
  c.h2d_pinned =
      bytes / best_of(3, [&] { CHECK_CUDA(cudaMemcpy(a, h, bytes, cudaMemcpyHostToDevice)); });
  CHECK_CUDA(cudaFreeHost(h));
  cublasHandle_t handle;
  if (cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS) {
    const int n = 8192;
    const float one = 1, zero = 0;
    const double oned = 1, zerod = 0;
    c.sgemm = 2.0 * n * n * static_cast<double>(n) / best_of(3, [&] {
                cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, static_cast<float*>(a),
                            n, static_cast<float*>(a), n, &zero, static_cast<float*>(b), n);
              });
    const int m = 4096;
    c.dgemm =
        2.0 * m * m * static_cast<double>(m) / best_of(3, [&] {
          cublasDgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &oned, static_cast<double*>(a), m,
                      static_cast<double*>(a), m, &zerod, static_cast<double*>(b), m);
        });
    cublasDestroy(handle);
  }
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaFree(b));
  return c;
}

// Useful floating-point operations of one E-step with its statistics, per row and component:
//   full / tied: (x - mu) U (D (D + 1) / 2 multiply-adds), |y|^2 (D), the scatter's upper
//                triangle (D (D + 1) / 2 multiply-adds), S (D): 2 D (D + 1) + 4 D flops
//   diag / spherical: ((x - mu) b)^2 (3 D), S and Q (4 D): 7 D
//   Bernoulli / binomial: x . logit (2 D), S (2 D): 4 D
double estep_flops(const Case& c) {
  const double n = static_cast<double>(c.n), k = c.k, d = c.d;
  if (c.family != Family::kGaussian) return n * k * 4 * d;
  if (c.covariance == Covariance::kFull || c.covariance == Covariance::kTied) {
    return n * k * (2 * d * (d + 1) + 4 * d);
  }
  return n * k * 7 * d;
}

// ---- one case ----

struct Row {
  double seconds = 0;
  double check = 0;
  double setup = 0;
  emix::gpu::EngineInfo info;
};

// Whether the case's single-pass plan shares items among row groups (where
// GpuSettings::block_combine changes the kernel's work). Row groups do not depend on the shared
// memory limit (227 KiB on an H100 / H200) unless a tile would shrink below 32 rows.
std::optional<emix::gpu::FusedPlan> plan_of(const Case& c) {
  return emix::gpu::choose_fused_plan(c.family, c.covariance, c.k, c.d,
                                      static_cast<int>(emix::dtype_size(c.dtype)), 227 * 1024);
}
bool has_row_groups(const Case& c) {
  const auto plan = plan_of(c);
  return plan && plan->row_groups > 1;
}
// Whether GpuSettings::row_registers gives the case the register kernel.
bool takes_register_kernel(const Case& c) {
  const auto plan = plan_of(c);
  return plan && emix::gpu::row_kernel_fits(*plan);
}

std::unique_ptr<emix::Engine> engine_for(const Case& c, const emix::DataView& view) {
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  // Streamed cases: a budget that holds the working buffers but not the data.
  if (c.data != Case::Data::kDevice) o.device_memory_limit = std::int64_t{1} << 30;
  emix::gpu::GpuSettings settings;
  settings.path = c.path;
  settings.max_tile_rows = c.max_tile_rows;
  settings.fast_softmax = c.fast_softmax;
  settings.block_combine = c.block_combine;
  settings.lean_double = c.lean_double;
  settings.row_registers = c.row_registers;
  return emix::gpu::create_engine(view, nullptr, o, settings);
}

// Largest |gpu - cpu| over the statistics of the first rows, relative to the largest |cpu|.
double validate(const Case& c, const void* d_x, const emix::PreparedModel& p) {
  const std::int64_t rows = std::min<std::int64_t>(c.n, 100000);
  const std::size_t elem = emix::dtype_size(c.dtype);
  std::vector<unsigned char> host(static_cast<std::size_t>(rows) * c.d * elem);
  CHECK_CUDA(cudaMemcpy(host.data(), d_x, host.size(), cudaMemcpyDeviceToHost));
  std::vector<double> xd(static_cast<std::size_t>(rows) * c.d);
  for (std::size_t i = 0; i < xd.size(); ++i) {
    xd[i] = c.dtype == DType::kFloat32 ? reinterpret_cast<const float*>(host.data())[i]
                                       : reinterpret_cast<const double*>(host.data())[i];
  }
  emix::EngineOptions cpu_o;
  cpu_o.device = emix::Device::kCpu;
  auto cpu = emix::make_cpu_engine(emix::DataView::host(xd.data(), rows, c.d), nullptr, cpu_o);
  const emix::DataView view =
      c.dtype == DType::kFloat32
          ? emix::DataView::device(static_cast<const float*>(d_x), rows, c.d)
          : emix::DataView::device(static_cast<const double*>(d_x), rows, c.d);
  Case small = c;
  small.data = Case::Data::kDevice;
  auto gpu = engine_for(small, view);
  std::vector<double> a(p.layout.size()), b(p.layout.size());
  cpu->accumulate(p, a.data());
  gpu->accumulate(p, b.data());
  // Only sum_k Q_k is defined for tied (src/core/statistics.hpp): the engines split it among
  // the components differently, so both are compared with the sum in Q_0.
  const bool tied = c.covariance == Covariance::kTied;
  for (std::vector<double>* v : {&a, &b}) {
    *v = emix::testing::with_summed_tied_scatter(std::move(*v), tied, p.layout.k, p.layout.q(),
                                                 p.layout.q_per_component());
  }
  double scale = 0, worst = 0;
  for (double v : a) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(a[i] - b[i]);
    worst = std::isnan(diff) ? INFINITY : std::max(worst, diff);
  }
  return worst / scale;
}

Row run(const Case& c, int timed) {
  const emix::Model m = make_model(c);
  const emix::PreparedModel p = emix::prepare(m);
  void* d_x = make_device_data(c, m);
  Row row;
  row.check = validate(c, d_x, p);
  const std::size_t bytes = static_cast<std::size_t>(c.n) * c.d * emix::dtype_size(c.dtype);
  void* host = nullptr;
  std::unique_ptr<unsigned char[]> pageable;
  const void* data = d_x;
  if (c.data == Case::Data::kPinned) {
    CHECK_CUDA(cudaMallocHost(&host, bytes));
    CHECK_CUDA(cudaMemcpy(host, d_x, bytes, cudaMemcpyDeviceToHost));
    data = host;
  } else if (c.data == Case::Data::kPageable) {
    pageable.reset(new unsigned char[bytes]);
    CHECK_CUDA(cudaMemcpy(pageable.get(), d_x, bytes, cudaMemcpyDeviceToHost));
    data = pageable.get();
  }
  if (c.data != Case::Data::kDevice) {
    CHECK_CUDA(cudaFree(d_x));
    d_x = nullptr;
  }
  emix::DataView view = c.dtype == DType::kFloat32
                            ? emix::DataView::host(static_cast<const float*>(data), c.n, c.d)
                            : emix::DataView::host(static_cast<const double*>(data), c.n, c.d);
  if (c.data == Case::Data::kDevice) view.space = emix::MemorySpace::kDevice;
  {
    const auto start = Clock::now();
    auto engine = engine_for(c, view);
    std::vector<double> stats(p.layout.size());
    engine->accumulate(p, stats.data());  // warm-up: sizes the buffers
    row.setup = seconds_since(start);
    std::vector<double> times;
    for (int i = 0; i < timed; ++i) {
      const auto t = Clock::now();
      engine->accumulate(p, stats.data());
      times.push_back(seconds_since(t));
    }
    row.seconds = median(times);
    row.info = emix::gpu::engine_info(*engine);
  }
  if (d_x != nullptr) CHECK_CUDA(cudaFree(d_x));
  if (host != nullptr) CHECK_CUDA(cudaFreeHost(host));
  return row;
}

const char* data_name(Case::Data d) {
  switch (d) {
    case Case::Data::kDevice:
      return "device";
    case Case::Data::kPinned:
      return "pinned";
    case Case::Data::kPageable:
      return "pageable";
  }
  return "?";
}

std::string family_name(const Case& c) {
  if (c.family == Family::kGaussian) return emix::to_string(c.covariance);
  return emix::to_string(c.family);
}

void print_header() {
  std::printf("%-26s %11s %4s %4s %-9s %-7s %-8s %-7s %5s %10s %9s %9s %9s %8s %9s\n", "case", "N",
              "D", "K", "family", "dtype", "data", "path", "tile", "s/iter", "GB/s(X)", "GFLOP/s",
              "floor_ms", "x_floor", "check");
}

void report(const Case& c, const Row& r, const Ceilings& ceil, std::FILE* csv) {
  const double x_bytes = static_cast<double>(c.n) * c.d * emix::dtype_size(c.dtype);
  const double flops = estep_flops(c);
  const double flop_rate = c.dtype == DType::kFloat32 ? ceil.sgemm : ceil.dgemm;
  // Streamed data cross the bus each iteration: their floor is the pinned copy rate.
  const double mem_s =
      c.data == Case::Data::kDevice ? x_bytes / ceil.copy : x_bytes / ceil.h2d_pinned;
  const double floor_s = std::max(mem_s, flop_rate > 0 ? flops / flop_rate : 0.0);
  std::printf(
      "%-26s %11lld %4d %4d %-9s %-7s %-8s %-7s %5d %10.5f %9.1f %9.0f %9.3f %8.2f %9.1e  "
      "(setup %.2fs, %s%s)\n",
      c.label.c_str(), static_cast<long long>(c.n), c.d, c.k, family_name(c).c_str(),
      emix::to_string(c.dtype), data_name(c.data), r.info.fused ? "single" : "general",
      r.info.tile_rows, r.seconds, x_bytes / r.seconds / 1e9, flops / r.seconds / 1e9,
      floor_s * 1e3, r.seconds / floor_s, r.check, r.setup,
      r.info.streaming
          ? (std::string(r.info.staging ? "staged"
                                        : (r.info.host_registered ? "registered" : "page-locked")) +
             ", " + std::to_string(r.info.stream_slots) + " slots, " +
             std::to_string(static_cast<int>(x_bytes / r.seconds / ceil.h2d_pinned * 100)) +
             "% of pinned H2D")
                .c_str()
          : (std::to_string(r.info.blocks) + " blocks").c_str(),
      "");
  std::fflush(stdout);
  if (csv != nullptr) {
    std::fprintf(csv, "%s,%lld,%d,%d,%s,%s,%s,%s,%d,%.6g,%.6g,%.6g,%.6g,%.4g,%.3g,%.3g\n",
                 c.label.c_str(), static_cast<long long>(c.n), c.d, c.k, family_name(c).c_str(),
                 emix::to_string(c.dtype), data_name(c.data), r.info.fused ? "single" : "general",
                 r.info.tile_rows, r.seconds, x_bytes / r.seconds / 1e9, flops / r.seconds / 1e9,
                 floor_s, r.seconds / floor_s, r.check, r.setup);
    std::fflush(csv);
  }
}

// A whole fit of 10^9 rows (D = 8, K = 8, float32) held on the device: `iterations` EM
// iterations from the generating parameters, timed by the fit report.
void billion_row_fit(std::int64_t n, int iterations) {
  Case c{"fit-1e9-8x8-f32", n, 8, 8, Family::kGaussian, Covariance::kDiag, DType::kFloat32};
  const emix::Model m = make_model(c);
  void* d_x = make_device_data(c, m);
  emix::FitOptions o;
  o.n_components = 8;
  o.covariance = Covariance::kDiag;
  o.init_model = m;
  o.max_iter = iterations;
  o.tol = 0;
  o.engine.device = emix::Device::kGpu;
  const emix::FitReport r =
      emix::fit(emix::DataView::device(static_cast<const float*>(d_x), n, 8), o);
  std::vector<double> steps(r.iteration_seconds.begin(), r.iteration_seconds.end() - 1);
  std::printf(
      "\n%s: N = %lld, %d iterations, %s, mean log-likelihood %.9f\n  set-up %.2f s, whole fit "
      "%.2f s, per iteration (E + M): median %.4f s, all:",
      c.label.c_str(), static_cast<long long>(n), r.n_iter, r.engine.c_str(), r.mean_log_likelihood,
      r.setup_seconds, r.seconds, median(steps));
  for (double s : r.iteration_seconds) std::printf(" %.4f", s);
  std::printf("\n");
  CHECK_CUDA(cudaFree(d_x));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, ncu = false;
  std::FILE* csv = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--ncu") == 0) ncu = true;
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv = std::fopen(argv[++i], "w");
  }
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
  const std::int64_t s = quick ? 10 : 1;
  using D = Case::Data;
  using P = emix::gpu::GpuPath;
  const Family G = Family::kGaussian;
  const std::vector<Case> main_cases = {
      {"full-1e6-16x16-f32", 1000000 / s, 16, 16, G, Covariance::kFull, DType::kFloat32},
      {"full-1e7-32x32-f32", 10000000 / s, 32, 32, G, Covariance::kFull, DType::kFloat32},
      {"full-1e7-32x32-f64", 10000000 / s, 32, 32, G, Covariance::kFull, DType::kFloat64},
      {"diag-1e8-8x8-f32", 100000000 / s, 8, 8, G, Covariance::kDiag, DType::kFloat32},
  };
  if (ncu) {
    for (const Case& c : main_cases) run(c, 1);
    Case registers = main_cases.back();  // diag: the register kernel (row_estep_kernel)
    registers.row_registers = true;
    run(registers, 1);
    return 0;
  }
  const Ceilings ceil = measure_ceilings();
  std::printf("emix gpu_timing: %s, %.1f GiB, %s\n", props.name,
              static_cast<double>(total_bytes) / (1 << 30), date);
  std::printf(
      "ceilings measured now: device copy %.0f GB/s (read + write), pinned host-to-device %.1f "
      "GB/s, SGEMM %.1f TFLOP/s, DGEMM %.1f TFLOP/s\n",
      ceil.copy / 1e9, ceil.h2d_pinned / 1e9, ceil.sgemm / 1e12, ceil.dgemm / 1e12);
  std::printf(
      "floor: the larger of X read once (device data: at the copy rate; streamed: at the pinned "
      "host-to-device rate) and the useful FLOPs at SGEMM's / DGEMM's rate\n");
  if (csv != nullptr) {
    std::fprintf(csv,
                 "case,n,d,k,family,dtype,data,path,tile_rows,seconds,gbs_x,gflops,floor_s,"
                 "x_floor,check,setup_s\n");
  }
  print_header();
  std::vector<Case> cases = main_cases;
  const std::vector<Case> more = {
      {"full-1e6-16x16-f64", 1000000 / s, 16, 16, G, Covariance::kFull, DType::kFloat64},
      {"diag-1e8-8x8-f64", 100000000 / s, 8, 8, G, Covariance::kDiag, DType::kFloat64},
      {"diag-1e8-8x8-f32-pinned", 100000000 / s, 8, 8, G, Covariance::kDiag, DType::kFloat32,
       D::kPinned},
      {"diag-1e8-8x8-f32-pageable", 100000000 / s, 8, 8, G, Covariance::kDiag, DType::kFloat32,
       D::kPageable},
      {"spherical-1e8-8x8-f32", 100000000 / s, 8, 8, G, Covariance::kSpherical, DType::kFloat32},
      {"tied-1e7-32x32-f32", 10000000 / s, 32, 32, G, Covariance::kTied, DType::kFloat32},
      {"full-1e6-64x8-f32", 1000000 / s, 64, 8, G, Covariance::kFull, DType::kFloat32},
      {"full-1e6-8x4-f32", 1000000 / s, 8, 4, G, Covariance::kFull, DType::kFloat32},
      {"bernoulli-1e8-16x8-f32", 100000000 / s, 16, 8, Family::kBernoulli, Covariance::kFull,
       DType::kFloat32},
      {"binomial-1e8-8x8-f32", 100000000 / s, 8, 8, Family::kBinomial, Covariance::kFull,
       DType::kFloat32, D::kDevice, P::kAuto, 10},
      // The general path (one kernel per step, cuBLAS) on the headline shapes, side by side.
      {"full-1e6-16x16-f32-general", 1000000 / s, 16, 16, G, Covariance::kFull, DType::kFloat32,
       D::kDevice, P::kGeneral},
      {"full-1e7-32x32-f32-general", 10000000 / s, 32, 32, G, Covariance::kFull, DType::kFloat32,
       D::kDevice, P::kGeneral},
      {"diag-1e8-8x8-f32-general", 100000000 / s, 8, 8, G, Covariance::kDiag, DType::kFloat32,
       D::kDevice, P::kGeneral},
  };
  cases.insert(cases.end(), more.begin(), more.end());
  for (const Case& c : cases) report(c, run(c, 5), ceil, csv);
  // The tile size the plan picks, against the others, on the headline cases.
  std::printf("\ntile rows of the single-pass kernel (the plan's own choice above)\n");
  print_header();
  for (const Case& c : main_cases) {
    for (int rows : {64, 128, 256, 512}) {
      if (rows == 512 && c.covariance == Covariance::kFull) continue;  // the plan's cap there
      Case t = c;
      t.max_tile_rows = rows;
      t.label = c.label + "-r" + std::to_string(rows);
      report(t, run(t, 3), ceil, csv);
    }
  }
  // The variants off by default (GpuSettings: the softmax fast path, row groups combined once a
  // block, the lean double kernels, the register kernel), each and together, against the rows
  // above, and on overlapping components (the default first there).
  std::printf(
      "\nthe single-pass kernel's variants on the headline cases: softmax fast path (-fastsm), "
      "row groups combined once a block (-blockc), lean double kernels (-lean), register kernel "
      "(-rowreg); -overlap: components that overlap\n");
  print_header();
  std::vector<Case> variant_cases = main_cases;
  Case overlapping = main_cases.back();
  overlapping.overlapping = true;
  overlapping.label += "-overlap";
  variant_cases.push_back(overlapping);
  for (const Case& c : variant_cases) {
    for (int variant = c.overlapping ? 0 : 1; variant < 16; ++variant) {
      Case t = c;
      t.fast_softmax = variant & 1;
      t.block_combine = variant & 2;
      t.lean_double = variant & 4;
      t.row_registers = variant & 8;
      // Variants that leave the case's plan as it is; the register kernel has its own softmax
      // and sums, so it takes none of the others.
      if (t.block_combine && !has_row_groups(t)) continue;
      if (t.lean_double && c.dtype != DType::kFloat64) continue;
      if (t.row_registers && ((variant & 7) != 0 || !takes_register_kernel(t))) continue;
      t.label = c.label + (t.fast_softmax ? "-fastsm" : "") + (t.block_combine ? "-blockc" : "") +
                (t.lean_double ? "-lean" : "") + (t.row_registers ? "-rowreg" : "");
      report(t, run(t, 5), ceil, csv);
    }
  }
  std::printf(
      "check: max |gpu - cpu| / max |cpu| over the statistics of the first 1e5 rows (CPU engine "
      "in double)\n");

  // 10^9 rows resident: 32 GB of float32 beside the engine's buffers.
  const std::int64_t billion = quick ? 100000000 : 1000000000;
  if (static_cast<double>(free_bytes) > billion * 8.0 * 4 + 4e9) {
    billion_row_fit(billion, 5);
  } else {
    std::printf("\nfit-1e9: skipped (%.1f GiB free)\n",
                static_cast<double>(free_bytes) / (1 << 30));
  }
  if (csv != nullptr) std::fclose(csv);
  return 0;
}
