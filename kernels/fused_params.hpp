// What the single-pass kernels read of a prepared model: its parameters in the compute type,
// padded to the plan's register blocks (fused_estep.cuh, FusedArgs). Built on the host in
// double and rounded once; the GPU engine uploads these arrays, and the CPU emulation of the
// kernels (tests) reads them as they are. Plain C++.
#pragma once

#include <vector>

#include "core/prepared_model.hpp"
#include "kernels/fused_plan.hpp"

namespace emix::gpu {

template <typename C>
struct FusedParams {
  std::vector<C> c0;     // dq: the shift taken off every row (Gaussian: the weighted mean of the
                         // centres; zero for Bernoulli / binomial)
  std::vector<C> a;      // kp x dq: mean_k - c0 (Gaussian), logit_k (Bernoulli / binomial)
  std::vector<C> b;      // kp x dq: diag / spherical: the precision Cholesky diagonal
  std::vector<C> shift;  // kp x dq: centre_k - c0
  std::vector<C> cst;    // kp: log w_k + log_norm_k; -inf for padding components
  std::vector<C> u;      // full: K x dq x dq8 (tied: dq x dq8), U_k row-major, zero-padded
  std::vector<double> log_choose;  // binomial: log C(m, x) for x = 0..m (m <= kMaxLogChoose)
};

// Binomial tables beyond this many trials are not built (the kernels call lgamma instead).
constexpr int kMaxLogChoose = 1 << 16;

// Throws InvalidArgument when the model's shape or family is not the plan's.
template <typename C>
FusedParams<C> make_fused_params(const PreparedModel& model, const FusedPlan& plan);

}  // namespace emix::gpu

namespace emix::gpu {

// Where each array of FusedParams sits in the one device buffer the engine uploads them to:
// element offsets, each a multiple of 4 (16-byte aligned for float, 32 for double).
struct FusedParamLayout {
  std::int64_t c0 = 0, a = 0, b = 0, shift = 0, cst = 0, u = 0, total = 0;
};
FusedParamLayout fused_param_layout(const FusedPlan& plan);

}  // namespace emix::gpu
