// Argument checks shared by fit() and the evaluation functions. Each throws InvalidArgument
// with a message that names the bad value (rows and columns 1-based, as a person counts).
#pragma once

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

void validate_fit_arguments(const DataView& x, const FitOptions& options,
                            const double* sample_weight);
// The parts of validate_fit_arguments a distributed fit runs per rank: option values (and the
// init model against `cols` columns), and the data's shape and values.
void validate_fit_options(const FitOptions& options, std::int64_t cols);
void validate_fit_data(const DataView& x, const FitOptions& options);
// The model is valid and matches the data's width; host data hold finite values the family
// accepts.
void validate_model_for_data(const Model& model, const DataView& x);
// Finite, non-negative weights; with require_positive_sum, not all zero.
void validate_sample_weight(const double* sample_weight, std::int64_t rows,
                            bool require_positive_sum = true);

}  // namespace emix
