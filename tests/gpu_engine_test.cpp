// The GPU engine against the CPU engine: the statistics of one E-step, per-row results, and
// whole fits, for every family and covariance type, float64 and float32 data, one chunk and
// many, host data uploaded or streamed, and data already in device memory. Plus determinism,
// the seed's problems, more than 2^31 rows, and out-of-memory handling.
//
// Every test skips, saying why, where no CUDA device answers. Seeds are fixed and printed with
// every failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "emix/emix.h"
#include "emix/emix.hpp"
#include "stats_compare.hpp"
#include "test_util.hpp"

#if EMIX_HAS_CUDA
#include <cuda_runtime_api.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/gpu_engine.hpp"
#endif

namespace {

using emix::Covariance;
using emix::DType;
using emix::Family;
using emix::testing::stats_close;

constexpr int kTrials = 5;  // binomial trials in every binomial case

// ---------------------------------------------------------------------------------------------
// Test data

struct Problem {
  emix::Model model;
  std::int64_t n = 0;
  int d = 0;
  std::vector<double> x;        // N x D, double
  std::vector<float> xf;        // the same rounded to float
  std::vector<double> xf64;     // xf widened back to double: what a float32 engine sees
  std::vector<double> weights;  // N sample weights, or empty
  std::uint64_t seed = 0;

  const double* w() const { return weights.empty() ? nullptr : weights.data(); }
  // The data a float64 CPU reference should see for this dtype.
  const std::vector<double>& reference_x(DType dtype) const {
    return dtype == DType::kFloat32 ? xf64 : x;
  }
};

Problem make_problem(Family family, Covariance covariance, int k, int d, std::int64_t n,
                     std::uint64_t seed, bool weighted) {
  Problem p;
  p.seed = seed;
  p.n = n;
  p.d = d;
  p.model = emix::testing::random_model(family, covariance, k, d, seed, kTrials);
  const emix::Sample s = emix::sample(p.model, n, seed + 1);
  p.x = s.x;
  p.xf.assign(p.x.begin(), p.x.end());
  p.xf64.assign(p.xf.begin(), p.xf.end());
  if (weighted) {
    std::mt19937_64 rng(seed + 2);
    std::uniform_real_distribution<double> u(0.25, 2.0);
    p.weights.resize(static_cast<std::size_t>(n));
    for (double& w : p.weights) w = u(rng);
    p.weights[3] = 0.0;  // a row of weight zero contributes nothing
  }
  return p;
}

// Starting parameters near (not at) the generating ones.
emix::Model perturbed(const emix::Model& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  emix::Model out = m;
  const double k = m.n_components;
  for (double& w : out.weights) w = 0.8 * w + 0.2 / k;
  for (double& mu : out.means) mu += 0.3 * z(rng);
  for (double& c : out.covariances) c *= 1.2;  // keeps full / tied covariances SPD
  for (double& p : out.probabilities) p = 0.8 * p + 0.1;
  return out;
}

#if EMIX_HAS_CUDA
// A copy of host data in device memory, as a caller's own CUDA code would hold it.
class DeviceCopy {
 public:
  DeviceCopy(const void* host, std::size_t bytes) {
    check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
    check(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~DeviceCopy() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  const void* get() const { return ptr_; }

  static void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
      throw std::runtime_error(std::string("test: ") + what +
                               " failed: " + cudaGetErrorName(status));
    }
  }

