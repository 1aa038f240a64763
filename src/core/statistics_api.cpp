// The public statistics API (emix/statistics.hpp) over the engines' seam (core/statistics.hpp).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "core/accumulate_piece.hpp"
#include "core/engine.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "core/statistics.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/statistics.hpp"

namespace emix {

namespace {

StatisticsLayout layout_of(const Statistics& s) {
  return StatisticsLayout(s.family(), s.covariance(), s.n_components(), s.n_features());
}

std::string shape_of(Family family, Covariance covariance, int k, int d, int trials) {
  std::string s = to_string(family);
  if (family == Family::kGaussian) s += std::string(" ") + to_string(covariance);
  s += ", K = " + std::to_string(k) + ", D = " + std::to_string(d);
  if (family == Family::kBinomial) s += ", trials = " + std::to_string(trials);
  return s;
}

// The serialised form: a header of fixed-size fields, then the centres and the values, then
// (from version 3) a checksum of everything before it.
constexpr char kMagic[8] = {'E', 'M', 'I', 'X', 'S', 'T', 'A', 'T'};
// Version 2 added the entropy at [2]; version 3 the checksum. Version 2 is still read (a pickled
// estimator's checkpoint may hold it), without a checksum to verify.
constexpr std::uint32_t kFormatVersion = 3;
constexpr std::uint32_t kOldestFormatVersion = 2;

// FNV-1a over 64-bit words (the tail byte by byte): each step is a bijection of the running
// value for a given word and of the word for a given value, so bytes that differ from what was
// written in one word always give another sum. A guard against bytes changed in storage or
// transit that the value checks cannot tell (a flipped bit in a sum), not a cryptographic hash.
std::uint64_t checksum(const std::uint8_t* bytes, std::size_t size) {
  constexpr std::uint64_t kPrime = 0x100000001b3;
  std::uint64_t sum = 0xcbf29ce484222325;
  std::size_t i = 0;
  for (; i + sizeof(std::uint64_t) <= size; i += sizeof(std::uint64_t)) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, sizeof word);
    sum = (sum ^ word) * kPrime;
  }
  for (; i < size; ++i) sum = (sum ^ bytes[i]) * kPrime;
  return sum;
}
struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t family;
  std::uint32_t covariance;
  std::int32_t k;
  std::int32_t d;
  std::int32_t trials;
  std::uint64_t n_centres;
  std::uint64_t n_values;
};
static_assert(sizeof(Header) == 48, "the header's layout is the format");
// The header and the doubles are copied as the host holds them, and the format is little-endian
// (emix/statistics.hpp): a big-endian host would write bytes no other host reads.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "emix's statistics bytes are little-endian; this host is big-endian (not supported)"
#endif

// The first value no accumulation can give, described, or "" when there is none: a NaN or
// infinite sum, a negative weight, centres of a Bernoulli or binomial mixture other than zero, or
// their negative sums. Corrupted bytes or statistics filled by hand can hold them, and the M-step
// would turn them into a model with negative weights or NaN parameters.
std::string first_impossible_value(const Statistics& s) {
  const StatisticsLayout layout = layout_of(s);
  const std::vector<double>& v = s.values();
  const bool discrete = s.family() != Family::kGaussian;
  for (std::size_t i = 0; i < s.centres().size(); ++i) {
    const double c = s.centres()[i];
    if (!std::isfinite(c) || (discrete && c != 0)) {
      return "centre " + std::to_string(i) + " is " + number(c) +
             (discrete ? " (a Bernoulli or binomial mixture's centres are 0)" : "");
    }
  }
  const auto name_of = [&](std::size_t i) -> std::string {
    if (i == StatisticsLayout::kLogLikelihood) return "the log-likelihood";
    if (i == StatisticsLayout::kWeightSum) return "the weight sum";
    if (i == StatisticsLayout::kEntropy) return "the entropy";
    if (i < layout.s()) return "N_k of component " + std::to_string(i - layout.nk());
    if (i < layout.q()) {
      const std::size_t j = i - layout.s(), d = static_cast<std::size_t>(layout.d);
      return "S of component " + std::to_string(j / d) + ", feature " + std::to_string(j % d);
    }
    return "scatter value " + std::to_string(i - layout.q());
  };
  for (std::size_t i = 0; i < v.size(); ++i) {
    // A log-likelihood of -inf: a row that every component gives density 0, which accumulate
    // can report.
    const bool minus_infinity_allowed = i == StatisticsLayout::kLogLikelihood;
    if (!std::isfinite(v[i]) && !(minus_infinity_allowed && v[i] < 0)) {
      return name_of(i) + " is " + number(v[i]);
    }
    const bool weight = i == StatisticsLayout::kWeightSum || (i >= layout.nk() && i < layout.s());
    const bool count = discrete && i >= layout.s() && i < layout.q();
    if ((weight || count) && v[i] < 0) return name_of(i) + " is negative (" + number(v[i]) + ")";
  }
  return "";
}

