// Fits over a ChunkSource (emix/chunks.hpp): an Engine whose every call walks the chunks in
// order, each through an engine of its own (the CPU engine over a view costs no copy; the GPU
// engine uploads the chunk), so that the EM driver runs unchanged on data of any size. A source
// that computes passes where its chunks live (remote_chunks.hpp) is asked for their statistics
// and sampled rows instead; when it announces its chunks' rows, only its chunk 0 is read here,
// for the data's shape.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/em.hpp"
#include "core/engine.hpp"
#include "core/remote_chunks.hpp"
#include "core/select_on.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/chunks.hpp"
#include "emix/errors.hpp"

namespace emix {

namespace {

class ChunkedEngine final : public Engine {
 public:
  // Chunk 0 gives the shape. When the source knows every chunk's row count without reading it
  // (ChunkSource::known_rows), each chunk's values and weights are checked the first time the fit
  // reads it, in its first pass (the initialisation's gather, or the first E-step); otherwise a
  // pass of its own reads every chunk now, to learn the counts, and checks them on the way.
  // Errors name the chunk either way, and come before any result exists.
  ChunkedEngine(ChunkSource& source, const FitOptions& options)
      : source_(source), options_(options), engine_options_(options.engine) {
    auto* remote = dynamic_cast<RemoteChunks*>(&source);
    if (remote != nullptr && remote->computes_remotely()) {
      remote_ = remote;
      noun_ = remote_->chunk_noun();
    }
    const std::int64_t n = source_.n_chunks();
    if (n < 1) throw InvalidArgument("chunk source: no chunks");
    checked_.assign(static_cast<std::size_t>(n), false);
    chunk_weight_sums_.assign(static_cast<std::size_t>(n), 0.0);
    std::vector<std::int64_t> known(static_cast<std::size_t>(n));
    bool all_known = true;
    for (std::int64_t i = 0; i < n; ++i) {
      known[static_cast<std::size_t>(i)] = source_.known_rows(i);
      all_known = all_known && known[static_cast<std::size_t>(i)] >= 0;
    }
    for (std::int64_t i = 0; i < n; ++i) {
      first_row_.push_back(rows_);
      if (i == 0 || !all_known) {
        const DataView view = source_.chunk(i);
        const double* w = source_.chunk_weights(i);
        if (i == 0) {
          cols_ = view.cols;
          dtype_ = view.dtype;
          weighted_ = w != nullptr;
        }
        chunk_rows_.push_back(view.rows);
        check_chunk(i, view, w);
        if (all_known && view.rows != known[0]) {
          throw InvalidArgument(where(i) + ": " + std::to_string(view.rows) +
                                " rows, but the source announced " + std::to_string(known[0]));
        }
        check_values(i, view, w);
      } else {
        chunk_rows_.push_back(known[static_cast<std::size_t>(i)]);
      }
      rows_ += chunk_rows_.back();
    }
    first_row_.push_back(rows_);
    if (rows_ < 1) throw InvalidArgument("chunk source: the chunks hold no rows");
  }

  std::string name() const override {
    if (remote_ != nullptr) return remote_->engine_name();  // with the engine of its passes
    return engine_name_.empty() ? "chunks"
                                : engine_name_ + ", " + std::to_string(chunk_rows_.size()) +
                                      (chunk_rows_.size() == 1 ? " chunk" : " chunks");
  }

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  DType dtype() const { return dtype_; }
  // The sum of the sample weights (N without weights): reads the chunks not yet checked, or
  // asks a remote source for its chunks' sums.
  double weight_total() {
    if (!weighted_) return static_cast<double>(rows_);
    if (remote_ != nullptr) {
      const std::vector<double> sums = remote_->weight_sums();
      if (sums.size() != chunk_rows_.size()) answer_of_wrong_size("weight_sums");
      double total = 0;
      for (const double s : sums) total += s;
      if (!(total > 0)) throw InvalidArgument("chunk source: the sample weights sum to 0");
      return total;
    }
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk_rows_.size()); ++i) {
      if (!checked_[static_cast<std::size_t>(i)]) reread(i);
    }
    return weight_sum_;
  }

