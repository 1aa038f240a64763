// How much of a column's spread float32 loses when data far from the origin are rounded to it:
// values of 1e6 with a spread of 1 keep only 0.03 of it, whatever arithmetic follows. The
// callers that round users' data to float32 (the CLI's --precision float, the Python
// estimators' dtype='float32') warn with what this finds, in their own terms, from the values
// before the rounding.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "emix/data.hpp"

namespace emix::detail {

// Above this fraction of a column's spread the rounding is worth a warning: a fit in float32
// keeps about 1e-4 of a variance's digits at best (float's 2^-24 amplified by EM's steps).
constexpr double kFloat32RoundingLimit = 1e-4;

struct Float32Rounding {
  std::int64_t column = 0;  // 0-based
  double largest = 0;       // the column's largest magnitude
  double spread = 0;        // its standard deviation
  double lost = 0;          // its largest change in the rounding to float32, over the spread
};

// Column magnitudes, spreads and float32 rounding errors of host data given in row order, in
// one or more views (the chunks of a file), before they are rounded: float64 values (float32
// ones have nothing to lose). The spread is taken about the first row, in double, so that data
// far from the origin keep their spread. Values float32 holds exactly (integers up to 2^24, say)
// lose nothing, however large.
class Float32RoundingScan {
 public:
  void add(const DataView& rows);
  // The column that loses the largest fraction of its spread, where that is above
  // kFloat32RoundingLimit; nothing otherwise (nor for a constant column, which has no spread).
  std::optional<Float32Rounding> worst() const;

 private:
  std::int64_t rows_ = 0;
  std::vector<double> centre_, largest_, sums_, squares_, rounding_;
};

}  // namespace emix::detail
