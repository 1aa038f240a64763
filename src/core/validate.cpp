#include "core/validate.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <locale>
#include <sstream>
#include <string>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/c_numbers.hpp"
#include "core/cholesky.hpp"
#include "core/initialize.hpp"
#include "emix/errors.hpp"

namespace emix {

// Shortest text that reads back as the same double ("2", "0.1", "5e-324").
std::string number(double value) {
  if (std::isnan(value)) return "nan";  // printf may write "-nan"
  const CNumbers c_numbers;
  char text[32];
  // A whole number as one ("10", where the shortest %g that reads back is "1e+01").
  if (value == std::trunc(value) && std::fabs(value) < 0x1p53) {
    std::snprintf(text, sizeof text, "%.0f", value);
    return text;
  }
  std::snprintf(text, sizeof text, "%.17g", value);
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) return shorter;
  }
  return text;
}

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string whole(double value) { return std::to_string(static_cast<std::int64_t>(value)); }

std::string gigabytes(double bytes) {
  const CNumbers c_numbers;
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Data and sample weights

// The largest magnitude a Gaussian fit takes in T: 2^500 in double, 2^60 in float, so that
// squares and sums of squares of D values stay finite (the covariances of 1e200 were inf, and the
// fit failed as "singular" instead of naming the value).
template <typename T>
constexpr int kGaussianExponentLimit = sizeof(T) == 8 ? 500 : 60;

// Names the first value of rows [first, first + rows) that the family cannot take, in row-major
// order: DataError with its row and column, counted from 1 over the whole data.
template <typename T>
void name_bad_value(const T* data, std::int64_t first, std::int64_t rows, std::int64_t cols,
                    Family family, int trials, bool limit_magnitude) {
  for (std::int64_t n = first; n < first + rows; ++n) {
    for (std::int64_t d = 0; d < cols; ++d) {
      const double v = static_cast<double>(data[n * cols + d]);
      std::string problem;
      if (std::isnan(v)) {
        problem = "is nan";
      } else if (std::isinf(v)) {
        problem = v > 0 ? "is inf" : "is -inf";
      } else if (family == Family::kGaussian && limit_magnitude &&
                 std::abs(v) >= std::ldexp(1.0, kGaussianExponentLimit<T>)) {
        const bool is_double = sizeof(T) == 8;
        problem = "is " + number(v) + ", too large: a Gaussian fit takes magnitudes below " +
                  number(std::ldexp(1.0, kGaussianExponentLimit<T>)) + " (2^" +
                  std::to_string(kGaussianExponentLimit<T>) + "), so that its sums of squares " +
                  "over rows and features stay within " +
                  (is_double ? "double precision; rescale the data"
                             : "single precision; rescale the data or use double precision");
      } else if (family == Family::kBernoulli && v != 0.0 && v != 1.0) {
        problem = "is " + number(v) + ", but a Bernoulli mixture needs 0 or 1";
      } else if (family == Family::kBinomial && (v < 0 || v > trials || v != std::floor(v))) {
        problem = "is " + number(v) +
                  ", but a binomial mixture with trials = " + std::to_string(trials) +
                  " needs a whole number of successes in 0.." + std::to_string(trials);
      }
      if (!problem.empty()) throw DataError(DataError::Source::kData, n + 1, d + 1, problem);
    }
  }
}

// The high and low 32 bits of a value (a float is all high word): whole-word integer tests that
// SSE2 vectorises, where it has no 64-bit compare and float compares keep the loop scalar.
struct Words {
  std::uint32_t high, low;
};
inline Words words_of(double v) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return {static_cast<std::uint32_t>(bits >> 32), static_cast<std::uint32_t>(bits)};
}
inline Words words_of(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return {bits, 0};
}

// Whether every one of the count values is one the family takes. Branch-free, so that the
// compiler vectorises it: the check runs over all the data of every fit and of every chunk or
// block a caller passes (a tenth of an E-step as a loop that built an error text per value).
template <typename T>
bool all_acceptable(const T* v, std::size_t count, Family family, int trials,
                    bool limit_magnitude) {
  constexpr std::uint32_t exponent = sizeof(T) == 8 ? 0x7ff00000u : 0x7f800000u;
  constexpr std::uint32_t one = sizeof(T) == 8 ? 0x3ff00000u : 0x3f800000u;  // 1.0's high word
  std::uint32_t bad = 0;
  if (family == Family::kGaussian) {
    // |v| >= 2^limit (inf and NaN included): the exponent field reaches the limit's; without
    // the limit, inf and NaN only.
    constexpr int bias = sizeof(T) == 8 ? 1023 : 127, shift = sizeof(T) == 8 ? 20 : 23;
    const std::uint32_t too_large =
        limit_magnitude ? static_cast<std::uint32_t>(bias + kGaussianExponentLimit<T>) << shift
                        : exponent;
    for (std::size_t i = 0; i < count; ++i) {
      bad |= (words_of(v[i]).high & exponent) >= too_large ? 1u : 0u;
    }
  } else if (family == Family::kBernoulli) {
    for (std::size_t i = 0; i < count; ++i) {
      const Words w = words_of(v[i]);
      const bool zero = ((w.high & 0x7fffffffu) | w.low) == 0;  // 0 or -0
      const bool is_one = (w.high == one) & (w.low == 0);
      bad |= (zero | is_one) ? 0u : 1u;
    }
  } else {
    // The largest T at or below trials: float rounds trials above 2^24 up, to a value beyond it.
    T top = static_cast<T>(trials);
    if (static_cast<double>(top) > trials) top = std::nextafter(top, T(0));
    for (std::size_t i = 0; i < count; ++i) {
      const bool in_range = (v[i] >= T(0)) & (v[i] <= top);  // false for NaN
      // In range, so the conversion is defined: a whole number converts back unchanged.
      const T safe = in_range ? v[i] : T(0);
      const T whole = static_cast<T>(static_cast<std::int64_t>(safe));
      bad |= (!in_range | (whole != safe)) ? 1u : 0u;
    }
  }
  return bad == 0;
}

