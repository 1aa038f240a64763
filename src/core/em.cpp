// The EM driver: initialisation, the loop, convergence, restarts, re-seeding. It never sees the
// data: only statistics from the engine and, for re-seeding, rows it asks the engine for.
#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <locale>
#include <random>
#include <sstream>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/c_numbers.hpp"
#include "core/em.hpp"
#include "core/engine.hpp"
#include "core/initialize.hpp"
#include "core/interrupt.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/statistics.hpp"

namespace emix {

std::mt19937_64 run_rng(std::uint64_t seed, int run) {
  std::seed_seq seq{static_cast<std::uint64_t>(seed & 0xffffffffu),
                    static_cast<std::uint64_t>(seed >> 32), static_cast<std::uint64_t>(run)};
  return std::mt19937_64(seq);
}

bool better_restart(double candidate, double best) {
  if (!(candidate > best)) return false;
  if (!std::isfinite(candidate) || !std::isfinite(best)) return true;
  return candidate - best > 1e-10 * std::max(std::abs(candidate), std::abs(best));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string format_number(double value) {
  const CNumbers c_numbers;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

// What a component that collapsed or emptied restarts from: the mean of the covariances of the
// components not in `excluded` (those that collapsed or emptied), by weight; empty for a tied
// model or when no component is left. A collapsed component's own previous covariance was the
// one shrinking onto a few rows: restarted from it at a random row, a component took that row
// alone and collapsed again a step later, and every step to max_iter (K = 3 on two clusters and
// one far point, reg_covar 0).
std::vector<double> pooled_covariance(const Model& model, const std::vector<int>& excluded) {
  if (model.family != Family::kGaussian || model.covariance == Covariance::kTied) return {};
  const std::size_t per = model.covariance_block_size();
  std::vector<double> pooled(per, 0.0);
  double total = 0;
  for (int c = 0; c < model.n_components; ++c) {
    if (std::find(excluded.begin(), excluded.end(), c) != excluded.end()) continue;
    const double w = model.weights[c];
    total += w;
    for (std::size_t i = 0; i < per; ++i) pooled[i] += w * model.covariances[c * per + i];
  }
  if (!(total > 0)) return {};
  for (double& v : pooled) v /= total;
  return pooled;
}

// prepare() in a fit: a covariance that does not factor there comes from rows that coincide or
// data in a subspace, which reg_covar (added to every variance) is for; the error says so, as a
// collapse's does, where prepare's own words do not.
PreparedModel prepare_in_fit(const Model& model, const PrepareOptions& options, double reg_covar) {
  try {
    return prepare(model, options);
  } catch (const NumericalError& e) {
    const std::string what = e.what();
    if (what.find("reg_covar") != std::string::npos) throw;
    throw NumericalError(what +
                         "; rows that coincide (duplicates) or data in a subspace make it so: "
                         "increase reg_covar" +
                         (reg_covar == 0 ? " from 0" : ""));
  }
}

// A float32 E-step holds the precisions in float: an entry beyond FLT_MAX would be inf there,
// and the log-likelihood NaN, reported as if the data held extreme values. The largest entry of
// U U^T is on its diagonal (the sum of squares of a row of U).
void check_float_precisions(const PreparedModel& p, double reg_covar) {
  if (p.family != Family::kGaussian) return;
  const std::size_t d = static_cast<std::size_t>(p.d);
  const bool triangular = p.covariance == Covariance::kFull || p.covariance == Covariance::kTied;
  const std::size_t per = triangular ? d * d : p.covariance == Covariance::kDiag ? d : 1;
  for (std::size_t i = 0; i < p.prec_chol.size(); i += per) {
    double largest = 0;
    for (std::size_t row = 0; row < (triangular ? d : per); ++row) {
      double square = 0;
      if (triangular) {
        for (std::size_t j = row; j < d; ++j)
          square += p.prec_chol[i + row * d + j] * p.prec_chol[i + row * d + j];
      } else {
        square = p.prec_chol[i + row] * p.prec_chol[i + row];
      }
      largest = std::max(largest, square);
    }
    if (largest > FLT_MAX) {
      const std::string which = p.covariance == Covariance::kTied
                                    ? std::string("the tied covariance")
                                    : "the covariance of component " + std::to_string(i / per);
      throw NumericalError(which + " is too small for float32 data (an entry of its inverse is " +
                           format_number(largest) +
                           ", beyond float32's range): use float64 data, rescale the data, or "
                           "increase reg_covar" +
                           (reg_covar == 0 ? " from 0" : ""));
    }
  }
}

// The engines flush subnormal numbers to zero (fp_environment.hpp): statistics of a component
// whose variances come within 2^mantissa of the smallest normal number lose the products of
// all but its most probable rows, silently (data scaled by 1e-152 fitted 2e-6 off, by 1e-154
// 5 % off or NaN; float32 data by 1e-19, 10 % off). Only a reg_covar below that bound lets a
// variance get there: a component collapsing onto coinciding rows (restarted as a singular one
// is), or the data's own scale, when the start or the other components are there too.
double subnormal_bound(DType dtype) {
  return dtype == DType::kFloat64 ? std::ldexp(DBL_MIN, 53) : std::ldexp(double{FLT_MIN}, 24);
}

// The smallest variance of one component's covariance block (full, tied: its diagonal).
double smallest_variance(const double* block, Covariance covariance, std::size_t d) {
  if (covariance == Covariance::kSpherical) return block[0];
  double smallest = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < d; ++j) {
    smallest = std::min(smallest, covariance == Covariance::kDiag ? block[j] : block[j * d + j]);
  }
  return smallest;
}

bool near_subnormals(double variance, DType dtype) {
  return variance > 0 && variance < subnormal_bound(dtype);
}

[[noreturn]] void throw_near_subnormals(const std::string& which, double variance, DType dtype,
                                        double reg_covar) {
  const bool is_double = dtype == DType::kFloat64;
  throw NumericalError(
      which + " has a variance of " +
      (variance == 0 ? std::string("0 about means so small that the squares of its rows' "
                                   "deviations (unless the rows coincide), as its statistics, fall")
                     : format_number(variance) + ", so small that its statistics fall") +
      " among the numbers below " + format_number(is_double ? DBL_MIN : FLT_MIN) +
      " that the engine flushes to zero (" + (is_double ? "double" : "single") +
      " precision): rescale the data (multiply them by a power of two, which is exact)" +
      (is_double ? "" : ", use float64 data,") + " or increase reg_covar" +
      (reg_covar == 0 ? " from 0" : ""));
}

// The largest magnitude of a mean of the components whose covariance block is `c` (tied: all).
double largest_mean(const Model& m, int c) {
  const bool tied = m.covariance == Covariance::kTied;
  const std::size_t d = static_cast<std::size_t>(m.n_features);
  double largest = 0;
  for (int k = tied ? 0 : c; k < (tied ? m.n_components : c + 1); ++k) {
    for (std::size_t j = 0; j < d; ++j) largest = std::max(largest, std::abs(m.means[k * d + j]));
  }
  return largest;
}

// The start's covariances: near the subnormals only where the data are (a k-means start is the
// data's own clusters; a component no row chose has the identity). With `flushed`, the variances
// of 0 about means so small that the rows' deviations may square below DBL_MIN, checked before
// the start is factored
// (which fails for them): the data's scale too, not rows that coincide, the start's sums of
// squares having been flushed to zero (data scaled by 1e-155 were told to raise reg_covar);
// without, the variances above 0, after the float32 check of the factors, whose words come
// first where both apply.
void check_start_above_subnormals(const Model& m, DType dtype, double reg_covar, bool flushed) {
  if (m.family != Family::kGaussian || reg_covar >= subnormal_bound(dtype)) return;
  const std::size_t per = m.covariance_block_size();
  const int blocks = m.covariance == Covariance::kTied ? 1 : m.n_components;
  for (int c = 0; c < blocks; ++c) {
    const double v = smallest_variance(m.covariances.data() + c * per, m.covariance,
                                       static_cast<std::size_t>(m.n_features));
    const double mean = largest_mean(m, c);
    // The start is computed in double, where squares below DBL_MIN are flushed: distinct rows
    // about a mean m may differ by as little as eps m, so any may flush under
    // sqrt(DBL_MIN) / eps (rows of 1e-150 + 1e-160 noise were blamed on coinciding rows).
    const bool below = flushed ? v == 0 && mean > 0 && mean < std::sqrt(DBL_MIN) / DBL_EPSILON
                               : near_subnormals(v, dtype);
    if (below) {
      throw_near_subnormals(m.covariance == Covariance::kTied
                                ? std::string("the tied covariance")
                                : "the starting covariance of component " + std::to_string(c),
                            v, dtype, reg_covar);
    }
  }
}

}  // namespace

EmRun::EmRun(std::int64_t n_rows, DType dtype, const FitOptions& options, int run_index,
             std::mt19937_64 rng, Model initial)
    : n_rows_(n_rows),
      dtype_(dtype),
      options_(options),
      run_(run_index),
      rng_(std::move(rng)),
      model_(std::move(initial)) {
  mstep_.reg_covar = options_.reg_covar;
  mstep_.prob_epsilon = options_.prob_epsilon;
  mstep_.fixed_weights = options_.fixed_weights;
  report_.best_init = run_index;
}

PrepareOptions EmRun::prepare_options() const {
  PrepareOptions o;
  o.prob_epsilon = options_.prob_epsilon;
  o.threads = options_.engine.n_threads;
  return o;
}

const PreparedModel& EmRun::prepare_next() {
  detail::poll_interrupt();
  if (iteration_ == 0) check_start_above_subnormals(model_, dtype_, options_.reg_covar, true);
  if (next_prepared_) {
    prepared_ = std::move(*next_prepared_);
    next_prepared_.reset();
  } else {
    prepared_ = prepare_in_fit(model_, prepare_options(), options_.reg_covar);
  }
  if (dtype_ == DType::kFloat32) check_float_precisions(prepared_, options_.reg_covar);
  if (iteration_ == 0) check_start_above_subnormals(model_, dtype_, options_.reg_covar, false);
  prepared_.entropy = want_entropy_;
  return prepared_;
}

void EmRun::advance(Engine& engine, const Statistics& stats, Clock::time_point start) {
  const double mean = record_iteration(stats, start);
  if (report_.converged || iteration_ == options_.max_iter) {
    note_kept_collapsing();
    report_.iteration_seconds.push_back(seconds_since(start));
    done_ = true;
    return;
  }
  previous_mean_ = mean;
  const int reseeds_before = reseeds_;
  std::vector<int> empty;
  Model next = m_step(engine, stats, &empty);
  if (!empty.empty()) {
    // An empty component's own covariance says nothing of the data's scale (at the start, the
    // identity that initialisation gives a component no row chose): beside components of
    // variance reg_covar (constant data, K >= 3) one restarted from it took a 10^-12 share and
    // emptied again, every step, until the fit failed.
    const std::vector<double> pooled = pooled_covariance(next, empty);
    for (int c : empty) reseed(engine, next, c, "was empty", pooled.empty() ? nullptr : &pooled);
  }
  const std::vector<int> singular = collapsed_in_step(next, empty);
  if (!singular.empty()) restart_collapsed(engine, next, singular, empty);
  model_ = std::move(next);
  reseeded_last_step_ = reseeds_ > reseeds_before;
  ++iteration_;
  // This iteration's time: its E-step pass and the M-step after it.
  report_.iteration_seconds.push_back(seconds_since(start));
}

// The iteration's log-likelihood (refused where not finite), its report and hook, and whether it
// converged; returns its mean per unit of weight.
double EmRun::record_iteration(const Statistics& stats, Clock::time_point start) {
  const double log_likelihood = stats.log_likelihood();
  const double mean = log_likelihood / stats.weight_sum();
  if (!std::isfinite(log_likelihood)) {
    // Weights near double's limit (3e305 each) overflow the weighted sum, whatever the data.
    const bool huge_weights = stats.weight_sum() > std::ldexp(1.0, 1000);
    // At iteration 0 a given start is as likely a cause: means of 1e150 with variances of
    // 1e-300 put every row at -inf, and the data were blamed.
    const bool given_start = iteration_ == 0 && options_.init_model.has_value();
    throw NumericalError(
        "the log-likelihood is " + format_number(log_likelihood) + " at iteration " +
        std::to_string(iteration_) + " (check the data" +
        (given_start ? " and the initial model" : "") + " for extreme values" +
        (huge_weights ? "; or the sample weights, summing to " + format_number(stats.weight_sum()) +
                            ", overflow it: only their ratios matter, scale them down)"
                      : ")"));
  }
  report_.history.push_back(log_likelihood);
  const double change =
      iteration_ == 0 ? std::numeric_limits<double>::quiet_NaN() : mean - previous_mean_;
  if (options_.on_iteration) {
    IterationInfo info;
    info.init_run = run_;
    info.iteration = iteration_;
    info.log_likelihood = log_likelihood;
    info.mean_log_likelihood = mean;
    info.change = change;
    info.seconds = seconds_since(start);
    options_.on_iteration(info);
  }
  report_.model = model_;
  entropy_ = stats.entropy();
  report_.log_likelihood = log_likelihood;
  report_.mean_log_likelihood = mean;
  report_.n_iter = iteration_;
  // The returned parameters are the ones whose log-likelihood was just measured: convergence is
  // tested before another M-step.
  if (iteration_ > 0 && !reseeded_last_step_ && std::abs(change) < options_.tol) {
    report_.converged = true;
  }
  return mean;
}

// At the run's end, the warning (and kept_collapsing()) of a run that kept re-seeding.
void EmRun::note_kept_collapsing() {
  // Re-seeding to the end (in two or more of the last max(2, max_iter / 10) iterations): EM
  // had no steps of its own to converge with. One re-seed there is a fit that ran out of
  // iterations, not one that cannot converge. (A fit of one iteration, or of tol 0, is not
  // asked to converge.)
  const int recent = std::max(2, options_.max_iter / 10);
  const auto recent_reseeds =
      std::count_if(reseed_iterations_.begin(), reseed_iterations_.end(),
                    [&](int reseeded) { return iteration_ - reseeded < recent; });
  if (!report_.converged && options_.tol > 0 && options_.max_iter > 1 && recent_reseeds >= 2) {
    std::ostringstream msg;
    msg.imbue(std::locale::classic());  // not a host's global locale: 1.234 for 1234
    msg << "components kept collapsing to the end (" << reseeds_ << " re-seeds, the last at "
        << "iteration " << reseed_iterations_.back() << "), so the fit could not converge";
    if (options_.family != Family::kGaussian) {
      msg << "; use fewer components";
    } else if (options_.reg_covar == 0) {
      msg << ": with reg_covar 0 a component's likelihood grows without bound on one row, or "
             "on rows that coincide, and EM kept finding such rows; increase reg_covar from 0 "
             "or use fewer components";
    } else {
      msg << "; use fewer components or a larger reg_covar";
    }
    kept_collapsing_ = msg.str();
    if (options_.n_init > 1) msg << " (restart " << run_ << ")";
    report_.warnings.push_back(msg.str());
  }
}

// The M-step from the statistics, taken again from the same responsibilities centred on the new
// means where the sums about the old ones lost a covariance's digits; `empty`: the components
// left without weight.
Model EmRun::m_step(Engine& engine, const Statistics& stats, std::vector<int>* empty) {
  Model next = maximize(model_, prepared_.layout, stats.centres().data(), stats.values().data(),
                        mstep_, empty);
  if (scatter_lost_digits(next, prepared_.layout, stats.values().data())) {
    // The same responsibilities (this model's), the statistics centred on the new means.
    PreparedModel recentred = prepared_;
    recentred.entropy = false;
    recentred.centres = next.means;
    std::vector<double> again(recentred.layout.size());
    engine.accumulate(recentred, again.data());
    next =
        maximize(model_, recentred.layout, recentred.centres.data(), again.data(), mstep_, empty);
  }
  return next;
}

// The components of the step's model that collapsed (a singular covariance, or one at the
// subnormals' scale), the empty ones (re-seeded already) left out; a full model's factors, which
// the check computes, are kept for the next E-step (next_prepared_). Throws where a tied
// covariance, or every component at once, reached the subnormals' scale: that is the data's
// scale, not a collapse.
std::vector<int> EmRun::collapsed_in_step(const Model& next, const std::vector<int>& empty) {
  std::vector<int> singular;
  if (next.family == Family::kGaussian && next.covariance == Covariance::kFull) {
    // The check's factorisations are the next E-step's.
    PrepareOptions o = prepare_options();
    o.singular = &singular;
    o.reg_covar = options_.reg_covar;
    next_prepared_ = prepare_in_fit(next, o, options_.reg_covar);
  } else {
    singular = singular_components(next, options_.reg_covar);
  }
  singular = with_unresolved(next, options_.reg_covar, std::move(singular));
  // Just re-seeded: a row's mean and the previous covariance, judged in the next step.
  singular.erase(std::remove_if(singular.begin(), singular.end(),
                                [&empty](int c) {
                                  return std::find(empty.begin(), empty.end(), c) != empty.end();
                                }),
                 singular.end());
  if (next.family == Family::kGaussian && options_.reg_covar < subnormal_bound(dtype_)) {
    const std::size_t d = static_cast<std::size_t>(next.n_features);
    const std::size_t per = next.covariance_block_size();
    if (next.covariance == Covariance::kTied) {
      const double v = smallest_variance(next.covariances.data(), next.covariance, d);
      if (near_subnormals(v, dtype_)) {
        throw_near_subnormals("the tied covariance", v, dtype_, options_.reg_covar);
      }
    } else {
      // Every component there at once is the data's scale, not a collapse: with none left to
      // restart from, each restarted from its own covariance, every step, with a warning that
      // it was singular (data of variance 6e-300 from a start of 1e-3, reg_covar 0).
      bool every_one_near = true;
      double smallest = std::numeric_limits<double>::infinity();
      for (int c = 0; c < next.n_components; ++c) {
        const double v = smallest_variance(next.covariances.data() + c * per, next.covariance, d);
        const bool is_empty = std::find(empty.begin(), empty.end(), c) != empty.end();
        const bool listed =
            is_empty || std::find(singular.begin(), singular.end(), c) != singular.end();
        if (near_subnormals(v, dtype_)) {
          smallest = std::min(smallest, v);
          if (!listed) singular.push_back(c);  // collapsing: restarted from the others', below
        } else if (!is_empty) {
          every_one_near = false;
        }
      }
      if (every_one_near && std::isfinite(smallest)) {
        throw_near_subnormals("the covariance of every component", smallest, dtype_,
                              options_.reg_covar);
      }
    }
  }
  return singular;
}

// Re-seeds the collapsed components on random rows, each from the pooled covariance of the
// others; throws where nothing is left to restart from, or the data lie in a subspace.
void EmRun::restart_collapsed(Engine& engine, Model& next, const std::vector<int>& singular,
                              const std::vector<int>& empty) {
  next_prepared_.reset();
  std::vector<int> collapsed_or_empty = singular;
  collapsed_or_empty.insert(collapsed_or_empty.end(), empty.begin(), empty.end());
  const std::vector<double> pooled = pooled_covariance(next, collapsed_or_empty);
  if (pooled.empty()) {
    // No component is left to take a covariance from, and the collapsed one restarts from
    // its previous covariance; when that one is singular too, it has nothing to restart from
    // (one component over rows in a subspace, say).
    const std::vector<int> before = collapsed_components(model_, options_.reg_covar);
    for (int c : singular) {
      if (std::find(before.begin(), before.end(), c) != before.end()) {
        throw NumericalError("component " + std::to_string(c) +
                             ": its covariance is singular, as was the one it would restart "
                             "from; the data may lie in a subspace (a column that is a "
                             "combination of others, or coinciding rows): increase reg_covar");
      }
    }
  } else {
    const double v = smallest_variance(pooled.data(), next.covariance,
                                       static_cast<std::size_t>(next.n_features));
    if (near_subnormals(v, dtype_)) {
      // The components that did not collapse are as small: the data's scale.
      throw_near_subnormals("the covariance of the components that did not collapse", v, dtype_,
                            options_.reg_covar);
    }
  }
  if (!subspace_checked_) {
    subspace_checked_ = true;
    if (data_in_subspace(engine)) {
      throw NumericalError(
          "component " + std::to_string(singular.front()) +
          ": its covariance is singular, and so is the covariance of all rows together: the "
          "data lie in a subspace (a constant column, or a column that is a combination of "
          "others), where every component collapses wherever it restarts: increase reg_covar");
    }
  }
  for (int c : singular) {
    reseed(engine, next, c, "collapsed (singular covariance)", pooled.empty() ? nullptr : &pooled);
  }
}

// One component over every row: its covariance, with reg_covar, is singular when the data lie
// in a subspace. A start given by the caller (an init model, means and precisions) is not
// checked as initialize()'s own start is (repair_singular_start), so this is asked at the first
// collapse; one pass, once a run.
bool EmRun::data_in_subspace(Engine& engine) {
  if (model_.family != Family::kGaussian) return false;
  const int d = model_.n_features;
  Model all;
  all.family = model_.family;
  all.covariance = model_.covariance;
  all.n_components = 1;
  all.n_features = d;
  all.weights = {1.0};
  // The current model's mean of means is among the data: the statistics' centre.
  all.means.assign(static_cast<std::size_t>(d), 0.0);
  for (int c = 0; c < model_.n_components; ++c) {
    for (int j = 0; j < d; ++j) {
      all.means[j] += model_.weights[c] * model_.means[static_cast<std::size_t>(c) * d + j];
    }
  }
  all.covariances.assign(all.covariance_size(), 0.0);
  if (all.covariance == Covariance::kFull || all.covariance == Covariance::kTied) {
    for (int j = 0; j < d; ++j) all.covariances[static_cast<std::size_t>(j) * d + j] = 1.0;
  } else {
    std::fill(all.covariances.begin(), all.covariances.end(), 1.0);
  }
  const PreparedModel prepared = prepare(all, prepare_options());
  std::vector<double> values(prepared.layout.size());
  engine.accumulate(prepared, values.data());
  std::vector<int> empty;
  const Model overall = maximize(all, prepared, values.data(), mstep_, &empty);
  if (!empty.empty()) return false;
  try {
    return !collapsed_components(overall, options_.reg_covar).empty();
  } catch (const NumericalError&) {
    return true;  // collapsed_components' word for a singular tied covariance
  }
}

// Moves component c onto a random row, with `restart_covariance` (one component's block) or,
// without one, its previous (valid) covariance.
void EmRun::reseed(Engine& engine, Model& next, int c, const char* why,
                   const std::vector<double>* restart_covariance) {
  const Model& previous = model_;
  std::uniform_int_distribution<std::int64_t> pick(0, n_rows_ - 1);
  const std::int64_t row = pick(rng_);
  const std::size_t d = static_cast<std::size_t>(next.n_features);
  std::vector<double> x(d);
  engine.gather_rows(&row, 1, x.data());
  if (next.family == Family::kGaussian) {
    std::copy(x.begin(), x.end(), next.means.begin() + c * d);
    if (next.covariance != Covariance::kTied) {
      const std::size_t per = next.covariance_block_size();
      const auto from = restart_covariance != nullptr ? restart_covariance->begin()
                                                      : previous.covariances.begin() + c * per;
      std::copy(from, from + per, next.covariances.begin() + c * per);
    }
  } else {
    for (std::size_t j = 0; j < d; ++j) {
      next.probabilities[c * d + j] =
          std::clamp(x[j] / next.trials, options_.prob_epsilon, 1.0 - options_.prob_epsilon);
    }
  }
  if (!options_.fixed_weights) {
    // One row's share, then renormalised.
    double total = 0;
    next.weights[c] = 1.0 / static_cast<double>(n_rows_);
    for (double w : next.weights) total += w;
    for (double& w : next.weights) w /= total;
  }
  std::ostringstream msg;
  msg.imbue(std::locale::classic());  // not a host's global locale: 1.234 for 1234
  msg << "iteration " << iteration_ + 1 << ": component " << c << " " << why
      << "; re-seeded at row " << row + 1;
  if (options_.n_init > 1) msg << " (restart " << run_ << ")";
  ++reseeds_;
  if (reseed_iterations_.empty() || reseed_iterations_.back() != iteration_ + 1) {
    reseed_iterations_.push_back(iteration_ + 1);
  }
  if (reseeds_ <= kMaxReseedWarnings) report_.warnings.push_back(msg.str());
  if (reseeds_ > kMaxReseeds) {
    throw NumericalError("components kept collapsing (" + std::to_string(reseeds_) +
                         " re-seeds); try fewer components or a larger reg_covar");
  }
}

int run_together(Engine& engine, const std::vector<EmRun*>& runs, bool isolate_failures) {
  // Runs `step` on `run`; with isolate_failures, a NumericalError fails that run only.
  const auto guarded = [isolate_failures](EmRun& run, const auto& step) {
    if (!isolate_failures) return step();
    try {
      step();
    } catch (const NumericalError& e) {
      run.fail(e.what());
    }
  };
  int passes = 0;
  std::vector<EmRun*> active;
  std::vector<const PreparedModel*> models;
  std::vector<Statistics> stats;
  std::vector<double*> values;
  for (;;) {
    active.clear();
    for (EmRun* run : runs) {
      if (!run->done()) active.push_back(run);
    }
    if (active.empty()) return passes;
    const auto start = Clock::now();
    models.clear();
    stats.clear();
    values.clear();
    std::vector<EmRun*> prepared;
    for (EmRun* run : active) {
      guarded(*run, [&] { run->prepare_next(); });
      if (run->failed()) continue;
      prepared.push_back(run);
      models.push_back(&run->prepared());
      stats.emplace_back(run->model());
    }
    if (prepared.empty()) continue;
    ++passes;
    for (Statistics& s : stats) values.push_back(s.values().data());
    engine.accumulate_many(models, values);
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      guarded(*prepared[i], [&] { prepared[i]->advance(engine, stats[i], start); });
    }
  }
}

