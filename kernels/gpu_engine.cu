// The GPU engine: the E-step and its sufficient statistics on one CUDA device.
//
// Two paths (engine_plan.hpp chooses, per model shape):
//   single-pass  fused_estep.cuh: each tile of rows is read once; log-densities, log-sum-exp,
//                responsibilities and every statistic in one kernel; each block sums into its
//                own slice, the slices are added in a fixed order (reduce_partials).
//   general      general_estep.hpp: rows staged column-major, log-densities by cuBLAS (full /
//                tied) or a kernel, one kernel per row, partial statistics per block of rows,
//                the full scatter as a batched GEMM; for shapes whose tile does not fit shared
//                memory.
// Data: the caller's device memory in place; host data uploaded once when they fit, else
// streamed every call in chunks, stream_slots at a time, copies on their own stream.
// Every buffer comes from one table (plan_buffers). Only the statistics (layout.size() doubles)
// come back to the host. Nothing of size N x K is held.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

#include "core/engine.hpp"
#include "core/page_ranges.hpp"
#include "core/prepared_model.hpp"
#include "core/statistics.hpp"
#include "emix/errors.hpp"
#include "kernels/cuda_utils.cuh"
#include "kernels/engine_plan.hpp"
#include "kernels/fused_estep.hpp"
#include "kernels/fused_params.hpp"
#include "kernels/general_estep.hpp"
#include "kernels/gpu_engine.hpp"

namespace emix::gpu {
namespace {

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
// Per-chunk buffers aimed at when options.chunk_rows is 0 (general path; per-row outputs). A
// fixed size rather than a share of free memory, so that the chunking, hence the order of the
// sums, does not change from run to run. (Only a budget too small for it changes them: free
// memory that another process takes, where device_memory_limit is 0; docs/architecture.md.)
constexpr std::int64_t kScratchTarget = 256 * kMiB;
constexpr std::int64_t kStreamChunkBytes = 64 * kMiB;  // X per streamed chunk
constexpr int kStreamSlots = 3;                        // streamed chunks in flight
constexpr std::int64_t kMemoryMargin = 256 * kMiB;     // left free for the context and others
// Host data are uploaded only when this much (or a sixteenth of the budget) is left beside them.
constexpr std::int64_t kResidentReserve = 64 * kMiB;
constexpr std::int64_t kMaxGeneralChunkRows = std::int64_t{1} << 24;
constexpr std::int64_t kMinChunkRows = 32;
constexpr std::int64_t kCublasWorkspace = 32 * kMiB;  // NVIDIA's recommendation for Hopper
constexpr std::int64_t kGatherBatch = std::int64_t{1} << 16;
constexpr std::int64_t kGatherBytes = 64 * kMiB;  // device memory gather_rows may take

// The host pages this process's engines registered (page_ranges.hpp), under one lock. Never
// destroyed: an engine held by a static object (a program's global) ends after the statics of
// this file would have, and still releases its ranges here.
struct HostRegistry {
  std::mutex mutex;
  PageRanges ranges;
};
HostRegistry& host_registry() {
  static HostRegistry* const registry = new HostRegistry;
  return *registry;
}

void unregister_pages(std::uintptr_t first) noexcept {
  EMIX_CUDA_TRY_NOTHROW(cudaHostUnregister(reinterpret_cast<void*>(first)));
}

enum class Mode { kFull, kTied, kDiag, kLinear };

Mode mode_of(const PreparedModel& model) {
  if (model.family != Family::kGaussian) return Mode::kLinear;
  switch (model.covariance) {
    case Covariance::kFull:
      return Mode::kFull;
    case Covariance::kTied:
      return Mode::kTied;
    case Covariance::kDiag:
    case Covariance::kSpherical:
      return Mode::kDiag;
  }
  throw InvalidArgument("GPU engine: unknown covariance type");
}

bool uses_gemm(Mode mode) { return mode == Mode::kFull || mode == Mode::kTied; }

std::int64_t round_up(std::int64_t a, std::int64_t b) { return (a + b - 1) / b * b; }

template <typename T>
struct Blas;

template <>
struct Blas<float> {
  static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                             int n, int k, const float* alpha, const float* a, int lda,
                             const float* b, int ldb, const float* beta, float* c, int ldc) {
    return cublas().sgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const float* alpha, const float* a,
                                     int lda, long long sa, const float* b, int ldb, long long sb,
                                     const float* beta, float* c, int ldc, long long sc,
                                     int batch) {
    return cublas().sgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta,
                                          c, ldc, sc, batch);
  }
};

template <>
struct Blas<double> {
  static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                             int n, int k, const double* alpha, const double* a, int lda,
                             const double* b, int ldb, const double* beta, double* c, int ldc) {
    return cublas().dgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const double* alpha, const double* a,
                                     int lda, long long sa, const double* b, int ldb, long long sb,
                                     const double* beta, double* c, int ldc, long long sc,
                                     int batch) {
    return cublas().dgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta,
                                          c, ldc, sc, batch);
  }
};

void validate_input(const DataView& x, const double* sample_weight) {
  if (x.rows < 1 || x.cols < 1) {
    throw InvalidArgument("GPU engine: the data have " + std::to_string(x.rows) + " rows and " +
                          std::to_string(x.cols) + " columns; at least one of each is needed");
  }
  if (x.data == nullptr) throw InvalidArgument("GPU engine: the data pointer is null");
  if (x.cols > (1 << 20)) {
    throw InvalidArgument("GPU engine: " + std::to_string(x.cols) +
                          " columns is more than the 2^20 supported");
  }
  if (x.rows > std::numeric_limits<std::int64_t>::max() / x.cols / 8) {
    throw InvalidArgument("GPU engine: " + std::to_string(x.rows) + " x " + std::to_string(x.cols) +
                          " elements overflow a 64-bit size");
  }
  if (sample_weight != nullptr) {
    for (std::int64_t n = 0; n < x.rows; ++n) {
      const double w = sample_weight[n];
      if (!(w >= 0.0) || !std::isfinite(w)) {
        throw InvalidArgument("GPU engine: sample_weight[" + std::to_string(n) +
                              "] = " + std::to_string(w) +
                              ": sample weights must be finite and non-negative");
      }
    }
  }
}

