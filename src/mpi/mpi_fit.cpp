// mpi::fit: the single-process EM driver (run_em) on an engine whose statistics are the sum
// over ranks. Each rank's own engine (CPU or GPU) sees only its rows; rows are numbered
// globally in rank order, which is how initialisation and re-seeding address them.
#include "emix/mpi.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/em.hpp"
#include "core/engine.hpp"
#include "core/select_on.hpp"
#include "core/validate.hpp"
#include "cpu/fp_environment.hpp"
#include "emix/errors.hpp"
#include "emix/interrupt.hpp"
#include "mpi/collective.hpp"

namespace emix::mpi {

namespace {

int rank_of(MPI_Comm comm) {
  int rank = 0;
  check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  return rank;
}

int size_of(MPI_Comm comm) {
  int size = 1;
  check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  return size;
}

// This rank's index among the ranks of `comm` on the same node.
int node_rank(MPI_Comm comm) {
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
  const int rank = rank_of(node);
  MPI_Comm_free(&node);
  return rank;
}

class DistributedEngine final : public Engine {
 public:
  // local: this rank's engine, or null when it holds no rows; first_row: its first global row.
  DistributedEngine(MPI_Comm comm, std::unique_ptr<Engine> local, std::int64_t first_row,
                    std::int64_t rows, int cols)
      : comm_(comm),
        size_(size_of(comm)),
        local_(std::move(local)),
        first_row_(first_row),
        rows_(rows),
        cols_(cols) {}

  // A failure outside the engine (the caller's progress callback) to report, as this rank's,
  // at the next collective.
  void fail_at_next_exchange(std::exception_ptr error) {
    if (!pending_) pending_ = std::move(error);
  }
  // Collective: throws on every rank if any rank has a failure pending.
  void raise_pending() { raise_if_any_failed(comm_, std::exchange(pending_, nullptr)); }

  std::string name() const override {
    const std::string ranks = std::to_string(size_) + " MPI rank" + (size_ == 1 ? "" : "s");
    return local_ ? local_->name() + " x " + ranks : "no local rows, " + ranks;
  }

  void accumulate(const PreparedModel& model, double* stats) override {
    accumulate_many({&model}, {stats});
  }

  // Every model's statistics in one exchange (a selection's pass): the sums are elementwise,
  // so each model's are bitwise what accumulate() alone gives.
  void accumulate_many(const std::vector<const PreparedModel*>& models,
                       const std::vector<double*>& stats) override {
    std::size_t n = 0;
    for (const PreparedModel* m : models) n += m->layout.size();
    // One more element, the number of ranks that failed, travels with the statistics so that
    // a failure costs no extra collective when there is none.
    buffer_.assign(n + 1, 0.0);
    std::vector<double*> parts;
    for (std::size_t m = 0, at = 0; m < models.size(); at += models[m]->layout.size(), ++m) {
      parts.push_back(buffer_.data() + at);
    }
    std::exception_ptr error = std::exchange(pending_, nullptr);
    if (error) {
      buffer_[n] = 1;
    } else if (local_) {
      try {
        local_->accumulate_many(models, parts);
      } catch (...) {
        error = std::current_exception();
        buffer_[n] = 1;
      }
    }
    ordered_sum(comm_, buffer_.data(), static_cast<std::int64_t>(n + 1));
    if (buffer_[n] != 0) raise_if_any_failed(comm_, error);
    for (std::size_t m = 0; m < models.size(); ++m) {
      std::copy_n(parts[m], models[m]->layout.size(), stats[m]);
    }
  }

  void check_everywhere(const std::function<void()>& check) override {
    on_every_rank(comm_, check);
  }

  // This rank's rows only (not used by the fit).
  void evaluate(const PreparedModel& model, double* log_prob, double* resp,
                std::int32_t* labels) override {
    if (local_) local_->evaluate(model, log_prob, resp, labels);
  }

  void gather_rows(const std::int64_t* idx, std::int64_t count, double* out) override {
    std::fill(out, out + count * cols_, 0.0);
    std::exception_ptr error = std::exchange(pending_, nullptr);
    if (!error) {
      try {
        copy_own_rows(idx, count, out);
      } catch (...) {
        error = std::current_exception();
      }
    }
    raise_if_any_failed(comm_, error);
    exclusive_sum(comm_, out, count * cols_);
  }