 private:
  void* ptr_ = nullptr;
};
#endif

// How the data reach the GPU engine.
enum class Input {
  kOneChunk,         // host data uploaded, one chunk
  kChunked,          // host data uploaded, chunks of 37 rows (N not a multiple)
  kChunkedWeighted,  // the same with sample weights
  kDevice,           // the caller's device memory, chunks of 37 rows, sample weights
  kStreamed,         // host data streamed through a 4 MiB budget, chunks of 37 rows
  kStreamedAuto,     // host data streamed through a 64 KiB budget, chunk size chosen from it
};

const char* to_string(Input input) {
  switch (input) {
    case Input::kOneChunk:
      return "one_chunk";
    case Input::kChunked:
      return "chunked";
    case Input::kChunkedWeighted:
      return "chunked_weighted";
    case Input::kDevice:
      return "device";
    case Input::kStreamed:
      return "streamed";
    case Input::kStreamedAuto:
      return "streamed_auto";
  }
  return "?";
}

bool weighted(Input input) {
  return input == Input::kChunkedWeighted || input == Input::kDevice ||
         input == Input::kStreamedAuto;
}

emix::EngineOptions gpu_options(Input input) {
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  switch (input) {
    case Input::kOneChunk:
      break;
    case Input::kChunked:
    case Input::kChunkedWeighted:
    case Input::kDevice:
      o.chunk_rows = 37;
      break;
    case Input::kStreamed:
      o.chunk_rows = 37;
      o.device_memory_limit = 4 << 20;
      break;
    case Input::kStreamedAuto:
      o.device_memory_limit = 64 << 10;
      break;
  }
  return o;
}

// The problem's data as the GPU engine should see them, owning a device copy where needed.
struct GpuData {
  emix::DataView view;
#if EMIX_HAS_CUDA
  std::unique_ptr<DeviceCopy> device;
#endif
};

GpuData gpu_data(const Problem& p, DType dtype, Input input) {
  GpuData g;
  g.view = dtype == DType::kFloat32 ? emix::DataView::host(p.xf.data(), p.n, p.d)
                                    : emix::DataView::host(p.x.data(), p.n, p.d);
#if EMIX_HAS_CUDA
  if (input == Input::kDevice) {
    const std::size_t bytes = static_cast<std::size_t>(p.n * p.d) * emix::dtype_size(dtype);
    g.device = std::make_unique<DeviceCopy>(g.view.data, bytes);
    g.view.data = g.device->get();
    g.view.space = emix::MemorySpace::kDevice;
  }
#else
  (void)input;
#endif
  return g;
}

std::vector<double> statistics(emix::Engine& engine, const emix::PreparedModel& prepared) {
  std::vector<double> stats(prepared.layout.size(), -1.0);
  engine.accumulate(prepared, stats.data());
  return stats;
}

std::vector<double> cpu_statistics(const Problem& p, DType dtype,
                                   const emix::PreparedModel& prepared) {
  emix::EngineOptions o;
  o.device = emix::Device::kCpu;
  const std::vector<double>& x = p.reference_x(dtype);
  auto cpu = emix::make_cpu_engine(emix::DataView::host(x.data(), p.n, p.d), p.w(), o);
  return statistics(*cpu, prepared);
}

// Largest |a - b| over an array, relative to the array's largest |b| (at least `floor`).
double array_difference(const std::vector<double>& a, const std::vector<double>& b,
                        double floor = 1.0) {
  if (a.size() != b.size()) return INFINITY;
  double scale = floor, worst = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double r = std::abs(a[i] - b[i]) / scale;
    worst = std::isnan(r) ? INFINITY : std::max(worst, r);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Statistics of one E-step, GPU against CPU

struct FamilyCase {
  Family family;
  Covariance covariance;
};
struct Shape {
  std::int64_t n;
  int d;
  int k;
};

const FamilyCase kFamilies[] = {
    {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
    {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
    {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull},
};
const Shape kShapes[] = {{1000, 3, 4}, {1000, 7, 1}, {1000, 7, 4}};
const Input kInputs[] = {Input::kOneChunk, Input::kChunked,  Input::kChunkedWeighted,
                         Input::kDevice,   Input::kStreamed, Input::kStreamedAuto};

using StatsParam = std::tuple<FamilyCase, DType, Shape, Input>;

std::string stats_name(const ::testing::TestParamInfo<StatsParam>& info) {
  const auto& [f, dtype, shape, input] = info.param;
  std::ostringstream s;
  s << emix::testing::describe(f.family, f.covariance) << "_" << emix::to_string(dtype) << "_n"
    << shape.n << "_d" << shape.d << "_k" << shape.k << "_" << to_string(input);
  std::string name = s.str();
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::uint64_t seed_for(const FamilyCase& f, const Shape& s) {
  return 1000 + 100 * static_cast<std::uint64_t>(f.family) +
         10 * static_cast<std::uint64_t>(f.covariance) + static_cast<std::uint64_t>(s.d * s.k);
}

class GpuStatistics : public ::testing::TestWithParam<StatsParam> {};

// float64: the same sums in another order, 1e-12 of their scale. float32: the data are exact in
// both engines, the GPU's float GEMMs and its float block sums of sqrt(g)(x - c) products round
// at about 1e-7 relative, so 1e-5 of the scale.
TEST_P(GpuStatistics, MatchCpuEngine) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const auto& [f, dtype, shape, input] = GetParam();
  const std::uint64_t seed = seed_for(f, shape);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Problem p =
      make_problem(f.family, f.covariance, shape.k, shape.d, shape.n, seed, weighted(input));
  const emix::PreparedModel prepared = emix::prepare(p.model);
  const std::vector<double> cpu = cpu_statistics(p, dtype, prepared);

  const GpuData data = gpu_data(p, dtype, input);
  auto gpu = emix::make_gpu_engine(data.view, p.w(), gpu_options(input));
  EXPECT_EQ(gpu->name().rfind("gpu (", 0), 0u) << gpu->name();
  const std::vector<double> stats = statistics(*gpu, prepared);
  const double tol = dtype == DType::kFloat64 ? 1e-12 : 1e-5;
  EXPECT_TRUE(stats_close(prepared, stats, cpu, tol));

#if EMIX_HAS_CUDA
  const emix::gpu::EngineInfo info = emix::gpu::engine_info(*gpu);
  EXPECT_EQ(info.device_input, input == Input::kDevice);
  EXPECT_EQ(info.streaming, input == Input::kStreamed || input == Input::kStreamedAuto);
  if (input == Input::kStreamedAuto) {
    EXPECT_LT(info.chunk_rows, p.n) << "the 64 KiB budget should force several chunks";
  } else if (input != Input::kOneChunk) {
    EXPECT_EQ(info.chunk_rows, 37);
  } else {
    EXPECT_EQ(info.chunk_rows, p.n);
  }
#endif

  // A second call on the same engine gives bitwise the same statistics.
  const std::vector<double> again = statistics(*gpu, prepared);
  EXPECT_EQ(0, std::memcmp(again.data(), stats.data(), stats.size() * sizeof(double)));
}

INSTANTIATE_TEST_SUITE_P(All, GpuStatistics,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(DType::kFloat64, DType::kFloat32),
                                            ::testing::ValuesIn(kShapes),
                                            ::testing::ValuesIn(kInputs)),
                         stats_name);

// The same chunking over uploaded, streamed and device-resident data runs the same kernels on the
// same numbers: bitwise the same statistics.
TEST(GpuStatisticsPaths, UploadedStreamedAndDeviceDataGiveBitwiseEqualStatistics) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  for (const FamilyCase& f : kFamilies) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      const std::uint64_t seed = 77;
      SCOPED_TRACE(emix::testing::describe(f.family, f.covariance) + " " + emix::to_string(dtype) +
                   " seed 77");
      const Problem p = make_problem(f.family, f.covariance, 3, 5, 777, seed, true);
      const emix::PreparedModel prepared = emix::prepare(p.model);
      std::vector<std::vector<double>> results;
      for (Input input : {Input::kChunkedWeighted, Input::kDevice}) {
        const GpuData data = gpu_data(p, dtype, input);
        results.push_back(
            statistics(*emix::make_gpu_engine(data.view, p.w(), gpu_options(input)), prepared));
      }
      emix::EngineOptions streamed = gpu_options(Input::kStreamed);
      const GpuData data = gpu_data(p, dtype, Input::kStreamed);
      results.push_back(statistics(*emix::make_gpu_engine(data.view, p.w(), streamed), prepared));
      for (std::size_t i = 1; i < results.size(); ++i) {
        EXPECT_EQ(0, std::memcmp(results[i].data(), results[0].data(),
                                 results[0].size() * sizeof(double)))
            << "path " << i;
      }
    }
  }
}

#if EMIX_HAS_CUDA
// Settings of an engine on a given path (and tile cap); tests turn the variants on in them.
emix::gpu::GpuSettings on_path(emix::gpu::GpuPath path, int max_tile_rows = 0) {
  emix::gpu::GpuSettings settings;
  settings.path = path;
  settings.max_tile_rows = max_tile_rows;
  return settings;
}

// The same with every variant GpuSettings can turn on.
emix::gpu::GpuSettings every_variant(emix::gpu::GpuSettings settings) {
  settings.fast_softmax = true;
  settings.block_combine = true;
  settings.lean_double = true;
  settings.row_registers = true;
  return settings;
}

// An engine with these settings and the input's options.
std::unique_ptr<emix::Engine> engine_on(const GpuData& data, const Problem& p, Input input,
                                        const emix::gpu::GpuSettings& settings) {
  return emix::gpu::create_engine(data.view, p.w(), gpu_options(input), settings);
}

