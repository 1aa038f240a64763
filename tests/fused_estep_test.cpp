// The GPU's single-pass E-step (kernels/fused_estep.cuh) run on the CPU, one thread of the block
// after another between the points where the kernel has a barrier: its tiling, padding, work
// mapping and statistics layout checked against the CPU engine on every family and covariance
// type, awkward shapes, several blocks and short last tiles, where no GPU answers. And the
// plans: every statistic owned by exactly one work item, shared memory within its budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/engine.hpp"
#include "core/prepared_model.hpp"
#include "emix/errors.hpp"
#include "kernels/engine_plan.hpp"
#include "kernels/fused_estep.cuh"
#include "kernels/fused_params.hpp"
#include "kernels/row_estep.cuh"
#include "stats_compare.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;
using emix::gpu::FusedArgs;
using emix::gpu::FusedFamily;
using emix::gpu::FusedPlan;

constexpr int kTrials = 5;
constexpr std::int64_t kLargeShared = 227 * 1024;  // an H100 / H200 block's opt-in limit

using emix::testing::Kind;
constexpr const auto& kKinds = emix::testing::kAllKinds;

std::string describe(const Kind& kind, int k, int d) {
  std::ostringstream s;
  s << emix::testing::describe(kind.family, kind.covariance) << " K=" << k << " D=" << d;
  return s.str();
}

// Runs a launch of `grid` blocks over a.count rows, as the kernel would, thread by thread.
// Returns the number of blocks launched (at most max_blocks, as the launcher does).
template <FusedFamily F, typename T, typename C, bool kEvaluate>
int emulate(const FusedPlan& p, const FusedArgs<T, C>& a, int max_blocks) {
  using namespace emix::gpu;
  const int grid = fused_grid(p, a.count, max_blocks);
  // Shared memory starts as NaN bytes: a read of anything the block did not write shows.
  std::vector<double> storage(static_cast<std::size_t>(p.shared_bytes) / 8 + 2);
  unsigned char* base = reinterpret_cast<unsigned char*>(storage.data());
  const std::int64_t tiles = fused_tiles(p, a.count);
  for (int block = 0; block < grid; ++block) {
    std::memset(base, 0xff, static_cast<std::size_t>(p.shared_bytes));
    const FusedShared<C> s = carve_shared<C>(base, p);
    double* slice = kEvaluate ? nullptr : a.part + block * a.layout.size();
    std::vector<FusedThreadSums> sums(static_cast<std::size_t>(p.threads));
    for (int t = 0; t < p.threads; ++t) fused_clear(t, p, s);
    for (std::int64_t tile = block; tile < tiles; tile += grid) {
      const std::int64_t row0 = tile * p.rows;
      const int rows = static_cast<int>(std::min<std::int64_t>(p.rows, a.count - row0));
      for (int t = 0; t < p.threads; ++t) fused_stage(t, p, a, s, row0, rows);
      for (int t = 0; t < p.threads; ++t) {
        if (p.lean) {
          fused_log_joint<F, T, C, 4>(t, p, a, s);
        } else {
          fused_log_joint<F, T, C, 8>(t, p, a, s);
        }
      }
      if constexpr (kEvaluate) {
        for (int t = 0; t < p.threads; ++t) fused_evaluate_rows<F>(t, p, a, s, row0, rows);
        if (a.resp != nullptr) {
          for (int t = 0; t < p.threads; ++t) fused_write_responsibilities(t, p, a, s, row0, rows);
        }
      } else {
        for (int t = 0; t < p.threads; ++t) {
          fused_responsibilities<F>(t, p, a, s, rows, sums[static_cast<std::size_t>(t)]);
        }
        const bool first = tile == block;
        for (int round = 0; round < p.rounds; ++round) {
          for (int t = 0; t < p.threads; ++t) {
            fused_statistics_round<F>(t, p, a, s, rows, round, slice, first);
          }
          if (p.row_groups > 1 && !p.block_combine) {
            for (int t = 0; t < p.threads; ++t) {
              fused_combine_groups<F>(t, p, a, s.red, slice, first);
            }
          }
        }
      }
    }
    if constexpr (!kEvaluate) {
      for (int t = 0; t < p.threads; ++t) {
        fused_publish_sums(t, p, s.fin, sums[static_cast<std::size_t>(t)]);
      }
      for (int t = 0; t < p.threads; ++t) {
        fused_finish_sums(t, p, s.fin, slice);
        if (p.row_groups > 1 && p.block_combine) {
          fused_combine_groups<F>(t, p, a, s.acc(), slice, true);
        }
      }
    }
  }
  return grid;
}

template <typename T, typename C, bool kEvaluate>
int emulate_any(const FusedPlan& p, const FusedArgs<T, C>& a, int max_blocks) {
  switch (p.family) {
    case FusedFamily::kDiag:
      return emulate<FusedFamily::kDiag, T, C, kEvaluate>(p, a, max_blocks);
    case FusedFamily::kLinear:
      return emulate<FusedFamily::kLinear, T, C, kEvaluate>(p, a, max_blocks);
    case FusedFamily::kFull:
      return emulate<FusedFamily::kFull, T, C, kEvaluate>(p, a, max_blocks);
  }
  return 0;
}

