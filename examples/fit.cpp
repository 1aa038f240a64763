// Fits a three-component Gaussian mixture through emix's C++ API (emix::emix).
#include <emix/emix.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  const double centres[3][2] = {{0, 0}, {6, 0}, {0, 6}};
  const int n = 3000;
  std::vector<double> x(2 * n);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (int i = 0; i < n; ++i) {
    x[2 * i] = centres[i % 3][0] + noise(rng);
    x[2 * i + 1] = centres[i % 3][1] + noise(rng);
  }

  try {
    emix::FitOptions options;
    options.n_components = 3;
    options.covariance = emix::Covariance::kFull;
    options.seed = 1;
    const emix::FitReport report = emix::fit(emix::DataView::host(x.data(), n, 2), options);
    std::printf("emix %s: %s, %d iterations, mean log-likelihood %.6f\n", emix::version(),
                report.engine.c_str(), report.n_iter, report.mean_log_likelihood);

    int found = 0;
    for (const auto& c : centres) {
      for (int k = 0; k < 3; ++k) {
        const double dx = report.model.means[2 * k] - c[0];
        const double dy = report.model.means[2 * k + 1] - c[1];
        if (std::sqrt(dx * dx + dy * dy) < 0.2) {
          ++found;
          break;
        }
      }
    }
    emix::io::write_model("fit_cpp_model.json", report.model, &report);
    const emix::Model back = emix::io::read_model("fit_cpp_model.json");
    const double again = emix::score(back, emix::DataView::host(x.data(), n, 2));
    std::printf("centres found: %d of 3; score of the model read back: %.6f\n", found, again);
    return found == 3 && std::abs(again - report.mean_log_likelihood) < 1e-9 ? 0 : 1;
  } catch (const emix::Error& e) {
    std::fprintf(stderr, "emix: %s\n", e.what());
    return 1;
  }
}