// Every family takes the single-pass kernel where its tile fits shared memory; the general path
// (for shapes whose tile does not) must give the same statistics. Both against the CPU engine,
// with GpuStatistics' tolerances, in tiles of the plan's size and of 32 rows (many tiles, short
// last ones, several rounds or row groups), with the softmax fast path, with row groups
// combined once a block (in tiles of 32 rows: many tiles a block), with the lean double
// kernels and with the register kernel (GpuSettings; float diag and spherical at D <= 8), and
// bitwise the same on a second call.
TEST(GpuStatisticsPaths, SinglePassAndGeneralPathsMatchCpu) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  // The last shape: the register kernel's exact form (K and D multiples of 4, GpuSettings).
  const Shape shapes[] = {{1000, 7, 4}, {2500, 3, 4}, {700, 40, 3}, {3000, 8, 8}};
  for (const FamilyCase& f : kFamilies) {
    for (const Shape& shape : shapes) {
      for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
        for (Input input : {Input::kOneChunk, Input::kChunkedWeighted, Input::kDevice}) {
          const std::uint64_t seed = 88 + static_cast<std::uint64_t>(shape.d);
          SCOPED_TRACE(emix::testing::describe(f.family, f.covariance) + " " +
                       emix::to_string(dtype) + " " + to_string(input) + " d " +
                       std::to_string(shape.d) + " seed " + std::to_string(seed));
          const Problem p = make_problem(f.family, f.covariance, shape.k, shape.d, shape.n, seed,
                                         weighted(input));
          const emix::PreparedModel prepared = emix::prepare(p.model);
          const std::vector<double> cpu = cpu_statistics(p, dtype, prepared);
          const double tol = dtype == DType::kFloat64 ? 1e-12 : 1e-5;
          const GpuData data = gpu_data(p, dtype, input);
          // Variants: the plan's tile, tiles of 32 rows, the general path, the softmax fast path,
          // row groups combined once a block, the lean double kernels (float: as variant 0),
          // the register kernel (elsewhere: as variant 0).
          for (int variant = 0; variant < 7; ++variant) {
            const emix::gpu::GpuPath path =
                variant == 2 ? emix::gpu::GpuPath::kGeneral : emix::gpu::GpuPath::kFused;
            emix::gpu::GpuSettings settings = on_path(path, variant == 1 || variant == 4 ? 32 : 0);
            settings.fast_softmax = variant == 3;
            settings.block_combine = variant == 4;
            settings.lean_double = variant == 5;
            settings.row_registers = variant == 6;
            auto gpu = engine_on(data, p, input, settings);
            const std::vector<double> stats = statistics(*gpu, prepared);
            const emix::gpu::EngineInfo info = emix::gpu::engine_info(*gpu);
            EXPECT_EQ(info.fused, path == emix::gpu::GpuPath::kFused) << "variant " << variant;
            const bool registers =
                variant == 6 && dtype == DType::kFloat32 && f.family == Family::kGaussian &&
                (f.covariance == Covariance::kDiag || f.covariance == Covariance::kSpherical) &&
                shape.d <= 8;
            EXPECT_EQ(info.register_kernel, registers) << "variant " << variant;
            const int tile_rows = settings.max_tile_rows;
            if (tile_rows > 0) {
              EXPECT_EQ(info.tile_rows, tile_rows);
            }
            EXPECT_TRUE(stats_close(prepared, stats, cpu, tol)) << "variant " << variant;
            const std::vector<double> again = statistics(*gpu, prepared);
            EXPECT_EQ(0, std::memcmp(again.data(), stats.data(), stats.size() * sizeof(double)))
                << "variant " << variant;
          }
        }
      }
    }
  }
}

// A shape whose tile cannot fit shared memory (K = 20000 components: 32 rows of log-joints
// alone need 2.6 MB) takes the general path by itself, and says why.
TEST(GpuStatisticsPaths, TheGeneralPathTakesWhatATileCannotHold) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 20000, 2, 600, 89, true);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  auto gpu = emix::make_gpu_engine(emix::DataView::host(p.x.data(), p.n, p.d), p.w(),
                                   gpu_options(Input::kOneChunk));
  EXPECT_TRUE(stats_close(prepared, statistics(*gpu, prepared),
                          cpu_statistics(p, DType::kFloat64, prepared), 1e-12))
      << "seed 89";
  const emix::gpu::EngineInfo info = emix::gpu::engine_info(*gpu);
  EXPECT_FALSE(info.fused);
  EXPECT_NE(info.general_reason.find("shared memory"), std::string::npos) << info.general_reason;
  emix::gpu::GpuSettings insist;
  insist.path = emix::gpu::GpuPath::kFused;
  auto fused = emix::gpu::create_engine(emix::DataView::host(p.x.data(), p.n, p.d), p.w(),
                                        gpu_options(Input::kOneChunk), insist);
  std::vector<double> stats(prepared.layout.size());
  EXPECT_THROW(fused->accumulate(prepared, stats.data()), emix::InvalidArgument);
}

// Streaming copies chunks straight from page-locked memory: the caller's pageable vectors,
// registered for the engine's life, or, where registration is declined, through pinned staging
// buffers; both give the uploaded data's statistics bitwise (the same chunks, the same kernels).
TEST(GpuStatisticsPaths, RegisteredAndStagedStreamingMatchUploadedBitwise) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  for (const FamilyCase& f : kFamilies) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      SCOPED_TRACE(emix::testing::describe(f.family, f.covariance) + " " + emix::to_string(dtype) +
                   " seed 78");
      const Problem p = make_problem(f.family, f.covariance, 3, 6, 2000, 78, true);
      const emix::PreparedModel prepared = emix::prepare(p.model);
      const GpuData data = gpu_data(p, dtype, Input::kStreamed);
      auto uploaded =
          engine_on(data, p, Input::kChunkedWeighted, on_path(emix::gpu::GpuPath::kAuto));
      const std::vector<double> reference = statistics(*uploaded, prepared);
      for (bool registered : {true, false}) {
        emix::gpu::GpuSettings settings = on_path(emix::gpu::GpuPath::kAuto);
        settings.register_host_memory = registered;
        auto streamed = engine_on(data, p, Input::kStreamed, settings);
        const std::vector<double> stats = statistics(*streamed, prepared);
        const emix::gpu::EngineInfo info = emix::gpu::engine_info(*streamed);
        EXPECT_TRUE(info.streaming);
        EXPECT_EQ(info.host_registered, registered);
        EXPECT_EQ(info.staging, !registered);
        EXPECT_GE(info.stream_slots, 3);
        EXPECT_EQ(0, std::memcmp(stats.data(), reference.data(), stats.size() * sizeof(double)))
            << (registered ? "registered" : "staged");
      }
    }
  }
}
#endif

#if EMIX_HAS_CUDA
// Whether CUDA knows `p` as page-locked host memory.
bool host_page_locked(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

// Two engines streaming one host array share its registration, and the one that ends first
// leaves it to the other: it used to unregister the pages the other was copying from.
TEST(GpuStatisticsPaths, EnginesOverOneHostArrayShareItsRegistration) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kFull, 3, 6, 4000, 80, false);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  const emix::DataView view = emix::DataView::host(p.x.data(), p.n, p.d);
  auto first = emix::gpu::create_engine(view, nullptr, gpu_options(Input::kStreamed),
                                        on_path(emix::gpu::GpuPath::kAuto));
  const std::vector<double> reference = statistics(*first, prepared);
  auto second = emix::gpu::create_engine(view, nullptr, gpu_options(Input::kStreamed),
                                         on_path(emix::gpu::GpuPath::kAuto));
  EXPECT_TRUE(emix::gpu::engine_info(*first).host_registered);
  EXPECT_TRUE(emix::gpu::engine_info(*second).host_registered);
  EXPECT_FALSE(emix::gpu::engine_info(*second).staging);
  first.reset();
  EXPECT_TRUE(host_page_locked(p.x.data() + p.x.size() / 2)) << "released with an engine left";
  const std::vector<double> stats = statistics(*second, prepared);
  EXPECT_EQ(0, std::memcmp(stats.data(), reference.data(), stats.size() * sizeof(double)));
  second.reset();
  EXPECT_FALSE(host_page_locked(p.x.data() + p.x.size() / 2));
}