struct Problem {
  emix::Model model;
  emix::PreparedModel prepared;
  std::int64_t n = 0;
  int d = 0;
  std::vector<double> x;
  std::vector<float> xf;
  std::vector<double> xf64;
  std::vector<double> weights;
};

Problem make_problem(const Kind& kind, int k, int d, std::int64_t n, std::uint64_t seed) {
  Problem p;
  p.n = n;
  p.d = d;
  p.model = emix::testing::random_model(kind.family, kind.covariance, k, d, seed, kTrials);
  p.x = emix::sample(p.model, n, seed + 1).x;
  p.xf.assign(p.x.begin(), p.x.end());
  p.xf64.assign(p.xf.begin(), p.xf.end());
  std::mt19937_64 rng(seed + 2);
  std::uniform_real_distribution<double> u(0.25, 2.0);
  p.weights.resize(static_cast<std::size_t>(n));
  for (double& w : p.weights) w = u(rng);
  p.weights[1] = 0.0;
  // Parameters a little off the generating ones, so that responsibilities are not all 0 or 1.
  emix::Model start = p.model;
  for (double& w : start.weights) w = 0.7 * w + 0.3 / k;
  for (double& c : start.covariances) c *= 1.5;
  for (double& pr : start.probabilities) pr = 0.8 * pr + 0.1;
  p.prepared = emix::prepare(start);
  return p;
}

template <typename C>
struct DeviceLikeParams {
  emix::gpu::FusedParams<C> params;
  template <typename T>
  FusedArgs<T, C> args(const Problem& p, const FusedPlan& plan, const T* x,
                       const double* weights) const {
    FusedArgs<T, C> a;
    a.x = x;
    a.count = p.n;
    a.weights = weights;
    a.c0 = params.c0.data();
    a.a = params.a.data();
    a.b = params.b.data();
    a.shift = params.shift.data();
    a.cst = params.cst.data();
    a.u = params.u.empty() ? nullptr : params.u.data();
    a.log_choose = params.log_choose.empty() ? nullptr : params.log_choose.data();
    a.trials = p.prepared.trials;
    a.layout = p.prepared.layout.packed();
    (void)plan;
    return a;
  }
};

// The register kernel (kernels/row_estep.cuh).
//
// The warp's flush as the kernel's shuffles do it: per step and position, every lane's sent
// value first, then every lane's sum of what it keeps and what its partner sent.
template <int KP, int DP>
void emulate_flush(std::vector<std::vector<float>>& v, std::vector<std::vector<double>>& owned) {
  using Lanes = emix::gpu::RowShape<KP, DP>;
  for (int o = 16, half = Lanes::kPadded / 2; o >= 1; o /= 2, half /= 2) {
    for (int j = 0; j < half; ++j) {
      float sent[32];
      for (int l = 0; l < 32; ++l) sent[l] = emix::gpu::row_send(v[l].data(), l, o, half, j);
      for (int l = 0; l < 32; ++l) {
        v[l][j] = emix::gpu::row_keep(v[l].data(), l, o, half, j) + sent[l ^ o];
      }
    }
  }
  for (int l = 0; l < 32; ++l) {
    for (int i = 0; i < Lanes::kOwned; ++i) owned[l][i] += static_cast<double>(v[l][i]);
    std::fill(v[l].begin(), v[l].end(), 0.0f);
  }
}

// A launch of the register kernel over a.count rows in `grid` blocks, warp by warp and lane by
// lane in the kernel's order (row_estep.cu).
template <bool kVectorRows, bool kAllComponents, int KP, int DP>
void emulate_rows(const FusedPlan& p, const FusedArgs<float, float>& a,
                  const emix::gpu::FusedParams<float>& params, int grid) {
  using namespace emix::gpu;
  using Lanes = RowShape<KP, DP>;
  const RowParams<KP, DP> q = make_row_params<KP, DP>(p, params);
  const std::int64_t stride = std::int64_t{grid} * kRowThreads;
  for (int block = 0; block < grid; ++block) {
    double* slice = a.part + block * a.layout.size();
    std::vector<double> acc(static_cast<std::size_t>(kRowWarps * Lanes::kPadded), std::nan(""));
    std::vector<double> fin(3 * kRowThreads, std::nan(""));
    std::vector<FusedThreadSums> sums(kRowThreads);
    for (int warp = 0; warp < kRowWarps; ++warp) {
      std::vector<std::vector<float>> v(32, std::vector<float>(Lanes::kPadded, 0.0f));
      std::vector<std::vector<double>> owned(32, std::vector<double>(Lanes::kOwned, 0.0));
      int since_flush = 0;
      for (std::int64_t base = std::int64_t{block} * kRowThreads + warp * 32; base < a.count;
           base += stride) {
        for (int lane = 0; lane < 32; ++lane) {
          const std::int64_t row = base + lane;
          float x[DP], w = 0.0f;
          row_load<kVectorRows>(a, q, p.d, row, x, w);
          if (row >= a.count) continue;
          float(&lane_v)[Lanes::kPadded] =
              *reinterpret_cast<float(*)[Lanes::kPadded]>(v[lane].data());
          row_accumulate<kAllComponents>(q, p.k, x, w, lane_v, sums[warp * 32 + lane]);
        }
        if (++since_flush == kRowFlushRows) {
          emulate_flush<KP, DP>(v, owned);
          since_flush = 0;
        }
      }
      if (since_flush > 0) emulate_flush<KP, DP>(v, owned);
      for (int lane = 0; lane < 32; ++lane) {
        for (int i = 0; i < Lanes::kOwned; ++i) {
          acc[warp * Lanes::kPadded + row_owned_first(lane, Lanes::kOwned) + i] = owned[lane][i];
        }
      }
    }
    for (int t = 0; t < kRowThreads; ++t) fused_publish_sums(t, p, fin.data(), sums[t]);
    for (int t = 0; t < kRowThreads; ++t) {
      fused_finish_sums(t, p, fin.data(), slice);
      row_finish<KP, DP>(t, p.k, p.d, a.layout, acc.data(), slice);
    }
  }
}