// The first Gaussian component whose moments no accumulation can give, described, or "": a
// scatter about the new mean Q_k / N_k - delta delta^T (delta = S_k / N_k) that is not positive
// semi-definite. Every such value is a weighted sum of squares, which rounding takes below zero
// by a few eps of Q_k / N_k at most: 1e-9 of it leaves legitimate statistics (collinear
// features, means far from their centres) far inside, and a corrupted value, which the M-step
// would turn into a covariance that is not positive definite (a model that scores nothing and
// that model files refuse), outside. Components the M-step leaves as they are (empty) are not
// checked; tied statistics are checked as their sum over components, empty ones included, which
// is all the M-step reads.
std::string inconsistent_moments(const Statistics& s) {
  const StatisticsLayout layout = layout_of(s);
  const std::vector<double>& v = s.values();
  const int k = layout.k, d = layout.d;
  double total = 0;
  for (int c = 0; c < k; ++c) total += v[layout.nk() + c];
  const auto empty = [&](int c) {
    return !(v[layout.nk() + c] > empty_at_or_below(layout, total));
  };
  constexpr double kRounding = 1e-9;
  // Bernoulli / binomial sums are not checked: in float32, a feature at its maximum in every
  // row gives S_k a rounding above trials x N_k, and the M-step clamps the probabilities.
  if (s.family() != Family::kGaussian) return "";
  using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Whether `scatter` (a component's, or tied, their sum) has a direction of negative variance
  // beyond rounding of `scale`, the largest second moment about a centre that went into it.
  const auto negative_direction = [&](const RowMatrix& scatter, double scale) {
    for (int j = 0; j < d; ++j) {
      if (!(scatter(j, j) >= -kRounding * scale)) return true;
    }
    if (s.covariance() == Covariance::kDiag || s.covariance() == Covariance::kSpherical) {
      return false;
    }
    // Not info(): a singular scatter (fewer rows than features) is legitimate, and Eigen calls
    // its pivots of rounding's size a numerical issue; their D stay at rounding's size. The
    // symmetric part, as the M-step averages the two triangles (LDLT reads one only: a value
    // spoilt in the other passed).
    const Eigen::MatrixXd symmetric = 0.5 * (scatter + scatter.transpose());
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(symmetric);
    return ldlt.vectorD().minCoeff() < -kRounding * scale;
  };
  if (s.covariance() == Covariance::kTied) {
    // Only the sum over components is defined (an engine may split it among the Q_k as it sums
    // it; the CPU engine pools it into Q_0), and maximize takes every component's, an empty
    // one's too: sum_k (Q_k - S_k S_k^T / N_k).
    RowMatrix tied = RowMatrix::Zero(d, d);
    for (int c = 0; c < k; ++c) {
      const double n = v[layout.nk() + c];
      for (int a = 0; a < d; ++a) {
        for (int b = 0; b < d; ++b) {
          const double moved = n > 0 ? v[layout.s_at(c, a)] * (v[layout.s_at(c, b)] / n) : 0.0;
          tied(a, b) += v[layout.q_at(c, a, b)] - moved;
        }
      }
    }
    double scale = 0;
    for (int a = 0; a < d; ++a) {
      double diagonal = 0;
      for (int c = 0; c < k; ++c) diagonal += v[layout.q_at(c, a, a)];
      if (diagonal < 0) {
        return "the components' summed scatter of feature " + std::to_string(a) + " is negative (" +
               number(diagonal) + ")";
      }
      scale = std::max(scale, diagonal);
    }
    if (negative_direction(tied, scale)) {
      return "the components' summed scatter about their new means is not positive semi-definite";
    }
    return "";
  }
  for (int c = 0; c < k; ++c) {
    if (empty(c)) continue;
    const double n = v[layout.nk() + c];
    RowMatrix scatter = RowMatrix::Zero(d, d);
    double scale = 0;
    for (int a = 0; a < d; ++a) {
      const double q = v[layout.q_at(c, a, a)];
      if (q < 0) {
        return "the scatter of component " + std::to_string(c) + ", feature " + std::to_string(a) +
               " is negative (" + number(q) + ")";
      }
      scale = std::max(scale, q / n);
      const int last = layout.full_scatter ? d : a + 1;  // diag / spherical: the diagonal only
      for (int b = layout.full_scatter ? 0 : a; b < last; ++b) {
        scatter(a, b) =
            v[layout.q_at(c, a, b)] / n - (v[layout.s_at(c, a)] / n) * (v[layout.s_at(c, b)] / n);
      }
    }
    if (negative_direction(scatter, scale)) {
      return "component " + std::to_string(c) +
             ": its scatter about its new mean (Q / N_k - delta delta^T) is not positive "
             "semi-definite";
    }
  }
  return "";
}

}  // namespace