bool is_page_locked(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

class GpuEngineBase : public Engine {
 public:
  virtual EngineInfo info() const = 0;
};

template <typename T>
class GpuEngine final : public GpuEngineBase {
 public:
  GpuEngine(const DataView& x, const double* sample_weight, const EngineOptions& options,
            const GpuSettings& settings);
  ~GpuEngine() override;

  // "gpu (NVIDIA H200)", or with kernel variants in effect "gpu (NVIDIA H200; variants
  // row_registers)": what ran, for fit reports and benchmarks.
  std::string name() const override {
    const std::string variants = variant_names(variants_in_effect());
    return "gpu (" + device_name_ + (variants.empty() ? "" : "; variants " + variants) + ")";
  }
  void accumulate(const PreparedModel& model, double* stats) override;
  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override;
  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override;
  EngineInfo info() const override;

 private:
  // The buffers depend on the model's shape and on whether per-row outputs were asked for.
  struct Key {
    int k = 0;
    Family family = Family::kGaussian;
    Covariance covariance = Covariance::kFull;
    int trials = 1;  // sizes the binomial coefficients' table
    bool outputs = false;
    // Whether a float model takes the general path (needs_double): not why, whose wording holds
    // the model's terms, new every iteration.
    bool in_double = false;
    bool operator==(const Key& o) const {
      return k == o.k && family == o.family && covariance == o.covariance && trials == o.trials &&
             outputs == o.outputs && in_double == o.in_double;
    }
  };

  void check_model(const PreparedModel& model) const;
  void configure(const PreparedModel& model, bool outputs);
  std::string needs_double(const PreparedModel& model) const;
  // The variants the last model's plan took (a float64 or full model takes no register kernel,
  // a plan without row groups no block_combine); before any call, those asked for.
  GpuSettings variants_in_effect() const;
  BufferPlanInputs plan_inputs(const PreparedModel& model, bool outputs, std::int64_t rows,
                               int slices) const;
  std::int64_t budget() const;
  void allocate(const BufferPlan& plan);
  void release_working();
  void start_streaming();
  void unregister_host_memory() noexcept;
  void ensure_cublas();
  std::int64_t launch_rows(bool evaluating) const;

  template <typename U>
  U* dev(Buf b) const {
    return reinterpret_cast<U*>(buffers_[static_cast<int>(b)].data());
  }
  template <typename U>
  U* pinned(Buf b) const {
    return reinterpret_cast<U*>(pinned_buffers_[static_cast<int>(b)].data());
  }

  template <typename Fn>
  void for_each_chunk(std::int64_t rows, Fn&& fn);

  FusedArgs<T, T> fused_args(const PreparedModel& model);
  void upload_fused_params(const PreparedModel& model);
  void accumulate_fused(const PreparedModel& model, double* stats);
  void evaluate_fused(const PreparedModel& model, double* log_prob, double* resp,
                      std::int32_t* labels);

  void upload_general_params(const PreparedModel& model);
  void general_log_joint(const PreparedModel& model, std::int64_t padded);
  void accumulate_general(const PreparedModel& model, double* stats);
  void evaluate_general(const PreparedModel& model, double* log_prob, double* resp,
                        std::int32_t* labels);

  // Offsets into the general path's kParams (see upload_general_params).
  const double* g_log_w() const { return dev<double>(Buf::kParams); }
  const double* g_log_norm() const { return g_log_w() + key_.k; }
  const double* g_shift() const { return g_log_w() + 2 * key_.k; }
  const double* g_a() const { return g_shift() + std::int64_t{key_.k} * d_; }
  const double* g_b() const { return g_a() + std::int64_t{key_.k} * d_; }
  const T* g_c0() const {
    return reinterpret_cast<const T*>(dev<unsigned char>(Buf::kParams) +
                                      general_param_typed_offset(key_.k, d_));
  }
  const T* g_u() const { return g_c0() + d_; }

  DataView x_;
  const double* h_weights_;
  EngineOptions options_;
  GpuSettings settings_;
  std::int64_t n_ = 0;
  int d_ = 0;
  int device_ = 0;
  std::string device_name_;
  std::int64_t max_shared_ = 0;
  bool device_input_ = false;
  bool streaming_ = false;
  // The registry's ranges this engine holds (host_registry), released at its end; whether x's
  // pages are page-locked by emix for it.
  std::vector<std::uintptr_t> held_ranges_;
  bool x_registered_ = false;
  bool staging_ = false;

  bool configured_ = false;
  bool weights_outside_float_ = false;  // weights_outside_float_range, for float engines
  int scatter_exponent_ = 0;            // of the general path's Z^T Z (scatter_exponent)
  Key key_;
  PathChoice path_;
  int fused_slices_ = 0;         // blocks of the widest accumulate launch (fused)
  int eval_blocks_ = 0;          // blocks of the widest evaluate launch (fused)
  std::int64_t chunk_rows_ = 0;  // rows of the per-chunk buffers
  std::int64_t last_launch_rows_ = 0;
  bool last_fused_ = false;
  BufferPlan plan_;

  // Declared before the buffers so that they outlive them.
  Stream compute_;
  Stream copy_;
  Event copy_done_[kStreamSlots];
  Event compute_done_[kStreamSlots];
  DeviceBuffer<unsigned char> d_blas_workspace_;  // outlives the handle that uses it
  std::unique_ptr<CublasHandle> blas_;

  std::array<DeviceBuffer<unsigned char>, static_cast<int>(Buf::kCount)> buffers_;
  std::array<PinnedBuffer<unsigned char>, static_cast<int>(Buf::kCount)> pinned_buffers_;
  std::vector<unsigned char> h_params_;
  // The single-pass kernels' parameters as last uploaded (the register kernel takes them in its
  // launch): a member, like h_params_, because a copy of its binomial coefficients' table from
  // memory that happens to be page-locked (a page shared with registered host data) runs
  // asynchronously and must find its source alive.
  FusedParams<T> h_fused_params_;
};

template <typename T>
GpuEngine<T>::GpuEngine(const DataView& x, const double* sample_weight,
                        const EngineOptions& options, const GpuSettings& settings)
    : x_(x),
      h_weights_(sample_weight),
      options_(options),
      settings_(settings),
      n_(x.rows),
      d_(static_cast<int>(x.cols)) {
  weights_outside_float_ = sizeof(T) == 4 && weights_outside_float_range(sample_weight, n_);
  if (weights_outside_float_) {
    double largest = 0;
    for (std::int64_t i = 0; i < n_; ++i) largest = std::max(largest, sample_weight[i]);
    scatter_exponent_ = scatter_exponent(largest);
  }
  EMIX_CUDA_TRY(cudaGetDevice(&device_));
  device_name_ = device_name();
  max_shared_ = fused_max_shared_bytes();
  device_input_ = x.space == MemorySpace::kDevice;
  if (device_input_) {
    cudaPointerAttributes attributes{};
    EMIX_CUDA_TRY(cudaPointerGetAttributes(&attributes, x.data));
    const bool on_device =
        attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
    if (!on_device || (attributes.type == cudaMemoryTypeDevice && attributes.device != device_)) {
      throw InvalidArgument(
          "GPU engine: the data view says device memory, but its pointer is not memory of the "
          "current CUDA device (" +
          std::to_string(device_) + ")");
    }
    // The caller's own work that produced the data may still be in flight on any stream (a
    // synchronous cudaMemcpy from pageable memory may return before its DMA ends), and this
    // engine's non-blocking streams do not wait for the legacy default stream: wait once here.
    EMIX_CUDA_TRY(cudaDeviceSynchronize());
  }
  if (options.device_memory_limit < 0) {
    throw InvalidArgument("GPU engine: device_memory_limit = " +
                          std::to_string(options.device_memory_limit) + " is negative");
  }
  if (options.chunk_rows < 0) {
    throw InvalidArgument("GPU engine: chunk_rows = " + std::to_string(options.chunk_rows) +
                          " is negative");
  }
  const std::int64_t limit = budget();
  const std::int64_t x_bytes = n_ * d_ * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t w_bytes = sample_weight != nullptr ? n_ * 8 : 0;
  const cudaStream_t s = compute_.get();
  DeviceBuffer<unsigned char>& data = buffers_[static_cast<int>(Buf::kData)];
  DeviceBuffer<unsigned char>& weights = buffers_[static_cast<int>(Buf::kWeights)];
  if (device_input_) {
    if (sample_weight != nullptr) {
      weights.allocate(w_bytes, describe(Buf::kWeights));
      EMIX_CUDA_TRY(cudaMemcpyAsync(weights.data(), sample_weight,
                                    static_cast<std::size_t>(w_bytes), cudaMemcpyHostToDevice, s));
    }
  } else if (x_bytes + w_bytes + std::max(kResidentReserve, limit / 16) <= limit) {
    try {
      data.allocate(x_bytes, describe(Buf::kData));
      if (sample_weight != nullptr) weights.allocate(w_bytes, describe(Buf::kWeights));
    } catch (const OutOfMemory&) {
      data.reset();
      weights.reset();
    }
    if (data.data() != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(data.data(), x.data, static_cast<std::size_t>(x_bytes),
                                    cudaMemcpyHostToDevice, s));
      if (sample_weight != nullptr) {
        EMIX_CUDA_TRY(cudaMemcpyAsync(weights.data(), sample_weight,
                                      static_cast<std::size_t>(w_bytes), cudaMemcpyHostToDevice,
                                      s));
      }
    }
  }
  try {
    if (!device_input_ && data.data() == nullptr) start_streaming();
    compute_.synchronize();
  } catch (...) {
    unregister_host_memory();  // no destructor runs for a constructor that throws
    throw;
  }
}

