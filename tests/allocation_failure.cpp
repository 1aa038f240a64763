// An allocation that fails inside one of the library's parallel regions becomes a std::bad_alloc
// from the call, not std::terminate: an exception may not leave an OpenMP region, and one that
// did ended the caller's process (a Python session, an MPI job) where it should have had an
// error to handle. This program replaces operator new so that, when armed, the n-th allocation
// made inside an active parallel region throws, for n = 0, 1, ... until a call makes no more
// allocations there; every call must then either succeed or throw std::bad_alloc. A run that
// regresses dies (a signal), which CTest reports as a failure.
//
// Its own program: the replacement operator new serves the whole process, and the sanitizers'
// runtimes replace it too (scripts/sanitize leaves this test out).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "emix/fit.hpp"

namespace {

// Allocations in parallel regions left before the one that fails; negative: disarmed.
std::atomic<long> g_countdown{-1};
std::atomic<long> g_injected{0};

bool inject_failure() {
  if (!omp_in_parallel() || g_countdown.load(std::memory_order_relaxed) < 0) return false;
  if (g_countdown.fetch_sub(1) != 0) return false;
  g_injected.fetch_add(1);
  return true;
}

}  // namespace

// Eigen's work space comes from malloc. Only large blocks fail: OpenMP's runtime takes small ones
// inside regions too, and ends the process where they fail (libgomp's gomp_malloc).
constexpr std::size_t kSmallestFailingMalloc = std::size_t{64} << 10;

extern "C" void* __libc_malloc(std::size_t size);

extern "C" void* malloc(std::size_t size) {
  if (size >= kSmallestFailingMalloc && inject_failure()) return nullptr;
  return __libc_malloc(size);
}

void* operator new(std::size_t size) {
  if (inject_failure()) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* operator new(std::size_t size, std::align_val_t alignment) {
  if (inject_failure()) throw std::bad_alloc();
  const auto align = static_cast<std::size_t>(alignment);
  // aligned_alloc wants a multiple of the alignment; the default operator delete frees with free.
  if (void* p = std::aligned_alloc(align, (size + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}

namespace {

constexpr int kRows = 100000, kCols = 8;

std::vector<double> clustered_rows() {
  std::vector<double> x(static_cast<std::size_t>(kRows) * kCols);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t row = i / kCols;
    x[i] = static_cast<double>((i * 2654435761u) % 1000) / 1000.0 +
           10.0 * static_cast<double>(row % 4);
  }
  return x;
}

// Calls `call` with the n-th parallel allocation failing, n = 0, 1, ..., until it makes fewer
// than n + 1; returns how many calls saw an injected failure.
int fail_each_parallel_allocation(const std::function<void()>& call) {
  constexpr long kMostTries = 400;  // a call makes a few per region (work space per thread)
  int failures = 0;
  for (long n = 0; n < kMostTries; ++n) {
    g_injected.store(0);
    g_countdown.store(n);
    bool threw = false;
    try {
      call();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    g_countdown.store(-1);
    if (g_injected.load() == 0) {
      EXPECT_FALSE(threw);
      return failures;
    }
    // An injected failure is reported, or handled (none is, today): never lost in a result.
    EXPECT_TRUE(threw) << "allocation " << n << " failed, and the call returned normally";
    ++failures;
  }
  ADD_FAILURE() << "more than " << kMostTries << " allocations in parallel regions";
  return failures;
}

emix::FitOptions two_thread_fit(int k, emix::Covariance covariance) {
  emix::FitOptions options;
  options.n_components = k;
  options.covariance = covariance;
  options.max_iter = 3;
  options.engine.device = emix::Device::kCpu;
  options.engine.n_threads = 2;  // parallel regions whatever the machine's cores
  return options;
}

class AllocationFailure : public ::testing::TestWithParam<emix::Covariance> {};

TEST_P(AllocationFailure, InAFitIsAnExceptionOfTheCall) {
  const std::vector<double> x = clustered_rows();
  const emix::DataView view = emix::DataView::host(x.data(), kRows, kCols);
  const emix::FitOptions options = two_thread_fit(4, GetParam());
  const int failures = fail_each_parallel_allocation([&] { emix::fit(view, options); });
  EXPECT_GT(failures, 0) << "no allocation in a parallel region: the test tests nothing";
}

TEST_P(AllocationFailure, InAnEvaluationIsAnExceptionOfTheCall) {
  const std::vector<double> x = clustered_rows();
  const emix::DataView view = emix::DataView::host(x.data(), kRows, kCols);
  const emix::FitOptions options = two_thread_fit(4, GetParam());
  const emix::Model model = emix::fit(view, options).model;
  const int failures =
      fail_each_parallel_allocation([&] { emix::score_samples(model, view, options.engine); });
  EXPECT_GT(failures, 0) << "no allocation in a parallel region: the test tests nothing";
}

INSTANTIATE_TEST_SUITE_P(EveryCovariance, AllocationFailure,
                         ::testing::Values(emix::Covariance::kFull, emix::Covariance::kDiag,
                                           emix::Covariance::kSpherical, emix::Covariance::kTied),
                         [](const ::testing::TestParamInfo<emix::Covariance>& param_info) {
                           return std::string(emix::to_string(param_info.param));
                         });

}  // namespace

// A covariance of 128 features or more is inverted panel by panel on the threads
// (cholesky.cpp's lower_triangular_inverse), Eigen's solve taking its work space from the heap.
TEST(AllocationFailure, InFactoringAWideCovarianceIsAnExceptionOfTheCall) {
  const int d = 300;
  emix::Model model;
  model.n_components = 1;
  model.n_features = d;
  model.weights = {1.0};
  model.means.assign(d, 0.0);
  model.covariances.assign(static_cast<std::size_t>(d) * d, 0.0);
  for (int a = 0; a < d; ++a) {
    for (int b = 0; b < d; ++b) {
      model.covariances[static_cast<std::size_t>(a) * d + b] = a == b ? 2.0 : 0.5;
    }
  }
  std::vector<double> x(static_cast<std::size_t>(20) * d);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i % 13) / 13.0;
  emix::EngineOptions engine;
  engine.device = emix::Device::kCpu;
  engine.n_threads = 2;
  const int failures = fail_each_parallel_allocation(
      [&] { emix::score_samples(model, emix::DataView::host(x.data(), 20, d), engine); });
  EXPECT_GT(failures, 0) << "no allocation in a parallel region: the test tests nothing";
}
