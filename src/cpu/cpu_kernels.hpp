// The CPU engine's hot loops, compiled once per x86-64 instruction-set level (cpu_kernels_*.cpp)
// and picked at run time by what the CPU reports (cpu_dispatch.cpp). This header is what the
// levels share with the rest of the library: plain data and function pointers, no Eigen and no
// standard containers, because each level's translation unit is compiled with its own -march and
// must not hand an inline function compiled for AVX-512 to code that runs on an older CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>

namespace emix::cpu {

// Instruction-set levels, lowest first. kBaseline is plain x86-64 (SSE2; or whatever the
// compiler's default is off x86-64); v2 adds SSE4.2 and POPCNT, v3 AVX2 and FMA, v4 AVX-512
// (F, BW, DQ, VL). kNative: a -DEMIX_NATIVE=ON build, one level compiled with -march=native.
enum class IsaLevel { kBaseline, kV2, kV3, kV4, kNative };

// "x86-64", "x86-64-v2", "avx2", "avx512" or "native": what the engine's name reports.
const char* to_string(IsaLevel level);

// How a tile's feature matrix F is built from its rows (see cpu_engine.cpp's header comment).
enum class FeatureKind {
  kPairs,    // Gaussian full / tied: [u, u_a u_b for a <= b], u = x - shift
  kSquares,  // Gaussian diag / spherical: [u, u^2]
  kRaw,      // Bernoulli / binomial: x
  // Gaussian models whose expansion would lose digits, computed component by component from x:
  // log-densities from U_k^T (x - mu_k), statistics about the centres (packed as kPairs /
  // kSquares with the centres as shifts).
  kDirectFull,  // full / tied
  kDirectDiag,  // diag / spherical
};

// Kinds whose tiles' matrix F is the rows themselves.
inline bool reads_rows_as_they_are(FeatureKind kind) {
  return kind == FeatureKind::kRaw || kind == FeatureKind::kDirectFull ||
         kind == FeatureKind::kDirectDiag;
}

// Full / tied direct kinds: U_k's upper triangle in panels of kTrianglePanel columns (the last
// one narrower), each panel's rows a = 0 .. (its last column) contiguous, kTrianglePanel (or its
// width) values a row: what the log-density kernel reads, in the order it reads them. Read from
// U in place, every row was another page at D = 2048, and the E-step ran at a sixth of its speed.
constexpr int kTrianglePanel = 8;
// Where the panel of columns [j0, j0 + width) starts: every panel before it is full.
inline std::int64_t triangle_panel_offset(int j0) {
  const std::int64_t m = j0 / kTrianglePanel;
  return m * (m + 1) / 2 * kTrianglePanel * kTrianglePanel;
}
// Values in one U's panels.
inline std::int64_t packed_triangle_size(int d) {
  const int full = d / kTrianglePanel * kTrianglePanel;
  return triangle_panel_offset(full) + std::int64_t{d} * (d - full);
}

// Everything a level's kernels read, for one pass over the data in element type T. Pointers are
// host memory owned by the engine for the duration of the call.
template <typename T>
struct TilePlan {
  const T* x = nullptr;  // N x D, row-major
  // Or, for T = double only, float rows (x null): a float engine's model whose log-densities
  // float arithmetic would not hold (cpu_engine.cpp, promotion).
  const float* x_float = nullptr;
  const double* sample_weight = nullptr;  // N, or null for all ones
  std::int64_t n = 0;
  int d = 0;
  int k = 0;
  int features = 0;
  std::int64_t block_rows = 0;  // rows per tile; fixed by the shape, never by the thread count
  FeatureKind kind = FeatureKind::kRaw;
  const T* shift = nullptr;  // D: m0, subtracted from every row (Gaussian; direct tied: m)
  const T* w = nullptr;      // features x K, column-major
  // Tied, expanded (kPairs): w's quadratic rows are the same in every column, and the
  // log-densities take them once per row; the statistics take the quadratic features' sums once,
  // from the rows' total weights, into component 0's (pooled_quadratic_statistics).
  bool shared_quadratic = false;
  const T* bias = nullptr;  // K
  // Direct full / tied in float: the bias in double (K), which the log-densities take in double
  // (cpu_kernels_impl.hpp, direct_log_densities); and, each component centred on its own mean,
  // r_k = U_k^T (mu_k - means_k) in double (K x D), means_k being mu_k rounded to float: the
  // kernels take y = U_k^T (x - means_k) - r_k, so that the rounding of the mean (eps |mu_k|,
  // large beside the spread for clusters far from the origin) moves no log-density.
  const double* direct_bias = nullptr;
  const double* mean_residuals = nullptr;
  // Bernoulli / binomial in float whose bias float would not hold: the bias in double (K), which
  // the float sums of x w, read by rows (Kernels::takes_raw_bias), are added to in double;
  // null: `bias` starts those sums.
  const double* raw_bias = nullptr;
  // Direct kinds: the means and centres (K x D, row-major) and u: full / tied, U_k in panels
  // (packed_triangle_size values), u_stride elements apart (0: tied, one U); diag / spherical,
  // 1 / sd_k as K x D.
  const T* means = nullptr;
  const T* centres = nullptr;
  const T* u = nullptr;
  std::int64_t u_stride = 0;
  // Direct tied where the difference holds its digits (cpu_engine.cpp, take_tied_projection_once):
  // z_k = U^T (mu_k - m) (K x D, row-major) for a point m (`shift`): the log-densities take
  // y = U^T (x - m) once per row and |y - z_k|^2 per component. Null: U^T (x - mu_k) per
  // component.
  const T* projected_means = nullptr;
  // Binomial: trials m, and log C(m, v) for v = 0..m (null: lgamma per entry, for large m).
  bool binomial = false;
  int trials = 0;
  const double* log_choose = nullptr;
  bool entropy = true;  // sum the responsibilities' entropy (PreparedModel::entropy)
  // Threads that share each tile's work (direct full / tied: its log-densities by components and
  // runs of rows, its scatter by columns), where the model's slots are fewer than the engine's
  // threads; 1 elsewhere. Every sum is the same whichever thread forms it.
  int threads = 1;
  // Test-only: keep subnormal responsibilities (no exp_or_zero flush), the reference that
  // tests/cpu_underflow_test.cpp compares the flushed engine with. Never set by the library.
  bool keep_negligible = false;
};

// Packed statistics of a slot: [log-likelihood, weight sum, entropy, N_k (K), T (K x features,
// column-major; row-major for direct full / tied, whose tiles add their sums component by
// component: column-major, each component's pass over its D (D + 1) / 2 sums read and wrote every
// cache line of all K)], each tile's sums added in double.
constexpr int kPackedTotals = 3;
inline std::int64_t packed_size(int k, int features) {
  return kPackedTotals + static_cast<std::int64_t>(k) * (1 + features);
}

// Items handed out one at a time to the threads that call a kernel with the same queue: each
// thread takes the next item until none is left, and keeps its work space from one item to the
// next. With a kernel call per item, each call allocated it afresh: in a Dask worker, whose
// MALLOC_TRIM_THRESHOLD_ makes every buffer over 128 KiB a fresh mapping, the page faults took a
// fifth of a pass (full D = 16, K = 16: 41 ms a block of 125,000 rows against 35 ms). A queue
// serves one kernel call per thread, once: `next` only grows.
//
// The thread that holds the caller's InterruptCheck (emix/interrupt.hpp) runs it as it takes an
// item; where it throws, the queue hands out nothing more and keeps the exception in
// `interrupted`. An item that throws on any thread (std::bad_alloc of its work space) does the
// same through fail(): an exception leaving a parallel region ends the process
// (std::terminate), where the caller's program, a Python session or an MPI job, should get an
// error. The caller rethrows either after the region (rethrow_if_stopped).
struct WorkQueue {
  explicit WorkQueue(std::int64_t items) : size(items) {}
  std::int64_t size = 0;           // items 0 .. size - 1
  std::int64_t next = 0;           // the next item to take (under `omp atomic`)
  std::exception_ptr interrupted;  // written by the thread that holds the check only
  std::exception_ptr failure;      // the first item's error, written by the thread that claimed it
  std::atomic<bool> failed{false};
};

// From the thread whose item threw: the first error is kept, and no item is handed out after it.
inline void fail(WorkQueue& queue, std::exception_ptr error) noexcept {
  if (!queue.failed.exchange(true)) queue.failure = std::move(error);
#pragma omp atomic write
  queue.next = queue.size;
}

inline void rethrow_if_stopped(const WorkQueue& queue) {
  if (queue.failure) std::rethrow_exception(queue.failure);
  if (queue.interrupted) std::rethrow_exception(queue.interrupted);
}

// Where the slots of a pass's plans lie: plan i's slot s at sums[i] + s * packed[i] doubles.
struct SlotLayout {
  std::int64_t n_rows = 0;
  double* const* sums = nullptr;
  const std::int64_t* packed = nullptr;
};

template <typename T>
struct Kernels {
  IsaLevel level;
  // Whether Bernoulli / binomial float plans may take TilePlan::raw_bias (their tiles then read
  // by rows): the levels with fused multiply-adds.
  bool takes_raw_bias;
  // For each slot s the queue hands out (of queue.size slots), adds the packed statistics of
  // each of the `count` plans' tiles in slot s, in increasing order, to that plan's slot s.
  // Slot s of n holds the tiles whose first row r has floor(r n / N) = s: contiguous runs of
  // rows, so that models whose tiles differ in size still meet in the same rows. The plans (all
  // over the same rows) walk their tiles together, a window of rows at a time, so that each read of
  // the rows serves every plan, and plans with the same features and tiles build each tile's
  // feature matrix once: each plan's sums are bitwise what it gives alone
  // (Engine::accumulate_many).
  void (*add_statistics)(const TilePlan<T>* plans, int count, const SlotLayout& layout,
                         WorkQueue& queue);
  // Per-row results of the tiles of each run r the queue hands out: tiles
  // [r n_tiles / queue.size, (r + 1) n_tiles / queue.size). Any output may be null.
  //   log_prob N, resp N x K row-major, labels N (argmax of the log-densities, lowest on ties)
  void (*evaluate)(const TilePlan<T>& plan, std::int64_t n_tiles, WorkQueue& queue,
                   double* log_prob, double* resp, std::int32_t* labels);
};

// Dense linear algebra on the host's covariances and scatters (double), compiled per level like
// the kernels above: in the library's other code, compiled for plain x86-64, Eigen's Cholesky,
// triangular solves and products at D = 2048 ran at a quarter of AVX-512's speed. Matrices are
// column-major unless said otherwise.
struct DenseKernels {
  IsaLevel level;
  // The Cholesky factor L (d x d, zero above the diagonal) of a symmetric d x d matrix
  // (row-major; its lower triangle is read); false where the factorisation fails.
  bool (*cholesky)(const double* a, int d, double* lower);
  // Columns [j0, j0 + width) of L^-1 (d x d), rows j0 and below: the rows above are zero, and
  // are not written.
  void (*lower_inverse_columns)(const double* lower, int d, int j0, int width, double* inverse);
  // q (d x d, row-major) += a^T b, a and b rows x d, row-major.
  void (*add_transposed_product)(const double* a, const double* b, std::int64_t rows, int d,
                                 double* q);
};

// The levels this build compiled, lowest first, and the highest of them this CPU supports.
int compiled_levels(IsaLevel* out, int capacity);
bool cpu_supports(IsaLevel level);
IsaLevel best_level();
// The kernels of a level (InvalidArgument when it was not compiled or the CPU lacks it).
const Kernels<float>& kernels_f32(IsaLevel level);
const Kernels<double>& kernels_f64(IsaLevel level);
// The dense kernels of the highest level this CPU supports.
const DenseKernels& dense_kernels();

}  // namespace emix::cpu
