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

TEST(Float32RoundingScan, NamesTheColumnFarFromTheOriginWithItsMagnitudeAndSpread) {
  const std::vector<double> x = two_columns(1000, 1e6, 2.0);
  Float32RoundingScan scan;
  scan.add(DataView::host(x.data(), 1000, 2));
  const auto worst = scan.worst();
  ASSERT_TRUE(worst.has_value());
  EXPECT_EQ(worst->column, 1);
  EXPECT_EQ(worst->largest, 1e6 + 2.0);
  // Taken about the first row in double: the spread of 1e6 + {0, 2} is exactly 1.
  EXPECT_DOUBLE_EQ(worst->spread, 1.0);
  EXPECT_DOUBLE_EQ(worst->lost, (1e6 + 2.0) * std::ldexp(1.0, -24));
}

TEST(Float32RoundingScan, DataNearTheOriginOrConstantColumnsAreNotNamed) {
  // 1e2 with a spread of 0.5: 1e2 * 2^-24 / 0.5 = 1.2e-5, below the 1e-4 limit.
  std::vector<double> x = two_columns(100, 1e2, 1.0);
  Float32RoundingScan near;
  near.add(DataView::host(x.data(), 100, 2));
  EXPECT_FALSE(near.worst().has_value());
  // A constant column far away has no spread to lose.
  x = two_columns(100, 1e9, 0.0);
  Float32RoundingScan constant;
  constant.add(DataView::host(x.data(), 100, 2));
  EXPECT_FALSE(constant.worst().has_value());
  // One row has no spread either.
  x = two_columns(1, 1e9, 1.0);
  Float32RoundingScan one;
  one.add(DataView::host(x.data(), 1, 2));
  EXPECT_FALSE(one.worst().has_value());
}

TEST(Float32RoundingScan, ChunksGiveWhatTheWholeGives) {
  const std::vector<double> x = two_columns(999, -3e7, 40.0);
  Float32RoundingScan whole, chunks;
  whole.add(DataView::host(x.data(), 999, 2));
  for (std::int64_t first = 0; first < 999; first += 250) {
    const std::int64_t rows = std::min<std::int64_t>(250, 999 - first);
    chunks.add(DataView::host(x.data() + first * 2, rows, 2));
  }
  ASSERT_TRUE(whole.worst().has_value());
  ASSERT_TRUE(chunks.worst().has_value());
  EXPECT_EQ(chunks.worst()->column, 1);
  EXPECT_EQ(chunks.worst()->largest, 3e7 + 0.0);
  EXPECT_EQ(chunks.worst()->spread, whole.worst()->spread);
  EXPECT_EQ(chunks.worst()->lost, whole.worst()->lost);
}

TEST(Float32RoundingScan, ReadsFloat32AndRefusesAnotherWidth) {
  const std::vector<float> x = {1e7f, 0.f, 1e7f + 4.f, 1.f};  // spread 2 and 0.5
  Float32RoundingScan scan;
  scan.add(DataView::host(x.data(), 2, 2));
  ASSERT_TRUE(scan.worst().has_value());
  EXPECT_EQ(scan.worst()->column, 0);
  EXPECT_DOUBLE_EQ(scan.worst()->spread, 2.0);
  const std::vector<double> three(3, 0.0);
  EXPECT_THROW(scan.add(DataView::host(three.data(), 1, 3)), emix::InvalidArgument);
}

}  // namespace