void check_statistics_sizes(const Statistics& s, const std::string& where) {
  if (s.n_components() < 1 || s.n_features() < 1) {
    throw InvalidArgument(where + ": statistics of K = " + std::to_string(s.n_components()) +
                          " components and D = " + std::to_string(s.n_features()) +
                          " features (default-constructed, or moved from): make them from a "
                          "model, accumulate, or deserialize");
  }
  const std::size_t kd =
      static_cast<std::size_t>(s.n_components()) * static_cast<std::size_t>(s.n_features());
  const std::size_t values = layout_of(s).size();
  if (s.centres().size() != kd || s.values().size() != values) {
    throw InvalidArgument(
        where + ": " + std::to_string(s.centres().size()) + " centres and " +
        std::to_string(s.values().size()) + " values, but K = " + std::to_string(s.n_components()) +
        " and D = " + std::to_string(s.n_features()) + " need " + std::to_string(kd) + " and " +
        std::to_string(values) + " (moved from, or values() resized)");
  }
}

Statistics::Statistics(const Model& model)
    : family_(model.family),
      covariance_(model.covariance),
      k_(model.n_components),
      d_(model.n_features),
      trials_(model.family == Family::kBinomial ? model.trials : 1) {
  if (k_ < 1 || d_ < 1) {
    throw InvalidArgument("statistics: the model has K = " + std::to_string(k_) +
                          " components and D = " + std::to_string(d_) + " features");
  }
  const std::size_t kd = static_cast<std::size_t>(k_) * static_cast<std::size_t>(d_);
  centres_.assign(kd, 0.0);
  if (family_ == Family::kGaussian) {
    if (model.means.size() != kd) {
      throw InvalidArgument("statistics: the model has " + std::to_string(model.means.size()) +
                            " mean values for K x D = " + std::to_string(kd));
    }
    centres_ = model.means;
  }
  values_.assign(layout_of(*this).size(), 0.0);
}

