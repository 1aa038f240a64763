// The public statistics API: accumulate / merge / maximize / serialise, against one E-step over
// all rows and one EM iteration of fit(), for every family and covariance type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/accumulate_piece.hpp"
#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

using emix::testing::Kind;
constexpr const auto& kKinds = emix::testing::kAllKinds;

struct Problem {
  emix::Model model;  // where the E-steps are taken
  std::vector<double> x;
  std::vector<double> w;
  std::int64_t n = 0;
  int d = 0;
  emix::DataView rows(std::int64_t first, std::int64_t count) const {
    return emix::DataView::host(x.data() + first * d, count, d);
  }
};

Problem make_problem(const Kind& kind, std::uint64_t seed) {
  Problem p;
  p.n = 3001;
  p.d = 5;
  const emix::Model truth =
      emix::testing::random_model(kind.family, kind.covariance, 3, p.d, seed, 6);
  p.x = emix::sample(truth, p.n, seed + 1).x;
  p.model = truth;
  for (double& m : p.model.means) m += 0.25;
  for (double& c : p.model.covariances) c *= 1.3;
  for (double& pr : p.model.probabilities) pr = 0.9 * pr + 0.05;
  std::mt19937_64 rng(seed + 2);
  std::uniform_int_distribution<int> u(0, 3);
  for (std::int64_t i = 0; i < p.n; ++i) p.w.push_back(u(rng));
  return p;
}

emix::EngineOptions cpu() {
  emix::EngineOptions o;
  o.device = emix::Device::kCpu;
  return o;
}

// fit()'s options for one EM step from `model` on the CPU engine.
emix::FitOptions one_step_from(const emix::Model& model) {
  emix::FitOptions o = emix::testing::steps_from(model, 1);
  o.engine = cpu();
  return o;
}

// The message of the InvalidArgument fn throws, or "no exception".
template <typename Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const emix::InvalidArgument& e) {
    return std::string(e.what());
  }
  return std::string("no exception");
}

// values() of Gaussian statistics with a tied model's scatters summed into Q_0: only their sum is
// defined (test_util.hpp).
std::vector<double> summed(const emix::Statistics& s, std::vector<double> values) {
  const std::size_t k = static_cast<std::size_t>(s.n_components()),
                    d = static_cast<std::size_t>(s.n_features());
  return emix::testing::with_summed_tied_scatter(
      std::move(values), s.family() == Family::kGaussian && s.covariance() == Covariance::kTied,
      s.n_components(), 3 + k + k * d, d * d);
}
std::vector<double> summed(const emix::Statistics& s) { return summed(s, s.values()); }

// Largest |a - b| over the largest |b| (both vectors of one statistics layout).
double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double scale = 0, worst = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst / scale;
}

// Chunks summed in a stated order give the statistics of all rows to rounding (1e-12 of the
// largest value: the same sums in another order; tied scatters as their sum, as each chunk's
// engine splits it about its own data); the same chunking gives bitwise the same.
TEST(StatisticsApi, ChunksMergedEqualAllRows) {
  for (const Kind& kind : kKinds) {
    const std::uint64_t seed = 31;
    SCOPED_TRACE(emix::testing::describe(kind.family, kind.covariance) + " seed 31");
    const Problem p = make_problem(kind, seed);
    const emix::Statistics all = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
    for (std::int64_t chunk : {1000, 777, 3001}) {
      std::vector<emix::Statistics> parts;
      for (std::int64_t first = 0; first < p.n; first += chunk) {
        const std::int64_t count = std::min(chunk, p.n - first);
        parts.push_back(emix::accumulate(p.model, p.rows(first, count), cpu(), p.w.data() + first));
      }
      const emix::Statistics merged = emix::merge_in_order(parts);
      EXPECT_LE(relative_difference(summed(merged), summed(all)), 1e-12) << "chunk " << chunk;
      // A part without rows (a rank that holds none) is zero and merges as nothing, bitwise.
      emix::Statistics with_empty = parts[0];
      with_empty.merge(emix::accumulate(p.model, p.rows(p.n, 0), cpu()));
      EXPECT_EQ(with_empty.values(), parts[0].values());
      EXPECT_EQ(with_empty.centres(), parts[0].centres());
      const emix::Statistics again = emix::merge_in_order(parts);
      EXPECT_EQ(0, std::memcmp(again.values().data(), merged.values().data(),
                               merged.values().size() * sizeof(double)));
      // One EM step from the merged statistics is the step from all rows' (1e-12 relative).
      const emix::Model from_parts = emix::maximize(p.model, merged);
      const emix::Model from_all = emix::maximize(p.model, all);
      EXPECT_LE(emix::testing::max_relative_difference(from_parts.weights, from_all.weights),
                1e-12);
      EXPECT_LE(emix::testing::max_relative_difference(from_parts.means, from_all.means), 1e-12);
      EXPECT_LE(
          emix::testing::max_relative_difference(from_parts.covariances, from_all.covariances),
          1e-12);
      EXPECT_LE(
          emix::testing::max_relative_difference(from_parts.probabilities, from_all.probabilities),
          1e-12);
    }
  }
}

