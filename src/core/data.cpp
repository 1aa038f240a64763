#include "emix/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "emix/errors.hpp"

namespace emix {

const char* to_string(DType dtype) { return dtype == DType::kFloat32 ? "float32" : "float64"; }

HostMatrix::HostMatrix(DType dtype, std::int64_t rows, std::int64_t cols)
    : dtype_(dtype), rows_(rows), cols_(cols) {
  if (rows < 0 || cols < 0) {
    throw InvalidArgument("HostMatrix: negative shape " + std::to_string(rows) + " x " +
                          std::to_string(cols));
  }
  const auto elements = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols);
  const std::uint64_t max_elements =
      std::numeric_limits<std::int64_t>::max() / static_cast<std::uint64_t>(dtype_size(dtype));
  if (cols != 0 &&
      (static_cast<std::uint64_t>(rows) > max_elements / static_cast<std::uint64_t>(cols))) {
    throw InvalidArgument("HostMatrix: shape " + std::to_string(rows) + " x " +
                          std::to_string(cols) + " is too large");
  }
  const std::uint64_t bytes = elements * dtype_size(dtype);
  try {
    bytes_.resize(static_cast<std::size_t>((bytes + sizeof(double) - 1) / sizeof(double)));
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("HostMatrix: cannot allocate " + std::to_string(bytes) + " bytes for a " +
                      std::to_string(rows) + " x " + std::to_string(cols) + " " + to_string(dtype) +
                      " matrix");
  } catch (const std::length_error&) {
    throw OutOfMemory("HostMatrix: cannot allocate " + std::to_string(bytes) + " bytes for a " +
                      std::to_string(rows) + " x " + std::to_string(cols) + " " + to_string(dtype) +
                      " matrix");
  }
}

double HostMatrix::at(std::int64_t n, std::int64_t d) const {
  if (n < 0 || n >= rows_ || d < 0 || d >= cols_) {
    throw InvalidArgument("HostMatrix::at(" + std::to_string(n) + ", " + std::to_string(d) +
                          ") is outside the " + std::to_string(rows_) + " x " +
                          std::to_string(cols_) + " matrix");
  }
  const std::int64_t i = n * cols_ + d;
  return dtype_ == DType::kFloat32 ? static_cast<double>(as<float>()[i]) : as<double>()[i];
}

HostMatrix HostMatrix::converted(DType dtype) const {
  HostMatrix out(dtype, rows_, cols_);
  const std::int64_t count = rows_ * cols_;
  if (dtype == dtype_) {
    std::copy(bytes_.begin(), bytes_.end(), out.bytes_.begin());
  } else if (dtype == DType::kFloat32) {
    const double* src = as<double>();
    float* dst = out.as<float>();
    constexpr double kMax = std::numeric_limits<float>::max();
    for (std::int64_t i = 0; i < count; ++i) {
      // An out-of-range double -> float cast is undefined behaviour in C++; saturate to +-inf
      // explicitly, as IEEE rounding would.
      const double v = src[i];
      dst[i] = v > kMax    ? std::numeric_limits<float>::infinity()
               : v < -kMax ? -std::numeric_limits<float>::infinity()
                           : static_cast<float>(v);
    }
  } else {
    const float* src = as<float>();
    double* dst = out.as<double>();
    for (std::int64_t i = 0; i < count; ++i) dst[i] = static_cast<double>(src[i]);
  }
  return out;
}

}  // namespace emix
