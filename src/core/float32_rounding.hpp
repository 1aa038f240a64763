// How much of a column's spread float32 loses when data far from the origin are rounded to it:
// values of 1e6 with a spread of 1 keep only 0.06 of it, whatever arithmetic follows. The
// callers that round users' data to float32 (the CLI's --precision float, the Python
// estimators' dtype='float32') warn with what this finds, in their own terms.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "emix/data.hpp"

namespace emix::detail {

// Above this fraction of a column's spread the rounding is worth a warning: float32's own
// relative precision (2^-24 = 6e-8) leaves 1e-4 for data whose magnitude is up to about 1700
// times their spread.
constexpr double kFloat32RoundingLimit = 1e-4;

struct Float32Rounding {
  std::int64_t column = 0;  // 0-based
  double largest = 0;       // the column's largest magnitude
  double spread = 0;        // its standard deviation
  double lost = 0;          // largest * 2^-24 / spread: the rounding, in units of the spread
};

// Column magnitudes and spreads of host data given in row order, in one or more views (the
// chunks of a file). The spread is taken about the first row, in double, so that data far from
// the origin keep their spread.
class Float32RoundingScan {
 public:
  void add(const DataView& rows);
  // The column that loses the largest fraction of its spread, where that is above
  // kFloat32RoundingLimit; nothing otherwise (nor for a constant column, which has no spread).
  std::optional<Float32Rounding> worst() const;

 private:
  std::int64_t rows_ = 0;
  std::vector<double> centre_, largest_, sums_, squares_;
};

}  // namespace emix::detail
