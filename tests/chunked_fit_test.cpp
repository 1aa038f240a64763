// Fits over chunk sources: equal to the fit of all rows in one array, for every family, with and
// without weights; and every bad source named by its chunk.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/prepared_model.hpp"
#include "core/remote_chunks.hpp"
#include "emix/emix.hpp"
#include "test_util.hpp"

namespace {

using emix::Covariance;
using emix::Family;

// Chunks of `rows_per` rows of a host matrix; `tamper` may change what chunk i gives on a
// given pass (pass 0 is the first read). With `announce_rows`, the source tells each chunk's
// rows without a read, as a file's header does.
class VectorChunks : public emix::ChunkSource {
 public:
  VectorChunks(const std::vector<double>& x, std::int64_t rows, int d, std::int64_t rows_per,
               const std::vector<double>* weights = nullptr)
      : x_(x), rows_(rows), d_(d), per_(rows_per), weights_(weights) {}
  std::int64_t n_chunks() override { return (rows_ + per_ - 1) / per_; }
  emix::DataView chunk(std::int64_t i) override {
    ++reads_[i];
    emix::DataView v =
        emix::DataView::host(x_.data() + i * per_ * d_, std::min(per_, rows_ - i * per_), d_);
    if (tamper) tamper(i, reads_[i] - 1, v);
    return v;
  }
  const double* chunk_weights(std::int64_t i) override {
    return weights_ ? weights_->data() + i * per_ : nullptr;
  }
  std::int64_t known_rows(std::int64_t i) override {
    return announce_rows ? std::min(per_, rows_ - i * per_) : -1;
  }
  bool announce_rows = false;
  std::function<void(std::int64_t, int, emix::DataView&)> tamper;
  std::map<std::int64_t, int> reads_;