namespace {

// Mixtures of one discrete feature whose parameters the data cannot pin down; `model` is the
// fitted one (at an EM fixed point its mean equals the sample mean).
// A given initial model as the E-step reads it: Bernoulli and binomial probabilities in
// [prob_epsilon, 1 - prob_epsilon], as every M-step leaves them. Without this a fit of no
// iterations returned probabilities of 0 and 1 beside a log-likelihood computed for the clamped
// ones, and its score() differed.
Model clamped_probabilities(Model model, const FitOptions& options) {
  for (double& p : model.probabilities) {
    p = std::clamp(p, options.prob_epsilon, 1.0 - options.prob_epsilon);
  }
  return model;
}

std::string identifiability_warning(const FitOptions& options, const Model& model) {
  if (options.family == Family::kGaussian || model.n_components < 2) return {};
  if (model.n_features > 1) {
    // More free parameters than the distribution of x has (one per possible row, less one):
    // a necessary condition for identifiability, and the ridge of the three-coin model in
    // more features (K = 2 Bernoulli components on 2 features: 5 parameters, 3 cell
    // probabilities).
    const double parameters = static_cast<double>(model.n_parameters());
    const double cells = std::pow(model.trials + 1.0, model.n_features) - 1;
    if (parameters <= cells) return {};
    return std::string(options.family == Family::kBernoulli ? "a Bernoulli" : "a binomial") +
           " mixture of " + std::to_string(model.n_components) + " components on " +
           std::to_string(model.n_features) + " features has " + format_number(parameters) +
           " free parameters, but the distribution of its rows only " + format_number(cells) +
           " (one per possible row, less one): it is not identifiable, and the fitted "
           "parameters depend on the initial values";
  }
  double mean_of_x = 0;
  for (int c = 0; c < model.n_components; ++c) {
    mean_of_x += model.weights[c] * model.probabilities[c] * model.trials;
  }
  if (options.family == Family::kBernoulli) {
    return "a Bernoulli mixture of one feature is not identifiable: every set of weights and "
           "probabilities with sum_k w_k p_k = " +
           format_number(mean_of_x) +
           " (the sample mean) has the same likelihood, so the fitted parameters depend on the "
           "initial values (the three-coin model's ridge of maxima)";
  }
  if (options.family == Family::kBinomial && options.trials < 2 * options.n_components - 1) {
    return "a binomial mixture of " + std::to_string(options.n_components) +
           " components on one feature is identifiable only with trials >= " +
           std::to_string(2 * options.n_components - 1) + " (here " +
           std::to_string(options.trials) + "): the fitted parameters depend on the initial values";
  }
  return {};
}

}  // namespace

