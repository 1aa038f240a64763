// Model selection: the grid fitted together equals each candidate fitted alone, bitwise; the
// criteria match their definitions; the true K of a known mixture is chosen; runs repeat.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

struct Data {
  emix::Model truth;
  std::vector<double> x;
  std::int64_t n = 0;
  emix::DataView view() const { return emix::DataView::host(x.data(), n, truth.n_features); }
};

// Three well-separated components in 4 dimensions.
Data make_data(std::uint64_t seed, std::int64_t n = 3000) {
  Data d;
  d.truth = emix::testing::random_model(Family::kGaussian, Covariance::kFull, 3, 4, seed, 1, 8.0);
  d.n = n;
  d.x = emix::sample(d.truth, n, seed + 1).x;
  return d;
}

emix::SelectOptions grid(std::vector<int> ks, std::vector<Covariance> covariances) {
  emix::SelectOptions o;
  o.n_components = std::move(ks);
  o.covariances = std::move(covariances);
  o.fit.engine.device = emix::Device::kCpu;
  o.fit.seed = 7;
  o.fit.n_init = 2;
  o.fit.max_iter = 200;
  return o;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Every candidate, its restarts sharing passes with all the others, is bitwise the fit() of its
// K and covariance type alone: the same parameters, log-likelihoods and iterations.
TEST(Select, EachCandidateEqualsItsOwnFit) {
  const Data data = make_data(5);
  const emix::SelectOptions o = grid({1, 2, 3, 5}, {Covariance::kFull, Covariance::kDiag,
                                                    Covariance::kSpherical, Covariance::kTied});
  const emix::SelectReport r = emix::select(data.view(), o);
  ASSERT_EQ(r.candidates.size(), 16u);
  int max_iter = 0;
  for (const emix::SelectCandidate& c : r.candidates) {
    emix::FitOptions alone = o.fit;
    alone.n_components = c.n_components;
    alone.covariance = c.covariance;
    const emix::FitReport f = emix::fit(data.view(), alone);
    const std::string what =
        std::string(emix::to_string(c.covariance)) + " K=" + std::to_string(c.n_components);
    EXPECT_TRUE(same_bits(c.fit.model.weights, f.model.weights)) << what;
    EXPECT_TRUE(same_bits(c.fit.model.means, f.model.means)) << what;
    EXPECT_TRUE(same_bits(c.fit.model.covariances, f.model.covariances)) << what;
    EXPECT_TRUE(same_bits(c.fit.history, f.history)) << what;
    EXPECT_EQ(c.fit.n_iter, f.n_iter) << what;
    EXPECT_EQ(c.fit.converged, f.converged) << what;
    EXPECT_EQ(c.fit.best_init, f.best_init) << what;
    max_iter = std::max(max_iter, c.fit.n_iter);
  }
  // Candidates that converge drop out: the passes are those of the longest run, not the sum.
  EXPECT_EQ(r.passes, max_iter + 1);
}

// BIC and AIC as emix::bic / emix::aic define them (the same numbers, summed in another order:
// 1e-12 relative); ICL is BIC plus twice the responsibilities' entropy, computed here from
// predict_proba over all rows at once.
TEST(Select, CriteriaMatchTheirDefinitions) {
  const Data data = make_data(11);
  emix::SelectOptions o = grid({2, 3, 4}, {Covariance::kFull, Covariance::kDiag});
  o.fit.n_init = 1;
  const emix::SelectReport r = emix::select(data.view(), o);
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  for (const emix::SelectCandidate& c : r.candidates) {
    const double bic = emix::bic(c.fit.model, data.view(), cpu);
    const double aic = emix::aic(c.fit.model, data.view(), cpu);
    EXPECT_NEAR(c.bic, bic, 1e-12 * std::abs(bic));
    EXPECT_NEAR(c.aic, aic, 1e-12 * std::abs(aic));
    EXPECT_EQ(c.n_parameters, c.fit.model.n_parameters());
    const std::vector<double> resp = emix::predict_proba(c.fit.model, data.view(), cpu);
    double entropy = 0;
    for (double p : resp) {
      if (p > 0) entropy -= p * std::log(p);
    }
    EXPECT_NEAR(c.icl, c.bic + 2 * entropy, 1e-12 * std::abs(c.icl));
    EXPECT_GE(c.icl, c.bic);
  }
}

// A weighted selection's BIC and AIC are emix::bic / emix::aic with the same weights (log L the
// weighted sum, and BIC's count the weights' sum); before, those took no weights, and a weighted
// selection's best model scored 1164 in the table against 600 from bic() (the hunt's case).
// Whole-number weights are the rows repeated: the same criteria to 1e-12.
TEST(Select, WeightedCriteriaMatchTheWeightedDefinitions) {
  const Data data = make_data(12);
  std::vector<double> weights(static_cast<std::size_t>(data.view().rows));
  std::vector<double> repeated;
  const int d = static_cast<int>(data.view().cols);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    weights[i] = static_cast<double>(i % 3);
    for (int r = 0; r < static_cast<int>(weights[i]); ++r) {
      repeated.insert(repeated.end(), data.x.begin() + static_cast<std::ptrdiff_t>(i * d),
                      data.x.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
    }
  }
  const auto repeated_view =
      emix::DataView::host(repeated.data(), static_cast<std::int64_t>(repeated.size()) / d, d);
  emix::SelectOptions o = grid({2, 3}, {Covariance::kFull, Covariance::kDiag});
  o.fit.n_init = 1;
  const emix::SelectReport r = emix::select(data.view(), o, weights.data());
  emix::EngineOptions cpu;
  cpu.device = emix::Device::kCpu;
  for (const emix::SelectCandidate& c : r.candidates) {
    const double bic = emix::bic(c.fit.model, data.view(), cpu, weights.data());
    const double aic = emix::aic(c.fit.model, data.view(), cpu, weights.data());
    EXPECT_NEAR(c.bic, bic, 1e-12 * std::abs(bic));
    EXPECT_NEAR(c.aic, aic, 1e-12 * std::abs(aic));
    EXPECT_NEAR(emix::bic(c.fit.model, repeated_view, cpu), bic, 1e-12 * std::abs(bic));
    EXPECT_NEAR(emix::aic(c.fit.model, repeated_view, cpu), aic, 1e-12 * std::abs(aic));
  }
}

// On data drawn from three well-separated components, every criterion picks K = 3.
TEST(Select, PicksTheTrueNumberOfComponents) {
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    const Data data = make_data(seed, 4000);
    for (emix::Criterion criterion :
         {emix::Criterion::kBic, emix::Criterion::kAic, emix::Criterion::kIcl}) {
      emix::SelectOptions o = grid({1, 2, 3, 4, 5, 6}, {Covariance::kFull, Covariance::kDiag});
      o.criterion = criterion;
      const emix::SelectReport r = emix::select(data.view(), o);
      EXPECT_EQ(r.candidates[r.best].n_components, 3)
          << "seed " << seed << " criterion " << emix::to_string(criterion);
      EXPECT_EQ(r.candidates[r.best].covariance, Covariance::kFull);
    }
  }
}

