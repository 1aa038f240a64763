// Model selection (emix/select.hpp): every candidate's restarts run together on one engine, each
// pass over the data serving every run not yet converged.
#include "emix/select.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/criteria.hpp"
#include "core/em.hpp"
#include "core/engine.hpp"
#include "core/initialize.hpp"
#include "core/prepared_model.hpp"
#include "core/select_on.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

const char* to_string(Criterion criterion) {
  switch (criterion) {
    case Criterion::kBic:
      return "bic";
    case Criterion::kAic:
      return "aic";
    case Criterion::kIcl:
      return "icl";
  }
  return "?";
}

Criterion parse_criterion(const std::string& name) {
  if (name == "bic") return Criterion::kBic;
  if (name == "aic") return Criterion::kAic;
  if (name == "icl") return Criterion::kIcl;
  throw InvalidArgument("criterion \"" + name + "\": expected bic, aic or icl");
}

namespace {

// The last rows (or weights) gathered, for the next caller asking for the same ones.
struct LastGather {
  std::vector<std::int64_t> idx;
  std::vector<double> values;
  // Copies the remembered values to out when idx[0..count) is what was gathered last; else
  // gathers them (values_per_row each) with `gather` and remembers them.
  template <typename Gather>
  void get(const std::int64_t* wanted, std::int64_t count, std::size_t values_per_row, double* out,
           const Gather& gather) {
    const std::size_t n = static_cast<std::size_t>(count);
    if (idx.size() != n || !std::equal(wanted, wanted + count, idx.begin())) {
      idx.assign(wanted, wanted + count);
      values.resize(n * values_per_row);
      gather(wanted, count, values.data());
    }
    std::copy(values.begin(), values.end(), out);
  }
};

// The engine with its last gather of rows remembered. Every K's initialisation with the same
// seed and restart draws the same sample, and over a chunk source a gather reads every chunk
// that holds a sampled row: on a 32 GB file, 23 s for each K.
class RememberedGather final : public Engine {
 public:
  RememberedGather(Engine& inner, int d) : inner_(inner), d_(static_cast<std::size_t>(d)) {}
  std::string name() const override { return inner_.name(); }
  void accumulate(const PreparedModel& model, double* stats) override {
    inner_.accumulate(model, stats);
  }
  void accumulate_many(const std::vector<const PreparedModel*>& models,
                       const std::vector<double*>& stats) override {
    inner_.accumulate_many(models, stats);
  }
  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    inner_.evaluate(model, log_prob, resp, labels);
  }
  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override {
    last_.get(idx, count, d_, out, [this](const std::int64_t* i, std::int64_t c, double* o) {
      inner_.gather_rows(i, c, o);
    });
  }

 private:
  Engine& inner_;
  std::size_t d_;
  LastGather last_;
};

}  // namespace

std::vector<FitOptions> candidate_options(const SelectOptions& options) {
  if (options.n_components.empty()) throw InvalidArgument("select: the K grid is empty");
  if (to_string(options.criterion)[0] == '?') {
    throw InvalidArgument("select: criterion is " +
                          std::to_string(static_cast<int>(options.criterion)) +
                          ", not one of bic, aic, icl");
  }
  const std::vector<int>& ks = options.n_components;
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const std::string which =
        "select: n_components[" + std::to_string(i) + "] is " + std::to_string(ks[i]);
    if (ks[i] < 1) throw InvalidArgument(which + ", must be at least 1");
    if (ks[i] > options.fit.init_max_rows) {
      throw InvalidArgument(which + ", more than init_max_rows (" +
                            std::to_string(options.fit.init_max_rows) +
                            "): the initialisation draws the K starting points from a sample of "
                            "at most that many rows");
    }
    const auto first = std::find(ks.begin(), ks.end(), ks[i]) - ks.begin();
    if (static_cast<std::size_t>(first) != i) {
      throw InvalidArgument(which + ", as n_components[" + std::to_string(first) +
                            "] is: each K once");
    }
  }
  std::vector<Covariance> covariances = options.covariances;
  if (options.fit.family != Family::kGaussian) covariances = {Covariance::kFull};
  if (covariances.empty()) throw InvalidArgument("select: no covariance type to try");
  for (std::size_t i = 0; i < covariances.size(); ++i) {
    const auto first =
        std::find(covariances.begin(), covariances.end(), covariances[i]) - covariances.begin();
    if (static_cast<std::size_t>(first) != i) {
      throw InvalidArgument("select: covariances[" + std::to_string(i) + "] is " +
                            to_string(covariances[i]) + ", as covariances[" +
                            std::to_string(first) + "] is: each type once");
    }
  }
  std::vector<FitOptions> grid;
  for (Covariance covariance : covariances) {
    for (int k : options.n_components) {
      FitOptions o = options.fit;
      o.n_components = k;
      o.covariance = covariance;
      o.init_model.reset();
      grid.push_back(std::move(o));
    }
  }
  return grid;
}

