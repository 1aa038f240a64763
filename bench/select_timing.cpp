// Model selection against the same fits run one after another (issue 14's CPU target: the grid
// K = 1..16 x {full, diag} on 10^6 x 16 in <= 0.5x the time of the 32 fits), side by side in one
// run on the same data, engine and options. Prints both times, their ratio, and whether every
// candidate's model equals its own fit's.
//
//   select_timing [--n N] [--d D] [--kmax K] [--iters T] [--threads P]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "emix/emix.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t n = 1000000;
  int d = 16, kmax = 16, iters = 20, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (flag == "--n") n = v;
    if (flag == "--d") d = static_cast<int>(v);
    if (flag == "--kmax") kmax = static_cast<int>(v);
    if (flag == "--iters") iters = static_cast<int>(v);
    if (flag == "--threads") threads = static_cast<int>(v);
  }
  // Eight well-separated Gaussian components (what `emix generate` makes).
  emix::Model truth;
  truth.n_components = 8;
  truth.n_features = d;
  truth.covariance = emix::Covariance::kDiag;
  truth.weights.assign(8, 1.0 / 8);
  for (int c = 0; c < 8; ++c) {
    for (int j = 0; j < d; ++j) truth.means.push_back(10.0 * ((c * 7 + j * 3) % 11) / 11.0);
  }
  truth.covariances.assign(8 * d, 0.25);
  const std::vector<double> x = emix::sample(truth, n, 1).x;
  const emix::DataView view = emix::DataView::host(x.data(), n, d);

  emix::SelectOptions grid;
  for (int k = 1; k <= kmax; ++k) grid.n_components.push_back(k);
  grid.covariances = {emix::Covariance::kFull, emix::Covariance::kDiag};
  grid.fit.engine.device = emix::Device::kCpu;
  grid.fit.engine.n_threads = threads;
  grid.fit.max_iter = iters;
  grid.fit.seed = 4;

  auto start = Clock::now();
  const emix::SelectReport report = emix::select(view, grid);
  const double together = seconds_since(start);

  // Where the time goes: initialisation (k-means++ and k-means, one per candidate in both) from
  // the reports; select's rest is its joint EM passes and the ICL's entropy pass per candidate.
  const auto iteration_total = [](const emix::FitReport& r) {
    double s = 0;
    for (double t : r.iteration_seconds) s += t;
    return s;
  };
  double together_init = 0, alone_init = 0, alone_iterations = 0;
  for (const emix::SelectCandidate& c : report.candidates) together_init += c.fit.init_seconds;

  start = Clock::now();
  int equal = 0;
  std::string per_candidate;
  for (const emix::SelectCandidate& c : report.candidates) {
    emix::FitOptions o = grid.fit;
    o.n_components = c.n_components;
    o.covariance = c.covariance;
    const emix::FitReport alone = emix::fit(view, o);
    alone_init += alone.init_seconds;
    alone_iterations += iteration_total(alone);
    equal += alone.model.means == c.fit.model.means && alone.n_iter == c.fit.n_iter ? 1 : 0;
    char line[160];
    std::snprintf(line, sizeof line,
                  "    K = %2d %-4s  %3d iterations, alone %.1f ms per iteration\n", c.n_components,
                  emix::to_string(c.covariance), alone.n_iter,
                  1e3 * iteration_total(alone) / static_cast<double>(alone.n_iter + 1));
    per_candidate += line;
  }
  const double one_by_one = seconds_since(start);
  std::printf(
      "select: N = %lld, D = %d, K = 1..%d x {full, diag}, max_iter %d, %s\n"
      "  together %.2f s (%d passes), one after another %.2f s, ratio %.3f (target <= 0.5)\n"
      "  candidates equal to their own fit: %d of %zu; best by BIC: K = %d, %s\n",
      static_cast<long long>(n), d, kmax, iters, report.engine.c_str(), together, report.passes,
      one_by_one, together / one_by_one, equal, report.candidates.size(),
      report.candidates[report.best].n_components,
      emix::to_string(report.candidates[report.best].covariance));
  std::printf(
      "  together: initialisation %.2f s, EM passes and ICL %.2f s\n"
      "  one after another: initialisation %.2f s, EM iterations %.2f s, rest %.2f s\n",
      together_init, together - together_init, alone_init, alone_iterations,
      one_by_one - alone_init - alone_iterations);
  std::printf("%s", per_candidate.c_str());
  return 0;
}
