// OMP_THREAD_LIMIT caps every OpenMP team, so a fit asked for more threads runs on the limit: the
// report said "cpu (2 threads, ...)" of a fit that ran on one. ctest runs this test again under
// OMP_THREAD_LIMIT=1 (thread_limit in tests/CMakeLists.txt), where it bites.
#include <gtest/gtest.h>
#include <omp.h>

#include <string>
#include <vector>

#include "emix/fit.hpp"

namespace {

TEST(ThreadLimit, AFitRunsAndReportsNoMoreThreadsThanTheLimit) {
  const int limit = omp_get_thread_limit();
  if (limit > 8) GTEST_SKIP() << "no OMP_THREAD_LIMIT set (ctest's thread_limit sets 1)";
  const int rows = 100000, cols = 8;
  std::vector<double> x(static_cast<std::size_t>(rows) * cols);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 2654435761u) % 1000);
  emix::FitOptions options;
  options.n_components = 4;
  options.max_iter = 3;
  options.engine.device = emix::Device::kCpu;
  options.engine.n_threads = limit + 3;
  const emix::FitReport report = emix::fit(emix::DataView::host(x.data(), rows, cols), options);
  const std::string expected =
      "cpu (" + std::to_string(limit) + (limit == 1 ? " thread, " : " threads, ");
  EXPECT_EQ(report.engine.rfind(expected, 0), 0u) << report.engine;
}

}  // namespace
