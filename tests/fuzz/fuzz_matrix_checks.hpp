// The invariants the matrix readers' harnesses check on every input they read.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "emix/data.hpp"
#include "emix/io.hpp"
#include "fuzz_input.hpp"

namespace emix::fuzz {

// Reads `path` as `options` say in every way a caller can, and checks that the ways agree.
// Returns the number of rows of the strict float64 read (-1 when it was refused).
inline std::int64_t check_matrix_reader(const std::string& path, io::ReadOptions options) {
  std::int64_t rows_read = -1;
  expect_only_emix_errors([&] {
    const HostMatrix all = io::read_matrix(path, options);
    if (all.rows() < 0 || all.cols() < 0) finding("negative shape");
    for (std::int64_t i = 0; i < all.rows() * all.cols(); ++i) {
      if (!std::isfinite(all.as<double>()[i])) finding("a strict read returned NaN or Inf");
    }
    rows_read = all.rows();
    if (io::count_rows(path, options) != all.rows()) finding("count_rows disagrees with the read");

    // The middle third of the rows, read alone, is those rows of the whole.
    if (all.rows() >= 3) {
      io::ReadOptions range = options;
      range.first_row = all.rows() / 3;
      range.row_count = all.rows() / 3;
      const HostMatrix part = io::read_matrix(path, range);
      if (part.rows() != range.row_count || part.cols() != all.cols()) {
        finding("a row range has the wrong shape");
      }
      const std::size_t bytes = static_cast<std::size_t>(part.rows() * part.cols()) * 8;
      const auto* whole = static_cast<const unsigned char*>(all.data()) +
                          static_cast<std::size_t>(range.first_row * all.cols()) * 8;
      if (bytes > 0 && std::memcmp(part.data(), whole, bytes) != 0) {
        finding("a row range differs from the same rows of the whole");
      }
    }

    // As float32: each value the float64 one narrowed, or an error when one does not fit.
    io::ReadOptions narrow = options;
    narrow.dtype = DType::kFloat32;
    expect_only_emix_errors([&] {
      const HostMatrix f = io::read_matrix(path, narrow);
      if (f.rows() != all.rows() || f.cols() != all.cols()) finding("float32 shape differs");
      for (std::int64_t i = 0; i < all.rows() * all.cols(); ++i) {
        if (f.as<float>()[i] != static_cast<float>(all.as<double>()[i])) {
          finding("a float32 value is not the float64 one narrowed");
        }
      }
    });
  });
  // Without the finite check NaN and Inf pass, but nothing else changes.
  options.require_finite = false;
  expect_only_emix_errors([&] {
    const HostMatrix lenient = io::read_matrix(path, options);
    if (rows_read >= 0 && lenient.rows() != rows_read) {
      finding("the lenient read has other rows than the strict one");
    }
  });
  return rows_read;
}

}  // namespace emix::fuzz