// accumulate + maximize is one EM iteration: fit() from the same start with max_iter = 1 and
// tol = 0 reports history[0] = the log-likelihood accumulated, and its model is the M-step's.
TEST(StatisticsApi, AccumulateThenMaximizeIsOneIterationOfFit) {
  for (const Kind& kind : kKinds) {
    SCOPED_TRACE(emix::testing::describe(kind.family, kind.covariance) + " seed 41");
    const Problem p = make_problem(kind, 41);
    const emix::FitOptions o = one_step_from(p.model);
    const emix::FitReport r = emix::fit(p.rows(0, p.n), o);
    const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu());
    ASSERT_EQ(r.history.size(), 2u);
    EXPECT_EQ(s.log_likelihood(), r.history[0]);
    EXPECT_EQ(s.weight_sum(), static_cast<double>(p.n));
    emix::MStepOptions m;
    m.reg_covar = o.reg_covar;
    const emix::Model next = emix::maximize(p.model, s, m);
    EXPECT_EQ(next.weights, r.model.weights);
    EXPECT_EQ(next.means, r.model.means);
    EXPECT_EQ(next.covariances, r.model.covariances);
    EXPECT_EQ(next.probabilities, r.model.probabilities);
  }
}

// Statistics taken under one model and recentred onto another's means equal those taken about
// those means directly: the first moments shift by N delta, the second by the cross terms.
// 1e-10 of the largest value: the algebra cancels what centring avoided, here a shift of one
// standard deviation (tied scatters as their sum).
TEST(StatisticsApi, RecentredStatisticsEqualThoseTakenAboutTheNewCentres) {
  for (const Kind& kind : kKinds) {
    if (kind.family != Family::kGaussian) continue;
    SCOPED_TRACE(emix::testing::describe(kind.family, kind.covariance) + " seed 51");
    const Problem p = make_problem(kind, 51);
    const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
    std::vector<double> other = p.model.means;
    for (std::size_t i = 0; i < other.size(); ++i) other[i] += 0.5 + 0.1 * static_cast<double>(i);
    const emix::Statistics moved = s.recentred(other);
    EXPECT_EQ(moved.centres(), other);
    // Direct sums about `other`, from the responsibilities of p.model.
    const std::vector<double> resp = emix::predict_proba(p.model, p.rows(0, p.n), cpu());
    const int k = p.model.n_components, d = p.d;
    const bool full = kind.covariance == Covariance::kFull || kind.covariance == Covariance::kTied;
    std::vector<double> expected = moved.values();
    // values(): log-likelihood, weight sum, entropy, N_k, then S_k and Q_k.
    const std::size_t s_at = 3 + static_cast<std::size_t>(k), q_at = s_at + k * d;
    std::fill(expected.begin() + s_at, expected.end(), 0.0);
    for (std::int64_t n = 0; n < p.n; ++n) {
      for (int c = 0; c < k; ++c) {
        const double g = p.w[n] * resp[n * k + c];
        for (int i = 0; i < d; ++i) {
          const double di = p.x[n * d + i] - other[c * d + i];
          expected[s_at + c * d + i] += g * di;
          if (full) {
            for (int j = 0; j < d; ++j) {
              expected[q_at + (c * d + i) * d + j] += g * di * (p.x[n * d + j] - other[c * d + j]);
            }
          } else {
            expected[q_at + c * d + i] += g * di * di;
          }
        }
      }
    }
    EXPECT_LE(relative_difference(summed(moved), summed(moved, expected)), 1e-10);
  }
}

