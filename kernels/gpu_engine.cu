// The GPU engine: the E-step and its sufficient statistics on one CUDA device.
//
// Per chunk of rows (statistics.hpp for what is summed, estep_kernels.hpp for the layouts):
//   1. stage: x (row-major, T) -> xc = x - c0, column-major and zero-padded
//   2. log-joint lj (K x rows, double): full / tied through one GEMM y = xc U over all components,
//      diag / spherical / Bernoulli / binomial directly
//   3. one kernel per row: log-sum-exp, g = w p(k | x), w log p(x)
//   4. partial statistics of fixed blocks of rows, in double; the full scatter as a batched GEMM
//      of sqrt(g)(x - c_k) blocks per component and row block, or by a tiled kernel
//      (ScatterMethod, chosen by shape)
//   5. the partials added in a fixed order to a running device total
// Diag / spherical / Bernoulli / binomial do 1-4 in one kernel when a block can hold the
// statistics (fused_stats_kernel), reading X once; so can full / tied with small K and D
// (fused_full_kernel, ScatterMethod::kFused).
// Only the total (layout.size() doubles) comes back to the host. Nothing of size N x K is held.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "core/statistics.hpp"
#include "emix/errors.hpp"
#include "kernels/cuda_utils.cuh"
#include "kernels/estep_kernels.hpp"
#include "kernels/gpu_engine.hpp"

namespace emix::gpu {
namespace {

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
// Per-chunk buffers aimed at when options.chunk_rows is 0. A fixed size rather than a share of
// free memory, so that the chunking, hence the order of the sums, does not change from run to run.
constexpr std::int64_t kScratchTarget = 256 * kMiB;
constexpr std::int64_t kMemoryMargin = 256 * kMiB;  // left free for the context and other users
// Host data are uploaded only when this much (or a sixteenth of the budget) is left beside them.
constexpr std::int64_t kResidentReserve = 64 * kMiB;
constexpr std::int64_t kMaxChunkRows = std::int64_t{1} << 24;
constexpr std::int64_t kMinChunkRows = 32;
constexpr std::int64_t kCublasWorkspace = 32 * kMiB;  // NVIDIA's recommendation for Hopper
constexpr std::int64_t kGatherBatch = std::int64_t{1} << 16;

std::atomic<bool> g_fused_kernels{true};
bool fused_kernels_enabled() { return g_fused_kernels.load(std::memory_order_relaxed); }
std::atomic<ScatterMethod> g_scatter_method{ScatterMethod::kAuto};

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
    return cublasSgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const float* alpha, const float* a,
                                     int lda, long long sa, const float* b, int ldb, long long sb,
                                     const float* beta, float* c, int ldc, long long sc,
                                     int batch) {
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                     ldc, sc, batch);
  }
};

template <>
struct Blas<double> {
  static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                             int n, int k, const double* alpha, const double* a, int lda,
                             const double* b, int ldb, const double* beta, double* c, int ldc) {
    return cublasDgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                     int m, int n, int k, const double* alpha, const double* a,
                                     int lda, long long sa, const double* b, int ldb, long long sb,
                                     const double* beta, double* c, int ldc, long long sc,
                                     int batch) {
    return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                     ldc, sc, batch);
  }
};

// The shape of one chunk's buffers.
struct ChunkPlan {
  std::int64_t rows = 0;    // rows per chunk
  int block_rows = 0;       // statistics block (threads), power of two 32..256
  std::int64_t ld = 0;      // padded rows: the column stride of every per-chunk matrix
  std::int64_t n_part = 0;  // statistics partials of a full chunk
  std::int64_t n_q = 0;     // scatter blocks of a full chunk (full / tied)
};

int block_rows_for(std::int64_t rows) {
  int r = 32;
  while (r < kMaxBlockRows && r < rows) r *= 2;
  return r;
}

ChunkPlan make_plan(std::int64_t rows) {
  ChunkPlan p;
  p.rows = rows;
  p.block_rows = block_rows_for(rows);
  p.ld = round_up(rows, p.block_rows);
  p.n_part = stats_blocks(p.ld, p.block_rows);
  p.n_q = p.ld / p.block_rows;
  return p;
}

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

class GpuEngineBase : public Engine {
 public:
  virtual EngineInfo info() const = 0;
};

template <typename T>
class GpuEngine final : public GpuEngineBase {
 public:
  GpuEngine(const DataView& x, const double* sample_weight, const EngineOptions& options);
  ~GpuEngine() override;

