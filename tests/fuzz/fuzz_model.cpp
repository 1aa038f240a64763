// Fuzz harness: the model file reader (io::read_model). Invariants beyond "no crash, only
// emix::Error": a model read is valid, writes and reads back bitwise the same, and evaluates on a
// few rows without a NaN answer (the library refuses one; a NaN returned is a finding).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "emix/fit.hpp"
#include "emix/io.hpp"
#include "fuzz_input.hpp"

namespace {

bool same(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(double)) != 0) return false;
  }
  return true;
}

// A folder of this process's own for the round trip (outputs are never written to /proc),
// removed at exit.
struct ScratchFolder {
  ScratchFolder() {
    path = (std::filesystem::temp_directory_path() / "emix-fuzz-model-XXXXXX").string();
    if (::mkdtemp(path.data()) == nullptr) emix::fuzz::finding("mkdtemp failed");
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static emix::fuzz::MemoryFile file("emix-fuzz-model");
  const std::string& path = file.hold(data, size);
  emix::fuzz::expect_only_emix_errors([&] {
    const emix::Model model = emix::io::read_model(path);
    model.validate();  // read_model promises a valid model

    static const ScratchFolder folder;
    const std::string copy = folder.path + "/model.json";
    emix::io::write_model(copy, model);
    const emix::Model back = emix::io::read_model(copy);
    if (back.family != model.family || back.n_components != model.n_components ||
        back.n_features != model.n_features || back.trials != model.trials ||
        !same(back.weights, model.weights) || !same(back.means, model.means) ||
        !same(back.covariances, model.covariances) ||
        !same(back.probabilities, model.probabilities) ||
        (model.family == emix::Family::kGaussian && back.covariance != model.covariance)) {
      emix::fuzz::finding("a model read back differs from the one written");
    }

    // Three rows the family accepts: 0, 1 and (for counts) min(2, trials).
    if (model.n_features > 64 || model.n_components > 64) return;  // keep executions fast
    const int d = model.n_features;
    std::vector<double> x(static_cast<std::size_t>(3 * d));
    for (int j = 0; j < d; ++j) {
      x[static_cast<std::size_t>(j)] = 0;
      x[static_cast<std::size_t>(d + j)] = 1;
      x[static_cast<std::size_t>(2 * d + j)] =
          model.family == emix::Family::kBinomial ? std::min(2, model.trials) : (j % 2);
    }
    emix::EngineOptions engine;
    engine.device = emix::Device::kCpu;
    engine.n_threads = 1;
    const auto view = emix::DataView::host(x.data(), 3, d);
    for (const double v : emix::score_samples(model, view, engine)) {
      if (std::isnan(v)) emix::fuzz::finding("score_samples returned NaN");
    }
    const std::vector<double> resp = emix::predict_proba(model, view, engine);
    (void)resp;
  });
  return 0;
}