 private:
  const std::vector<double>& x_;
  std::int64_t rows_;
  int d_;
  std::int64_t per_;
  const std::vector<double>* weights_;
};

using emix::testing::Kind;
constexpr const auto& kKinds = emix::testing::kAllKinds;

emix::FitOptions options_for(const Kind& kind) {
  emix::FitOptions o;
  o.family = kind.family;
  o.covariance = kind.covariance;
  o.trials = kind.family == Family::kBinomial ? 5 : 1;
  o.n_components = 3;
  o.seed = 3;
  o.init_max_rows = 800;  // a sample drawn across the chunks
  o.max_iter = 25;
  o.tol = 0;
  o.engine.device = emix::Device::kCpu;
  return o;
}

// The same EM, its sums grouped by chunk: 1e-12 relative on every parameter after 25
// iterations (the iterations contract rounding differences on these well-separated problems).
TEST(ChunkedFit, EqualsTheFitOfAllRows) {
  for (const Kind& kind : kKinds) {
    for (bool weighted : {false, true}) {
      const std::uint64_t seed = 17;
      SCOPED_TRACE(emix::testing::describe(kind.family, kind.covariance) +
                   (weighted ? " weighted" : "") + " seed 17");
      const emix::Model truth =
          emix::testing::random_model(kind.family, kind.covariance, 3, 4, seed, 5, 6.0);
      const std::int64_t n = 2500;
      const std::vector<double> x = emix::sample(truth, n, seed + 1).x;
      std::vector<double> w;
      std::mt19937_64 rng(seed + 2);
      std::uniform_real_distribution<double> u(0.5, 2.0);
      for (std::int64_t i = 0; i < n; ++i) w.push_back(u(rng));
      const emix::FitOptions o = options_for(kind);
      const emix::FitReport whole =
          emix::fit(emix::DataView::host(x.data(), n, 4), o, weighted ? w.data() : nullptr);
      for (std::int64_t per : {2500, 999, 250}) {
        VectorChunks chunks(x, n, 4, per, weighted ? &w : nullptr);
        const emix::FitReport r = emix::fit(chunks, o);
        EXPECT_EQ(r.n_iter, whole.n_iter);
        EXPECT_LE(emix::testing::max_relative_difference(r.model.means, whole.model.means, 1.0),
                  1e-12)
            << per << " rows per chunk";
        EXPECT_LE(emix::testing::max_relative_difference(r.model.covariances,
                                                         whole.model.covariances, 1.0),
                  1e-12)
            << per;
        EXPECT_LE(emix::testing::max_relative_difference(r.model.probabilities,
                                                         whole.model.probabilities, 1.0),
                  1e-12)
            << per;
        EXPECT_LE(emix::testing::max_relative_difference(r.model.weights, whole.model.weights),
                  1e-12)
            << per;
        EXPECT_NEAR(r.log_likelihood, whole.log_likelihood, 1e-12 * std::abs(whole.log_likelihood));
        // Every chunk is read once per E-step (plus the checking pass and the init sample).
        EXPECT_GE(chunks.reads_[0], r.n_iter + 2);
        // Checked as first read instead of in a pass of their own: the same sums, one read less.
        VectorChunks announced(x, n, 4, per, weighted ? &w : nullptr);
        announced.announce_rows = true;
        const emix::FitReport a = emix::fit(announced, o);
        EXPECT_EQ(a.model.means, r.model.means);
        EXPECT_EQ(a.model.covariances, r.model.covariances);
        EXPECT_EQ(a.model.probabilities, r.model.probabilities);
        EXPECT_EQ(a.history, r.history);
        for (const auto& [chunk, reads] : chunks.reads_) {
          EXPECT_EQ(announced.reads_[chunk], reads - (chunk == 0 ? 0 : 1)) << "chunk " << chunk;
        }
      }
    }
  }
}

// 3000 rows of 3 full-covariance Gaussians in 4 dimensions, with weights, and a grid of K = 1..4
// x {full, diag} with two restarts, whose initialisation samples 1000 rows across the chunks.
struct SelectProblem {
  std::int64_t n = 3000;
  std::vector<double> x, w;
  emix::SelectOptions o;
};

SelectProblem select_problem() {
  SelectProblem p;
  const emix::Model truth =
      emix::testing::random_model(Family::kGaussian, Covariance::kFull, 3, 4, 23, 1, 6.0);
  p.x = emix::sample(truth, p.n, 24).x;
  std::mt19937_64 rng(25);
  std::uniform_real_distribution<double> u(0.5, 2.0);
  for (std::int64_t i = 0; i < p.n; ++i) p.w.push_back(u(rng));
  p.o.n_components = {1, 2, 3, 4};
  p.o.covariances = {Covariance::kFull, Covariance::kDiag};
  p.o.criterion = emix::Criterion::kIcl;
  p.o.fit.seed = 5;
  p.o.fit.n_init = 2;
  p.o.fit.init_max_rows = 1000;
  p.o.fit.engine.device = emix::Device::kCpu;
  return p;
}

// Model selection over chunks: each candidate is bitwise its own chunked fit, the selection
// equals the in-memory one to rounding, and each chunk is read once per pass for all candidates,
// not once per candidate. The chunks' sums are added in another grouping (1e-16 relative per
// pass); a candidate with fewer components than the data's 3 drifts along a flat ridge of the
// likelihood for its iterations and carries that difference further (K = 2 full: 3e-10 on the
// covariances), so the models are compared to 1e-8 and the criteria, dominated by the
// log-likelihood, to 1e-12.
TEST(ChunkedSelect, EqualsItsFitsAndTheInMemorySelectionAndReadsEachChunkOncePerPass) {
  SelectProblem problem = select_problem();
  auto& [n, x, w, o] = problem;

  VectorChunks chunks(x, n, 4, 700, &w);
  const emix::SelectReport r = emix::select(chunks, o);
  const emix::SelectReport whole = emix::select(emix::DataView::host(x.data(), n, 4), o, w.data());
  ASSERT_EQ(r.candidates.size(), 8u);
  EXPECT_EQ(r.best, whole.best);
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const emix::SelectCandidate& c = r.candidates[i];
    const emix::SelectCandidate& m = whole.candidates[i];
    SCOPED_TRACE("K = " + std::to_string(c.n_components) + " " + emix::to_string(c.covariance));
    emix::FitOptions fo = o.fit;
    fo.n_components = c.n_components;
    fo.covariance = c.covariance;
    VectorChunks own(x, n, 4, 700, &w);
    const emix::FitReport alone = emix::fit(own, fo);
    EXPECT_EQ(c.fit.model.means, alone.model.means);
    EXPECT_EQ(c.fit.model.covariances, alone.model.covariances);
    EXPECT_EQ(c.fit.history, alone.history);
    EXPECT_EQ(c.fit.n_iter, m.fit.n_iter);
    EXPECT_LE(emix::testing::max_relative_difference(c.fit.model.means, m.fit.model.means, 1.0),
              1e-8);
    EXPECT_LE(emix::testing::max_relative_difference(c.fit.model.covariances,
                                                     m.fit.model.covariances, 1.0),
              1e-8);
    EXPECT_NEAR(c.bic, m.bic, 1e-12 * std::abs(m.bic));
    EXPECT_NEAR(c.icl, m.icl, 1e-12 * std::abs(m.icl));
  }
  // The checking pass, the initialisation's gathers of rows and of weights (once per restart:
  // every K draws the same sample) and one read per pass; the ICL's entropies come with the
  // passes. One read per candidate per pass would be 8 x passes, and a gather per K and restart
  // 4 x 2 x 2 reads.
  EXPECT_LE(chunks.reads_[0], 1 + 2 * 2 + r.passes);