// A step from a model 1e8 standard deviations from every row: the scatter about its means,
// moved to the new ones, keeps none of a variance's digits. scatter_lost_digits says so, and the
// statistics taken again under the same model about the new means (accumulate_about) give the
// step fit() takes (it does the same second pass), where the first pass's covariances were off
// by orders of magnitude.
TEST(StatisticsApi, AStepThatLostTheScattersDigitsIsTakenAgainAboutTheNewMeans) {
  for (const Kind& kind : kKinds) {
    if (kind.family != Family::kGaussian) continue;
    SCOPED_TRACE(emix::testing::describe(kind.family, kind.covariance) + " seed 61");
    Problem p = make_problem(kind, 61);
    emix::MStepOptions m;
    const emix::Statistics near = emix::accumulate(p.model, p.rows(0, p.n), cpu());
    EXPECT_FALSE(emix::scatter_lost_digits(emix::maximize(p.model, near, m), near));
    for (double& v : p.x) v += 1e8;
    const emix::FitReport r = emix::fit(p.rows(0, p.n), one_step_from(p.model));
    const emix::Statistics first = emix::accumulate(p.model, p.rows(0, p.n), cpu());
    const emix::Model lost = emix::maximize(p.model, first, m);
    ASSERT_TRUE(emix::scatter_lost_digits(lost, first));
    const emix::Statistics again =
        emix::accumulate_about(p.model, lost.means, p.rows(0, p.n), cpu());
    EXPECT_EQ(again.centres(), lost.means);
    EXPECT_EQ(again.log_likelihood(), first.log_likelihood());
    const emix::Model stepped = emix::maximize(p.model, again, m);
    EXPECT_FALSE(emix::scatter_lost_digits(stepped, again));
    // The components that took rows (fit re-seeds the others; maximize leaves that to its
    // caller).
    const std::size_t d = static_cast<std::size_t>(p.d);
    const std::size_t per = stepped.covariance_size() / stepped.n_components;
    const bool tied = kind.covariance == Covariance::kTied;
    int with_rows = 0;
    for (int c = 0; c < stepped.n_components; ++c) {
      if (!(first.values()[3 + c] > 1e-9 * static_cast<double>(p.n))) continue;  // N_c
      ++with_rows;
      const auto slice = [](const std::vector<double>& v, std::size_t at, std::size_t count) {
        return std::vector<double>(v.begin() + at, v.begin() + at + count);
      };
      EXPECT_EQ(slice(stepped.means, c * d, d), slice(r.model.means, c * d, d));
      const std::size_t at = tied ? 0 : c * per, count = tied ? stepped.covariances.size() : per;
      EXPECT_EQ(slice(stepped.covariances, at, count), slice(r.model.covariances, at, count));
      EXPECT_GT(relative_difference(slice(lost.covariances, at, count),
                                    slice(r.model.covariances, at, count)),
                1e-3);
    }
    EXPECT_GE(with_rows, 1);
  }
  const Problem bernoulli = make_problem(Kind{Family::kBernoulli, Covariance::kFull}, 61);
  EXPECT_EQ(message_of([&] {
              emix::accumulate_about(bernoulli.model, bernoulli.model.probabilities,
                                     bernoulli.rows(0, bernoulli.n), cpu());
            }),
            "accumulate_about: Bernoulli and binomial statistics are sums of x itself (not "
            "centred)");
  const Problem gaussian = make_problem(Kind{Family::kGaussian, Covariance::kDiag}, 61);
  EXPECT_EQ(message_of([&] {
              emix::accumulate_about(gaussian.model, {1.0}, gaussian.rows(0, gaussian.n), cpu());
            }),
            "accumulate_about: 1 centres for K x D = 15");
  const emix::Statistics of_bernoulli =
      emix::accumulate(bernoulli.model, bernoulli.rows(0, bernoulli.n), cpu());
  EXPECT_FALSE(emix::scatter_lost_digits(bernoulli.model, of_bernoulli));
  EXPECT_EQ(message_of([&] {
              emix::scatter_lost_digits(gaussian.model, of_bernoulli);
            }).rfind("scatter_lost_digits: statistics of ", 0),
            0u);
}

// Tied statistics are read as their sum over components (include/emix/statistics.hpp): moving
// every Q_k into any one component's gives the same M-step to 1e-12 relative, and so does a
// split into a component that holds no weight (its mean 10^3 standard deviations from every
// row, N_0 = 0), which the M-step must not leave out.
TEST(StatisticsApi, TiedScattersAreReadAsTheirSum) {
  const Kind tied{Family::kGaussian, Covariance::kTied};
  Problem p = make_problem(tied, 71);
  for (int a = 0; a < p.d; ++a) p.model.means[a] = 1e4;
  const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
  ASSERT_EQ(s.values()[3], 0.0) << "component 0 should hold no weight";
  const emix::Model step = emix::maximize(p.model, s);
  const std::size_t k = 3, d = static_cast<std::size_t>(p.d), q = 3 + k + k * d;
  for (std::size_t into = 0; into < k; ++into) {
    emix::Statistics moved = s;
    std::vector<double> total(d * d, 0.0);
    for (std::size_t c = 0; c < k; ++c) {
      for (std::size_t e = 0; e < d * d; ++e) {
        total[e] += s.values()[q + c * d * d + e];
        moved.values()[q + c * d * d + e] = 0;
      }
    }
    std::copy(total.begin(), total.end(), moved.values().begin() + q + into * d * d);
    const emix::Model from_moved = emix::maximize(p.model, moved);
    EXPECT_LE(emix::testing::max_relative_difference(from_moved.covariances, step.covariances),
              1e-12)
        << "into component " << into;
    EXPECT_EQ(from_moved.means, step.means);
  }
}

TEST(StatisticsApi, SerialisedStatisticsComeBackBitwise) {
  for (const Kind& kind : kKinds) {
    const Problem p = make_problem(kind, 61);
    const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
    const std::vector<std::uint8_t> bytes = s.serialize();
    const emix::Statistics back = emix::Statistics::deserialize(bytes.data(), bytes.size());
    EXPECT_EQ(back.family(), s.family());
    EXPECT_EQ(back.covariance(), s.covariance());
    EXPECT_EQ(back.trials(), s.trials());
    EXPECT_EQ(0, std::memcmp(back.values().data(), s.values().data(),
                             s.values().size() * sizeof(double)));
    EXPECT_EQ(back.centres(), s.centres());
    EXPECT_EQ(back.serialize(), bytes);
  }
}

