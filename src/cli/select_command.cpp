// emix select INPUT [-k 1..16 | -k 1,2,4,8] [--covariance full,diag] [--criterion bic|aic|icl]
//                   [-o BEST.json] [--table FILE.csv|FILE.json] [--plot FILE.png]
//                   [--memory-map | --no-memory-map] [--map-chunk-rows R] ...
// Fits every candidate of the grid (emix::select: the candidates share each pass over the data),
// prints their table and the best model's summary on stdout (stderr where an output is stdout),
// and writes the files asked for.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/commands.hpp"
#include "cli/mpi_session.hpp"
#include "cli/plot.hpp"
#include "cli/ranks.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "emix/select.hpp"

#if EMIX_HAS_MPI
#include "emix/mpi.hpp"
#endif

namespace emix::cli {

namespace {

// The largest K the grid may hold, and the most candidates: each candidate is a fit.
constexpr int kMaxK = 100000;
constexpr std::size_t kMaxGrid = 4096;

int parse_k(const std::string& text, const std::string& grid) {
  int value = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto result = std::from_chars(first, last, value);
  // Digits beyond int's range are a whole number, only too large.
  if (!text.empty() && result.ptr == last && result.ec == std::errc::result_out_of_range) {
    throw InvalidArgument("-k " + grid + ": K = " + text + " is outside 1.." +
                          std::to_string(kMaxK));
  }
  if (text.empty() || result.ptr != last || result.ec != std::errc()) {
    throw InvalidArgument("-k " + grid + ": \"" + text +
                          "\" is not a whole number (expected a range 1..16, a list 1,2,4,8, "
                          "or both)");
  }
  if (value < 1 || value > kMaxK) {
    throw InvalidArgument("-k " + grid + ": K = " + text + " is outside 1.." +
                          std::to_string(kMaxK));
  }
  return value;
}

// "1..16", "1,2,4,8" or "1..4,8": the Ks in the order given, each once.
std::vector<int> parse_k_grid(const std::string& grid) {
  std::vector<int> ks;
  std::size_t start = 0;
  while (start <= grid.size()) {
    const std::size_t comma = std::min(grid.find(',', start), grid.size());
    const std::string item = grid.substr(start, comma - start);
    const std::size_t dots = item.find("..");
    if (dots == std::string::npos) {
      ks.push_back(parse_k(item, grid));
    } else {
      const int lo = parse_k(item.substr(0, dots), grid);
      const int hi = parse_k(item.substr(dots + 2), grid);
      if (hi < lo) {
        throw InvalidArgument("-k " + grid + ": the range " + item + " ends before it starts");
      }
      if (static_cast<std::size_t>(hi - lo) >= kMaxGrid) {
        throw InvalidArgument("-k " + grid + ": more than " + std::to_string(kMaxGrid) +
                              " values of K");
      }
      for (int k = lo; k <= hi; ++k) ks.push_back(k);
    }
    if (ks.size() > kMaxGrid) {  // over all ranges and lists together
      throw InvalidArgument("-k " + grid + ": more than " + std::to_string(kMaxGrid) +
                            " values of K");
    }
    start = comma + 1;
  }
  for (std::size_t i = 0; i < ks.size(); ++i) {
    if (std::find(ks.begin(), ks.begin() + static_cast<std::ptrdiff_t>(i), ks[i]) !=
        ks.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw InvalidArgument("-k " + grid + ": K = " + std::to_string(ks[i]) + " is given twice");
    }
  }
  return ks;
}

std::vector<Covariance> parse_covariance_list(const std::string& list) {
  std::vector<Covariance> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    if (item != "full" && item != "diag" && item != "spherical" && item != "tied") {
      throw InvalidArgument("--covariance " + list + ": \"" + item +
                            "\" is not a covariance type (full, diag, spherical, tied)");
    }
    const Covariance c = parse_covariance(item);
    if (std::find(out.begin(), out.end(), c) != out.end()) {
      throw InvalidArgument("--covariance " + list + ": " + item + " is given twice");
    }
    out.push_back(c);
    start = comma + 1;
  }
  return out;
}

std::string covariance_name(const SelectCandidate& c, Family family) {
  return family == Family::kGaussian ? to_string(c.covariance) : "-";
}

// Exactly what is printed is what is written: %.17g round-trips every double.
std::string number(double v) { return format("%.17g", v); }

// A candidate that failed (and was left out of the choice).
bool failed(const SelectCandidate& c) { return c.failed; }

// Why a candidate failed: the library states it among its warnings ("" for one that did not),
// in the program's terms ("increase --reg-covar"), as its warning on stderr says it.
std::string failure_of(const SelectCandidate& c) {
  static const std::string kFailed = "failed, and left out of the choice: ";
  if (!failed(c)) return "";
  for (const std::string& w : c.fit.warnings) {
    if (w.rfind(kFailed, 0) == 0) return in_flags(w.substr(kFailed.size()));
  }
  return "failed";
}

// A CSV cell (RFC 4180): quoted, with its quotes doubled, when it holds a comma or a quote.
std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string table_csv(const SelectReport& r, Family family) {
  std::string out =
      "n_components,covariance,log_likelihood,mean_log_likelihood,n_parameters,bic,aic,icl,"
      "n_iter,converged,seconds,best,failed,error\n";
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const SelectCandidate& c = r.candidates[i];
    out += std::to_string(c.n_components) + "," + covariance_name(c, family) + "," +
           number(c.fit.log_likelihood) + "," + number(c.fit.mean_log_likelihood) + "," +
           std::to_string(c.n_parameters) + "," + number(c.bic) + "," + number(c.aic) + "," +
           number(c.icl) + "," + std::to_string(c.fit.n_iter) + "," +
           (c.fit.converged ? "true" : "false") + "," + format("%.6f", c.fit.seconds) + "," +
           (i == r.best ? "true" : "false") + "," + (failed(c) ? "true" : "false") + "," +
           csv_cell(failure_of(c)) + "\n";
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
      out += buffer;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// JSON numbers cannot be inf or nan: those become null.
std::string json_number(double v) { return v - v == 0 ? number(v) : "null"; }

std::string table_json(const SelectReport& r, Family family) {
  std::string out = "{\n  \"format\": \"emix-select\",\n  \"version\": 1,\n";
  out += "  \"criterion\": \"" + std::string(to_string(r.criterion)) + "\",\n";
  out += "  \"best\": " + std::to_string(r.best) + ",\n";
  out += "  \"engine\": " + json_string(r.engine) + ",\n";
  out += "  \"passes\": " + std::to_string(r.passes) + ",\n";
  out += "  \"seconds\": " + format("%.6f", r.seconds) + ",\n";
  out += "  \"candidates\": [\n";
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const SelectCandidate& c = r.candidates[i];
    out += "    {\"n_components\": " + std::to_string(c.n_components) +
           ", \"covariance\": " + json_string(covariance_name(c, family)) +
           ", \"log_likelihood\": " + json_number(c.fit.log_likelihood) +
           ", \"mean_log_likelihood\": " + json_number(c.fit.mean_log_likelihood) +
           ", \"n_parameters\": " + std::to_string(c.n_parameters) +
           ", \"bic\": " + json_number(c.bic) + ", \"aic\": " + json_number(c.aic) +
           ", \"icl\": " + json_number(c.icl) + ", \"n_iter\": " + std::to_string(c.fit.n_iter) +
           ", \"converged\": " + (c.fit.converged ? "true" : "false") +
           ", \"seconds\": " + format("%.6f", c.fit.seconds) +
           ", \"failed\": " + (failed(c) ? "true" : "false") +
           ", \"error\": " + json_string(failure_of(c)) + "}" +
           (i + 1 < r.candidates.size() ? "," : "") + "\n";
  }
  return out + "  ]\n}\n";
}

void print_table(std::FILE* out, const SelectReport& r, Family family) {
  std::fprintf(out, "%6s  %-10s %18s %18s %18s %18s %6s %9s\n", "K", "covariance", "log-likelihood",
               "BIC", "AIC", "ICL", "iter", "seconds");
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const SelectCandidate& c = r.candidates[i];
    if (failed(c)) {
      std::fprintf(out, "  %4d  %-10s %18s %18s %18s %18s %6s %9.3f\n", c.n_components,
                   covariance_name(c, family).c_str(), "failed", "-", "-", "-", "-", c.fit.seconds);
      continue;
    }
    std::fprintf(out, "%s%4d  %-10s %18.10e %18.10e %18.10e %18.10e %5d%s %9.3f\n",
                 i == r.best ? "* " : "  ", c.n_components, covariance_name(c, family).c_str(),
                 c.fit.log_likelihood, c.bic, c.aic, c.icl, c.fit.n_iter,
                 c.fit.converged ? " " : "!", c.fit.seconds);
  }
  std::fprintf(out,
               "(* the lowest %s; ! did not converge within --max-iter; failed: see the "
               "warnings)\n",
               to_string(r.criterion));
}