template <typename T>
void GpuEngine<T>::unregister_host_memory() noexcept {
  if (held_ranges_.empty()) return;
  HostRegistry& registry = host_registry();
  const std::lock_guard<std::mutex> guard(registry.mutex);
  registry.ranges.release(held_ranges_, unregister_pages);
  held_ranges_.clear();
  x_registered_ = false;
}

template <typename T>
GpuEngine<T>::~GpuEngine() {
  // Another device may be current here (engines on several GPUs in one thread): the memory and
  // the cuBLAS handle are released with the engine's device current, then the caller's is
  // current again. (The streams and events, members, are destroyed after this body.)
  int previous = device_;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                        cudaSetDevice(device_) == cudaSuccess;
  // Work still in flight may use the buffers about to be freed, and the registered memory.
  EMIX_CUDA_TRY_NOTHROW(cudaStreamSynchronize(copy_.get()));
  EMIX_CUDA_TRY_NOTHROW(cudaStreamSynchronize(compute_.get()));
  unregister_host_memory();
  release_working();
  buffers_[static_cast<int>(Buf::kData)].reset();
  buffers_[static_cast<int>(Buf::kWeights)].reset();
  blas_.reset();
  d_blas_workspace_.reset();
  if (switched) EMIX_CUDA_TRY_NOTHROW(cudaSetDevice(previous));
}

// Streamed chunks copy straight from page-locked host memory: the caller's, or the caller's
// pageable memory registered here for the engine's lifetime. Where registration fails (locked
// memory limits), each chunk goes through pinned staging buffers instead.
template <typename T>
void GpuEngine<T>::start_streaming() {
  streaming_ = true;
  buffers_[static_cast<int>(Buf::kData)].reset();
  buffers_[static_cast<int>(Buf::kWeights)].reset();
  // Registration pins whole pages, and registering a page twice fails: the weights may begin on
  // x's last page (two small heap arrays), another engine may stream from the same rows or from
  // the rows beside them. The registry shares the pages (page_ranges.hpp).
  int read_only_supported = 0;
  if (cudaDeviceGetAttribute(&read_only_supported, cudaDevAttrHostRegisterReadOnlySupported,
                             device_) != cudaSuccess) {
    (void)cudaGetLastError();
    read_only_supported = 0;
  }
  PageRanges::Pinning pinning;
  pinning.page_size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  pinning.pin = [read_only_supported](std::uintptr_t first, std::uintptr_t bytes) {
    void* const pages = reinterpret_cast<void*>(first);
    if (cudaHostRegister(pages, bytes, cudaHostRegisterDefault) == cudaSuccess) return true;
    (void)cudaGetLastError();
    // A read-only mapping (a .npy memory-mapped for reading) registers only as read-only, which
    // is all the engine, reading it, needs; portable, as the default is.
    if (read_only_supported != 0 &&
        cudaHostRegister(pages, bytes, cudaHostRegisterPortable | cudaHostRegisterReadOnly) ==
            cudaSuccess) {
      return true;
    }
    (void)cudaGetLastError();
    return false;  // locked-memory limits: the engine stages instead
  };
  pinning.unpin = unregister_pages;
  pinning.locked = [](std::uintptr_t address) {
    return is_page_locked(reinterpret_cast<const void*>(address));
  };
  HostRegistry& registry = host_registry();
  const std::lock_guard<std::mutex> guard(registry.mutex);
  const auto lock = [&](const void* p, std::int64_t bytes) {
    const auto first = reinterpret_cast<std::uintptr_t>(p);
    const auto size = static_cast<std::uintptr_t>(std::max<std::int64_t>(0, bytes));
    if (p == nullptr || size == 0) return true;
    if (!settings_.register_host_memory) {
      // Staged, unless the pages are the caller's own page-locked memory: another engine's
      // registration is not taken, so that this setting gives the staging path.
      return !registry.ranges.meets_a_range(first, size, pinning.page_size) &&
             pinning.locked(first) && pinning.locked(first + size - 1);
    }
    return registry.ranges.acquire(first, size, pinning, held_ranges_);
  };
  const bool x_locked = lock(x_.data, n_ * d_ * static_cast<std::int64_t>(sizeof(T)));
  x_registered_ = x_locked && !held_ranges_.empty();
  const bool w_locked = lock(h_weights_, n_ * 8);
  staging_ = !(x_locked && w_locked);
}

template <typename T>
EngineInfo GpuEngine<T>::info() const {
  EngineInfo info;
  info.device_input = device_input_;
  info.streaming = streaming_;
  info.host_registered = x_registered_;
  info.staging = streaming_ && staging_;
  info.stream_slots = streaming_ ? kStreamSlots : 0;
  info.chunk_rows = last_launch_rows_;
  for (const auto& b : buffers_) info.device_bytes += b.size();
  for (const auto& b : pinned_buffers_) info.pinned_bytes += b.size();
  info.device_bytes += d_blas_workspace_.bytes();
  info.fused = last_fused_;
  if (configured_ && path_.fused) {
    info.tile_rows = path_.plan.rows;
    info.blocks = fused_slices_;
    info.register_kernel = path_.plan.rows_in_registers;
  }
  if (configured_ && !path_.fused) info.general_reason = path_.reason;
  return info;
}

template <typename T>
void GpuEngine<T>::check_model(const PreparedModel& m) const {
  const auto fail = [](const std::string& what) {
    throw InvalidArgument("GPU engine: prepared model: " + what);
  };
  if (m.k < 1) fail("K = " + std::to_string(m.k) + " components; at least one is needed");
  if (m.d != d_) {
    fail("the model has D = " + std::to_string(m.d) + " features but the data have " +
         std::to_string(d_) + " columns");
  }
  if (static_cast<std::int64_t>(m.k) * m.d > INT_MAX) {
    fail("K x D = " + std::to_string(static_cast<std::int64_t>(m.k) * m.d) +
         " is more than the 2^31 - 1 supported");
  }
  if (m.layout.k != m.k || m.layout.d != m.d) fail("its statistics layout has another shape");
  const std::size_t k = static_cast<std::size_t>(m.k);
  const std::size_t kd = k * static_cast<std::size_t>(m.d);
  const auto expect = [&](const std::vector<double>& v, std::size_t size, const char* name) {
    if (v.size() != size) {
      fail(std::string(name) + " has " + std::to_string(v.size()) + " values, expected " +
           std::to_string(size));
    }
  };
  expect(m.log_weights, k, "log_weights");
  expect(m.log_norm, k, "log_norm");
  expect(m.centres, kd, "centres");
  if (m.family == Family::kGaussian) {
    const std::size_t dd = static_cast<std::size_t>(m.d) * static_cast<std::size_t>(m.d);
    std::size_t prec = 0;
    switch (m.covariance) {
      case Covariance::kFull:
        prec = k * dd;
        break;
      case Covariance::kTied:
        prec = dd;
        break;
      case Covariance::kDiag:
        prec = kd;
        break;
      case Covariance::kSpherical:
        prec = k;
        break;
    }
    expect(m.prec_chol, prec, "prec_chol");
    expect(m.means, kd, "means");
  } else {
    expect(m.logit, kd, "logit");
    if (m.trials < 1) fail("trials = " + std::to_string(m.trials) + " is below 1");
  }
}