// The documented layout, byte by byte and little-endian: "EMIXSTAT", the version (3), family,
// covariance, K, D, trials (4 bytes each), the numbers of centres and values (8 bytes each),
// then the centres and values as IEEE doubles, then the checksum.
TEST(StatisticsApi, TheBytesAreTheDocumentedLittleEndianLayout) {
  emix::Model m = emix::testing::random_model(emix::Family::kGaussian, emix::Covariance::kDiag, 2,
                                              3, 7, 1, 3.0);
  const emix::Statistics s(m);
  const std::vector<std::uint8_t> bytes = s.serialize();
  const auto u32 = [&bytes](std::size_t at) {
    return static_cast<std::uint32_t>(bytes[at]) | static_cast<std::uint32_t>(bytes[at + 1]) << 8 |
           static_cast<std::uint32_t>(bytes[at + 2]) << 16 |
           static_cast<std::uint32_t>(bytes[at + 3]) << 24;
  };
  const auto u64 = [&u32](std::size_t at) {
    return static_cast<std::uint64_t>(u32(at)) | static_cast<std::uint64_t>(u32(at + 4)) << 32;
  };
  ASSERT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "EMIXSTAT");
  EXPECT_EQ(u32(8), 3u);
  EXPECT_EQ(u32(12), static_cast<std::uint32_t>(emix::Family::kGaussian));
  EXPECT_EQ(u32(16), static_cast<std::uint32_t>(emix::Covariance::kDiag));
  EXPECT_EQ(u32(20), 2u);
  EXPECT_EQ(u32(24), 3u);
  EXPECT_EQ(u32(28), 1u);
  EXPECT_EQ(u64(32), s.centres().size());
  EXPECT_EQ(u64(40), s.values().size());
  ASSERT_EQ(bytes.size(), 48 + 8 * (s.centres().size() + s.values().size()) + 8);
  for (std::size_t i = 0; i < s.centres().size(); ++i) {
    const std::uint64_t bits = u64(48 + 8 * i);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    EXPECT_EQ(value, s.centres()[i]) << "centre " << i;
  }
}

// Each malformed input gets InvalidArgument naming what is wrong, never a crash.
TEST(StatisticsApi, BadInputsAreInvalidArguments) {
  const Problem p = make_problem(kKinds[0], 71);
  const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  const std::vector<std::uint8_t> good = s.serialize();
  EXPECT_NE(message_of([&] { emix::Statistics::deserialize(good.data(), 10); }).find("header"),
            std::string::npos);
  std::vector<std::uint8_t> bad = good;
  bad[0] = 'X';
  EXPECT_NE(
      message_of([&] { emix::Statistics::deserialize(bad.data(), bad.size()); }).find("magic"),
      std::string::npos);
  EXPECT_NE(message_of([&] {
              emix::Statistics::deserialize(good.data(), good.size() - 8);
            }).find("bytes"),
            std::string::npos);
  bad = good;
  bad[23] = 0x80;  // the high byte of K (little-endian, at byte 20): K < 0
  EXPECT_NE(message_of([&] { emix::Statistics::deserialize(bad.data(), bad.size()); }).find("K ="),
            std::string::npos);
  // A header claiming K = 2^31 - 1 and D = 2^20 (whose K x D x D wraps 64 bits): refused by the
  // size of the bytes given, before anything is sized from it.
  bad = good;
  const std::int32_t huge_k = std::numeric_limits<std::int32_t>::max(), huge_d = 1 << 20;
  std::memcpy(bad.data() + 20, &huge_k, sizeof huge_k);
  std::memcpy(bad.data() + 24, &huge_d, sizeof huge_d);
  EXPECT_NE(message_of([&] {
              emix::Statistics::deserialize(bad.data(), bad.size());
            }).find("do not fit in"),
            std::string::npos);
  // Statistics under another model cannot be merged without recentring.
  emix::Model moved = p.model;
  moved.means[0] += 1.0;
  emix::Statistics other = emix::accumulate(moved, p.rows(0, 10), cpu());
  emix::Statistics copy = s;
  EXPECT_NE(message_of([&] { copy.merge(other); }).find("centred elsewhere"), std::string::npos);
  // Another shape.
  const emix::Model diag =
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 3, 5, 1);
  EXPECT_NE(message_of([&] { copy.merge(emix::Statistics(diag)); }).find("cannot merge"),
            std::string::npos);
  EXPECT_NE(message_of([&] { emix::maximize(diag, s); }).find("maximize"), std::string::npos);
  EXPECT_NE(message_of([&] { copy.scale(-1.0); }).find("scale"), std::string::npos);
  EXPECT_NE(message_of([] { emix::merge_in_order({}); }).find("no statistics"), std::string::npos);
}