// Screens rows a block at a time and names the first bad value of the first block that has one.
template <typename T>
void check_values(const T* data, std::int64_t rows, std::int64_t cols, Family family, int trials,
                  bool limit_magnitude) {
  constexpr std::int64_t kValuesPerBlock = 1 << 14;
  const std::int64_t block_rows = std::max<std::int64_t>(1, kValuesPerBlock / cols);
  for (std::int64_t first = 0; first < rows; first += block_rows) {
    const std::int64_t count = std::min(block_rows, rows - first);
    if (!all_acceptable(data + first * cols, static_cast<std::size_t>(count * cols), family, trials,
                        limit_magnitude)) {
      name_bad_value(data, first, count, cols, family, trials, limit_magnitude);
    }
  }
}

}  // namespace

void check_data_shape(const DataView& x) {
  if (x.dtype != DType::kFloat32 && x.dtype != DType::kFloat64) {
    throw InvalidArgument("data: element type " + std::to_string(static_cast<int>(x.dtype)) +
                          " is neither DType::kFloat32 nor DType::kFloat64");
  }
  if (x.space != MemorySpace::kHost && x.space != MemorySpace::kDevice) {
    throw InvalidArgument("data: memory space " + std::to_string(static_cast<int>(x.space)) +
                          " is neither MemorySpace::kHost nor MemorySpace::kDevice");
  }
  if (x.rows < 1) throw InvalidArgument("data: no rows");
  if (x.cols < 1) throw InvalidArgument("data: no columns");
  if (!x.data) throw InvalidArgument("data: null pointer");
  if (x.cols > kMaxFeatures) {
    throw InvalidArgument("data: " + std::to_string(x.cols) + " columns is more than the " +
                          std::to_string(kMaxFeatures) + " emix supports");
  }
  // A size no memory holds (2^56 bytes, 64 PiB) is a caller's mistake, a row count mixed up with
  // something else; reading it would fault, and rows x cols x element size could wrap.
  const double bytes = static_cast<double>(x.rows) * static_cast<double>(x.cols) *
                       static_cast<double>(dtype_size(x.dtype));
  if (bytes > std::ldexp(1.0, 56)) {
    throw InvalidArgument("data: " + std::to_string(x.rows) + " rows x " + std::to_string(x.cols) +
                          " columns of " + to_string(x.dtype) + " would take " + number(bytes) +
                          " bytes, more than any memory holds");
  }
}

namespace {

// limit_magnitude: refuse Gaussian values whose squares overflow, for what sums squares (a fit,
// statistics); an evaluation takes them (a far outlier's density is just very small).
void check_data(const DataView& x, Family family, int trials, bool limit_magnitude) {
  check_data_shape(x);
  if (x.space != MemorySpace::kHost) return;  // device data are the caller's responsibility
  if (x.dtype == DType::kFloat32) {
    check_values(static_cast<const float*>(x.data), x.rows, x.cols, family, trials,
                 limit_magnitude);
  } else {
    check_values(static_cast<const double*>(x.data), x.rows, x.cols, family, trials,
                 limit_magnitude);
  }
}

// ---------------------------------------------------------------------------------------------
// Models

void check_size(const std::vector<double>& v, std::size_t expected, const char* name) {
  if (v.size() != expected) {
    throw InvalidArgument("model: '" + std::string(name) + "' has " + std::to_string(v.size()) +
                          " values, expected " + std::to_string(expected));
  }
}

// `v` holds an array of the given extents, row-major: a value that is not finite is named by its
// index in each ("'means'[1][3]", as the model file's reader names a value), not its place in `v`.
void check_finite(const std::vector<double>& v, const char* name,
                  const std::vector<std::size_t>& extents) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      std::string index;
      std::size_t rest = i, stride = v.size();
      for (const std::size_t extent : extents) {
        stride /= extent;
        index += "[" + std::to_string(rest / stride) + "]";
        rest %= stride;
      }
      throw InvalidArgument("model: '" + std::string(name) + "'" + index + " is " + number(v[i]));
    }
  }
}