template <typename T>
std::int64_t GpuEngine<T>::budget() const {
  if (options_.device_memory_limit > 0) return options_.device_memory_limit;
  std::size_t free_bytes = 0, total_bytes = 0;
  EMIX_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
  // What this engine already holds counts as available to it.
  std::int64_t held = 0;
  for (const auto& b : buffers_) held += b.size();
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(free_bytes) + held - kMemoryMargin);
}

template <typename T>
BufferPlanInputs GpuEngine<T>::plan_inputs(const PreparedModel& m, bool outputs, std::int64_t rows,
                                           int slices) const {
  BufferPlanInputs in;
  in.fused = path_.fused;
  in.fused_plan = path_.plan;
  in.fused_slices = slices;
  in.data_size = static_cast<int>(sizeof(T));
  in.k = m.k;
  in.d = d_;
  in.family = m.family;
  in.covariance = m.covariance;
  in.stats_size =
      static_cast<std::int64_t>(path_.fused ? m.layout.packed().size() : m.layout.size());
  in.trials = m.family == Family::kBinomial ? m.trials : 1;
  const bool resident = !device_input_ && !streaming_;
  in.resident_rows = resident ? n_ : 0;
  in.resident_weights = (resident || device_input_) && h_weights_ != nullptr;
  in.rows = n_;
  in.chunk_rows = rows;
  in.outputs = outputs;
  in.stream_slots = streaming_ ? kStreamSlots : 0;
  in.staging = staging_;
  in.weights = h_weights_ != nullptr;
  return in;
}

template <typename T>
void GpuEngine<T>::release_working() {
  for (int i = 0; i < static_cast<int>(Buf::kCount); ++i) {
    const Buf b = static_cast<Buf>(i);
    if (b != Buf::kData && b != Buf::kWeights) buffers_[static_cast<std::size_t>(i)].reset();
    pinned_buffers_[static_cast<std::size_t>(i)].reset();
  }
  configured_ = false;
}

template <typename T>
void GpuEngine<T>::allocate(const BufferPlan& plan) {
  for (int i = 0; i < static_cast<int>(Buf::kCount); ++i) {
    const Buf b = static_cast<Buf>(i);
    if (b == Buf::kData || b == Buf::kWeights) continue;  // held since construction
    const std::int64_t bytes = plan[b];
    if (is_pinned(b)) {
      pinned_buffers_[static_cast<std::size_t>(i)].allocate(bytes, describe(b));
    } else {
      buffers_[static_cast<std::size_t>(i)].allocate(bytes, describe(b));
    }
  }
}