// Statistics whose vectors do not hold what K and D need (moved from, values() resized, or
// default-constructed): recentred read and wrote past them (a crash), serialize wrote bytes that
// only the receiving side refused, and merge named two equal shapes. Each now says what is wrong.
TEST(StatisticsApi, StatisticsOfTheWrongSizesAreRefusedByEveryCall) {
  const Problem p = make_problem(kKinds[0], 72);
  const emix::Statistics good = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  emix::Statistics resized = good;
  resized.values().resize(3);
  emix::Statistics moved_from = good;
  const emix::Statistics taken = std::move(moved_from);
  ASSERT_EQ(taken.values(), good.values());
  const std::string need = " values, but K = 3 and D = 5 need 15 and " +
                           std::to_string(good.values().size()) +
                           " (moved from, or values() resized)";
  EXPECT_EQ(message_of([&] { (void)resized.recentred(p.model.means); }),
            "statistics: recentred: 15 centres and 3" + need);
  EXPECT_EQ(message_of([&] { (void)resized.serialize(); }),
            "statistics: serialize: 15 centres and 3" + need);
  emix::Statistics copy = good;
  EXPECT_EQ(message_of([&] { copy.merge(resized); }), "statistics: merge: 15 centres and 3" + need);
  EXPECT_EQ(message_of([&] { resized.merge(good); }),
            "statistics: merge into: 15 centres and 3" + need);
  EXPECT_EQ(message_of([&] { emix::maximize(p.model, resized); }),
            "maximize: 15 centres and 3" + need);
  // A moved-from vector is left valid but unspecified: empty in practice, refused either way.
  if (moved_from.values().empty()) {
    EXPECT_EQ(message_of([&] { (void)moved_from.recentred(p.model.means); }),
              "statistics: recentred: 0 centres and 0" + need);
  }
  EXPECT_EQ(message_of([] { (void)emix::Statistics().serialize(); }),
            "statistics: serialize: statistics of K = 0 components and D = 0 features "
            "(default-constructed, or moved from): make them from a model, accumulate, or "
            "deserialize");
  // The online EM that resumes from such statistics refuses them at once.
  EXPECT_EQ(message_of([&] { emix::OnlineEm(p.model, {}, resized, 5, 0.0); }),
            "online EM: the running statistics: 15 centres and 3" + need);
}

// A factor that takes the weight sum below DBL_MIN: every sum lost its digits, and the M-step of
// scale(1e-320) moved the means by 5e-3 of their value, without a word. 1e-300 keeps them.
TEST(StatisticsApi, ScalingIntoSubnormalNumbersIsRefused) {
  const Problem p = make_problem(kKinds[0], 74);
  const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  emix::Statistics small = s;
  small.scale(1e-300);
  EXPECT_LT(
      relative_difference(emix::maximize(p.model, small).means, emix::maximize(p.model, s).means),
      1e-12);
  emix::Statistics tiny = s;
  EXPECT_NE(message_of([&] { tiny.scale(1e-320); }).find("below the smallest normal double"),
            std::string::npos);
  EXPECT_EQ(tiny.values(), s.values());  // refused before any change
  tiny.scale(0.0);                       // empties them, as online EM's first step of size 1 does
  EXPECT_EQ(tiny.weight_sum(), 0.0);
}

// implied_by takes reg_covar as maximize does: NaN gave NaN statistics, and -1 statistics that
// no M-step takes.
TEST(StatisticsApi, ImpliedByRefusesTheRegCovarMaximizeRefuses) {
  const Problem p = make_problem(kKinds[0], 73);
  for (const double reg_covar : {std::nan(""), -1.0, HUGE_VAL}) {
    EXPECT_THROW((void)emix::Statistics::implied_by(p.model, reg_covar), emix::OptionError);
  }
  EXPECT_NO_THROW((void)emix::Statistics::implied_by(p.model, 0.0));
}

// Bytes changed after they were written into values an accumulation could give (a sum moved a
// little) pass every value check: the checksum written with them (format version 3) refuses
// them. Version 2, without a checksum (a pickled estimator's checkpoint may hold it), is still
// read.
TEST(StatisticsApi, BytesChangedAfterWritingAreRefusedByTheChecksum) {
  const Problem p = make_problem(kKinds[0], 74);  // K = 3, D = 5
  const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  const std::vector<std::uint8_t> good = s.serialize();
  const std::size_t values = 48 + 15 * sizeof(double);
  ASSERT_EQ(good.size(), values + s.values().size() * sizeof(double) + 8);
  std::vector<std::uint8_t> moved = good;
  const double sum = s.values()[3 + 3] * (1 + 1e-9);  // S of component 0, feature 0
  std::memcpy(moved.data() + values + (3 + 3) * sizeof(double), &sum, sizeof sum);
  const std::string message =
      message_of([&] { emix::Statistics::deserialize(moved.data(), moved.size()); });
  EXPECT_EQ(message,
            "statistics bytes: the checksum does not match: the bytes changed after they were "
            "written (storage or transfer)");
  // One flipped bit of the checksum itself, too.
  std::vector<std::uint8_t> flipped = good;
  flipped.back() ^= 0x01;
  EXPECT_NE(message_of([&] {
              emix::Statistics::deserialize(flipped.data(), flipped.size());
            }).find("checksum"),
            std::string::npos);

  // Version 2: the same bytes without the checksum.
  std::vector<std::uint8_t> old(good.begin(), good.end() - 8);
  const std::uint32_t two = 2;
  std::memcpy(old.data() + 8, &two, sizeof two);
  const emix::Statistics back = emix::Statistics::deserialize(old.data(), old.size());
  EXPECT_EQ(
      0, std::memcmp(back.values().data(), s.values().data(), s.values().size() * sizeof(double)));
  EXPECT_EQ(back.serialize(), good);  // written back as version 3
  const std::uint32_t four = 4;
  std::memcpy(old.data() + 8, &four, sizeof four);
  EXPECT_EQ(message_of([&] { emix::Statistics::deserialize(old.data(), old.size()); }),
            "statistics bytes: format version 4, this emix reads versions 2 to 3");

  // A covariance type or trials in a family without them: bytes no accumulation writes (here
  // version 2, whose lack of a checksum lets them through to the checks of their fields), which
  // would then refuse to merge with the family's own statistics as "another shape".
  const emix::Model bernoulli =
      emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 2, 3, 9);
  std::vector<std::uint8_t> discrete = emix::Statistics(bernoulli).serialize();
  discrete.resize(discrete.size() - 8);
  std::memcpy(discrete.data() + 8, &two, sizeof two);
  std::vector<std::uint8_t> with_covariance = discrete;
  const auto diag = static_cast<std::uint32_t>(Covariance::kDiag);
  std::memcpy(with_covariance.data() + 16, &diag, sizeof diag);
  EXPECT_EQ(message_of([&] {
              emix::Statistics::deserialize(with_covariance.data(), with_covariance.size());
            }),
            "statistics bytes: a bernoulli mixture's statistics with covariance diag (that "
            "family has none: full)");
  std::vector<std::uint8_t> with_trials = discrete;
  const std::int32_t three = 3;
  std::memcpy(with_trials.data() + 28, &three, sizeof three);
  EXPECT_NE(message_of([&] {
              emix::Statistics::deserialize(with_trials.data(), with_trials.size());
            }).find("with trials = 3 (only binomial mixtures have trials)"),
            std::string::npos);
  EXPECT_NO_THROW(emix::Statistics::deserialize(discrete.data(), discrete.size()));
}