template <bool kVectorRows, bool kAllComponents>
void emulate_rows_any(const FusedPlan& p, const FusedArgs<float, float>& a,
                      const emix::gpu::FusedParams<float>& params, int grid) {
  if (p.kp == 4 && p.dq == 4) {
    return emulate_rows<kVectorRows, kAllComponents, 4, 4>(p, a, params, grid);
  }
  if (p.kp == 4) return emulate_rows<kVectorRows, kAllComponents, 4, 8>(p, a, params, grid);
  if (p.dq == 4) return emulate_rows<kVectorRows, kAllComponents, 8, 4>(p, a, params, grid);
  emulate_rows<kVectorRows, kAllComponents, 8, 8>(p, a, params, grid);
}

// The statistics of all rows through `grid` emulated blocks, summed in block order and unpacked:
// the tiled kernel's, or with plan.rows_in_registers the register kernel's (in the forms its
// launcher picks: vector rows where D = DP, no padding components where K = KP).
template <typename T, typename C>
std::vector<double> emulated_statistics(const Problem& p, const FusedPlan& plan, const T* x,
                                        const double* weights, int grid) {
  DeviceLikeParams<C> dev{emix::gpu::make_fused_params<C>(p.prepared, plan)};
  FusedArgs<T, C> a = dev.template args<T>(p, plan, x, weights);
  const std::size_t stride = a.layout.size();
  std::vector<double> part(stride * static_cast<std::size_t>(grid), std::nan(""));
  a.part = part.data();
  if constexpr (std::is_same_v<T, float> && std::is_same_v<C, float>) {
    if (plan.rows_in_registers) {
      const bool vectors = plan.d == plan.dq, all = plan.k == plan.kp;
      if (vectors) {
        all ? emulate_rows_any<true, true>(plan, a, dev.params, grid)
            : emulate_rows_any<true, false>(plan, a, dev.params, grid);
      } else {
        all ? emulate_rows_any<false, true>(plan, a, dev.params, grid)
            : emulate_rows_any<false, false>(plan, a, dev.params, grid);
      }
    } else {
      grid = emulate_any<T, C, false>(plan, a, grid);
    }
  } else {
    grid = emulate_any<T, C, false>(plan, a, grid);
  }
  std::vector<double> packed(stride, 0.0);
  for (int b = 0; b < grid; ++b) {
    for (std::size_t e = 0; e < stride; ++e) packed[e] += part[b * stride + e];
  }
  std::vector<double> out(p.prepared.layout.size());
  emix::unpack_scatter(p.prepared.layout, packed.data(), out.data());
  return out;
}

std::vector<double> cpu_statistics(const Problem& p, const std::vector<double>& x,
                                   const double* weights) {
  emix::EngineOptions o;
  o.device = emix::Device::kCpu;
  auto cpu = emix::make_cpu_engine(emix::DataView::host(x.data(), p.n, p.d), weights, o);
  std::vector<double> stats(p.prepared.layout.size());
  cpu->accumulate(p.prepared, stats.data());
  return stats;
}

struct Shape {
  int k;
  int d;
  std::int64_t n;
};
// Tiny, odd and larger shapes: K = 1, D not a multiple of 4 or 8, several tiles with a short
// last one, K beyond one register block, many scatter blocks.
const Shape kShapes[] = {{1, 1, 50}, {4, 3, 1000}, {1, 7, 1000}, {5, 13, 700}, {9, 33, 300}};

// Tile caps: the plan's own choice, and tiles of 32 rows, so that many tiles, several rounds or
// row groups, and short last tiles all occur.
const int kMaxRows[] = {0, 32};

