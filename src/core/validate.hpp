// Argument checks shared by fit() and the evaluation functions. Each throws InvalidArgument
// with a message that names the bad value (rows and columns 1-based, as a person counts).
#pragma once

#include "emix/data.hpp"
#include "emix/model.hpp"
#include "emix/options.hpp"

namespace emix {

void validate_fit_arguments(const DataView& x, const FitOptions& options,
                            const double* sample_weight);
// The model is valid and matches the data's width; host data hold finite values the family
// accepts.
void validate_model_for_data(const Model& model, const DataView& x);
void validate_sample_weight(const double* sample_weight, std::int64_t rows);

}  // namespace emix