void print_best(std::FILE* out, const SelectReport& r, Family family, bool weighted,
                const std::vector<std::string>& written) {
  const SelectCandidate& b = r.candidates[r.best];
  const Model& m = b.fit.model;
  std::fprintf(out, "\nbest by %s: K = %d", to_string(r.criterion), b.n_components);
  if (family == Family::kGaussian) std::fprintf(out, ", covariance %s", to_string(b.covariance));
  std::fprintf(out, " (%s %.10e)\n", to_string(r.criterion), b.criterion(r.criterion));
  std::fprintf(out, "mean log-likelihood %.10e per %s, %d iteration%s%s, %lld parameters\n",
               b.fit.mean_log_likelihood, weighted ? "unit of weight" : "row", b.fit.n_iter,
               b.fit.n_iter == 1 ? "" : "s", b.fit.converged ? ", converged" : ", not converged",
               static_cast<long long>(b.n_parameters));
  const int d = m.n_features;
  const int shown = std::min(d, 8);
  for (int k = 0; k < m.n_components && k < 20; ++k) {
    std::fprintf(out, "  component %d: weight %.6f, %s", k, m.weights[static_cast<std::size_t>(k)],
                 family == Family::kGaussian ? "mean [" : "probabilities [");
    const std::vector<double>& v = family == Family::kGaussian ? m.means : m.probabilities;
    for (int j = 0; j < shown; ++j) {
      std::fprintf(out, "%s%.6g", j ? ", " : "",
                   v[static_cast<std::size_t>(k) * static_cast<std::size_t>(d) +
                     static_cast<std::size_t>(j)]);
    }
    std::fprintf(out, "%s]\n", shown < d ? ", ..." : "");
  }
  if (m.n_components > 20) std::fprintf(out, "  ... (%d components)\n", m.n_components);
  std::fprintf(out, "engine %s, %d passes over the data, %.3f s\n", r.engine.c_str(), r.passes,
               r.seconds);
  if (!written.empty()) {
    std::string files = "wrote";
    for (const std::string& f : written) files += " " + f;
    std::fprintf(out, "%s\n", files.c_str());
  }
}

