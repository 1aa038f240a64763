// The per-row E-step rules (src/core/pointwise.hpp), compiled here by the host compiler and
// checked against closed forms and the CPU engine's own log C(m, x).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/pointwise.hpp"
#include "core/prepared_model.hpp"

namespace {

using emix::argmax_strided;
using emix::log_binomial_coefficient;
using emix::responsibility;
using emix::weighted_log_prob;

constexpr double kInf = std::numeric_limits<double>::infinity();

// log sum_k exp(v[k * stride]), as the engines compose it.
double log_sum_exp_strided(const double* v, int n, std::int64_t stride) {
  return emix::log_sum_exp_value(emix::log_sum_exp_parts(v, n, stride));
}

double lse(const std::vector<double>& v) {
  return log_sum_exp_strided(v.data(), static_cast<int>(v.size()), 1);
}

TEST(Pointwise, LogSumExpOfLargeNegativeValuesDoesNotUnderflow) {
  // Naively exp(-1000) underflows to 0 and the log is -inf.
  EXPECT_NEAR(lse({-1000.0, -1001.0}), -1000.0 + std::log1p(std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(lse({-745.0, -745.0, -745.0}), -745.0 + std::log(3.0), 1e-12);
  EXPECT_NEAR(lse({1000.0, 1000.0}), 1000.0 + std::log(2.0), 1e-12);  // no overflow either
}

TEST(Pointwise, LogSumExpMatchesNaiveSumForModerateValues) {
  std::mt19937_64 rng(20240611);
  std::uniform_real_distribution<double> u(-30.0, 30.0);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> v(1 + trial % 9);
    double naive = 0;
    for (double& x : v) {
      x = u(rng);
      naive += std::exp(x);
    }
    EXPECT_NEAR(lse(v), std::log(naive), 1e-13 * std::max(1.0, std::abs(std::log(naive))))
        << "trial " << trial << " (seed 20240611)";
  }
}

TEST(Pointwise, LogSumExpLargestTermExactAndSingleTerm) {
  EXPECT_EQ(lse({-3.25}), -3.25);  // m + log(exp(0)) = m exactly
  EXPECT_EQ(lse({0.0}), 0.0);
}

TEST(Pointwise, LogSumExpSpecialValues) {
  EXPECT_EQ(log_sum_exp_strided(static_cast<const double*>(nullptr), 0, 1), -kInf);
  EXPECT_EQ(lse({-kInf, -kInf}), -kInf);
  EXPECT_EQ(lse({-kInf, 2.0}), 2.0);
  EXPECT_EQ(lse({1.0, kInf}), kInf);
  EXPECT_TRUE(std::isnan(lse({1.0, std::nan("")})));
  EXPECT_TRUE(std::isnan(lse({-kInf, std::nan("")})));
}

TEST(Pointwise, LogSumExpStrided) {
  // Column 1 of a 3 x 4 column-major layout: elements 1, 5, 9.
  const std::vector<double> v = {9, -2.0, 9, 9, 9, -3.0, 9, 9, 9, -4.0, 9, 9};
  const double expected = std::log(std::exp(-2.0) + std::exp(-3.0) + std::exp(-4.0));
  EXPECT_NEAR(log_sum_exp_strided(v.data() + 1, 3, 4), expected, 1e-15);
}

TEST(Pointwise, ResponsibilitiesSumToOne) {
  // Large |log p|: exp(v - lse) would sum to 1 only within about 1000 * 1e-16.
  const std::vector<double> v = {-1000.0, -1001.5, -999.25, -1200.0};
  const emix::LogSumExp<double> parts = emix::log_sum_exp_parts(v.data(), 4, 1);
  double sum = 0;
  for (double x : v) sum += responsibility(x, parts);
  EXPECT_NEAR(sum, 1.0, 4e-16 * static_cast<double>(v.size()));
  EXPECT_EQ(responsibility(-999.25, parts), 1.0 / parts.sum);  // the largest: exp(0) / sum
  const std::vector<double> none = {-kInf, -kInf};
  const emix::LogSumExp<double> empty = emix::log_sum_exp_parts(none.data(), 2, 1);
  EXPECT_EQ(responsibility(-kInf, empty), 0.0);  // not 0 / 0
  const std::vector<double> one_live = {-kInf, -5.0};
  EXPECT_EQ(responsibility(-kInf, emix::log_sum_exp_parts(one_live.data(), 2, 1)), 0.0);
  EXPECT_EQ(responsibility(-5.0, emix::log_sum_exp_parts(one_live.data(), 2, 1)), 1.0);
}

// The entropy softmax_in_place returns (the GPU's single-pass E-step takes it so) against
// -sum p log p from the naive formula, its responsibilities unchanged by asking for it, and its
// edge cases: one live component, every density zero, a negligible term, a NaN.
TEST(Pointwise, SoftmaxEntropyMatchesTheNaiveFormula) {
  const auto naive = [](const std::vector<double>& v) {
    double mx = -kInf;
    for (double x : v) mx = std::max(mx, x);
    double sum = 0;
    for (double x : v) sum += std::exp(x - mx);
    double h = 0;
    for (double x : v) {
      const double p = std::exp(x - mx) / sum;
      if (p > 0) h -= p * std::log(p);
    }
    return h;
  };
  for (const std::vector<double>& v : {std::vector<double>{-1000.0, -1001.5, -999.25, -1200.0},
                                       {0.5, 0.5, 0.5},
                                       {-3.0, -2.0},
                                       {-7.0},
                                       {-kInf, -5.0},
                                       {1.0, -1e6}}) {
    std::vector<double> with = v, without = v;
    double h = -1;
    emix::softmax_in_place(with.data(), static_cast<int>(v.size()), 1, 0.75, &h);
    emix::softmax_in_place(without.data(), static_cast<int>(v.size()), 1, 0.75);
    EXPECT_EQ(with, without);
    EXPECT_NEAR(h, naive(v), 1e-14 * std::max(1.0, naive(v))) << v[0];
    EXPECT_GE(h, 0.0);
  }
  // Three equal components: log 3 exactly as the naive formula rounds it.
  std::vector<double> equal = {2.0, 2.0, 2.0};
  double h = 0;
  emix::softmax_in_place(equal.data(), 3, 1, 1.0, &h);
  EXPECT_NEAR(h, std::log(3.0), 1e-15);
  std::vector<double> none = {-kInf, -kInf};
  emix::softmax_in_place(none.data(), 2, 1, 1.0, &h);
  EXPECT_EQ(h, 0.0);
  std::vector<double> nan = {1.0, std::nan("")};
  emix::softmax_in_place(nan.data(), 2, 1, 1.0, &h);
  EXPECT_TRUE(std::isnan(h));
  std::vector<double> infinite = {1.0, kInf};
  emix::softmax_in_place(infinite.data(), 2, 1, 1.0, &h);
  EXPECT_TRUE(std::isnan(h));
  // The same function from the parts alone (the GPU's general path and the CPU engine's rows
  // with a term that is not finite), on a row with a component of density zero.
  const std::vector<double> row = {-2.0, -kInf, -3.5};
  EXPECT_NEAR(
      emix::responsibility_entropy(row.data(), 3, 1, emix::log_sum_exp_parts(row.data(), 3, 1)),
      naive(row), 1e-15);
  // Strided, float: the column 1 of a 3 x 2 column-major layout.
  std::vector<float> strided = {9.f, -2.f, 9.f, -3.f, 9.f, -4.f};
  float hf = 0;
  emix::softmax_in_place(strided.data() + 1, 3, 2, 1.f, &hf);
  EXPECT_NEAR(hf, naive({-2.0, -3.0, -4.0}), 1e-6);
}

TEST(Pointwise, ArgmaxTakesTheLowestIndexOnTies) {
  const std::vector<double> v = {1.0, 3.0, 3.0, 2.0};
  EXPECT_EQ(argmax_strided(v.data(), 4, 1), 1);
  const std::vector<double> w = {std::nan(""), 2.0, 1.0};
  EXPECT_EQ(argmax_strided(w.data(), 3, 1), 1);
  const std::vector<double> strided = {0.0, 9.0, 5.0, 9.0, 7.0, 9.0};  // 0, 5, 7 at stride 2
  EXPECT_EQ(argmax_strided(strided.data(), 3, 2), 2);
}

TEST(Pointwise, LogBinomialCoefficientSmallExactValues) {
  EXPECT_EQ(log_binomial_coefficient(1.0, 0.0), 0.0);
  EXPECT_EQ(log_binomial_coefficient(1.0, 1.0), 0.0);
  EXPECT_EQ(log_binomial_coefficient(5.0, 0.0), 0.0);
  EXPECT_EQ(log_binomial_coefficient(5.0, 5.0), 0.0);
  EXPECT_NEAR(log_binomial_coefficient(5.0, 2.0), std::log(10.0), 1e-14);
  EXPECT_NEAR(log_binomial_coefficient(5.0, 3.0), std::log(10.0), 1e-14);
  EXPECT_NEAR(log_binomial_coefficient(10.0, 3.0), std::log(120.0), 1e-14);
  EXPECT_NEAR(log_binomial_coefficient(52.0, 5.0), std::log(2598960.0), 1e-13);
}

TEST(Pointwise, LogBinomialCoefficientLargeM) {
  // log C(1000, 500) = sum_{i=1}^{500} log((500 + i) / i).
  double expected = 0;
  for (int i = 1; i <= 500; ++i) expected += std::log((500.0 + i) / i);
  EXPECT_NEAR(log_binomial_coefficient(1000.0, 500.0), expected, 1e-12 * expected);
}

// lgamma(m + 1) - lgamma(x + 1) - lgamma(m - x + 1) cancels terms of 4e10 at m = 2^31: it lost
// 3e-6 of log C(m, m / 3.3) (3.6e-7 relative in an audit's binomial log-density) and all but
// 2e-7 of log C(m, 1) = log m. The reference is in long double (a 64-bit significand): the
// product of (m - i) / (i + 1) where the smaller of x and m - x is at most 20 (20 roundings of
// 5e-20 each), else the lgamma difference (rounding m log m x 5e-20, under 1e-17 of the value).
TEST(Pointwise, LogBinomialCoefficientKeepsItsDigitsForManyTrials) {
  const auto reference = [](double m, double x) {
    const long double lm = m, few = std::min(x, m - x);
    if (few <= 20) {
      long double product = 1;
      for (int i = 0; i < few; ++i) product *= (lm - i) / (i + 1);
      return static_cast<double>(std::log(product));
    }
    return static_cast<double>(lgammal(lm + 1) - lgammal(static_cast<long double>(x) + 1) -
                               lgammal(lm - x + 1));
  };
  for (const double m : {64.0, 100.0, 1000.0, 1e6, 2147483647.0}) {
    for (const double x :
         {1.0, 2.0, 3.0, 15.0, 16.0, 17.0, std::floor(m / 3.3), std::floor(m / 2), m - 16, m - 1}) {
      if (!(x > 0 && x < m)) continue;
      const double expected = reference(m, x);
      // A few roundings of terms no larger than the value and log m (0.5 log(m / (2 pi x y))).
      EXPECT_NEAR(log_binomial_coefficient(m, x), expected,
                  1e-15 * (std::abs(expected) + std::log(m)))
          << "m = " << m << ", x = " << x;
    }
  }
  for (int m = 1; m <= 70; ++m) {  // few trials: the lgamma form below 64, to its rounding
    for (int x = 0; x <= m; ++x) {
      const double expected = x == 0 || x == m ? 0.0 : reference(m, x);
      EXPECT_NEAR(log_binomial_coefficient(m, x), expected,
                  4 * std::numeric_limits<double>::epsilon() * std::lgamma(m + 1.0) + 1e-15)
          << "m = " << m << ", x = " << x;
    }
  }
}

// The engines' table (one per trials, shared across iterations) holds log_binomial_coefficient's
// values to the bit, whichever trials were asked for last.
TEST(Pointwise, LogBinomialCoefficientTableHoldsEachValue) {
  for (const int trials : {1, 7, 64, 1000, 7, 1 << 20}) {
    const auto table = emix::log_binomial_coefficient_table(trials);
    ASSERT_EQ(table->size(), static_cast<std::size_t>(trials) + 1);
    for (int v = 0; v <= trials; v += 1 + trials / 4096) {
      ASSERT_EQ((*table)[static_cast<std::size_t>(v)], log_binomial_coefficient(trials, v))
          << "trials = " << trials << ", v = " << v;
    }
    EXPECT_EQ(table->back(), 0.0) << "trials = " << trials;
  }
}

TEST(Pointwise, WeightedLogProbOfZeroWeightIsZero) {
  EXPECT_EQ(weighted_log_prob(0.0, -kInf), 0.0);
  EXPECT_EQ(weighted_log_prob(2.0, -3.0), -6.0);
}

}  // namespace

namespace {

// softmax_in_place, used by the GPU kernels, is bitwise weight * responsibility() over
// log_sum_exp_parts(): ordinary rows, negligible terms (exactly zero), -inf, +inf and NaN rows,
// zero weights, in float and double.
template <typename V>
void expect_softmax_matches_responsibility() {
  const V inf = std::numeric_limits<V>::infinity();
  const V nan = std::numeric_limits<V>::quiet_NaN();
  const std::vector<std::vector<V>> rows = {
      {V(-1), V(-2.5), V(-0.25)}, {V(-10), V(-900), V(-75)}, {V(3)},
      {-inf, -inf, -inf},         {V(1), inf, V(2)},         {V(1), nan, V(0)},
      {-inf, V(-4), -inf}};
  for (const std::vector<V>& row : rows) {
    for (V weight : {V(1), V(0), V(2.5)}) {
      std::vector<V> v = row;
      const emix::LogSumExp<V> parts = emix::softmax_in_place(v.data(), int(v.size()), 1, weight);
      const emix::LogSumExp<V> expected = emix::log_sum_exp_parts(row.data(), int(row.size()), 1);
      EXPECT_TRUE(std::memcmp(&parts, &expected, sizeof parts) == 0 ||
                  (parts.max != parts.max && expected.max != expected.max));
      for (std::size_t k = 0; k < row.size(); ++k) {
        const V r = weight == V(0) ? V(0) : weight * emix::responsibility(row[k], expected);
        EXPECT_TRUE(std::memcmp(&v[k], &r, sizeof r) == 0 || (v[k] != v[k] && r != r))
            << "term " << k << " of a row of " << row.size() << ": " << v[k] << " vs " << r;
      }
    }
  }
}

TEST(Pointwise, SoftmaxInPlaceIsWeightTimesResponsibility) {
  expect_softmax_matches_responsibility<double>();
  expect_softmax_matches_responsibility<float>();
}

}  // namespace
