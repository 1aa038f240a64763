#include "emix/model.hpp"

#include <algorithm>
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

std::vector<std::size_t> covariance_extents(Covariance covariance, int k, int d) {
  const std::size_t kk = static_cast<std::size_t>(std::max(k, 0));
  const std::size_t dd = static_cast<std::size_t>(std::max(d, 0));
  switch (covariance) {
    case Covariance::kFull:
      return {kk, dd, dd};
    case Covariance::kDiag:
      return {kk, dd};
    case Covariance::kSpherical:
      return {kk};
    case Covariance::kTied:
      return {dd, dd};
  }
  return {};
}

std::size_t Model::covariance_size() const {
  if (family != Family::kGaussian) return 0;
  std::size_t size = 1;
  for (const std::size_t extent : covariance_extents(covariance, n_components, n_features)) {
    size *= extent;
  }
  return size;
}

std::size_t Model::covariance_block_size() const {
  if (family != Family::kGaussian) return 0;
  const std::vector<std::size_t> extents = covariance_extents(covariance, n_components, n_features);
  std::size_t size = 1;
  // Every extent but the components' (a tied model's are all D).
  for (std::size_t i = covariance == Covariance::kTied ? 0 : 1; i < extents.size(); ++i) {
    size *= extents[i];
  }
  return size;
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
