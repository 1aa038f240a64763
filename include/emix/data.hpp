// Non-owning views of data matrices, and a small owning host matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace emix {

enum class DType { kFloat32, kFloat64 };
enum class MemorySpace { kHost, kDevice };

// Size in bytes of one element of `dtype`.
constexpr std::size_t dtype_size(DType dtype) { return dtype == DType::kFloat32 ? 4 : 8; }
const char* to_string(DType dtype);  // "float32" / "float64"

// A dense rows x cols matrix, row-major (element (n, d) at data[n * cols + d]), of float or
// double, in host memory or in the memory of the current CUDA device. Does not own the data.
struct DataView {
  const void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  DType dtype = DType::kFloat64;
  MemorySpace space = MemorySpace::kHost;

  static DataView host(const double* p, std::int64_t rows, std::int64_t cols) {
    return {p, rows, cols, DType::kFloat64, MemorySpace::kHost};
  }
  static DataView host(const float* p, std::int64_t rows, std::int64_t cols) {
    return {p, rows, cols, DType::kFloat32, MemorySpace::kHost};
  }
  // A pointer that the caller's own CUDA code allocated on the current device.
  static DataView device(const double* p, std::int64_t rows, std::int64_t cols) {
    return {p, rows, cols, DType::kFloat64, MemorySpace::kDevice};
  }
  static DataView device(const float* p, std::int64_t rows, std::int64_t cols) {
    return {p, rows, cols, DType::kFloat32, MemorySpace::kDevice};
  }
};

// An owning row-major host matrix of float or double (what the file readers return).
class HostMatrix {
 public:
  HostMatrix() = default;
  HostMatrix(DType dtype, std::int64_t rows, std::int64_t cols);

  DType dtype() const { return dtype_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(bytes_.data());
  }
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes_.data());
  }
  // Element (n, d) converted to double.
  double at(std::int64_t n, std::int64_t d) const;
  DataView view() const { return {data(), rows_, cols_, dtype_, MemorySpace::kHost}; }
  // The same values in the other precision (a copy).
  HostMatrix converted(DType dtype) const;

 private:
  DType dtype_ = DType::kFloat64;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::vector<double> bytes_;  // double-typed storage keeps every element aligned
};

}  // namespace emix