Statistics Statistics::implied_by(const Model& model, double reg_covar) {
  const cpu::ScopedNonStopFp non_stop;
  model.validate();
  // As maximize takes it: the M-step with this reg_covar gives the model back.
  validate_mstep_options(reg_covar, MStepOptions{}.prob_epsilon);
  Statistics s(model);
  const StatisticsLayout layout = layout_of(s);
  const int k = s.k_, d = s.d_;
  const std::size_t du = static_cast<std::size_t>(d);
  double* v = s.values_.data();
  v[StatisticsLayout::kWeightSum] = 1.0;
  for (int c = 0; c < k; ++c) v[layout.nk() + c] = model.weights[c];
  if (s.family_ != Family::kGaussian) {
    for (int c = 0; c < k; ++c) {
      for (int j = 0; j < d; ++j) {
        v[layout.s_at(c, j)] = model.weights[c] * s.trials_ * model.probabilities[c * du + j];
      }
    }
    return s;
  }
  for (int c = 0; c < k; ++c) {
    const double w = model.weights[c];
    switch (s.covariance_) {
      case Covariance::kFull:
      case Covariance::kTied: {
        using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        const Eigen::Map<const RowMatrix> sigma(
            model.covariances.data() + (s.covariance_ == Covariance::kFull ? c * du * du : 0), d,
            d);
        RowMatrix scatter = sigma;
        scatter.diagonal().array() -= reg_covar;
        // As a diagonal variance below reg_covar counts as 0: directions of Sigma with less than
        // reg_covar count as none, so that the statistics stay positive semi-definite and the
        // M-step's covariance keeps reg_covar in every direction.
        if (Eigen::LLT<Eigen::MatrixXd>(scatter).info() != Eigen::Success) {
          const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(scatter);
          scatter = eigen.eigenvectors() * eigen.eigenvalues().cwiseMax(0.0).asDiagonal() *
                    eigen.eigenvectors().transpose();
          scatter = (0.5 * (scatter + scatter.transpose())).eval();
        }
        for (int i = 0; i < d; ++i) {
          for (int j = 0; j < d; ++j) v[layout.q_at(c, i, j)] = w * scatter(i, j);
        }
        break;
      }
      case Covariance::kDiag:
      case Covariance::kSpherical:
        for (int j = 0; j < d; ++j) {
          const double variance = s.covariance_ == Covariance::kDiag
                                      ? model.covariances[c * du + j]
                                      : model.covariances[static_cast<std::size_t>(c)];
          v[layout.q_at(c, j, j)] = w * std::max(variance - reg_covar, 0.0);
        }
        break;
    }
  }
  return s;
}

namespace {

// Whether value i may become `value`, computed from `inputs` (whether one of them was -inf): a
// finite number, or -inf for a log-likelihood that already was (a row that every component
// gives density 0, as accumulate reports it), not one that overflowed to it.
bool representable(std::size_t i, double value, bool an_input_was_minus_infinite) {
  return std::isfinite(value) ||
         (i == StatisticsLayout::kLogLikelihood && value < 0 && an_input_was_minus_infinite);
}

constexpr double kMinusInfinity = -std::numeric_limits<double>::infinity();

}  // namespace

Statistics& Statistics::merge(const Statistics& other) {
  check_statistics_sizes(*this, "statistics: merge into");
  check_statistics_sizes(other, "statistics: merge");
  if (other.family_ != family_ || other.covariance_ != covariance_ || other.k_ != k_ ||
      other.d_ != d_ || other.trials_ != trials_) {
    throw InvalidArgument(
        "statistics: cannot merge " +
        shape_of(other.family_, other.covariance_, other.k_, other.d_, other.trials_) + " into " +
        shape_of(family_, covariance_, k_, d_, trials_));
  }
  if (std::memcmp(other.centres_.data(), centres_.data(), centres_.size() * sizeof(double)) != 0) {
    throw InvalidArgument(
        "statistics: cannot merge statistics centred elsewhere (they come from E-steps under "
        "different models; recentred() moves them onto one model's means)");
  }
  // NaN is no overflow, which the loop below would call it.
  for (const Statistics* side : {static_cast<const Statistics*>(this), &other}) {
    const std::string impossible = first_impossible_value(*side);
    if (!impossible.empty()) {
      throw InvalidArgument("statistics: cannot merge: in the statistics merged " +
                            std::string(side == this ? "into, " : "in, ") + impossible);
    }
  }
  for (std::size_t i = 0; i < values_.size(); ++i) {
    const bool minus_infinite = values_[i] == kMinusInfinity || other.values_[i] == kMinusInfinity;
    if (!representable(i, values_[i] + other.values_[i], minus_infinite)) {  // before any changes
      throw InvalidArgument(
          "statistics: merging overflows: the sum of two values is past "
          "double's range (" +
          number(values_[i]) + " + " + number(other.values_[i]) +
          "); the data or the sample weights are too large: rescale them");
    }
  }
  for (std::size_t i = 0; i < values_.size(); ++i) values_[i] += other.values_[i];
  return *this;
}

