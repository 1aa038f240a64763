// Launchers of the single-pass E-step (fused_estep.cu; the algorithm is fused_estep.cuh).
// Only kernels/ includes this header. Every launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/fused_estep.cuh"
#include "kernels/fused_params.hpp"

namespace emix::gpu {

// The most shared memory a block may have on the current device (the opt-in limit).
std::int64_t fused_max_shared_bytes();

// Blocks of this plan's kernel (with plan.rows_in_registers, accumulating: the register kernel's)
// that the current device holds at once (occupancy times multiprocessors): the largest grid worth
// launching, and so the number of statistics slices a launch may need.
template <typename T, typename C>
int fused_max_blocks(const FusedPlan& plan, bool evaluate);

// Statistics of a.count rows into slices a.part[b * a.layout.size() ...] of grid blocks,
// grid = fused_grid(plan, a.count, max_blocks).
template <typename T, typename C>
void launch_fused_accumulate(const FusedPlan& plan, const FusedArgs<T, C>& a, int grid,
                             cudaStream_t stream);
// log p(x), p(k | x) and labels of a.count rows (each output optional) into device memory.
template <typename T, typename C>
void launch_fused_evaluate(const FusedPlan& plan, const FusedArgs<T, C>& a, int grid,
                           cudaStream_t stream);

// The register kernel (row_estep.cuh; plan.rows_in_registers): the blocks the device holds at
// once, and statistics of a.count float rows into a.part's slices as launch_fused_accumulate.
// The parameters travel in the launch (host values of the plan's FusedParams).
int row_max_blocks(const FusedPlan& plan);
void launch_row_accumulate(const FusedPlan& plan, const FusedParams<float>& params,
                           const FusedArgs<float, float>& a, int grid, cudaStream_t stream);

}  // namespace emix::gpu