  // A source that announces its rows: the same report bitwise, and no checking pass (chunk 0 is
  // read for the shape all the same).
  VectorChunks announced(x, n, 4, 700, &w);
  announced.announce_rows = true;
  const emix::SelectReport a = emix::select(announced, o);
  ASSERT_EQ(a.candidates.size(), r.candidates.size());
  EXPECT_EQ(a.best, r.best);
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    EXPECT_EQ(a.candidates[i].fit.model.means, r.candidates[i].fit.model.means);
    EXPECT_EQ(a.candidates[i].bic, r.candidates[i].bic);
    EXPECT_EQ(a.candidates[i].icl, r.candidates[i].icl);
  }
  for (const auto& [chunk, reads] : chunks.reads_) {
    EXPECT_EQ(announced.reads_[chunk], reads - (chunk == 0 ? 0 : 1)) << "chunk " << chunk;
  }
}

// A source whose passes run "where its chunks are" (here: chunk_pass called on each chunk, as
// emix.dask's tasks call it on the workers): only chunk 0 is read through chunk().
class RemoteVectorChunks : public VectorChunks, public emix::RemoteChunks {
 public:
  RemoteVectorChunks(const std::vector<double>& x, std::int64_t rows, int d, std::int64_t rows_per,
                     const std::vector<double>* weights)
      : VectorChunks(x, rows, d, rows_per, weights),
        x_(x),
        rows_(rows),
        d_(d),
        per_(rows_per),
        weights_(weights) {
    announce_rows = true;
  }
  bool computes_remotely() override { return true; }
  std::string engine_name() override { return "remote"; }
  std::string chunk_noun() override { return "block"; }
  std::vector<std::vector<double>> chunk_statistics(
      const std::vector<std::uint8_t>& pass) override {
    ++passes;
    std::vector<std::vector<double>> parts;
    for (std::int64_t i = 0; i < n_chunks(); ++i) {
      parts.push_back(emix::chunk_pass(pass, view(i),
                                       weights_ ? weights_->data() + i * per_ : nullptr, engine_));
      if (merged_from >= 0 && i > merged_from) {
        // Added into chunk merged_from's answer, in chunk order, as the fit would add them.
        for (std::size_t e = 0; e < parts.back().size(); ++e) {
          parts[static_cast<std::size_t>(merged_from)][e] += parts.back()[e];
        }
        parts.back().clear();
      }
    }
    if (empty_first) parts.front().clear();
    if (lost >= 0) parts[static_cast<std::size_t>(lost)].clear();
    return parts;
  }
  void gather(const std::int64_t* idx, std::int64_t count, std::int64_t cols, double* rows,
              double* weights) override {
    EXPECT_EQ(cols, d_);
    for (std::int64_t r = 0; r < count; ++r) {
      if (rows) std::copy_n(x_.data() + idx[r] * d_, d_, rows + r * d_);
      if (weights) weights[r] = weights_ ? (*weights_)[static_cast<std::size_t>(idx[r])] : 1.0;
    }
  }
  std::vector<double> weight_sums() override {
    std::vector<double> sums;
    for (std::int64_t i = 0; i < n_chunks(); ++i) {
      double sum = 0;
      for (std::int64_t r = i * per_; r < std::min(rows_, (i + 1) * per_); ++r) {
        sum += (*weights_)[static_cast<std::size_t>(r)];
      }
      sums.push_back(sum);
    }
    return sums;
  }
  int passes = 0;
  std::int64_t merged_from = -1;  // the chunks after it answer empty, their sums in its answer
  bool empty_first = false;       // chunk 0 answers empty, its sums nowhere
  std::int64_t lost = -1;         // a chunk whose answer is lost (empty), none added into another

