#include "cli/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

namespace emix::cli {

std::uint64_t Rng::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform();  // (0, 1]: log(u1) is finite
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * 3.14159265358979323846 * u2;
  spare_ = r * std::sin(angle);
  has_spare_ = true;
  return r * std::cos(angle);
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  Rng rng(seed ^ (0xD1B54A32D192ED03ULL * (stream + 1)));
  return rng.next();
}

namespace {

// 0.5 (A A^T / d) + 0.5 I with A standard normal: symmetric positive definite, eigenvalues in
// about [0.5, 2.5].
std::vector<double> random_spd(Rng& rng, int d) {
  std::vector<double> a(static_cast<std::size_t>(d) * d);
  for (double& v : a) v = rng.normal();
  std::vector<double> s(a.size());
  for (int i = 0; i < d; ++i) {
    for (int j = 0; j <= i; ++j) {
      double sum = 0;
      for (int l = 0; l < d; ++l) sum += a[i * d + l] * a[j * d + l];
      const double v = 0.5 * sum / d + (i == j ? 0.5 : 0.0);
      s[i * d + j] = v;
      s[j * d + i] = v;
    }
  }
  return s;
}

constexpr double kMinDistance = 8;

// Beyond this many components the best-of-200-draws placement below compares each candidate
// with every mean so far, O(200 K^2 D): minutes at K = 10^5, days at 10^6.
constexpr int kMaxComponentsPlacedByDraws = 4096;

// K distinct cells of a cubic lattice of spacing kMinDistance + 2, each mean its cell's centre
// moved by at most 1 along every axis: means are then at least kMinDistance apart, in O(K D).
// The lattice has at least 2K cells, so drawing a free one takes about two tries.
std::vector<double> lattice_means(Rng& rng, int k, int d) {
  constexpr double kSpacing = kMinDistance + 2;
  const auto per_axis = static_cast<std::uint64_t>(
      std::ceil(std::pow(2.0 * static_cast<double>(k), 1.0 / static_cast<double>(d))));
  std::vector<double> means(static_cast<std::size_t>(k) * d);
  std::unordered_set<std::string> taken;
  std::string cell(static_cast<std::size_t>(d) * sizeof(std::uint64_t), '\0');
  for (int c = 0; c < k; ++c) {
    while (true) {
      for (int j = 0; j < d; ++j) {
        const std::uint64_t index = rng.next() % per_axis;
        std::memcpy(&cell[static_cast<std::size_t>(j) * sizeof index], &index, sizeof index);
      }
      if (taken.insert(cell).second) break;
    }
    for (int j = 0; j < d; ++j) {
      std::uint64_t index;
      std::memcpy(&index, &cell[static_cast<std::size_t>(j) * sizeof index], sizeof index);
      const double centre =
          (static_cast<double>(index) - 0.5 * static_cast<double>(per_axis - 1)) * kSpacing;
      means[static_cast<std::size_t>(c) * d + j] = centre + (2 * rng.uniform() - 1);
    }
  }
  return means;
}

std::vector<double> random_means(Rng& rng, int k, int d) {
  if (k > kMaxComponentsPlacedByDraws) return lattice_means(rng, k, d);
  const double half_width = 16.0 * std::pow(static_cast<double>(k), 1.0 / d);
  std::vector<double> means(static_cast<std::size_t>(k) * d);
  std::vector<double> candidate(d);
  std::vector<double> best(d);
  for (int c = 0; c < k; ++c) {
    double best_distance = -1;
    for (int attempt = 0; attempt < 200; ++attempt) {
      for (double& v : candidate) v = half_width * (2 * rng.uniform() - 1);
      double nearest = std::numeric_limits<double>::infinity();
      for (int o = 0; o < c; ++o) {
        double dist2 = 0;
        for (int j = 0; j < d; ++j) {
          const double diff = candidate[j] - means[o * d + j];
          dist2 += diff * diff;
        }
        nearest = std::min(nearest, std::sqrt(dist2));
      }
      if (nearest > best_distance) {
        best_distance = nearest;
        best = candidate;
      }
      if (nearest >= kMinDistance) break;
    }
    std::copy(best.begin(), best.end(), means.begin() + static_cast<std::ptrdiff_t>(c) * d);
  }
  return means;
}

}  // namespace

Model random_model(Family family, Covariance covariance, int k, int d, int trials,
                   std::uint64_t seed) {
  Rng rng(seed);
  Model m;
  m.family = family;
  m.covariance = covariance;
  m.n_components = k;
  m.n_features = d;
  m.trials = family == Family::kBinomial ? trials : 1;

  m.weights.resize(k);
  double total = 0;
  for (double& w : m.weights) {
    w = 0;
    for (int i = 0; i < 4; ++i) w -= std::log(1.0 - rng.uniform());
    total += w;
  }
  for (double& w : m.weights) w /= total;

  if (family != Family::kGaussian) {
    m.probabilities.resize(static_cast<std::size_t>(k) * d);
    for (double& p : m.probabilities) p = 0.05 + 0.9 * rng.uniform();
    return m;
  }
  m.means = random_means(rng, k, d);
  switch (covariance) {
    case Covariance::kFull:
      for (int c = 0; c < k; ++c) {
        const std::vector<double> s = random_spd(rng, d);
        m.covariances.insert(m.covariances.end(), s.begin(), s.end());
      }
      break;
    case Covariance::kTied:
      m.covariances = random_spd(rng, d);
      break;
    case Covariance::kDiag:
      m.covariances.resize(static_cast<std::size_t>(k) * d);
      for (double& v : m.covariances) v = 0.5 + 2.0 * rng.uniform();
      break;
    case Covariance::kSpherical:
      m.covariances.resize(k);
      for (double& v : m.covariances) v = 0.5 + 2.0 * rng.uniform();
      break;
  }
  return m;
}

}  // namespace emix::cli
