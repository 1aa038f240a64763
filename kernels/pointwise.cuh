// Per-point E-step math shared by the GPU kernels and their CPU tests (tests/pointwise_test.cpp
// compiles this header with the host compiler). Plain C++ apart from the EMIX_HD qualifier: no
// CUDA header is needed, so nothing here may call a CUDA-only function.
#pragma once

#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define EMIX_HD __host__ __device__
#else
#define EMIX_HD
#endif

namespace emix::gpu {

EMIX_HD inline double negative_infinity() { return -HUGE_VAL; }

// The two parts of a log-sum-exp over v[k * stride], k < n: the largest term and
// sum_k exp(v_k - max), in which the largest term contributes exactly exp(0) = 1.
struct LogSumExp {
  double max;
  double sum;
};

// NaN in any term gives max = NaN; no terms, or every term -inf, gives max = -inf.
EMIX_HD inline LogSumExp log_sum_exp_parts(const double* v, int n, std::int64_t stride) {
  LogSumExp p{negative_infinity(), 0.0};
  for (int k = 0; k < n; ++k) {
    const double t = v[k * stride];
    if (t != t) return LogSumExp{t, t};
    if (t > p.max) p.max = t;
  }
  if (!(p.max > negative_infinity()) || p.max == -negative_infinity()) return p;
  for (int k = 0; k < n; ++k) p.sum += exp(v[k * stride] - p.max);
  return p;
}

// log sum_k exp(v_k) = max + log(sum), as scikit-learn's logsumexp: -inf when every term is
// -inf, +inf when a term is +inf, NaN when a term is NaN.
EMIX_HD inline double log_sum_exp_value(const LogSumExp& p) {
  if (!(p.max > negative_infinity()) || p.max == -negative_infinity()) return p.max;
  return p.max + log(p.sum);
}

EMIX_HD inline double log_sum_exp_strided(const double* v, int n, std::int64_t stride) {
  return log_sum_exp_value(log_sum_exp_parts(v, n, stride));
}

// p(k | x) = exp(v_k - max) / sum. Not exp(v_k - lse): lse rounds at the scale of |v_k|, which
// would make the responsibilities of rows with large |log p| sum to 1 only within |v| * 1e-16.
// Zero when every component has density zero (max = -inf), where the ratio would be 0 / 0.
EMIX_HD inline double responsibility(double v, const LogSumExp& p) {
  return p.max == negative_infinity() ? 0.0 : exp(v - p.max) / p.sum;
}

// The first k (lowest index on ties) with the largest v[k * stride]; 0 when every term is NaN.
EMIX_HD inline int argmax_strided(const double* v, int n, std::int64_t stride) {
  int best = 0;
  double best_value = v[0];
  for (int k = 1; k < n; ++k) {
    const double t = v[k * stride];
    if (t > best_value || (best_value != best_value && t == t)) {
      best = k;
      best_value = t;
    }
  }
  return best;
}

// log C(m, x) = lgamma(m + 1) - lgamma(x + 1) - lgamma(m - x + 1), for a count x in 0..m of
// successes out of m trials (one term of the binomial log-density's log_binom(x)).
EMIX_HD inline double log_binomial_coefficient(double m, double x) {
  return lgamma(m + 1.0) - lgamma(x + 1.0) - lgamma(m - x + 1.0);
}

// A row's contribution w * log p(x) to the log-likelihood. A row of weight zero contributes
// nothing, even where log p(x) = -inf (0 * -inf would be NaN).
EMIX_HD inline double weighted_log_prob(double w, double log_prob) {
  return w == 0.0 ? 0.0 : w * log_prob;
}

}  // namespace emix::gpu
