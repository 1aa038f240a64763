#include "core/initialize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <Eigen/Core>

#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// An empty model of the requested shape, ready for maximize() to fill.
Model blank_model(const FitOptions& options, int d) {
  Model m;
  m.family = options.family;
  m.covariance = options.covariance;
  m.n_components = options.n_components;
  m.n_features = d;
  m.trials = options.family == Family::kBinomial ? options.trials : 1;
  const std::size_t k = static_cast<std::size_t>(options.n_components);
  m.weights.assign(k, 1.0 / static_cast<double>(k));
  if (m.family == Family::kGaussian) {
    m.means.assign(k * d, 0.0);
    m.covariances.assign(m.covariance_size(), 0.0);
    // Valid placeholders for components that stay empty.
    for (std::size_t c = 0; c < k; ++c) {
      switch (m.covariance) {
        case Covariance::kFull:
          for (int j = 0; j < d; ++j) m.covariances[c * d * d + j * d + j] = 1.0;
          break;
        case Covariance::kTied:
          for (int j = 0; j < d; ++j) m.covariances[j * d + j] = 1.0;
          break;
        case Covariance::kDiag:
          for (int j = 0; j < d; ++j) m.covariances[c * d + j] = 1.0;
          break;
        case Covariance::kSpherical:
          m.covariances[c] = 1.0;
          break;
      }
    }
  } else {
    m.probabilities.assign(k * d, 0.5);
  }
  return m;
}

// One M-step on host rows with given responsibilities (n x K); statistics centred on the
// weighted mean of the rows.
Model maximize_from_responsibilities(const RowMatrix& x, const Eigen::VectorXd& w,
                                     const RowMatrix& resp, const FitOptions& options,
                                     std::vector<int>* empty) {
  const int k = options.n_components;
  const int d = static_cast<int>(x.cols());
  Model model = blank_model(options, d);
  PreparedModel frame;
  frame.family = options.family;
  frame.covariance = options.covariance;
  frame.k = k;
  frame.d = d;
  frame.layout = StatisticsLayout(options.family, options.covariance, k, d);
  const StatisticsLayout& layout = frame.layout;

  const RowMatrix g = resp.array().colwise() * w.array();
  Eigen::RowVectorXd centre = Eigen::RowVectorXd::Zero(d);
  if (layout.has_scatter) centre = (w.transpose() * x) / w.sum();
  frame.centres.resize(static_cast<std::size_t>(k) * d);
  for (int c = 0; c < k; ++c) {
    Eigen::Map<Eigen::RowVectorXd>(&frame.centres[static_cast<std::size_t>(c) * d], d) = centre;
  }
  const RowMatrix xc = x.rowwise() - centre;

  std::vector<double> stats(layout.size(), 0.0);
  stats[StatisticsLayout::kWeightSum] = w.sum();
  Eigen::Map<Eigen::RowVectorXd>(&stats[layout.nk()], k) = g.colwise().sum();
  Eigen::Map<RowMatrix>(&stats[layout.s()], k, d) = g.transpose() * xc;
  if (layout.has_scatter) {
    for (int c = 0; c < k; ++c) {
      double* q = &stats[layout.q() + static_cast<std::size_t>(c) * layout.q_per_component()];
      if (layout.full_scatter) {
        Eigen::Map<RowMatrix>(q, d, d) =
            (xc.array().colwise() * g.col(c).array()).matrix().transpose() * xc;
      } else {
        Eigen::Map<Eigen::RowVectorXd>(q, d) = g.col(c).transpose() * xc.array().square().matrix();
      }
    }
  }
  MaximizeOptions mopt;
  mopt.reg_covar = options.reg_covar;
  mopt.prob_epsilon = options.prob_epsilon;
  return maximize(model, frame, stats.data(), mopt, empty);
}