// The largest entry of P = L^-T L^-1 given L^-1 (column-major; prepare's U = L^-T row-major is
// the same array). P is positive definite, so its largest entry is on its diagonal (|P_ij| <=
// sqrt(P_ii P_jj)): P_jj is the squared norm of column j of L^-1, without the D^3 product that
// forming P took (a third of a one-iteration fit's time at D = 2048). The E-step uses the
// inverse; a matrix so close to singular that its inverse overflows would turn every density
// into NaN: InvalidArgument naming `what`.
double largest_inverse_entry(const Eigen::Ref<const Eigen::MatrixXd>& lower_inverse,
                             const std::string& what) {
  const double largest = lower_inverse.colwise().squaredNorm().maxCoeff();
  if (!std::isfinite(largest)) {
    throw InvalidArgument("model: " + what +
                          " is too close to singular: its inverse overflows double precision");
  }
  return largest;
}

// The largest |entry| of the inverse of the symmetric matrix `a` (d x d); InvalidArgument when
// it is not symmetric positive definite. Without `factor`, only the symmetry is checked (and 0
// returned): validate_and_prepare checks the rest from the factor prepare takes.
double check_spd(const double* a, int d, const std::string& what, bool factor) {
  Eigen::Map<const RowMatrix> m(a, d, d);
  const double scale = m.cwiseAbs().maxCoeff();
  const double asymmetry = (m - m.transpose()).cwiseAbs().maxCoeff();
  if (!(asymmetry <= 1e-8 * std::max(scale, 1e-300))) {
    throw InvalidArgument("model: " + what + " is not symmetric");
  }
  if (!factor) return 0;
  Eigen::MatrixXd lower;
  if (!cholesky_factor(a, d, lower) || !(lower.diagonal().minCoeff() > 0)) {
    throw InvalidArgument("model: " + what + " is not positive definite");
  }
  return largest_inverse_entry(lower_triangular_inverse(lower, 1), what);
}

// Every parameter array's length fits in memory arithmetic: K x D x D is computed in 64 bits.
// An enumerator out of range (a cast from an integer in C++; the C API checks its own): every
// to_string names the known ones and gives "?" for the rest.
template <typename Enum>
std::string unknown_enumerator(Enum value, const char* name, const char* known) {
  if (to_string(value)[0] != '?') return {};
  return std::string(name) + " is " + std::to_string(static_cast<int>(value)) + ", not one of " +
         known;
}

void check_shape(const Model& m) {
  for (const std::string& unknown :
       {unknown_enumerator(m.family, "family", "gaussian, bernoulli, binomial"),
        unknown_enumerator(m.covariance, "covariance", "full, diag, spherical, tied")}) {
    if (!unknown.empty()) throw InvalidArgument("model: " + unknown);
  }
  if (m.n_components < 1) {
    throw InvalidArgument("model: n_components is " + std::to_string(m.n_components) +
                          ", must be at least 1");
  }
  if (m.n_features < 1) {
    throw InvalidArgument("model: n_features is " + std::to_string(m.n_features) +
                          ", must be at least 1");
  }
  if (m.n_features > kMaxFeatures) {
    throw InvalidArgument("model: n_features is " + std::to_string(m.n_features) +
                          ", more than the " + std::to_string(kMaxFeatures) + " emix supports");
  }
  // D <= 2^20 and K < 2^31, so K x D x D < 2^71 could wrap; checked against 2^62 by division.
  const std::uint64_t k = static_cast<std::uint64_t>(m.n_components);
  const std::uint64_t d = static_cast<std::uint64_t>(m.n_features);
  constexpr std::uint64_t kMaxValues = std::uint64_t{1} << 62;
  if (m.family == Family::kGaussian && m.covariance == Covariance::kFull &&
      k > kMaxValues / (d * d)) {
    throw InvalidArgument("model: n_components x n_features x n_features = " + std::to_string(k) +
                          " x " + std::to_string(d) + " x " + std::to_string(d) +
                          " covariance values is more than emix supports");
  }
}

// The largest entry of any component's precision matrix (the inverse covariance); without
// `factor`, full and tied covariances are checked for symmetry only (check_spd) and count 0.
double largest_precision(const Model& m, bool factor = true) {
  const int d = m.n_features;
  const std::size_t du = static_cast<std::size_t>(d);
  double largest = 0;
  switch (m.covariance) {
    case Covariance::kFull:
      for (int c = 0; c < m.n_components; ++c) {
        largest = std::max(largest, check_spd(&m.covariances[static_cast<std::size_t>(c) * du * du],
                                              d, "covariance " + std::to_string(c), factor));
      }
      break;
    case Covariance::kTied:
      largest = check_spd(m.covariances.data(), d, "tied covariance", factor);
      break;
    case Covariance::kDiag:
    case Covariance::kSpherical:
      for (std::size_t i = 0; i < m.covariances.size(); ++i) {
        const double v = m.covariances[i];
        // As the model file nests them: [component][feature] for diag, [component] for
        // spherical. Built only for a message: this loop runs on every evaluation.
        const auto at = [&] {
          return m.covariance == Covariance::kDiag
                     ? "[" + std::to_string(i / du) + "][" + std::to_string(i % du) + "]"
                     : "[" + std::to_string(i) + "]";
        };
        if (!(v > 0)) {
          throw InvalidArgument("model: covariances" + at() + " is " + number(v) +
                                " (variances must be positive)");
        }
        // Below the smallest normal double, 1 / variance overflows: every density would be NaN.
        if (v < DBL_MIN) {
          throw InvalidArgument("model: covariances" + at() + " is " + number(v) +
                                ", too small: 1 / variance overflows double precision (variances "
                                "must be at least " +
                                number(DBL_MIN) + ")");
        }
        largest = std::max(largest, 1.0 / v);
      }
      break;
  }
  return largest;
}

