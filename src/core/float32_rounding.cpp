#include "core/float32_rounding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "emix/errors.hpp"

namespace emix::detail {

namespace {

template <typename T>
void accumulate(const T* data, std::int64_t rows, std::int64_t cols, const double* centre,
                double* largest, double* sums, double* squares, double* rounding) {
  for (std::int64_t n = 0; n < rows; ++n) {
    const T* row = data + n * cols;
    for (std::int64_t d = 0; d < cols; ++d) {
      const double value = static_cast<double>(row[d]);
      const double about = value - centre[d];
      largest[d] = std::max(largest[d], std::fabs(value));
      sums[d] += about;
      squares[d] += about * about;
      if constexpr (std::is_same_v<T, double>) {
        // Beyond float's range the readers refuse the value; within it, what rounding changes.
        if (std::fabs(value) <= std::numeric_limits<float>::max()) {
          rounding[d] = std::max(rounding[d],
                                 std::fabs(value - static_cast<double>(static_cast<float>(value))));
        }
      }
    }
  }
}

}  // namespace

void Float32RoundingScan::add(const DataView& x) {
  if (x.space != MemorySpace::kHost) {
    throw InvalidArgument("Float32RoundingScan: data must be in host memory");
  }
  if (x.rows == 0) return;
  if (centre_.empty()) {
    const auto cols = static_cast<std::size_t>(x.cols);
    centre_.resize(cols);
    for (std::size_t d = 0; d < cols; ++d) {
      centre_[d] = x.dtype == DType::kFloat32 ? static_cast<const float*>(x.data)[d]
                                              : static_cast<const double*>(x.data)[d];
    }
    largest_.assign(cols, 0.0);
    sums_.assign(cols, 0.0);
    squares_.assign(cols, 0.0);
    rounding_.assign(cols, 0.0);
  } else if (static_cast<std::size_t>(x.cols) != centre_.size()) {
    throw InvalidArgument("Float32RoundingScan: " + std::to_string(x.cols) + " columns after " +
                          std::to_string(centre_.size()));
  }
  if (x.dtype == DType::kFloat32) {
    accumulate(static_cast<const float*>(x.data), x.rows, x.cols, centre_.data(), largest_.data(),
               sums_.data(), squares_.data(), rounding_.data());
  } else {
    accumulate(static_cast<const double*>(x.data), x.rows, x.cols, centre_.data(), largest_.data(),
               sums_.data(), squares_.data(), rounding_.data());
  }
  rows_ += x.rows;
}

std::optional<Float32Rounding> Float32RoundingScan::worst() const {
  std::optional<Float32Rounding> worst;
  if (rows_ < 2) return worst;
  const double n = static_cast<double>(rows_);
  for (std::size_t d = 0; d < centre_.size(); ++d) {
    const double mean = sums_[d] / n;
    const double spread = std::sqrt(std::max(squares_[d] / n - mean * mean, 0.0));
    if (!(spread > 0) || !std::isfinite(largest_[d])) continue;
    const double lost = rounding_[d] / spread;
    if (lost > kFloat32RoundingLimit && (!worst || lost > worst->lost)) {
      worst = Float32Rounding{static_cast<std::int64_t>(d), largest_[d], spread, lost};
    }
  }
  return worst;
}

}  // namespace emix::detail