template <typename T>
void GpuEngine<T>::ensure_cublas() {
  if (blas_ != nullptr) return;
  auto blas = std::make_unique<CublasHandle>();
  const cublasHandle_t h = blas->get();
  // cublasSetStream resets the workspace, so the workspace is set after it. A fixed workspace,
  // stream and handle, and no atomics, make cuBLAS's results bitwise reproducible.
  EMIX_CUBLAS_TRY(cublas().set_stream(h, compute_.get()));
  d_blas_workspace_.allocate(kCublasWorkspace, "the cuBLAS workspace");
  EMIX_CUBLAS_TRY(cublas().set_workspace(h, d_blas_workspace_.data(),
                                         static_cast<std::size_t>(d_blas_workspace_.bytes())));
  EMIX_CUBLAS_TRY(cublas().set_atomics_mode(h, CUBLAS_ATOMICS_NOT_ALLOWED));
  EMIX_CUBLAS_TRY(cublas().set_pointer_mode(h, CUBLAS_POINTER_MODE_HOST));
  const bool tf32 = options_.allow_tf32 && sizeof(T) == 4;
  EMIX_CUBLAS_TRY(
      cublas().set_math_mode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  blas_ = std::move(blas);
}

template <typename T>
GpuSettings GpuEngine<T>::variants_in_effect() const {
  if (!configured_) return settings_;
  GpuSettings in_effect;
  if (path_.fused) {
    const FusedPlan& p = path_.plan;
    in_effect.fast_softmax = p.fast_softmax;
    in_effect.block_combine = p.block_combine && p.row_groups > 1;
    in_effect.lean_double = p.lean;
    in_effect.row_registers = p.rows_in_registers;
  }
  return in_effect;
}

// Where the single-pass kernel's float arithmetic would not hold a float model to float32's
// tolerance, as the CPU engine's rules (core/prepared_model.hpp) judge it, why; else empty.
// The general path then runs it: it sums weights, responsibilities and statistics in double and
// computes Bernoulli and binomial log-densities in double.
template <typename T>
std::string GpuEngine<T>::needs_double(const PreparedModel& m) const {
  if constexpr (std::is_same_v<T, float>) {
    if (weights_outside_float_) {
      return "float32 with sample weights outside [2^-100, 2^100], which float sums would "
             "overflow or flush to zero";
    }
    const double terms = largest_discrete_terms(m);
    if (float_loses_digits(terms)) {
      return "float32 " + std::string(to_string(m.family)) + " log-densities whose terms (" +
             std::to_string(terms) + ") cancel beyond float's digits";
    }
  }
  (void)m;
  return {};
}

// Chooses the path for the model's shape and sizes every buffer to the budget: chunks as large
// as aimed for, halved (and, single-pass, fewer blocks) until the plan fits; where not even a
// small chunk fits beside uploaded data, the data are streamed instead.
template <typename T>
void GpuEngine<T>::configure(const PreparedModel& m, bool outputs) {
  // Per-row outputs keep the buffers they need once asked for.
  const std::string why_double = needs_double(m);
  const Key key{m.k,
                m.family,
                m.covariance,
                m.family == Family::kBinomial ? m.trials : 1,
                outputs || (configured_ && key_.outputs),
                !why_double.empty()};
  if (configured_ && key == key_) return;
  release_working();
  path_ = choose_path(m.family, m.covariance, m.k, d_, static_cast<int>(sizeof(T)), max_shared_,
                      settings_, why_double);
  if (!path_.fused && uses_gemm(mode_of(m))) ensure_cublas();
  int slices = 0;
  if (path_.fused) {
    fused_slices_ = fused_max_blocks<T, T>(path_.plan, false);
    eval_blocks_ = fused_max_blocks<T, T>(path_.plan, true);
    slices = fused_slices_;
  }
  const std::int64_t row_bytes = d_ * static_cast<std::int64_t>(sizeof(T));
  for (;;) {
    std::int64_t rows = options_.chunk_rows;
    if (rows == 0) {
      if (streaming_) {
        rows = std::max<std::int64_t>(kMinChunkRows, kStreamChunkBytes / row_bytes);
      } else {
        // Rows whose per-chunk buffers fill kScratchTarget.
        const BufferPlan probe = plan_buffers(plan_inputs(m, key.outputs, 1 << 16, 0));
        const std::int64_t fixed = plan_buffers(plan_inputs(m, key.outputs, 0, 0)).working_bytes();
        const std::int64_t per_row =
            std::max<std::int64_t>(1, (probe.working_bytes() - fixed) >> 16);
        rows = std::max<std::int64_t>(kMinChunkRows, kScratchTarget / per_row);
      }
    }
    // The general path's cuBLAS calls take int sizes: a chunk_rows given above 2^31 would wrap.
    if (!path_.fused) rows = std::min(rows, kMaxGeneralChunkRows);
    rows = std::min(rows, n_);
    const std::int64_t min_rows = std::min(rows, kMinChunkRows);
    const std::int64_t limit = budget();
    std::int64_t smallest = 0;
    for (;;) {
      const BufferPlan plan = plan_buffers(plan_inputs(m, key.outputs, rows, slices));
      smallest = plan.device_bytes();
      if (smallest <= limit) {
        try {
          allocate(plan);
          plan_ = plan;
          key_ = key;
          chunk_rows_ = rows;
          fused_slices_ = slices;
          configured_ = true;
          return;
        } catch (const OutOfMemory&) {
          release_working();  // smaller chunks may still fit
        }
      }
      if (rows <= min_rows && slices <= 1) break;
      if (rows > min_rows) {
        rows = std::max(min_rows, rows / 2);
      } else {
        slices = std::max(1, slices / 2);
      }
    }
    if (!device_input_ && !streaming_) {
      // Not even a small chunk fits beside the uploaded data: stream the data instead.
      start_streaming();
      slices = fused_slices_;
      continue;
    }
    throw OutOfMemory("GPU engine: not enough device memory for K = " + std::to_string(m.k) +
                      " components over D = " + std::to_string(d_) +
                      " features: the smallest plan needs " + format_bytes(smallest) +
                      ", but only " + format_bytes(limit) + " are available (" +
                      (options_.device_memory_limit > 0 ? "device_memory_limit"
                                                        : "free device memory less a margin") +
                      ")");
  }
}

template <typename T>
std::int64_t GpuEngine<T>::launch_rows(bool evaluating) const {
  // The single-pass kernel needs no per-chunk buffers to sum statistics: data already on the
  // device go in one launch, unless the caller asked for chunks.
  if (path_.fused && !streaming_ && !evaluating && options_.chunk_rows == 0) return n_;
  return chunk_rows_;
}

// Calls fn(chunk rows on the device, their weights on the device or null, first row, row count)
// for each chunk of `rows` rows in order, all work enqueued on compute_. Streamed host data go
// through kStreamSlots device buffers: the copy of chunk i + 1 (and i + 2) on copy_ overlaps the
// kernels of chunk i; events keep each buffer from being overwritten while still in use. From
// pageable memory that could not be registered, the host first copies each chunk into a pinned
// staging buffer.
template <typename T>
template <typename Fn>
void GpuEngine<T>::for_each_chunk(std::int64_t rows, Fn&& fn) {
  const std::int64_t n_chunks = (n_ + rows - 1) / rows;
  const std::int64_t d = d_;
  last_launch_rows_ = std::min(rows, n_);
  if (!streaming_) {
    const T* base = device_input_ ? static_cast<const T*>(x_.data) : dev<T>(Buf::kData);
    const double* w = dev<double>(Buf::kWeights);
    for (std::int64_t i = 0; i < n_chunks; ++i) {
      const std::int64_t first = i * rows;
      fn(base + first * d, w != nullptr ? w + first : nullptr, first, std::min(rows, n_ - first));
    }
    return;
  }
  if (rows > chunk_rows_) {
    throw InvalidArgument("GPU engine: streamed chunks of " + std::to_string(rows) +
                          " rows exceed the buffers' " + std::to_string(chunk_rows_));
  }
  const T* host_x = static_cast<const T*>(x_.data);
  for (std::int64_t i = 0; i < n_chunks; ++i) {
    const int slot = static_cast<int>(i % kStreamSlots);
    const std::int64_t first = i * rows;
    const std::int64_t count = std::min(rows, n_ - first);
    const std::size_t x_bytes = static_cast<std::size_t>(count * d) * sizeof(T);
    const std::size_t w_bytes = static_cast<std::size_t>(count) * 8;
    T* d_x = dev<T>(Buf::kStreamRows) + slot * chunk_rows_ * d;
    double* d_w =
        h_weights_ != nullptr ? dev<double>(Buf::kStreamWeights) + slot * chunk_rows_ : nullptr;
    const T* src_x = host_x + first * d;
    const double* src_w = h_weights_ != nullptr ? h_weights_ + first : nullptr;
    if (staging_) {
      // The staging buffer is free once its previous copy to the device has finished.
      EMIX_CUDA_TRY(cudaEventSynchronize(copy_done_[slot].get()));
      T* stage_x = pinned<T>(Buf::kHostStageRows) + slot * chunk_rows_ * d;
      std::memcpy(stage_x, src_x, x_bytes);
      src_x = stage_x;
      if (src_w != nullptr) {
        double* stage_w = pinned<double>(Buf::kHostStageWeights) + slot * chunk_rows_;
        std::memcpy(stage_w, src_w, w_bytes);
        src_w = stage_w;
      }
    }
    // The device buffer is free once the kernels of chunk i - kStreamSlots have finished.
    EMIX_CUDA_TRY(cudaStreamWaitEvent(copy_.get(), compute_done_[slot].get(), 0));
    EMIX_CUDA_TRY(cudaMemcpyAsync(d_x, src_x, x_bytes, cudaMemcpyHostToDevice, copy_.get()));
    if (src_w != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(d_w, src_w, w_bytes, cudaMemcpyHostToDevice, copy_.get()));
    }
    EMIX_CUDA_TRY(cudaEventRecord(copy_done_[slot].get(), copy_.get()));
    EMIX_CUDA_TRY(cudaStreamWaitEvent(compute_.get(), copy_done_[slot].get(), 0));
    fn(static_cast<const T*>(d_x), static_cast<const double*>(d_w), first, count);
    EMIX_CUDA_TRY(cudaEventRecord(compute_done_[slot].get(), compute_.get()));
  }
}

template <typename T>
void GpuEngine<T>::accumulate(const PreparedModel& m, double* stats) {
  check_model(m);
  if (stats == nullptr) throw InvalidArgument("GPU engine: accumulate: stats is null");
  DeviceGuard guard(device_);
  configure(m, false);
  last_fused_ = path_.fused;
  if (path_.fused) {
    accumulate_fused(m, stats);
  } else {
    accumulate_general(m, stats);
  }
}

template <typename T>
void GpuEngine<T>::evaluate(const PreparedModel& m, double* log_prob, double* resp,
                            std::int32_t* labels) {
  check_model(m);
  if (log_prob == nullptr && resp == nullptr && labels == nullptr) return;
  DeviceGuard guard(device_);
  configure(m, true);
  last_fused_ = path_.fused;
  if (path_.fused) {
    evaluate_fused(m, log_prob, resp, labels);
  } else {
    evaluate_general(m, log_prob, resp, labels);
  }
}

// ---- the single-pass path ----