// Physical memory, or the cgroup's limit (containers, batch jobs) or this process's address
// space or data limit (ulimit -v, -d), whichever is lowest, and what sets it, for messages:
// "more than the 0.3 GB " + `what`.
struct UsableMemory {
  double bytes = std::numeric_limits<double>::infinity();
  std::string what = "of this machine";
};

UsableMemory usable_memory() {
  UsableMemory usable;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    usable.bytes = static_cast<double>(pages) * static_cast<double>(page_size);
  }
  const auto lower = [&](double limit, const char* what) {
    if (limit < usable.bytes) usable = {limit, what};
  };
  for (const char* limit_file :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(limit_file);
    double limit = 0;
    if (in >> limit && limit > 0) {  // "max" reads as nothing
      lower(limit, "this container may use (its control group's memory limit)");
    }
  }
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit limit;
    if (::getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
      lower(static_cast<double>(limit.rlim_cur),
            resource == RLIMIT_AS ? "this process may use (its address-space limit, ulimit -v)"
                                  : "this process may use (its data-segment limit, ulimit -d)");
    }
  }
  return usable;
}

}  // namespace

std::string quoted_excerpt(std::string_view text, std::size_t max_bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  const std::size_t shown = std::min(text.size(), max_bytes);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += shown < text.size() ? "...' (" + std::to_string(text.size()) + " bytes)" : "'";
  return out;
}

std::string count_of(std::int64_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

void validate_model_shape(const Model& model) { check_shape(model); }

namespace {

// Model::validate, which returns largest_precision(model, factor) (0 for other families).
double validate_model(const Model& m, bool factor) {
  check_shape(m);
  const std::size_t k = static_cast<std::size_t>(m.n_components);
  const std::size_t d = static_cast<std::size_t>(m.n_features);
  check_size(m.weights, k, "weights");
  check_finite(m.weights, "weights", {k});
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    if (m.weights[i] < 0) {
      throw InvalidArgument("model: weights[" + std::to_string(i) + "] is negative (" +
                            number(m.weights[i]) + ")");
    }
    total += m.weights[i];
  }
  if (std::abs(total - 1.0) > 1e-6) {
    std::ostringstream msg;
    msg.imbue(std::locale::classic());  // not a host's global locale: 1.234 for 1234
    msg.precision(10);
    msg << "model: weights sum to " << total << ", not 1";
    throw InvalidArgument(msg.str());
  }
  if (m.family == Family::kGaussian) {
    check_size(m.means, k * d, "means");
    check_finite(m.means, "means", {k, d});
    check_size(m.covariances, m.covariance_size(), "covariances");
    check_finite(m.covariances, "covariances",
                 covariance_extents(m.covariance, m.n_components, m.n_features));
    return largest_precision(m, factor);
  }
  if (m.covariance != Covariance::kFull) {
    throw InvalidArgument(std::string("model: covariance type ") + to_string(m.covariance) +
                          " applies to Gaussian mixtures only (a " + to_string(m.family) +
                          " model's is the default, full)");
  }
  if (m.trials < 1) {
    throw InvalidArgument("model: trials is " + std::to_string(m.trials) + ", must be at least 1");
  }
  if (m.family == Family::kBernoulli && m.trials != 1) {
    throw InvalidArgument("model: a Bernoulli mixture has trials = 1, not " +
                          std::to_string(m.trials));
  }
  check_size(m.probabilities, k * d, "probabilities");
  check_finite(m.probabilities, "probabilities", {k, d});
  for (std::size_t i = 0; i < m.probabilities.size(); ++i) {
    if (m.probabilities[i] < 0 || m.probabilities[i] > 1) {
      throw InvalidArgument("model: probabilities[" + std::to_string(i / d) + "][" +
                            std::to_string(i % d) + "] is " + number(m.probabilities[i]) +
                            ", outside [0, 1]");
    }
  }
  return 0;
}

}  // namespace

void Model::validate() const { validate_model(*this, /*factor=*/true); }

void check_largest_sample_weight(double largest) {
  // Weights that are all tiny, though normal: each row's weight times its responsibilities (and
  // squared deviations) falls below DBL_MIN, which the engines flush to 0. Uniform weights of
  // 1e-298 moved the means by 2e-8 relative, of 1e-302 left every component "empty" and a
  // model of nonsense with exit 0. Below 2^-600 (2.4e-181) no data set of sane scale needs
  // them; above it a responsibility times a squared deviation keeps 1e127 of headroom.
  constexpr double kSmallestLargestWeight = 0x1p-600;
  if (largest < kSmallestLargestWeight) {
    throw InvalidArgument("sample weights are all below " + number(kSmallestLargestWeight) +
                          " (the largest is " + number(largest) +
                          "): their products with the responsibilities fall below the smallest "
                          "normal double, which the engines count as 0; only the weights' "
                          "ratios matter: scale them up");
  }
}

