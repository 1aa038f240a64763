#include "emix/model.hpp"

#include <string>

#include "core/validate.hpp"
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
  throw InvalidArgument("unknown " + std::string(what) + " " + quoted_excerpt(name) +
                        " (expected one of: " + choices + ")");
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

// Model::validate() is in validate.cpp, with the library's other argument checks.

}  // namespace emix
