// Model selection: a grid of mixtures (numbers of components x covariance types, each with its
// restarts) fitted together in lock-step passes over the data, and scored by BIC, AIC and ICL.
// A converged model drops out of the passes. Within a pass the CPU engine reads each tile once
// for every model (Engine::accumulate_many); the GPU engine still takes one read per model. The
// candidates of one K share their initialisation's sample and k-means, which do not depend on
// the covariance type.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "emix/data.hpp"
#include "emix/fit.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

class ChunkSource;

// Lower is better for all three.
//   BIC = -2 log L + p log W    AIC = -2 log L + 2 p    ICL = BIC + 2 sum_n w_n H_n
// with log L the weighted log-likelihood, p the model's free parameters, W the sum of the
// sample weights (N without weights) and H_n = -sum_k p(k | x_n) log p(k | x_n) the entropy of
// row n's responsibilities (ICL: Biernacki, Celeux & Govaert, 2000). The entropy is that of the
// returned model, taken by its last E-step with log L (Statistics::entropy), so no criterion
// costs a pass of its own.
enum class Criterion { kBic, kAic, kIcl };
const char* to_string(Criterion criterion);  // "bic", "aic", "icl"
Criterion parse_criterion(const std::string& name);

struct SelectOptions {
  std::vector<int> n_components;  // the K grid, each >= 1
  // Gaussian: the covariance types to try; Bernoulli and binomial take one entry (kFull).
  std::vector<Covariance> covariances = {Covariance::kFull};
  Criterion criterion = Criterion::kBic;
  // Everything else every candidate's fit uses (family, trials, initialisation, n_init, tol,
  // max_iter, reg_covar, seed, engine, on_iteration); its n_components, covariance and
  // init_model are ignored. Each candidate's result is bitwise that of fit() with these options
  // and the candidate's K and covariance type.
  FitOptions fit;
};

struct SelectCandidate {
  int n_components = 0;
  Covariance covariance = Covariance::kFull;
  // The best of its restarts, as fit() reports it; init_seconds is this candidate's share of
  // the initialisation it shares with the other covariance types of its K.
  FitReport fit;
  std::int64_t n_parameters = 0;
  // Its fit failed (see the SelectReport below): its criteria are infinite, its last warning
  // says why, and it is never the best. (A fit that succeeded may still have infinite criteria,
  // when -2 log L overflows on enormous sample weights.)
  bool failed = false;
  double bic = 0;
  double aic = 0;
  double icl = 0;
  double criterion(Criterion c) const {
    return c == Criterion::kBic ? bic : (c == Criterion::kAic ? aic : icl);
  }
};

// A candidate whose fit fails (a K larger than the rows, a covariance that is not positive
// definite without reg_covar, components that kept collapsing) does not end the selection: it
// is reported with infinite criteria, a log-likelihood of -inf and a warning giving the reason,
// and is never the best. When every candidate fails, select() throws: InvalidArgument when every
// K exceeds the rows, else NumericalError naming the first candidate's reason.
struct SelectReport {
  std::vector<SelectCandidate> candidates;  // covariance types in the given order, then K
  std::size_t best = 0;  // the lowest criterion (the first such candidate on ties)
  Criterion criterion = Criterion::kBic;
  std::string engine;
  double seconds = 0;  // the whole selection
  int passes = 0;      // passes over the data (E-steps of all candidates together)
};

// Fits every candidate of the grid on x (N x D; sample_weight: host, N values or null) and
// scores it. Deterministic: the same data, options and seed give bitwise the same report
// (times aside), so the chosen model does not change from run to run. Throws InvalidArgument
// for an empty grid, a K < 1, above init_max_rows or given twice, or anything fit() rejects.
SelectReport select(const DataView& x, const SelectOptions& options,
                    const double* sample_weight = nullptr);

// The same over a chunk source (emix/chunks.hpp: a memory-mapped file, say), its weights from
// the source: every pass reads each chunk once for all the candidates still running. Each
// candidate equals fit(source, ...) with its
// K and covariance type bitwise, and the in-memory selection to rounding (the chunks' sums are
// grouped differently; a slowly converging candidate carries that further, 3e-10 in a test).
SelectReport select(ChunkSource& source, const SelectOptions& options);

}  // namespace emix
