// Fuzz harness: the CSV / whitespace text reader. Invariants as for .npy
// (fuzz_matrix_checks.hpp), text_line_of_row names a line that exists for every row read, and
// text_first_line takes the first line as the read does (a cell per column; a row is row 1).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "emix/io.hpp"
#include "fuzz_input.hpp"
#include "fuzz_matrix_checks.hpp"

namespace {

// Lines that hold data: not blank (spaces and tabs) and not a comment ('#' first), a byte-order
// mark before the first line skipped, lines ending at "\n", "\r\n" or a lone "\r".
std::int64_t data_lines(const std::uint8_t* data, std::size_t size) {
  std::size_t i = size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF ? 3 : 0;
  std::int64_t count = 0;
  while (i < size) {
    std::size_t end = i;
    while (end < size && data[end] != '\n' && data[end] != '\r') ++end;
    std::size_t first = i;
    while (first < end && (data[first] == ' ' || data[first] == '\t')) ++first;
    if (first < end && data[first] != '#') ++count;
    i = end < size && data[end] == '\r' && end + 1 < size && data[end + 1] == '\n' ? end + 2
                                                                                   : end + 1;
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static emix::fuzz::MemoryFile file("emix-fuzz-text");
  const std::string& path = file.hold(data, size);
  emix::io::ReadOptions options;
  options.format = emix::io::FileFormat::kText;
  const std::int64_t rows = emix::fuzz::check_matrix_reader(path, options);
  emix::fuzz::expect_only_emix_errors([&] {
    // Lines end at "\n", "\r\n" or a lone "\r".
    std::int64_t lines = 1;
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] == '\n' || (data[i] == '\r' && (i + 1 == size || data[i + 1] != '\n'))) {
        ++lines;
      }
    }
    std::int64_t previous = 0;
    for (std::int64_t row = 1; row <= std::min<std::int64_t>(rows, 3); ++row) {
      const std::int64_t line = emix::io::text_line_of_row(path, row);
      if (line <= previous || line > lines) emix::fuzz::finding("text_line_of_row out of order");
      previous = line;
    }
    // The first line, as the read takes it: a header names every column read; a row is row 1;
    // the rows read are the lines of data less the header (counted here, apart from both).
    const emix::io::TextFirstLine first = emix::io::text_first_line(path);
    // (Line 0: a file the public function, unlike this forced text read, takes for binary.)
    if (rows > 0 && first.line != 0) {
      if (rows != data_lines(data, size) - (first.header ? 1 : 0)) {
        emix::fuzz::finding("text_first_line's header disagrees with the rows read");
      }
      const emix::HostMatrix all = emix::io::read_matrix(path, options);
      if (static_cast<std::int64_t>(first.cells.size()) != all.cols()) {
        emix::fuzz::finding("text_first_line's cells disagree with the read's columns");
      }
      if (!first.header && emix::io::text_line_of_row(path, 1) != first.line) {
        emix::fuzz::finding("text_first_line's row is not the read's row 1");
      }
    }
  });
  return 0;
}
