#include "core/cholesky.hpp"

#include <algorithm>
#include <cstddef>
#include <exception>
#include <limits>
#include <vector>

#include "cpu/cpu_kernels.hpp"
#include "cpu/fp_environment.hpp"

namespace emix {

bool cholesky_factor(const double* covariance, int d, Eigen::MatrixXd& lower) {
  lower.resize(d, d);
  return cpu::dense_kernels().cholesky(covariance, d, lower.data());
}

bool singular_factor(bool factored, const Eigen::MatrixXd& lower, const double* covariance,
                     double reg_covar) {
  if (!factored) return true;
  const Eigen::Index d = lower.rows();
  const double limit =
      reg_covar > 0 ? 0.0 : 16.0 * static_cast<double>(d) * std::numeric_limits<double>::epsilon();
  for (Eigen::Index j = 0; j < d; ++j) {
    const double pivot = lower(j, j);
    if (!(pivot * pivot > limit * covariance[static_cast<std::size_t>(j * (d + 1))])) return true;
  }
  return false;
}

Eigen::MatrixXd lower_triangular_inverse(const Eigen::MatrixXd& lower, int threads) {
  // Wide enough that each panel's solve runs at a product's speed.
  constexpr int kPanel = 128;
  const int d = static_cast<int>(lower.rows());
  Eigen::MatrixXd inverse(d, d);
  const cpu::DenseKernels& dense = cpu::dense_kernels();
  const int panels = (d + kPanel - 1) / kPanel;
  const unsigned caller_modes = cpu::fp_control_register();
  // Eigen's solve may take its work space from the heap: a std::bad_alloc is kept for after the
  // region, which no exception may leave.
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(panels));
  // The first panels are the largest: dynamic scheduling hands them out first.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && panels > 1)
  for (int panel = 0; panel < panels; ++panel) {
    try {
      const cpu::ScopedFpModes modes(caller_modes);
      const int j0 = panel * kPanel;
      dense.lower_inverse_columns(lower.data(), d, j0, std::min(kPanel, d - j0), inverse.data());
      // The rows above the panel.
      inverse.block(0, j0, j0, std::min(kPanel, d - j0)).setZero();
    } catch (...) {
      errors[static_cast<std::size_t>(panel)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  return inverse;
}

}  // namespace emix
