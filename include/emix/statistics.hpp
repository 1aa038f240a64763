// The sufficient statistics of EM, as a public value: what an E-step over some rows gives and
// everything the M-step needs. Statistics of disjoint sets of rows under the same model merge
// by summing, so they serve fits out of core (chunk by chunk), distributed fits (MPI, Dask)
// and online EM. Plain C++17.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

// Sums over rows n (sample weights w_n, responsibilities g_nk = w_n p(k | x_n) under the model
// they were accumulated under), in double, in one flat buffer (values()):
//
//   [0]            log-likelihood  sum_n w_n log p(x_n)
//   [1]            weight sum      sum_n w_n
//   [2]            entropy         sum_n w_n H_n, H_n = -sum_k p(k | x_n) log p(k | x_n) (the
//                                  M-step does not use it; the ICL does)
//   [3, 3 + K)     N_k             sum_n g_nk
//   then K x D     S_k             sum_n g_nk (x_n - c_k)
//   then Q_k       Gaussian full / tied: K x D x D, sum_n g_nk (x_n - c_k)(x_n - c_k)^T;
//                  diag / spherical: K x D, its diagonal; Bernoulli / binomial: none
//
// with c_k = centres() (K x D, row-major): the model's means for Gaussian mixtures (so that the
// sums do not cancel), zero for Bernoulli and binomial ones. Tied: only the sum over components
// sum_k Q_k is defined (all that its M-step reads); an engine may split it among the Q_k in any
// way, and the CPU engine does (it sums the scatter once for all components, into Q_0); merge(),
// recentred() and maximize() keep that sum.
class Statistics {
 public:
  Statistics() = default;
  // Zero statistics of `model`'s shape, centred as an E-step under `model` centres them.
  explicit Statistics(const Model& model);
  // The statistics of one unit of weight that `model` itself implies, whose M-step (with this
  // reg_covar) gives `model` back: N_k = w_k, S_k = 0 about the means, Q_k = w_k (Sigma_k -
  // reg_covar I) (a diagonal variance below reg_covar counts as 0, and for full and tied
  // covariances a direction of Sigma_k with less than reg_covar counts as none); Bernoulli /
  // binomial S_k = w_k m p_k. What online EM starts from. Log-likelihood and entropy are 0. Throws
  // InvalidArgument for an invalid model.
  static Statistics implied_by(const Model& model, double reg_covar);

  Family family() const { return family_; }
  Covariance covariance() const { return covariance_; }
  int n_components() const { return k_; }
  int n_features() const { return d_; }
  int trials() const { return trials_; }

  double log_likelihood() const { return values_.empty() ? 0.0 : values_[0]; }
  double weight_sum() const { return values_.empty() ? 0.0 : values_[1]; }
  double entropy() const { return values_.empty() ? 0.0 : values_[2]; }
  const std::vector<double>& centres() const { return centres_; }
  const std::vector<double>& values() const { return values_; }
  std::vector<double>& values() { return values_; }

  // this += other, element by element. Both must come from E-steps under the same model: the
  // same shape and bitwise the same centres (InvalidArgument otherwise). Gaussian centres are
  // the model's means, so the statistics of a model with other means are refused (not those
  // of one that differs only in its weights or covariances); Bernoulli and binomial statistics
  // are plain sums, which add whatever model weighed them: keeping model versions apart (a
  // distributed loop's stale pieces) is the caller's part. A sum past double's range is
  // refused (InvalidArgument), this left as it was. Addition commutes, so
  // a.merge(b) and b.merge(a) are bitwise equal; three or more sets depend on the order, which
  // merge_in_order fixes.
  Statistics& merge(const Statistics& other);
  // Every sum times `factor` (finite, >= 0): the weighting of online EM. A product past
  // double's range is refused (InvalidArgument), this left as it was.
  Statistics& scale(double factor);
  // The same sums taken about other centres (K x D): S' = S + N (c - c'),
  // Q' = Q + (c - c') S^T + S (c - c')^T + N (c - c')(c - c')^T (diagonal: its diagonal), in
  // double. Exact in exact arithmetic; Bernoulli / binomial statistics are not centred (their
  // centres stay zero and InvalidArgument is thrown for others).
  Statistics recentred(const std::vector<double>& centres) const;

