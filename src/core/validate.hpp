// Argument checks for fit(), the evaluation functions, sample() and Model::validate(): the one
// place where the library decides what it accepts. The C API and the emix program rely on these
// rather than checking values themselves. Each throws InvalidArgument (DataError for a value of
// the data or the weights) with a message that names the bad value (rows and columns 1-based,
// as a person counts) and never names a command-line flag; a size is checked before anything of
// that size is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/prepared_model.hpp"
#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

// Widest data and model: beyond this K x D x D parameters stop being a fit one could run.
constexpr std::int64_t kMaxFeatures = std::int64_t{1} << 20;
// Most CPU engine threads. libgomp crashes (SIGSEGV) starting ~100,000 and fails from ~40,000;
// beyond a few per core they only cost memory (one tile of scratch each).
constexpr int kMaxThreads = 1024;

// `text` quoted for a message: at most `max_bytes` of it, with quotes, backslashes, control and
// non-ASCII bytes escaped (\n, \xNN), and its full length when it was cut:
// 'abc...' (20000000 bytes). Error messages never copy unbounded or unprintable input.
std::string quoted_excerpt(std::string_view text, std::size_t max_bytes = 40);

// "1 column", "3 columns": a count with its noun, for messages.
std::string count_of(std::int64_t count, const char* noun);

// Shortest text that reads back as the same double ("2", "0.1", "5e-324"), for messages.
std::string number(double value);

// The first check of Model::validate: K >= 1, 1 <= D <= kMaxFeatures and K x D x D countable.
// For a caller that sizes the parameter arrays from K and D before it fills them.
void validate_model_shape(const Model& model);

void validate_fit_arguments(const DataView& x, const FitOptions& options,
                            const double* sample_weight);
// The parts of validate_fit_arguments a distributed fit runs per rank: option values (and the
// init model against `cols` columns), and the data's shape and values.
void validate_fit_options(const FitOptions& options, std::int64_t cols);
// The M-step's options, as FitOptions and MStepOptions hold them: OptionError naming the one out
// of range and its value.
void validate_mstep_options(double reg_covar, double prob_epsilon);
void validate_fit_data(const DataView& x, const FitOptions& options);
// The model is valid and has `cols` features (what data without rows can be checked for).
void validate_model_for_width(const Model& model, std::int64_t cols);
// The model has `cols` features.
void check_model_width(const Model& model, std::int64_t cols);

// A model checked by Model::validate and prepared by prepare() with one factorisation of each
// full or tied covariance where the two took one each (at K = 16, D = 512: 0.13 s each), and
// the largest entry of its precision matrices (for the check of float32 data).
struct CheckedModel {
  PreparedModel prepared;
  double largest_precision = 0;
};
// Throws Model::validate's errors (its first, in its order). threads: PrepareOptions::threads.
CheckedModel validate_and_prepare(const Model& model, int threads);
// The threads `engine` asks for, where they are a valid count (else 1: the options' own check
// names the value), for a factorisation that may run before that check.
int factorisation_threads(const EngineOptions& engine);

// A model validate_and_prepare took matches the data's width; host data hold finite values the
// family accepts; the model's precisions are finite in the data's element type.
// summing_squares: also refuse Gaussian values whose squares overflow (accumulate does).
void validate_checked_model_for_data(const Model& model, const CheckedModel& checked,
                                     const DataView& x, bool summing_squares = false);
// The data's shape alone, reading no value: rows and columns >= 1, a pointer, a width emix
// supports and a size memory can hold. What reads values (the weights, say) checks it first.
void check_data_shape(const DataView& x);
// Finite, non-negative weights. With all_rows (the weights of all the data, not a chunk's or a
// rank's), also not all zero, and those below DBL_MIN, which the engines count as 0, too few to
// matter beside the others. Returns the largest (0 without weights), for a fit's
// check_largest_sample_weight.
double validate_sample_weight(const double* sample_weight, std::int64_t rows, bool all_rows = true);
// validate_sample_weight's rule on the weights' totals: those at or above DBL_MIN (normal) and
// those below (subnormal), for weights summed elsewhere (emix.dask's blocks).
void check_weight_totals(double normal_total, double subnormal_total, bool all_rows = true);
// A fit's rule (in memory, in chunks, over ranks): InvalidArgument, advising to scale them up,
// where the largest of all the rows' weights is so small that its products with the
// responsibilities flush to 0. A score of such weights has no responsibilities, and is taken.
void check_largest_sample_weight(double largest);
// Throws OutOfMemory when what a fit of `rows` x `cols` with these options surely allocates
// (a lower bound: initialisation's sample-by-K matrices, the statistics) exceeds the memory of
// this machine (or of its cgroup), before any of it is allocated.
void check_fit_memory(std::int64_t rows, std::int64_t cols, const FitOptions& options);
// The same for a grid of candidates fitted together (select): all their runs at once.
// What this process may allocate: the least of physical memory, the cgroup's limit and the
// process's address-space and data limits (what check_fit_memory compares with).
double usable_memory_bytes();
void check_select_memory(std::int64_t rows, std::int64_t cols, const std::vector<FitOptions>& grid);

// Throws OutOfMemory when the results of an evaluation of `rows` rows, `bytes_per_row` each
// (`what`: "a label (int32)"), cannot fit in memory, before they are allocated.
void check_result_memory(std::int64_t rows, double bytes_per_row, const std::string& what);
// OutOfMemory when sample() of `rows` x `cols` would not fit in this machine's memory.
void check_sample_memory(std::int64_t rows, int cols);

// After an evaluation of `rows` rows (the data's rows first_row + 1, ... as a person counts):
// throws DataError (column 0: the whole row) at the first row whose log-density is NaN, or whose
// responsibilities are NaN although its log-density is finite (resp may be null), rather than
// return a NaN answer. A row that every component gives -inf (a density that rounds to zero) has
// a log-density, -inf, but no responsibilities or label: refused when `assigning`
// (responsibilities or labels asked for); otherwise *zero_density (when given) says whether
// there was one.
void check_evaluation(const double* log_prob, const double* resp, std::int64_t rows, int k,
                      bool assigning, std::int64_t first_row, bool* zero_density = nullptr);

}  // namespace emix
