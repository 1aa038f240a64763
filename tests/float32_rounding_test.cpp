// emix::detail::Float32RoundingScan, which the CLI's --precision float and the Python
// estimators' dtype='float32' use to warn where rounding data to float32 loses more than 1e-4
// of a column's spread. Expected values are closed forms of the data.
#include "core/float32_rounding.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "emix/errors.hpp"

namespace {

using emix::DataView;
using emix::detail::Float32RoundingScan;

// Rows of two columns: a centred one (0, 1, 0, 1, ...; spread 0.5) and one at `offset` with
// the same alternation times `scale` (spread 0.5 * scale).
std::vector<double> two_columns(std::int64_t rows, double offset, double scale) {
  std::vector<double> x;
  for (std::int64_t n = 0; n < rows; ++n) {
    x.push_back(static_cast<double>(n % 2));
    x.push_back(offset + scale * static_cast<double>(n % 2));
  }
  return x;
}

double rounding_of(double value) { return std::fabs(value - static_cast<float>(value)); }

TEST(Float32RoundingScan, NamesTheColumnFarFromTheOriginWithWhatRoundingChangedOfItsSpread) {
  const double low = 1e6 + 0.3, high = low + 2.0;  // float32's spacing at 1e6 is 0.0625
  const std::vector<double> x = two_columns(1000, low, 2.0);
  Float32RoundingScan scan;
  scan.add(DataView::host(x.data(), 1000, 2));
  const auto worst = scan.worst();
  ASSERT_TRUE(worst.has_value());
  EXPECT_EQ(worst->column, 1);
  EXPECT_EQ(worst->largest, high);
  // Taken about the first row in double: the spread of {low, low + 2} is exactly 1.
  EXPECT_DOUBLE_EQ(worst->spread, 1.0);
  EXPECT_EQ(worst->lost, std::max(rounding_of(low), rounding_of(high)));
  EXPECT_GT(worst->lost, 1e-3);
}

TEST(Float32RoundingScan, WhatFloat32HoldsExactlyOrNearTheOriginIsNotNamed) {
  // Whole numbers far out: float32 holds them, and nothing is lost however large they are.
  std::vector<double> x = two_columns(100, 1e6, 2.0);
  Float32RoundingScan whole;
  whole.add(DataView::host(x.data(), 100, 2));
  EXPECT_FALSE(whole.worst().has_value());
  // 1e2 + 0.1 with a spread of 0.5: at most 2^-18 lost, 1.5e-5 of the spread, under 1e-4.
  x = two_columns(100, 100.1, 1.0);
  Float32RoundingScan near;
  near.add(DataView::host(x.data(), 100, 2));
  EXPECT_FALSE(near.worst().has_value());
  // A constant column far away has no spread to lose; one row has no spread either.
  x = two_columns(100, 1e9 + 0.5, 0.0);
  Float32RoundingScan constant;
  constant.add(DataView::host(x.data(), 100, 2));
  EXPECT_FALSE(constant.worst().has_value());
  x = two_columns(1, 1e9 + 0.5, 1.0);
  Float32RoundingScan one;
  one.add(DataView::host(x.data(), 1, 2));
  EXPECT_FALSE(one.worst().has_value());
}

// A column at 1e8 with a spread of 1 rounds to a handful of values (float32's spacing there is
// 8): the scan of the values before the rounding still sees the spread.
TEST(Float32RoundingScan, AColumnThatRoundingMakesNearlyConstantIsNamed) {
  std::vector<double> x;
  for (int n = 0; n < 200; ++n) {
    x.push_back(0.1 * (n % 7));
    x.push_back(1e8 + 0.37 + 2.0 * ((n % 5) - 2));
  }
  Float32RoundingScan scan;
  scan.add(DataView::host(x.data(), 200, 2));
  ASSERT_TRUE(scan.worst().has_value());
  EXPECT_EQ(scan.worst()->column, 1);
  EXPECT_GT(scan.worst()->lost, 1.0);
}

TEST(Float32RoundingScan, ChunksGiveWhatTheWholeGives) {
  const std::vector<double> x = two_columns(999, -3e7 - 0.25, 40.0);
  Float32RoundingScan whole, chunks;
  whole.add(DataView::host(x.data(), 999, 2));
  for (std::int64_t first = 0; first < 999; first += 250) {
    const std::int64_t rows = std::min<std::int64_t>(250, 999 - first);
    chunks.add(DataView::host(x.data() + first * 2, rows, 2));
  }
  ASSERT_TRUE(whole.worst().has_value());
  ASSERT_TRUE(chunks.worst().has_value());
  EXPECT_EQ(chunks.worst()->column, 1);
  EXPECT_EQ(chunks.worst()->largest, 3e7 + 0.25);
  EXPECT_EQ(chunks.worst()->spread, whole.worst()->spread);
  EXPECT_EQ(chunks.worst()->lost, whole.worst()->lost);
}

TEST(Float32RoundingScan, Float32DataHaveNothingToLoseAndAnotherWidthIsRefused) {
  const std::vector<float> x = {1e7f, 0.f, 1e7f + 4.f, 1.f};
  Float32RoundingScan scan;
  scan.add(DataView::host(x.data(), 2, 2));
  EXPECT_FALSE(scan.worst().has_value());
  const std::vector<double> three(3, 0.0);
  EXPECT_THROW(scan.add(DataView::host(three.data(), 1, 3)), emix::InvalidArgument);
}

}  // namespace