// Each distinct warning or note once, with the candidates it concerns: a grid of 32 candidates
// would otherwise repeat the same line (the initialisation's sample, for one) 32 times.
// Warnings are outcomes the user must see, so --quiet hides only the notes (as in emix fit).
void print_warnings(const SelectReport& report, Family family, bool quiet) {
  std::vector<std::pair<std::string, std::vector<std::string>>> distinct;
  for (const SelectCandidate& c : report.candidates) {
    const std::string label =
        "K = " + std::to_string(c.n_components) + " " + covariance_name(c, family);
    for (const std::string& w : c.fit.warnings) {
      auto same = std::find_if(distinct.begin(), distinct.end(),
                               [&](const auto& entry) { return entry.first == w; });
      if (same == distinct.end()) {
        distinct.push_back({w, {label}});
      } else {
        same->second.push_back(label);
      }
    }
  }
  constexpr std::size_t kNamedCandidates = 4;
  for (const auto& [text, labels] : distinct) {
    std::string who;
    if (labels.size() == report.candidates.size() && labels.size() > 1) {
      who = "every candidate";
    } else {
      for (std::size_t i = 0; i < labels.size() && i < kNamedCandidates; ++i) {
        who += (i == 0 ? "" : ", ") + labels[i];
      }
      if (labels.size() > kNamedCandidates) {
        who += " and " + std::to_string(labels.size() - kNamedCandidates) + " more";
      }
    }
    print_fit_warning(text, quiet, who + ": ");
  }
}