  // The chunks' statistics, added in chunk order.
  void accumulate(const PreparedModel& model, double* stats) override {
    if (remote_ != nullptr) return accumulate_many({&model}, {stats});
    const std::size_t size = model.layout.size();
    std::fill(stats, stats + size, 0.0);
    std::vector<double> part(size);
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk_rows_.size()); ++i) {
      const DataView view = reread(i);
      if (view.rows == 0) continue;
      const double* weights = source_.chunk_weights(i);
      engine_for(view, weights)->accumulate(model, part.data());
      name_values_gone_bad(i, view, weights, part.data());
      for (std::size_t e = 0; e < size; ++e) stats[e] += part[e];
    }
  }

  // Each chunk read once for all the models (emix select over a file larger than memory reads
  // it once per pass, not once per candidate); each model's sums are bitwise accumulate()'s.
  void accumulate_many(const std::vector<const PreparedModel*>& models,
                       const std::vector<double*>& stats) override {
    if (remote_ != nullptr) return accumulate_remotely(models, stats);
    std::vector<std::vector<double>> parts;
    std::vector<double*> part_pointers;
    for (std::size_t m = 0; m < models.size(); ++m) {
      std::fill(stats[m], stats[m] + models[m]->layout.size(), 0.0);
      parts.emplace_back(models[m]->layout.size());
      part_pointers.push_back(parts.back().data());
    }
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk_rows_.size()); ++i) {
      const DataView view = reread(i);
      if (view.rows == 0) continue;
      const double* weights = source_.chunk_weights(i);
      engine_for(view, weights)->accumulate_many(models, part_pointers);
      for (std::size_t m = 0; m < models.size(); ++m) {
        name_values_gone_bad(i, view, weights, parts[m].data());
        for (std::size_t e = 0; e < parts[m].size(); ++e) stats[m][e] += parts[m][e];
      }
    }
  }

  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    const std::int64_t k = model.k;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk_rows_.size()); ++i) {
      const DataView view = reread(i);
      if (view.rows == 0) continue;
      const std::int64_t first = first_row_[static_cast<std::size_t>(i)];
      engine_for(view, nullptr)
          ->evaluate(model, log_prob ? log_prob + first : nullptr,
                     resp ? resp + first * k : nullptr, labels ? labels + first : nullptr);
    }
  }

  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override {
    for (std::int64_t r = 0; r < count; ++r) {
      if (idx[r] < 0 || idx[r] >= rows_) {
        throw InvalidArgument("gather_rows: row " + std::to_string(idx[r]) + " is outside 0.." +
                              std::to_string(rows_ - 1));
      }
    }
    if (remote_ != nullptr) return gather_remotely(idx, count, out);
    // Each chunk is read once, for the rows it holds.
    std::vector<std::int64_t> order(static_cast<std::size_t>(count));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [idx](std::int64_t a, std::int64_t b) { return idx[a] < idx[b]; });
    std::size_t at = 0;
    while (at < order.size()) {
      const std::int64_t row = idx[order[at]];
      const std::int64_t i = chunk_of(row);
      const std::int64_t first = first_row_[static_cast<std::size_t>(i)];
      const std::int64_t end = first_row_[static_cast<std::size_t>(i) + 1];
      std::vector<std::int64_t> local, where_to;
      for (; at < order.size() && idx[order[at]] < end; ++at) {
        local.push_back(idx[order[at]] - first);
        where_to.push_back(order[at]);
      }
      const DataView view = reread(i);
      std::vector<double> rows(local.size() * static_cast<std::size_t>(cols_));
      engine_for(view, nullptr)
          ->gather_rows(local.data(), static_cast<std::int64_t>(local.size()), rows.data());
      for (std::size_t r = 0; r < local.size(); ++r) {
        std::copy(rows.begin() + static_cast<std::ptrdiff_t>(r * cols_),
                  rows.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols_),
                  out + where_to[r] * cols_);
      }
    }
  }

  // Sample weights of global rows idx (ones without weights); each chunk is read once, for the
  // rows it holds, as in gather_rows.
  void gather_weights(const std::int64_t* idx, std::int64_t count, double* out) {
    if (!weighted_) {
      std::fill(out, out + count, 1.0);
      return;
    }
    if (remote_ != nullptr) {
      remote_->gather(idx, count, cols_, nullptr, out);
      try {
        validate_sample_weight(out, count, false);
      } catch (const DataError& e) {
        throw_at_gathered_row(e, idx, count);
      }
      return;
    }
    std::vector<std::int64_t> order(static_cast<std::size_t>(count));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [idx](std::int64_t a, std::int64_t b) { return idx[a] < idx[b]; });
    std::int64_t current = -1;
    const double* weights = nullptr;
    for (const std::int64_t r : order) {
      const std::int64_t i = chunk_of(idx[r]);
      if (i != current) {
        reread(i);
        weights = source_.chunk_weights(i);
        current = i;
      }
      out[r] = weights[idx[r] - first_row_[static_cast<std::size_t>(i)]];
    }
  }

 private:
  // Each chunk's statistics from where it lives, added in chunk order as accumulate_many adds
  // the chunks read here (chunks without rows skipped), so that the sums are bitwise the same.
  // An empty answer for a chunk with rows is one the source added into an earlier chunk's
  // (RemoteChunks::chunk_statistics); at least one answer holds the sums, and then their weight
  // must be every row's: an answer lost on the way would otherwise leave its rows out silently.
  void accumulate_remotely(const std::vector<const PreparedModel*>& models,
                           const std::vector<double*>& stats) {
    std::size_t total = 0;
    for (std::size_t m = 0; m < models.size(); ++m) {
      std::fill(stats[m], stats[m] + models[m]->layout.size(), 0.0);
      total += models[m]->layout.size();
    }
    const std::vector<std::vector<double>> parts = remote_->chunk_statistics(encode_pass(models));
    if (parts.size() != chunk_rows_.size()) answer_of_wrong_size("chunk_statistics");
    bool answered = false, merged = false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (chunk_rows_[i] == 0) continue;
      if (answered && parts[i].empty()) {
        merged = true;
        continue;
      }
      if (parts[i].size() != total) answer_of_wrong_size("chunk_statistics");
      answered = true;
      const double* part = parts[i].data();
      for (std::size_t m = 0; m < models.size(); ++m) {
        for (std::size_t e = 0; e < models[m]->layout.size(); ++e) stats[m][e] += *part++;
      }
    }
    if (!merged) return;
    // Unweighted, a count (exact in any order below 2^53); weighted, a sum of the weights in
    // another order than weight_total()'s, within the rounding of either (N eps of the total,
    // for a block of 10^8 rows summed one by one 2e-9).
    const double expected = weight_total();
    const double got = stats[0][StatisticsLayout::kWeightSum];
    const double rounding =
        std::max(1e-9, 2.0 * static_cast<double>(rows_) * std::numeric_limits<double>::epsilon());
    if (!(std::abs(got - expected) <= (weighted_ ? rounding * expected : 0.0))) {
      throw InvalidArgument("chunk source: the answers of chunk_statistics hold a weight of " +
                            number(got) + " where the chunks hold " + number(expected) +
                            " (a chunk's answer empty, though no other answer holds its rows)");
    }
  }

  // The rows from where they live, checked as a chunk read here is checked (the rows the
  // initialisation samples are the first values of the data this process sees).
  void gather_remotely(const std::int64_t* idx, std::int64_t count, double* out) {
    remote_->gather(idx, count, cols_, out, nullptr);
    try {
      validate_fit_data(DataView::host(out, count, cols_), options_);
    } catch (const DataError& e) {
      throw_at_gathered_row(e, idx, count);
    }
  }

  // A DataError about gathered row r (of idx[0..count)) as one about its row of the whole data.
  [[noreturn]] void throw_at_gathered_row(const DataError& e, const std::int64_t* idx,
                                          std::int64_t count) const {
    if (e.row() < 1 || e.row() > count) throw e;
    const std::int64_t row = idx[e.row() - 1];
    throw DataError(e.source(), row + 1, e.column(),
                    e.problem() + " (in " + where(chunk_of(row)) + ")");
  }

  [[noreturn]] static void answer_of_wrong_size(const char* call) {
    throw InvalidArgument(std::string("chunk source: ") + call +
                          "() gave a list of the wrong size");
  }

  // "chunk 7 (rows 701..800)", rows of the whole data counted from 1; "chunk 8 (no rows, after
  // row 800)" for an empty one.
  std::string where(std::int64_t i) const {
    std::string s = noun_ + " " + std::to_string(i);
    const std::size_t u = static_cast<std::size_t>(i);
    if (u < first_row_.size() && u < chunk_rows_.size()) {
      if (chunk_rows_[u] == 0) {
        s += " (no rows, after row " + std::to_string(first_row_[u]) + ")";
      } else {
        s += " (rows " + std::to_string(first_row_[u] + 1) + ".." +
             std::to_string(first_row_[u] + chunk_rows_[u]) + ")";
      }
    }
    return s;
  }

  void check_chunk(std::int64_t i, const DataView& view, const double* w) const {
    if (view.rows < 0 || (view.rows > 0 && view.data == nullptr)) {
      throw InvalidArgument(where(i) + ": no data (" + std::to_string(view.rows) + " rows)");
    }
    if (view.cols != cols_) {
      throw InvalidArgument(where(i) + ": " + count_of(view.cols, "column") + ", but " + noun_ +
                            " 0 has " + std::to_string(cols_));
    }
    if (view.dtype != dtype_) {
      throw InvalidArgument(where(i) + ": " + to_string(view.dtype) + " values, but " + noun_ +
                            " 0 has " + to_string(dtype_));
    }
    if ((w != nullptr) != weighted_) {
      throw InvalidArgument(where(i) + (weighted_
                                            ? ": no sample weights, but " + noun_ + " 0 has them"
                                            : ": sample weights, but " + noun_ + " 0 has none"));
    }
  }

  // Chunk i again: its shape checked against the first read (or the announced row count), and
  // its values and weights the first time.
  DataView reread(std::int64_t i) {
    const DataView view = source_.chunk(i);
    const double* w = source_.chunk_weights(i);
    check_chunk(i, view, w);
    const std::int64_t expected = chunk_rows_[static_cast<std::size_t>(i)];
    if (view.rows != expected) {
      throw InvalidArgument(where(i) + ": " + std::to_string(view.rows) + " rows now, but " +
                            std::to_string(expected) +
                            " before; a chunk source must give the same chunks on every pass");
    }
    if (!checked_[static_cast<std::size_t>(i)]) {
      check_values(i, view, w);
    } else if (w != nullptr) {
      // Weights are few beside the values (one a row): checked on every pass, since a negative
      // one that appears later keeps every sum finite and was used silently.
      bool bad = false;
      for (std::int64_t r = 0; r < view.rows; ++r) bad |= !(w[r] >= 0) || !std::isfinite(w[r]);
      if (bad) check_values_of(i, view, w, " on a later pass");
    }
    return view;
  }

  // Values are checked on a chunk's first read only (a check per pass would cost a scan of the
  // data per iteration). A source whose values change afterwards shows it where they make a
  // chunk's log-likelihood or weight not finite (a NaN or 1e300 on the third pass): the chunk is
  // checked again, and the error names it, rather than the fit's "log-likelihood is nan".
  void name_values_gone_bad(std::int64_t i, const DataView& view, const double* w,
                            const double* statistics) const {
    if (std::isfinite(statistics[StatisticsLayout::kWeightSum]) &&
        std::isfinite(statistics[StatisticsLayout::kLogLikelihood])) {
      return;  // a log-likelihood of -inf too: a value of 1e300 that came later gives it
    }
    check_values_of(i, view, w, " on a later pass");
  }

  // Throws, naming the chunk and the row within the whole data (so that a caller who knows the
  // file can name it; the CLI does), if a value or weight of chunk i is one the fit cannot take.
  void check_values_of(std::int64_t i, const DataView& view, const double* w,
                       const std::string& when) const {
    // An empty chunk (an empty row group or record batch) holds nothing to check.
    if (view.rows == 0) return;
    try {
      validate_fit_data(view, options_);
      validate_sample_weight(w, view.rows, false);
    } catch (const DataError& e) {
      throw DataError(e.source(), e.row() + first_row_[static_cast<std::size_t>(i)], e.column(),
                      e.problem() + " (in " + where(i) + when + ")");
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(where(i) + when + ": " + e.what());
    }
  }

  // Chunk i's values and weights, on its first read. Once every chunk is checked, the weights'
  // sum must be positive.
  void check_values(std::int64_t i, const DataView& view, const double* w) {
    check_values_of(i, view, w, "");
    double sum = 0;
    for (std::int64_t r = 0; w != nullptr && r < view.rows; ++r) {
      sum += w[r];
      largest_weight_ = std::max(largest_weight_, w[r]);
    }
    chunk_weight_sums_[static_cast<std::size_t>(i)] = sum;
    checked_[static_cast<std::size_t>(i)] = true;
    if (++n_checked_ == static_cast<std::int64_t>(checked_.size()) && weighted_) {
      // In chunk order, whichever order the chunks were first read in.
      weight_sum_ = 0;
      for (const double s : chunk_weight_sums_) weight_sum_ += s;
      if (!(weight_sum_ > 0)) throw InvalidArgument("chunk source: the sample weights sum to 0");
      try {
        check_largest_sample_weight(largest_weight_);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(std::string("chunk source: ") + e.what());
      }
    }
  }

  std::unique_ptr<Engine> engine_for(const DataView& view, const double* weights) {
    std::unique_ptr<Engine> engine = make_engine(view, weights, engine_options_);
    if (engine_name_.empty()) engine_name_ = engine->name();
    return engine;
  }

  std::int64_t chunk_of(std::int64_t row) const {
    const auto it = std::upper_bound(first_row_.begin(), first_row_.end(), row);
    return static_cast<std::int64_t>(it - first_row_.begin()) - 1;
  }

  ChunkSource& source_;
  RemoteChunks* remote_ = nullptr;  // when the source computes passes where its chunks are
  std::string noun_ = "chunk";
  FitOptions options_;
  EngineOptions engine_options_;
  std::int64_t cols_ = 0;
  DType dtype_ = DType::kFloat64;
  bool weighted_ = false;
  std::int64_t rows_ = 0;
  std::vector<bool> checked_;  // chunks whose values and weights have been checked
  std::vector<double> chunk_weight_sums_;
  double weight_sum_ = 0;      // once every chunk is checked
  double largest_weight_ = 0;  // of the chunks checked so far
  std::int64_t n_checked_ = 0;
  std::vector<std::int64_t> chunk_rows_;
  std::vector<std::int64_t> first_row_;  // and the total at the end
  std::string engine_name_;
};

}  // namespace