template <typename T>
void GpuEngine<T>::upload_fused_params(const PreparedModel& m) {
  h_fused_params_ = make_fused_params<T>(m, path_.plan);
  const FusedParams<T>& p = h_fused_params_;
  const FusedParamLayout l = fused_param_layout(path_.plan);
  h_params_.assign(static_cast<std::size_t>(l.total) * sizeof(T), 0);
  T* out = reinterpret_cast<T*>(h_params_.data());
  const auto put = [out](const std::vector<T>& v, std::int64_t at) {
    std::copy(v.begin(), v.end(), out + at);
  };
  put(p.c0, l.c0);
  put(p.a, l.a);
  put(p.b, l.b);
  put(p.shift, l.shift);
  put(p.cst, l.cst);
  put(p.u, l.u);
  const cudaStream_t s = compute_.get();
  // Pageable sources: each call returns once the source has been staged, so the host vectors
  // may change afterwards; the copies stay ordered before the kernels on the stream.
  EMIX_CUDA_TRY(cudaMemcpyAsync(dev<unsigned char>(Buf::kParams), h_params_.data(),
                                h_params_.size(), cudaMemcpyHostToDevice, s));
  if (!p.log_choose.empty()) {
    EMIX_CUDA_TRY(cudaMemcpyAsync(dev<double>(Buf::kLogChoose), p.log_choose.data(),
                                  p.log_choose.size() * 8, cudaMemcpyHostToDevice, s));
  }
}

template <typename T>
FusedArgs<T, T> GpuEngine<T>::fused_args(const PreparedModel& m) {
  const FusedParamLayout l = fused_param_layout(path_.plan);
  const T* params = dev<T>(Buf::kParams);
  FusedArgs<T, T> a;
  a.c0 = params + l.c0;
  a.a = params + l.a;
  a.b = params + l.b;
  a.shift = params + l.shift;
  a.cst = params + l.cst;
  a.u = path_.plan.family == FusedFamily::kFull ? params + l.u : nullptr;
  a.log_choose = plan_[Buf::kLogChoose] > 0 ? dev<double>(Buf::kLogChoose) : nullptr;
  a.trials = m.family == Family::kBinomial ? m.trials : 1;
  a.layout = m.layout.packed();
  return a;
}

template <typename T>
void GpuEngine<T>::accumulate_fused(const PreparedModel& m, double* stats) {
  upload_fused_params(m);
  const cudaStream_t s = compute_.get();
  const FusedPlan& plan = path_.plan;
  FusedArgs<T, T> a = fused_args(m);
  const std::int64_t stride = static_cast<std::int64_t>(a.layout.size());
  double* totals = dev<double>(Buf::kTotals);
  a.part = dev<double>(Buf::kPartials);
  EMIX_CUDA_TRY(cudaMemsetAsync(totals, 0, static_cast<std::size_t>(stride) * 8, s));
  for_each_chunk(
      launch_rows(false), [&](const T* x, const double* w, std::int64_t, std::int64_t count) {
        a.x = x;
        a.count = count;
        a.weights = w;
        const int grid = fused_grid(plan, count, fused_slices_);
        if constexpr (std::is_same_v<T, float>) {
          if (plan.rows_in_registers) {
            launch_row_accumulate(plan, h_fused_params_, a, grid, s);
          } else {
            launch_fused_accumulate(plan, a, grid, s);
          }
        } else {
          launch_fused_accumulate(plan, a, grid, s);
        }
        launch_reduce_partials<T>(a.part, stride, grid, nullptr, 0, d_, stride, 1.0, totals, s);
      });
  double* host = pinned<double>(Buf::kHostTotals);
  EMIX_CUDA_TRY(cudaMemcpyAsync(host, totals, static_cast<std::size_t>(stride) * 8,
                                cudaMemcpyDeviceToHost, s));
  compute_.synchronize();
  unpack_scatter(m.layout, host, stats);
}

template <typename T>
void GpuEngine<T>::evaluate_fused(const PreparedModel& m, double* log_prob, double* resp,
                                  std::int32_t* labels) {
  upload_fused_params(m);
  const cudaStream_t s = compute_.get();
  const FusedPlan& plan = path_.plan;
  FusedArgs<T, T> a = fused_args(m);
  a.log_prob = log_prob != nullptr ? dev<double>(Buf::kOutLogProb) : nullptr;
  a.resp = resp != nullptr ? dev<double>(Buf::kOutResp) : nullptr;
  a.labels = labels != nullptr ? dev<std::int32_t>(Buf::kLabels) : nullptr;
  const int k = m.k;
  for_each_chunk(launch_rows(true), [&](const T* x, const double*, std::int64_t first,
                                        std::int64_t count) {
    a.x = x;
    a.count = count;
    launch_fused_evaluate(plan, a, fused_grid(plan, count, eval_blocks_), s);
    // Copies to pageable memory return once complete, so the buffers are free for the next chunk.
    const std::size_t n = static_cast<std::size_t>(count);
    if (log_prob != nullptr) {
      EMIX_CUDA_TRY(
          cudaMemcpyAsync(log_prob + first, a.log_prob, n * 8, cudaMemcpyDeviceToHost, s));
    }
    if (resp != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(resp + first * k, a.resp, n * static_cast<std::size_t>(k) * 8,
                                    cudaMemcpyDeviceToHost, s));
    }
    if (labels != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(labels + first, a.labels, n * 4, cudaMemcpyDeviceToHost, s));
    }
  });
  compute_.synchronize();
}

// ---- the general path ----

template <typename T>
void GpuEngine<T>::upload_general_params(const PreparedModel& m) {
  const int k = m.k, d = d_;
  const std::int64_t kd = std::int64_t{k} * d;
  const Mode mode = mode_of(m);
  const std::int64_t typed_at = general_param_typed_offset(k, d);
  const std::int64_t u_size =
      mode == Mode::kFull ? kd * d : (mode == Mode::kTied ? std::int64_t{d} * d : 0);
  h_params_.assign(static_cast<std::size_t>(typed_at + (d + u_size) * std::int64_t(sizeof(T))), 0);
  double* log_w = reinterpret_cast<double*>(h_params_.data());
  double* log_norm = log_w + k;
  double* shift = log_norm + k;
  double* a = shift + kd;
  double* b = a + kd;
  T* c0 = reinterpret_cast<T*>(h_params_.data() + typed_at);
  T* u = c0 + d;

  // c0: one shift for all rows, the weighted mean of the centres rounded to T, taken off the data
  // before the GEMMs so that they see x - c0 rather than large numbers that cancel. Zero for
  // Bernoulli / binomial, whose densities are written in x itself.
  std::vector<double> c0d(static_cast<std::size_t>(d), 0.0);
  if (m.family == Family::kGaussian) {
    for (int j = 0; j < d; ++j) {
      double s = 0.0;
      for (int c = 0; c < k; ++c)
        s += std::exp(m.log_weights[c]) * m.centres[c * std::size_t(d) + j];
      c0[j] = static_cast<T>(std::isfinite(s) ? s : 0.0);
      c0d[j] = static_cast<double>(c0[j]);
    }
  }
  for (int c = 0; c < k; ++c) {
    log_w[c] = m.log_weights[c];
    log_norm[c] = m.log_norm[c];
    for (int j = 0; j < d; ++j) {
      shift[c * std::size_t(d) + j] = m.centres[c * std::size_t(d) + j] - c0d[j];
    }
  }
  switch (mode) {
    case Mode::kFull:
    case Mode::kTied: {
      // a_kj = sum_i (mean_ki - c0_i) U_k[i][j]; U laid out column-major D x (K D) (or D x D).
      for (int c = 0; c < k; ++c) {
        const double* uk =
            m.prec_chol.data() + (mode == Mode::kFull ? std::size_t(c) * d * d : std::size_t{0});
        for (int j = 0; j < d; ++j) {
          double s = 0.0;
          for (int i = 0; i < d; ++i) {
            s += (m.means[c * std::size_t(d) + i] - c0d[i]) * uk[std::size_t(i) * d + j];
          }
          a[c * std::size_t(d) + j] = s;
        }
      }
      const int blocks = mode == Mode::kFull ? k : 1;
      for (int c = 0; c < blocks; ++c) {
        for (int i = 0; i < d; ++i) {
          for (int j = 0; j < d; ++j) {
            u[(std::size_t(c) * d + j) * d + i] =
                static_cast<T>(m.prec_chol[(std::size_t(c) * d + i) * d + j]);
          }
        }
      }
      break;
    }
    case Mode::kDiag:
      for (int c = 0; c < k; ++c) {
        for (int j = 0; j < d; ++j) {
          const std::size_t e = c * std::size_t(d) + j;
          a[e] = m.means[e] - c0d[j];
          b[e] = m.covariance == Covariance::kSpherical ? m.prec_chol[c] : m.prec_chol[e];
        }
      }
      break;
    case Mode::kLinear:
      std::copy(m.logit.begin(), m.logit.end(), a);
      break;
  }
  EMIX_CUDA_TRY(cudaMemcpyAsync(dev<unsigned char>(Buf::kParams), h_params_.data(),
                                h_params_.size(), cudaMemcpyHostToDevice, compute_.get()));
}

