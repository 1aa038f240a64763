// The register kernel of small float diag / spherical models (row_estep.cuh): one row per lane,
// blocks of 8 warps, one or two blocks a multiprocessor (its lanes hold up to 136 float sums).
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda_utils.cuh"
#include "kernels/fused_estep.hpp"
#include "kernels/row_estep.cuh"

namespace emix::gpu {
namespace {

// One step of the warp's butterfly: lanes o apart exchange halves of their kHalf * 2 sums.
template <int kHalf, int kPadded>
__device__ __forceinline__ void row_butterfly_step(float (&v)[kPadded], int lane, int o) {
#pragma unroll
  for (int j = 0; j < kHalf; ++j) {
    const float got = __shfl_xor_sync(0xffffffffu, row_send(v, lane, o, kHalf, j), o);
    v[j] = row_keep(v, lane, o, kHalf, j) + got;
  }
}

// The warp's butterfly over its lanes' float sums, then each lane's share into its double
// totals; the float sums restart from zero.
template <int KP, int DP>
__device__ __forceinline__ void row_flush(float (&v)[RowShape<KP, DP>::kPadded],
                                          double (&owned)[RowShape<KP, DP>::kOwned], int lane) {
  constexpr int kPadded = RowShape<KP, DP>::kPadded;
  row_butterfly_step<kPadded / 2>(v, lane, 16);
  row_butterfly_step<kPadded / 4>(v, lane, 8);
  row_butterfly_step<kPadded / 8>(v, lane, 4);
  row_butterfly_step<kPadded / 16>(v, lane, 2);
  row_butterfly_step<kPadded / 32>(v, lane, 1);
#pragma unroll
  for (int i = 0; i < RowShape<KP, DP>::kOwned; ++i) owned[i] += static_cast<double>(v[i]);
#pragma unroll
  for (int i = 0; i < kPadded; ++i) v[i] = 0.0f;
}

template <int KP, int DP, bool kVectorRows, bool kAllComponents>
__global__ void __launch_bounds__(kRowThreads, 1)
    row_estep_kernel(const FusedPlan p, const FusedArgs<float, float> a,
                     const RowParams<KP, DP> q) {
  using Shape = RowShape<KP, DP>;
  __shared__ double acc[kRowWarps * Shape::kPadded];
  __shared__ double fin[3 * kRowThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  double* slice = a.part + blockIdx.x * a.layout.size();
  float v[Shape::kPadded];
#pragma unroll
  for (int i = 0; i < Shape::kPadded; ++i) v[i] = 0.0f;
  double owned[Shape::kOwned];
#pragma unroll
  for (int i = 0; i < Shape::kOwned; ++i) owned[i] = 0.0;
  FusedThreadSums sums;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kRowThreads;
  std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * kRowThreads + warp * 32;
  float next[DP], next_w;
  row_load<kVectorRows>(a, q, p.d, base + lane, next, next_w);
  int since_flush = 0;  // the same on every lane of the warp, as is base
  for (; base < a.count; base += stride) {
    float x[DP];
#pragma unroll
    for (int j = 0; j < DP; ++j) x[j] = next[j];
    const float w = next_w;
    const std::int64_t row = base + lane;
    // The next rows' reads in flight meanwhile.
    row_load<kVectorRows>(a, q, p.d, row + stride, next, next_w);
    if (row < a.count) row_accumulate<kAllComponents>(q, p.k, x, w, v, sums);
    if (++since_flush == kRowFlushRows) {
      row_flush<KP, DP>(v, owned, lane);
      since_flush = 0;
    }
  }
  if (since_flush > 0) row_flush<KP, DP>(v, owned, lane);
#pragma unroll
  for (int i = 0; i < Shape::kOwned; ++i) {
    acc[warp * Shape::kPadded + row_owned_first(lane, Shape::kOwned) + i] = owned[i];
  }
  fused_publish_sums(tid, p, fin, sums);
  __syncthreads();
  fused_finish_sums(tid, p, fin, slice);
  row_finish<KP, DP>(tid, p.k, p.d, a.layout, acc, slice);
}

// Whether a launch's rows are whole vectors: D = DP (4 or 8) and rows at 16-byte boundaries.
bool vector_rows(const FusedPlan& p, const float* x) {
  return p.d == p.dq && reinterpret_cast<std::uintptr_t>(x) % 16 == 0;
}

// Calls f(KP, DP, kVectorRows, kAllComponents) with the plan's padded shape and the two forms as
// std::integral_constant values.
template <typename F>
void with_row_shape(const FusedPlan& p, bool vectors, F&& f) {
  if (!row_kernel_fits(p)) {
    throw InvalidArgument("GPU engine: the register kernel cannot run K = " + std::to_string(p.k) +
                          ", D = " + std::to_string(p.d));
  }
  using Four = std::integral_constant<int, 4>;
  using Eight = std::integral_constant<int, 8>;
  const auto with_forms = [&](auto kp, auto dq) {
    const bool all = p.k == p.kp;
    if (vectors) {
      all ? f(kp, dq, std::true_type{}, std::true_type{})
          : f(kp, dq, std::true_type{}, std::false_type{});
    } else {
      all ? f(kp, dq, std::false_type{}, std::true_type{})
          : f(kp, dq, std::false_type{}, std::false_type{});
    }
  };
  if (p.kp == 4) {
    p.dq == 4 ? with_forms(Four{}, Four{}) : with_forms(Four{}, Eight{});
  } else {
    p.dq == 4 ? with_forms(Eight{}, Four{}) : with_forms(Eight{}, Eight{});
  }
}

template <typename KP, typename DP, typename Vectors, typename All>
constexpr auto kRowKernel = row_estep_kernel<KP::value, DP::value, Vectors::value, All::value>;

}  // namespace

int row_max_blocks(const FusedPlan& p) {
  int device = 0, sms = 0, per_sm = 0;
  EMIX_CUDA_TRY(cudaGetDevice(&device));
  EMIX_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // The most blocks either row form holds at once (the vector form can take fewer registers):
  // slices for every block of a launch; blocks beyond what a multiprocessor holds wait.
  for (const bool vectors : {false, true}) {
    if (vectors && p.d != p.dq) continue;
    with_row_shape(p, vectors, [&](auto kp, auto dq, auto vec, auto all) {
      int blocks = 0;
      EMIX_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          &blocks, kRowKernel<decltype(kp), decltype(dq), decltype(vec), decltype(all)>,
          kRowThreads, 0));
      per_sm = std::max(per_sm, blocks);
    });
  }
  if (per_sm < 1) throw CudaError("GPU engine: the register kernel cannot run on this device");
  return per_sm * sms;
}

void launch_row_accumulate(const FusedPlan& p, const FusedParams<float>& params,
                           const FusedArgs<float, float>& a, int grid, cudaStream_t stream) {
  if (a.count <= 0) return;
  if (grid < 1) throw InvalidArgument("GPU engine: a launch of no blocks");
  with_row_shape(p, vector_rows(p, a.x), [&](auto kp, auto dq, auto vec, auto all) {
    constexpr int KP = decltype(kp)::value, DP = decltype(dq)::value;
    kRowKernel<decltype(kp), decltype(dq), decltype(vec), decltype(all)>
        <<<grid, kRowThreads, 0, stream>>>(p, a, make_row_params<KP, DP>(p, params));
  });
  EMIX_CHECK_LAUNCH(stream);
}

}  // namespace emix::gpu