 private:
  emix::DataView view(std::int64_t i) const {
    return emix::DataView::host(x_.data() + i * per_ * d_, std::min(per_, rows_ - i * per_), d_);
  }
  const std::vector<double>& x_;
  std::int64_t rows_;
  int d_;
  std::int64_t per_;
  const std::vector<double>* weights_;
  emix::EngineOptions engine_ = [] {
    emix::EngineOptions e;
    e.device = emix::Device::kCpu;
    e.n_threads = 1;  // the statistics do not depend on the threads
    return e;
  }();
};

// Passes computed where the chunks are give the selection of the same chunks read here, bitwise
// (the chunks' statistics added in the same order), and read nothing here but chunk 0.
TEST(ChunkedSelect, PassesComputedWhereTheChunksAreEqualReadingThemHere) {
  SelectProblem problem = select_problem();
  auto& [n, x, w, o] = problem;
  for (const std::vector<double>* weights : std::vector<const std::vector<double>*>{nullptr, &w}) {
    SCOPED_TRACE(weights ? "weighted" : "unweighted");
    VectorChunks here(x, n, 4, 700, weights);
    here.announce_rows = true;
    RemoteVectorChunks remote(x, n, 4, 700, weights);
    const emix::SelectReport a = emix::select(here, o);
    const emix::SelectReport b = emix::select(remote, o);
    EXPECT_EQ(b.engine, "remote");
    EXPECT_EQ(b.best, a.best);
    ASSERT_EQ(b.candidates.size(), a.candidates.size());
    for (std::size_t i = 0; i < a.candidates.size(); ++i) {
      EXPECT_EQ(b.candidates[i].fit.model.means, a.candidates[i].fit.model.means);
      EXPECT_EQ(b.candidates[i].fit.model.covariances, a.candidates[i].fit.model.covariances);
      EXPECT_EQ(b.candidates[i].fit.model.weights, a.candidates[i].fit.model.weights);
      EXPECT_EQ(b.candidates[i].fit.history, a.candidates[i].fit.history);
      EXPECT_EQ(b.candidates[i].icl, a.candidates[i].icl);
    }
    EXPECT_EQ(remote.reads_.size(), 1u);
    EXPECT_EQ(remote.reads_[0], 1);
    EXPECT_EQ(remote.passes, b.passes);
  }

  // A bad value or weight in the initialisation's sample (here every row) is named by the
  // source's word for a chunk and the row of the whole data, before any pass (a pass's errors
  // are the source's to name: emix.dask's tests check its own).
  o.fit.init_max_rows = n;
  std::vector<double> bad = x, bad_weights = w;
  bad[2100 * 4 + 1] = std::nan("");
  bad_weights[2100] = -1;
  for (const bool in_weights : {false, true}) {
    RemoteVectorChunks remote(in_weights ? x : bad, n, 4, 700, in_weights ? &bad_weights : nullptr);
    try {
      emix::select(remote, o);
      ADD_FAILURE() << "a bad value was accepted";
    } catch (const emix::DataError& e) {
      EXPECT_EQ(e.row(), 2101) << e.what();
      EXPECT_EQ(e.source(), in_weights ? emix::DataError::Source::kSampleWeight
                                       : emix::DataError::Source::kData);
      EXPECT_NE(std::string(e.what()).find("(in block 3 (rows 2101..2800))"), std::string::npos)
          << e.what();
      EXPECT_EQ(remote.passes, 0);
    }
  }
}