double validate_sample_weight(const double* sample_weight, std::int64_t rows, bool all_rows) {
  if (!sample_weight) return 0;
  double normal_total = 0;
  double subnormal_total = 0;
  double largest = 0;
  for (std::int64_t n = 0; n < rows; ++n) {
    const double w = sample_weight[n];
    if (!std::isfinite(w) || w < 0) {
      throw DataError(DataError::Source::kSampleWeight, n + 1, 0,
                      "is " + number(w) + ", but a sample weight must be a finite number >= 0");
    }
    (w < DBL_MIN ? subnormal_total : normal_total) += w;
    largest = std::max(largest, w);
  }
  check_weight_totals(normal_total, subnormal_total, all_rows);
  return largest;
}

void check_weight_totals(double normal_total, double subnormal_total, bool all_rows) {
  const double total = normal_total + subnormal_total;
  // The engines flush subnormal numbers to zero (FTZ / DAZ): a weight below DBL_MIN counts as 0,
  // harmless beside normal weights of 2^53 times its sum, but weights that are all that small
  // left N_k = 0 (NaN weights, or an E-step said to overflow), and fewer of them would drop rows
  // that matter from the fit without a word. Judged over all the rows: a chunk of tiny weights
  // beside one of normal ones is fine (a fit whose weights all count as 0 is refused by its
  // M-step).
  if (all_rows && subnormal_total > 0 && !(subnormal_total * 0x1p53 <= normal_total)) {
    throw InvalidArgument("sample weights below the smallest normal double (" + number(DBL_MIN) +
                          "), which the engines count as 0, sum to " + number(subnormal_total) +
                          " against " + number(normal_total) +
                          " for the others; only the weights' ratios matter: scale them up");
  }
  if (!std::isfinite(total)) {
    throw InvalidArgument("sample weights sum to " + number(total) +
                          " (their sum overflows double precision); only their ratios matter: "
                          "scale them down");
  }
  if (all_rows && !(total > 0)) throw InvalidArgument("sample weights sum to 0");
}

void validate(const EngineOptions& e) {
  const std::string device = unknown_enumerator(e.device, "device", "auto, cpu, gpu");
  if (!device.empty()) throw OptionError("device", device);
  if (e.n_threads < 0 || e.n_threads > kMaxThreads) {
    throw OptionError("n_threads", "n_threads is " + std::to_string(e.n_threads) +
                                       ", must be 0 (OpenMP's default) to " +
                                       std::to_string(kMaxThreads));
  }
  if (e.block_rows < 0) {
    throw OptionError("block_rows", "block_rows is " + std::to_string(e.block_rows) +
                                        ", must be 0 (chosen from K and D) or more");
  }
  if (e.chunk_rows < 0) {
    throw OptionError("chunk_rows", "chunk_rows is " + std::to_string(e.chunk_rows) +
                                        ", must be 0 (chosen from the GPU's memory) or more");
  }
  if (e.device_memory_limit < 0) {
    throw OptionError("device_memory_limit", "device_memory_limit is " +
                                                 std::to_string(e.device_memory_limit) +
                                                 ", must be 0 (what is free) or more");
  }
  if (e.gpu_device < -1) {
    throw OptionError("gpu_device", "gpu_device is " + std::to_string(e.gpu_device) +
                                        ", must be -1 (the current device) or a device number");
  }
}