// Weights that begin on the rows' last page (one allocation), streamed by one engine with the
// rows and by another without them, then the rows' second half by a third: the registration was
// keyed by a trimmed range, so the second engine found no entry, held nothing, and streamed from
// pages the first one's end unregistered.
TEST(GpuStatisticsPaths, EnginesOverArraysSharingPagesKeepThemLocked) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 3, 5, 3001, 81, true);
  std::vector<double> both(p.x);
  both.insert(both.end(), p.weights.begin(), p.weights.end());
  const double* x = both.data();
  const double* w = both.data() + p.x.size();
  const emix::PreparedModel prepared = emix::prepare(p.model);
  const std::int64_t half = p.n / 2;
  auto weighted =
      emix::gpu::create_engine(emix::DataView::host(x, p.n, p.d), w, gpu_options(Input::kStreamed),
                               on_path(emix::gpu::GpuPath::kAuto));
  auto rows =
      emix::gpu::create_engine(emix::DataView::host(x, p.n, p.d), nullptr,
                               gpu_options(Input::kStreamed), on_path(emix::gpu::GpuPath::kAuto));
  auto second_half =
      emix::gpu::create_engine(emix::DataView::host(x + half * p.d, p.n - half, p.d), nullptr,
                               gpu_options(Input::kStreamed), on_path(emix::gpu::GpuPath::kAuto));
  const std::vector<double> reference = statistics(*rows, prepared);
  const std::vector<double> half_reference = statistics(*second_half, prepared);
  for (const auto* engine : {weighted.get(), rows.get(), second_half.get()}) {
    EXPECT_TRUE(emix::gpu::engine_info(*engine).host_registered);
    EXPECT_FALSE(emix::gpu::engine_info(*engine).staging);
  }
  weighted.reset();
  EXPECT_TRUE(host_page_locked(w - 1)) << "the rows' last page, shared with the weights";
  EXPECT_TRUE(host_page_locked(x));
  const std::vector<double> stats = statistics(*rows, prepared);
  EXPECT_EQ(0, std::memcmp(stats.data(), reference.data(), stats.size() * sizeof(double)));
  rows.reset();
  EXPECT_TRUE(host_page_locked(x + half * p.d));
  const std::vector<double> half_stats = statistics(*second_half, prepared);
  EXPECT_EQ(
      0, std::memcmp(half_stats.data(), half_reference.data(), half_stats.size() * sizeof(double)));
  second_half.reset();
  EXPECT_FALSE(host_page_locked(x + half * p.d));
  EXPECT_FALSE(host_page_locked(w - 1));
}

// Rows in a read-only mapping (a .npy memory-mapped for reading) register as read-only and
// stream straight from it, as heap rows do; registering them as writable fails, and they went
// through staging copies.
TEST(GpuStatisticsPaths, AReadOnlyMappingStreamsWithoutStaging) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 3, 6, 2000, 79, false);
  const std::string path = ::testing::TempDir() + "emix_read_only_rows.bin";
  const std::size_t bytes = p.x.size() * sizeof(double);
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(p.x.data(), 1, bytes, f), bytes);
    std::fclose(f);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(mapped, MAP_FAILED);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  {
    auto heap =
        emix::gpu::create_engine(emix::DataView::host(p.x.data(), p.n, p.d), nullptr,
                                 gpu_options(Input::kStreamed), on_path(emix::gpu::GpuPath::kAuto));
    auto streamed = emix::gpu::create_engine(
        emix::DataView::host(static_cast<const double*>(mapped), p.n, p.d), nullptr,
        gpu_options(Input::kStreamed), on_path(emix::gpu::GpuPath::kAuto));
    const emix::gpu::EngineInfo info = emix::gpu::engine_info(*streamed);
    EXPECT_TRUE(info.streaming);
    int read_only_supported = 0;
    ASSERT_EQ(
        cudaDeviceGetAttribute(&read_only_supported, cudaDevAttrHostRegisterReadOnlySupported, 0),
        cudaSuccess);
    // Where the device cannot register read-only memory, the mapping's rows are staged.
    EXPECT_EQ(info.host_registered, read_only_supported != 0);
    EXPECT_EQ(info.staging, read_only_supported == 0);
    const std::vector<double> reference = statistics(*heap, prepared);
    const std::vector<double> stats = statistics(*streamed, prepared);
    EXPECT_EQ(0, std::memcmp(stats.data(), reference.data(), stats.size() * sizeof(double)));
  }
  ::munmap(mapped, bytes);
  std::remove(path.c_str());
}
#endif

// ---------------------------------------------------------------------------------------------
// Per-row results and gathered rows

using EvaluateParam = std::tuple<FamilyCase, DType, Input>;

std::string evaluate_name(const ::testing::TestParamInfo<EvaluateParam>& info) {
  const FamilyCase f = std::get<0>(info.param);
  std::string name = emix::testing::describe(f.family, f.covariance) + "_" +
                     emix::to_string(std::get<1>(info.param)) + "_" +
                     to_string(std::get<2>(info.param));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

class GpuEvaluate : public ::testing::TestWithParam<EvaluateParam> {};

TEST_P(GpuEvaluate, MatchCpuEngine) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const auto& [f, dtype, input] = GetParam();
  const std::uint64_t seed = 4242;
  SCOPED_TRACE("seed 4242");
  const Problem p = make_problem(f.family, f.covariance, 4, 3, 500, seed, false);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  const int k = p.model.n_components;
  const std::size_t n = static_cast<std::size_t>(p.n);

  emix::EngineOptions cpu_o;
  cpu_o.device = emix::Device::kCpu;
  const std::vector<double>& xr = p.reference_x(dtype);
  auto cpu = emix::make_cpu_engine(emix::DataView::host(xr.data(), p.n, p.d), nullptr, cpu_o);
  std::vector<double> lp_c(n), resp_c(n * k);
  std::vector<std::int32_t> lab_c(n);
  cpu->evaluate(prepared, lp_c.data(), resp_c.data(), lab_c.data());

  const GpuData data = gpu_data(p, dtype, input);
  auto gpu = emix::make_gpu_engine(data.view, nullptr, gpu_options(input));
  std::vector<double> lp_g(n, -1), resp_g(n * k, -1);
  std::vector<std::int32_t> lab_g(n, -1);
  gpu->evaluate(prepared, lp_g.data(), resp_g.data(), lab_g.data());

  // float64: 1e-12 of max(|log p|, 1) and of 1 for responsibilities; float32: float GEMMs on
  // centred data give log-densities to about 1e-6 absolute, hence 1e-5.
  const double tol = dtype == DType::kFloat64 ? 1e-12 : 1e-5;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(lp_g[i], lp_c[i], tol * std::max(1.0, std::abs(lp_c[i]))) << "row " << i;
    double top = 0, second = 0;
    for (int c = 0; c < k; ++c) {
      ASSERT_NEAR(resp_g[i * k + c], resp_c[i * k + c], tol) << "row " << i << " k " << c;
      const double r = resp_c[i * k + c];
      if (r > top) {
        second = top;
        top = r;
      } else {
        second = std::max(second, r);
      }
    }
    if (top - second > 10 * tol) {
      EXPECT_EQ(lab_g[i], lab_c[i]) << "row " << i;
    }
  }

  // Only the labels asked for: the other outputs may be null.
  std::vector<std::int32_t> lab_only(n, -1);
  gpu->evaluate(prepared, nullptr, nullptr, lab_only.data());
  EXPECT_EQ(lab_only, lab_g);

  const std::vector<std::int64_t> idx = {0, p.n - 1, 37, 5, 5, 499};
  std::vector<double> rows(idx.size() * p.d, -1);
  gpu->gather_rows(idx.data(), static_cast<std::int64_t>(idx.size()), rows.data());
  for (std::size_t r = 0; r < idx.size(); ++r) {
    for (int j = 0; j < p.d; ++j) {
      EXPECT_EQ(rows[r * p.d + j], xr[idx[r] * p.d + j]) << "gathered row " << idx[r];
    }
  }
  const std::int64_t bad = p.n;
  EXPECT_THROW(gpu->gather_rows(&bad, 1, rows.data()), emix::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(All, GpuEvaluate,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(DType::kFloat64, DType::kFloat32),
                                            ::testing::Values(Input::kOneChunk, Input::kDevice,
                                                              Input::kStreamed)),
                         evaluate_name);

