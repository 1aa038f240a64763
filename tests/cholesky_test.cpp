// The covariances' Cholesky factors and their inverses (core/cholesky.hpp), and prepare()'s
// report of singular components that the EM loop's check takes from them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/QR>

#include "core/cholesky.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "emix/errors.hpp"
#include "test_util.hpp"

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A random covariance with eigenvalues from 0.01 to 100 (condition 1e4).
RowMatrix random_covariance(int d, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(d, d);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = normal(rng);
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  const Eigen::MatrixXd q = qr.householderQ();
  Eigen::VectorXd eigenvalues(d);
  for (int j = 0; j < d; ++j) eigenvalues[j] = std::pow(10.0, -2.0 + 4.0 * j / (d - 1));
  const Eigen::MatrixXd sigma = q * eigenvalues.asDiagonal() * q.transpose();
  return 0.5 * (sigma + sigma.transpose());
}

// L^-1 by panels (three at D = 300, the last narrower) is L's inverse to rounding (1e-12 of
// the condition number of L, 1e2), exactly zero above its diagonal, and bitwise the same on one
// thread or three.
TEST(Cholesky, LowerTriangularInverseIsTheInverseOnEveryThreadCount) {
  const int d = 300;
  const RowMatrix sigma = random_covariance(d, 3);
  Eigen::MatrixXd lower;
  ASSERT_TRUE(emix::cholesky_factor(sigma.data(), d, lower));
  EXPECT_LT((lower * lower.transpose() - Eigen::MatrixXd(sigma)).cwiseAbs().maxCoeff(),
            1e-12 * 100);
  const Eigen::MatrixXd one = emix::lower_triangular_inverse(lower, 1);
  const Eigen::MatrixXd three = emix::lower_triangular_inverse(lower, 3);
  EXPECT_EQ(one, three);
  EXPECT_LT((lower * one - Eigen::MatrixXd::Identity(d, d)).cwiseAbs().maxCoeff(), 1e-12 * 1e2);
  for (int j = 1; j < d; ++j) {
    for (int i = 0; i < j; ++i) ASSERT_EQ(one(i, j), 0.0) << i << ", " << j;
  }
}

TEST(Cholesky, AMatrixThatIsNotPositiveDefiniteDoesNotFactor) {
  const double indefinite[] = {1, 2, 2, 1};
  Eigen::MatrixXd lower;
  EXPECT_FALSE(emix::cholesky_factor(indefinite, 2, lower));
  EXPECT_TRUE(emix::singular_factor(false, lower, indefinite, 1e-6));
}

// prepare() on a model with one singular full covariance (two equal columns, reg_covar 0):
// alone it fails naming the component; asked for the list, it names that component only, as
// numerically_singular does, on one thread or two (D = 160: factored in parallel).
TEST(Cholesky, PrepareListsTheSingularComponentsThatTheCheckFinds) {
  const int d = 160, k = 3;
  emix::Model model =
      emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kFull, k, d, 5);
  const std::size_t per = static_cast<std::size_t>(d) * d;
  Eigen::Map<RowMatrix> second(model.covariances.data() + per, d, d);
  second.row(1) = second.row(0);
  second.col(1) = second.col(0);
  for (int c = 0; c < k; ++c) {
    EXPECT_EQ(emix::numerically_singular(model.covariances.data() + c * per, d, 0), c == 1);
  }
  EXPECT_THROW(emix::prepare(model), emix::NumericalError);
  for (const int threads : {1, 2}) {
    std::vector<int> singular;
    emix::PrepareOptions options;
    options.threads = threads;
    options.singular = &singular;
    emix::prepare(model, options);
    EXPECT_EQ(singular, std::vector<int>{1}) << threads << " threads";
  }
}

// A model prepared on two threads is bitwise the one prepared on one (D = 200, K = 3: the
// components factor in parallel; K = 1: the inverse's panels do).
TEST(Cholesky, PreparedModelsAreTheSameOnEveryThreadCount) {
  for (const int k : {1, 3}) {
    const emix::Model model =
        emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kFull, k, 200, 9);
    emix::PrepareOptions two;
    two.threads = 2;
    const emix::PreparedModel a = emix::prepare(model), b = emix::prepare(model, two);
    EXPECT_EQ(a.prec_chol, b.prec_chol);
    EXPECT_EQ(a.log_norm, b.log_norm);
    EXPECT_EQ(a.mean_prec, b.mean_prec);
  }
}

}  // namespace