// A source may add its chunks' statistics together where they are (emix.dask does where every
// block's would not fit the client's memory): their sum in the first answer, the chunks it holds
// answering empty. Added in chunk order there, the fit is bitwise the one that adds them here. A
// first answer that is empty holds no sums: refused.
TEST(ChunkedFit, ASourceMayAddItsChunksStatisticsWhereTheyAre) {
  SelectProblem problem = select_problem();
  auto& [n, x, w, o] = problem;
  emix::FitOptions fo = o.fit;
  fo.n_components = 3;
  fo.tol = 0;  // every step taken, whatever the data
  fo.max_iter = 8;
  for (const std::vector<double>* weights : std::vector<const std::vector<double>*>{nullptr, &w}) {
    SCOPED_TRACE(weights ? "weighted" : "unweighted");
    RemoteVectorChunks each(x, n, 4, 700, weights);
    RemoteVectorChunks merged(x, n, 4, 700, weights);
    merged.merged_from = 0;
    const emix::FitReport a = emix::fit(each, fo);
    const emix::FitReport b = emix::fit(merged, fo);
    ASSERT_EQ(a.n_iter, 8);
    EXPECT_EQ(b.history, a.history);
    EXPECT_EQ(b.model.means, a.model.means);
    EXPECT_EQ(b.model.covariances, a.model.covariances);
    EXPECT_EQ(b.model.weights, a.model.weights);
    RemoteVectorChunks first_empty(x, n, 4, 700, weights);
    first_empty.empty_first = true;
    EXPECT_THROW(emix::fit(first_empty, fo), emix::InvalidArgument);
    // An answer lost on the way is not one added into another's: its rows are missing from the
    // sums' weight, which the fit checks once it has taken an empty answer (the review's case: a
    // block of 300 rows left out of 1200, silently).
    RemoteVectorChunks one_lost(x, n, 4, 700, weights);
    one_lost.lost = 2;
    std::string message = "no exception";
    try {
      emix::fit(one_lost, fo);
    } catch (const emix::InvalidArgument& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("no other answer holds its rows"), std::string::npos) << message;
  }
}

// A pass's bytes are refused when they are not encode_pass's whole output, or hold what it never
// writes.
TEST(ChunkedSelect, APassCutShortIsRefused) {
  const emix::Model m =
      emix::testing::random_model(Family::kGaussian, Covariance::kDiag, 2, 3, 4, 1, 3.0);
  const emix::PreparedModel p = emix::prepare(m);
  std::vector<std::uint8_t> pass = emix::encode_pass({&p});
  const std::vector<double> x(6 * 3, 0.5);
  const emix::DataView v = emix::DataView::host(x.data(), 6, 3);
  EXPECT_EQ(emix::chunk_pass(pass, v, nullptr, {}).size(), p.layout.size());
  // The layout: "EMIXPASS" (8 bytes), version, count (4 bytes each), then per model family,
  // covariance, K, D, trials (4 bytes each), the entropy flag (1 byte), and each vector's length (8
  // bytes) before its values.
  std::vector<std::uint8_t> spoilt = pass;
  spoilt[36] = 7;  // an entropy flag that is neither 0 nor 1
  EXPECT_THROW(emix::chunk_pass(spoilt, v, nullptr, {}), emix::InvalidArgument);
  spoilt = pass;
  spoilt[32] = 3;  // trials for a Gaussian
  EXPECT_THROW(emix::chunk_pass(spoilt, v, nullptr, {}), emix::InvalidArgument);
  // K = 2^31 - 1 with a log_weights length to match: refused before 16 GB are allocated.
  spoilt = pass;
  const std::int32_t k = 0x7fffffff;
  const std::uint64_t length = 0x7fffffff;
  std::memcpy(spoilt.data() + 24, &k, sizeof k);
  std::memcpy(spoilt.data() + 37, &length, sizeof length);
  EXPECT_THROW(emix::chunk_pass(spoilt, v, nullptr, {}), emix::InvalidArgument);
  pass.pop_back();
  EXPECT_THROW(emix::chunk_pass(pass, v, nullptr, {}), emix::InvalidArgument);
  EXPECT_THROW(emix::chunk_pass({}, v, nullptr, {}), emix::InvalidArgument);
}