void validate(const FitOptions& o) {
  const auto fail = [](const char* option, const std::string& what) {
    throw OptionError(option, what);
  };
  const std::pair<const char*, std::string> enumerators[] = {
      {"family", unknown_enumerator(o.family, "family", "gaussian, bernoulli, binomial")},
      {"covariance", unknown_enumerator(o.covariance, "covariance", "full, diag, spherical, tied")},
      {"init", unknown_enumerator(o.init, "init", "kmeans++, random, random-from-data")}};
  for (const auto& [option, unknown] : enumerators) {
    if (!unknown.empty()) fail(option, unknown);
  }
  if (o.n_components < 1) {
    fail("n_components",
         "n_components is " + std::to_string(o.n_components) + ", must be at least 1");
  }
  if (o.family == Family::kBinomial && o.trials < 1) {
    fail("trials", "trials is " + std::to_string(o.trials) + ", must be at least 1");
  }
  // As a covariance type for a discrete family: a trials count set for a Bernoulli fit is a
  // binomial fit meant, not one to ignore.
  if (o.family != Family::kBinomial && o.trials != 1) {
    fail("trials", "trials is " + std::to_string(o.trials) + ", but trials applies to binomial " +
                       "mixtures only (a " + to_string(o.family) +
                       " mixture keeps the default, 1)");
  }
  if (o.family != Family::kGaussian && o.covariance != Covariance::kFull) {
    fail("covariance", std::string("covariance type ") + to_string(o.covariance) +
                           " applies to Gaussian mixtures only (a " + to_string(o.family) +
                           " mixture keeps the default, full)");
  }
  if (o.max_iter < 0) {
    fail("max_iter", "max_iter is " + std::to_string(o.max_iter) + ", must be >= 0");
  }
  if (!(o.tol >= 0) || !std::isfinite(o.tol)) {
    fail("tol", "tol is " + number(o.tol) + ", must be a finite number >= 0");
  }
  validate_mstep_options(o.reg_covar, o.prob_epsilon);
  if (o.n_init < 1)
    fail("n_init", "n_init is " + std::to_string(o.n_init) + ", must be at least 1");
  if (o.kmeans_iter < 0) {
    fail("kmeans_iter", "kmeans_iter is " + std::to_string(o.kmeans_iter) + ", must be >= 0");
  }
  if (o.init_max_rows < o.n_components) {
    fail("init_max_rows", "init_max_rows is " + std::to_string(o.init_max_rows) +
                              ", must be at least n_components (" + std::to_string(o.n_components) +
                              ")");
  }
  validate(o.engine);
  if (o.init_model) {
    const Model& m = *o.init_model;
    m.validate();
    if (m.family != o.family) {
      fail("init_model", std::string("init model: family is ") + to_string(m.family) +
                             ", but the fit asks for " + to_string(o.family));
    }
    if (m.family == Family::kGaussian && m.covariance != o.covariance) {
      fail("init_model", std::string("init model: covariance type is ") + to_string(m.covariance) +
                             ", but the fit asks for " + to_string(o.covariance));
    }
    if (m.n_components != o.n_components) {
      fail("init_model", "init model has " + std::to_string(m.n_components) +
                             " components, but the fit asks for " + std::to_string(o.n_components));
    }
    if (m.family == Family::kBinomial && m.trials != o.trials) {
      fail("init_model", "init model has trials = " + std::to_string(m.trials) +
                             ", but the fit asks for " + std::to_string(o.trials));
    }
    // A fixed weight of 0 makes a component no row can join: it was re-seeded every iteration,
    // with a warning each time and advice about duplicates and reg_covar.
    const auto zero = std::find(m.weights.begin(), m.weights.end(), 0.0);
    if (o.fixed_weights && zero != m.weights.end()) {
      fail("fixed_weights", "fixed_weights keeps the initial weights, and component " +
                                std::to_string(zero - m.weights.begin()) +
                                " (0-based) has weight 0: no row can join it; give it a weight > "
                                "0, or fit one component fewer");
    }
  }
}

void validate_mstep_options(double reg_covar, double prob_epsilon) {
  if (!(reg_covar >= 0) || !std::isfinite(reg_covar)) {
    throw OptionError("reg_covar",
                      "reg_covar is " + number(reg_covar) + ", must be a finite number >= 0");
  }
  if (!(prob_epsilon > 0 && prob_epsilon < 0.5)) {
    throw OptionError("prob_epsilon", "prob_epsilon is " + number(prob_epsilon) +
                                          ", must be in [2^-53 (1.1e-16), 0.5)");
  }
  // Probabilities are clamped to [prob_epsilon, 1 - prob_epsilon]: below 2^-53, 1 - prob_epsilon
  // rounds to 1, whose log(1 - p) is -inf, and a fit's log-likelihood became NaN.
  if (prob_epsilon < std::ldexp(1.0, -53)) {
    throw OptionError("prob_epsilon", "prob_epsilon is " + number(prob_epsilon) +
                                          ", must be at least 2^-53 (1.1e-16), so that "
                                          "1 - prob_epsilon is below 1 in double precision");
  }
}

namespace {

// The float32 E-step holds the precisions in float: one beyond FLT_MAX would be inf there.
bool holds_precisions_in_float(const Model& model, DType dtype) {
  return model.family == Family::kGaussian && dtype == DType::kFloat32;
}

void check_precisions_for_float(double largest, const char* what) {
  if (largest > FLT_MAX) {
    throw InvalidArgument(std::string(what) +
                          ": a covariance is too small for float32 data (an entry of its "
                          "inverse is " +
                          number(largest) + ", beyond float32's range); use float64 data");
  }
}

}  // namespace

void validate_fit_options(const FitOptions& o, std::int64_t cols) {
  validate(o);
  if (o.init_model && o.init_model->n_features != cols) {
    throw InvalidArgument("init model has " + count_of(o.init_model->n_features, "feature") +
                          ", but the data have " + count_of(cols, "column"));
  }
}

void validate_fit_data(const DataView& x, const FitOptions& o) {
  check_data(x, o.family, o.family == Family::kBinomial ? o.trials : 1, true);
}

