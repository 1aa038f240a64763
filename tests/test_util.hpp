// Helpers shared by the tests: random models and data, tolerant comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "emix/emix.hpp"
#include "summed_tied_scatter.hpp"

namespace emix::testing {

// A random valid model of the given shape (seeded). Covariances are A A^T + I scaled.
inline Model random_model(Family family, Covariance covariance, int k, int d, std::uint64_t seed,
                          int trials = 1, double spread = 5.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> z(0.0, 1.0);
  Model m;
  m.family = family;
  m.covariance = covariance;
  m.n_components = k;
  m.n_features = d;
  m.trials = family == Family::kBinomial ? trials : 1;
  double total = 0;
  for (int c = 0; c < k; ++c) {
    m.weights.push_back(0.5 + u(rng));
    total += m.weights.back();
  }
  for (double& w : m.weights) w /= total;
  if (family != Family::kGaussian) {
    for (int i = 0; i < k * d; ++i) m.probabilities.push_back(0.05 + 0.9 * u(rng));
    return m;
  }
  for (int i = 0; i < k * d; ++i) m.means.push_back(spread * z(rng));
  const auto spd = [&](double* out) {
    std::vector<double> a(static_cast<std::size_t>(d) * d);
    for (double& v : a) v = 0.5 * z(rng);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        double s = i == j ? 0.5 : 0.0;
        for (int l = 0; l < d; ++l) s += a[i * d + l] * a[j * d + l];
        out[i * d + j] = s;
      }
    }
  };
  m.covariances.resize(m.covariance_size());
  switch (covariance) {
    case Covariance::kFull:
      for (int c = 0; c < k; ++c) spd(&m.covariances[static_cast<std::size_t>(c) * d * d]);
      break;
    case Covariance::kTied:
      spd(m.covariances.data());
      break;
    case Covariance::kDiag:
    case Covariance::kSpherical:
      for (double& v : m.covariances) v = 0.3 + u(rng);
      break;
  }
  return m;
}

// Relative difference of two vectors against the larger magnitude of a (at least `floor`).
inline double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b,
                                      double floor = 1e-300) {
  EXPECT_EQ(a.size(), b.size());
  double scale = floor;
  for (double v : a) scale = std::max(scale, std::abs(v));
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / scale);
  }
  return worst;
}

inline std::string describe(Family f, Covariance c) {
  return std::string(to_string(f)) +
         (f == Family::kGaussian ? std::string("-") + to_string(c) : "");
}

// A family with a covariance type (kFull for the discrete families): what a test runs over.
struct Kind {
  Family family;
  Covariance covariance;
};
// Every family and covariance type.
inline constexpr Kind kAllKinds[] = {
    {Family::kGaussian, Covariance::kFull},      {Family::kGaussian, Covariance::kDiag},
    {Family::kGaussian, Covariance::kSpherical}, {Family::kGaussian, Covariance::kTied},
    {Family::kBernoulli, Covariance::kFull},     {Family::kBinomial, Covariance::kFull},
};

// 600 rows in D = 3: 100 equal rows at (100, 100, 100), then two clusters of sd 1 around 0 and
// -50. With K = 3 and reg_covar 0, k-means gives the equal rows a component of singular
// covariance.
inline std::vector<double> rows_with_a_coinciding_cluster() {
  std::vector<double> x;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (int i = 0; i < 600; ++i) {
    for (int j = 0; j < 3; ++j) x.push_back(i < 100 ? 100.0 : (i % 2 ? -50.0 : 0.0) + noise(rng));
  }
  return x;
}

// Options for max_iter EM steps (tol 0) from `start`, in its family, covariance type and shape.
inline FitOptions steps_from(const Model& start, int max_iter) {
  FitOptions o;
  o.family = start.family;
  o.covariance = start.covariance;
  o.trials = start.trials;
  o.n_components = start.n_components;
  o.init_model = start;
  o.max_iter = max_iter;
  o.tol = 0;
  return o;
}

// Binomial counts of up to 1000 (K = 3, D = 5): 4000 rows in float and the same values in
// double, and options for five EM steps from the truth. The log-densities' terms (x logit and
// m log(1 - p), about 1e4) cancel to about -20: float arithmetic loses 1e-3 of each.
struct ManyTrials {
  std::vector<float> x32;
  std::vector<double> x64;
  FitOptions options;
};
inline ManyTrials binomial_with_many_trials() {
  ManyTrials t;
  const Model truth = random_model(Family::kBinomial, Covariance::kFull, 3, 5, 9, /*trials=*/1000);
  const Sample s = sample(truth, 4000, 10);
  t.x32.assign(s.x.begin(), s.x.end());
  t.x64.assign(t.x32.begin(), t.x32.end());
  t.options = steps_from(truth, 5);
  return t;
}

// Two clusters of sd 0.01 at 0 and at 10 in D = 3 (1000 sd apart), rows alternating, in float,
// and a fit's options starting from the truth: data on which an expansion of the quadratic form
// about one centre loses float's digits (7 % of a covariance, once).
struct FarApart {
  std::vector<float> x;
  std::int64_t n = 0;
  FitOptions options;
};
inline FarApart far_apart_clusters(Covariance covariance, std::int64_t n = 4000) {
  FarApart f;
  f.n = n;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 0.01);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < 3; ++j)
      f.x.push_back(static_cast<float>(i % 2 == 0 ? noise(rng) : 10.0 + noise(rng)));
  }
  Model start = random_model(Family::kGaussian, covariance, 2, 3, 1);
  start.weights = {0.5, 0.5};
  start.means = {0, 0, 0, 10, 10, 10};
  for (std::size_t i = 0; i < start.covariances.size(); ++i) {
    const bool diagonal = covariance != Covariance::kFull || i % 9 % 4 == 0;  // 3 x 3 blocks
    start.covariances[i] = diagonal ? 1e-4 : 0.0;
  }
  f.options.n_components = 2;
  f.options.covariance = covariance;
  f.options.init_model = start;
  f.options.max_iter = 10;
  f.options.tol = 0;
  return f;
}

// The largest over components of max |a - b| / max |b| within the component's covariance values.
inline double worst_component_difference(const Model& a, const Model& b) {
  const std::size_t per = b.covariances.size() / static_cast<std::size_t>(b.n_components);
  double worst = 0;
  for (std::size_t c = 0; c < static_cast<std::size_t>(b.n_components); ++c) {
    double scale = 0, diff = 0;
    for (std::size_t i = c * per; i < (c + 1) * per; ++i) {
      scale = std::max(scale, std::abs(b.covariances[i]));
      diff = std::max(diff, std::abs(a.covariances[i] - b.covariances[i]));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

}  // namespace emix::testing
