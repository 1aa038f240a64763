// A process forked after emix ran threads: GNU OpenMP's thread pool does not survive fork(),
// and a fit of 2 threads in the child never returned. The child now runs on one thread.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "emix/fit.hpp"

namespace {

TEST(Fork, AChildForkedAfterThreadsFitsOnOneThreadWithTheSameResult) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x(20000 * 4);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) + (i / 4 % 2 == 0 ? 0.0 : 6.0);
  emix::FitOptions o;
  o.n_components = 3;
  o.engine.device = emix::Device::kCpu;
  o.engine.n_threads = 2;
  const emix::DataView view = emix::DataView::host(x.data(), 20000, 4);
  const emix::FitReport parent = emix::fit(view, o);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(60);  // a hung child ends here, by SIGALRM, instead of hanging the test
    const emix::FitReport again = emix::fit(view, o);
    // Results never depend on the number of threads: bitwise the parent's.
    _exit(again.log_likelihood == parent.log_likelihood && again.model.means == parent.model.means
              ? 0
              : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                                 << " (14, SIGALRM: its fit hung)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's fit differed from the parent's";
}

}  // namespace
