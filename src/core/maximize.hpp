// The M-step: new parameters from the sufficient statistics alone (host, double).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "core/prepared_model.hpp"
#include "core/statistics.hpp"
#include "emix/model.hpp"
#include "emix/statistics.hpp"

namespace emix {

using MaximizeOptions = MStepOptions;

// Gaussian statistics below this share of the total weight mean a component is empty.
constexpr double kEmptyComponentShare = 1e-12;

// The N_k at or below which a component of `layout` is empty and is re-seeded: numerically 0
// (its parameters 0/0), and for a Gaussian one under kEmptyComponentShare of `nk_total`, whose
// covariance would come from the negligible shares of a few rows. A Bernoulli or binomial
// component keeps any positive N_k: its probabilities, a weighted mean of rows, are valid at any
// weight, and EM revives such a component where it fits rows (binomial, m = 1000: a weight of
// 3e-60 after one step, 0.25 after the next; re-seeded on one row instead, the fit converged at
// -586 a row against EM's -32.8).
inline double empty_at_or_below(const StatisticsLayout& layout, double nk_total) {
  return layout.has_scatter ? std::max(kEmptyComponentShare * nk_total, 1e-300) : 1e-300;
}

// New parameters from `stats` (in `layout`, centred on `centres`, K x D). Components whose N_k
// is (numerically) zero keep their current parameters and are listed in `empty`; the caller
// re-seeds them. With fixed_weights, `current`'s weights are kept. Needs nothing of the model the
// statistics came from but these two.
Model maximize(const Model& current, const StatisticsLayout& layout, const double* centres,
               const double* stats, const MaximizeOptions& options, std::vector<int>* empty);

// emix::maximize (emix/statistics.hpp) with the check that each Gaussian scatter about its new
// mean is positive semi-definite optional: online EM blends accumulated statistics with those a
// model implies (Statistics::implied_by), whose Sigma - reg_covar I need not be, and which the
// M-step's reg_covar makes a covariance again, as before the check.
Model maximize_statistics(const Model& model, const Statistics& statistics,
                          const MStepOptions& options, std::vector<int>* empty, bool check_moments);

// InvalidArgument, starting with `where`, unless `s` holds the K x D centres and the values its
// layout has: what a default-constructed or moved-from object, or a resized values(), lacks.
void check_statistics_sizes(const Statistics& s, const std::string& where);

// Whether the scatter about the centres, moved to the new means (Q / N - delta delta^T), lost
// the digits of a variance: where a mean moved by more than about 29 of its new standard
// deviations (Q / N above 840 times the new variance, reg_covar included), float's rounding
// of Q would be 1e-4 of the variance and double's is 3e-14; a step from a broad start onto
// duplicated rows far away moved by 1e5 of them. The caller takes the statistics again, centred
// on the new means (scikit-learn's two passes), and steps from those. Tied: the sum over
// components, sum_k Q_k / sum_k N_k, against the one covariance: what its M-step subtracts from,
// and all that a pooled scatter (the CPU engine's tied tiles) holds.
bool scatter_lost_digits(const Model& next, const StatisticsLayout& layout, const double* stats);

// Whether a d x d covariance (row-major) from an M-step with this reg_covar is singular in
// double arithmetic: its Cholesky factorisation fails or leaves a pivot <= 0, or, with reg_covar
// 0, some feature keeps at most 16 d epsilon of its variance once the features before it are
// accounted for (L_jj^2 <= 16 d eps Sigma_jj), which is what rounding leaves of a variance that
// is zero: two equal columns gave a pivot of 1e-16 of the variance, a log-density of +16 per
// row, and a "converged" model. reg_covar > 0 puts a floor under every eigenvalue, which a fit
// relies on however small it is beside the variances (a column that sums the others, say), as
// scikit-learn's does.
bool numerically_singular(const double* covariance, int d, double reg_covar);

// Whether Gaussian component c's covariance (full, diag or spherical; false for tied) is what
// reg_covar = 0 leaves of a collapse onto coinciding rows: the rows that own the component all
// equal its mean, and its variance is the others' negligible responsibilities times their
// squared distances (5 points repeated 5 times, K = 8: 1e-37 to 1e-202 beside means near 1).
// numerically_singular's relative test passes such a covariance, and its log-densities then
// run to +-1e40 and beyond (that fit was called converged at -3e44 a row). A standard deviation
// in some coordinate under a quarter of eps |mu_cj|, below half a unit in the last place of
// the mean, is taken for one: no other value of that coordinate lies within it (a spherical
// variance: against the mean of those bounds). Data a few units in the last place apart, such
// as nanosecond timestamps near 1.7e18 that differ by microseconds, stay above it.
bool covariance_unresolved(const Model& model, int c);

// Gaussian components of `model` (an M-step's result under this reg_covar) whose covariance does
// not factor in double (numerically_singular; a diag or spherical variance not above 0), in
// order; throws NumericalError for a singular tied covariance, which no re-seed mends.
std::vector<int> singular_components(const Model& model, double reg_covar);

// `singular` with the components whose covariance is what a collapse onto coinciding rows
// leaves (covariance_unresolved; reg_covar 0 only), in order.
std::vector<int> with_unresolved(const Model& model, double reg_covar, std::vector<int> singular);

// The components a fit takes for collapsed and re-seeds: both of the above.
inline std::vector<int> collapsed_components(const Model& model, double reg_covar) {
  return with_unresolved(model, reg_covar, singular_components(model, reg_covar));
}

// The same with the layout and centres of `prepared`.
inline Model maximize(const Model& current, const PreparedModel& prepared, const double* stats,
                      const MaximizeOptions& options, std::vector<int>* empty) {
  return maximize(current, prepared.layout, prepared.centres.data(), stats, options, empty);
}

}  // namespace emix
