// Initialisation: k-means++ seeding, k-means, and the M-step from their labels, on a sample of
// at most FitOptions::init_max_rows rows.
//
// Speed: the rows are cut into blocks of a fixed size (kBlockRows) that the engine's threads
// share (FitOptions::engine.n_threads); each block's sums are kept apart and added in block
// order, so that the result is bitwise the same for every thread count. Eigen starts no threads
// of its own (EIGEN_DONT_PARALLELIZE, CMakeLists.txt: its parallel GEMM on these tall, thin
// matrices took seconds where a block loop takes milliseconds). Every thread runs with FTZ / DAZ
// set and restored after (cpu/fp_environment.hpp), like the engine's.
#include "core/initialize.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <unordered_set>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/interrupt.hpp"
#include "core/maximize.hpp"
#include "core/prepared_model.hpp"
#include "core/threads.hpp"
#include "core/unroll.hpp"
#include "cpu/cpu_kernels.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows per block: small enough that 131,072 rows give every thread several blocks, large enough
// that a block's GEMM runs at speed.
constexpr Eigen::Index kBlockRows = 2048;

Eigen::Index block_count(Eigen::Index n) { return (n + kBlockRows - 1) / kBlockRows; }

// Calls body(block, begin, rows) for blocks [first, last) of n rows, each with FTZ / DAZ set for
// the duration, on up to `threads` threads: as many as rows x work_per_row (multiply-adds) keep
// busy (threads_for_work), and no more than there are blocks. The caller's InterruptCheck runs
// between blocks: one pass of an initialisation (the M-step of 131,072 random assignments, say)
// can take seconds.
template <typename Body>
void for_each_block(Eigen::Index n, Eigen::Index first, Eigen::Index last, int threads,
                    double work_per_row, const Body& body) {
  const Eigen::Index rows = std::min(n, last * kBlockRows) - first * kBlockRows;
  const int used = static_cast<int>(std::min<Eigen::Index>(
      last - first, threads_for_work(static_cast<double>(rows) * work_per_row, threads)));
  std::exception_ptr interrupted;  // the thread that holds the caller's check writes it
  std::exception_ptr failure;  // a block's error (std::bad_alloc), from the thread that claimed it
  std::atomic<bool> stop{false}, failed{false};
#pragma omp parallel num_threads(used) if (used > 1)
  {
    const cpu::ScopedFlushDenormals flush;
#pragma omp for schedule(dynamic, 1)
    for (Eigen::Index b = first; b < last; ++b) {
      if (stop.load(std::memory_order_relaxed)) continue;
      if (detail::interrupt_requested(interrupted)) {
        stop.store(true, std::memory_order_relaxed);
        continue;
      }
      const Eigen::Index begin = b * kBlockRows;
      try {
        body(b, begin, std::min(kBlockRows, n - begin));
      } catch (...) {  // no exception may leave a parallel region: it would end the process
        if (!failed.exchange(true)) failure = std::current_exception();
        stop.store(true, std::memory_order_relaxed);
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (interrupted) std::rethrow_exception(interrupted);
}

template <typename Body>
void for_each_block(Eigen::Index n, int threads, double work_per_row, const Body& body) {
  for_each_block(n, 0, block_count(n), threads, work_per_row, body);
}

// total (size values) = the sum, in block order, of body(begin, rows, sums) over the blocks of n
// rows, each block's sums zeroed and kept apart until then: bitwise the same for every thread
// count. The blocks run a wave at a time, as many as 64 MiB of sums hold (one per thread at
// least): a full scatter at D = 2048 is 32 MiB a component, and one set of sums per block of all
// the rows would have been K D / 2048 times the data's size.
template <typename Body>
void sum_blocks_in_order(Eigen::Index n, int threads, double work_per_row, std::size_t size,
                         double* total, const Body& body) {
  constexpr std::size_t kWaveBytes = std::size_t{64} << 20;
  const Eigen::Index blocks = block_count(n);
  const Eigen::Index wave = std::min(
      blocks, std::max<Eigen::Index>(
                  threads, static_cast<Eigen::Index>(
                               kWaveBytes / std::max<std::size_t>(1, size * sizeof(double)))));
  std::vector<double> partial(static_cast<std::size_t>(wave) * size);
  for (Eigen::Index first = 0; first < blocks; first += wave) {
    const Eigen::Index last = std::min(blocks, first + wave);
    std::fill(partial.begin(), partial.end(), 0.0);
    for_each_block(n, first, last, threads, work_per_row,
                   [&](Eigen::Index b, Eigen::Index begin, Eigen::Index rows) {
                     body(begin, rows, &partial[static_cast<std::size_t>(b - first) * size]);
                   });
    for (Eigen::Index b = first; b < last; ++b) {
      const double* sums = &partial[static_cast<std::size_t>(b - first) * size];
      for (std::size_t i = 0; i < size; ++i) total[i] += sums[i];
    }
  }
}

// One block's statistics under one-hot responsibilities (labels): each row adds to its own
// component only. Diag and spherical add row by row. A full scatter gathers each component's
// rows (in row order) and adds their products as one GEMM, in the CPU's own instruction set
// (cpu::DenseKernels): a rank-one update per row ran at a tenth of that speed, 40 % of a fit's
// time at D = 2048.
void one_hot_statistics(const RowMatrix& x, const Eigen::VectorXd& w, const RowMatrix& centres,
                        const std::vector<int>& labels, const StatisticsLayout& layout,
                        Eigen::Index begin, Eigen::Index rows, double* stats) {
  const int k = static_cast<int>(centres.rows()), d = static_cast<int>(x.cols());
  double* nk = stats + layout.nk();
  const auto sum_of = [&](int c) {
    return Eigen::Map<Eigen::RowVectorXd>(stats + layout.s() + static_cast<std::size_t>(c) * d, d);
  };
  const auto q_of = [&](int c) {
    return stats + layout.q() + static_cast<std::size_t>(c) * layout.q_per_component();
  };
  const auto label = [&](Eigen::Index i) { return labels[static_cast<std::size_t>(i)]; };
  if (!layout.full_scatter) {
    for (Eigen::Index i = begin; i < begin + rows; ++i) {
      const int c = label(i);
      const Eigen::RowVectorXd u = x.row(i) - centres.row(c);
      nk[c] += w[i];
      sum_of(c) += w[i] * u;
      if (layout.has_scatter) {
        Eigen::Map<Eigen::RowVectorXd>(q_of(c), d) += w[i] * u.array().square().matrix();
      }
    }
    return;
  }
  // The block's rows by component (a counting sort, row order kept within each).
  std::vector<Eigen::Index> first(static_cast<std::size_t>(k) + 1, 0);
  for (Eigen::Index i = begin; i < begin + rows; ++i)
    ++first[static_cast<std::size_t>(label(i)) + 1];
  std::partial_sum(first.begin(), first.end(), first.begin());
  std::vector<Eigen::Index> order(static_cast<std::size_t>(rows));
  std::vector<Eigen::Index> next(first.begin(), first.end() - 1);
  for (Eigen::Index i = begin; i < begin + rows; ++i) {
    order[static_cast<std::size_t>(next[static_cast<std::size_t>(label(i))]++)] = i;
  }
  RowMatrix centred, weighted;
  for (int c = 0; c < k; ++c) {
    const Eigen::Index owned = first[c + 1] - first[c];
    centred.resize(owned, d);
    weighted.resize(owned, d);
    for (Eigen::Index r = 0; r < owned; ++r) {
      const Eigen::Index i = order[static_cast<std::size_t>(first[c] + r)];
      centred.row(r) = x.row(i) - centres.row(c);
      weighted.row(r) = w[i] * centred.row(r);
      nk[c] += w[i];
      sum_of(c) += weighted.row(r);
    }
    cpu::dense_kernels().add_transposed_product(weighted.data(), centred.data(), owned, d, q_of(c));
  }
}

int thread_count(const FitOptions& options) { return usable_threads(options.engine.n_threads); }

// An empty model of the requested shape, ready for maximize() to fill.
Model blank_model(const FitOptions& options, int d) {
  Model m;
  m.family = options.family;
  m.covariance = options.covariance;
  m.n_components = options.n_components;
  m.n_features = d;
  m.trials = options.family == Family::kBinomial ? options.trials : 1;
  const std::size_t k = static_cast<std::size_t>(options.n_components);
  m.weights.assign(k, 1.0 / static_cast<double>(k));
  if (m.family == Family::kGaussian) {
    m.means.assign(k * d, 0.0);
    m.covariances.assign(m.covariance_size(), 0.0);
    // Valid placeholders for components that stay empty.
    for (std::size_t c = 0; c < k; ++c) {
      switch (m.covariance) {
        case Covariance::kFull:
          for (int j = 0; j < d; ++j) m.covariances[c * d * d + j * d + j] = 1.0;
          break;
        case Covariance::kTied:
          for (int j = 0; j < d; ++j) m.covariances[j * d + j] = 1.0;
          break;
        case Covariance::kDiag:
          for (int j = 0; j < d; ++j) m.covariances[c * d + j] = 1.0;
          break;
        case Covariance::kSpherical:
          m.covariances[c] = 1.0;
          break;
      }
    }
  } else {
    m.probabilities.assign(k * d, 0.5);
  }
  return m;
}

// One M-step on host rows, given either their responsibilities (resp, n x K) or their labels (a
// component per row, resp empty); each component's statistics centred on its own weighted mean
// (the rows' overall one for a component without weight), summed block by block
// (for_each_block) and the blocks added in order. About one centre for all, a component far from
// it lost eps |mu_k - centre|^2 of its covariance: 100 duplicated rows 1e4 from 500 others
// started 30 % off, and from 2e4 singular.
Model maximize_from_assignments(const RowMatrix& x, const Eigen::VectorXd& w, const RowMatrix& resp,
                                const std::vector<int>& labels, const FitOptions& options,
                                std::vector<int>* empty) {
  const int k = options.n_components;
  const int d = static_cast<int>(x.cols());
  const Eigen::Index n = x.rows();
  Model model = blank_model(options, d);
  PreparedModel frame;
  frame.family = options.family;
  frame.covariance = options.covariance;
  frame.k = k;
  frame.d = d;
  frame.layout = StatisticsLayout(options.family, options.covariance, k, d);
  const StatisticsLayout& layout = frame.layout;

  frame.centres.assign(static_cast<std::size_t>(k) * d, 0.0);
  RowMatrix centres = RowMatrix::Zero(k, d);
  if (layout.has_scatter) {
    // Each component's weight and weighted sum, block by block, then its mean.
    const Eigen::Index per = k + std::int64_t{k} * d;
    std::vector<double> sums(static_cast<std::size_t>(block_count(n) * per), 0.0);
    for_each_block(n, thread_count(options), static_cast<double>(per),
                   [&](Eigen::Index b, Eigen::Index begin, Eigen::Index rows) {
                     double* nk = &sums[static_cast<std::size_t>(b * per)];
                     Eigen::Map<RowMatrix> sx(nk + k, k, d);
                     if (resp.size() == 0) {
                       for (Eigen::Index i = 0; i < rows; ++i) {
                         const int c = labels[static_cast<std::size_t>(begin + i)];
                         nk[c] += w[begin + i];
                         sx.row(c) += w[begin + i] * x.row(begin + i);
                       }
                       return;
                     }
                     const RowMatrix g = resp.middleRows(begin, rows).array().colwise() *
                                         w.segment(begin, rows).array();
                     Eigen::Map<Eigen::RowVectorXd>(nk, k) = g.colwise().sum();
                     sx = g.transpose() * x.middleRows(begin, rows);
                   });
    Eigen::RowVectorXd nk = Eigen::RowVectorXd::Zero(k);
    RowMatrix sx = RowMatrix::Zero(k, d);
    for (Eigen::Index b = 0; b < block_count(n); ++b) {
      nk += Eigen::Map<const Eigen::RowVectorXd>(&sums[static_cast<std::size_t>(b * per)], k);
      sx += Eigen::Map<const RowMatrix>(&sums[static_cast<std::size_t>(b * per + k)], k, d);
    }
    const Eigen::RowVectorXd overall = (w.transpose() * x) / w.sum();
    for (int c = 0; c < k; ++c) centres.row(c) = nk[c] > 0 ? (sx.row(c) / nk[c]).eval() : overall;
    Eigen::Map<RowMatrix>(frame.centres.data(), k, d) = centres;
  }

  const std::size_t size = layout.size();
  std::vector<double> stats(size, 0.0);
  sum_blocks_in_order(
      n, thread_count(options), static_cast<double>(size), size, stats.data(),
      [&](Eigen::Index begin, Eigen::Index rows, double* block_stats) {
        const auto q_of = [&](int c) {
          return block_stats + layout.q() + static_cast<std::size_t>(c) * layout.q_per_component();
        };
        if (resp.size() == 0) {
          one_hot_statistics(x, w, centres, labels, layout, begin, rows, block_stats);
          return;
        }
        const RowMatrix g =
            resp.middleRows(begin, rows).array().colwise() * w.segment(begin, rows).array();
        Eigen::Map<Eigen::RowVectorXd>(&block_stats[layout.nk()], k) = g.colwise().sum();
        if (!layout.has_scatter) {  // Bernoulli / binomial: centres 0
          Eigen::Map<RowMatrix>(&block_stats[layout.s()], k, d) =
              g.transpose() * x.middleRows(begin, rows);
          return;
        }
        for (int c = 0; c < k; ++c) {
          const RowMatrix xc = x.middleRows(begin, rows).rowwise() - centres.row(c);
          Eigen::Map<Eigen::RowVectorXd>(&block_stats[layout.s() + static_cast<std::size_t>(c) * d],
                                         d) = g.col(c).transpose() * xc;
          if (layout.full_scatter) {
            const RowMatrix weighted = xc.array().colwise() * g.col(c).array();
            cpu::dense_kernels().add_transposed_product(weighted.data(), xc.data(), rows, d,
                                                        q_of(c));
          } else {
            Eigen::Map<Eigen::RowVectorXd>(q_of(c), d) =
                g.col(c).transpose() * xc.array().square().matrix();
          }
        }
      });
  stats[StatisticsLayout::kWeightSum] = w.sum();
  MaximizeOptions mopt;
  mopt.reg_covar = options.reg_covar;
  mopt.prob_epsilon = options.prob_epsilon;
  return maximize(model, frame, stats.data(), mopt, empty);
}

// Components whose starting covariance is singular (reg_covar 0, and their rows coincide in
// some direction: duplicated rows, say) start from the sample's overall covariance instead, with
// a note. fit() would otherwise refuse the start before its first iteration, where a component
// that collapses later is re-seeded. If the overall covariance is singular too, the data lie in
// a subspace and the fit's own error says so.
void repair_singular_start(Model& m, const RowMatrix& x, const Eigen::VectorXd& w,
                           const FitOptions& o, std::vector<std::string>* notes) {
  if (m.family != Family::kGaussian) return;
  // What a fit would re-seed (collapsed_components), the tied covariance as component 0.
  const auto collapsed = [&o](const Model& model) {
    try {
      return collapsed_components(model, o.reg_covar);
    } catch (const NumericalError&) {
      return std::vector<int>{0};
    }
  };
  const std::vector<int> bad = collapsed(m);
  if (bad.empty()) return;
  FitOptions single = o;
  single.n_components = 1;
  const Model overall =
      maximize_from_assignments(x, w, RowMatrix::Ones(x.rows(), 1), {}, single, nullptr);
  if (!collapsed(overall).empty()) return;
  // A tied model's one covariance is every component's: each copy lands on it.
  const std::size_t per = m.covariance == Covariance::kTied ? 0 : m.covariance_block_size();
  std::string which;
  for (const int c : bad) {
    std::copy(overall.covariances.begin(), overall.covariances.end(),
              m.covariances.begin() + static_cast<std::ptrdiff_t>(c * per));
    which += (which.empty() ? "" : ", ") + std::to_string(c);
  }
  if (notes) {
    notes->push_back(
        std::string("initialisation (") + to_string(m.covariance) + "): " +
        (m.covariance == Covariance::kTied ? "the tied covariance" : "component(s) " + which) +
        " had a singular covariance (one row, or rows that coincide, and reg_covar 0); started "
        "from the data's overall covariance");
  }
}

// Rows drawn with probability weights[i] / total, as draw_weighted draws them (the same row for
// the same random number), from the weights' running sums taken once: a greedy k-means++ step
// draws several candidates from the same weights.
class WeightedRows {
 public:
  explicit WeightedRows(const Eigen::VectorXd& weights) : running_(weights.size()) {
    double sum = 0;
    for (Eigen::Index i = 0; i < weights.size(); ++i) running_[i] = sum += weights[i];
  }
  std::int64_t draw(double total, std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> uniform(0.0, total);
    const double target = uniform(rng);
    // The first running sum above the target: its row's weight is positive.
    const double* at = std::upper_bound(running_.data(), running_.data() + running_.size(), target);
    if (at != running_.data() + running_.size()) return at - running_.data();
    // Rounding put the target at or past the last sum: the last row of positive weight.
    for (Eigen::Index i = running_.size() - 1; i > 0; --i) {
      if (running_[i] > running_[i - 1]) return i;
    }
    return 0;
  }

 private:
  Eigen::VectorXd running_;
};

std::int64_t draw_weighted(const Eigen::VectorXd& weights, double total, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, total);
  const double target = uniform(rng);
  double sum = 0;
  for (Eigen::Index i = 0; i < weights.size(); ++i) {
    sum += weights[i];
    if (sum > target && weights[i] > 0) return i;
  }
  for (Eigen::Index i = weights.size() - 1; i >= 0; --i) {
    if (weights[i] > 0) return i;
  }
  return 0;
}

// Squared distance of every row to one centre (n), rows and centre centred alike: each row's
// squares summed over j = 0..D-1 in order, as Eigen's row-wise squaredNorm summed them in the
// default build, but eight rows at a time, so that eight independent sums hide the adds'
// latency (one chain per row took four cycles a feature; k-means++ seeding is K such passes).
// On the calling thread: it is a few milliseconds, and a parallel region per k-means++ step
// cost more than that whenever the cores were shared (each region waits for a thread the OS has
// not scheduled yet).
void distances_to(const RowMatrix& x, const Eigen::RowVectorXd& centre, Eigen::VectorXd& out) {
  const Eigen::Index n = x.rows();
  const int d = static_cast<int>(x.cols());
  const double* rows = x.data();
  const double* c = centre.data();
  out.resize(n);
  constexpr int kRows = 8;
  Eigen::Index i = 0;
  for (; i + kRows <= n; i += kRows) {
    double sum[kRows] = {};
    for (int j = 0; j < d; ++j) {
      for (int r = 0; r < kRows; ++r) {
        const double t = rows[(i + r) * d + j] - c[j];
        sum[r] += t * t;
      }
    }
    for (int r = 0; r < kRows; ++r) out[i + r] = sum[r];
  }
  for (; i < n; ++i) {
    double sum = 0;
    for (int j = 0; j < d; ++j) {
      const double t = rows[i * d + j] - c[j];
      sum += t * t;
    }
    out[i] = sum;
  }
}

// Sum of v in blocks of kBlockRows, the blocks added in order: the same double for every
// thread count.
double blocked_sum(const Eigen::VectorXd& v) {
  double total = 0;
  for (Eigen::Index begin = 0; begin < v.size(); begin += kBlockRows) {
    total += v.segment(begin, std::min(kBlockRows, v.size() - begin)).sum();
  }
  return total;
}

// Where the compiler can, assign_block is compiled for x86-64-v3 and v4 besides the default and
// the loader picks the version the CPU runs (GCC's target_clones): initialisation runs outside
// the engine's dispatched kernels, and the assignment step is most of its time.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && \
    defined(__ELF__)
#define EMIX_CPU_LEVEL_CLONES \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define EMIX_CPU_LEVEL_CLONES
#endif

// Rows whose dot products one register block computes at once: eight chains of dependent
// multiply-adds, enough to keep two FMA units busy at four cycles latency.
constexpr int kAssignRows = 8;

// dots[r * kp + c0 + c] = x_r . centre (c0 + c) for r < R, c < W: every product summed over
// j = 0..D-1 in order, from 0. (GCC fuses each multiply and add into an FMA where the version
// has one, x86-64-v3 and v4, as it did in the loop this replaces: those versions agree bitwise
// with each other, not with the default version.) Each row's W sums are one vector of GCC's
// vector extension, which each version splits into its own registers (one zmm, two ymm or four
// xmm for W = 8): the R x W sums stay in registers, where a loop over all K kept them in memory
// and waited on each sum's store and reload for every feature, and where the auto-vectoriser
// shuffled lanes across rows.
template <int R, int W>
inline __attribute__((always_inline)) void dot_block(const double* x, int d,
                                                     const double* centres_t, int kp, int c0,
                                                     double* dots) {
  typedef double Lanes __attribute__((vector_size(W * sizeof(double))));
  Lanes acc[R];
  EMIX_UNROLL
  for (int r = 0; r < R; ++r) acc[r] = Lanes{};
  for (int j = 0; j < d; ++j) {
    Lanes centre_j;
    std::memcpy(&centre_j, centres_t + static_cast<std::size_t>(j) * kp + c0, sizeof centre_j);
    EMIX_UNROLL
    for (int r = 0; r < R; ++r) acc[r] += x[static_cast<std::size_t>(r) * d + j] * centre_j;
  }
  EMIX_UNROLL
  for (int r = 0; r < R; ++r) {
    std::memcpy(dots + static_cast<std::size_t>(r) * kp + c0, &acc[r], sizeof acc[r]);
  }
}

// dot_block over a block of rows (at most kAssignRows) and all kp centres.
template <int W>
inline __attribute__((always_inline)) void block_dots(const double* x_block, int block, int d,
                                                      const double* centres_t, int kp,
                                                      double* dots) {
  for (int c0 = 0; c0 < kp; c0 += W) {
    if (block == kAssignRows) {
      dot_block<kAssignRows, W>(x_block, d, centres_t, kp, c0, dots);
    } else {
      for (int r = 0; r < block; ++r) {
        dot_block<1, W>(x_block + static_cast<std::size_t>(r) * d, d, centres_t, kp, c0,
                        dots + static_cast<std::size_t>(r) * kp);
      }
    }
  }
}

// One k-means assignment step on a block of rows: each row's nearest centre (lowest index on
// ties) by |c|^2 - 2 x.c, its squared distance |x|^2 - 2 x.c + |c|^2 (clamped at 0 against
// rounding) into own, and, when add_sums, w x and w added to its centre's sums (sums K x D
// row-major, counts K, both zeroed first). centres_t is D x kp, the K centres' columns padded
// with zeros to kp, a multiple of W; dots holds kAssignRows x kp. Returns whether any label
// changed.
template <int W>
EMIX_CPU_LEVEL_CLONES bool assign_block(const double* x, const double* norms, const double* w,
                                        std::int64_t rows, int d, const double* centres_t,
                                        const double* centre_norms, int k, int kp, bool add_sums,
                                        double* dots, int* labels, double* own, double* sums,
                                        double* counts) {
  bool changed = false;
  if (add_sums) {
    std::fill(sums, sums + static_cast<std::size_t>(k) * d, 0.0);
    std::fill(counts, counts + k, 0.0);
  }
  for (std::int64_t first = 0; first < rows; first += kAssignRows) {
    const int block = static_cast<int>(std::min<std::int64_t>(kAssignRows, rows - first));
    const double* x_block = x + first * d;
    block_dots<W>(x_block, block, d, centres_t, kp, dots);
    for (int r = 0; r < block; ++r) {
      const std::int64_t i = first + r;
      const double* row_dots = dots + static_cast<std::size_t>(r) * kp;
      int best = 0;
      double best_value = centre_norms[0] - 2.0 * row_dots[0];
      for (int c = 1; c < k; ++c) {
        const double value = centre_norms[c] - 2.0 * row_dots[c];
        if (value < best_value) {
          best = c;
          best_value = value;
        }
      }
      own[i] = std::max(norms[i] + best_value, 0.0);
      if (labels[i] != best) changed = true;
      labels[i] = best;
      if (add_sums) {
        const double* row = x + i * d;
        double* sum = sums + static_cast<std::size_t>(best) * d;
        for (int j = 0; j < d; ++j) sum[j] += w[i] * row[j];
        counts[best] += w[i];
      }
    }
  }
  return changed;
}

// One greedy k-means++ step on a block of rows: for each of `count` candidates (columns of
// candidates_t, D x kp as in assign_block), nearer[t * stride + i] = min(nearest_i,
// |x_i - c_t|^2), the squared distance taken as assign_block takes it, and potentials[t] += w_i
// times that, row by row.
template <int W>
EMIX_CPU_LEVEL_CLONES void seed_block(const double* x, const double* norms, const double* w,
                                      const double* nearest, std::int64_t rows, int d,
                                      const double* candidates_t, const double* candidate_norms,
                                      int count, int kp, double* dots, double* nearer,
                                      std::int64_t stride, double* potentials) {
  for (std::int64_t first = 0; first < rows; first += kAssignRows) {
    const int block = static_cast<int>(std::min<std::int64_t>(kAssignRows, rows - first));
    const double* x_block = x + first * d;
    block_dots<W>(x_block, block, d, candidates_t, kp, dots);
    for (int r = 0; r < block; ++r) {
      const std::int64_t i = first + r;
      const double* row_dots = dots + static_cast<std::size_t>(r) * kp;
      for (int t = 0; t < count; ++t) {
        const double distance = std::max(norms[i] + candidate_norms[t] - 2.0 * row_dots[t], 0.0);
        const double least = std::min(nearest[i], distance);
        nearer[t * stride + i] = least;
        potentials[t] += w[i] * least;
      }
    }
  }
}

std::vector<int> lloyd(const RowMatrix& x, const Eigen::VectorXd& norms, const Eigen::VectorXd& w,
                       RowMatrix centres, int iterations, int threads);

// Weighted greedy k-means++ seeding, then Lloyd iterations; returns labels. Each step draws
// 2 + ln K candidates by their weighted squared distance to the nearest centre and keeps the one
// that leaves the least total, as scikit-learn's KMeans seeds (Arthur and Vassilvitskii's
// greedy variant): with one candidate a step, 8 of 20 seeds reached the best fit of 16
// components in 16-D (2e5 rows of `emix generate`), greedy 20 of 20.
std::vector<int> kmeans(const RowMatrix& x, const Eigen::VectorXd& w, int k, int iterations,
                        int threads, std::mt19937_64& rng) {
  const Eigen::Index n = x.rows(), d = x.cols();
  const Eigen::VectorXd norms = x.rowwise().squaredNorm();
  const int candidates = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  const int seed_width = candidates <= 4 ? 4 : 8;
  const int seed_kp = (candidates + seed_width - 1) / seed_width * seed_width;
  const auto seed = seed_width == 4 ? seed_block<4> : seed_block<8>;
  RowMatrix centres(k, d);
  centres.row(0) = x.row(draw_weighted(w, blocked_sum(w), rng));
  Eigen::VectorXd nearest(n);
  distances_to(x, centres.row(0), nearest);
  RowMatrix candidates_t = RowMatrix::Zero(d, seed_kp);  // D x kp, as assign_block's centres
  Eigen::VectorXd candidate_norms(seed_kp);
  std::vector<std::int64_t> picks(static_cast<std::size_t>(candidates));
  // seed_block's, per candidate (none for one component: no steps).
  Eigen::VectorXd nearer(k > 1 ? static_cast<Eigen::Index>(candidates) * n : 0);
  for (int c = 1; c < k; ++c) {
    detail::poll_interrupt();  // a step is one pass over the sample: K of them can take seconds
    const Eigen::VectorXd score = nearest.cwiseProduct(w);
    const double total = blocked_sum(score);
    const WeightedRows drawn(total > 0 ? score : w);
    const double drawn_total = total > 0 ? total : blocked_sum(w);
    for (int t = 0; t < candidates; ++t) {
      picks[t] = drawn.draw(drawn_total, rng);
      candidates_t.col(t) = x.row(picks[t]).transpose();
      candidate_norms[t] = norms[picks[t]];
    }
    std::vector<double> potentials(static_cast<std::size_t>(candidates), 0.0);
    sum_blocks_in_order(
        n, threads, static_cast<double>(candidates * d), potentials.size(), potentials.data(),
        [&](Eigen::Index begin, Eigen::Index rows, double* sums) {
          std::vector<double> dots(static_cast<std::size_t>(kAssignRows) * seed_kp);
          seed(x.row(begin).data(), norms.data() + begin, w.data() + begin, nearest.data() + begin,
               rows, static_cast<int>(d), candidates_t.data(), candidate_norms.data(), candidates,
               seed_kp, dots.data(), nearer.data() + begin, n, sums);
        });
    const int best = static_cast<int>(std::min_element(potentials.begin(), potentials.end()) -
                                      potentials.begin());
    centres.row(c) = x.row(picks[best]);
    nearest = nearer.segment(static_cast<Eigen::Index>(best) * n, n);
  }
  return lloyd(x, norms, w, std::move(centres), iterations, threads);
}

// Up to `iterations` Lloyd steps from `centres` (K x D, in x's coordinates; norms: x's squared row
// norms); returns each row's nearest centre after them (with 0 steps, each row's nearest seed).
std::vector<int> lloyd(const RowMatrix& x, const Eigen::VectorXd& norms, const Eigen::VectorXd& w,
                       RowMatrix centres, int iterations, int threads) {
  const Eigen::Index n = x.rows(), d = x.cols();
  const int k = static_cast<int>(centres.rows());
  std::vector<int> labels(static_cast<std::size_t>(n), -1);
  Eigen::VectorXd own(n);  // squared distance of each row to its own centre
  const Eigen::Index blocks = block_count(n);
  std::vector<char> block_changed(static_cast<std::size_t>(blocks));
  RowMatrix block_sums(blocks * k, d);  // block b's K x D sums in rows b K .. b K + K - 1
  RowMatrix block_counts(blocks, k);
  // Centres in lanes of 4 (K <= 4) or 8, the last lanes padded with zero centres.
  const int width = k <= 4 ? 4 : 8;
  const int kp = (k + width - 1) / width * width;
  RowMatrix centres_t = RowMatrix::Zero(d, kp);  // D x kp, row-major
  for (int it = 0; it <= iterations; ++it) {
    detail::poll_interrupt();
    const Eigen::VectorXd centre_norms = centres.rowwise().squaredNorm();
    const bool last = it == iterations;
    centres_t.leftCols(k) = centres.transpose();
    for_each_block(n, threads, static_cast<double>(k * d),
                   [&](Eigen::Index b, Eigen::Index begin, Eigen::Index rows) {
                     std::vector<double> dots(static_cast<std::size_t>(kAssignRows) * kp);
                     const auto assign = width == 4 ? assign_block<4> : assign_block<8>;
                     block_changed[static_cast<std::size_t>(b)] =
                         assign(x.row(begin).data(), norms.data() + begin, w.data() + begin, rows,
                                static_cast<int>(d), centres_t.data(), centre_norms.data(), k, kp,
                                !last, dots.data(), labels.data() + begin, own.data() + begin,
                                block_sums.row(b * k).data(), block_counts.row(b).data());
                   });
    const bool changed =
        std::find(block_changed.begin(), block_changed.end(), 1) != block_changed.end();
    if (!changed || last) break;
    RowMatrix sums = RowMatrix::Zero(k, d);
    Eigen::RowVectorXd counts = Eigen::RowVectorXd::Zero(k);
    for (Eigen::Index b = 0; b < blocks; ++b) {
      sums += block_sums.middleRows(b * k, k);
      counts += block_counts.row(b);
    }
    for (int c = 0; c < k; ++c) {
      if (counts[c] > 0) {
        centres.row(c) = sums.row(c) / counts[c];
      } else {
        // An empty cluster takes the row farthest from its own centre.
        Eigen::Index far = 0;
        (w.array() > 0).select(own, -1.0).maxCoeff(&far);
        centres.row(c) = x.row(far);
        own[far] = 0;
        labels[static_cast<std::size_t>(far)] = c;
      }
    }
  }
  return labels;
}

void note_empty(const std::vector<int>& empty, std::vector<std::string>* notes) {
  if (!empty.empty() && notes) {
    // scikit-learn's k-means says "Number of distinct clusters (1) found smaller than
    // n_clusters (2). Possibly due to duplicate points in X": the usual cause.
    notes->push_back("initialisation left " + std::to_string(empty.size()) +
                     " component(s) empty (fewer distinct rows than components? rows that "
                     "coincide leave a component none); they start from placeholder parameters");
  }
}

}  // namespace

std::vector<std::int64_t> sample_rows(std::int64_t n_rows, std::int64_t count, std::mt19937_64& rng,
                                      RowSampler sampler) {
  // Floyd's algorithm, the rows then in increasing order for a sequential gather. The rows
  // taken are flags, a bit per row, where the rows number at most 64 times the sample: then the
  // flags take no more memory than the picks, and reading them in order replaces a sort (the
  // two took a sixth of a K = 2 initialisation on 10^6 rows). Beyond, a hash set of the
  // sample's size: 10^9 rows would need 125 MB of flags. The same picks either way.
  std::vector<std::int64_t> rows;
  rows.reserve(static_cast<std::size_t>(count));
  const bool flags =
      sampler == RowSampler::kFlags || (sampler == RowSampler::kAuto && n_rows / 64 <= count);
  if (flags) {
    std::vector<std::uint64_t> taken(static_cast<std::size_t>((n_rows + 63) / 64), 0);
    const auto is_taken = [&taken](std::int64_t t) {
      return (taken[static_cast<std::size_t>(t >> 6)] >> (t & 63)) & 1;
    };
    for (std::int64_t j = n_rows - count; j < n_rows; ++j) {
      std::uniform_int_distribution<std::int64_t> pick(0, j);
      std::int64_t t = pick(rng);
      if (is_taken(t)) t = j;
      taken[static_cast<std::size_t>(t >> 6)] |= std::uint64_t{1} << (t & 63);
    }
    for (std::size_t word = 0; word < taken.size(); ++word) {
      for (std::uint64_t bits = taken[word]; bits != 0; bits &= bits - 1) {
        rows.push_back(static_cast<std::int64_t>(word * 64) + __builtin_ctzll(bits));
      }
    }
    return rows;
  }
  std::unordered_set<std::int64_t> taken;
  taken.reserve(static_cast<std::size_t>(count));
  for (std::int64_t j = n_rows - count; j < n_rows; ++j) {
    std::uniform_int_distribution<std::int64_t> pick(0, j);
    std::int64_t t = pick(rng);
    if (taken.count(t) != 0) t = j;
    taken.insert(t);
    rows.push_back(t);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::vector<InitialModel> initialize_each(Engine& engine, std::int64_t n_rows, int n_features,
                                          const WeightGather& gather_weights,
                                          const FitOptions& options,
                                          const std::vector<Covariance>& covariances,
                                          std::mt19937_64& rng, std::vector<std::string>* notes) {
  const int k = options.n_components;
  // The rows initialisation looks at: all of them, or a uniform sample without replacement.
  std::vector<std::int64_t> rows;
  if (n_rows <= options.init_max_rows) {
    rows.resize(static_cast<std::size_t>(n_rows));
    std::iota(rows.begin(), rows.end(), std::int64_t{0});
  } else {
    rows = sample_rows(n_rows, options.init_max_rows, rng);
    if (notes) {
      notes->push_back("initialisation used a random sample of " + std::to_string(rows.size()) +
                       " of the " + std::to_string(n_rows) + " rows");
    }
  }
  const Eigen::Index n = static_cast<Eigen::Index>(rows.size());
  RowMatrix x(n, n_features);
  engine.gather_rows(rows.data(), n, x.data());
  Eigen::VectorXd w(n);
  gather_weights(rows.data(), n, w.data());
  // Only the weights' ratios matter here. Weights near double's limit (3e305 each, their sum
  // finite) overflowed k-means++'s weighted distances and the sums of weighted rows, and the
  // start came out singular; scaled by a power of two the arithmetic is exact (the same draws and
  // centres as unscaled weights would give without overflow), but for weights more than 2^1000
  // below the largest, which become 0 (and are counted so below).
  if (w.size() > 0 && w.maxCoeff() > std::ldexp(1.0, 100)) {
    w *= std::ldexp(1.0, -std::ilogb(w.maxCoeff()));
  }
  std::int64_t positive = 0;
  for (Eigen::Index i = 0; i < n; ++i) positive += w[i] > 0;
  if (positive < k) {
    throw TooFewRows("initialisation: only " + std::to_string(positive) +
                     " rows have positive weight, fewer than n_components = " + std::to_string(k));
  }

  // What follows the shared part, once per covariance type: a NumericalError (a singular M-step,
  // say) fails that covariance type only.
  std::vector<InitialModel> out(covariances.size());
  const auto for_each_covariance = [&](const auto& make) {
    for (std::size_t i = 0; i < covariances.size(); ++i) {
      FitOptions o = options;
      o.covariance = covariances[i];
      try {
        out[i].model = make(o, i == 0 ? notes : nullptr, &out[i].notes);
      } catch (const NumericalError& e) {
        out[i].failure = e.what();
      }
    }
  };
  // Each covariance type's start: the M-step of responsibilities `resp` (N x K), or of hard
  // `labels` where resp is empty, its empty components noted and a singular start repaired.
  const auto start_from_assignments = [&](const RowMatrix& resp, const std::vector<int>& labels) {
    for_each_covariance([&](const FitOptions& o, std::vector<std::string>* notes_once,
                            std::vector<std::string>* own_notes) {
      std::vector<int> empty;
      Model model = maximize_from_assignments(x, w, resp, labels, o, &empty);
      note_empty(empty, notes_once);
      repair_singular_start(model, x, w, o, own_notes);
      return model;
    });
  };
  switch (options.init) {
    case Init::kKMeansPlusPlus: {
      // k-means on centred rows: squared distances then lose nothing to large offsets.
      const Eigen::RowVectorXd mean = (w.transpose() * x) / w.sum();
      const std::vector<int> labels = kmeans(
          x.rowwise() - mean, w, k, std::max(options.kmeans_iter, 0), thread_count(options), rng);
      start_from_assignments(RowMatrix(), labels);
      return out;
    }
    case Init::kRandom: {
      RowMatrix resp(n, k);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      for (Eigen::Index i = 0; i < n; ++i) {
        if (i % 1024 == 0) detail::poll_interrupt();  // N x K draws: a second at K = 256
        for (int c = 0; c < k; ++c) resp(i, c) = uniform(rng);
      }
      resp.array().colwise() /= resp.rowwise().sum().array();
      start_from_assignments(resp, {});
      return out;
    }
    case Init::kRandomFromData: {
      std::vector<Eigen::Index> candidates;
      for (Eigen::Index i = 0; i < n; ++i) {
        if (w[i] > 0) candidates.push_back(i);
      }
      std::shuffle(candidates.begin(), candidates.end(), rng);
      if (options.family == Family::kGaussian) {
        // K distinct rows of positive weight are the seeds, and every row joins the nearest (as
        // 'k-means++' does with its seeds): the start is the M-step of that assignment.
        // scikit-learn starts from the rows with covariances of reg_covar, whose first E-step is
        // that assignment. Starting each component from the data's overall covariance left that
        // E-step's responsibilities nearly equal: 5 of 20 starts on Old Faithful stopped at the
        // saddle between its two clusters (scikit-learn: none).
        const Eigen::RowVectorXd mean = (w.transpose() * x) / w.sum();
        const RowMatrix centred = x.rowwise() - mean;
        RowMatrix seeds(k, n_features);
        for (int c = 0; c < k; ++c) seeds.row(c) = centred.row(candidates[c]);
        const std::vector<int> labels = lloyd(centred, centred.rowwise().squaredNorm(), w,
                                              std::move(seeds), 0, thread_count(options));
        start_from_assignments(RowMatrix(), labels);
        return out;
      }
      // Bernoulli and binomial: each component halfway between a random row and the data.
      RowMatrix one(n, 1);
      one.setOnes();
      for_each_covariance(
          [&](const FitOptions& o, std::vector<std::string>*, std::vector<std::string>*) {
            FitOptions single = o;
            single.n_components = 1;
            const Model overall = maximize_from_assignments(x, w, one, {}, single, nullptr);
            Model m = blank_model(o, n_features);
            const std::size_t d = static_cast<std::size_t>(n_features);
            for (int c = 0; c < k; ++c) {
              const Eigen::RowVectorXd row = x.row(candidates[c]);
              for (std::size_t j = 0; j < d; ++j) {
                const double p = 0.5 * (row[j] / m.trials + overall.probabilities[j]);
                m.probabilities[c * d + j] = std::clamp(p, o.prob_epsilon, 1.0 - o.prob_epsilon);
              }
            }
            return m;
          });
      return out;
    }
  }
  throw InvalidArgument("initialisation: unknown method");
}

InitMemory initialization_memory(std::int64_t sample, std::int64_t cols, const FitOptions& o) {
  InitMemory m;
  if (o.init_model) return m;
  const double n = static_cast<double>(sample);
  const double d = static_cast<double>(cols);
  const double k = o.n_components;
  const auto whole = [](double value) { return std::to_string(static_cast<std::int64_t>(value)); };
  const std::string rows = whole(n) + " sampled rows x " + whole(d) + " features";
  double values = n * d;  // initialize_each's gathered sample
  switch (o.init) {
    case Init::kKMeansPlusPlus: {
      // kmeans(): the centred copy, each seeding step's candidates' distances (`nearer`) and
      // six more vectors of the rows (norms, nearest, score, ...), and block_sums /
      // block_counts.
      const double blocks = static_cast<double>(block_count(static_cast<Eigen::Index>(sample)));
      const double candidates = 2 + std::floor(std::log(k));
      values += n * d + (candidates + 6) * n + blocks * k * (d + 1);
      m.what = "initialisation holds 2 copies of " + rows + " and k-means' sums of " + whole(k) +
               " components x " + whole(d) + " features for each of " + whole(blocks) +
               " blocks of rows";
      break;
    }
    case Init::kRandom:
      values += n * k;
      m.responsibilities_dominate = n * k >= n * d;
      m.what = "initialisation holds " + rows + " and their random responsibilities, " + whole(n) +
               " x " + whole(k) + " components";
      break;
    case Init::kRandomFromData:
      // A Gaussian start: the centred copy, and lloyd's norms, labels, distances and sums of
      // each block of rows.
      if (o.family == Family::kGaussian) {
        const double blocks = static_cast<double>(block_count(static_cast<Eigen::Index>(sample)));
        values += n * d + 3 * n + blocks * k * (d + 1);
        m.what = "initialisation holds 2 copies of " + rows;
      } else {
        m.what = "initialisation holds " + rows;
      }
      break;
  }
  m.bytes = 8 * values;
  m.what += " in double precision";
  return m;
}

Model initialize(Engine& engine, std::int64_t n_rows, int n_features,
                 const WeightGather& gather_weights, const FitOptions& options,
                 std::mt19937_64& rng, std::vector<std::string>* notes) {
  std::vector<InitialModel> one = initialize_each(engine, n_rows, n_features, gather_weights,
                                                  options, {options.covariance}, rng, notes);
  if (!one.front().model) throw NumericalError(one.front().failure);
  if (notes) notes->insert(notes->end(), one.front().notes.begin(), one.front().notes.end());
  return std::move(*one.front().model);
}

}  // namespace emix