// ---------------------------------------------------------------------------------------------
// Whole fits, GPU against CPU

emix::FitOptions fit_options(const emix::Model& init) {
  emix::FitOptions o;
  o.n_components = init.n_components;
  o.family = init.family;
  o.covariance = init.covariance;
  o.trials = init.trials;
  o.init_model = init;
  o.tol = 0;
  o.max_iter = 20;
  o.seed = 5;
  return o;
}

class GpuFit : public ::testing::TestWithParam<StatsParam> {};

// float64: twenty iterations of the same arithmetic in another order stay within 1e-10.
// float32 GPU against float64 CPU on the same (float-representable) data: the statistics agree
// to ~1e-6, which EM does not amplify near a well-separated solution: 1e-6 for the
// log-likelihood, 1e-4 for the parameters.
TEST_P(GpuFit, TwentyIterationsMatchCpuFit) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const auto& [f, dtype, shape, input] = GetParam();
  const std::uint64_t seed = 9000 + seed_for(f, shape);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Problem p =
      make_problem(f.family, f.covariance, shape.k, shape.d, shape.n, seed, weighted(input));
  emix::FitOptions o = fit_options(perturbed(p.model, seed + 3));

  o.engine.device = emix::Device::kCpu;
  const std::vector<double>& xr = p.reference_x(dtype);
  const emix::FitReport cpu = emix::fit(emix::DataView::host(xr.data(), p.n, p.d), o, p.w());

  o.engine = gpu_options(input);
  const GpuData data = gpu_data(p, dtype, input);
  const emix::FitReport gpu = emix::fit(data.view, o, p.w());
  EXPECT_EQ(gpu.engine.rfind("gpu (", 0), 0u) << gpu.engine;
  EXPECT_EQ(gpu.precision, emix::to_string(dtype));
  ASSERT_EQ(gpu.n_iter, cpu.n_iter);

  const double tol_ll = dtype == DType::kFloat64 ? 1e-10 : 1e-6;
  const double tol_p = dtype == DType::kFloat64 ? 1e-10 : 1e-4;
  EXPECT_NEAR(gpu.log_likelihood, cpu.log_likelihood, tol_ll * std::abs(cpu.log_likelihood));
  EXPECT_LE(array_difference(gpu.model.weights, cpu.model.weights), tol_p);
  EXPECT_LE(array_difference(gpu.model.means, cpu.model.means), tol_p);
  EXPECT_LE(array_difference(gpu.model.covariances, cpu.model.covariances), tol_p);
  EXPECT_LE(array_difference(gpu.model.probabilities, cpu.model.probabilities), tol_p);
  ASSERT_EQ(gpu.history.size(), cpu.history.size());
  for (std::size_t i = 0; i < gpu.history.size(); ++i) {
    EXPECT_NEAR(gpu.history[i], cpu.history[i], tol_ll * std::abs(cpu.history[i]))
        << "iteration " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(All, GpuFit,
                         ::testing::Combine(::testing::ValuesIn(kFamilies),
                                            ::testing::Values(DType::kFloat64, DType::kFloat32),
                                            ::testing::Values(Shape{1000, 3, 4}, Shape{1000, 7, 1}),
                                            ::testing::Values(Input::kOneChunk, Input::kStreamed,
                                                              Input::kDevice)),
                         stats_name);

TEST(GpuDeterminism, TwoFitsAreBitwiseEqual) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  for (const FamilyCase& f : kFamilies) {
    for (Input input : {Input::kOneChunk, Input::kStreamed}) {
      const std::uint64_t seed = 31337;
      SCOPED_TRACE(emix::testing::describe(f.family, f.covariance) + " " + to_string(input) +
                   " seed 31337");
      const Problem p = make_problem(f.family, f.covariance, 4, 6, 3000, seed, true);
      emix::FitOptions o = fit_options(perturbed(p.model, seed + 3));
      o.engine = gpu_options(input);
      const emix::DataView view = emix::DataView::host(p.xf.data(), p.n, p.d);
      const emix::FitReport a = emix::fit(view, o, p.w());
      const emix::FitReport b = emix::fit(view, o, p.w());
      const auto same = [](const std::vector<double>& u, const std::vector<double>& v) {
        return u.size() == v.size() &&
               (u.empty() || std::memcmp(u.data(), v.data(), u.size() * sizeof(double)) == 0);
      };
      EXPECT_TRUE(same(a.model.weights, b.model.weights));
      EXPECT_TRUE(same(a.model.means, b.model.means));
      EXPECT_TRUE(same(a.model.covariances, b.model.covariances));
      EXPECT_TRUE(same(a.model.probabilities, b.model.probabilities));
      EXPECT_TRUE(same(a.history, b.history));
    }
  }
}

// Rows at means 1e200 from the data's centre, in a shape too wide for a tile (D = 1200,
// float64): the general path's log-density, (x - c0) U minus (mean - c0) U, cancels to -inf
// there; the evaluation takes such rows again in closed form, as the CPU engine's NaN rows.
TEST(GpuAccuracy, RowsAtFarMeansOnTheGeneralPathGetTheirClosedForm) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  constexpr int d = 1200;
  constexpr double kFar = 1e200;
  emix::Model m;
  m.family = emix::Family::kGaussian;
  m.covariance = Covariance::kFull;
  m.n_components = 2;
  m.n_features = d;
  m.weights = {0.25, 0.75};
  // Far in two coordinates that the covariance correlates: the device's products and sums of
  // (x - c0) U then round unlike the host's (mean - c0) U, where with one far coordinate and
  // U = I both sides rounded alike and cancelled exactly, with or without the retake.
  m.means.assign(2 * d, 0.0);
  m.means[0] = kFar;
  m.means[1] = 0.3 * kFar;
  m.means[d] = -kFar;
  m.means[d + 1] = -0.7 * kFar;
  m.covariances.assign(2 * static_cast<std::size_t>(d) * d, 0.0);
  for (int c = 0; c < 2; ++c) {
    for (int j = 0; j < d; ++j) {
      double* row = &m.covariances[(static_cast<std::size_t>(c) * d + j) * d];
      row[j] = 1;
      row[j ^ 1] = 0.5;  // 2 x 2 blocks [[1, 0.5], [0.5, 1]] down the diagonal
    }
  }
  const std::vector<double> x(m.means);  // row 0 at mean 0, row 1 at mean 1
  const double half_log_two_pi = 0.5 * std::log(2 * std::acos(-1.0));
  const double half_log_det = 0.5 * (d / 2) * std::log(0.75);
  const std::vector<double> expected = {std::log(0.25) - d * half_log_two_pi - half_log_det,
                                        std::log(0.75) - d * half_log_two_pi - half_log_det};
  emix::EngineOptions gpu;
  gpu.device = emix::Device::kGpu;
  const std::vector<double> log_prob =
      emix::score_samples(m, emix::DataView::host(x.data(), 2, d), gpu);
  for (int n = 0; n < 2; ++n) {
    EXPECT_NEAR(log_prob[n], expected[n], 1e-12 * std::abs(expected[n])) << "row " << n;
  }
  EXPECT_EQ(emix::predict(m, emix::DataView::host(x.data(), 2, d), gpu),
            (std::vector<std::int32_t>{0, 1}));
}