TEST(FusedEstepEmulation, StatisticsMatchCpuEngine) {
  for (const Kind& kind : kKinds) {
    for (const Shape& shape : kShapes) {
      const std::uint64_t seed = 500 + 10 * static_cast<std::uint64_t>(shape.k) + shape.d;
      const Problem p = make_problem(kind, shape.k, shape.d, shape.n, seed);
      for (int max_rows : kMaxRows) {
        for (int grid : {1, 3}) {
          SCOPED_TRACE(describe(kind, shape.k, shape.d) + " n=" + std::to_string(shape.n) +
                       " max_rows " + std::to_string(max_rows) + " grid " + std::to_string(grid) +
                       " seed " + std::to_string(seed));
          // Variants: as by default, the softmax fast path, row groups combined once a block,
          // the lean kernels' phase A (FusedPlan::lean; in float too, here).
          for (int variant = 0; variant < 4; ++variant) {
            const bool fast = variant == 1, block_combine = variant == 2, lean = variant == 3;
            const char* names[] = {"default", "fast softmax", "block combine", "lean"};
            SCOPED_TRACE(names[variant]);
            auto plan64 =
                emix::gpu::choose_fused_plan(kind.family, kind.covariance, shape.k, shape.d, 8,
                                             kLargeShared, max_rows, block_combine);
            auto plan32 =
                emix::gpu::choose_fused_plan(kind.family, kind.covariance, shape.k, shape.d, 4,
                                             kLargeShared, max_rows, block_combine);
            ASSERT_TRUE(plan64.has_value());
            ASSERT_TRUE(plan32.has_value());
            plan64->fast_softmax = plan32->fast_softmax = fast;
            plan64->lean = plan32->lean = lean;
            // float64: the same sums in another order, 1e-12 of their scale. float32: each
            // row's values round at about 1e-7 relative and tiles sum at most 512 rows in
            // float, hence 1e-5 of the scale (the GPU tests' float tolerance).
            EXPECT_TRUE(emix::testing::stats_close(
                p.prepared,
                emulated_statistics<double, double>(p, *plan64, p.x.data(), p.weights.data(), grid),
                cpu_statistics(p, p.x, p.weights.data()), 1e-12));
            EXPECT_TRUE(emix::testing::stats_close(
                p.prepared,
                emulated_statistics<float, float>(p, *plan32, p.xf.data(), nullptr, grid),
                cpu_statistics(p, p.xf64, nullptr), 1e-5));
          }
        }
      }
    }
  }
}

TEST(FusedEstepEmulation, EvaluationMatchesCpuEngine) {
  for (const Kind& kind : kKinds) {
    for (const Shape& shape : kShapes) {
      const std::uint64_t seed = 900 + 10 * static_cast<std::uint64_t>(shape.k) + shape.d;
      const Problem p = make_problem(kind, shape.k, shape.d, shape.n, seed);
      SCOPED_TRACE(describe(kind, shape.k, shape.d) + " seed " + std::to_string(seed));
      auto plan = emix::gpu::choose_fused_plan(kind.family, kind.covariance, shape.k, shape.d, 8,
                                               kLargeShared, 32);
      ASSERT_TRUE(plan.has_value());
      plan->fast_softmax = (shape.k + shape.d) % 2 == 1;  // half the shapes take the fast path
      plan->lean = shape.d > 8;  // the lean kernel where phase A has several column blocks
      const std::size_t n = static_cast<std::size_t>(p.n);
      const int k = shape.k;
      DeviceLikeParams<double> dev{emix::gpu::make_fused_params<double>(p.prepared, *plan)};
      FusedArgs<double, double> a = dev.args<double>(p, *plan, p.x.data(), nullptr);
      std::vector<double> lp(n, std::nan("")), resp(n * k, std::nan(""));
      std::vector<std::int32_t> labels(n, -1);
      a.log_prob = lp.data();
      a.resp = resp.data();
      a.labels = labels.data();
      emulate_any<double, double, true>(*plan, a, 3);

      emix::EngineOptions o;
      o.device = emix::Device::kCpu;
      auto cpu = emix::make_cpu_engine(emix::DataView::host(p.x.data(), p.n, p.d), nullptr, o);
      std::vector<double> lp_c(n), resp_c(n * k);
      std::vector<std::int32_t> labels_c(n);
      cpu->evaluate(p.prepared, lp_c.data(), resp_c.data(), labels_c.data());
      // 1e-12 of max(|log p|, 1); responsibilities within 1e-12; labels equal where the top
      // two responsibilities differ by more than that.
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_NEAR(lp[i], lp_c[i], 1e-12 * std::max(1.0, std::abs(lp_c[i]))) << "row " << i;
        double top = -1, second = -1;
        for (int c = 0; c < k; ++c) {
          ASSERT_NEAR(resp[i * k + c], resp_c[i * k + c], 1e-12) << "row " << i << " k " << c;
          const double r = resp_c[i * k + c];
          if (r > top) {
            second = top;
            top = r;
          } else {
            second = std::max(second, r);
          }
        }
        if (top - second > 1e-9) {
          EXPECT_EQ(labels[i], labels_c[i]) << "row " << i;
        }
      }
    }
  }
}