// Weights a fit refuses are refused by accumulate and online EM too, rather than giving a step
// that silently differs from the unit-weight one (1e-300: means 1e-8 off; 1e-310: the rows
// dropped); accumulate_piece leaves the rule to a caller who judges every piece's weights
// together (a Dask block may hold only tiny weights beside blocks of normal ones). Statistics
// whose sums overflowed (a weight of 1e308) are refused where they are made, and never become
// bytes that deserialize refuses or a merge that calls NaN an overflow.
TEST(StatisticsApi, WeightsThatFlushOrOverflowAreRefusedWhereTheStatisticsAreMade) {
  const Problem p = make_problem(kKinds[0], 75);
  const emix::DataView rows = p.rows(0, p.n);
  for (const double tiny : {1e-300, 1e-310}) {
    const std::vector<double> w(static_cast<std::size_t>(p.n), tiny);
    EXPECT_NE(message_of([&] {
                emix::accumulate(p.model, rows, cpu(), w.data());
              }).find("sample weights are all below"),
              std::string::npos)
        << tiny;
    EXPECT_EQ(message_of([&] { emix::accumulate_piece(p.model, nullptr, rows, cpu(), w.data()); }),
              "no exception");
    emix::OnlineEm online(p.model);
    EXPECT_NE(message_of([&] {
                online.partial_fit(rows, cpu(), w.data());
              }).find("sample weights are all below"),
              std::string::npos)
        << tiny;
    EXPECT_EQ(online.steps(), 0);
  }
  std::vector<double> huge(static_cast<std::size_t>(p.n), 1.0);
  huge[0] = 1e308;
  std::string overflow = "no exception";
  try {
    emix::accumulate(p.model, rows, cpu(), huge.data());
  } catch (const emix::NumericalError& e) {
    overflow = e.what();
  }
  EXPECT_NE(overflow.find("overflow"), std::string::npos) << overflow;
  EXPECT_NE(overflow.find("scale them down"), std::string::npos) << overflow;

  const emix::Statistics good = emix::accumulate(p.model, rows, cpu());
  emix::Statistics with_nan = good;
  with_nan.values()[5] = std::numeric_limits<double>::quiet_NaN();
  emix::Statistics target = good;
  const std::string merged = message_of([&] { target.merge(with_nan); });
  EXPECT_NE(merged.find("is nan"), std::string::npos) << merged;
  EXPECT_EQ(merged.find("overflow"), std::string::npos) << merged;
  EXPECT_EQ(target.values(), good.values());
  EXPECT_NE(message_of([&] { with_nan.serialize(); }).find("is nan"), std::string::npos);
}