// Empty chunks (an empty row group, an empty record batch) between and around the others change
// nothing; a weighted fit's initialisation reads each chunk once for its sample's weights, not
// once a sampled row.
TEST(ChunkedFit, EmptyChunksAreSkippedAndWeightsAreGatheredOncePerChunk) {
  const Kind kind{Family::kGaussian, Covariance::kDiag};
  const emix::Model truth = emix::testing::random_model(kind.family, kind.covariance, 3, 4, 8);
  const std::int64_t n = 1000;
  const std::vector<double> x = emix::sample(truth, n, 9).x;
  const std::vector<double> w(static_cast<std::size_t>(n), 1.5);
  emix::FitOptions o = options_for(kind);
  o.max_iter = 3;
  const emix::FitReport whole = emix::fit(emix::DataView::host(x.data(), n, 4), o, w.data());

  // Chunk 2i + 1 of this source is chunk i of `inner`; the even chunks are empty.
  struct WithEmptyChunks : emix::ChunkSource {
    VectorChunks& inner;
    explicit WithEmptyChunks(VectorChunks& c) : inner(c) {}
    std::int64_t n_chunks() override { return 2 * inner.n_chunks() + 1; }
    emix::DataView chunk(std::int64_t i) override {
      if (i % 2 == 0) return emix::DataView::host(static_cast<const double*>(nullptr), 0, 4);
      return inner.chunk(i / 2);
    }
    const double* chunk_weights(std::int64_t i) override {
      return i % 2 == 0 ? inner.chunk_weights(0) : inner.chunk_weights(i / 2);
    }
  };
  VectorChunks chunks(x, n, 4, 100, &w);
  WithEmptyChunks source(chunks);
  const emix::FitReport r = emix::fit(source, o);
  EXPECT_EQ(r.n_iter, whole.n_iter);
  EXPECT_LE(emix::testing::max_relative_difference(r.model.means, whole.model.means, 1.0), 1e-12);
  // A checking pass, the sample's rows, its weights, and one pass an iteration (plus the last
  // model's): about 7; a read for each of a chunk's 100 sampled rows would be over 100.
  for (const auto& [chunk, reads] : chunks.reads_) {
    EXPECT_LE(reads, r.n_iter + 5) << "chunk " << chunk;
  }
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const emix::InvalidArgument& e) {
    return e.what();
  }
  return "no InvalidArgument";
}

// Old: a chunked (memory-mapped) fit skipped the memory check the in-memory fit makes, and
// allocated until bad_alloc or for minutes.
TEST(ChunkedFit, AFitLargerThanTheMachineIsRefusedBeforeAllocating) {
  const Kind kind{Family::kGaussian, Covariance::kDiag};
  const emix::Model truth = emix::testing::random_model(kind.family, kind.covariance, 2, 3, 5);
  const std::vector<double> x = emix::sample(truth, 1000, 6).x;
  VectorChunks chunks(x, 1000, 3, 100);
  emix::FitOptions o = options_for(kind);
  o.n_components = 2;
  o.n_init = 1 << 30;
  const std::string message = [&] {
    try {
      emix::fit(chunks, o);
    } catch (const emix::OutOfMemory& e) {
      return std::string(e.what());
    }
    return std::string("no OutOfMemory");
  }();
  EXPECT_NE(message.find("n_init = 1073741824 needs at least"), std::string::npos) << message;
}

