// The single-pass E-step kernels: the phases of fused_estep.cuh in order, a barrier between
// each, one block of kFusedThreads threads per resident slot, tiles b, b + gridDim, ...
#include <string>
#include <type_traits>

#include "kernels/cuda_utils.cuh"
#include "kernels/fused_estep.hpp"

namespace emix::gpu {
namespace {

// Register budget: two blocks of 256 threads per multiprocessor (128 registers) in float and in
// the lean double kernels (FusedPlan::lean); the default double kernels' register blocks need
// more, one block.
template <typename C, bool kLean>
constexpr int kMinBlocks = sizeof(C) == 4 || kLean ? 2 : 1;

template <FusedFamily F, typename T, typename C, bool kEvaluate, bool kLean>
__global__ void __launch_bounds__(kFusedThreads, (kMinBlocks<C, kLean>))
    fused_estep_kernel(const FusedPlan p, const FusedArgs<T, C> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const FusedShared<C> s = carve_shared<C>(smem, p);
  const int tid = static_cast<int>(threadIdx.x);
  double* slice = kEvaluate ? nullptr : a.part + blockIdx.x * a.layout.size();
  fused_clear(tid, p, s);
  FusedThreadSums sums;
  const std::int64_t tiles = fused_tiles(p, a.count);
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t row0 = tile * p.rows;
    const int rows = static_cast<int>(min(static_cast<std::int64_t>(p.rows), a.count - row0));
    __syncthreads();  // the previous tile's readers of xs and lg are done (or the clear is)
    fused_stage(tid, p, a, s, row0, rows);
    __syncthreads();
    fused_log_joint<F, T, C, kLean ? 4 : 8>(tid, p, a, s);
    __syncthreads();
    if constexpr (kEvaluate) {
      fused_evaluate_rows<F>(tid, p, a, s, row0, rows);
      if (a.resp != nullptr) {
        __syncthreads();
        fused_write_responsibilities(tid, p, a, s, row0, rows);
      }
    } else {
      fused_responsibilities<F>(tid, p, a, s, rows, sums);
      __syncthreads();
      const bool first = tile == blockIdx.x;
      for (int round = 0; round < p.rounds; ++round) {
        fused_statistics_round<F>(tid, p, a, s, rows, round, slice, first);
        if (p.row_groups > 1 && !p.block_combine) {
          __syncthreads();
          fused_combine_groups<F>(tid, p, a, s.red, slice, first);
          __syncthreads();  // red is written again by the next round or tile
        }
      }
    }
  }
  if constexpr (!kEvaluate) {
    fused_publish_sums(tid, p, s.fin, sums);
    __syncthreads();  // fin and (block_combine) acc are complete
    fused_finish_sums(tid, p, s.fin, slice);
    if (p.row_groups > 1 && p.block_combine)
      fused_combine_groups<F>(tid, p, a, s.acc(), slice, true);
  }
}

template <typename T, typename C, bool kEvaluate>
using KernelPointer = void (*)(const FusedPlan, const FusedArgs<T, C>);

template <typename T, typename C, bool kEvaluate, bool kLean>
KernelPointer<T, C, kEvaluate> kernel_of(FusedFamily family) {
  switch (family) {
    case FusedFamily::kDiag:
      return fused_estep_kernel<FusedFamily::kDiag, T, C, kEvaluate, kLean>;
    case FusedFamily::kLinear:
      return fused_estep_kernel<FusedFamily::kLinear, T, C, kEvaluate, kLean>;
    case FusedFamily::kFull:
      return fused_estep_kernel<FusedFamily::kFull, T, C, kEvaluate, kLean>;
  }
  throw InvalidArgument("GPU engine: unknown kernel family");
}

// The plan's kernel: lean only in double (choose_path sets it for nothing else).
template <typename T, typename C, bool kEvaluate>
KernelPointer<T, C, kEvaluate> kernel_for(const FusedPlan& p) {
  if constexpr (sizeof(C) == 8) {
    if (p.lean) return kernel_of<T, C, kEvaluate, true>(p.family);
  }
  return kernel_of<T, C, kEvaluate, false>(p.family);
}

// Blocks with more than 48 KiB of dynamic shared memory must ask for it.
template <typename Kernel>
void allow_shared(Kernel kernel, std::int64_t bytes) {
  EMIX_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(bytes)));
}

template <typename T, typename C, bool kEvaluate>
void launch(const FusedPlan& p, const FusedArgs<T, C>& a, int grid, cudaStream_t stream) {
  if (a.count <= 0) return;
  if (grid < 1 || grid != fused_grid(p, a.count, grid)) {
    throw InvalidArgument("GPU engine: a launch of " + std::to_string(grid) + " blocks over " +
                          std::to_string(fused_tiles(p, a.count)) +
                          " tiles would leave a block without rows");
  }
  const auto kernel = kernel_for<T, C, kEvaluate>(p);
  allow_shared(kernel, p.shared_bytes);
  kernel<<<grid, p.threads, static_cast<std::size_t>(p.shared_bytes), stream>>>(p, a);
  EMIX_CHECK_LAUNCH(stream);
}

}  // namespace

std::int64_t fused_max_shared_bytes() {
  int device = 0, bytes = 0;
  EMIX_CUDA_TRY(cudaGetDevice(&device));
  EMIX_CUDA_TRY(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

template <typename T, typename C>
int fused_max_blocks(const FusedPlan& p, bool evaluate) {
  if constexpr (std::is_same_v<C, float>) {
    if (!evaluate && p.rows_in_registers) return row_max_blocks(p);
  }
  int device = 0, sms = 0, per_sm = 0;
  EMIX_CUDA_TRY(cudaGetDevice(&device));
  EMIX_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const std::size_t shared = static_cast<std::size_t>(p.shared_bytes);
  if (evaluate) {
    const auto kernel = kernel_for<T, C, true>(p);
    allow_shared(kernel, p.shared_bytes);
    EMIX_CUDA_TRY(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, p.threads, shared));
  } else {
    const auto kernel = kernel_for<T, C, false>(p);
    allow_shared(kernel, p.shared_bytes);
    EMIX_CUDA_TRY(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, p.threads, shared));
  }
  if (per_sm < 1) {
    throw CudaError("GPU engine: the E-step kernel cannot run with " +
                    std::to_string(p.shared_bytes) + " bytes of shared memory per block");
  }
  return per_sm * sms;
}

template <typename T, typename C>
void launch_fused_accumulate(const FusedPlan& p, const FusedArgs<T, C>& a, int grid,
                             cudaStream_t stream) {
  launch<T, C, false>(p, a, grid, stream);
}

template <typename T, typename C>
void launch_fused_evaluate(const FusedPlan& p, const FusedArgs<T, C>& a, int grid,
                           cudaStream_t stream) {
  launch<T, C, true>(p, a, grid, stream);
}

#define EMIX_INSTANTIATE(T)                                                                  \
  template int fused_max_blocks<T, T>(const FusedPlan&, bool);                               \
  template void launch_fused_accumulate<T, T>(const FusedPlan&, const FusedArgs<T, T>&, int, \
                                              cudaStream_t);                                 \
  template void launch_fused_evaluate<T, T>(const FusedPlan&, const FusedArgs<T, T>&, int,   \
                                            cudaStream_t);
EMIX_INSTANTIATE(float)
EMIX_INSTANTIATE(double)
#undef EMIX_INSTANTIATE

}  // namespace emix::gpu