Statistics& Statistics::scale(double factor) {
  if (!(factor >= 0) || !std::isfinite(factor)) {
    throw InvalidArgument("statistics: scale factor " + number(factor) +
                          " is not a finite non-negative number");
  }
  // The weight sum scales every other sum: below DBL_MIN they lose their digits (and the
  // engines read such numbers as 0), and an M-step of 1e-320 times the statistics moved the
  // means by 5e-3 without a word. A factor of 0 empties them, as online EM's first step does.
  const double weight =
      values_.size() > StatisticsLayout::kWeightSum ? values_[StatisticsLayout::kWeightSum] : 0.0;
  if (factor > 0 && weight >= DBL_MIN && weight * factor < DBL_MIN) {
    throw InvalidArgument("statistics: scaling by " + number(factor) +
                          " takes the weight sum from " + number(weight) + " to " +
                          number(weight * factor) +
                          ", below the smallest normal double: every sum would lose its digits");
  }
  for (std::size_t i = 0; i < values_.size(); ++i) {
    if (!representable(i, values_[i] * factor, values_[i] == kMinusInfinity)) {  // before any
      throw InvalidArgument("statistics: scaling by " + number(factor) + " overflows (" +
                            number(values_[i]) + " becomes " + number(values_[i] * factor) + ")");
    }
  }
  for (double& v : values_) v *= factor;
  return *this;
}

Statistics Statistics::recentred(const std::vector<double>& centres) const {
  check_statistics_sizes(*this, "statistics: recentred");
  const std::size_t kd = static_cast<std::size_t>(k_) * static_cast<std::size_t>(d_);
  if (centres.size() != kd) {
    throw InvalidArgument("statistics: " + std::to_string(centres.size()) +
                          " centre values for K x D = " + std::to_string(kd));
  }
  for (std::size_t i = 0; i < kd; ++i) {
    // What from_bytes and maximize refuse, refused where it comes in.
    if (!std::isfinite(centres[i])) {
      throw InvalidArgument("statistics: centre " + std::to_string(i / d_) + " is " +
                            number(centres[i]) + "; centres must be finite");
    }
  }
  Statistics out = *this;
  out.centres_ = centres;
  if (family_ != Family::kGaussian) {
    for (double c : centres) {
      if (c != 0.0) {
        throw InvalidArgument(
            "statistics: Bernoulli and binomial statistics are sums of x itself (centres zero)");
      }
    }
    return out;
  }
  const StatisticsLayout layout = layout_of(*this);
  const std::size_t d = static_cast<std::size_t>(d_);
  std::vector<double> delta(d);
  for (int c = 0; c < k_; ++c) {
    const double n = values_[layout.nk() + c];
    for (std::size_t j = 0; j < d; ++j) delta[j] = centres_[c * d + j] - centres[c * d + j];
    // Q first: it reads the old S.
    if (layout.full_scatter) {
      for (int i = 0; i < d_; ++i) {
        for (int j = 0; j < d_; ++j) {
          out.values_[layout.q_at(c, i, j)] += delta[i] * values_[layout.s_at(c, j)] +
                                               values_[layout.s_at(c, i)] * delta[j] +
                                               n * delta[i] * delta[j];
        }
      }
    } else {
      for (int i = 0; i < d_; ++i) {
        out.values_[layout.q_at(c, i, i)] +=
            2.0 * delta[i] * values_[layout.s_at(c, i)] + n * delta[i] * delta[i];
      }
    }
    for (int j = 0; j < d_; ++j) out.values_[layout.s_at(c, j)] += n * delta[j];
  }
  return out;
}