std::int64_t draw_weighted(const Eigen::VectorXd& weights, double total, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, total);
  const double target = uniform(rng);
  double sum = 0;
  for (Eigen::Index i = 0; i < weights.size(); ++i) {
    sum += weights[i];
    if (sum > target && weights[i] > 0) return i;
  }
  for (Eigen::Index i = weights.size() - 1; i >= 0; --i) {
    if (weights[i] > 0) return i;
  }
  return 0;
}

// Squared distances of every row to every centre (n x K), rows and centres centred alike.
RowMatrix squared_distances(const RowMatrix& x, const Eigen::VectorXd& x_norms,
                            const RowMatrix& centres) {
  RowMatrix dist = -2.0 * x * centres.transpose();
  dist.colwise() += x_norms;
  dist.rowwise() += centres.rowwise().squaredNorm().transpose();
  return dist.cwiseMax(0.0);
}

// Weighted k-means++ seeding (one candidate per step), then Lloyd iterations; returns labels.
std::vector<int> kmeans(const RowMatrix& x, const Eigen::VectorXd& w, int k, int iterations,
                        std::mt19937_64& rng) {
  const Eigen::Index n = x.rows();
  const Eigen::VectorXd norms = x.rowwise().squaredNorm();
  RowMatrix centres(k, x.cols());
  centres.row(0) = x.row(draw_weighted(w, w.sum(), rng));
  Eigen::VectorXd nearest = (x.rowwise() - centres.row(0)).rowwise().squaredNorm();
  for (int c = 1; c < k; ++c) {
    const Eigen::VectorXd score = nearest.cwiseProduct(w);
    const double total = score.sum();
    const std::int64_t pick =
        total > 0 ? draw_weighted(score, total, rng) : draw_weighted(w, w.sum(), rng);
    centres.row(c) = x.row(pick);
    nearest = nearest.cwiseMin((x.rowwise() - centres.row(c)).rowwise().squaredNorm());
  }

  std::vector<int> labels(static_cast<std::size_t>(n), -1);
  for (int it = 0; it <= iterations; ++it) {
    const RowMatrix dist = squared_distances(x, norms, centres);
    bool changed = false;
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index best = 0;
      dist.row(i).minCoeff(&best);
      if (labels[i] != best) changed = true;
      labels[i] = static_cast<int>(best);
    }
    if (!changed || it == iterations) break;
    RowMatrix sums = RowMatrix::Zero(k, x.cols());
    Eigen::VectorXd counts = Eigen::VectorXd::Zero(k);
    for (Eigen::Index i = 0; i < n; ++i) {
      sums.row(labels[i]) += w[i] * x.row(i);
      counts[labels[i]] += w[i];
    }
    for (int c = 0; c < k; ++c) {
      if (counts[c] > 0) {
        centres.row(c) = sums.row(c) / counts[c];
      } else {
        // An empty cluster takes the row farthest from its own centre.
        Eigen::Index far = 0;
        Eigen::VectorXd own(n);
        for (Eigen::Index i = 0; i < n; ++i) own[i] = w[i] > 0 ? dist(i, labels[i]) : -1.0;
        own.maxCoeff(&far);
        centres.row(c) = x.row(far);
        labels[far] = c;
      }
    }
  }
  return labels;
}

}  // namespace