// Two runs give bitwise the same report (times aside): the chosen K never changes.
TEST(Select, IsDeterministic) {
  const Data data = make_data(31);
  const emix::SelectOptions o = grid({1, 2, 3, 4}, {Covariance::kDiag, Covariance::kFull});
  const emix::SelectReport a = emix::select(data.view(), o);
  const emix::SelectReport b = emix::select(data.view(), o);
  ASSERT_EQ(a.candidates.size(), b.candidates.size());
  EXPECT_EQ(a.best, b.best);
  for (std::size_t i = 0; i < a.candidates.size(); ++i) {
    EXPECT_EQ(a.candidates[i].bic, b.candidates[i].bic);
    EXPECT_EQ(a.candidates[i].icl, b.candidates[i].icl);
    EXPECT_TRUE(same_bits(a.candidates[i].fit.model.means, b.candidates[i].fit.model.means));
  }
}

// Bernoulli mixtures have no covariance grid; with sample weights (repetition counts) the BIC's
// sample size is the weight total.
TEST(Select, BernoulliTakesNoCovarianceGridAndWeightsCountInTheBic) {
  const emix::Model truth =
      emix::testing::random_model(Family::kBernoulli, Covariance::kFull, 2, 6, 41);
  const std::vector<double> x = emix::sample(truth, 500, 42).x;
  std::vector<double> weights;
  for (std::int64_t n = 0; n < 500; ++n) weights.push_back(1 + static_cast<int>(n % 3));
  emix::SelectOptions o = grid({1, 2, 3}, {Covariance::kDiag, Covariance::kFull});
  o.fit.family = Family::kBernoulli;
  o.fit.init = emix::Init::kRandomFromData;
  o.fit.n_init = 1;
  o.fit.tol = 0;
  o.fit.max_iter = 20;
  const emix::SelectReport r =
      emix::select(emix::DataView::host(x.data(), 500, 6), o, weights.data());
  ASSERT_EQ(r.candidates.size(), 3u);  // one covariance entry for Bernoulli
  double total = 0;
  for (double w : weights) total += w;
  for (const emix::SelectCandidate& c : r.candidates) {
    EXPECT_NEAR(c.bic,
                -2 * c.fit.log_likelihood + static_cast<double>(c.n_parameters) * std::log(total),
                1e-12 * std::abs(c.bic));
  }
}