std::vector<std::uint8_t> Statistics::serialize() const {
  // Here, not where the bytes are read (another rank, a Dask worker), which could not say why.
  check_statistics_sizes(*this, "statistics: serialize");
  // Bytes that deserialize would refuse are refused here, where the cause is at hand.
  const std::string impossible = first_impossible_value(*this);
  if (!impossible.empty()) throw InvalidArgument("statistics: serialize: " + impossible);
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.family = static_cast<std::uint32_t>(family_);
  h.covariance = static_cast<std::uint32_t>(covariance_);
  h.k = k_;
  h.d = d_;
  h.trials = trials_;
  h.n_centres = centres_.size();
  h.n_values = values_.size();
  const std::size_t body = (centres_.size() + values_.size()) * sizeof(double);
  std::vector<std::uint8_t> out(sizeof h + body + sizeof(std::uint64_t));
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, centres_.data(), centres_.size() * sizeof(double));
  std::memcpy(out.data() + sizeof h + centres_.size() * sizeof(double), values_.data(),
              values_.size() * sizeof(double));
  const std::uint64_t sum = checksum(out.data(), sizeof h + body);
  std::memcpy(out.data() + sizeof h + body, &sum, sizeof sum);
  return out;
}

Statistics Statistics::deserialize(const void* bytes, std::size_t size) {
  const auto fail = [](const std::string& what) {
    throw InvalidArgument("statistics bytes: " + what);
  };
  if (bytes == nullptr) fail("null pointer");
  if (size < sizeof(Header)) {
    fail(std::to_string(size) + " bytes, fewer than the " + std::to_string(sizeof(Header)) +
         "-byte header");
  }
  Header h;
  std::memcpy(&h, bytes, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) fail("not emix statistics (bad magic)");
  if (h.version < kOldestFormatVersion || h.version > kFormatVersion) {
    fail("format version " + std::to_string(h.version) + ", this emix reads versions " +
         std::to_string(kOldestFormatVersion) + " to " + std::to_string(kFormatVersion));
  }
  const std::size_t trailer = h.version >= 3 ? sizeof(std::uint64_t) : 0;
  if (h.family > static_cast<std::uint32_t>(Family::kBinomial) ||
      h.covariance > static_cast<std::uint32_t>(Covariance::kTied)) {
    fail("unknown family " + std::to_string(h.family) + " or covariance " +
         std::to_string(h.covariance));
  }
  if (h.k < 1 || h.d < 1 || h.trials < 1) {
    fail("K = " + std::to_string(h.k) + ", D = " + std::to_string(h.d) +
         ", trials = " + std::to_string(h.trials));
  }
  const auto family = static_cast<Family>(h.family);
  // What no accumulation writes: a covariance type or trials for a family without them.
  if (family != Family::kGaussian &&
      h.covariance != static_cast<std::uint32_t>(Covariance::kFull)) {
    fail(std::string("a ") + to_string(family) + " mixture's statistics with covariance " +
         to_string(static_cast<Covariance>(h.covariance)) + " (that family has none: full)");
  }
  if (family != Family::kBinomial && h.trials != 1) {
    fail(std::string("a ") + to_string(family) + " mixture's statistics with trials = " +
         std::to_string(h.trials) + " (only binomial mixtures have trials)");
  }
  Statistics s;
  s.family_ = family;
  s.covariance_ = static_cast<Covariance>(h.covariance);
  s.k_ = h.k;
  s.d_ = h.d;
  s.trials_ = h.trials;
  const std::uint64_t kd = static_cast<std::uint64_t>(h.k) * static_cast<std::uint64_t>(h.d);
  // Bounded before the layout is sized: the K x D centres alone must fit in the bytes given,
  // and D is at most what a model may have, so K x D x D cannot wrap (hostile headers).
  if (static_cast<std::uint64_t>(h.d) > static_cast<std::uint64_t>(kMaxFeatures) ||
      kd > size / sizeof(double)) {
    fail("K = " + std::to_string(h.k) + " and D = " + std::to_string(h.d) + " do not fit in " +
         std::to_string(size) + " bytes");
  }
  const std::uint64_t expected_values = layout_of(s).size();
  if (h.n_centres != kd || h.n_values != expected_values) {
    fail(std::to_string(h.n_centres) + " centres and " + std::to_string(h.n_values) +
         " values, but K = " + std::to_string(h.k) + " and D = " + std::to_string(h.d) + " need " +
         std::to_string(kd) + " and " + std::to_string(expected_values));
  }
  const std::uint64_t body = (kd + expected_values) * sizeof(double);
  if (size - sizeof h != body + trailer) {
    fail(std::to_string(size) + " bytes, expected " + std::to_string(sizeof h + body + trailer));
  }
  const auto* p = static_cast<const std::uint8_t*>(bytes) + sizeof h;
  s.centres_.resize(kd);
  s.values_.resize(expected_values);
  std::memcpy(s.centres_.data(), p, kd * sizeof(double));
  std::memcpy(s.values_.data(), p + kd * sizeof(double), expected_values * sizeof(double));
  const std::string impossible = first_impossible_value(s);
  if (!impossible.empty()) fail(impossible);
  // After the value checks, which name what they find; the checksum catches the rest.
  if (trailer > 0) {
    std::uint64_t written;
    std::memcpy(&written, p + body, sizeof written);
    if (written != checksum(static_cast<const std::uint8_t*>(bytes), sizeof h + body)) {
      fail(
          "the checksum does not match: the bytes changed after they were written (storage or "
          "transfer)");
    }
  }
  return s;
}

