#include "emix/model.hpp"

#include <cmath>
#include <sstream>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "emix/errors.hpp"
#include "emix/options.hpp"

namespace emix {

const char* to_string(Family family) {
  switch (family) {
    case Family::kGaussian:
      return "gaussian";
    case Family::kBernoulli:
      return "bernoulli";
    case Family::kBinomial:
      return "binomial";
  }
  return "?";
}

const char* to_string(Covariance covariance) {
  switch (covariance) {
    case Covariance::kFull:
      return "full";
    case Covariance::kDiag:
      return "diag";
    case Covariance::kSpherical:
      return "spherical";
    case Covariance::kTied:
      return "tied";
  }
  return "?";
}

const char* to_string(Init init) {
  switch (init) {
    case Init::kKMeansPlusPlus:
      return "kmeans++";
    case Init::kRandom:
      return "random";
    case Init::kRandomFromData:
      return "random-from-data";
  }
  return "?";
}

const char* to_string(Device device) {
  switch (device) {
    case Device::kAuto:
      return "auto";
    case Device::kCpu:
      return "cpu";
    case Device::kGpu:
      return "gpu";
  }
  return "?";
}

namespace {

template <typename Enum, std::size_t N>
Enum parse_name(const std::string& name, const char* what, const Enum (&values)[N]) {
  std::string choices;
  for (Enum value : values) {
    if (name == to_string(value)) return value;
    choices += (choices.empty() ? "" : ", ") + std::string(to_string(value));
  }
  throw InvalidArgument("unknown " + std::string(what) + " '" + name +
                        "' (expected one of: " + choices + ")");
}

}  // namespace

Family parse_family(const std::string& name) {
  static const Family kAll[] = {Family::kGaussian, Family::kBernoulli, Family::kBinomial};
  return parse_name(name, "family", kAll);
}

Covariance parse_covariance(const std::string& name) {
  static const Covariance kAll[] = {Covariance::kFull, Covariance::kDiag, Covariance::kSpherical,
                                    Covariance::kTied};
  return parse_name(name, "covariance type", kAll);
}

Init parse_init(const std::string& name) {
  static const Init kAll[] = {Init::kKMeansPlusPlus, Init::kRandom, Init::kRandomFromData};
  return parse_name(name, "init method", kAll);
}

Device parse_device(const std::string& name) {
  static const Device kAll[] = {Device::kAuto, Device::kCpu, Device::kGpu};
  return parse_name(name, "device", kAll);
}

std::size_t Model::covariance_size() const {
  if (family != Family::kGaussian) return 0;
  const std::size_t k = static_cast<std::size_t>(n_components);
  const std::size_t d = static_cast<std::size_t>(n_features);
  switch (covariance) {
    case Covariance::kFull:
      return k * d * d;
    case Covariance::kDiag:
      return k * d;
    case Covariance::kSpherical:
      return k;
    case Covariance::kTied:
      return d * d;
  }
  return 0;
}

std::int64_t Model::n_parameters() const {
  const std::int64_t k = n_components;
  const std::int64_t d = n_features;
  if (family != Family::kGaussian) return k * d + k - 1;
  std::int64_t cov = 0;
  switch (covariance) {
    case Covariance::kFull:
      cov = k * d * (d + 1) / 2;
      break;
    case Covariance::kDiag:
      cov = k * d;
      break;
    case Covariance::kSpherical:
      cov = k;
      break;
    case Covariance::kTied:
      cov = d * (d + 1) / 2;
      break;
  }
  return cov + k * d + k - 1;
}

namespace {

void check_size(const std::vector<double>& v, std::size_t expected, const char* name) {
  if (v.size() != expected) {
    std::ostringstream msg;
    msg << "model: '" << name << "' has " << v.size() << " values, expected " << expected;
    throw InvalidArgument(msg.str());
  }
}

void check_finite(const std::vector<double>& v, const char* name) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      std::ostringstream msg;
      msg << "model: '" << name << "'[" << i << "] is " << v[i];
      throw InvalidArgument(msg.str());
    }
  }
}

void check_spd(const double* a, int d, const std::string& what) {
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(a, d,
                                                                                             d);
  const double scale = m.cwiseAbs().maxCoeff();
  const double asymmetry = (m - m.transpose()).cwiseAbs().maxCoeff();
  if (!(asymmetry <= 1e-8 * std::max(scale, 1e-300))) {
    throw InvalidArgument("model: " + what + " is not symmetric");
  }
  Eigen::LLT<Eigen::MatrixXd> llt(m);
  if (llt.info() != Eigen::Success || !(llt.matrixLLT().diagonal().minCoeff() > 0)) {
    throw InvalidArgument("model: " + what + " is not positive definite");
  }
}

}  // namespace

void Model::validate() const {
  if (n_components < 1) {
    throw InvalidArgument("model: n_components is " + std::to_string(n_components) +
                          ", must be at least 1");
  }
  if (n_features < 1) {
    throw InvalidArgument("model: n_features is " + std::to_string(n_features) +
                          ", must be at least 1");
  }
  const std::size_t k = static_cast<std::size_t>(n_components);
  const std::size_t d = static_cast<std::size_t>(n_features);
  check_size(weights, k, "weights");
  check_finite(weights, "weights");
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    if (weights[i] < 0) {
      throw InvalidArgument("model: weights[" + std::to_string(i) + "] is negative (" +
                            std::to_string(weights[i]) + ")");
    }
    total += weights[i];
  }
  if (std::abs(total - 1.0) > 1e-6) {
    std::ostringstream msg;
    msg.precision(10);
    msg << "model: weights sum to " << total << ", not 1";
    throw InvalidArgument(msg.str());
  }
  if (family == Family::kGaussian) {
    check_size(means, k * d, "means");
    check_finite(means, "means");
    check_size(covariances, covariance_size(), "covariances");
    check_finite(covariances, "covariances");
    switch (covariance) {
      case Covariance::kFull:
        for (std::size_t c = 0; c < k; ++c) {
          check_spd(&covariances[c * d * d], n_features, "covariance " + std::to_string(c));
        }
        break;
      case Covariance::kTied:
        check_spd(covariances.data(), n_features, "tied covariance");
        break;
      case Covariance::kDiag:
      case Covariance::kSpherical:
        for (std::size_t i = 0; i < covariances.size(); ++i) {
          if (!(covariances[i] > 0)) {
            throw InvalidArgument("model: covariances[" + std::to_string(i) + "] is " +
                                  std::to_string(covariances[i]) + " (variances must be positive)");
          }
        }
        break;
    }
  } else {
    if (trials < 1) {
      throw InvalidArgument("model: trials is " + std::to_string(trials) + ", must be at least 1");
    }
    if (family == Family::kBernoulli && trials != 1) {
      throw InvalidArgument("model: a Bernoulli mixture has trials = 1, not " +
                            std::to_string(trials));
    }
    check_size(probabilities, k * d, "probabilities");
    check_finite(probabilities, "probabilities");
    for (std::size_t i = 0; i < probabilities.size(); ++i) {
      if (probabilities[i] < 0 || probabilities[i] > 1) {
        throw InvalidArgument("model: probabilities[" + std::to_string(i) + "] is " +
                              std::to_string(probabilities[i]) + ", outside [0, 1]");
      }
    }
  }
}

}  // namespace emix