  std::string name() const override { return "gpu (" + device_name_ + ")"; }
  void accumulate(const PreparedModel& model, double* stats) override;
  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override;
  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override;
  EngineInfo info() const override;

 private:
  struct Key {
    int k = 0;
    Mode mode = Mode::kDiag;
    bool operator==(const Key& o) const { return k == o.k && mode == o.mode; }
  };

  void check_model(const PreparedModel& model) const;
  std::int64_t fixed_bytes(const PreparedModel& model) const;
  std::int64_t chunk_bytes(const ChunkPlan& plan, int k, Mode mode) const;
  std::int64_t part_stride(const ChunkPlan& plan, int k, Mode mode) const;
  std::int64_t resident_bytes() const { return d_x_.bytes() + d_w_.bytes(); }
  void ensure_workspace(const PreparedModel& model);
  void allocate_workspace(const ChunkPlan& plan, const PreparedModel& model, Mode mode);
  void release_workspace();
  void ensure_cublas();
  void upload_params(const PreparedModel& model);
  void log_joint(const PreparedModel& model, std::int64_t padded);
  template <typename Fn>
  void for_each_chunk(Fn&& fn);

  // Offsets into d_params_ (double) and d_tparams_ (T); see upload_params.
  const double* p_log_w() const { return d_params_.data(); }
  const double* p_log_norm() const { return d_params_.data() + key_.k; }
  const double* p_shift() const { return d_params_.data() + 2 * key_.k; }
  const double* p_a() const { return p_shift() + std::int64_t{key_.k} * d_; }
  const double* p_b() const { return p_a() + std::int64_t{key_.k} * d_; }
  const T* p_c0() const { return d_tparams_.data(); }
  const T* p_u() const { return d_tparams_.data() + d_; }

  DataView x_;
  const double* h_weights_;
  EngineOptions options_;
  std::int64_t n_ = 0;
  int d_ = 0;
  int device_ = 0;
  std::string device_name_;
  bool device_input_ = false;
  bool streaming_ = false;
  std::int64_t limit_ = 0;      // device_memory_limit, or 0 for the free memory at each sizing
  bool tiled_scatter_ = false;  // the last accumulate's scatter method, for engine_info
  bool fused_full_ = false;

  // Declared before the buffers so that they outlive them.
  Stream compute_;
  Stream copy_;
  Event copy_done_[2];
  Event compute_done_[2];
  DeviceBuffer<unsigned char> d_blas_workspace_;  // outlives the handle that uses it
  std::unique_ptr<CublasHandle> blas_;

  DeviceBuffer<T> d_x_;       // host data uploaded once
  DeviceBuffer<double> d_w_;  // sample weights, when the data are on the device

  Key key_;
  ChunkPlan plan_;
  DeviceBuffer<T> d_xc_, d_yz_, d_qp_, d_tparams_;
  DeviceBuffer<double> d_lj_, d_g_, d_ll_, d_wrow_, d_part_, d_acc_, d_params_;
  DeviceBuffer<std::int32_t> d_labels_;
  DeviceBuffer<T> d_in_x_[2];  // streaming: the chunk being copied in / computed on
  DeviceBuffer<double> d_in_w_[2];
  PinnedBuffer<T> h_in_x_[2];
  PinnedBuffer<double> h_in_w_[2];
  PinnedBuffer<double> h_stats_;
  std::vector<double> h_params_;
  std::vector<T> h_tparams_;
};