Statistics merge_in_order(const std::vector<Statistics>& parts) {
  if (parts.empty()) throw InvalidArgument("merge_in_order: no statistics to merge");
  std::vector<Statistics> level = parts;
  while (level.size() > 1) {
    std::vector<Statistics> next;
    next.reserve((level.size() + 1) / 2);
    for (std::size_t i = 0; i + 1 < level.size(); i += 2) {
      next.push_back(std::move(level[i].merge(level[i + 1])));
    }
    if (level.size() % 2 == 1) next.push_back(std::move(level.back()));
    level = std::move(next);
  }
  return std::move(level.front());
}

namespace {

// InvalidArgument, starting with `what`, unless `model` is valid (or, for a step's result that
// may have lost its digits, only of a consistent shape) and `statistics` are of its shape, with
// the sizes that shape has.
void check_model_and_statistics(const Model& model, const Statistics& statistics, const char* what,
                                bool shape_only = false) {
  if (shape_only) {
    validate_model_shape(model);
  } else {
    model.validate();
  }
  const int trials = model.family == Family::kBinomial ? model.trials : 1;
  if (statistics.family() != model.family || statistics.covariance() != model.covariance ||
      statistics.n_components() != model.n_components ||
      statistics.n_features() != model.n_features || statistics.trials() != trials) {
    throw InvalidArgument(
        std::string(what) + ": statistics of " +
        shape_of(statistics.family(), statistics.covariance(), statistics.n_components(),
                 statistics.n_features(), statistics.trials()) +
        " for a model of " +
        shape_of(model.family, model.covariance, model.n_components, model.n_features, trials));
  }
  check_statistics_sizes(statistics, what);
}

// accumulate, about `centres` where given (K x D), else the model's; the largest weight judged
// by a fit's rule where asked.
Statistics accumulate_centred(const Model& model, const std::vector<double>* centres,
                              const DataView& x, const EngineOptions& engine,
                              const double* sample_weight, bool judge_largest_weight) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  const auto zero = [&] {
    Statistics stats(model);
    return centres != nullptr ? stats.recentred(*centres) : stats;
  };
  if (x.rows == 0) {
    // A rank or chunk without rows: zero statistics, which merge as nothing.
    validate_model_for_width(model, x.cols);
    return zero();
  }
  CheckedModel checked = validate_and_prepare(model, factorisation_threads(engine));
  validate_checked_model_for_data(model, checked, x, /*summing_squares=*/true);
  const double largest_weight = validate_sample_weight(sample_weight, x.rows, false);
  // A fit's rule for weights that flush to 0 (1e-300 moved the means by 1e-8, 1e-310 dropped
  // the rows); all zero is allowed, a piece of the data that adds nothing.
  if (judge_largest_weight && largest_weight > 0) check_largest_sample_weight(largest_weight);
  validate(engine);  // as predict and score check it
  PreparedModel prepared = std::move(checked.prepared);
  Statistics stats = zero();
  if (centres != nullptr) prepared.centres = *centres;
  std::unique_ptr<Engine> e = make_engine(x, sample_weight, engine);
  e->accumulate(prepared, stats.values().data());
  // Sums past double's range (weights of 1e308): refused here, which can say why, rather than
  // where the statistics are next merged, serialised or maximised.
  const std::string overflowed = first_impossible_value(stats);
  if (!overflowed.empty()) {
    throw NumericalError("accumulate: " + overflowed + ": the sums overflow double's range; " +
                         (sample_weight != nullptr
                              ? "only the sample weights' ratios matter: scale them down (or "
                                "rescale the data)"
                              : "rescale the data (or the centres they are taken about)"));
  }
  return stats;
}