FitReport fit(ChunkSource& source, const FitOptions& options) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  const auto start = Clock::now();
  ChunkedEngine engine(source, options);
  validate_fit_options(options, engine.cols());
  if (options.n_components > engine.rows()) {
    throw InvalidArgument("n_components = " + std::to_string(options.n_components) +
                          " is larger than the number of rows (" + std::to_string(engine.rows()) +
                          ")");
  }
  check_fit_memory(engine.rows(), engine.cols(), options);
  const double setup_seconds = seconds_since(start);
  const WeightGather gather_weights = [&engine](const std::int64_t* idx, std::int64_t count,
                                                double* out) {
    engine.gather_weights(idx, count, out);
  };
  FitReport report = run_em(engine, engine.rows(), static_cast<int>(engine.cols()), engine.dtype(),
                            gather_weights, options);
  report.seconds = seconds_since(start);
  report.setup_seconds = setup_seconds;
  return report;
}

SelectReport select(ChunkSource& source, const SelectOptions& options) {
  const cpu::ScopedNonStopFp non_stop;
  const auto start = Clock::now();
  ChunkedEngine engine(source, candidate_options(options).front());
  const WeightGather gather_weights = [&engine](const std::int64_t* idx, std::int64_t count,
                                                double* out) {
    engine.gather_weights(idx, count, out);
  };
  SelectReport report = select_on(
      engine, engine.rows(), static_cast<int>(engine.cols()), engine.dtype(), gather_weights,
      [&engine] { return engine.weight_total(); }, options);
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace emix