namespace {

// What a fit of o holds at its peak: initialisation's (initialization_memory), or the model, the
// next model, the prepared model and the statistics, each at least K x D (K x D x D for full
// covariances). what: which, in words.
struct FitMemory {
  double init_bytes = 0;
  double em_bytes = 0;
  bool matrices_dominate = false;               // the D x D covariances are most of em_bytes
  bool init_responsibilities_dominate = false;  // random initialisation's rows x K matrix
  std::string init_what, em_what;
};

FitMemory fit_memory(std::int64_t rows, std::int64_t cols, const FitOptions& o) {
  const double k = o.n_components;
  const double d = static_cast<double>(cols);
  const InitMemory init = initialization_memory(std::min(rows, o.init_max_rows), cols, o);
  const bool gaussian = o.family == Family::kGaussian;
  const bool full = gaussian && o.covariance == Covariance::kFull;
  const bool tied = gaussian && o.covariance == Covariance::kTied;
  FitMemory m;
  m.init_bytes = init.bytes;
  m.init_responsibilities_dominate = init.responsibilities_dominate;
  // Every restart's run is held until the joint passes end (run_em), each with its own
  // generator, options and report besides its models: 8 KiB (std::mt19937_64 alone is 2.5).
  // Measured peaks (peak RSS of `emix fit` on 50 rows, D = 1000 and 2000, K = 1 and 2, 1 and 2
  // threads, n_init 1 to 4): a fit holds about 9.5 copies of its D x D covariances with one
  // restart and about 4.5 more for each other restart (each run's model, its previous one and
  // its factors; the engine's prepared model, statistics and M-step work once).
  const double runs = std::max(o.n_init, 1);
  const double matrices = full ? k * d * d : tied ? d * d : 0;  // D x D covariances
  const double per_run = 8 * 5 * (k * (1 + d) + matrices) + 8192;
  const double per_engine = 8 * 5 * matrices;
  m.em_bytes = runs * per_run + per_engine;
  m.matrices_dominate = 8 * 10 * matrices > 0.5 * (per_run + per_engine);
  m.init_what = init.what;
  m.em_what = "the model and its statistics hold " +
              (tied ? "a " + whole(d) + " x " + whole(d) + " covariance"
                    : whole(k) + " components x " + whole(d) +
                          (full ? " x " + whole(d) : std::string()) + " values") +
              " several times" +
              (runs > 1 ? ", for each of " + whole(runs) + " restarts" : std::string());
  return m;
}

}  // namespace

double usable_memory_bytes() { return usable_memory().bytes; }

void check_fit_memory(std::int64_t rows, std::int64_t cols, const FitOptions& o) {
  const FitMemory m = fit_memory(rows, cols, o);
  const double needed = std::max(m.init_bytes, m.em_bytes);
  const UsableMemory available = usable_memory();
  if (needed <= available.bytes) return;
  const bool init = m.init_bytes >= m.em_bytes;
  const std::string restarts = o.n_init > 1 ? ", n_init = " + std::to_string(o.n_init) : "";
  // What to change: the D x D covariances where they take the memory (a tied model's does not
  // shrink with fewer components), else the components, the initialisation's sample or the
  // restarts.
  std::string advice;
  if (init) {
    advice = std::string("use fewer components") +
             (m.init_responsibilities_dominate
                  ? " or the k-means++ initialisation (which holds no rows x components matrix)"
                  : "") +
             " (or, from the library, a smaller init_max_rows: at least n_components)";
  } else if (m.matrices_dominate && o.covariance == Covariance::kTied) {
    advice = "use covariance diag or spherical (D values a component, not a D x D matrix)";
  } else if (m.matrices_dominate) {
    advice =
        "use covariance diag or spherical (D values a component, not D x D), or fewer "
        "components";
  } else {
    advice = "use fewer components";
  }
  if (!init && !restarts.empty()) advice += " or fewer restarts";
  throw OutOfMemory("n_components = " + std::to_string(o.n_components) + (init ? "" : restarts) +
                    " needs at least " + gigabytes(needed) + " of memory (" +
                    (init ? m.init_what : m.em_what) + "), more than the " +
                    gigabytes(available.bytes) + " " + available.what + "; " + advice);
}

void check_select_memory(std::int64_t rows, std::int64_t cols,
                         const std::vector<FitOptions>& grid) {
  // Candidates are initialised one at a time, but every run of every candidate is held until
  // the joint passes end.
  double init_bytes = 0, em_bytes = 0;
  for (const FitOptions& o : grid) {
    const FitMemory m = fit_memory(rows, cols, o);
    init_bytes = std::max(init_bytes, m.init_bytes);
    em_bytes += m.em_bytes;  // every restart's
  }
  const double needed = init_bytes + em_bytes;
  const UsableMemory available = usable_memory();
  if (needed <= available.bytes) return;
  throw OutOfMemory("select: the grid's " + std::to_string(grid.size()) +
                    " candidates need at least " + gigabytes(needed) +
                    " of memory together (each run's model and statistics are held until the "
                    "joint passes end), more than the " +
                    gigabytes(available.bytes) + " " + available.what +
                    "; use fewer or smaller candidates");
}

void check_result_memory(std::int64_t rows, double bytes_per_row, const std::string& what) {
  const double needed = static_cast<double>(rows) * bytes_per_row;
  const UsableMemory available = usable_memory();
  if (needed <= available.bytes) return;
  throw OutOfMemory("the results for " + std::to_string(rows) + " rows (" + what +
                    " per row) need " + gigabytes(needed) + " of memory, more than the " +
                    gigabytes(available.bytes) + " " + available.what);
}

void check_sample_memory(std::int64_t rows, int cols) {
  // The rows in double and their int32 labels.
  const double needed = static_cast<double>(rows) * (8.0 * cols + 4.0);
  const UsableMemory available = usable_memory();
  if (needed <= available.bytes) return;
  throw OutOfMemory("sample: " + std::to_string(rows) + " rows x " + std::to_string(cols) +
                    " features need " + gigabytes(needed) + " of memory, more than the " +
                    gigabytes(available.bytes) + " " + available.what);
}