// Every shape the kernel takes (K and D of 1-8, padded or exact), rows that are not a multiple
// of a warp, several flushes (a warp flushes every 32 x 32 rows), one and several blocks, with
// and without sample weights (one of them zero), against the CPU engine's statistics of the
// same float rows: 1e-5 of the scale, as the tiled kernel's float test (the register kernel's
// float sums are shorter: 32 rows, then a tree over 32 lanes).
TEST(RowEstepEmulation, StatisticsMatchCpuEngine) {
  // Every form: vector rows (D = 4, 8) or not, padding components (K < 4, 5-7) or none.
  const Shape shapes[] = {{1, 1, 50},   {3, 5, 1000}, {4, 4, 20000}, {8, 8, 20000}, {5, 3, 9000},
                          {8, 4, 3000}, {2, 8, 2500}, {4, 8, 700},   {7, 2, 33000}, {8, 3, 4000}};
  for (const Covariance covariance : {Covariance::kDiag, Covariance::kSpherical}) {
    const Kind kind{Family::kGaussian, covariance};
    for (const Shape& shape : shapes) {
      const std::uint64_t seed = 700 + 10 * static_cast<std::uint64_t>(shape.k) + shape.d;
      const Problem p = make_problem(kind, shape.k, shape.d, shape.n, seed);
      auto plan = emix::gpu::choose_fused_plan(kind.family, kind.covariance, shape.k, shape.d, 4,
                                               kLargeShared);
      ASSERT_TRUE(plan.has_value());
      ASSERT_TRUE(emix::gpu::row_kernel_fits(*plan));
      plan->rows_in_registers = true;
      for (int grid : {1, 3}) {
        SCOPED_TRACE(describe(kind, shape.k, shape.d) + " n=" + std::to_string(shape.n) + " grid " +
                     std::to_string(grid) + " seed " + std::to_string(seed));
        EXPECT_TRUE(emix::testing::stats_close(
            p.prepared, emulated_statistics<float, float>(p, *plan, p.xf.data(), nullptr, grid),
            cpu_statistics(p, p.xf64, nullptr), 1e-5));
        EXPECT_TRUE(emix::testing::stats_close(
            p.prepared,
            emulated_statistics<float, float>(p, *plan, p.xf.data(), p.weights.data(), grid),
            cpu_statistics(p, p.xf64, p.weights.data()), 1e-5));
      }
    }
  }
}

// A component of weight zero (log-joint -inf on every row) and one so narrow that every row is
// thousands of its standard deviations away (its terms negligible): the kernel's softmax keeps
// softmax_in_place's rules, N_k = 0 exactly.
TEST(RowEstepEmulation, ComponentsOfDensityZeroGetNothing) {
  Problem p = make_problem({Family::kGaussian, Covariance::kDiag}, 4, 4, 3000, 77);
  p.prepared.log_weights[1] = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < 4; ++j) p.prepared.prec_chol[2 * 4 + j] *= 1e4;
  auto plan =
      emix::gpu::choose_fused_plan(Family::kGaussian, Covariance::kDiag, 4, 4, 4, kLargeShared);
  ASSERT_TRUE(plan.has_value());
  plan->rows_in_registers = true;
  const std::vector<double> gpu =
      emulated_statistics<float, float>(p, *plan, p.xf.data(), nullptr, 2);
  const std::vector<double> cpu = cpu_statistics(p, p.xf64, nullptr);
  EXPECT_TRUE(emix::testing::stats_close(p.prepared, gpu, cpu, 1e-5));
  EXPECT_EQ(gpu[p.prepared.layout.nk() + 1], 0.0);
  EXPECT_EQ(gpu[p.prepared.layout.nk() + 2], 0.0);
  EXPECT_TRUE(std::isfinite(gpu[emix::StatisticsLayout::kLogLikelihood]));
  EXPECT_TRUE(std::isfinite(gpu[emix::StatisticsLayout::kEntropy]));
}

// The register kernel takes float diag and spherical plans of K, D <= 8 when asked for, and
// nothing else.
TEST(GpuPathChoice, TheRegisterKernelTakesSmallFloatDiagModelsOnly) {
  emix::gpu::GpuSettings settings;
  settings.row_registers = true;
  const auto registers = [&](Family family, Covariance covariance, int k, int d, int elem) {
    const emix::gpu::PathChoice c =
        emix::gpu::choose_path(family, covariance, k, d, elem, kLargeShared, settings);
    return c.fused && c.plan.rows_in_registers;
  };
  EXPECT_TRUE(registers(Family::kGaussian, Covariance::kDiag, 8, 8, 4));
  EXPECT_TRUE(registers(Family::kGaussian, Covariance::kSpherical, 1, 1, 4));
  EXPECT_TRUE(registers(Family::kGaussian, Covariance::kDiag, 5, 7, 4));
  EXPECT_FALSE(registers(Family::kGaussian, Covariance::kDiag, 9, 8, 4));
  EXPECT_FALSE(registers(Family::kGaussian, Covariance::kDiag, 8, 9, 4));
  EXPECT_FALSE(registers(Family::kGaussian, Covariance::kDiag, 8, 8, 8));
  EXPECT_FALSE(registers(Family::kGaussian, Covariance::kFull, 4, 4, 4));
  EXPECT_FALSE(registers(Family::kBernoulli, Covariance::kFull, 4, 4, 4));
  settings.row_registers = false;
  EXPECT_FALSE(registers(Family::kGaussian, Covariance::kDiag, 8, 8, 4));
}