// Data in a plane (the third column 0), without reg_covar: every full covariance has an exact zero
// row, so that its Cholesky factorisation fails on every machine (a plane x3 = x1 + x2 is singular
// only up to rounding, and one CPU's rounding factorised it), and every spherical one is positive.
// The full candidates fail alone, reported with infinite criteria and their error; the spherical
// ones are fitted as fit() fits them.
TEST(Select, ACandidateThatFailsIsReportedAndLeftOut) {
  Data plane = make_data(61, 600);
  plane.truth.n_features = 3;
  std::vector<double> x;
  for (std::int64_t n = 0; n < plane.n; ++n) {
    const double a = plane.x[static_cast<std::size_t>(n) * 4];
    const double b = plane.x[static_cast<std::size_t>(n) * 4 + 1];
    x.insert(x.end(), {a, b, 0.0});
  }
  plane.x = x;
  emix::SelectOptions o = grid({1, 2}, {Covariance::kFull, Covariance::kSpherical});
  o.fit.reg_covar = 0;
  const emix::SelectReport r = emix::select(plane.view(), o);
  ASSERT_EQ(r.candidates.size(), 4u);
  for (const emix::SelectCandidate& c : r.candidates) {
    SCOPED_TRACE("K = " + std::to_string(c.n_components) + " " + emix::to_string(c.covariance));
    if (c.covariance == Covariance::kFull) {
      EXPECT_TRUE(std::isinf(c.bic) && std::isinf(c.aic) && std::isinf(c.icl));
      ASSERT_FALSE(c.fit.warnings.empty());
      EXPECT_NE(c.fit.warnings.back().find("not positive definite"), std::string::npos)
          << c.fit.warnings.back();
    } else {
      emix::FitOptions alone = o.fit;
      alone.n_components = c.n_components;
      alone.covariance = c.covariance;
      const emix::FitReport f = emix::fit(plane.view(), alone);
      EXPECT_TRUE(same_bits(c.fit.model.means, f.model.means));
      EXPECT_TRUE(std::isfinite(c.bic));
    }
  }
  EXPECT_EQ(r.candidates[r.best].covariance, Covariance::kSpherical);
  // Nothing left to choose from: the error itself, naming the candidate.
  emix::SelectOptions only_full = o;
  only_full.covariances = {Covariance::kFull};
  try {
    emix::select(plane.view(), only_full);
    ADD_FAILURE() << "no NumericalError";
  } catch (const emix::NumericalError& e) {
    EXPECT_NE(std::string(e.what()).find("every candidate failed; K = 1 full"), std::string::npos)
        << e.what();
  }
}

// Components that keep collapsing onto coinciding rows (reg_covar 0) have a log-likelihood that
// grows without bound: such a candidate would win every criterion, and is left out instead.
TEST(Select, ACandidateWhoseComponentsKeptCollapsingIsLeftOut) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  std::vector<double> x;
  for (int n = 0; n < 200 * 3; ++n) x.push_back(normal(rng));
  for (int n = 0; n < 20; ++n) x.insert(x.end(), {5.0, 5.0, 5.0});
  emix::SelectOptions o = grid({1, 2}, {Covariance::kDiag});
  o.fit.reg_covar = 0;
  o.fit.n_init = 1;
  const emix::SelectReport r = emix::select(emix::DataView::host(x.data(), 220, 3), o);
  ASSERT_EQ(r.candidates.size(), 2u);
  const emix::SelectCandidate& two = r.candidates[1];
  EXPECT_TRUE(std::isinf(two.bic));
  ASSERT_FALSE(two.fit.warnings.empty());
  EXPECT_NE(two.fit.warnings.back().find("left out of the choice: components kept collapsing"),
            std::string::npos)
      << two.fit.warnings.back();
  EXPECT_EQ(r.best, 0u);
}

