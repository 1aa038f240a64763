// How the GPU engine lays out its work, as pure functions the CPU tests run: which path a model
// takes (the single-pass kernel or the general one), and one table of every buffer the engine
// holds, which drives the sizing of chunks, the allocation and engine_info's report. Plain C++.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "emix/model.hpp"
#include "kernels/fused_plan.hpp"

namespace emix::gpu {

// Which E-step kernels run. kAuto: the single-pass kernel wherever its plan fits the device's
// shared memory, else the general path (staged columns, cuBLAS for full / tied, one kernel per
// step). kFused insists on the single-pass kernel (InvalidArgument where it cannot run);
// kGeneral forces the general path (tests, benchmarks).
enum class GpuPath { kAuto, kFused, kGeneral };

// Per-engine settings for tests and benchmarks (the public EngineOptions choose the rest).
struct GpuSettings {
  GpuPath path = GpuPath::kAuto;
  // Host data streamed from pageable memory: page-lock (register) it once so that chunks copy
  // straight from it; false: copy each chunk through pinned staging buffers instead.
  bool register_host_memory = true;
  int max_tile_rows = 0;  // caps the single-pass kernel's tile rows (0: its own choice)
  // The single-pass kernel's softmax fast path (kernels/fused_estep.cuh, fused_softmax). Off
  // until an H100 / H200 run has timed it against the exact path (bench/gpu_timing's "-fastsm"
  // rows) and the GPU tests have passed with it.
  bool fast_softmax = false;
  // The single-pass kernel's row groups combined once a block instead of once a tile
  // (FusedPlan::block_combine). Off until an H100 / H200 run has timed it (gpu_timing's
  // "-blockc" rows) and the GPU tests have passed with it.
  bool block_combine = false;
  // Double-precision single-pass kernels in their lean form (FusedPlan::lean): twice the
  // occupancy for a longer phase A. Off until an H100 / H200 run has timed it (gpu_timing's
  // "-lean" rows) and the GPU tests have passed with it. Float kernels have no lean form.
  bool lean_double = false;
  // Small float diag / spherical models accumulated by the register kernel
  // (FusedPlan::rows_in_registers). Off until an H100 / H200 run has timed it (gpu_timing's
  // "-rowreg" rows) and the GPU tests have passed with it.
  bool row_registers = false;
};

// Settings with the variants named in `names` turned on: a comma-separated list of
// fast_softmax, block_combine, lean_double and row_registers (empty: the defaults). Throws
// InvalidArgument naming an unknown name, and `source` (where the list came from).
GpuSettings parse_gpu_variants(const std::string& names, const std::string& source);
// The settings of engines made without explicit ones (emix::make_gpu_engine): the variants named
// in the environment variable EMIX_GPU_VARIANTS, so that a benchmark or a test run on a GPU can
// time the program, the Python package and the peers' comparison with them; the defaults where
// it is unset or empty.
GpuSettings settings_from_environment();
// The variants these settings turn on, as parse_gpu_variants names them ("" for none).
std::string variant_names(const GpuSettings& settings);

struct PathChoice {
  bool fused = false;
  FusedPlan plan;      // when fused
  std::string reason;  // why the general path, when not fused
};

// Throws InvalidArgument for kFused where no plan fits. needs_double: why float arithmetic would
// not hold this model to float32's tolerance (empty where it would); the general path, which
// computes in double from the float rows, then runs it, unless kFused is insisted on.
PathChoice choose_path(Family family, Covariance covariance, int k, int d, int elem_size,
                       std::int64_t max_shared_bytes, const GpuSettings& settings,
                       const std::string& needs_double = {});

// The general path's chunk shape: statistics blocks of block_rows threads (a power of two,
// 32..256) each summing kGeneralRowsPerThread rows; per-chunk matrices padded to ld rows.
constexpr int kGeneralMaxBlockRows = 256;
constexpr int kGeneralRowsPerThread = 8;
struct GeneralChunk {
  std::int64_t rows = 0;
  int block_rows = 0;
  std::int64_t ld = 0;
  std::int64_t n_part = 0;  // statistics partials of a full chunk
  std::int64_t n_q = 0;     // scatter blocks of a full chunk (full / tied)
};
GeneralChunk general_chunk(std::int64_t rows);

// The exponent e for which sample weights up to `largest_weight`, times 2^-2e, are below 4. A
// float engine's general path sums the full and tied scatters as Z^T Z in float, with
// z = sqrt(g) (x - c) 2^-e, and multiplies them by 2^2e in double: weights beyond 2^+-100, which
// the general path takes in double, would otherwise overflow it or flush it to zero. 0 where the
// largest weight is within [2^-100, 2^100).
int scatter_exponent(double largest_weight);

// Every buffer an engine may hold. Device memory unless pinned.
enum class Buf : int {
  kData,              // host data uploaded once: N x D of T
  kWeights,           // sample weights uploaded once: N doubles
  kParams,            // the model's parameters as the kernels read them
  kLogChoose,         // binomial log C(m, x), m + 1 doubles
  kTotals,            // the statistics of all chunks
  kPartials,          // per-block (fused) or per-statistics-block (general) partial sums
  kStaged,            // general: x - c0 column-major, ld x D of T
  kLogJoint,          // general: K x ld doubles
  kResp,              // general: K x ld doubles (responsibilities, per-row outputs)
  kRowLogLik,         // general: ld doubles
  kRowWeight,         // general: ld doubles
  kRowEntropy,        // general: ld doubles
  kLabels,            // per-row labels of a chunk: int32
  kProjected,         // general, full / tied: y = xc U, and sqrt(g)(x - c_k): K D x ld of T
  kScatterParts,      // general, full / tied: K x n_q blocks of D x D of T
  kOutLogProb,        // fused evaluate: chunk rows doubles
  kOutResp,           // fused evaluate: chunk rows x K doubles
  kStreamRows,        // streaming: stream_slots chunks of rows x D of T
  kStreamWeights,     // streaming: stream_slots chunks of weights
  kHostTotals,        // pinned: the statistics copied back
  kHostStageRows,     // pinned: staging chunks of pageable host rows
  kHostStageWeights,  // pinned: staging chunks of host weights
  kCount
};
const char* describe(Buf buffer);
bool is_pinned(Buf buffer);

struct BufferPlanInputs {
  bool fused = false;
  FusedPlan fused_plan;  // when fused
  int fused_slices = 0;  // fused: blocks of the widest launch
  int data_size = 4;     // bytes per element of X (T)
  int k = 0;
  int d = 0;
  Family family = Family::kGaussian;
  Covariance covariance = Covariance::kFull;
  std::int64_t stats_size = 0;     // doubles of the statistics (packed where fused)
  std::int64_t trials = 1;         // binomial log C table: trials + 1 entries where trials > 1
  std::int64_t resident_rows = 0;  // rows of X uploaded once (0: device data or streaming)
  bool resident_weights = false;   // N weights uploaded once
  std::int64_t rows = 0;           // rows of X
  std::int64_t chunk_rows = 0;     // rows per launch (general: per chunk; fused: evaluate chunk)
  bool outputs = false;            // per-row outputs (evaluate) may be asked for
  int stream_slots = 0;            // streaming: chunks in flight; 0 when not streaming
  bool staging = false;            // streaming through pinned staging buffers
  bool weights = false;            // sample weights exist
};

struct BufferPlan {
  std::array<std::int64_t, static_cast<int>(Buf::kCount)> bytes{};
  std::int64_t operator[](Buf b) const { return bytes[static_cast<int>(b)]; }
  std::int64_t device_bytes() const;  // what a budget counts: device buffers
  std::int64_t pinned_bytes() const;
  // Device bytes besides X and the weights uploaded once (what the chunk size decides).
  std::int64_t working_bytes() const;
};

BufferPlan plan_buffers(const BufferPlanInputs& in);

// Parameter bytes the kernels read (kParams), by path. The general path's buffer holds
// general_param_doubles doubles (log w, log norm, shift, a, b) and, from byte
// general_param_typed_offset on, c0 and U in the data's type.
std::int64_t fused_param_bytes(const FusedPlan& plan);
std::int64_t general_param_doubles(int k, int d);
std::int64_t general_param_typed_offset(int k, int d);
std::int64_t general_param_bytes(int k, int d, int data_size, Covariance covariance, bool gaussian);

}  // namespace emix::gpu