template <typename T>
void GpuEngine<T>::general_log_joint(const PreparedModel& m, std::int64_t padded) {
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const std::int64_t ld = general_chunk(chunk_rows_).ld;
  const Mode mode = mode_of(m);
  switch (mode) {
    case Mode::kFull:
    case Mode::kTied: {
      const T one = T(1), zero = T(0);
      const int n = mode == Mode::kFull ? k * d : d;
      // y (padded x n, column-major, ld) = xc (padded x D, ld) * U (D x n, column-major, D).
      EMIX_CUBLAS_TRY(Blas<T>::gemm(blas_->get(), CUBLAS_OP_N, CUBLAS_OP_N,
                                    static_cast<int>(padded), n, d, &one, dev<T>(Buf::kStaged),
                                    static_cast<int>(ld), g_u(), d, &zero, dev<T>(Buf::kProjected),
                                    static_cast<int>(ld)));
      launch_log_joint_gemm<T>(dev<T>(Buf::kProjected), ld, mode == Mode::kFull, g_a(),
                               g_log_norm(), g_log_w(), k, d, padded, dev<double>(Buf::kLogJoint),
                               s);
      break;
    }
    case Mode::kDiag:
    case Mode::kLinear:
      launch_log_joint_direct<T>(mode == Mode::kLinear, dev<T>(Buf::kStaged), ld, g_a(), g_b(),
                                 g_log_norm(), g_log_w(), k, d, padded, dev<double>(Buf::kLogJoint),
                                 s);
      break;
  }
}

template <typename T>
void GpuEngine<T>::accumulate_general(const PreparedModel& m, double* stats) {
  upload_general_params(m);
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const Mode mode = mode_of(m);
  const std::int64_t total = static_cast<std::int64_t>(m.layout.size());
  // The partials hold everything but a full scatter, which the batched GEMM sums.
  const std::int64_t stride =
      static_cast<std::int64_t>(m.layout.full_scatter ? m.layout.q() : m.layout.size());
  const int trials = m.family == Family::kBinomial ? m.trials : 1;
  const GeneralChunk chunk = general_chunk(chunk_rows_);
  const int rb = chunk.block_rows;
  double* totals = dev<double>(Buf::kTotals);
  T* xc = dev<T>(Buf::kStaged);
  double* g = dev<double>(Buf::kResp);
  double* ll = dev<double>(Buf::kRowLogLik);
  double* wrow = dev<double>(Buf::kRowWeight);
  double* hrow = dev<double>(Buf::kRowEntropy);
  double* part = dev<double>(Buf::kPartials);
  T* qp = dev<T>(Buf::kScatterParts);
  EMIX_CUDA_TRY(cudaMemsetAsync(totals, 0, static_cast<std::size_t>(total) * 8, s));

  for_each_chunk(chunk_rows_, [&](const T* x, const double* w, std::int64_t, std::int64_t count) {
    const std::int64_t padded = round_up(count, rb);
    const std::int64_t n_part = stats_blocks(padded, rb);
    const std::int64_t n_q = padded / rb;
    launch_stage_rows<T>(x, count, padded, d, g_c0(), xc, chunk.ld, s);
    general_log_joint(m, padded);
    launch_estep_rows<T>(dev<double>(Buf::kLogJoint), chunk.ld, k, count, padded, w, xc, d, trials,
                         g, ll, wrow, hrow, s);
    T* z = uses_gemm(mode) ? dev<T>(Buf::kProjected) : nullptr;
    launch_stats_partials<T>(g, ll, wrow, hrow, xc, chunk.ld, g_shift(), m.layout, padded, rb, z,
                             std::ldexp(1.0, -scatter_exponent_), part, stride, s);
    if (uses_gemm(mode)) {
      // Q block (k, b) = Z^T Z for the rb x D column-major block Z of component k, row block b.
      const T one = T(1), zero = T(0);
      const std::int64_t batches = std::int64_t{k} * n_q;
      const long long z_stride = static_cast<long long>(d) * rb;
      const long long q_stride = static_cast<long long>(d) * d;
      for (std::int64_t first = 0; first < batches; first += INT_MAX) {
        const int count_b = static_cast<int>(std::min<std::int64_t>(INT_MAX, batches - first));
        EMIX_CUBLAS_TRY(Blas<T>::gemm_batched(blas_->get(), CUBLAS_OP_T, CUBLAS_OP_N, d, d, rb,
                                              &one, z + first * z_stride, rb, z_stride,
                                              z + first * z_stride, rb, z_stride, &zero,
                                              qp + first * q_stride, d, q_stride, count_b));
      }
    }
    launch_reduce_partials<T>(part, stride, n_part, qp, n_q, d, total,
                              std::ldexp(1.0, 2 * scatter_exponent_), totals, s);
  });

  double* host = pinned<double>(Buf::kHostTotals);
  EMIX_CUDA_TRY(cudaMemcpyAsync(host, totals, static_cast<std::size_t>(total) * 8,
                                cudaMemcpyDeviceToHost, s));
  compute_.synchronize();
  std::memcpy(stats, host, static_cast<std::size_t>(total) * 8);
  if (m.layout.has_scatter && m.layout.full_scatter) {
    // The GEMM gives each block symmetric up to rounding; keep one triangle so Q_k is exactly so.
    for (int c = 0; c < k; ++c) {
      for (int i = 0; i < d; ++i) {
        for (int j = i + 1; j < d; ++j)
          stats[m.layout.q_at(c, j, i)] = stats[m.layout.q_at(c, i, j)];
      }
    }
  }
}

