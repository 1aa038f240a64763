// Per-row results of a model on data (what predict, predict_proba, score_samples and score
// share), computed a block of rows at a time: what the results take beyond the caller's own
// buffers is one block's log-densities, whatever the number of rows, so that a score of data
// mapped from a file streams as its fit does.
#pragma once

#include <cstdint>
#include <functional>

#include "core/prepared_model.hpp"
#include "core/validate.hpp"
#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

// Rows per block: 128 MiB of log-densities, and the set-up of an engine (a GPU one uploads the
// block) small beside the block's work.
constexpr std::int64_t kEvaluationBlockRows = std::int64_t{1} << 24;

// Where the results go; a null pointer is a result not wanted. Host memory, or device memory
// where `on_device` (the C API's results for device data).
struct RowResults {
  double* log_prob = nullptr;      // N:     log p(x_n)
  double* resp = nullptr;          // N x K: p(k | x_n), row-major
  std::int32_t* labels = nullptr;  // N:     argmax_k p(k | x_n)
  bool on_device = false;
};

// Receives each block's log-densities (host memory) in row order: rows [first_row, first_row +
// rows) of the data.
using BlockLogDensities =
    std::function<void(std::int64_t first_row, std::int64_t rows, const double* log_prob)>;

// log p(x | k) + log w_k for every component k of one Gaussian row (m.k values), in a form that
// never gives NaN for a finite row: each distance from a mean is taken at half scale and divided
// by its largest entry before it meets the precision factor, and the squared norm is scaled back
// last, so that a row too far from a component for double precision gets -inf there (a density
// that rounds to zero) rather than inf - inf. evaluate_rows uses it for the rows an engine's
// faster form (an expansion about a centre) left NaN.
void far_row_log_joints(const PreparedModel& m, const double* x, double* log_joint);

// Checks the model, the options and the data, then evaluates every row of x into `results`, in
// blocks of block_rows rows, one engine each. The CPU engine's float64 values are bitwise those
// of one engine over all rows (it evaluates about the model's mean, not the data's); a float32
// engine decides from a block's rows whether float holds a model (its overflow guard, and the
// probe rows of a wide full model), so a float32 value may differ within float's rounding where
// blocks decide apart. Results in device memory pass through host buffers of one block (of
// responsibilities too: their blocks are then block_rows / K rows). Each block's log-densities
// go to `each_block` when given. In a block check_evaluation refuses, or with a Gaussian
// log-density of -inf, the rows an engine left NaN or -inf are evaluated again by
// far_row_log_joints; a row that still cannot be evaluated throws DataError naming it, and
// blocks before it are then written. Data without rows give no results
// and call nothing.
void evaluate_rows(const Model& model, const DataView& x, const EngineOptions& options,
                   const RowResults& results, const BlockLogDensities& each_block = {},
                   std::int64_t block_rows = kEvaluationBlockRows);
// score, bic and aic (emix/fit.hpp) of a model validate_and_prepare took, or, where `checked` is
// null, of one they check and factor.
double score_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                     const EngineOptions& engine, const double* sample_weight);
double bic_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                   const EngineOptions& engine, const double* sample_weight = nullptr);
double aic_checked(const Model& model, const CheckedModel* checked, const DataView& x,
                   const EngineOptions& engine, const double* sample_weight = nullptr);

// evaluate_rows for a model validate_and_prepare took (an Evaluator's, the C API's model handle's):
// the model is not checked or factored again.
void evaluate_rows(const Model& model, const CheckedModel& checked, const DataView& x,
                   const EngineOptions& options, const RowResults& results,
                   const BlockLogDensities& each_block = {},
                   std::int64_t block_rows = kEvaluationBlockRows);

}  // namespace emix