 private:
  // Rows idx[i] this rank holds, into out's row i (other rows left as they are).
  void copy_own_rows(const std::int64_t* idx, std::int64_t count, double* out) {
    std::vector<std::int64_t> mine, where;
    for (std::int64_t i = 0; i < count; ++i) {
      if (idx[i] >= first_row_ && idx[i] < first_row_ + rows_) {
        mine.push_back(idx[i] - first_row_);
        where.push_back(i);
      }
    }
    if (mine.empty()) return;
    std::vector<double> rows(mine.size() * static_cast<std::size_t>(cols_));
    local_->gather_rows(mine.data(), static_cast<std::int64_t>(mine.size()), rows.data());
    for (std::size_t j = 0; j < mine.size(); ++j) {
      std::copy_n(rows.begin() + static_cast<std::ptrdiff_t>(j * cols_), cols_,
                  out + where[j] * cols_);
    }
  }

  MPI_Comm comm_;
  int size_;
  std::unique_ptr<Engine> local_;
  std::int64_t first_row_;
  std::int64_t rows_;
  int cols_;
  std::vector<double> buffer_;
  std::exception_ptr pending_;
};

// A duplicate of the caller's communicator for emix's own messages, so that they can never
// match the caller's (MPI_ANY_SOURCE / MPI_ANY_TAG receives included). Its failures return
// codes (MpiError, EMIX_MPI_ERROR) instead of ending the job, whatever the caller's handler.
class PrivateComm {
 public:
  explicit PrivateComm(MPI_Comm comm) {
    if (comm == MPI_COMM_NULL) throw InvalidArgument("the communicator is MPI_COMM_NULL");
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  }
  ~PrivateComm() { MPI_Comm_free(&comm_); }
  PrivateComm(const PrivateComm&) = delete;
  PrivateComm& operator=(const PrivateComm&) = delete;
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// 64-bit FNV-1a of a run of doubles, continuing from `hash`.
std::uint64_t hash_doubles(const std::vector<double>& values, std::uint64_t hash) {
  for (const double v : values) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= (bits >> (8 * byte)) & 0xff;
      hash *= 1099511628211ull;
    }
  }
  return hash;
}

// The options every rank must pass alike, as 64-bit words with their names: they decide how
// many exchanges a fit makes and what the model is. (Engine options may differ: each rank's
// engine is its own.)
struct AgreedOption {
  const char* name;
  std::uint64_t value;
};
std::vector<AgreedOption> agreed_options(const FitOptions& o) {
  const auto bits = [](double v) {
    std::uint64_t b = 0;
    std::memcpy(&b, &v, sizeof b);
    return b;
  };
  std::uint64_t init_model = 0;  // none
  if (o.init_model) {
    const Model& m = *o.init_model;
    init_model = 14695981039346656037ull ^ static_cast<std::uint64_t>(m.n_components);
    for (const auto* values : {&m.weights, &m.means, &m.covariances, &m.probabilities}) {
      init_model = hash_doubles(*values, init_model);
    }
  }
  const auto u = [](auto v) { return static_cast<std::uint64_t>(v); };
  return {{"n_components", u(o.n_components)},
          {"family", u(o.family)},
          {"covariance", u(o.covariance)},
          {"trials", u(o.trials)},
          {"init", u(o.init)},
          {"init_model", init_model},
          {"kmeans_iter", u(o.kmeans_iter)},
          {"init_max_rows", u(o.init_max_rows)},
          {"fixed_weights", u(o.fixed_weights)},
          {"n_init", u(o.n_init)},
          {"max_iter", u(o.max_iter)},
          {"tol", bits(o.tol)},
          {"reg_covar", bits(o.reg_covar)},
          {"prob_epsilon", bits(o.prob_epsilon)},
          {"seed", o.seed}};
}

// Collective: InvalidArgument on every rank, naming the first option and rank that differ from
// rank 0's, when the ranks' options do not agree. Different options would make the ranks take
// different numbers of steps and wait for each other forever, or end with different models.
void check_options_agree(MPI_Comm comm, const std::vector<AgreedOption>& mine) {
  std::vector<std::uint64_t> values;
  for (const AgreedOption& a : mine) values.push_back(a.value);
  const int count = static_cast<int>(values.size());
  std::vector<std::uint64_t> all(values.size() * static_cast<std::size_t>(size_of(comm)));
  check(MPI_Allgather(values.data(), count, MPI_UINT64_T, all.data(), count, MPI_UINT64_T, comm),
        "MPI_Allgather");
  for (std::size_t r = 1; r * values.size() < all.size(); ++r) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (all[r * values.size() + i] != all[i]) {
        throw_on_every_rank("options: rank " + std::to_string(r) + " passes another " +
                            mine[i].name + " than rank 0; every rank must pass the same options");
      }
    }
  }
}

}  // namespace