void validate_fit_arguments(const DataView& x, const FitOptions& o, const double* sample_weight) {
  if (o.n_components >= 1 && x.rows >= 1 && o.n_components > x.rows) {
    throw InvalidArgument("n_components = " + std::to_string(o.n_components) +
                          " is larger than the number of rows (" + std::to_string(x.rows) + ")");
  }
  validate_fit_options(o, x.cols);
  // Once a fit, not per chunk (a Cholesky per component); a chunked or distributed fit meets the
  // same model in its first E-step (EmRun::prepare_next).
  if (o.init_model && holds_precisions_in_float(*o.init_model, x.dtype)) {
    check_precisions_for_float(largest_precision(*o.init_model), "init model");
  }
  validate_fit_data(x, o);
  const double largest_weight = validate_sample_weight(sample_weight, x.rows);
  if (sample_weight) check_largest_sample_weight(largest_weight);  // a fit's rule, not a score's
  check_fit_memory(x.rows, x.cols, o);
}

void check_model_width(const Model& model, std::int64_t cols) {
  if (model.n_features != cols) {
    throw InvalidArgument("the model has " + count_of(model.n_features, "feature") +
                          ", but the data have " + count_of(cols, "column"));
  }
}

void validate_model_for_width(const Model& model, std::int64_t cols) {
  model.validate();
  check_model_width(model, cols);
}

CheckedModel validate_and_prepare(const Model& model, int threads) {
  CheckedModel checked;
  try {
    checked.largest_precision = validate_model(model, /*factor=*/false);
    PrepareOptions options;
    options.threads = threads;
    options.model_errors = true;
    checked.prepared = prepare(model, options);
    if (model.family == Family::kGaussian &&
        (model.covariance == Covariance::kFull || model.covariance == Covariance::kTied)) {
      const bool tied = model.covariance == Covariance::kTied;
      const Eigen::Index d = model.n_features;
      for (int c = 0; c < (tied ? 1 : model.n_components); ++c) {
        // U_c row-major is L^-1 column-major.
        const Eigen::Map<const Eigen::MatrixXd> lower_inverse(
            &checked.prepared.prec_chol[static_cast<std::size_t>(c * d * d)], d, d);
        checked.largest_precision = std::max(
            checked.largest_precision,
            largest_inverse_entry(lower_inverse,
                                  tied ? "tied covariance" : "covariance " + std::to_string(c)));
      }
    }
  } catch (const InvalidArgument&) {
    // The checks above take each kind of problem over all components in turn (symmetry, then
    // the factors, then their inverses); Model::validate takes each component in turn. Its
    // first problem is the one named.
    model.validate();
    throw;
  }
  return checked;
}

int factorisation_threads(const EngineOptions& engine) {
  return engine.n_threads >= 0 && engine.n_threads <= kMaxThreads ? engine.n_threads : 1;
}

void validate_checked_model_for_data(const Model& model, const CheckedModel& checked,
                                     const DataView& x, bool summing_squares) {
  check_model_width(model, x.cols);
  if (holds_precisions_in_float(model, x.dtype)) {
    check_precisions_for_float(checked.largest_precision, "model");
  }
  check_data(x, model.family, model.trials, summing_squares);
}

void check_evaluation(const double* log_prob, const double* resp, std::int64_t rows, int k,
                      bool assigning, std::int64_t first_row, bool* zero_density) {
  const std::size_t kk = static_cast<std::size_t>(k);
  if (zero_density != nullptr) *zero_density = false;
  for (std::int64_t n = 0; n < rows; ++n) {
    const std::size_t i = static_cast<std::size_t>(n);
    if (zero_density != nullptr && log_prob[i] == -std::numeric_limits<double>::infinity()) {
      *zero_density = true;
    }
    if (assigning && log_prob[i] == -std::numeric_limits<double>::infinity()) {
      // Every log-joint overflowed to -inf: which component is nearest is lost, and the
      // responsibilities (0 / 0) were a row of zeros and the label an arbitrary 0.
      throw DataError(DataError::Source::kData, first_row + n + 1, 0,
                      "cannot be assigned to a component: its density under every component "
                      "rounds to zero (log-density -inf: values too large for the element type, "
                      "in the data or the model)");
    }
    bool bad = std::isnan(log_prob[i]);
    if (!bad && resp != nullptr && std::isfinite(log_prob[i])) {
      for (std::size_t c = 0; c < kk && !bad; ++c) bad = std::isnan(resp[i * kk + c]);
    }
    if (bad) {
      // A DataError (naming the row, for a caller to name its file): values this large in the
      // data, or against this model, are beyond what the element type can evaluate.
      throw DataError(DataError::Source::kData, first_row + n + 1, 0,
                      "cannot be evaluated: its log-density under the model is " +
                          number(log_prob[i]) +
                          (std::isnan(log_prob[i]) ? "" : " but its responsibilities are nan") +
                          " (values too large for the element type, in the data or the model)");
    }
  }
}

}  // namespace emix