SelectReport select(const DataView& x, const SelectOptions& options, const double* sample_weight) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  const auto start = Clock::now();
  // The data and weights once; each candidate's options in select_on.
  const std::vector<FitOptions> grid = candidate_options(options);
  // With the grid's smallest K: a K larger than the data fails its candidates alone (select_on).
  FitOptions checks = grid.front();
  for (const FitOptions& o : grid)
    checks.n_components = std::min(checks.n_components, o.n_components);
  validate_fit_arguments(x, checks, sample_weight);
  std::unique_ptr<Engine> engine = make_engine(x, sample_weight, options.fit.engine);
  const WeightGather gather_weights = [sample_weight](const std::int64_t* idx, std::int64_t count,
                                                      double* out) {
    for (std::int64_t i = 0; i < count; ++i) out[i] = sample_weight ? sample_weight[idx[i]] : 1.0;
  };
  const auto weight_total = [&x, sample_weight] {
    double total = 0;
    for (std::int64_t n = 0; n < x.rows; ++n) total += sample_weight ? sample_weight[n] : 1.0;
    return total;
  };
  SelectReport report = select_on(*engine, x.rows, static_cast<int>(x.cols), x.dtype,
                                  gather_weights, weight_total, options);
  report.seconds = seconds_since(start);
  return report;
}