void finish_report(FitReport& report, const Engine& engine, DType dtype, const FitOptions& options,
                   const std::vector<std::string>& notes) {
  report.engine = engine.name();
  report.precision = to_string(dtype);
  // The initialisation's notes come before what the iterations found.
  report.warnings.insert(report.warnings.begin(), notes.begin(), notes.end());
  if (!report.converged && options.tol > 0) {
    report.warnings.push_back("did not converge in " + std::to_string(options.max_iter) +
                              (options.max_iter == 1 ? " iteration" : " iterations") + " (tol " +
                              format_number(options.tol) +
                              "); try a larger max_iter or tol, or another initialisation");
  }
  const std::string warning = identifiability_warning(options, report.model);
  if (!warning.empty()) report.warnings.push_back(warning);
}

FitReport run_em(Engine& engine, std::int64_t n_rows, int n_features, DType dtype,
                 const WeightGather& gather_weights, const FitOptions& options) {
  const auto start = Clock::now();
  FitReport best;
  bool have_best = false;
  double init_seconds = 0;
  std::vector<std::string> notes;
  // Every restart is initialised first, then all take their EM iterations together, sharing
  // each pass over the data (Engine::accumulate_many); each run's arithmetic is what it would be
  // alone.
  std::vector<EmRun> runs;
  runs.reserve(static_cast<std::size_t>(options.n_init));
  for (int run = 0; run < options.n_init; ++run) {
    std::mt19937_64 rng = run_rng(options.seed, run);
    const auto init_start = Clock::now();
    Model initial = options.init_model ? clamped_probabilities(*options.init_model, options)
                                       : initialize(engine, n_rows, n_features, gather_weights,
                                                    options, rng, run == 0 ? &notes : nullptr);
    init_seconds += seconds_since(init_start);
    runs.emplace_back(n_rows, dtype, options, run, std::move(rng), std::move(initial));
  }
  std::vector<EmRun*> pointers;
  for (EmRun& run : runs) pointers.push_back(&run);
  run_together(engine, pointers);
  // A restart whose components kept collapsing has a log-likelihood that grows on points
  // without bound: it is chosen only when every restart did, and then the fit fails, as
  // scikit-learn's does and as select() fails such a candidate (its model, with covariances of
  // 1e-23 and a log-likelihood of -2e21, was returned and written with a warning).
  bool best_kept_collapsing = false;
  for (EmRun& run : runs) {
    const bool collapsing = !run.kept_collapsing().empty();
    if (!have_best || (best_kept_collapsing && !collapsing) ||
        (collapsing == best_kept_collapsing &&
         better_restart(run.report().log_likelihood, best.log_likelihood))) {
      best = std::move(run.report());
      best_kept_collapsing = collapsing;
      have_best = true;
    }
  }

  if (best_kept_collapsing) {
    std::string why = runs.front().kept_collapsing();
    if (options.n_init > 1) {
      why =
          "all " + std::to_string(options.n_init) + " restarts kept collapsing; the first: " + why;
    }
    throw NumericalError(why);
  }
  best.init_seconds = init_seconds;
  finish_report(best, engine, dtype, options, notes);
  best.seconds = seconds_since(start);
  return best;
}

FitReport fit(const DataView& x, const FitOptions& options, const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  const auto start = Clock::now();
  validate_fit_arguments(x, options, sample_weight);
  std::unique_ptr<Engine> engine = make_engine(x, sample_weight, options.engine);
  const double setup_seconds = seconds_since(start);
  const WeightGather gather_weights = [sample_weight](const std::int64_t* idx, std::int64_t count,
                                                      double* out) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = sample_weight ? sample_weight[idx[i]] : 1.0;
  };
  FitReport report =
      run_em(*engine, x.rows, static_cast<int>(x.cols), x.dtype, gather_weights, options);
  report.seconds = seconds_since(start);  // with validation and the engine's set-up
  report.setup_seconds = setup_seconds;
  return report;
}

}  // namespace emix