template <typename T>
void GpuEngine<T>::evaluate_general(const PreparedModel& m, double* log_prob, double* resp,
                                    std::int32_t* labels) {
  upload_general_params(m);
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const int trials = m.family == Family::kBinomial ? m.trials : 1;
  const GeneralChunk chunk = general_chunk(chunk_rows_);
  const int rb = chunk.block_rows;
  T* xc = dev<T>(Buf::kStaged);
  double* ll = dev<double>(Buf::kRowLogLik);
  double* g = dev<double>(Buf::kResp);
  std::int32_t* lab = dev<std::int32_t>(Buf::kLabels);
  for_each_chunk(
      chunk_rows_, [&](const T* x, const double*, std::int64_t first, std::int64_t count) {
        const std::int64_t padded = round_up(count, rb);
        launch_stage_rows<T>(x, count, padded, d, g_c0(), xc, chunk.ld, s);
        general_log_joint(m, padded);
        launch_evaluate_rows<T>(dev<double>(Buf::kLogJoint), chunk.ld, k, count, xc, d, trials,
                                log_prob != nullptr ? ll : nullptr, resp != nullptr ? g : nullptr,
                                labels != nullptr ? lab : nullptr, s);
        // Copies to pageable memory return once complete, so the buffers are free for the next
        // chunk.
        const std::size_t n = static_cast<std::size_t>(count);
        if (log_prob != nullptr) {
          EMIX_CUDA_TRY(cudaMemcpyAsync(log_prob + first, ll, n * 8, cudaMemcpyDeviceToHost, s));
        }
        if (resp != nullptr) {
          EMIX_CUDA_TRY(cudaMemcpyAsync(resp + first * k, g, n * static_cast<std::size_t>(k) * 8,
                                        cudaMemcpyDeviceToHost, s));
        }
        if (labels != nullptr) {
          EMIX_CUDA_TRY(cudaMemcpyAsync(labels + first, lab, n * 4, cudaMemcpyDeviceToHost, s));
        }
      });
  compute_.synchronize();
}

template <typename T>
void GpuEngine<T>::gather_rows(const std::int64_t* idx, std::int64_t count, double* out) {
  if (count <= 0) return;
  if (idx == nullptr || out == nullptr) {
    throw InvalidArgument("GPU engine: gather_rows: null index or output pointer");
  }
  for (std::int64_t r = 0; r < count; ++r) {
    if (idx[r] < 0 || idx[r] >= n_) {
      throw InvalidArgument("GPU engine: gather_rows: idx[" + std::to_string(r) + "] = " +
                            std::to_string(idx[r]) + " is outside 0.." + std::to_string(n_ - 1));
    }
  }
  const std::int64_t d = d_;
  if (!device_input_) {
    // The caller's host copy is still there (it must outlive the engine): no device round trip.
    const T* x = static_cast<const T*>(x_.data);
    for (std::int64_t r = 0; r < count; ++r) {
      for (std::int64_t j = 0; j < d; ++j) out[r * d + j] = static_cast<double>(x[idx[r] * d + j]);
    }
    return;
  }
  DeviceGuard guard(device_);
  const cudaStream_t s = compute_.get();
  // Outside the buffer plan: at most kGatherBytes of device memory, however wide the rows.
  const std::int64_t batch =
      std::min({count, kGatherBatch, std::max<std::int64_t>(1, kGatherBytes / (8 * d))});
  DeviceBuffer<std::int64_t> d_idx(batch, "gather_rows indices");
  DeviceBuffer<double> d_out(batch * d, "gather_rows output");
  for (std::int64_t first = 0; first < count; first += batch) {
    const std::int64_t rows = std::min(batch, count - first);
    EMIX_CUDA_TRY(cudaMemcpyAsync(d_idx.data(), idx + first, static_cast<std::size_t>(rows) * 8,
                                  cudaMemcpyHostToDevice, s));
    launch_gather_rows<T>(static_cast<const T*>(x_.data), d_, d_idx.data(), rows, d_out.data(), s);
    EMIX_CUDA_TRY(cudaMemcpyAsync(out + first * d, d_out.data(),
                                  static_cast<std::size_t>(rows * d) * 8, cudaMemcpyDeviceToHost,
                                  s));
  }
  compute_.synchronize();
}

}  // namespace

namespace {

// Why cudaGetDeviceCount found no device, where the answer is not plain: the runtime reports a
// missing driver and a driver older than itself alike (cudaErrorInsufficientDriver), and on a GPU
// node with an old driver "no device" would send the user the wrong way.
std::string why_no_device(cudaError_t status) {
  if (status == cudaSuccess || status == cudaErrorNoDevice) return "";
  if (status == cudaErrorInsufficientDriver) {
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (driver == nullptr) return " (no NVIDIA driver: libcuda.so.1 is not installed)";
    dlclose(driver);
    return " (the NVIDIA driver is older than the CUDA runtime emix was built with, " +
           std::to_string(CUDART_VERSION / 1000) + "." +
           std::to_string(CUDART_VERSION % 1000 / 10) +
           ": update the driver; cudaErrorInsufficientDriver)";
  }
  return std::string(" (cudaGetDeviceCount: ") + cudaGetErrorName(status) + ": " +
         cudaGetErrorString(status) + ")";
}

}  // namespace

const std::string& unavailable_reason() {
  static const std::string reason = []() -> std::string {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count <= 0) {
      (void)cudaGetLastError();
      return "no CUDA device answers on this machine" + why_no_device(status);
    }
    const cudaError_t init = cudaFree(nullptr);  // creates the context: the runtime initialises
    if (init != cudaSuccess) {
      (void)cudaGetLastError();
      return std::string("no CUDA device answers on this machine (the CUDA runtime found ") +
             std::to_string(count) + " but did not initialise: " + cudaGetErrorName(init) + ")";
    }
    // Only where a device answers: a CPU-only machine never loads cuBLAS.
    return cublas_unavailable_reason();
  }();
  return reason;
}

bool device_available() { return unavailable_reason().empty(); }

std::string device_name() {
  int device = 0;
  EMIX_CUDA_TRY(cudaGetDevice(&device));
  cudaDeviceProp props{};
  EMIX_CUDA_TRY(cudaGetDeviceProperties(&props, device));
  return props.name;
}

int device_count() {
  if (!device_available()) return 0;
  int count = 0;
  EMIX_CUDA_TRY(cudaGetDeviceCount(&count));
  return count;
}

std::unique_ptr<Engine> create_engine(const DataView& x, const double* sample_weight,
                                      const EngineOptions& options, const GpuSettings& settings) {
  validate_input(x, sample_weight);
  if (options.gpu_device >= 0) {
    const int count = device_count();
    if (options.gpu_device >= count) {
      throw InvalidArgument("gpu_device is " + std::to_string(options.gpu_device) +
                            ", but this machine has " + std::to_string(count) + " CUDA device" +
                            (count == 1 ? "" : "s"));
    }
    EMIX_CUDA_TRY(cudaSetDevice(options.gpu_device));
  }
  if (x.dtype == DType::kFloat32) {
    return std::make_unique<GpuEngine<float>>(x, sample_weight, options, settings);
  }
  return std::make_unique<GpuEngine<double>>(x, sample_weight, options, settings);
}

void copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
  cudaPointerAttributes attributes{};
  EMIX_CUDA_TRY(cudaPointerGetAttributes(&attributes, device_destination));
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw InvalidArgument("the output buffer is not CUDA device memory, but the data are");
  }
  EMIX_CUDA_TRY(cudaMemcpy(device_destination, host_source, bytes, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return once the bytes are staged, before they reach the
  // device: the caller's results must be there when the call returns, whichever stream reads them.
  EMIX_CUDA_TRY(cudaStreamSynchronize(0));
}

EngineInfo engine_info(const Engine& engine) {
  const auto* gpu = dynamic_cast<const GpuEngineBase*>(&engine);
  if (gpu == nullptr) {
    throw InvalidArgument("engine_info: \"" + engine.name() + "\" is not a GPU engine");
  }
  return gpu->info();
}

}  // namespace emix::gpu