// float32 on the GPU keeps float32's tolerance (1e-4 of a parameter against float64, issue 12)
// on clusters 1000 sd apart, where the CPU engine's float expansion once lost 7 %: the CPU
// engine in float64 on the same float values is the reference.
TEST(GpuAccuracy, Float32FitsOfFarApartClustersKeepTheirDigits) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  for (const Covariance covariance : {Covariance::kFull, Covariance::kDiag}) {
    emix::testing::FarApart f = emix::testing::far_apart_clusters(covariance);
    const std::vector<double> x64(f.x.begin(), f.x.end());
    f.options.engine.device = emix::Device::kCpu;
    const emix::Model cpu64 = emix::fit(emix::DataView::host(x64.data(), f.n, 3), f.options).model;
    f.options.engine.device = emix::Device::kGpu;
    const emix::Model gpu32 = emix::fit(emix::DataView::host(f.x.data(), f.n, 3), f.options).model;
    EXPECT_LT(emix::testing::worst_component_difference(gpu32, cpu64), 1e-4)
        << emix::to_string(covariance);
  }
}

// float32 on the GPU where float arithmetic would not hold: binomial counts of up to 1000 (the
// log-densities' terms, about 1e4, cancel to about -20; the single-pass kernel's float sum lost
// 1e-3 of each) and sample weights beyond float's range (1e35 overflowed its float sums). Such
// models take the general path, which computes in double: the log-likelihood within 1e-9
// relative (binomial, whose parameters are exact) and the parameters within float32's 1e-4 of
// the CPU engine's float64 fit on the same values.
TEST(GpuAccuracy, Float32ModelsThatNeedDoubleGetIt) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  {
    emix::testing::ManyTrials t = emix::testing::binomial_with_many_trials();
    t.options.engine.device = emix::Device::kCpu;
    const emix::FitReport cpu64 = emix::fit(emix::DataView::host(t.x64.data(), 4000, 5), t.options);
    t.options.engine.device = emix::Device::kGpu;
    const emix::FitReport gpu32 = emix::fit(emix::DataView::host(t.x32.data(), 4000, 5), t.options);
    EXPECT_NEAR(gpu32.mean_log_likelihood, cpu64.mean_log_likelihood,
                1e-9 * std::abs(cpu64.mean_log_likelihood));
  }
  // Full and tied scatters are the general path's float GEMM Z^T Z: weights of 1e38 overflow
  // it and 1e-38 flush it to zero unless it is scaled (scatter_exponent).
  for (const Covariance covariance : {Covariance::kDiag, Covariance::kFull, Covariance::kTied})
    for (const double scale : {1e35, 1e-35, 1e38, 1e-38}) {
      SCOPED_TRACE(emix::to_string(covariance));
      const emix::Model truth =
          emix::testing::random_model(Family::kGaussian, covariance, 2, 2, 12);
      const emix::Sample s = emix::sample(truth, 3000, 13);
      const std::vector<float> x32(s.x.begin(), s.x.end());
      const std::vector<double> x64(x32.begin(), x32.end());
      const std::vector<double> w(3000, scale);
      emix::FitOptions o = emix::testing::steps_from(truth, 5);
      o.engine.device = emix::Device::kCpu;
      const emix::Model cpu64 =
          emix::fit(emix::DataView::host(x64.data(), 3000, 2), o, w.data()).model;
      o.engine.device = emix::Device::kGpu;
      const emix::Model gpu32 =
          emix::fit(emix::DataView::host(x32.data(), 3000, 2), o, w.data()).model;
      EXPECT_LT(emix::testing::worst_component_difference(gpu32, cpu64), 1e-4) << scale;
    }
}

// ---------------------------------------------------------------------------------------------
// The seed's problems (../shared/seed/homework-em.md)

struct CoinCase {
  double pi0, p0, q0;
  double pi, p, q;  // theta(1), printed by the seed to 4 decimals
};

class GpuThreeCoins : public ::testing::TestWithParam<std::tuple<CoinCase, DType>> {};

TEST_P(GpuThreeCoins, FirstIterateMatchesTheSeed) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const auto& [c, dtype] = GetParam();
  const std::vector<double> coins = {1, 1, 0, 1, 0, 0, 1, 0, 1, 1};
  const std::vector<float> coins_f(coins.begin(), coins.end());
  emix::Model m;
  m.family = Family::kBernoulli;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {c.pi0, 1 - c.pi0};
  m.probabilities = {c.p0, c.q0};
  const double tol = 0.5e-4 + 1e-12;  // within half a unit of the seed's last printed digit
  for (int iterations : {1, 2}) {
    emix::FitOptions o = fit_options(m);
    o.max_iter = iterations;
    o.engine.device = emix::Device::kGpu;
    const emix::DataView view = dtype == DType::kFloat32
                                    ? emix::DataView::host(coins_f.data(), 10, 1)
                                    : emix::DataView::host(coins.data(), 10, 1);
    const emix::FitReport r = emix::fit(view, o);
    ASSERT_EQ(r.n_iter, iterations);
    EXPECT_NEAR(r.model.weights[0], c.pi, tol) << "theta(" << iterations << ")";
    EXPECT_NEAR(r.model.probabilities[0], c.p, tol) << "theta(" << iterations << ")";
    EXPECT_NEAR(r.model.probabilities[1], c.q, tol) << "theta(" << iterations << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Seed, GpuThreeCoins,
    ::testing::Combine(::testing::Values(CoinCase{0.46, 0.55, 0.67, 0.4619, 0.5346, 0.6561},
                                         CoinCase{0.5, 0.5, 0.5, 0.5, 0.6, 0.6},
                                         CoinCase{0.4, 0.6, 0.7, 0.4064, 0.5368, 0.6432}),
                       ::testing::Values(DType::kFloat64, DType::kFloat32)));