// Everything the command line alone decides, into `options`.
void check_command_line(const SelectArgs& a, SelectOptions& options) {
  validate(a.data);
  options.n_components = parse_k_grid(a.k_grid);
  options.covariances = parse_covariance_list(a.covariances);
  options.criterion = parse_criterion(a.criterion);
  const Family family = parse_family(a.family);
  if (family == Family::kBinomial && !a.trials_given) {
    throw InvalidArgument("--family binomial needs --trials M (the number of trials per entry)");
  }
  if (family != Family::kBinomial && a.trials_given) {
    throw InvalidArgument("--trials applies to binomial mixtures only (the family is " +
                          std::string(to_string(family)) + ")");
  }
  refuse_options_of_other_families(family, a.reg_covar_given, a.prob_epsilon_given);
  if (family != Family::kGaussian) {
    if (a.covariance_given) {
      throw InvalidArgument("--covariance " + a.covariances +
                            ": covariance types apply to "
                            "Gaussian mixtures only (the family is " +
                            to_string(family) + ")");
    }
    options.covariances = {Covariance::kFull};  // a placeholder: one candidate per K
  }
  const std::string table_ext = lower_extension(a.table);
  if (!a.table.empty() && table_ext != ".csv" && table_ext != ".json") {
    throw InvalidArgument("--table " + a.table +
                          ": the file name must end in .csv or .json (the format written)");
  }
  if (!a.plot.empty()) {
    if (mpi_rank() == 0) require_plot();  // under mpirun rank 0 alone draws it
    if (a.plot_width < 200 || a.plot_width > 8192 || a.plot_height < 150 || a.plot_height > 8192) {
      throw InvalidArgument("--plot-width " + std::to_string(a.plot_width) + " --plot-height " +
                            std::to_string(a.plot_height) +
                            ": the plot must be 200..8192 x 150..8192 pixels");
    }
  }

  FitOptions& fit = options.fit;
  fit.family = family;
  fit.trials = family == Family::kBinomial ? a.trials : 1;
  fit.init = parse_init(a.init);
  if (a.kmeans_iter_given && fit.init != Init::kKMeansPlusPlus) {
    throw InvalidArgument("--kmeans-iter applies to --init kmeans++ only");
  }
  a.copy_into(fit);
  {
    FitOptions check = fit;  // every value once, with the grid's largest K
    check.n_components =
        *std::max_element(options.n_components.begin(), options.n_components.end());
    validate_naming_flags(check);
  }
}

}  // namespace