// A changing width, a NaN in chunk 7, and a source that gives other chunks on a later pass: each
// an InvalidArgument naming the chunk. Empty chunks are no error.
// The same errors from a source that announces its rows (each chunk checked when first read) as
// from one counted by a checking pass.
void expect_bad_sources_named(bool announce) {
  SCOPED_TRACE(announce ? "rows announced" : "rows counted");
  const Kind kind{Family::kGaussian, Covariance::kDiag};
  const emix::Model truth = emix::testing::random_model(kind.family, kind.covariance, 2, 3, 5);
  std::vector<double> x = emix::sample(truth, 1000, 6).x;
  const emix::FitOptions o = options_for(kind);

  VectorChunks wider(x, 1000, 3, 100);
  wider.announce_rows = announce;
  wider.tamper = [](std::int64_t i, int, emix::DataView& v) {
    if (i == 2) v.cols = 2;
  };
  EXPECT_NE(message_of([&] { emix::fit(wider, o); }).find("chunk 2 (rows 201..300): 2 columns"),
            std::string::npos)
      << message_of([&] { emix::fit(wider, o); });

  // An empty chunk of the wrong width has no rows to name: where it lies instead.
  VectorChunks empty_and_narrow(x, 1000, 3, 100);
  empty_and_narrow.announce_rows = announce;
  empty_and_narrow.tamper = [](std::int64_t i, int, emix::DataView& v) {
    if (i == 2) {
      v.rows = 0;
      v.cols = 2;
    }
  };
  if (!announce) {
    const std::string empty_message = message_of([&] { emix::fit(empty_and_narrow, o); });
    EXPECT_NE(empty_message.find("chunk 2 (no rows, after row 200): 2 columns"), std::string::npos)
        << empty_message;
  }

  std::vector<double> with_nan = x;
  with_nan[(7 * 100 + 4) * 3 + 1] = std::numeric_limits<double>::quiet_NaN();
  VectorChunks nan_chunks(with_nan, 1000, 3, 100);
  nan_chunks.announce_rows = announce;
  const std::string nan_message = message_of([&] { emix::fit(nan_chunks, o); });
  EXPECT_NE(nan_message.find("chunk 7 (rows 701..800)"), std::string::npos) << nan_message;
  // The row counted within the whole data (a caller that knows the file names it so).
  EXPECT_NE(nan_message.find("row 705, column 2 is nan"), std::string::npos) << nan_message;

  VectorChunks shrinking(x, 1000, 3, 100);
  shrinking.announce_rows = announce;
  shrinking.tamper = [](std::int64_t i, int pass, emix::DataView& v) {
    if (i == 4 && pass >= 2) v.rows -= 1;
  };
  const std::string reread = message_of([&] { emix::fit(shrinking, o); });
  EXPECT_NE(reread.find("chunk 4"), std::string::npos) << reread;
  EXPECT_NE(reread.find("same chunks on every pass"), std::string::npos) << reread;

  std::vector<double> w(1000, 1.0);
  struct NoWeightsAfter : VectorChunks {
    using VectorChunks::VectorChunks;
    const double* chunk_weights(std::int64_t i) override {
      return i < 3 ? VectorChunks::chunk_weights(i) : nullptr;
    }
  } mixed(x, 1000, 3, 100, &w);
  mixed.announce_rows = announce;
  EXPECT_NE(message_of([&] { emix::fit(mixed, o); }).find("chunk 3"), std::string::npos);

  // Weights that sum to 0, found once every chunk has been checked.
  const std::vector<double> zero(1000, 0.0);
  VectorChunks weightless(x, 1000, 3, 100, &zero);
  weightless.announce_rows = announce;
  const std::string zero_message = message_of([&] { emix::fit(weightless, o); });
  EXPECT_NE(zero_message.find("sample weights sum to 0"), std::string::npos) << zero_message;
  // Weights all so small that their products with responsibilities flush to 0: the largest of
  // every chunk's, judged once all are checked (a chunk of them beside larger ones is fine).
  std::vector<double> tiny(1000, 1e-302);
  VectorChunks underflowing(x, 1000, 3, 100, &tiny);
  underflowing.announce_rows = announce;
  const std::string tiny_message = message_of([&] { emix::fit(underflowing, o); });
  EXPECT_NE(tiny_message.find("chunk source: sample weights are all below"), std::string::npos)
      << tiny_message;
  std::fill(tiny.begin() + 900, tiny.end(), 1.0);
  EXPECT_NO_THROW(emix::fit(underflowing, o));

  // An Inf in the last chunk, with starting parameters given (no sample is read): found by the
  // first E-step, before any iteration is reported.
  emix::FitOptions given_start = o;
  given_start.n_components = truth.n_components;
  given_start.init_model = truth;
  int iterations_seen = 0;
  given_start.on_iteration = [&](const emix::IterationInfo&) { ++iterations_seen; };
  std::vector<double> late_nan = x;
  late_nan[(9 * 100 + 99) * 3 + 0] = std::numeric_limits<double>::infinity();
  VectorChunks late(late_nan, 1000, 3, 100);
  late.announce_rows = announce;
  const std::string late_message = message_of([&] { emix::fit(late, given_start); });
  EXPECT_NE(late_message.find("chunk 9 (rows 901..1000)"), std::string::npos) << late_message;
  EXPECT_NE(late_message.find("row 1000, column 1 is inf"), std::string::npos) << late_message;
  EXPECT_EQ(iterations_seen, 0);
}

TEST(ChunkedFit, BadSourcesNameTheChunk) {
  expect_bad_sources_named(false);
  expect_bad_sources_named(true);
}

}  // namespace