SelectReport select_on(Engine& engine, std::int64_t rows, int d, DType dtype,
                       const WeightGather& gather_weights,
                       const std::function<double()>& weight_total, const SelectOptions& options) {
  struct Grid {
    int k;
    Covariance covariance;
    FitOptions options;
  };
  std::vector<Grid> grid;
  int smallest_k = std::numeric_limits<int>::max();
  for (FitOptions& o : candidate_options(options)) {
    validate_fit_options(o, d);
    smallest_k = std::min(smallest_k, o.n_components);
    grid.push_back({o.n_components, o.covariance, std::move(o)});
  }
  // A K larger than the data fails its candidates alone (as a grid search scores an impossible
  // candidate as failed); a grid of such K only is an error.
  const auto too_large = [rows](int k) {
    return k > rows
               ? "K = " + std::to_string(k) + " is more than the " + std::to_string(rows) + " rows"
               : std::string();
  };
  if (smallest_k > rows) throw InvalidArgument("select: " + too_large(smallest_k));
  {
    std::vector<FitOptions> all;
    for (const Grid& g : grid) {
      if (g.k <= rows) all.push_back(g.options);
    }
    engine.check_everywhere([&] { check_select_memory(rows, d, all); });
  }

  // The same sample's rows and weights are gathered once for every K.
  RememberedGather remembered(engine, d);
  LastGather last_weights;
  const WeightGather remembered_weights = [&](const std::int64_t* idx, std::int64_t count,
                                              double* out) {
    last_weights.get(idx, count, 1, out, gather_weights);
  };
  // Every run of every candidate, initialised as fit() would initialise it. The candidates of
  // one K share the sample and its k-means (initialize_each), which do not depend on the
  // covariance type; each is bitwise its own fit's start, and its share of the time is counted.
  std::vector<std::vector<EmRun>> runs(grid.size());
  std::vector<std::vector<std::string>> notes(grid.size());
  std::vector<double> init_seconds(grid.size(), 0.0);
  std::vector<std::string> init_failures(grid.size());
  for (std::size_t i = 0; i < grid.size(); ++i) {
    runs[i].reserve(static_cast<std::size_t>(grid[i].options.n_init));
  }
  // The candidates of each K; restart by restart, so that each restart's sample (the same for
  // every K) is gathered once.
  struct SameK {
    std::vector<std::size_t> candidates;
    std::vector<Covariance> covariances;
  };
  std::vector<SameK> groups;
  std::vector<bool> grouped(grid.size(), false);
  for (std::size_t first = 0; first < grid.size(); ++first) {
    if (grouped[first]) continue;
    SameK group;
    for (std::size_t j = first; j < grid.size(); ++j) {
      if (grid[j].k != grid[first].k) continue;
      group.candidates.push_back(j);
      group.covariances.push_back(grid[j].covariance);
      grouped[j] = true;
    }
    groups.push_back(std::move(group));
  }
  for (int run = 0; run < options.fit.n_init; ++run) {
    for (const SameK& group : groups) {
      const FitOptions& o = grid[group.candidates.front()].options;
      if (!too_large(o.n_components).empty()) {
        for (std::size_t i : group.candidates) init_failures[i] = too_large(o.n_components);
        continue;
      }
      std::mt19937_64 rng = run_rng(o.seed, run);
      const auto init_start = Clock::now();
      std::vector<std::string> run_notes;
      std::vector<InitialModel> initial;
      std::string shared_failure;
      try {
        initial = initialize_each(remembered, rows, d, remembered_weights, o, group.covariances,
                                  rng, run == 0 ? &run_notes : nullptr);
      } catch (const NumericalError& e) {
        shared_failure = e.what();  // this restart is left out; the others go on
      } catch (const TooFewRows& e) {
        shared_failure = e.what();
      }
      const double share = seconds_since(init_start) / static_cast<double>(group.candidates.size());
      for (std::size_t m = 0; m < group.candidates.size(); ++m) {
        const std::size_t i = group.candidates[m];
        init_seconds[i] += share;
        if (run == 0) {
          notes[i] = run_notes;
          if (m < initial.size()) {
            notes[i].insert(notes[i].end(), initial[m].notes.begin(), initial[m].notes.end());
          }
        }
        if (!shared_failure.empty() || !initial[m].model) {
          init_failures[i] = shared_failure.empty() ? initial[m].failure : shared_failure;
          continue;
        }
        runs[i].emplace_back(rows, dtype, grid[i].options, run, rng, std::move(*initial[m].model));
      }
    }
  }
  std::vector<EmRun*> all;
  for (std::vector<EmRun>& candidate_runs : runs) {
    for (EmRun& run : candidate_runs) {
      run.want_entropy();  // for the ICL
      all.push_back(&run);
    }
  }

  SelectReport report;
  report.criterion = options.criterion;
  // A candidate the data cannot support (a singular covariance without reg_covar, components
  // that keep collapsing) fails alone: it is reported, with infinite criteria, and the others
  // are compared.
  report.passes = run_together(engine, all, /*isolate_failures=*/true);
  report.engine = engine.name();
  const double weight_sum = weight_total();

  for (std::size_t i = 0; i < grid.size(); ++i) {
    SelectCandidate c;
    c.n_components = grid[i].k;
    c.covariance = grid[i].covariance;
    bool have = false;
    double entropy = 0;
    std::string failure = init_failures[i];
    for (EmRun& run : runs[i]) {
      // A run whose components kept collapsing has an unbounded log-likelihood, which would
      // win any criterion: it is left out as a failed one is.
      if (run.failed() || !run.kept_collapsing().empty()) {
        if (failure.empty()) failure = run.failed() ? run.failure() : run.kept_collapsing();
        continue;
      }
      if (!have || better_restart(run.report().log_likelihood, c.fit.log_likelihood)) {
        c.fit = run.report();
        entropy = run.entropy();
        have = true;
      }
    }
    if (!have) {
      const double infinity = std::numeric_limits<double>::infinity();
      c.fit.engine = engine.name();
      c.fit.init_seconds = init_seconds[i];
      c.fit.seconds = init_seconds[i];
      c.fit.log_likelihood = c.fit.mean_log_likelihood = -infinity;
      Model shape;
      shape.family = grid[i].options.family;
      shape.covariance = grid[i].options.covariance;
      shape.n_components = grid[i].k;
      shape.n_features = d;
      c.n_parameters = shape.n_parameters();
      c.fit.warnings = notes[i];  // what its initialisation found may be why it failed
      c.fit.warnings.push_back("failed, and left out of the choice: " + failure);
      c.bic = c.aic = c.icl = infinity;
      c.failed = true;
      report.candidates.push_back(std::move(c));
      continue;
    }
    c.fit.init_seconds = init_seconds[i];
    finish_report(c.fit, engine, dtype, grid[i].options, notes[i]);
    double iterations = 0;
    for (double s : c.fit.iteration_seconds) iterations += s;
    c.fit.seconds = init_seconds[i] + iterations;
    c.n_parameters = c.fit.model.n_parameters();
    c.bic = bic_of(c.fit.log_likelihood, c.n_parameters, weight_sum);
    c.aic = aic_of(c.fit.log_likelihood, c.n_parameters);
    // The entropy of the responsibilities under the returned model: its last E-step took it,
    // with the log-likelihood, so the ICL costs no pass of its own.
    c.icl = c.bic + 2.0 * entropy;
    report.candidates.push_back(std::move(c));
  }
  const auto failed = [](const SelectCandidate& c) { return c.failed; };
  if (std::all_of(report.candidates.begin(), report.candidates.end(), failed)) {
    const SelectCandidate& first = report.candidates.front();
    throw NumericalError(
        "select: every candidate failed; K = " + std::to_string(first.n_components) + " " +
        to_string(first.covariance) + ": " + first.fit.warnings.back());
  }
  report.best = static_cast<std::size_t>(
      std::find_if_not(report.candidates.begin(), report.candidates.end(), failed) -
      report.candidates.begin());
  for (std::size_t i = report.best + 1; i < report.candidates.size(); ++i) {
    if (!report.candidates[i].failed &&
        report.candidates[i].criterion(options.criterion) <
            report.candidates[report.best].criterion(options.criterion)) {
      report.best = i;
    }
  }
  return report;
}

}  // namespace emix
