// The per-row rules of the E-step, written once for every engine: the CPU engine, the GPU kernels
// and their CPU tests (tests/pointwise_test.cpp) compile this header. Plain C++ apart from the
// EMIX_HD qualifier, templated on the arithmetic type (float or double) where a kernel may
// compute in float: nothing here may call a CUDA-only function.
#pragma once

#include <math.h>

#include <cstdint>

#include "core/host_device.hpp"

namespace emix {

template <typename V = double>
EMIX_HD inline V negative_infinity() {
  return static_cast<V>(-HUGE_VAL);
}

// exp and log in the arithmetic type (expf / logf for float).
EMIX_HD inline double exp_of(double v) { return exp(v); }
EMIX_HD inline float exp_of(float v) { return expf(v); }
EMIX_HD inline double log_of(double v) { return log(v); }
EMIX_HD inline float log_of(float v) { return logf(v); }

// Underflow: a term exp(v_k - max) with v_k - max below log_negligible<V>() is exactly zero, in
// the log-sum-exp and in the responsibilities alike. Such a term is below 5e-283 (double) or 4e-31
// (float) of the row's largest one, so it cannot change the sum it joins (which is >= 1: the
// largest term is exp(0)) by a single bit, and it changes a component's N_k by less than
// N * 5e-283 (4e-31), far below the 1e-12 N at which maximize() calls a Gaussian component empty
// (a Bernoulli or binomial one is empty at N_k = 0 only: in float, one whose every term is
// zeroed so is empty, and re-seeded, where double would keep its weight of 1e-31 N and less).
// Left in,
// such terms are subnormal (or Eigen's vectorised exp clamps them to the smallest normal, which
// dividing by the sum makes subnormal), and subnormal operands take a microcode path that made the
// CPU engine's matrix products 40-80x slower on well-separated data. The thresholds leave 2^84
// (double) and 2^25 (float) of head-room above the smallest normal number for the division by the
// sum (<= K) and a sample weight, so that what does reach the products is zero or normal.
template <typename V>
EMIX_HD constexpr V log_negligible();
template <>
EMIX_HD constexpr double log_negligible<double>() {
  return -650.0;
}
template <>
EMIX_HD constexpr float log_negligible<float>() {
  return -70.0f;
}

// exp(difference), or exactly zero where the term is negligible (see log_negligible).
template <typename V>
EMIX_HD inline V exp_or_zero(V difference) {
  return difference < log_negligible<V>() ? V(0) : exp_of(difference);
}

// The two parts of a log-sum-exp over v[k * stride], k < n: the largest term and
// sum_k exp(v_k - max), in which the largest term contributes exactly exp(0) = 1.
template <typename V = double>
struct LogSumExp {
  V max;
  V sum;
};

// NaN in any term gives max = NaN; no terms, or every term -inf, gives max = -inf.
template <typename V>
EMIX_HD inline LogSumExp<V> log_sum_exp_parts(const V* v, int n, std::int64_t stride) {
  LogSumExp<V> p{negative_infinity<V>(), V(0)};
  for (int k = 0; k < n; ++k) {
    const V t = v[k * stride];
    if (t != t) return LogSumExp<V>{t, t};
    if (t > p.max) p.max = t;
  }
  if (!(p.max > negative_infinity<V>()) || p.max == -negative_infinity<V>()) return p;
  for (int k = 0; k < n; ++k) p.sum += exp_or_zero(v[k * stride] - p.max);
  return p;
}

// log sum_k exp(v_k) = max + log(sum), as scikit-learn's logsumexp: -inf when every term is
// -inf, +inf when a term is +inf, NaN when a term is NaN.
template <typename V>
EMIX_HD inline V log_sum_exp_value(const LogSumExp<V>& p) {
  if (!(p.max > negative_infinity<V>()) || p.max == -negative_infinity<V>()) return p.max;
  return p.max + log_of(p.sum);
}

// p(k | x) = exp(v_k - max) / sum. Not exp(v_k - lse): lse rounds at the scale of |v_k|, which
// would make the responsibilities of rows with large |log p| sum to 1 only within |v| * 1e-16.
// Zero when every component has density zero (max = -inf), where the ratio would be 0 / 0, and
// where the term is negligible (exp_or_zero).
template <typename V>
EMIX_HD inline V responsibility(V v, const LogSumExp<V>& p) {
  return p.max == negative_infinity<V>() ? V(0) : exp_or_zero(v - p.max) / p.sum;
}

// The entropy -sum_k p_k log p_k of the responsibilities of log-joints v[k * stride], k < n, with
// their log-sum-exp parts p: log(sum) - sum_k e_k (v_k - max) / sum, e_k = exp_or_zero(v_k -
// max), two non-negative terms; a negligible term adds nothing, as p log p -> 0. 0 when every
// density is zero; NaN where the log-likelihood is not finite (a NaN or +inf term).
template <typename V>
EMIX_HD inline V responsibility_entropy(const V* v, int n, std::int64_t stride,
                                        const LogSumExp<V>& p) {
  if (p.max != p.max || p.max == -negative_infinity<V>()) return p.max - p.max;  // NaN
  if (!(p.max > negative_infinity<V>())) return V(0);
  V shifted = V(0);
  for (int k = 0; k < n; ++k) {
    const V t = v[k * stride] - p.max;
    const V e = exp_or_zero(t);
    if (e > V(0)) shifted += e * t;  // a term of density zero (t = -inf) adds nothing
  }
  return log_of(p.sum) - shifted / p.sum;
}

// Turns the log-joints v[k * stride], k < n, into weight * p(k | x) in place and returns the
// log-sum-exp parts: the values of weight * responsibility(v_k, parts) (0 where weight is 0),
// bitwise, with each exp computed once where the largest term is finite. With `entropy`, also
// the responsibilities' entropy H = -sum_k p_k log p_k (before the weight): log(sum) -
// sum_k e_k (v_k - max) / sum with e_k = exp_or_zero(v_k - max), two non-negative terms, a
// negligible term adding nothing (as p log p -> 0); 0 when every density is zero, NaN or inf
// where the log-likelihood is.
template <typename V>
EMIX_HD inline LogSumExp<V> softmax_in_place(V* v, int n, std::int64_t stride, V weight,
                                             V* entropy = nullptr) {
  V max = negative_infinity<V>();
  bool nan = false;
  for (int k = 0; k < n; ++k) {
    const V t = v[k * stride];
    if (t != t) nan = true;
    if (t > max) max = t;
  }
  if (nan || !(max > negative_infinity<V>()) || max == -negative_infinity<V>()) {
    const LogSumExp<V> p = log_sum_exp_parts(v, n, stride);
    if (entropy != nullptr) *entropy = responsibility_entropy(v, n, stride, p);
    for (int k = 0; k < n; ++k) {
      v[k * stride] = weight == V(0) ? V(0) : weight * responsibility(v[k * stride], p);
    }
    return p;
  }
  V sum = V(0), shifted = V(0);
  for (int k = 0; k < n; ++k) {
    const V t = v[k * stride] - max;
    const V e = exp_or_zero(t);
    v[k * stride] = e;
    sum += e;
    // A term of density zero (t = -inf) adds nothing, not 0 * -inf.
    if (entropy != nullptr && e > V(0)) shifted += e * t;
  }
  for (int k = 0; k < n; ++k) {
    v[k * stride] = weight == V(0) ? V(0) : weight * (v[k * stride] / sum);
  }
  if (entropy != nullptr) *entropy = log_of(sum) - shifted / sum;
  return LogSumExp<V>{max, sum};
}

// The first k (lowest index on ties) with the largest v[k * stride]; 0 when every term is NaN.
template <typename V>
EMIX_HD inline int argmax_strided(const V* v, int n, std::int64_t stride) {
  int best = 0;
  V best_value = v[0];
  for (int k = 1; k < n; ++k) {
    const V t = v[k * stride];
    if (t > best_value || (best_value != best_value && t == t)) {
      best = k;
      best_value = t;
    }
  }
  return best;
}

// lgamma(n + 1) - ((n + 0.5) log n - n + log sqrt(2 pi)), the error of Stirling's formula
// (R's stirlerr): by its series beyond 15, where the next term is below 3e-16 of it.
EMIX_HD inline double stirling_error(double n) {
  if (n <= 15) return lgamma(n + 1.0) - (n + 0.5) * log(n) + n - 0.91893853320467274178;
  const double nn = n * n;
  return (1.0 / 12 - (1.0 / 360 - (1.0 / 1260 - (1.0 / 1680 - 1.0 / 1188 / nn) / nn) / nn) / nn) /
         n;
}

// log C(m, x) for a count x in 0..m of successes out of m trials (one term of the binomial
// log-density's log_binom(x)). lgamma(m + 1) - lgamma(x + 1) - lgamma(m - x + 1) cancels terms
// of size m log m: 4e10 at m = 2^31, whose rounding left 3e-6 of a value near 1e9 (and all of
// log C(m, 1) = log m but 2e-7). From 64 trials on, Loader's form cancels them in closed form,
// a log(m / a) + b log(1 + a / b) with a the smaller of x and m - x and b the other (log1p: m / b
// is near 1), and leaves Stirling's small errors. Below, where lgamma(m + 1) is under 205 and its
// rounding 3e-14, the three lgamma calls, which cost half as much (engines without a table, the
// GPU's general path, call this for every value of every E-step).
EMIX_HD inline double log_binomial_coefficient(double m, double x) {
  const double a = x < m - x ? x : m - x, b = m - a;
  if (a == 0) return 0;
  if (m < 64) return lgamma(m + 1.0) - lgamma(a + 1.0) - lgamma(b + 1.0);
  return a * log(m / a) + b * log1p(a / b) + 0.5 * log(m / (6.283185307179586477 * a * b)) +
         (stirling_error(m) - stirling_error(a) - stirling_error(b));
}

// A row's contribution w * log p(x) to the log-likelihood. A row of weight zero contributes
// nothing, even where log p(x) = -inf (0 * -inf would be NaN).
EMIX_HD inline double weighted_log_prob(double w, double log_prob) {
  return w == 0.0 ? 0.0 : w * log_prob;
}

}  // namespace emix