TEST(Select, BadGridsAreInvalidArguments) {
  const Data data = make_data(51, 100);
  EXPECT_THROW(emix::select(data.view(), grid({}, {Covariance::kFull})), emix::InvalidArgument);
  EXPECT_THROW(emix::select(data.view(), grid({2}, {})), emix::InvalidArgument);
  EXPECT_THROW(emix::select(data.view(), grid({101, 102}, {Covariance::kFull})),
               emix::InvalidArgument);
  // Each K and type once, and each K within the initialisation's sample, named by its index.
  const auto refused = [&data](const emix::SelectOptions& o, const std::string& words) {
    try {
      emix::select(data.view(), o);
      ADD_FAILURE() << "accepted; expected: " << words;
    } catch (const emix::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused(grid({2, 3, 2}, {Covariance::kFull}), "n_components[2] is 2, as n_components[0] is");
  refused(grid({2}, {Covariance::kDiag, Covariance::kDiag}),
          "covariances[1] is diag, as covariances[0] is");
  emix::SelectOptions wide = grid({2, 50}, {Covariance::kFull});
  wide.fit.init_max_rows = 40;
  refused(wide, "n_components[1] is 50, more than init_max_rows (40)");
  // A K the data cannot hold fails alone; the others are fitted and compared.
  const emix::SelectReport r = emix::select(data.view(), grid({2, 101}, {Covariance::kFull}));
  ASSERT_EQ(r.candidates.size(), 2u);
  EXPECT_TRUE(std::isinf(r.candidates[1].bic));
  EXPECT_EQ(r.candidates[1].fit.warnings.back(),
            "failed, and left out of the choice: K = 101 is more than the 100 rows");
  EXPECT_EQ(r.best, 0u);
  // First in the grid too (the data were once checked with the first candidate's K).
  const emix::SelectReport first = emix::select(data.view(), grid({101, 2}, {Covariance::kFull}));
  ASSERT_EQ(first.candidates.size(), 2u);
  EXPECT_TRUE(first.candidates[0].failed);
  EXPECT_EQ(first.best, 1u);
  // So does a K with fewer rows of positive weight than components.
  std::vector<double> weights(100, 0.0);
  weights[0] = weights[50] = weights[99] = 1.0;
  const emix::SelectReport w =
      emix::select(data.view(), grid({2, 4}, {Covariance::kDiag}), weights.data());
  EXPECT_TRUE(std::isfinite(w.candidates[0].bic));
  EXPECT_TRUE(std::isinf(w.candidates[1].bic));
  EXPECT_NE(w.candidates[1].fit.warnings.back().find("only 3 rows have positive weight"),
            std::string::npos)
      << w.candidates[1].fit.warnings.back();
  EXPECT_THROW(emix::select(data.view(), grid({0, 2}, {Covariance::kFull})), emix::InvalidArgument);
  EXPECT_EQ(emix::parse_criterion("icl"), emix::Criterion::kIcl);
  EXPECT_THROW(emix::parse_criterion("bick"), emix::InvalidArgument);
}

}  // namespace

namespace {

// A repaired singular start is noted on its own covariance type's candidate only: the
// candidates of one K share their k-means, not their covariances (the full candidate's note once
// reached the diagonal one too).
TEST(Select, ARepairedStartIsNotedOnItsOwnCandidateOnly) {
  const std::vector<double> x = emix::testing::rows_with_a_coinciding_cluster();
  emix::SelectOptions o;
  o.n_components = {3};
  o.covariances = {emix::Covariance::kFull, emix::Covariance::kDiag};
  o.fit.reg_covar = 0;
  o.fit.max_iter = 3;
  o.fit.seed = 1;
  o.fit.engine.device = emix::Device::kCpu;
  const emix::SelectReport r = emix::select(emix::DataView::host(x.data(), 600, 3), o);
  ASSERT_EQ(r.candidates.size(), 2u);
  for (const emix::SelectCandidate& c : r.candidates) {
    const std::string own = std::string("initialisation (") + emix::to_string(c.covariance) + ")";
    bool noted = false;
    for (const std::string& w : c.fit.warnings) {
      if (w.rfind("initialisation (", 0) != 0) continue;
      EXPECT_EQ(w.rfind(own, 0), 0u) << emix::to_string(c.covariance) << ": " << w;
      noted = true;
    }
    EXPECT_TRUE(noted) << emix::to_string(c.covariance);
  }
}

}  // namespace
