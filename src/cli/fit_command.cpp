// emix fit INPUT -k K ... -o MODEL.json [--labels FILE.npy] [--responsibilities FILE.npy]
// Under mpirun (cli/mpi_session.hpp) each rank reads its own rows and rank 0 writes the model
// and, gathered from every rank, the labels and responsibilities.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/mpi_session.hpp"
#include "cli/ranks.hpp"
#include "core/validate.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

#if EMIX_HAS_MPI
#include "cli/distributed_output.hpp"
#include "emix/mpi.hpp"
#endif

namespace emix::cli {

namespace {

// What only the command line decides: -k or --init-model, and the flags that cannot go with
// --init-model or with another --init (--trials against its family is checked once the family
// is known, in fit_options). Option values themselves are checked by the library
// (emix::validate) once the options are built.
void check_flags(const FitArgs& a, Init init) {
  if (!a.k_given && a.init_model.empty()) {
    throw InvalidArgument(
        "-k K is required (the number of components), unless --init-model gives the model to "
        "start from");
  }
  if (a.kmeans_iter_given && (init != Init::kKMeansPlusPlus || !a.init_model.empty())) {
    throw InvalidArgument("--kmeans-iter applies to --init kmeans++ only" +
                          std::string(a.init_model.empty() ? "" : ", not to --init-model"));
  }
  // The model given is the start: an --init beside it was ignored, and restarts all ran the
  // same fit ("best of 5 inits: #1").
  if (!a.init_model.empty() && a.init_given) {
    throw InvalidArgument("--init " + a.init +
                          " does not apply with --init-model (the model "
                          "given is the start)");
  }
  if (!a.init_model.empty() && a.n_init > 1) {
    throw InvalidArgument("--n-init " + std::to_string(a.n_init) +
                          " with --init-model: every restart would start from the same model "
                          "and end alike");
  }
}

// Reads --init-model and reconciles it with the flags: a flag given explicitly must agree with
// the model; a flag left out takes the model's value.
Model reconcile_init_model(const FitArgs& a, Family& family, Covariance& covariance, int& k,
                           int& trials) {
  Model model = io::read_model(a.init_model);
  const std::string from = " (--init-model " + a.init_model + ")";
  if (a.family_given && model.family != family) {
    throw InvalidArgument("--family " + a.family + " differs from the init model's family " +
                          to_string(model.family) + from);
  }
  if (a.covariance_given && model.family == Family::kGaussian && model.covariance != covariance) {
    throw InvalidArgument("--covariance " + a.covariance +
                          " differs from the init model's covariance " +
                          to_string(model.covariance) + from);
  }
  if (a.k_given && model.n_components != k) {
    throw InvalidArgument("-k " + std::to_string(k) + " differs from the init model's " +
                          std::to_string(model.n_components) + " components" + from);
  }
  if (a.trials_given && model.family == Family::kBinomial && model.trials != trials) {
    throw InvalidArgument("--trials " + std::to_string(trials) +
                          " differs from the init model's trials " + std::to_string(model.trials) +
                          from);
  }
  family = model.family;
  covariance = model.covariance;
  k = model.n_components;
  trials = model.family == Family::kBinomial ? model.trials : trials;
  return model;
}

std::string iterations(int n) {
  return std::to_string(n) + (n == 1 ? " iteration" : " iterations");
}

void print_summary(const FitReport& r, const FitOptions& options, std::int64_t rows, bool weighted,
                   const std::vector<std::string>& written, bool quiet) {
  if (!quiet) {
    std::string outcome;
    if (r.converged) {
      outcome =
          "converged after " + iterations(r.n_iter) + " (tol " + format("%g", options.tol) + ")";
    } else if (options.tol == 0) {
      outcome = "ran " + iterations(r.n_iter) + " (tol 0: no convergence test)";
    } else {
      outcome = "did not converge within " + iterations(r.n_iter) + " (tol " +
                format("%g", options.tol) + "); raise --max-iter or --tol";
    }
    std::fprintf(stderr, "%s\n", outcome.c_str());
    if (weighted && r.mean_log_likelihood != 0) {
      // The mean is over the weights' sum, which is not the rows' count.
      std::fprintf(stderr,
                   "mean log-likelihood %s per unit of weight (total %s over %lld rows, weights "
                   "summing to %s)\n",
                   format("%.10e", r.mean_log_likelihood).c_str(),
                   format("%.10e", r.log_likelihood).c_str(), static_cast<long long>(rows),
                   format("%.10g", r.log_likelihood / r.mean_log_likelihood).c_str());
    } else {
      std::fprintf(stderr, "mean log-likelihood %s per row (total %s over %lld rows)\n",
                   format("%.10e", r.mean_log_likelihood).c_str(),
                   format("%.10e", r.log_likelihood).c_str(), static_cast<long long>(rows));
    }
    std::string engine =
        "engine " + r.engine + ", " + r.precision + ", " + format("%.3f", r.seconds) + " s";
    if (options.n_init > 1) {
      engine += ", best of " + std::to_string(options.n_init) + " inits: #" +
                std::to_string(r.best_init + 1);
    }
    std::fprintf(stderr, "%s\n", engine.c_str());
    std::string files = "wrote";
    for (const std::string& f : written) files += " " + f;
    std::fprintf(stderr, "%s\n", files.c_str());
  }
  // Warnings are outcomes the user must see (identifiability, re-seeded components), so
  // --quiet does not hide them; notes it does.
  for (const std::string& w : r.warnings) print_fit_warning(w, quiet);
}

// The fit of a mapped file. The GPU engine streams host memory through its pinned buffers, so
// it is given the mapped pages as they are when they need no conversion. The CPU engine walks
// each thread's share of tiles across the whole array, which over a file larger than memory
// would read it from disk many times; it is given the file chunk by chunk instead (each chunk
// in memory while its tiles are shared out), as is the GPU when chunks are converted.
FitReport fit_mapped(io::MappedNpy& source, const FitOptions& options, const double* weights,
                     const DataFiles& files) {
  if (runs_on_gpu(options.engine) && source.direct()) {
    return naming_files(files, [&] { return fit(source.view(), options, weights); });
  }
  source.set_sample_weight(weights);
  // The chunked fit counts rows within the whole file, so errors name the file and its row.
  return naming_files(files, [&] { return fit(source, options); });
}

// The outputs of rank 0 (of the only process without mpirun), each opened (its temporary
// created) before the slow work, so that an output that cannot be written fails now rather than
// after the fit; the model is staged last so that it is also renamed into place last.
struct FitOutputs {
  StagedOutputs staged;
  std::vector<std::string> written;
  io::OutputFile* labels = nullptr;
  io::OutputFile* responsibilities = nullptr;
  io::OutputFile* model = nullptr;
};

void stage_outputs(const FitArgs& a, bool distributed, FitOutputs& out) {
  if (distributed) {  // a "-" is /dev/stdout by now, which rank 0 writes
    refuse_binary_on_terminal(
        {{"--labels", a.labels, ".npy"}, {"--responsibilities", a.responsibilities, ".npy"}});
  }
  out.staged.add_input(a.input, "INPUT");
  out.staged.add_input(a.init_model, "--init-model", "-o");  // refining a model in place
  out.staged.add_input(a.sample_weight, "--sample-weight");
  // Each name is checked after stage(), whose refusal to overwrite an input matters more; a
  // refused name's temporary is removed with the others.
  if (!a.labels.empty()) {
    out.labels = &out.staged.stage(a.labels, "--labels");
    require_output_extension(a.labels, "--labels", ".npy", "a NumPy int32 array");
    out.written.push_back(a.labels);
  }
  if (!a.responsibilities.empty()) {
    out.responsibilities = &out.staged.stage(a.responsibilities, "--responsibilities");
    require_output_extension(a.responsibilities, "--responsibilities", ".npy",
                             "a NumPy float64 array");
    out.written.push_back(a.responsibilities);
  }
  out.model = &out.staged.stage(a.output, "-o");
  require_output_extension(a.output, "-o", ".json", "a JSON model file");
  out.written.push_back(a.output);
}

// The fit's options: the flags, reconciled with --init-model, and every value checked before
// the data are read (a bad --max-iter does not wait for a large INPUT to load). On every rank
// alike.
FitOptions fit_options(const FitArgs& a, Init init) {
  Family family = parse_family(a.family);
  Covariance covariance = parse_covariance(a.covariance);
  int k = a.k;
  int trials = a.trials;
  FitOptions options;
  on_every_rank([&] {  // under mpirun every rank finds the same fault: one reports it
    if (!a.init_model.empty()) {
      options.init_model = reconcile_init_model(a, family, covariance, k, trials);
    }
    if (family == Family::kBinomial && !a.trials_given && !options.init_model) {
      throw InvalidArgument("--family binomial needs --trials M (the number of trials per entry)");
    }
    if (family != Family::kBinomial && a.trials_given) {
      throw InvalidArgument("--trials applies to binomial mixtures only (the family is " +
                            std::string(to_string(family)) + ")");
    }
    if (family != Family::kGaussian && a.covariance_given) {
      throw InvalidArgument("--covariance applies to Gaussian mixtures only (the family is " +
                            std::string(to_string(family)) + ")");
    }
    refuse_options_of_other_families(family, a.reg_covar_given, a.prob_epsilon_given);
  });
  if (family == Family::kBernoulli) trials = 1;

  options.n_components = k;
  options.family = family;
  options.covariance = covariance;
  options.trials = trials;
  options.init = init;
  options.fixed_weights = a.fixed_weights;
  a.copy_into(options);
  // The library's own word for this limit names init_max_rows, an option the program does not
  // have: the initialisation draws the K starting points from a sample of that many rows.
  on_every_rank([&] {
    if (k <= options.init_max_rows) return;
    const std::string limit = std::to_string(options.init_max_rows);
    throw InvalidArgument(
        (a.k_given ? "-k " + std::to_string(k) + ": "
                   : "--init-model " + a.init_model + ": " + std::to_string(k) + " components: ") +
        "emix fits at most " + limit +
        " components (the initialisation chooses them among a random sample of at most " + limit +
        " rows)");
  });
  on_every_rank([&] { validate_naming_flags(options); });
  return options;
}

// This process's rows: all of them (in memory, or a mapping of a .npy), or under mpirun its
// rank's even share, with their weights.
struct FitInput {
  InputMatrix x;
  std::unique_ptr<io::MappedNpy> mapping;
  std::int64_t total_rows = 0;  // of the whole INPUT, every rank's
  std::vector<double> weights;
  DataFiles files;
};

// A single process leaves NaN / Inf to the fit's validation (one scan of the data, which names
// the file's row through naming_files); under mpirun the reader checks them, since a rank's
// error reaches the others as text only. Shapes that involve two files are named here, with
// both files; the fit checks them too.
void read_input(const FitArgs& a, const FitOptions& options, bool distributed, FitInput& in) {
  in.files = DataFiles{a.input, a.sample_weight,
                       0,       !a.data.raw_dtype.empty(),
                       "",      a.init_model.empty() ? "" : "--init-model " + a.init_model};
  if (distributed) {
    RankRows mine = read_rank_rows(a.input, a.data, a.memory_map, a.map_chunk_rows);
    in.x = std::move(mine.x);
    in.total_rows = mine.total_rows;
    in.files.first_row = mine.first_row;
  } else if ((in.mapping = open_mapping(a.input, a.data, a.memory_map, a.map_chunk_rows))) {
    in.total_rows = in.mapping->rows();
  } else {
    in.x = InputMatrix::open(a.input, a.data, a.memory_map);
    in.total_rows = in.x.rows();
  }
  const std::int64_t cols = in.mapping ? in.mapping->cols() : in.x.cols();
  const int k = options.n_components;
  if (in.total_rows == 0) throw InvalidArgument(a.input + ": no rows to fit");
  if (k > in.total_rows) {
    // K came from -k or from the init model, which the message names.
    throw InvalidArgument((a.k_given ? "-k " + std::to_string(k) + " is larger than"
                                     : "--init-model " + a.init_model + " has " +
                                           std::to_string(k) + " components, more than") +
                          " the number of rows (" + std::to_string(in.total_rows) + ") in " +
                          a.input);
  }
  if (options.init_model && options.init_model->n_features != cols) {
    throw InvalidArgument("--init-model " + a.init_model + " has n_features " +
                          std::to_string(options.init_model->n_features) + ", but " + a.input +
                          " has " + count_of(cols, "column"));
  }
  if (!a.sample_weight.empty()) {
    in.weights = load_sample_weights(a.sample_weight, in.total_rows, in.files.first_row,
                                     in.mapping ? in.total_rows : in.x.rows(), a.input);
  }
}

FitReport run_em(const FitInput& in, const FitOptions& options, bool distributed) {
  const double* w = in.weights.empty() ? nullptr : in.weights.data();
#if EMIX_HAS_MPI
  if (distributed) {
    check_rank_values(in.x.view(), options, in.files);
    return naming_files_on_every_rank(
        in.files, [&] { return mpi::fit(MPI_COMM_WORLD, in.x.view(), options, w); });
  }
#else
  (void)distributed;
#endif
  if (in.mapping) return fit_mapped(*in.mapping, options, w, in.files);
  return naming_files(in.files, [&] { return fit(in.x.view(), options, w); });
}

#if EMIX_HAS_MPI
// Each rank labels its own rows; rank 0 writes them all in rank order. A collective.
void write_distributed_results(const FitArgs& a, const FitInput& in, const Model& model,
                               const EngineOptions& engine, FitOutputs& out) {
  const bool has_rows = in.x.rows() > 0;
  if (!a.labels.empty()) {
    std::vector<std::int32_t> labels;
    on_every_rank([&] {
      if (has_rows) labels = predict(model, in.x.view(), engine);
    });
    write_distributed_labels(out.labels, labels, in.total_rows);
  }
  if (!a.responsibilities.empty()) {
    std::vector<double> resp;
    on_every_rank([&] {
      if (has_rows) resp = predict_proba(model, in.x.view(), engine);
    });
    write_distributed_responsibilities(out.responsibilities, resp, in.total_rows,
                                       model.n_components);
  }
}
#endif

// Rank 0's per-row results of a fit that was not distributed: streamed for a mapped INPUT.
void write_results(const FitArgs& a, const FitInput& in, const Model& model,
                   const EngineOptions& engine, FitOutputs& out) {
  if (in.mapping) {
    write_mapped_results(*in.mapping, a.input, model, "", engine, out.labels, out.responsibilities);
    return;
  }
  if (out.labels != nullptr) io::write_npy(*out.labels, predict(model, in.x.view(), engine));
  if (out.responsibilities != nullptr) {
    const std::vector<double> resp = predict_proba(model, in.x.view(), engine);
    io::write_npy(*out.responsibilities, resp.data(), in.x.rows(), model.n_components);
  }
}

}  // namespace

int run_fit(const FitArgs& a) {
  const Init init = parse_init(a.init);
  on_every_rank([&] {  // --device gpu is checked against each rank's own machine
    validate(a.data);
    check_flags(a, init);
  });
  const bool distributed = mpi_active();
  const bool root = mpi_rank() == 0;  // under mpirun, the rank that writes and reports

  FitOutputs outputs;
  on_every_rank([&] {
    if (root) stage_outputs(a, distributed, outputs);
  });
  FitOptions options = fit_options(a, init);
  FitInput input;
  on_every_rank([&] { read_input(a, options, distributed, input); });

  // The per-row results are made after the fit, whole (streamed for a mapped INPUT): where they
  // cannot fit in memory, say so before the fit rather than after it (1e6 rows x 64
  // responsibilities under ulimit -v were refused once the fit had run).
  // On every rank alike (only rank 0 stages the outputs): a collective.
  if (!input.mapping && (!a.labels.empty() || !a.responsibilities.empty())) {
    on_every_rank([&] {
      const bool labels = !a.labels.empty(), resp = !a.responsibilities.empty();
      const std::string k = std::to_string(options.n_components);
      check_with_memory_map_hint([&] {
        check_result_memory(
            input.x.rows(), (labels ? 4.0 : 0.0) + (resp ? 8.0 * options.n_components : 0.0),
            std::string(labels ? "a label (int32)" : "") + (labels && resp ? " and " : "") +
                (resp ? k + " responsibilities (float64)" : ""));
      });
    });
  }

  Progress progress(a.data.quiet || !root, a.n_init);
  options.on_iteration = [&progress](const IterationInfo& info) { progress(info); };
  FitReport report;
  try {
    report = run_em(input, options, distributed);
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();

#if EMIX_HAS_MPI
  if (distributed) write_distributed_results(a, input, report.model, options.engine, outputs);
#endif
  if (!root) return 0;
  if (!distributed) write_results(a, input, report.model, options.engine, outputs);
  // Among the fit's warnings, in the model file too: the model was fitted to rounded data.
  const std::string rounding = float32_rounding_warning(a.input, a.data);
  if (!rounding.empty()) report.warnings.push_back(rounding);
  io::write_model(*outputs.model, report.model, &report);
  outputs.staged.commit();
  // After the fit: an error must stay the only line on stderr.
  if (input.mapping && !a.data.quiet) print_mapping(a.input, *input.mapping);
  if (!input.mapping) note_text_header(a.input, a.data);
  print_summary(report, options, input.total_rows, !a.sample_weight.empty(), outputs.written,
                a.data.quiet);
  return 0;
}

}  // namespace emix::cli
