#include "core/maximize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/cholesky.hpp"
#include "core/validate.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

Model maximize(const Model& current, const StatisticsLayout& layout, const double* centre_values,
               const double* stats, const MaximizeOptions& options, std::vector<int>* empty) {
  const int k = layout.k, d = layout.d;
  const std::size_t du = static_cast<std::size_t>(d);
  // A sum of weight x squared deviation past double's range (weights of 3e305 each, their sum
  // finite; or values near the data's 2^500 limit over many rows) was taken for a singular
  // covariance, with advice about duplicate rows. The log-likelihood is the caller's to judge.
  // Weights given in pieces (chunks, ranks), each below DBL_MIN, which the engines count as 0.
  if (stats[StatisticsLayout::kWeightSum] == 0) {
    throw NumericalError(
        "the sample weights sum to 0 as the engines count them (each weight below the smallest "
        "normal double, 2.2e-308, counts as 0); only their ratios matter: scale them up");
  }
  for (std::size_t i = 0; i < layout.size(); ++i) {
    if (i != StatisticsLayout::kLogLikelihood && !std::isfinite(stats[i])) {
      throw NumericalError("the E-step's sums overflow double's range (one is " + number(stats[i]) +
                           "; the weights sum to " + number(stats[StatisticsLayout::kWeightSum]) +
                           "): rescale the data, or scale the sample weights down (only their "
                           "ratios matter)");
    }
  }
  Model next = current;
  if (empty) empty->clear();

  const double* nk = stats + layout.nk();
  double nk_total = 0;
  for (int c = 0; c < k; ++c) nk_total += nk[c];
  const double empty_below = empty_at_or_below(layout, nk_total);
  std::vector<bool> is_empty(k, false);
  for (int c = 0; c < k; ++c) {
    if (!(nk[c] > empty_below)) {
      is_empty[c] = true;
      if (empty) empty->push_back(c);
    }
  }
  if (!options.fixed_weights) {
    for (int c = 0; c < k; ++c) next.weights[c] = nk[c] / nk_total;
  }

  Eigen::Map<const RowMatrix> centres(centre_values, k, d);
  Eigen::Map<const RowMatrix> s(stats + layout.s(), k, d);

  if (current.family != Family::kGaussian) {
    const double trials = current.trials;
    for (int c = 0; c < k; ++c) {
      if (is_empty[c]) continue;
      for (int j = 0; j < d; ++j) {
        const double p = s(c, j) / nk[c] / trials;
        next.probabilities[c * du + j] =
            std::clamp(p, options.prob_epsilon, 1.0 - options.prob_epsilon);
      }
    }
    return next;
  }

  // mean = c + S / N;  scatter about the new mean = Q / N - delta delta^T, delta = S / N.
  RowMatrix delta(k, d);
  for (int c = 0; c < k; ++c) {
    if (is_empty[c]) {
      delta.row(c).setZero();
      continue;
    }
    delta.row(c) = s.row(c) / nk[c];
    Eigen::Map<Eigen::RowVectorXd>(&next.means[c * du], d) = centres.row(c) + delta.row(c);
  }
  const double* q = stats + layout.q();
  const std::size_t qk = layout.q_per_component();
  switch (current.covariance) {
    case Covariance::kFull:
      // cov = Q / N - delta delta^T, made symmetric ((cov + cov^T) / 2) and written in square
      // blocks, with no D x D temporary: at D = 2048 the expression with the transpose took 2 % of
      // a fit, and each temporary 32 MB of fresh pages.
      for (int c = 0; c < k; ++c) {
        if (is_empty[c]) continue;
        constexpr int kSide = 16;
        const double* qc = q + c * qk;
        const double* dc = &delta(c, 0);
        double* out = &next.covariances[c * du * du];
        for (int a0 = 0; a0 < d; a0 += kSide) {
          for (int b0 = a0; b0 < d; b0 += kSide) {
            for (int a = a0; a < std::min(d, a0 + kSide); ++a) {
              for (int b = std::max(a, b0); b < std::min(d, b0 + kSide); ++b) {
                // The product apart, so that no compiler fuses it into the subtractions.
                const double product = dc[a] * dc[b];
                const double upper = qc[a * du + b] / nk[c] - product;
                const double lower = qc[b * du + a] / nk[c] - product;
                out[a * du + b] = out[b * du + a] = 0.5 * (upper + lower);
              }
            }
          }
        }
        for (int a = 0; a < d; ++a) out[a * (du + 1)] += options.reg_covar;
      }
      break;
    case Covariance::kTied: {
      // Every component's scatter, an empty one's too: only their sum is defined (the CPU
      // engine pools it into Q_0, whatever N_0).
      RowMatrix cov = RowMatrix::Zero(d, d);
      for (int c = 0; c < k; ++c) {
        Eigen::Map<const RowMatrix> qc(q + c * qk, d, d);
        const Eigen::RowVectorXd dc =
            is_empty[c] && nk[c] > 0 ? (s.row(c) / nk[c]).eval() : delta.row(c).eval();
        cov += qc - nk[c] * dc.transpose() * dc;
      }
      cov /= nk_total;
      cov = 0.5 * (cov + cov.transpose()).eval();
      cov.diagonal().array() += options.reg_covar;
      Eigen::Map<RowMatrix>(next.covariances.data(), d, d) = cov;
      break;
    }
    case Covariance::kDiag:
    case Covariance::kSpherical:
      for (int c = 0; c < k; ++c) {
        if (is_empty[c]) continue;
        double sum = 0;
        for (int j = 0; j < d; ++j) {
          // Rounding can take a zero variance slightly negative; it is never below zero.
          const double var = std::max(q[c * qk + j] / nk[c] - delta(c, j) * delta(c, j), 0.0);
          if (current.covariance == Covariance::kDiag) {
            next.covariances[c * du + j] = var + options.reg_covar;
          }
          sum += var;
        }
        if (current.covariance == Covariance::kSpherical) {
          next.covariances[c] = sum / d + options.reg_covar;
        }
      }
      break;
  }
  return next;
}