// fused_softmax's fast path against softmax_in_place: within a few units in the last place on
// finite rows (on the CPU both take the same exp; only the one division a row differs), and
// bitwise the same on rows with a NaN or infinite term, which it hands to softmax_in_place.
template <typename C>
void expect_fast_softmax_matches(const std::vector<std::vector<C>>& rows, bool special) {
  for (const std::vector<C>& row : rows) {
    FusedPlan p;
    p.k = static_cast<int>(row.size());
    p.lg_stride = 2;  // strided, as in the kernel's lg tile
    for (const C weight : {C(1), C(0.75), C(0)}) {
      std::vector<C> fast(2 * row.size(), C(-7)), exact(2 * row.size(), C(-7));
      for (std::size_t k = 0; k < row.size(); ++k) fast[2 * k] = exact[2 * k] = row[k];
      C h_fast = C(-1), h_exact = C(-1);
      p.fast_softmax = true;
      const auto a = emix::gpu::fused_softmax(p, fast.data(), weight, &h_fast);
      p.fast_softmax = false;
      const auto b = emix::gpu::fused_softmax(p, exact.data(), weight, &h_exact);
      const C ulps = C(4) * std::numeric_limits<C>::epsilon();
      for (std::size_t i = 0; i < fast.size(); ++i) {
        if (special) {
          EXPECT_EQ(std::memcmp(&fast[i], &exact[i], sizeof(C)), 0) << "value " << i;
        } else {
          EXPECT_NEAR(fast[i], exact[i], ulps * std::abs(exact[i])) << "value " << i;
        }
      }
      if (special) {
        EXPECT_EQ(std::memcmp(&h_fast, &h_exact, sizeof(C)), 0);
        EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
      } else {
        EXPECT_NEAR(h_fast, h_exact, ulps * std::max(C(1), std::abs(h_exact)));
        EXPECT_EQ(a.max, b.max);
        EXPECT_NEAR(a.sum, b.sum, ulps * b.sum);
      }
    }
  }
}

TEST(FusedSoftmax, TheFastPathKeepsSoftmaxInPlacesValuesAndRules) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::mt19937_64 rng(5);
  std::normal_distribution<double> z(0.0, 30.0);
  std::vector<std::vector<double>> finite;
  for (int n : {1, 2, 3, 8, 33}) {
    std::vector<double> row(static_cast<std::size_t>(n));
    for (double& v : row) v = z(rng) - 500;
    finite.push_back(row);
  }
  finite.push_back({-1e300, 0.0, -800.0});  // terms below the negligible threshold are zero
  const std::vector<std::vector<double>> special = {
      {-inf, 0.0, -3.0}, {-inf, -inf}, {nan, 1.0}, {inf, 2.0}, {1.0, inf, -inf}};
  expect_fast_softmax_matches(finite, false);
  expect_fast_softmax_matches(special, true);
  std::vector<std::vector<float>> finite_f, special_f;
  for (const auto& row : finite) {
    finite_f.emplace_back(row.begin(), row.end());
    for (float& v : finite_f.back()) v = std::max(v, -3e38f);
  }
  for (const auto& row : special) special_f.emplace_back(row.begin(), row.end());
  expect_fast_softmax_matches(finite_f, false);
  expect_fast_softmax_matches(special_f, true);
}

// Every statistic except the row totals (log-likelihood, weight, entropy: each thread's sums,
// added at the block's end) is written by exactly one (item, value) of phase C, and no total is.
template <FusedFamily F>
void expect_each_statistic_owned_once(const FusedPlan& p, const emix::StatisticsLayout& layout) {
  std::vector<int> owners(layout.size(), 0);
  for (int item = 0; item < p.items; ++item) {
    const emix::gpu::FusedItem it = emix::gpu::fused_decode_item<F>(p, item);
    for (int e = 0; e < p.item_entries; ++e) {
      const std::int64_t at = emix::gpu::fused_item_target<F>(p, layout, it, e);
      if (at < 0) continue;
      ASSERT_LT(static_cast<std::size_t>(at), layout.size()) << "item " << item << " value " << e;
      ++owners[static_cast<std::size_t>(at)];
    }
  }
  for (std::size_t i = 0; i < owners.size(); ++i) {
    EXPECT_EQ(owners[i], i < layout.nk() ? 0 : 1) << "statistic " << i << " of " << layout.size();
  }
}

