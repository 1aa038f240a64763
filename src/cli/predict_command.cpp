// emix predict MODEL.json INPUT -o LABELS.npy [--proba]
// emix score MODEL.json INPUT
// Both stream a .npy INPUT larger than memory chunk by chunk (--memory-map), as fit does.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/validate.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

namespace emix::cli {

namespace {

// The model first (small, and a bad one is reported before a large input is read), then the
// data. Their values are validated by the evaluation itself (see naming_files); only the shape,
// which involves both files, is named here.
// Labels or responsibilities of no rows are none (an empty array, as the library gives them); a
// score of no rows is a mean over nothing.
void check_shape(const Model& model, const std::string& model_path, const std::string& input,
                 std::int64_t rows, std::int64_t cols, bool per_row) {
  if (rows == 0 && !per_row) {
    throw InvalidArgument(input + ": no rows to score (a mean log-likelihood over no rows)");
  }
  if (cols != model.n_features) {
    throw InvalidArgument(input + " has " + count_of(cols, "column") + ", but the model " +
                          model_path + " has n_features " + std::to_string(model.n_features));
  }
}

InputMatrix load_whole(const Model& model, const std::string& model_path, const std::string& input,
                       const DataArgs& data, const std::string& memory_map, bool per_row) {
  InputMatrix x = InputMatrix::open(input, data, memory_map);
  check_shape(model, model_path, input, x.rows(), x.cols(), per_row);
  return x;
}

// The data options with a binomial model's trials, so that counts float32 would round are read
// in double (and --precision float refused for them), as fit reads them.
DataArgs with_model_trials(const DataArgs& args, const Model& model) {
  DataArgs data = args;
  if (model.family == Family::kBinomial) data.binomial_trials = model.trials;
  (void)resolve_precision(data);  // its refusal before the data are read
  return data;
}

// The evaluation of data that --precision float (or auto, on the GPU) rounded past float32's
// 1e-4 of a column's spread is as wrong as a fit of them: the same warning, even with --quiet.
void warn_of_rounding(const std::string& input, const DataArgs& data) {
  const std::string rounding = float32_rounding_warning(input, data, true);
  if (!rounding.empty()) print_fit_warning(rounding, false);
}

// "a, b, c", at most eight names.
std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 8; ++i) {
    out += (i == 0 ? "" : ", ") + names[i];
  }
  return names.size() > 8 ? out + ", ..." : out;
}

// INPUT's header against the feature names of a model the Python package fitted on named
// columns (its estimator section): the same names in another order were evaluated column by
// column as they stood, said nothing of (Python refuses them, as scikit-learn does); other
// names of as many columns are evaluated in order, with a warning. Names that are numbers
// ("1,0,2") may have been read as a row: a warning says so where they are the model's in another
// order (in the model's order, pandas' 0, 1, ..., the reader's own note says it).
void check_column_names(const DataArgs& data, const std::string& input, const std::string& model,
                        const std::string& estimator_section) {
  if (!data.raw_dtype.empty()) return;
  const std::vector<std::string> fitted = io::estimator_feature_names(estimator_section);
  if (fitted.empty()) return;
  const io::TextFirstLine first = io::text_first_line(input);
  const std::vector<std::string>& named = first.cells;
  if (named.size() != fitted.size() || (first.header && named == fitted)) return;
  std::vector<std::string> sorted_named = named, sorted_fitted = fitted;
  std::sort(sorted_named.begin(), sorted_named.end());
  std::sort(sorted_fitted.begin(), sorted_fitted.end());
  if (!first.header) {
    // Binary or count data may begin with such a row: a warning, not a refusal.
    if (sorted_named == sorted_fitted && named != fitted && !data.quiet) {
      std::fprintf(stderr,
                   "warning: %s: line %lld (%s) holds the names of the features the model (%s) "
                   "was fitted on, in another order, and was read as a row of data: if it is a "
                   "header, delete it and write the columns in the model's order (%s)\n",
                   input.c_str(), static_cast<long long>(first.line), listed(named).c_str(),
                   model.c_str(), listed(fitted).c_str());
    }
    return;
  }
  const std::string said = input + ": its header names the columns " + listed(named) +
                           ", and the model (" + model + ") was fitted on " + listed(fitted);
  if (sorted_named == sorted_fitted) {
    throw InvalidArgument(said +
                          ": the same names in another order; write the columns in the model's "
                          "order");
  }
  if (!data.quiet) {
    std::fprintf(stderr, "warning: %s: the columns are taken in their order\n", said.c_str());
  }
}

}  // namespace