// The 15-point Gaussian mixture: the GPU's iterates are the CPU's. The seed's starts have two
// identical components, an unstable fixed point that amplifies rounding differences by a constant
// factor per iteration (see seed_test.cpp), so ten iterations and 1e-9.
TEST(GpuSeed, FifteenPointMixtureMatchesTheCpuEngine) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const std::vector<double> points = {-67, -48, 6, 8, 14, 16, 23, 24, 28, 29, 41, 49, 56, 60, 75};
  const double starts[][5] = {
      {0.5, 100, 100, 1000, 1000}, {0.4, 10, 10, 100, 100}, {0.3, -50, 30, 200, 600}};
  for (const auto& s : starts) {
    emix::Model m;
    m.n_components = 2;
    m.n_features = 1;
    m.weights = {s[0], 1 - s[0]};
    m.means = {s[1], s[2]};
    m.covariances = {s[3], s[4]};
    emix::FitOptions o = fit_options(m);
    o.max_iter = 10;
    o.reg_covar = 0;
    o.engine.device = emix::Device::kCpu;
    const emix::DataView view = emix::DataView::host(points.data(), 15, 1);
    const emix::FitReport cpu = emix::fit(view, o);
    o.engine.device = emix::Device::kGpu;
    const emix::FitReport gpu = emix::fit(view, o);
    SCOPED_TRACE("start alpha1 = " + std::to_string(s[0]));
    EXPECT_LE(array_difference(gpu.model.weights, cpu.model.weights), 1e-9);
    EXPECT_LE(array_difference(gpu.model.means, cpu.model.means), 1e-9);
    EXPECT_LE(array_difference(gpu.model.covariances, cpu.model.covariances), 1e-9);
    EXPECT_NEAR(gpu.log_likelihood, cpu.log_likelihood, 1e-9 * std::abs(cpu.log_likelihood));
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes and failures

#if EMIX_HAS_CUDA
// More than 2^31 rows in device memory (float32, D = 1): zeros, with a block of 2^20 ones that
// straddles row 2^31. A 32-bit row index anywhere would misplace the ones. The model's numbers
// are exact in float (c0 = 0.5, x - c0 = +-0.5), so the statistics have a closed form.
TEST(GpuLarge, MoreThan2To31Rows) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const std::int64_t n = (std::int64_t{1} << 31) + (std::int64_t{1} << 20);
  const std::int64_t n_ones = std::int64_t{1} << 20;
  const std::int64_t first_one = (std::int64_t{1} << 31) - n_ones / 2;
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
  std::size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  if (free_bytes < bytes + (std::size_t{2} << 30)) {
    GTEST_SKIP() << "needs " << (bytes >> 20) + 2048 << " MiB of free device memory";
  }
  void* x = nullptr;
  ASSERT_EQ(cudaMalloc(&x, bytes), cudaSuccess);
  std::unique_ptr<void, decltype(&cudaFree)> owner(x, &cudaFree);
  ASSERT_EQ(cudaMemset(x, 0, bytes), cudaSuccess);
  const std::vector<float> ones(static_cast<std::size_t>(n_ones), 1.0f);
  ASSERT_EQ(cudaMemcpy(static_cast<float*>(x) + first_one, ones.data(), n_ones * sizeof(float),
                       cudaMemcpyHostToDevice),
            cudaSuccess);

  emix::Model m;
  m.covariance = Covariance::kDiag;
  m.n_components = 2;
  m.n_features = 1;
  m.weights = {0.5, 0.5};
  m.means = {-1.0, 2.0};
  m.covariances = {1.0, 4.0};
  const emix::PreparedModel prepared = emix::prepare(m);
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  auto gpu =
      emix::make_gpu_engine(emix::DataView::device(static_cast<const float*>(x), n, 1), nullptr, o);
  const std::vector<double> stats = statistics(*gpu, prepared);

  // Closed form: n0 rows at 0 and n1 at 1.
  const double pi = std::acos(-1.0);
  const auto joint = [&](int c, double v) {
    const double var = m.covariances[c], mu = m.means[c];
    return std::log(m.weights[c]) - 0.5 * std::log(2 * pi * var) - 0.5 * (v - mu) * (v - mu) / var;
  };
  const double n1 = static_cast<double>(n_ones), n0 = static_cast<double>(n - n_ones);
  std::vector<double> expected(prepared.layout.size(), 0.0);
  for (double v : {0.0, 1.0}) {
    const double count = v == 0.0 ? n0 : n1;
    const double a = joint(0, v), b = joint(1, v);
    const double lse = std::max(a, b) + std::log1p(std::exp(-std::abs(a - b)));
    expected[0] += count * lse;
    expected[1] += count;
    for (int c = 0; c < 2; ++c) {
      const double log_r = (c == 0 ? a : b) - lse;
      const double r = std::exp(log_r);
      const double diff = v - m.means[c];
      expected[emix::StatisticsLayout::kEntropy] -= count * r * log_r;
      expected[prepared.layout.nk() + c] += count * r;
      expected[prepared.layout.s() + c] += count * r * diff;
      expected[prepared.layout.q() + c] += count * r * diff * diff;
    }
  }
  // The kernel computes in float and sums each tile's rows in float: 1e-5 relative, as for
  // every float32 statistic. Misplacing the 2^20 ones would move the log-likelihood and N_1 by
  // about 5e-4 relative.
  for (std::size_t e = 0; e < expected.size(); ++e) {
    EXPECT_NEAR(stats[e], expected[e], 1e-5 * std::abs(expected[e])) << "element " << e;
  }
}
#endif

void expect_out_of_memory(emix::Engine& engine, const emix::PreparedModel& prepared) {
  std::vector<double> stats(prepared.layout.size());
  try {
    engine.accumulate(prepared, stats.data());
    ADD_FAILURE() << "no OutOfMemory";
  } catch (const emix::OutOfMemory& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("device_memory_limit"), std::string::npos) << what;
    EXPECT_NE(what.find("bytes"), std::string::npos) << what;
  }
}

TEST(GpuErrors, TooSmallAMemoryLimitIsAnOutOfMemoryErrorNotACrash) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 4, 3, 1000, 55, false);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  o.device_memory_limit = 64;  // bytes: less than the model's 4 x (1 + 3 + 3) doubles
  for (Input input : {Input::kOneChunk, Input::kDevice}) {
    SCOPED_TRACE(to_string(input));
    const GpuData data = gpu_data(p, DType::kFloat64, input);
    expect_out_of_memory(*emix::make_gpu_engine(data.view, nullptr, o), prepared);
  }
}

// Data already on the device need no staging: the single-pass kernel then runs in as few
// blocks as the limit allows, down to one partial sum, where host data have no room for a chunk.
TEST(GpuErrors, DeviceDataFitALimitThatHostDataDoNot) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 4, 3, 1000, 55, false);
  const emix::PreparedModel prepared = emix::prepare(p.model);
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  o.device_memory_limit = 1024;  // bytes: no chunk of 32 host rows fits beside the buffers
  {
    const GpuData host = gpu_data(p, DType::kFloat64, Input::kOneChunk);
    expect_out_of_memory(*emix::make_gpu_engine(host.view, nullptr, o), prepared);
  }
  const GpuData device = gpu_data(p, DType::kFloat64, Input::kDevice);
  auto gpu = emix::make_gpu_engine(device.view, nullptr, o);
  EXPECT_TRUE(stats_close(prepared, statistics(*gpu, prepared),
                          cpu_statistics(p, DType::kFloat64, prepared), 1e-12));
#if EMIX_HAS_CUDA
  EXPECT_LE(emix::gpu::engine_info(*gpu).device_bytes, o.device_memory_limit);