  // A self-describing little-endian byte string (format, shape, centres, values, a checksum)
  // and back. deserialize throws InvalidArgument naming the first thing wrong with malformed
  // bytes, including values no accumulation gives (NaN or infinite sums, negative weights) and
  // bytes changed since they were written (the checksum); it also reads the previous format,
  // which has no checksum.
  std::vector<std::uint8_t> serialize() const;
  static Statistics deserialize(const void* bytes, std::size_t size);

 private:
  Family family_ = Family::kGaussian;
  Covariance covariance_ = Covariance::kFull;
  int k_ = 0;
  int d_ = 0;
  int trials_ = 1;
  std::vector<double> centres_;
  std::vector<double> values_;
};

// parts[0] + parts[1] + ... summed in one stated order: a balanced binary tree over the index
// (pairs (0, 1), (2, 3), ..., then pairs of those sums, ...), the same for every caller, so that
// a distributed fit gives bitwise the same total whatever merges first. Throws InvalidArgument
// for an empty list or parts that cannot merge.
Statistics merge_in_order(const std::vector<Statistics>& parts);

// The E-step of `model` over rows x (N x D, host or device): their statistics. sample_weight:
// host, N non-negative values, or null for ones. Validates as fit() does, its rule on the
// largest weight included (all below 2^-600: refused, for the rows given; all zero is taken, rows
// that add nothing). N = 0 (a rank or a chunk without rows) gives zero statistics, which merge as
// nothing.
Statistics accumulate(const Model& model, const DataView& x, const EngineOptions& engine = {},
                      const double* sample_weight = nullptr);

// The same E-step with the Gaussian sums taken about `centres` (K x D, row-major, finite)
// instead of the model's means. A step that moved a mean by many standard deviations loses a
// variance's digits in the scatter about the old centres (scatter_lost_digits): fit() then takes
// the statistics again under the same model about the new means, and steps from those. A loop
// of one's own (a distributed fit over accumulate and merge) does the same with this. Throws
// InvalidArgument for a Bernoulli or binomial model (their statistics are not centred).
Statistics accumulate_about(const Model& model, const std::vector<double>& centres,
                            const DataView& x, const EngineOptions& engine = {},
                            const double* sample_weight = nullptr);

struct MStepOptions {
  double reg_covar = 1e-6;      // added to covariance diagonals
  double prob_epsilon = 1e-10;  // Bernoulli / binomial probabilities kept in [eps, 1 - eps]
  bool fixed_weights = false;   // keep `model`'s mixing weights
};

// The M-step: new parameters from statistics accumulated under `model` (or recentred onto its
// means). Empty components (a Gaussian one under 1e-12 of the total weight, a Bernoulli or
// binomial one at N_k = 0) keep `model`'s parameters and are listed in `empty` when it is not
// null; fit() re-seeds them. Throws InvalidArgument when the statistics'
// shape is not the model's, when they hold a value no accumulation gives (NaN, a negative weight,
// a Gaussian scatter about the new mean that is not positive semi-definite) or no weight at all. A
// component that collapsed onto too few distinct rows (a singular covariance without reg_covar) is
// returned as it is, for the caller to re-seed as fit() does.
Model maximize(const Model& model, const Statistics& statistics, const MStepOptions& options = {},
               std::vector<int>* empty = nullptr);

// Whether the step from `statistics` to `next` (maximize's result) lost a variance's digits: a
// mean moved so far from the statistics' centres that the scatter about them, moved to the new
// mean, kept under about 1e-14 of the variance in double (far less from float data). Take the
// statistics again about next's means (accumulate_about, under the same model as before) and
// maximize from those, as fit() does. False for Bernoulli and binomial models.
bool scatter_lost_digits(const Model& next, const Statistics& statistics);

}  // namespace emix