bool numerically_singular(const double* covariance, int d, double reg_covar) {
  Eigen::MatrixXd lower;
  const bool factored = cholesky_factor(covariance, d, lower);
  return singular_factor(factored, lower, covariance, reg_covar);
}

bool covariance_unresolved(const Model& model, int c) {
  if (model.family != Family::kGaussian || model.covariance == Covariance::kTied) return false;
  const int d = model.n_features;
  const auto resolution = [&](int j) {
    const double r = std::numeric_limits<double>::epsilon() / 4 *
                     model.means[static_cast<std::size_t>(c) * d + j];
    return r * r;
  };
  if (model.covariance == Covariance::kSpherical) {
    double mean_resolution = 0;
    for (int j = 0; j < d; ++j) mean_resolution += resolution(j) / d;
    return !(model.covariances[c] > mean_resolution);
  }
  const bool full = model.covariance == Covariance::kFull;
  for (int j = 0; j < d; ++j) {
    const std::size_t at =
        full ? (static_cast<std::size_t>(c) * d + j) * d + j : static_cast<std::size_t>(c) * d + j;
    if (!(model.covariances[at] > resolution(j))) return true;
  }
  return false;
}

std::vector<int> singular_components(const Model& model, double reg_covar) {
  std::vector<int> bad;
  if (model.family != Family::kGaussian) return bad;
  const int d = model.n_features;
  const auto factors = [d, reg_covar](const double* a) {
    return !numerically_singular(a, d, reg_covar);
  };
  switch (model.covariance) {
    case Covariance::kFull:
      for (int c = 0; c < model.n_components; ++c) {
        if (!factors(&model.covariances[static_cast<std::size_t>(c) * d * d])) bad.push_back(c);
      }
      break;
    case Covariance::kTied:
      if (!factors(model.covariances.data())) {
        throw NumericalError(
            "the tied covariance is singular; the data may lie in a subspace: increase reg_covar");
      }
      break;
    case Covariance::kDiag:
    case Covariance::kSpherical: {
      const std::size_t per = model.covariances.size() / model.n_components;
      for (std::size_t i = 0; i < model.covariances.size(); ++i) {
        const int c = static_cast<int>(i / per);
        if (!(model.covariances[i] > 0) && (bad.empty() || bad.back() != c)) bad.push_back(c);
      }
      break;
    }
  }
  return bad;
}

std::vector<int> with_unresolved(const Model& model, double reg_covar, std::vector<int> singular) {
  if (reg_covar > 0) return singular;
  for (int c = 0; c < model.n_components; ++c) {
    if (covariance_unresolved(model, c)) singular.push_back(c);
  }
  std::sort(singular.begin(), singular.end());
  singular.erase(std::unique(singular.begin(), singular.end()), singular.end());
  return singular;
}

bool scatter_lost_digits(const Model& next, const StatisticsLayout& layout, const double* stats) {
  if (next.family != Family::kGaussian || !layout.has_scatter) return false;
  constexpr double kLargestRatio = 840;
  const int k = layout.k, d = layout.d;
  const std::size_t du = static_cast<std::size_t>(d);
  const double* nk = stats + layout.nk();
  double nk_total = 0;
  for (int c = 0; c < k; ++c) nk_total += nk[c];
  const double* q = stats + layout.q();
  const std::size_t qk = layout.q_per_component();
  const double empty_below = empty_at_or_below(layout, nk_total);
  if (next.covariance == Covariance::kTied) {
    for (int a = 0; a < d; ++a) {
      double scatter = 0;
      for (int c = 0; c < k; ++c) scatter += q[c * qk + static_cast<std::size_t>(a) * (du + 1)];
      const double variance = next.covariances[static_cast<std::size_t>(a) * (du + 1)];
      if (scatter / nk_total > kLargestRatio * variance) return true;
    }
    return false;
  }
  for (int c = 0; c < k; ++c) {
    if (!(nk[c] > empty_below)) continue;
    for (int a = 0; a < d; ++a) {
      const double about_centre =
          (layout.full_scatter ? q[c * qk + static_cast<std::size_t>(a) * (du + 1)]
                               : q[c * qk + static_cast<std::size_t>(a)]) /
          nk[c];
      double variance = 0;
      switch (next.covariance) {
        case Covariance::kFull:
          variance = next.covariances[c * du * du + static_cast<std::size_t>(a) * (du + 1)];
          break;
        case Covariance::kTied:  // above
        case Covariance::kDiag:
          variance = next.covariances[c * du + static_cast<std::size_t>(a)];
          break;
        case Covariance::kSpherical:
          variance = next.covariances[static_cast<std::size_t>(c)];
          break;
      }
      if (about_centre > kLargestRatio * variance) return true;
    }
  }
  return false;
}

}  // namespace emix