Shard shard_rows(std::int64_t total_rows, int rank, int size) {
  if (total_rows < 0 || size < 1 || rank < 0 || rank >= size) {
    throw InvalidArgument("shard_rows: need total_rows >= 0 and 0 <= rank < size, got " +
                          std::to_string(total_rows) + ", " + std::to_string(rank) + ", " +
                          std::to_string(size));
  }
  const std::int64_t base = total_rows / size;
  const std::int64_t extra = total_rows % size;
  Shard shard;
  shard.first_row = base * rank + std::min<std::int64_t>(rank, extra);
  shard.row_count = base + (rank < extra ? 1 : 0);
  return shard;
}

namespace {

// What fit and select share before EM: every rank's shape, values and `agreed` options checked
// against the others' (one rank's fault raised on every rank), the whole data's shape, the
// local engine, and the sample weights' gather and sum over ranks.
struct Distributed {
  std::unique_ptr<DistributedEngine> engine;
  std::int64_t total_rows = 0;
  int cols = 0;
  DType dtype = DType::kFloat64;
  double weight_sum = 0;  // total_rows without weights
  WeightGather gather_weights;
};

// k_within_rows: refuse options.n_components > the rows (fit; a selection fails such a
// candidate alone).
Distributed distribute(MPI_Comm comm, const DataView& local_rows, const FitOptions& options,
                       const double* local_sample_weight, const std::vector<AgreedOption>& agreed,
                       bool k_within_rows) {
  const int rank = rank_of(comm);
  const int size = size_of(comm);

  // The shape of the whole first (every rank learns every rank's rows, columns and element
  // type, and whether it has weights), so that a rank's complaint about its data can name the
  // global rows.
  constexpr int kShape = 4;
  const std::int64_t mine[kShape] = {local_rows.rows, local_rows.cols, local_sample_weight ? 1 : 0,
                                     static_cast<std::int64_t>(local_rows.dtype)};
  std::vector<std::int64_t> shapes(static_cast<std::size_t>(kShape * size));
  check(MPI_Allgather(mine, kShape, MPI_INT64_T, shapes.data(), kShape, MPI_INT64_T, comm),
        "MPI_Allgather");
  check_options_agree(comm, agreed);
  std::int64_t total_rows = 0, first_row = 0, cols = 0;
  int reference = -1;  // the first rank with rows: its width is the data's
  for (int r = 0; r < size; ++r) {
    const std::int64_t rows = shapes[kShape * r], width = shapes[kShape * r + 1];
    if (r == rank) first_row = total_rows;
    total_rows += rows;
    if (rows <= 0) continue;
    if (reference < 0) {
      reference = r;
      cols = width;
    } else if (width != cols) {
      throw_on_every_rank("rank " + std::to_string(r) + " of " + std::to_string(size) +
                          ": its rows have " + std::to_string(width) + " columns, but rank " +
                          std::to_string(reference) + "'s have " + std::to_string(cols));
    }
    // One element type: each rank would otherwise fit in its own precision, and the sum of
    // float32 and float64 statistics is neither fit.
    const std::int64_t dtype = shapes[kShape * r + 3],
                       reference_dtype = shapes[kShape * reference + 3];
    if (dtype != reference_dtype) {
      throw_on_every_rank("rank " + std::to_string(r) + " of " + std::to_string(size) +
                          ": its rows are " + to_string(static_cast<DType>(dtype)) + ", but rank " +
                          std::to_string(reference) + "'s are " +
                          to_string(static_cast<DType>(reference_dtype)) +
                          "; every rank must pass the same element type");
    }
    if (shapes[kShape * r + 2] != shapes[kShape * reference + 2]) {
      throw_on_every_rank("sample weights: rank " + std::to_string(r) +
                          (shapes[kShape * r + 2] ? " passes" : " does not pass") +
                          " them but rank " + std::to_string(reference) +
                          (shapes[kShape * r + 2] ? " does not" : " does"));
    }
  }
  // Decided once for all ranks (a rank without rows may pass no weights either way).
  const bool weighted = reference >= 0 && shapes[kShape * reference + 2] != 0;
  on_every_rank(comm, [&] {
    try {
      if (local_rows.rows < 0) throw InvalidArgument("data: negative number of rows");
      if (local_rows.rows > 0) validate_fit_data(local_rows, options);
      validate_sample_weight(local_sample_weight, local_rows.rows, false);
    } catch (const DataError& e) {
      // The row of all ranks' rows, as a single process would name it ("row 1" beside "rows
      // 1501 to 3000" read as row 1 of all), then where it is on this rank. An InvalidArgument,
      // not a DataError: a caller that renumbers DataError rows by its own first row (the
      // program does, for its files) would count this rank's rows twice.
      const bool weight = e.source() == DataError::Source::kSampleWeight;
      const std::int64_t row = first_row + e.row();
      std::string where = (weight ? "sample weights: row " : "data: row ") + std::to_string(row);
      if (!weight && e.column() > 0) where += ", column " + std::to_string(e.column());
      throw InvalidArgument(where + " " + e.problem() + " (row " + std::to_string(e.row()) +
                            " of this rank's, which are rows " + std::to_string(first_row + 1) +
                            " to " + std::to_string(first_row + local_rows.rows) + " of all)");
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(std::string(e.what()) + " (this rank's rows are rows " +
                            std::to_string(first_row + 1) + " to " +
                            std::to_string(first_row + local_rows.rows) + " of all)");
    }
  });
  if (total_rows == 0)
    throw_on_every_rank("data: no rows on any of the " + std::to_string(size) + " ranks");
  on_every_rank(comm, [&] { validate_fit_options(options, cols); });
  if (k_within_rows && options.n_components > total_rows) {
    throw_on_every_rank("n_components = " + std::to_string(options.n_components) +
                        " is larger than the number of rows (" + std::to_string(total_rows) +
                        " over " + std::to_string(size) + " ranks)");
  }
  double weight_sum = static_cast<double>(total_rows);
  if (weighted) {
    weight_sum = 0;
    double largest = 0;  // for check_largest_sample_weight below, from the same pass
    if (local_sample_weight) {
      for (std::int64_t n = 0; n < local_rows.rows; ++n) {
        weight_sum += local_sample_weight[n];
        largest = std::max(largest, local_sample_weight[n]);
      }
    }
    ordered_sum(comm, &weight_sum, 1);
    if (!(weight_sum > 0)) throw_on_every_rank("sample weights sum to 0 over all ranks");
    // Each rank's own checks saw only its share of the sum (validate_sample_weight's rules).
    if (!std::isfinite(weight_sum) || weight_sum < DBL_MIN) {
      throw_on_every_rank("sample weights sum to " + number(weight_sum) +
                          " over all ranks, which double precision cannot normalise by; "
                          "only the weights' ratios matter: rescale them");
    }
    check(MPI_Allreduce(MPI_IN_PLACE, &largest, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
    try {
      check_largest_sample_weight(largest);
    } catch (const InvalidArgument& e) {
      throw_on_every_rank(std::string(e.what()) + " (over all ranks)");
    }
  }

  const int local_index = node_rank(comm);  // collective: every rank asks
  std::unique_ptr<Engine> local_engine;
  on_every_rank(comm, [&] {
    if (local_rows.rows == 0) return;
    EngineOptions engine_options = options.engine;
    const bool host_data_on_gpu = local_rows.space == MemorySpace::kHost &&
                                  (engine_options.device == Device::kGpu ||
                                   (engine_options.device == Device::kAuto && gpu_available()));
    if (host_data_on_gpu && engine_options.gpu_device < 0 && gpu_count() > 0) {
      engine_options.gpu_device = local_index % gpu_count();
    }
    local_engine = make_engine(local_rows, local_sample_weight, engine_options);
  });
  Distributed d;
  d.engine = std::make_unique<DistributedEngine>(comm, std::move(local_engine), first_row,
                                                 local_rows.rows, static_cast<int>(cols));
  d.total_rows = total_rows;
  d.cols = static_cast<int>(cols);
  // The data's element type, a rank without rows included (its own view's is arbitrary).
  d.dtype = static_cast<DType>(shapes[kShape * reference + 3]);
  d.weight_sum = weight_sum;

  d.gather_weights = [comm, weighted, first_row, local_rows, local_sample_weight](
                         const std::int64_t* idx, std::int64_t count, double* out) {
    if (!weighted) {
      std::fill(out, out + count, 1.0);
      return;
    }
    std::fill(out, out + count, 0.0);
    for (std::int64_t i = 0; i < count; ++i) {
      if (idx[i] >= first_row && idx[i] < first_row + local_rows.rows) {
        out[i] = local_sample_weight[idx[i] - first_row];
      }
    }
    exclusive_sum(comm, out, count);
  };
  return d;
}

// The caller's progress callback, run on every rank; if it throws on one, the others must not
// wait for that rank at the next exchange: the failure travels with it instead.
std::function<void(const IterationInfo&)> reporting_through(
    DistributedEngine& engine, const std::function<void(const IterationInfo&)>& callback) {
  return [&engine, callback](const IterationInfo& info) {
    try {
      callback(info);
    } catch (...) {
      engine.fail_at_next_exchange(std::current_exception());
    }
  };
}

}  // namespace

FitReport fit(MPI_Comm caller_comm, const DataView& local_rows, const FitOptions& options,
              const double* local_sample_weight) {
  const cpu::ScopedNonStopFp non_stop;  // the caller may trap exceptions (fp_environment.hpp)
  // A caller's interrupt check stays out: one rank stopping alone would leave the others waiting
  // at their next exchange (on_iteration, which every rank hears of, stops them all).
  const InterruptCheck none_here(nullptr);
  require_initialized();
  require_one_release(caller_comm);
  const PrivateComm private_comm(caller_comm);
  const MPI_Comm comm = private_comm.get();
  Distributed d =
      distribute(comm, local_rows, options, local_sample_weight, agreed_options(options), true);
  FitOptions run_options = options;
  if (options.on_iteration) {
    run_options.on_iteration = reporting_through(*d.engine, options.on_iteration);
  }
  FitReport report;
  try {
    report = run_em(*d.engine, d.total_rows, d.cols, d.dtype, d.gather_weights, run_options);
  } catch (const Error& e) {
    held_by_every_rank(e);
    throw;
  }
  d.engine->raise_pending();  // a callback that failed after the last exchange
  return report;
}

SelectReport select(MPI_Comm caller_comm, const DataView& local_rows, const SelectOptions& options,
                    const double* local_sample_weight) {
  const cpu::ScopedNonStopFp non_stop;
  const InterruptCheck none_here(nullptr);  // as in fit
  const auto start = Clock::now();
  require_initialized();
  require_one_release(caller_comm);
  const PrivateComm private_comm(caller_comm);
  const MPI_Comm comm = private_comm.get();
  std::vector<FitOptions> grid;
  on_every_rank(comm, [&] { grid = candidate_options(options); });
  // The grid itself must agree too: each candidate is a run every rank takes part in.
  std::vector<AgreedOption> agreed = agreed_options(grid.front());
  // As the candidates are (a discrete family's covariance types, which it ignores, are not).
  std::uint64_t ks = 14695981039346656037ull, covariances = ks;
  for (const FitOptions& candidate : grid) {
    ks = hash_doubles({static_cast<double>(candidate.n_components)}, ks);
    covariances = hash_doubles({static_cast<double>(candidate.covariance)}, covariances);
  }
  agreed.push_back({"n_components (the grid's K)", ks});
  agreed.push_back({"covariance types", covariances});
  agreed.push_back({"criterion", static_cast<std::uint64_t>(options.criterion)});
  Distributed d = distribute(comm, local_rows, grid.front(), local_sample_weight, agreed, false);
  SelectOptions run_options = options;
  if (options.fit.on_iteration) {
    run_options.fit.on_iteration = reporting_through(*d.engine, options.fit.on_iteration);
  }
  const double weight_sum = d.weight_sum;
  SelectReport report;
  try {
    report = select_on(
        *d.engine, d.total_rows, d.cols, d.dtype, d.gather_weights,
        [weight_sum] { return weight_sum; }, run_options);
  } catch (const Error& e) {
    held_by_every_rank(e);
    throw;
  }
  d.engine->raise_pending();
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace emix::mpi