#endif
}

TEST(GpuErrors, BadArgumentsAreInvalidArgument) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kFull, 2, 3, 100, 56, false);
  emix::EngineOptions o;
  o.device = emix::Device::kGpu;
  const emix::DataView view = emix::DataView::host(p.x.data(), p.n, p.d);
  auto gpu = emix::make_gpu_engine(view, nullptr, o);
  // A model of another width.
  const emix::Model other =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 4, 1);
  std::vector<double> stats(emix::prepare(other).layout.size());
  EXPECT_THROW(gpu->accumulate(emix::prepare(other), stats.data()), emix::InvalidArgument);
  // A negative sample weight.
  std::vector<double> w(static_cast<std::size_t>(p.n), 1.0);
  w[17] = -1.0;
  EXPECT_THROW(emix::make_gpu_engine(view, w.data(), o), emix::InvalidArgument);
  // A "device" view of host memory.
  const emix::DataView fake = emix::DataView::device(p.x.data(), p.n, p.d);
  EXPECT_THROW(emix::make_gpu_engine(fake, nullptr, o), emix::InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// A few small cases for compute-sanitizer (scripts/gpu-check runs --gtest_filter='GpuSanitize*'):
// every kernel, both element types, chunk tails, streaming and device input.

TEST(GpuSanitize, EveryPathOnSmallData) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  for (const FamilyCase& f : kFamilies) {
    for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
      for (Input input : {Input::kChunkedWeighted, Input::kDevice, Input::kStreamed}) {
        for (int d : {4, 5, 40}) {
          const std::uint64_t seed = 606;
          const int k = d == 4 ? 4 : 3;  // K = D = 4: the register kernel's exact form
          SCOPED_TRACE(emix::testing::describe(f.family, f.covariance) + " " +
                       emix::to_string(dtype) + " " + to_string(input) + " d " + std::to_string(d) +
                       " seed 606");
          const Problem p = make_problem(f.family, f.covariance, k, d, 100, seed, true);
          const emix::PreparedModel prepared = emix::prepare(p.model);
          const GpuData data = gpu_data(p, dtype, input);
#if EMIX_HAS_CUDA
          // The single-pass kernel in 32-row tiles, with every variant GpuSettings turns on, the
          // general path, and (streamed) staging.
          std::vector<std::unique_ptr<emix::Engine>> engines;
          engines.push_back(engine_on(data, p, input, on_path(emix::gpu::GpuPath::kFused, 32)));
          engines.push_back(
              engine_on(data, p, input, every_variant(on_path(emix::gpu::GpuPath::kFused, 32))));
          engines.push_back(engine_on(data, p, input, on_path(emix::gpu::GpuPath::kGeneral)));
          if (input == Input::kStreamed) {
            emix::gpu::GpuSettings staged = on_path(emix::gpu::GpuPath::kAuto);
            staged.register_host_memory = false;
            engines.push_back(engine_on(data, p, input, staged));
            // Beside engines that registered the same rows: it stages all the same (it took
            // their registration once, and the sanitizers never saw the staging path).
            EXPECT_TRUE(emix::gpu::engine_info(*engines.back()).staging);
          }
#else
          std::vector<std::unique_ptr<emix::Engine>> engines;
          engines.push_back(emix::make_gpu_engine(data.view, p.w(), gpu_options(input)));
#endif
          for (auto& gpu : engines) {
            const std::vector<double> stats = statistics(*gpu, prepared);
            EXPECT_TRUE(stats_close(prepared, stats, cpu_statistics(p, dtype, prepared),
                                    dtype == DType::kFloat64 ? 1e-12 : 1e-5));
            std::vector<double> lp(static_cast<std::size_t>(p.n)), resp(lp.size() * k);
            std::vector<std::int32_t> labels(lp.size());
            gpu->evaluate(prepared, lp.data(), resp.data(), labels.data());
            const std::vector<std::int64_t> idx = {0, 99, 42};
            std::vector<double> rows(idx.size() * p.d);
            gpu->gather_rows(idx.data(), 3, rows.data());
          }
        }
      }
    }
  }
}

#if EMIX_HAS_CUDA
// The C API with device data: the fit runs on the GPU and per-row results land in device
// buffers, equal to the host path's.
TEST(GpuCapi, DeviceDataAndDeviceResults) {
  if (!emix::gpu_available()) GTEST_SKIP() << emix::gpu_unavailable_reason();
  const Problem p = make_problem(Family::kGaussian, Covariance::kDiag, 3, 4, 500, 811, false);
  const std::size_t n = 500, k = 3;
  const DeviceCopy x(p.x.data(), p.x.size() * sizeof(double));
  emix_options* options = nullptr;
  ASSERT_EQ(emix_options_create(&options), EMIX_OK);
  emix_options_set_n_components(options, 3);
  emix_options_set_covariance(options, EMIX_DIAG);
  emix_options_set_max_iter(options, 10);
  emix_model* model = nullptr;
  emix_fit_result result{};
  ASSERT_EQ(emix_fit(options, x.get(), 500, 4, EMIX_FLOAT64, EMIX_DEVICE, nullptr, &model, &result),
            EMIX_OK)
      << emix_last_error();
  const std::vector<std::int32_t> zeros_i(n, -1);
  const std::vector<double> zeros_d(n * k, 0.0);
  const DeviceCopy labels(zeros_i.data(), n * sizeof(std::int32_t));
  const DeviceCopy resp(zeros_d.data(), n * k * sizeof(double));
  auto* d_labels = static_cast<std::int32_t*>(const_cast<void*>(labels.get()));
  auto* d_resp = static_cast<double*>(const_cast<void*>(resp.get()));
  ASSERT_EQ(emix_predict(model, options, x.get(), 500, 4, EMIX_FLOAT64, EMIX_DEVICE, d_labels),
            EMIX_OK)
      << emix_last_error();
  ASSERT_EQ(emix_predict_proba(model, options, x.get(), 500, 4, EMIX_FLOAT64, EMIX_DEVICE, d_resp),
            EMIX_OK)
      << emix_last_error();
  std::vector<std::int32_t> got_labels(n), host_labels(n);
  std::vector<double> got_resp(n * k), host_resp(n * k);
  ASSERT_EQ(cudaMemcpy(got_labels.data(), d_labels, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got_resp.data(), d_resp, n * k * 8, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(
      emix_predict(model, options, p.x.data(), 500, 4, EMIX_FLOAT64, EMIX_HOST, host_labels.data()),
      EMIX_OK);
  ASSERT_EQ(emix_predict_proba(model, options, p.x.data(), 500, 4, EMIX_FLOAT64, EMIX_HOST,
                               host_resp.data()),
            EMIX_OK);
  EXPECT_EQ(got_labels, host_labels);
  EXPECT_EQ(got_resp, host_resp);
  // A host buffer for device data's results is an error, not a crash.
  EXPECT_EQ(
      emix_predict(model, options, x.get(), 500, 4, EMIX_FLOAT64, EMIX_DEVICE, host_labels.data()),
      EMIX_INVALID_ARGUMENT);
  emix_model_destroy(model);
  emix_options_destroy(options);
}
#endif

}  // namespace
