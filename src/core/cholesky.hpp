// Cholesky factors of covariances, shared by prepare() (the E-step's U = L^-T), the M-step's
// singularity check and the model check (the largest precision entry). The arithmetic runs in
// the highest instruction set this CPU has (cpu::DenseKernels).
#pragma once

#include <Eigen/Core>

namespace emix {

// The Cholesky factor L of a d x d covariance (row-major; its lower triangle is read) into
// `lower` (zero above the diagonal); false where the factorisation fails.
bool cholesky_factor(const double* covariance, int d, Eigen::MatrixXd& lower);

// numerically_singular (core/maximize.hpp), given cholesky_factor's answer for that covariance.
bool singular_factor(bool factored, const Eigen::MatrixXd& lower, const double* covariance,
                     double reg_covar);

// L^-1 of a lower-triangular L (D x D), on up to `threads` threads, bitwise the same for every
// thread count: each panel of columns is solved against only the rows at and below it, a third
// of the work of a dense solve against the identity (L^-1 is lower triangular too), and the
// panels are independent.
Eigen::MatrixXd lower_triangular_inverse(const Eigen::MatrixXd& lower, int threads);

}  // namespace emix