TEST(FusedPlan, EveryStatisticHasOneOwnerAndTheLayoutFits) {
  for (const Kind& kind : kKinds) {
    for (int k : {1, 2, 3, 4, 5, 8, 16, 31, 64}) {
      for (int d : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 32, 63}) {
        for (const auto& [elem, block_combine] :
             {std::pair{4, false}, std::pair{8, false}, std::pair{4, true}, std::pair{8, true}}) {
          SCOPED_TRACE(describe(kind, k, d) + " elem " + std::to_string(elem) +
                       (block_combine ? " block_combine" : ""));
          const auto plan = emix::gpu::choose_fused_plan(kind.family, kind.covariance, k, d, elem,
                                                         kLargeShared, 0, block_combine);
          ASSERT_TRUE(plan.has_value());
          const FusedPlan& p = *plan;
          EXPECT_EQ(p.block_combine, block_combine);
          EXPECT_LE(p.shared_bytes, kLargeShared);
          // Regions in order, each as large as what the kernel keeps there.
          EXPECT_GE(p.lg_offset - p.xs_offset, std::int64_t{p.rows} * p.dp * elem);
          EXPECT_GE(p.w_offset - p.lg_offset, std::int64_t{p.kp} * p.lg_stride * elem);
          EXPECT_GE(p.red_offset - p.w_offset, std::int64_t{p.rows} * elem);
          if (p.row_groups > 1) {
            EXPECT_GE(p.fin_offset - p.red_offset,
                      std::int64_t{p.item_entries} * p.threads * (block_combine ? 8 : elem));
          }
          EXPECT_GE(p.shared_bytes - p.fin_offset, 3 * std::int64_t{p.threads} * 8);
          EXPECT_EQ(p.rows % 32, 0);
          EXPECT_GE(p.dp, p.dq);
          EXPECT_EQ(p.dp * elem % 32, 16) << "rows must be an odd number of 16-byte units apart";
          EXPECT_EQ(p.kp % 4, 0);
          EXPECT_GE(p.row_groups, 1);
          EXPECT_LE(p.items_per_round * p.row_groups, p.threads);
          EXPECT_GE(p.items_per_round * p.rounds, p.items);
          // block_combine's slots are per thread, not per round: row groups come in one round.
          if (p.row_groups > 1) {
            EXPECT_EQ(p.rounds, 1);
          }
          const emix::StatisticsLayout layout =
              emix::StatisticsLayout(kind.family, kind.covariance, k, d).packed();
          switch (p.family) {
            case FusedFamily::kDiag:
              expect_each_statistic_owned_once<FusedFamily::kDiag>(p, layout);
              break;
            case FusedFamily::kLinear:
              expect_each_statistic_owned_once<FusedFamily::kLinear>(p, layout);
              break;
            case FusedFamily::kFull:
              expect_each_statistic_owned_once<FusedFamily::kFull>(p, layout);
              break;
          }
        }
      }
    }
  }
}

TEST(FusedPlan, ShapesBeyondSharedMemoryTakeTheGeneralPath) {
  // A tile of 32 rows of 100,000 float features needs 12.8 MB of shared memory.
  EXPECT_FALSE(emix::gpu::choose_fused_plan(Family::kBernoulli, Covariance::kFull, 4, 100000, 4,
                                            kLargeShared)
                   .has_value());
  EXPECT_FALSE(
      emix::gpu::choose_fused_plan(Family::kGaussian, Covariance::kDiag, 20000, 4, 4, kLargeShared)
          .has_value());
  EXPECT_TRUE(
      emix::gpu::choose_fused_plan(Family::kGaussian, Covariance::kFull, 32, 32, 8, kLargeShared)
          .has_value());
}

// The path choice: the single-pass kernel where its plan fits, unless the general path is asked
// for, or a float model needs double arithmetic (then the reason is reported), which an insisted
// single-pass kernel overrides (tests compare the two paths on the same models).
TEST(GpuPathChoice, FloatModelsThatNeedDoubleTakeTheGeneralPath) {
  using emix::gpu::GpuPath;
  emix::gpu::GpuSettings settings;
  const auto choose = [&](const std::string& needs_double) {
    return emix::gpu::choose_path(Family::kBinomial, Covariance::kFull, 3, 5, 4, kLargeShared,
                                  settings, needs_double);
  };
  EXPECT_TRUE(choose("").fused);
  const emix::gpu::PathChoice general = choose("float32 binomial log-densities ...");
  EXPECT_FALSE(general.fused);
  EXPECT_EQ(general.reason, "float32 binomial log-densities ...");
  settings.path = GpuPath::kFused;
  EXPECT_TRUE(choose("float32 binomial log-densities ...").fused);
  settings.path = GpuPath::kGeneral;
  EXPECT_FALSE(choose("").fused);
}