template <typename T>
GpuEngine<T>::GpuEngine(const DataView& x, const double* sample_weight,
                        const EngineOptions& options)
    : x_(x),
      h_weights_(sample_weight),
      options_(options),
      n_(x.rows),
      d_(static_cast<int>(x.cols)) {
  EMIX_CUDA_TRY(cudaGetDevice(&device_));
  device_name_ = device_name();
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
  limit_ = options.device_memory_limit;

  std::int64_t budget = limit_;
  if (budget == 0) {
    std::size_t free_bytes = 0, total_bytes = 0;
    EMIX_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    budget = std::max<std::int64_t>(0, static_cast<std::int64_t>(free_bytes) - kMemoryMargin);
  }
  const std::int64_t x_bytes = n_ * d_ * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t w_bytes = sample_weight != nullptr ? n_ * 8 : 0;
  const cudaStream_t s = compute_.get();
  if (device_input_) {
    if (sample_weight != nullptr) {
      d_w_.allocate(n_, "the sample weights");
      EMIX_CUDA_TRY(cudaMemcpyAsync(d_w_.data(), sample_weight, static_cast<std::size_t>(w_bytes),
                                    cudaMemcpyHostToDevice, s));
    }
  } else if (x_bytes + w_bytes + std::max(kResidentReserve, budget / 16) <= budget) {
    try {
      d_x_.allocate(n_ * d_, "the data");
      if (sample_weight != nullptr) d_w_.allocate(n_, "the sample weights");
    } catch (const OutOfMemory&) {
      d_x_.reset();
      d_w_.reset();
    }
    if (d_x_.data() != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(d_x_.data(), x.data, static_cast<std::size_t>(x_bytes),
                                    cudaMemcpyHostToDevice, s));
      if (sample_weight != nullptr) {
        EMIX_CUDA_TRY(cudaMemcpyAsync(d_w_.data(), sample_weight, static_cast<std::size_t>(w_bytes),
                                      cudaMemcpyHostToDevice, s));
      }
    }
  }
  streaming_ = !device_input_ && d_x_.data() == nullptr;
  compute_.synchronize();
}

template <typename T>
GpuEngine<T>::~GpuEngine() {
  // Work still in flight may use the buffers about to be freed.
  EMIX_CUDA_TRY_NOTHROW(cudaStreamSynchronize(copy_.get()));
  EMIX_CUDA_TRY_NOTHROW(cudaStreamSynchronize(compute_.get()));
}