int run_select(const SelectArgs& a) {
  const bool distributed = mpi_active();
  const bool root = mpi_rank() == 0;  // under mpirun, the rank that writes and reports
  SelectOptions options;
  // Everything the command line alone decides, before any file is opened (under mpirun every
  // rank finds the same fault, and rank 0 reports it).
  on_every_rank([&] { check_command_line(a, options); });
  const Family family = options.fit.family;
  const std::string table_ext = lower_extension(a.table);

  StagedOutputs outputs;
  std::vector<std::string> written;
  io::OutputFile* table_out = nullptr;
  io::OutputFile* plot_out = nullptr;
  io::OutputFile* model_out = nullptr;
  on_every_rank([&] {
    if (!root) return;
    if (distributed) refuse_binary_on_terminal({{"--plot", a.plot, "PNG"}});
    outputs.add_input(a.input, "INPUT");
    outputs.add_input(a.sample_weight, "--sample-weight");
    if (!a.table.empty()) {
      table_out = &outputs.stage(a.table, "--table");
      written.push_back(a.table);
    }
    if (!a.plot.empty()) {
      plot_out = &outputs.stage(a.plot, "--plot");
      require_output_extension(a.plot, "--plot", ".png", "a PNG image");
      written.push_back(a.plot);
    }
    if (!a.output.empty()) {
      model_out = &outputs.stage(a.output, "-o");
      require_output_extension(a.output, "-o", ".json", "a JSON model file");
      written.push_back(a.output);
    }
  });

  // INPUT in memory, or memory-mapped and read chunk by chunk (each chunk serving every
  // candidate of a pass) when it is a .npy too large for memory or --memory-map says so; under
  // mpirun each rank's share of the rows, in memory.
  std::unique_ptr<io::MappedNpy> mapping;
  InputMatrix x;
  std::int64_t rows = 0;
  std::vector<double> weights;
  DataFiles files{a.input, a.sample_weight, 0, !a.data.raw_dtype.empty()};
  on_every_rank([&] {
    if (distributed) {
      RankRows mine = read_rank_rows(a.input, a.data, a.memory_map, a.map_chunk_rows);
      x = std::move(mine.x);
      rows = mine.total_rows;
      files.first_row = mine.first_row;
    } else {
      mapping = open_mapping(a.input, a.data, a.memory_map, a.map_chunk_rows);
      if (!mapping) x = InputMatrix::open(a.input, a.data, a.memory_map);
      rows = mapping ? mapping->rows() : x.rows();
    }
    if (rows == 0) throw InvalidArgument(a.input + ": no rows to fit");
    // A K larger than the data fails alone, in the table; a grid of such K only is an error.
    const int smallest_k =
        *std::min_element(options.n_components.begin(), options.n_components.end());
    if (smallest_k > rows) {
      throw InvalidArgument("-k " + a.k_grid + ": K = " + std::to_string(smallest_k) +
                            " is larger than the number of rows (" + std::to_string(rows) +
                            ") in " + a.input);
    }
    if (!a.sample_weight.empty()) {
      weights = load_sample_weights(a.sample_weight, rows, files.first_row,
                                    distributed ? x.rows() : rows, a.input);
    }
  });
  const double* weight_data = weights.empty() ? nullptr : weights.data();

  const SelectReport report = [&] {
#if EMIX_HAS_MPI
    if (distributed) {
      check_rank_values(x.view(), options.fit, files);
      return naming_files_on_every_rank(
          files, [&] { return mpi::select(MPI_COMM_WORLD, x.view(), options, weight_data); });
    }
#endif
    return naming_files(files, [&] {
      if (!mapping) return emix::select(x.view(), options, weight_data);
      // As emix fit: the GPU engine streams the mapped pages themselves when they need no
      // conversion; otherwise the chunked selection (which counts rows within the whole file,
      // so errors name the file's row).
      if (runs_on_gpu(options.fit.engine) && mapping->direct()) {
        return emix::select(mapping->view(), options, weight_data);
      }
      mapping->set_sample_weight(weight_data);
      return emix::select(*mapping, options);
    });
  }();
  if (!root) return 0;
  if (table_out != nullptr) {
    table_out->write(table_ext == ".csv" ? table_csv(report, family) : table_json(report, family));
  }
  if (plot_out != nullptr)
    write_criteria_plot(*plot_out, report, family, a.plot_width, a.plot_height);
  // Every candidate was fitted to the same rounded data: said once, and in the best model's file.
  const std::string rounding = float32_rounding_warning(a.input, a.data);
  if (model_out != nullptr) {
    FitReport best = report.candidates[report.best].fit;
    if (!rounding.empty()) best.warnings.push_back(rounding);
    io::write_model(*model_out, best.model, &best);
  }
  outputs.commit();

  if (mapping && !a.data.quiet) print_mapping(a.input, *mapping);
  if (!mapping) note_text_header(a.input, a.data);
  if (!a.data.quiet) {
    // Where an output is standard output, what is printed for people goes beside the warnings.
    std::FILE* out = a.stdout_taken ? stderr : stdout;
    print_table(out, report, family);
    print_best(out, report, family, !a.sample_weight.empty(), written);
  }
  print_warnings(report, family, a.data.quiet);
  if (!rounding.empty()) print_fit_warning(rounding, a.data.quiet);
  return 0;
}

}  // namespace emix::cli