// EMIX_GPU_VARIANTS' list: names turn their variants on in any order, empty entries are
// ignored, and an unknown name is refused with the list's source and the known names.
TEST(GpuVariants, NamesTurnVariantsOnAndUnknownNamesAreRefused) {
  using emix::gpu::parse_gpu_variants;
  const emix::gpu::GpuSettings none = parse_gpu_variants("", "test");
  EXPECT_EQ(emix::gpu::variant_names(none), "");
  const emix::gpu::GpuSettings two = parse_gpu_variants("row_registers,,fast_softmax", "test");
  EXPECT_TRUE(two.row_registers);
  EXPECT_TRUE(two.fast_softmax);
  EXPECT_FALSE(two.block_combine);
  EXPECT_FALSE(two.lean_double);
  EXPECT_EQ(emix::gpu::variant_names(two), "fast_softmax,row_registers");
  const emix::gpu::GpuSettings all =
      parse_gpu_variants("lean_double,block_combine,row_registers,fast_softmax", "test");
  EXPECT_EQ(emix::gpu::variant_names(all), "fast_softmax,block_combine,lean_double,row_registers");
  try {
    parse_gpu_variants("row_registers,rowreg", "EMIX_GPU_VARIANTS=row_registers,rowreg");
    ADD_FAILURE() << "an unknown variant was accepted";
  } catch (const emix::InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("EMIX_GPU_VARIANTS=row_registers,rowreg: 'rowreg' is not a GPU kernel "
                        "variant"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("fast_softmax, block_combine, lean_double, row_registers"),
              std::string::npos)
        << what;
  }
}

// The rules every engine applies to float models (core/prepared_model.hpp): binomial counts of
// up to 1000 have log-density terms of about 1e4 (float loses 1e-3 of a log-density of -20),
// Bernoulli ones of a few; weights are summed in float only within [2^-100, 2^100].
TEST(FloatRules, LargeDiscreteTermsAndExtremeWeightsNeedDouble) {
  const emix::Model binomial =
      emix::testing::random_model(Family::kBinomial, Covariance::kFull, 3, 5, 9, /*trials=*/1000);
  const emix::Model bernoulli =
      emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 3, 5, 9);
  const emix::Model gaussian =
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 3, 5, 9);
  EXPECT_TRUE(emix::float_loses_digits(emix::largest_discrete_terms(emix::prepare(binomial))));
  EXPECT_FALSE(emix::float_loses_digits(emix::largest_discrete_terms(emix::prepare(bernoulli))));
  EXPECT_EQ(emix::largest_discrete_terms(emix::prepare(gaussian)), 0.0);
  const std::vector<double> ordinary = {0.5, 2.0, 0.0, 1e20};
  const std::vector<double> huge = {0.5, 1e35};
  const std::vector<double> tiny = {0.5, 1e-35};
  EXPECT_FALSE(emix::weights_outside_float_range(ordinary.data(), 4));
  EXPECT_TRUE(emix::weights_outside_float_range(huge.data(), 2));
  EXPECT_TRUE(emix::weights_outside_float_range(tiny.data(), 2));
  EXPECT_FALSE(emix::weights_outside_float_range(nullptr, 2));
}

// The general path's float scatter, z = sqrt(g) (x - c) 2^-e summed as Z^T Z and multiplied by
// 2^2e in double: weights within float's range are left alone (e = 0, results as before), and
// any other largest weight w is brought to w 2^-2e in [1, 4), so that g (x - c)^2 2^-2e neither
// overflows nor flushes to zero where (x - c)^2 would not. Powers of two: the scaling is exact.
TEST(GpuScatterScale, WeightsBeyondFloatRangeAreScaledIntoIt) {
  for (const double w :
       {1.0, 0.5, 1e20, 1e-20, std::ldexp(1.0, -100), std::ldexp(1.0, 100) * 0.99, 0.0, -3.0,
        std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_EQ(emix::gpu::scatter_exponent(w), 0) << w;
  }
  for (const double w :
       {std::ldexp(1.0, 100), 1e35, 1e38, 3e300, std::numeric_limits<double>::max(),
        std::ldexp(1.0, -101), std::ldexp(1.0, -102), 1e-35, 1e-38, 1e-300,
        std::numeric_limits<double>::denorm_min()}) {
    const int e = emix::gpu::scatter_exponent(w);
    const double scaled = std::ldexp(w, -2 * e);
    EXPECT_GE(scaled, 1.0) << w;
    EXPECT_LT(scaled, 4.0) << w;
  }
}

TEST(StatisticsLayout, PackedScatterUnpacksToASymmetricFullScatter) {
  const emix::StatisticsLayout layout(Family::kGaussian, Covariance::kFull, 3, 4);
  const emix::StatisticsLayout packed = layout.packed();
  EXPECT_EQ(packed.size(), layout.q() + 3 * 10u);
  std::vector<double> in(packed.size());
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<double>(i) + 0.5;
  std::vector<double> out(layout.size(), -1);
  emix::unpack_scatter(layout, in.data(), out.data());
  for (std::size_t i = 0; i < layout.q(); ++i) EXPECT_EQ(out[i], in[i]);
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        EXPECT_EQ(out[layout.q_at(c, i, j)], in[packed.q_at(c, std::min(i, j), std::max(i, j))]);
      }
    }
  }
  // Diagonal and linear layouts are their own packing.
  const emix::StatisticsLayout diag(Family::kGaussian, Covariance::kDiag, 3, 4);
  EXPECT_EQ(diag.packed().size(), diag.size());
}

}  // namespace