template <typename T>
EngineInfo GpuEngine<T>::info() const {
  EngineInfo info;
  info.device_input = device_input_;
  info.streaming = streaming_;
  info.chunk_rows = plan_.rows;
  info.tiled_scatter = tiled_scatter_;
  info.fused_full = fused_full_;
  info.device_bytes = d_blas_workspace_.bytes() + d_x_.bytes() + d_w_.bytes() + d_xc_.bytes() +
                      d_yz_.bytes() + d_qp_.bytes() + d_tparams_.bytes() + d_lj_.bytes() +
                      d_g_.bytes() + d_ll_.bytes() + d_wrow_.bytes() + d_part_.bytes() +
                      d_acc_.bytes() + d_params_.bytes() + d_labels_.bytes() + d_in_x_[0].bytes() +
                      d_in_x_[1].bytes() + d_in_w_[0].bytes() + d_in_w_[1].bytes();
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
std::int64_t GpuEngine<T>::fixed_bytes(const PreparedModel& m) const {
  const std::int64_t k = m.k, d = d_;
  std::int64_t u = 0;
  if (mode_of(m) == Mode::kFull) u = k * d * d;
  if (mode_of(m) == Mode::kTied) u = d * d;
  return (2 * k + 3 * k * d) * 8 + (d + u) * static_cast<std::int64_t>(sizeof(T)) +
         static_cast<std::int64_t>(m.layout.size()) * 8;
}

template <typename T>
std::int64_t GpuEngine<T>::chunk_bytes(const ChunkPlan& p, int k, Mode mode) const {
  const std::int64_t st = sizeof(T), d = d_, kk = k;
  const std::int64_t stride = part_stride(p, k, mode);
  std::int64_t bytes =
      p.ld * d * st + 2 * kk * p.ld * 8 + 2 * p.ld * 8 + p.ld * 4 + p.n_part * stride * 8;
  if (uses_gemm(mode)) bytes += kk * d * p.ld * st + kk * p.n_q * d * d * st;
  if (streaming_) bytes += 2 * (p.rows * d * st + (h_weights_ != nullptr ? p.rows * 8 : 0));
  return bytes;
}

// Doubles per statistics partial: every statistic where the fused full / tied kernel can take
// the shape (it may be chosen at any call), else those without the full scatter.
template <typename T>
std::int64_t GpuEngine<T>::part_stride(const ChunkPlan& p, int k, Mode mode) const {
  const std::int64_t d = d_, kk = k;
  if (uses_gemm(mode) && fused_full_shared_bytes(k, d_, mode == Mode::kTied, p.block_rows) > 0) {
    return 2 + kk + kk * d + kk * d * d;
  }
  return 2 + kk + kk * d + (mode == Mode::kDiag ? kk * d : 0);
}

template <typename T>
void GpuEngine<T>::release_workspace() {
  for (auto* b : {&d_xc_, &d_yz_, &d_qp_, &d_tparams_, &d_in_x_[0], &d_in_x_[1]}) b->reset();
  for (auto* b :
       {&d_lj_, &d_g_, &d_ll_, &d_wrow_, &d_part_, &d_acc_, &d_params_, &d_in_w_[0], &d_in_w_[1]}) {
    b->reset();
  }
  d_labels_.reset();
  for (auto* b : {&h_in_x_[0], &h_in_x_[1]}) b->reset();
  for (auto* b : {&h_in_w_[0], &h_in_w_[1], &h_stats_}) b->reset();
  plan_ = ChunkPlan{};
}

template <typename T>
void GpuEngine<T>::ensure_cublas() {
  if (blas_ != nullptr) return;
  auto blas = std::make_unique<CublasHandle>();
  const cublasHandle_t h = blas->get();
  // cublasSetStream resets the workspace, so the workspace is set after it. A fixed workspace,
  // stream and handle, and no atomics, make cuBLAS's results bitwise reproducible.
  EMIX_CUBLAS_TRY(cublasSetStream(h, compute_.get()));
  d_blas_workspace_.allocate(kCublasWorkspace, "the cuBLAS workspace");
  EMIX_CUBLAS_TRY(cublasSetWorkspace(h, d_blas_workspace_.data(),
                                     static_cast<std::size_t>(d_blas_workspace_.bytes())));
  EMIX_CUBLAS_TRY(cublasSetAtomicsMode(h, CUBLAS_ATOMICS_NOT_ALLOWED));
  EMIX_CUBLAS_TRY(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  const bool tf32 = options_.allow_tf32 && sizeof(T) == 4;
  EMIX_CUBLAS_TRY(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  blas_ = std::move(blas);
}

template <typename T>
void GpuEngine<T>::allocate_workspace(const ChunkPlan& p, const PreparedModel& m, Mode mode) {
  const std::int64_t k = m.k, d = d_;
  const std::int64_t stride = part_stride(p, m.k, mode);
  d_xc_.allocate(p.ld * d, "the staged chunk");
  d_lj_.allocate(k * p.ld, "the chunk's log-densities");
  d_g_.allocate(k * p.ld, "the chunk's responsibilities");
  d_ll_.allocate(p.ld, "the chunk's log-likelihoods");
  d_wrow_.allocate(p.ld, "the chunk's weights");
  d_labels_.allocate(p.ld, "the chunk's labels");
  d_part_.allocate(p.n_part * stride, "the partial statistics");
  if (uses_gemm(mode)) {
    d_yz_.allocate(k * d * p.ld, "the chunk's projected rows");
    d_qp_.allocate(k * p.n_q * d * d, "the partial scatter matrices");
  }
  std::int64_t u = mode == Mode::kFull ? k * d * d : (mode == Mode::kTied ? d * d : 0);
  d_params_.allocate(2 * k + 3 * k * d, "the model parameters");
  d_tparams_.allocate(d + u, "the model parameters");
  d_acc_.allocate(static_cast<std::int64_t>(m.layout.size()), "the statistics");
  h_stats_.allocate(static_cast<std::int64_t>(m.layout.size()), "the statistics");
  if (streaming_) {
    for (int i = 0; i < 2; ++i) {
      d_in_x_[i].allocate(p.rows * d, "a streamed chunk");
      h_in_x_[i].allocate(p.rows * d, "a streamed chunk");
      if (h_weights_ != nullptr) {
        d_in_w_[i].allocate(p.rows, "a streamed chunk's weights");
        h_in_w_[i].allocate(p.rows, "a streamed chunk's weights");
      }
    }
  }
}

template <typename T>
void GpuEngine<T>::ensure_workspace(const PreparedModel& m) {
  const Mode mode = mode_of(m);
  const Key key{m.k, mode};
  if (plan_.rows > 0 && key == key_) return;
  release_workspace();
  if (uses_gemm(mode)) ensure_cublas();
  key_ = key;

  const std::int64_t fixed = fixed_bytes(m);
  for (;;) {
    std::int64_t available = 0;
    if (limit_ > 0) {
      available = limit_ - resident_bytes() - fixed;
    } else {
      std::size_t free_bytes = 0, total_bytes = 0;
      EMIX_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
      available = static_cast<std::int64_t>(free_bytes) - kMemoryMargin - fixed;
    }
    std::int64_t rows = options_.chunk_rows;
    if (rows == 0) {
      // Rows whose buffers fill kScratchTarget, in whole statistics blocks.
      const std::int64_t per_row =
          std::max<std::int64_t>(1, chunk_bytes(make_plan(1 << 16), m.k, mode) >> 16);
      rows = std::max<std::int64_t>(kMaxBlockRows,
                                    kScratchTarget / per_row / kMaxBlockRows * kMaxBlockRows);
    }
    rows = std::min({rows, n_, kMaxChunkRows});
    const std::int64_t min_rows = std::min(rows, kMinChunkRows);
    std::int64_t smallest_bytes = 0;
    for (;;) {
      const ChunkPlan plan = make_plan(rows);
      smallest_bytes = chunk_bytes(plan, m.k, mode);
      if (smallest_bytes <= available) {
        try {
          allocate_workspace(plan, m, mode);
          plan_ = plan;
          return;
        } catch (const OutOfMemory&) {
          release_workspace();  // smaller chunks may still fit
        }
      }
      if (rows <= min_rows) break;
      rows = std::max(min_rows, rows / 2);
    }
    if (!device_input_ && !streaming_) {
      // Not even a small chunk fits beside the uploaded data: stream the data instead.
      d_x_.reset();
      d_w_.reset();
      streaming_ = true;
      continue;
    }
    key_ = Key{};
    throw OutOfMemory(
        "GPU engine: not enough device memory for K = " + std::to_string(m.k) +
        " components over D = " + std::to_string(d_) + " features: a chunk of " +
        std::to_string(rows) + " rows needs " + format_bytes(smallest_bytes) +
        " and the parameters " + format_bytes(fixed) + ", beside " +
        format_bytes(resident_bytes()) + " of data, but only " +
        format_bytes(std::max<std::int64_t>(0, available + fixed)) + " are available (" +
        (limit_ > 0 ? "device_memory_limit" : "free device memory less a margin") + ")");
  }
}

template <typename T>
void GpuEngine<T>::upload_params(const PreparedModel& m) {
  const int k = m.k, d = d_;
  const std::int64_t kd = std::int64_t{k} * d;
  const Mode mode = key_.mode;
  h_params_.assign(static_cast<std::size_t>(2 * k + 3 * kd), 0.0);
  double* log_w = h_params_.data();
  double* log_norm = log_w + k;
  double* shift = log_norm + k;
  double* a = shift + kd;
  double* b = a + kd;
  const std::int64_t u_size =
      mode == Mode::kFull ? kd * d : (mode == Mode::kTied ? std::int64_t{d} * d : 0);
  h_tparams_.assign(static_cast<std::size_t>(d + u_size), T(0));
  T* c0 = h_tparams_.data();
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
  const cudaStream_t s = compute_.get();
  // Pageable sources: each call returns once the source has been staged, so the host vectors
  // may change afterwards; the copies stay ordered before the chunk kernels on the stream.
  EMIX_CUDA_TRY(cudaMemcpyAsync(d_params_.data(), h_params_.data(), h_params_.size() * 8,
                                cudaMemcpyHostToDevice, s));
  EMIX_CUDA_TRY(cudaMemcpyAsync(d_tparams_.data(), h_tparams_.data(), h_tparams_.size() * sizeof(T),
                                cudaMemcpyHostToDevice, s));
}

template <typename T>
void GpuEngine<T>::log_joint(const PreparedModel& m, std::int64_t padded) {
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const std::int64_t ld = plan_.ld;
  switch (key_.mode) {
    case Mode::kFull:
    case Mode::kTied: {
      const T one = T(1), zero = T(0);
      const int n = key_.mode == Mode::kFull ? k * d : d;
      // y (padded x n, column-major, ld) = xc (padded x D, ld) * U (D x n, column-major, D).
      EMIX_CUBLAS_TRY(Blas<T>::gemm(
          blas_->get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(padded), n, d, &one,
          d_xc_.data(), static_cast<int>(ld), p_u(), d, &zero, d_yz_.data(), static_cast<int>(ld)));
      launch_log_joint_gemm<T>(d_yz_.data(), ld, key_.mode == Mode::kFull, p_a(), p_log_norm(),
                               p_log_w(), k, d, padded, d_lj_.data(), s);
      break;
    }
    case Mode::kDiag:
    case Mode::kLinear:
      launch_log_joint_direct<T>(key_.mode == Mode::kLinear, d_xc_.data(), ld, p_a(), p_b(),
                                 p_log_norm(), p_log_w(), k, d, padded, d_lj_.data(), s);
      break;
  }
}

// Calls fn(chunk rows on the device, their weights on the device or null, first row, row count)
// for each chunk in order, all work enqueued on compute_. Streamed host data go through two
// pinned buffers and two device buffers: while chunk i is computed, chunk i + 1 is copied into
// pinned memory by the host and on to the device on copy_; events keep each buffer from being
// overwritten while still in use.
template <typename T>
template <typename Fn>
void GpuEngine<T>::for_each_chunk(Fn&& fn) {
  const std::int64_t rows = plan_.rows;
  const std::int64_t n_chunks = (n_ + rows - 1) / rows;
  const std::int64_t d = d_;
  if (!streaming_) {
    const T* base = device_input_ ? static_cast<const T*>(x_.data) : d_x_.data();
    const double* w = d_w_.data();
    for (std::int64_t i = 0; i < n_chunks; ++i) {
      const std::int64_t first = i * rows;
      fn(base + first * d, w != nullptr ? w + first : nullptr, first, std::min(rows, n_ - first));
    }
    return;
  }
  const T* host_x = static_cast<const T*>(x_.data);
  for (std::int64_t i = 0; i < n_chunks; ++i) {
    const int slot = static_cast<int>(i & 1);
    const std::int64_t first = i * rows;
    const std::int64_t count = std::min(rows, n_ - first);
    const std::size_t x_bytes = static_cast<std::size_t>(count * d) * sizeof(T);
    // The pinned buffer is free once its previous copy to the device has finished.
    EMIX_CUDA_TRY(cudaEventSynchronize(copy_done_[slot].get()));
    std::memcpy(h_in_x_[slot].data(), host_x + first * d, x_bytes);
    if (h_weights_ != nullptr) {
      std::memcpy(h_in_w_[slot].data(), h_weights_ + first, static_cast<std::size_t>(count) * 8);
    }
    // The device buffer is free once the kernels of chunk i - 2 have finished with it.
    EMIX_CUDA_TRY(cudaStreamWaitEvent(copy_.get(), compute_done_[slot].get(), 0));
    EMIX_CUDA_TRY(cudaMemcpyAsync(d_in_x_[slot].data(), h_in_x_[slot].data(), x_bytes,
                                  cudaMemcpyHostToDevice, copy_.get()));
    if (h_weights_ != nullptr) {
      EMIX_CUDA_TRY(cudaMemcpyAsync(d_in_w_[slot].data(), h_in_w_[slot].data(),
                                    static_cast<std::size_t>(count) * 8, cudaMemcpyHostToDevice,
                                    copy_.get()));
    }
    EMIX_CUDA_TRY(cudaEventRecord(copy_done_[slot].get(), copy_.get()));
    EMIX_CUDA_TRY(cudaStreamWaitEvent(compute_.get(), copy_done_[slot].get(), 0));
    fn(d_in_x_[slot].data(), h_weights_ != nullptr ? d_in_w_[slot].data() : nullptr, first, count);
    EMIX_CUDA_TRY(cudaEventRecord(compute_done_[slot].get(), compute_.get()));
  }
}

template <typename T>
void GpuEngine<T>::accumulate(const PreparedModel& m, double* stats) {
  check_model(m);
  if (stats == nullptr) throw InvalidArgument("GPU engine: accumulate: stats is null");
  DeviceGuard guard(device_);
  ensure_workspace(m);
  upload_params(m);
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const Mode mode = key_.mode;
  const std::int64_t total = static_cast<std::int64_t>(m.layout.size());
  const std::int64_t stride =
      2 + k + std::int64_t{k} * d + (mode == Mode::kDiag ? std::int64_t{k} * d : 0);
  const int trials = m.family == Family::kBinomial ? m.trials : 1;
  const int rb = plan_.block_rows;
  // Diag / spherical / Bernoulli / binomial whose statistics fit a block: one pass over X.
  const bool fused = fused_kernels_enabled() && !uses_gemm(mode) &&
                     fused_stats_shared_bytes(k, d, mode == Mode::kLinear, rb) > 0;
  ScatterMethod method = g_scatter_method.load(std::memory_order_relaxed);
  // kAuto takes the single-pass kernel wherever it fits: it beat both scatter methods in the
  // one shape it fits of those measured (bench/results/2026-11-26-h200-gpu-check).
  const bool want_fused_full = method == ScatterMethod::kFused ||
                               (method == ScatterMethod::kAuto && fused_kernels_enabled());
  const bool fused_full = uses_gemm(mode) && want_fused_full &&
                          fused_full_shared_bytes(k, d, mode == Mode::kTied, rb) > 0;
  if (method == ScatterMethod::kAuto || method == ScatterMethod::kFused) {
    method = scatter_method_for(d, k);
  }
  const bool tiled = !fused_full && uses_gemm(mode) && method == ScatterMethod::kTiled &&
                     scatter_tiled_supported(d);
  tiled_scatter_ = tiled;
  fused_full_ = fused_full;
  EMIX_CUDA_TRY(cudaMemsetAsync(d_acc_.data(), 0, static_cast<std::size_t>(total) * 8, s));

  for_each_chunk([&](const T* x, const double* w, std::int64_t, std::int64_t count) {
    if (fused_full) {
      launch_fused_full<T>(x, count, d, p_c0(), w, p_u(), mode == Mode::kTied, p_a(), p_shift(),
                           p_log_norm(), p_log_w(), k, rb, d_part_.data(), total, s);
      launch_reduce_partials<T>(d_part_.data(), total, stats_blocks(count, rb), nullptr, 0, d,
                                total, d_acc_.data(), s);
      return;
    }
    if (fused) {
      launch_fused_stats<T>(mode == Mode::kLinear, x, count, d, p_c0(), w, p_a(), p_b(), p_shift(),
                            p_log_norm(), p_log_w(), k, trials, rb, d_part_.data(), stride, s);
      launch_reduce_partials<T>(d_part_.data(), stride, stats_blocks(count, rb), nullptr, 0, d,
                                total, d_acc_.data(), s);
      return;
    }
    const std::int64_t padded = round_up(count, rb);
    const std::int64_t n_part = stats_blocks(padded, rb);
    const std::int64_t n_q = padded / rb;
    launch_stage_rows<T>(x, count, padded, d, p_c0(), d_xc_.data(), plan_.ld, s);
    log_joint(m, padded);
    launch_estep_rows<T>(d_lj_.data(), plan_.ld, k, count, padded, w, d_xc_.data(), d, trials,
                         d_g_.data(), d_ll_.data(), d_wrow_.data(), s);
    T* z = uses_gemm(mode) && !tiled ? d_yz_.data() : nullptr;
    launch_stats_partials<T>(d_g_.data(), d_ll_.data(), d_wrow_.data(), d_xc_.data(), plan_.ld,
                             p_shift(), k, d, padded, rb, mode == Mode::kDiag, z, d_part_.data(),
                             stride, s);
    if (tiled) {
      // One partial per statistics block (not per block_rows rows): an eighth of the GEMM's.
      launch_scatter_tiled<T>(d_g_.data(), d_xc_.data(), plan_.ld, p_shift(), k, d, padded,
                              std::int64_t{rb} * kRowsPerThread, d_qp_.data(), s);
      launch_reduce_partials<T>(d_part_.data(), stride, n_part, d_qp_.data(), n_part, d, total,
                                d_acc_.data(), s);
      return;
    }
    if (uses_gemm(mode)) {
      // Q block (k, b) = Z^T Z for the rb x D column-major block Z of component k, row block b.
      const T one = T(1), zero = T(0);
      const std::int64_t batches = std::int64_t{k} * n_q;
      const long long z_stride = static_cast<long long>(d) * rb;
      const long long q_stride = static_cast<long long>(d) * d;
      for (std::int64_t first = 0; first < batches; first += INT_MAX) {
        const int count_b = static_cast<int>(std::min<std::int64_t>(INT_MAX, batches - first));
        EMIX_CUBLAS_TRY(Blas<T>::gemm_batched(
            blas_->get(), CUBLAS_OP_T, CUBLAS_OP_N, d, d, rb, &one, z + first * z_stride, rb,
            z_stride, z + first * z_stride, rb, z_stride, &zero, d_qp_.data() + first * q_stride, d,
            q_stride, count_b));
      }
    }
    launch_reduce_partials<T>(d_part_.data(), stride, n_part, d_qp_.data(), n_q, d, total,
                              d_acc_.data(), s);
  });

  EMIX_CUDA_TRY(cudaMemcpyAsync(h_stats_.data(), d_acc_.data(), static_cast<std::size_t>(total) * 8,
                                cudaMemcpyDeviceToHost, s));
  compute_.synchronize();
  std::memcpy(stats, h_stats_.data(), static_cast<std::size_t>(total) * 8);
  if (m.layout.has_scatter && m.layout.full_scatter) {
    // The GEMM gives each block symmetric up to rounding; keep one triangle so Q_k is exactly so.
    for (int c = 0; c < k; ++c) {
      double* q = stats + m.layout.q() + static_cast<std::size_t>(c) * d * d;
      for (int i = 0; i < d; ++i) {
        for (int j = i + 1; j < d; ++j) q[std::size_t(j) * d + i] = q[std::size_t(i) * d + j];
      }
    }
  }
}

template <typename T>
void GpuEngine<T>::evaluate(const PreparedModel& m, double* log_prob, double* resp,
                            std::int32_t* labels) {
  check_model(m);
  if (log_prob == nullptr && resp == nullptr && labels == nullptr) return;
  DeviceGuard guard(device_);
  ensure_workspace(m);
  upload_params(m);
  const cudaStream_t s = compute_.get();
  const int k = m.k, d = d_;
  const int trials = m.family == Family::kBinomial ? m.trials : 1;
  const int rb = plan_.block_rows;
  for_each_chunk([&](const T* x, const double*, std::int64_t first, std::int64_t count) {
    const std::int64_t padded = round_up(count, rb);
    launch_stage_rows<T>(x, count, padded, d, p_c0(), d_xc_.data(), plan_.ld, s);
    log_joint(m, padded);
    launch_evaluate_rows<T>(d_lj_.data(), plan_.ld, k, count, d_xc_.data(), d, trials,
                            log_prob != nullptr ? d_ll_.data() : nullptr,
                            resp != nullptr ? d_g_.data() : nullptr,
                            labels != nullptr ? d_labels_.data() : nullptr, s);
    // Copies to pageable memory return once complete, so the buffers are free for the next chunk.
    const std::size_t n = static_cast<std::size_t>(count);
    if (log_prob != nullptr) {
      EMIX_CUDA_TRY(
          cudaMemcpyAsync(log_prob + first, d_ll_.data(), n * 8, cudaMemcpyDeviceToHost, s));
    }
    if (resp != nullptr) {
      EMIX_CUDA_TRY(
          cudaMemcpyAsync(resp + first * k, d_g_.data(), n * k * 8, cudaMemcpyDeviceToHost, s));
    }
    if (labels != nullptr) {
      EMIX_CUDA_TRY(
          cudaMemcpyAsync(labels + first, d_labels_.data(), n * 4, cudaMemcpyDeviceToHost, s));
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
  const std::int64_t batch = std::min(count, kGatherBatch);
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

bool device_available() {
  static const bool available = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count <= 0) {
      (void)cudaGetLastError();
      return false;
    }
    if (cudaFree(nullptr) != cudaSuccess) {  // creates the context: the runtime initialises
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }();
  return available;
}

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
                                      const EngineOptions& options) {
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
    return std::make_unique<GpuEngine<float>>(x, sample_weight, options);
  }
  return std::make_unique<GpuEngine<double>>(x, sample_weight, options);
}

void copy_to_device(void* device_destination, const void* host_source, std::size_t bytes) {
  cudaPointerAttributes attributes{};
  EMIX_CUDA_TRY(cudaPointerGetAttributes(&attributes, device_destination));
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
    throw InvalidArgument("the output buffer is not CUDA device memory, but the data are");
  }
  EMIX_CUDA_TRY(cudaMemcpy(device_destination, host_source, bytes, cudaMemcpyHostToDevice));
}

void set_fused_kernels(bool enabled) { g_fused_kernels.store(enabled, std::memory_order_relaxed); }

void set_scatter_method(ScatterMethod method) {
  g_scatter_method.store(method, std::memory_order_relaxed);
}

// The batched GEMM until bench/gpu_timing's per-shape comparison has been run on a GPU.
// Measured on an H200 (float32, N = 1e6..1e7; D x K = 16x16, 32x32, 8x4, 64x8): the batched
// GEMM was faster than the tiled kernel on every shape, by 10% to 40%.
ScatterMethod scatter_method_for(int, int) { return ScatterMethod::kBatchedGemm; }

bool fused_full_fits(int d, int k) {
  return k >= 1 && d >= 1 && fused_full_shared_bytes(k, d, false, kMaxBlockRows) > 0;
}

EngineInfo engine_info(const Engine& engine) {
  const auto* gpu = dynamic_cast<const GpuEngineBase*>(&engine);
  if (gpu == nullptr) {
    throw InvalidArgument("engine_info: \"" + engine.name() + "\" is not a GPU engine");
  }
  return gpu->info();
}

}  // namespace emix::gpu