void check_centres(const Model& model, const std::vector<double>& centres) {
  if (model.family != Family::kGaussian) {
    throw InvalidArgument(
        "accumulate_about: Bernoulli and binomial statistics are sums of x itself (not centred)");
  }
  const std::size_t kd =
      static_cast<std::size_t>(model.n_components) * static_cast<std::size_t>(model.n_features);
  if (centres.size() != kd) {
    throw InvalidArgument("accumulate_about: " + std::to_string(centres.size()) +
                          " centres for K x D = " + std::to_string(kd));
  }
  for (std::size_t i = 0; i < centres.size(); ++i) {
    if (!std::isfinite(centres[i])) {
      throw InvalidArgument("accumulate_about: centres[" + std::to_string(i) + "] is not finite");
    }
  }
}

}  // namespace

Statistics accumulate_piece(const Model& model, const std::vector<double>* centres,
                            const DataView& x, const EngineOptions& engine,
                            const double* sample_weight) {
  if (centres != nullptr) check_centres(model, *centres);
  return accumulate_centred(model, centres, x, engine, sample_weight, false);
}

Statistics accumulate(const Model& model, const DataView& x, const EngineOptions& engine,
                      const double* sample_weight) {
  return accumulate_centred(model, nullptr, x, engine, sample_weight, true);
}

Statistics accumulate_about(const Model& model, const std::vector<double>& centres,
                            const DataView& x, const EngineOptions& engine,
                            const double* sample_weight) {
  check_centres(model, centres);
  return accumulate_centred(model, &centres, x, engine, sample_weight, true);
}

bool scatter_lost_digits(const Model& next, const Statistics& statistics) {
  check_model_and_statistics(next, statistics, "scatter_lost_digits", /*shape_only=*/true);
  if (next.family != Family::kGaussian) return false;
  return scatter_lost_digits(next, layout_of(statistics), statistics.values().data());
}

Model maximize(const Model& model, const Statistics& statistics, const MStepOptions& options,
               std::vector<int>* empty) {
  const cpu::ScopedNonStopFp non_stop;
  return maximize_statistics(model, statistics, options, empty, true);
}

Model maximize_statistics(const Model& model, const Statistics& statistics,
                          const MStepOptions& options, std::vector<int>* empty,
                          bool check_moments) {
  check_model_and_statistics(model, statistics, "maximize");
  const StatisticsLayout layout = layout_of(statistics);
  validate_mstep_options(options.reg_covar, options.prob_epsilon);
  std::string impossible = first_impossible_value(statistics);
  if (impossible.empty() && check_moments) impossible = inconsistent_moments(statistics);
  if (!impossible.empty()) throw InvalidArgument("maximize: " + impossible);
  double weight = 0;
  for (int c = 0; c < layout.k; ++c) weight += statistics.values()[layout.nk() + c];
  if (!(weight > 0)) {
    throw InvalidArgument(
        "maximize: the statistics hold no weight (their N_k sum to 0): accumulate rows of "
        "positive weight first");
  }

  // A component that collapsed (a singular covariance without reg_covar) is returned as it is:
  // callers re-seed it, as fit() does (emix.dask too, through it).
  return maximize(model, layout, statistics.centres().data(), statistics.values().data(), options,
                  empty);
}

}  // namespace emix