// Bytes whose header is right but whose values no accumulation gives (one flipped bit) are
// refused, and so are statistics without weight: the M-step would make NaN or negative weights of
// them. Offsets: the 48-byte header, then K x D centres, then [log-likelihood, weight sum,
// entropy, N_k, S, Q].
TEST(StatisticsApi, ImpossibleValuesAndNoWeightAreRefused) {
  const Problem p = make_problem(kKinds[0], 73);  // K = 3, D = 5
  const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  const std::vector<std::uint8_t> good = s.serialize();
  const std::size_t values = 48 + 15 * sizeof(double);
  const auto with_value = [&](std::size_t index, double v) {
    std::vector<std::uint8_t> bytes = good;
    std::memcpy(bytes.data() + values + index * sizeof(double), &v, sizeof v);
    return bytes;
  };
  const auto refusal = [&](const std::vector<std::uint8_t>& bytes) {
    return message_of([&] { emix::Statistics::deserialize(bytes.data(), bytes.size()); });
  };
  const double n_k = s.values()[3 + 2];
  EXPECT_NE(refusal(with_value(3 + 2, -n_k)).find("N_k of component 2 is negative"),
            std::string::npos);
  EXPECT_NE(refusal(with_value(1, -1.0)).find("the weight sum is negative"), std::string::npos);
  EXPECT_NE(refusal(with_value(3 + 3 + 7, std::numeric_limits<double>::quiet_NaN()))
                .find("S of component 1, feature 2 is nan"),
            std::string::npos);
  EXPECT_NE(refusal(with_value(0, std::numeric_limits<double>::infinity()))
                .find("the log-likelihood is inf"),
            std::string::npos);
  std::vector<std::uint8_t> centre = good;
  const double huge = std::numeric_limits<double>::infinity();
  std::memcpy(centre.data() + 48, &huge, sizeof huge);
  EXPECT_NE(refusal(centre).find("centre 0 is inf"), std::string::npos);

  // A Bernoulli mixture's centres are zero.
  const emix::Model bernoulli =
      emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 2, 3, 5);
  const std::vector<double> ones(3 * 4, 1.0);
  const std::vector<std::uint8_t> b =
      emix::accumulate(bernoulli, emix::DataView::host(ones.data(), 4, 3), cpu()).serialize();
  std::vector<std::uint8_t> b_centre = b;
  const double one = 1.0;
  std::memcpy(b_centre.data() + 48, &one, sizeof one);
  EXPECT_NE(refusal(b_centre).find("centres are 0"), std::string::npos);

  // Rows of weight zero: valid statistics (a shard may hold them), but no M-step.
  const std::vector<double> zero(static_cast<std::size_t>(p.n), 0.0);
  const emix::Statistics none = emix::accumulate(p.model, p.rows(0, p.n), cpu(), zero.data());
  EXPECT_NE(message_of([&] { emix::maximize(p.model, none); }).find("hold no weight"),
            std::string::npos);
}

// Moments no accumulation gives, each of which the M-step would have turned into a covariance
// that is not positive definite (a model nothing can score, and that model files refuse): a
// negative sum of squares, a mean moved further than the scatter allows. Legitimate statistics
// are taken: of collinear features far from the origin, whose scatter about the new mean is
// singular to rounding, and float32 Bernoulli sums of a feature that is 1 in every row, whose S_k
// rounds above N_k (the M-step clamps the probability).
TEST(StatisticsApi, InconsistentMomentsAreRefusedByTheMStep) {
  for (const Kind& kind : kKinds) {
    const Problem p = make_problem(kind, 91);  // K = 3, D = 5
    const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
    const std::string what = emix::testing::describe(kind.family, kind.covariance);
    ASSERT_EQ(message_of([&] { emix::maximize(p.model, s); }), "no exception") << what;
    if (kind.family == Family::kGaussian) {  // recentred (a tied Q_k alone may then be negative)
      std::vector<double> other = p.model.means;
      for (double& m : other) m += 0.3;
      ASSERT_EQ(message_of([&] { emix::maximize(p.model, s.recentred(other)); }), "no exception")
          << what;
    }
    const std::size_t n_k = 3 + 1, s_1 = 3 + 3 + 5;  // component 1's N_k and S
    const std::size_t q = 3 + 3 + 15;                // where the Q_k begin
    if (kind.family != Family::kGaussian) continue;
    const bool full = kind.covariance == Covariance::kFull || kind.covariance == Covariance::kTied;
    const std::size_t q_1_00 = q + (full ? 25 : 5);  // component 1's Q[0][0]
    emix::Statistics negative = s;
    if (kind.covariance == Covariance::kTied) {  // only the sum is defined: all of them negated
      for (std::size_t c = 0; c < 3; ++c) negative.values()[q + c * 25] *= -1;
    } else {
      negative.values()[q_1_00] *= -1;
    }
    EXPECT_NE(message_of([&] { emix::maximize(p.model, negative); })
                  .find(kind.covariance == Covariance::kTied
                            ? "the components' summed scatter of feature 0 is negative"
                            : "the scatter of component 1, feature 0 is negative"),
              std::string::npos)
        << what;
    // S^2 / N = 100 Q: a variance of -99 Q / N (tied: Q, the sum over components).
    emix::Statistics moved = s;
    const double q_00 =
        kind.covariance == Covariance::kTied ? summed(s)[q] : moved.values()[q_1_00];
    moved.values()[s_1] = 10 * std::sqrt(moved.values()[n_k] * q_00);
    const std::string expected = kind.covariance == Covariance::kTied
                                     ? "summed scatter about their new means is not positive"
                                     : "component 1: its scatter about its new mean";
    EXPECT_NE(message_of([&] { emix::maximize(p.model, moved); }).find(expected), std::string::npos)
        << what;
  }

  const emix::Model bernoulli =
      emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 3, 4, 17);
  std::vector<float> ones = [&] {
    const std::vector<double> drawn = emix::sample(bernoulli, 6000, 18).x;
    return std::vector<float>(drawn.begin(), drawn.end());
  }();
  for (std::size_t i = 0; i < ones.size(); i += 4) ones[i] = 1.0f;
  const emix::Statistics float_sums =
      emix::accumulate(bernoulli, emix::DataView::host(ones.data(), 6000, 4), cpu());
  EXPECT_EQ(message_of([&] { emix::maximize(bernoulli, float_sums); }), "no exception");

  // Two equal columns at 1e6: a scatter singular to rounding is legitimate.
  emix::Model model = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 2, 3, 5);
  std::vector<double> x = emix::sample(model, 2000, 6).x;
  for (std::size_t i = 0; i < x.size(); i += 3) {
    x[i] += 1e6;
    x[i + 1] = x[i];
  }
  for (int c = 0; c < 2; ++c) {
    model.means[c * 3] += 1e6;
    model.means[c * 3 + 1] = model.means[c * 3];
  }
  for (const Covariance covariance : {Covariance::kFull, Covariance::kTied}) {
    emix::Model start = model;
    if (covariance == Covariance::kTied) {
      start.covariance = covariance;
      start.covariances.resize(9);
    }
    const emix::Statistics s =
        emix::accumulate(start, emix::DataView::host(x.data(), 2000, 3), cpu());
    emix::MStepOptions no_regularisation;
    no_regularisation.reg_covar = 0;
    EXPECT_EQ(message_of([&] { emix::maximize(start, s, no_regularisation); }), "no exception")
        << emix::to_string(covariance);
  }
}

}  // namespace