int run_predict(const PredictArgs& a) {
  validate(a.data);
  StagedOutputs outputs;
  outputs.add_input(a.model, "MODEL");
  outputs.add_input(a.input, "INPUT");
  io::OutputFile& out = outputs.stage(a.output, "-o");
  require_output_extension(a.output, "-o", ".npy", "a NumPy array");
  std::string estimator_section;
  const Model model = io::read_model(a.model, nullptr, &estimator_section);
  const DataArgs data = with_model_trials(a.data, model);
  const EngineOptions engine = engine_options(data);
  std::int64_t rows = 0;
  // A .npy INPUT larger than half the memory (or any, with --memory-map) is evaluated chunk by
  // chunk, its results streamed; anything else is evaluated whole.
  std::unique_ptr<io::MappedNpy> mapping =
      open_mapping(a.input, data, a.memory_map, a.map_chunk_rows);
  if (mapping) {
    check_shape(model, a.model, a.input, mapping->rows(), mapping->cols(), true);
    write_mapped_results(*mapping, a.input, model, a.model, engine, a.proba ? nullptr : &out,
                         a.proba ? &out : nullptr);
    rows = mapping->rows();
  } else {
    const InputMatrix x = load_whole(model, a.model, a.input, data, a.memory_map, true);
    check_column_names(a.data, a.input, a.model, estimator_section);
    const DataFiles files{a.input, "", 0, !a.data.raw_dtype.empty(), a.model};
    if (a.proba) {
      const std::vector<double> resp = check_with_memory_map_hint([&] {
        return naming_files(files, [&] { return predict_proba(model, x.view(), engine); });
      });
      io::write_npy(out, resp.data(), x.rows(), model.n_components);
    } else {
      io::write_npy(out, check_with_memory_map_hint([&] {
                      return naming_files(files, [&] { return predict(model, x.view(), engine); });
                    }));
    }
    rows = x.rows();
  }
  outputs.commit();
  warn_of_rounding(a.input, data);
  if (!a.data.quiet) {
    if (mapping) print_mapping(a.input, *mapping);
    if (!mapping) note_text_header(a.input, a.data);
    const std::string what =
        a.proba ? std::to_string(model.n_components) + " responsibilities (float64) per row"
                : "a label (int32) per row";
    std::fprintf(stderr, "wrote %s: %s, %lld rows\n", a.output.c_str(), what.c_str(),
                 static_cast<long long>(rows));
  }
  return 0;
}

int run_score(const ScoreArgs& a) {
  validate(a.data);
  std::string estimator_section;
  const Model model = io::read_model(a.model, nullptr, &estimator_section);
  const DataArgs data = with_model_trials(a.data, model);
  const EngineOptions engine = engine_options(data);
  double value = 0;
  if (std::unique_ptr<io::MappedNpy> mapping =
          open_mapping(a.input, data, a.memory_map, a.map_chunk_rows)) {
    check_shape(model, a.model, a.input, mapping->rows(), mapping->cols(), false);
    value = score_mapped(*mapping, a.input, model, a.model, engine);
  } else {
    const InputMatrix x = load_whole(model, a.model, a.input, data, a.memory_map, false);
    check_column_names(a.data, a.input, a.model, estimator_section);
    value = naming_files(DataFiles{a.input, "", 0, !a.data.raw_dtype.empty(), a.model},
                         [&] { return score(model, x.view(), engine); });
    note_text_header(a.input, a.data);
  }
  warn_of_rounding(a.input, data);
  // 17 significant digits: the printed number reads back as the same double.
  std::printf("%.17g\n", value);
  return 0;
}

}  // namespace emix::cli
