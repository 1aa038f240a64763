// emix predict MODEL.json INPUT -o LABELS.npy [--proba]
// emix score MODEL.json INPUT
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "emix/errors.hpp"
#include "emix/fit.hpp"
#include "emix/io.hpp"

namespace emix::cli {

namespace {

// The model first (small, and a bad one is reported before a large input is read), then the
// data. Their values are validated by the evaluation itself (see naming_files); only the width,
// which involves both files, is named here.
InputMatrix load_for_model(const Model& model, const std::string& model_path,
                           const std::string& input, const DataArgs& data, bool no_memory_map) {
  InputMatrix x = InputMatrix::open(input, data, no_memory_map ? "off" : "auto");
  if (x.rows() == 0) throw InvalidArgument(input + ": no rows to evaluate");
  if (x.cols() != model.n_features) {
    throw InvalidArgument(input + " has " + std::to_string(x.cols()) + " columns, but the model " +
                          model_path + " has n_features " + std::to_string(model.n_features));
  }
  return x;
}

}  // namespace

int run_predict(const PredictArgs& a) {
  validate(a.data);
  StagedOutputs outputs;
  outputs.add_input(a.model, "MODEL");
  outputs.add_input(a.input, "INPUT");
  io::OutputFile& out = outputs.stage(a.output, "-o");
  require_output_extension(a.output, "-o", ".npy", "a NumPy array");
  const Model model = io::read_model(a.model);
  const InputMatrix x = load_for_model(model, a.model, a.input, a.data, a.no_memory_map);
  const EngineOptions engine = engine_options(a.data);
  const DataFiles files{a.input, "", 0};
  if (a.proba) {
    const std::vector<double> resp =
        naming_files(files, [&] { return predict_proba(model, x.view(), engine); });
    io::write_npy(out, resp.data(), x.rows(), model.n_components);
  } else {
    io::write_npy(out, naming_files(files, [&] { return predict(model, x.view(), engine); }));
  }
  outputs.commit();
  if (!a.data.quiet) {
    const std::string what =
        a.proba ? std::to_string(model.n_components) + " responsibilities (float64) per row"
                : "a label (int32) per row";
    std::fprintf(stderr, "wrote %s: %s, %lld rows\n", a.output.c_str(), what.c_str(),
                 static_cast<long long>(x.rows()));
  }
  return 0;
}

int run_score(const ScoreArgs& a) {
  validate(a.data);
  const Model model = io::read_model(a.model);
  const InputMatrix x = load_for_model(model, a.model, a.input, a.data, a.no_memory_map);
  const double value = naming_files(DataFiles{a.input, "", 0},
                                    [&] { return score(model, x.view(), engine_options(a.data)); });
  // 17 significant digits: the printed number reads back as the same double.
  std::printf("%.17g\n", value);
  return 0;
}

}  // namespace emix::cli