// A scatter value spoilt in one triangle of a full (or tied) Q: the M-step averages the two
// triangles, and the check read only the lower one, so a spoilt upper value gave a model with a
// negative eigenvalue (-940 against 942 in an audit). Both triangles are now checked, by their
// mean.
TEST(StatisticsApi, AScatterSpoiltInEitherTriangleIsRefused) {
  for (const Covariance covariance : {Covariance::kFull, Covariance::kTied}) {
    const Problem p = make_problem({Family::kGaussian, covariance}, 93);  // K = 3, D = 5
    const emix::Statistics s = emix::accumulate(p.model, p.rows(0, p.n), cpu(), p.w.data());
    const std::size_t q = 3 + 3 + 15;  // where the Q_k begin, D x D each
    for (const std::size_t at : {q + 1 * 5 + 0, q + 0 * 5 + 1}) {  // Q_0[1][0], then Q_0[0][1]
      emix::Statistics spoilt = s;
      spoilt.values()[at] *= 1e4;
      EXPECT_NE(message_of([&] { emix::maximize(p.model, spoilt); }).find("not positive"),
                std::string::npos)
          << emix::testing::describe(Family::kGaussian, covariance) << ", value " << at - q;
    }
  }
}

// Merging or scaling into values past double's range is refused, the statistics left as they
// were (they would serialise into bytes that deserialize refuses); accumulate checks its engine
// options as predict and score do.
TEST(StatisticsApi, OverflowAndBadEngineOptionsAreRefused) {
  const Problem p = make_problem({Family::kGaussian, Covariance::kDiag}, 95);
  const std::vector<double> huge(static_cast<std::size_t>(p.n), 5e304);
  emix::Statistics a = emix::accumulate(p.model, p.rows(0, p.n), cpu(), huge.data());
  const emix::Statistics before = a;
  EXPECT_NE(message_of([&] { a.merge(before); }).find("merging overflows"), std::string::npos);
  EXPECT_EQ(a.values(), before.values());
  EXPECT_NE(message_of([&] { a.scale(10); }).find("scaling by 10 overflows"), std::string::npos);
  EXPECT_EQ(a.values(), before.values());
  EXPECT_EQ(message_of([&] { a.scale(0.5); }), "no exception");

  // values()[0], the log-likelihood, may be -inf (a row of density 0), but two finite ones whose
  // sum overflows to -inf were merged as if one had been.
  emix::Statistics low = emix::accumulate(p.model, p.rows(0, p.n), cpu());
  low.values()[0] = -1.28e308;
  const emix::Statistics low_before = low;
  EXPECT_NE(message_of([&] { low.merge(low_before); }).find("merging overflows"),
            std::string::npos);
  EXPECT_EQ(low.values(), low_before.values());
  EXPECT_NE(message_of([&] { low.scale(2); }).find("overflows"), std::string::npos);
  emix::Statistics zero_density = low_before;
  zero_density.values()[0] = -std::numeric_limits<double>::infinity();
  EXPECT_EQ(message_of([&] { low.merge(zero_density); }), "no exception");
  EXPECT_EQ(low.log_likelihood(), -std::numeric_limits<double>::infinity());

  emix::EngineOptions bad = cpu();
  bad.n_threads = -3;
  EXPECT_NE(message_of([&] { emix::accumulate(p.model, p.rows(0, 10), bad); }).find("n_threads"),
            std::string::npos);
}