Model initialize(Engine& engine, std::int64_t n_rows, int n_features,
                 const WeightGather& gather_weights, const FitOptions& options,
                 std::mt19937_64& rng, std::vector<std::string>* notes) {
  const int k = options.n_components;
  // The rows initialisation looks at: all of them, or a uniform sample without replacement.
  std::vector<std::int64_t> rows;
  if (n_rows <= options.init_max_rows) {
    rows.resize(static_cast<std::size_t>(n_rows));
    std::iota(rows.begin(), rows.end(), std::int64_t{0});
  } else {
    // Floyd's algorithm, then sorted for a sequential gather.
    std::vector<std::int64_t> picked;
    picked.reserve(static_cast<std::size_t>(options.init_max_rows));
    std::vector<bool> taken(static_cast<std::size_t>(n_rows), false);
    for (std::int64_t j = n_rows - options.init_max_rows; j < n_rows; ++j) {
      std::uniform_int_distribution<std::int64_t> pick(0, j);
      std::int64_t t = pick(rng);
      if (taken[t]) t = j;
      taken[t] = true;
      picked.push_back(t);
    }
    std::sort(picked.begin(), picked.end());
    rows = std::move(picked);
    if (notes) {
      notes->push_back("initialisation used a random sample of " + std::to_string(rows.size()) +
                       " of the " + std::to_string(n_rows) + " rows");
    }
  }
  const Eigen::Index n = static_cast<Eigen::Index>(rows.size());
  RowMatrix x(n, n_features);
  engine.gather_rows(rows.data(), n, x.data());
  Eigen::VectorXd w(n);
  gather_weights(rows.data(), n, w.data());
  std::int64_t positive = 0;
  for (Eigen::Index i = 0; i < n; ++i) positive += w[i] > 0;
  if (positive < k) {
    throw InvalidArgument(
        "initialisation: only " + std::to_string(positive) +
        " rows have positive weight, fewer than n_components = " + std::to_string(k));
  }

  RowMatrix resp = RowMatrix::Zero(n, k);
  switch (options.init) {
    case Init::kKMeansPlusPlus: {
      // k-means on centred rows: squared distances then lose nothing to large offsets.
      const Eigen::RowVectorXd mean = (w.transpose() * x) / w.sum();
      const std::vector<int> labels =
          kmeans(x.rowwise() - mean, w, k, std::max(options.kmeans_iter, 0), rng);
      for (Eigen::Index i = 0; i < n; ++i) resp(i, labels[i]) = 1.0;
      break;
    }
    case Init::kRandom: {
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      for (Eigen::Index i = 0; i < n; ++i) {
        for (int c = 0; c < k; ++c) resp(i, c) = uniform(rng);
      }
      resp.array().colwise() /= resp.rowwise().sum().array();
      break;
    }
    case Init::kRandomFromData: {
      // K distinct rows of positive weight become the means; every component starts with the
      // data's overall spread (scikit-learn starts from reg_covar alone, which makes the first
      // E-step a nearest-point assignment).
      std::vector<Eigen::Index> candidates;
      for (Eigen::Index i = 0; i < n; ++i) {
        if (w[i] > 0) candidates.push_back(i);
      }
      std::shuffle(candidates.begin(), candidates.end(), rng);
      RowMatrix one(n, 1);
      one.setOnes();
      FitOptions single = options;
      single.n_components = 1;
      const Model overall = maximize_from_responsibilities(x, w, one, single, nullptr);
      Model m = blank_model(options, n_features);
      const std::size_t d = static_cast<std::size_t>(n_features);
      for (int c = 0; c < k; ++c) {
        const Eigen::RowVectorXd row = x.row(candidates[c]);
        if (m.family == Family::kGaussian) {
          Eigen::Map<Eigen::RowVectorXd>(&m.means[c * d], n_features) = row;
          if (m.covariance == Covariance::kFull || m.covariance == Covariance::kDiag ||
              m.covariance == Covariance::kSpherical) {
            const std::size_t per = m.covariance_size() / k;
            std::copy(overall.covariances.begin(), overall.covariances.end(),
                      m.covariances.begin() + c * per);
          } else {
            m.covariances = overall.covariances;
          }
        } else {
          for (std::size_t j = 0; j < d; ++j) {
            const double p = 0.5 * (row[j] / m.trials + overall.probabilities[j]);
            m.probabilities[c * d + j] =
                std::clamp(p, options.prob_epsilon, 1.0 - options.prob_epsilon);
          }
        }
      }
      return m;
    }
  }
  std::vector<int> empty;
  Model model = maximize_from_responsibilities(x, w, resp, options, &empty);
  if (!empty.empty() && notes) {
    notes->push_back("initialisation left " + std::to_string(empty.size()) +
                     " component(s) empty; they start from placeholder parameters");
  }
  return model;
}

}  // namespace emix
