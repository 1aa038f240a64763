// Fuzz harness: the CSV / whitespace text reader. Invariants as for .npy
// (fuzz_matrix_checks.hpp), text_line_of_row names a line that exists for every row read, and
// text_column_names gives a name to each column read.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "emix/io.hpp"
#include "fuzz_input.hpp"
#include "fuzz_matrix_checks.hpp"

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
    // A header's names, where the read took its first line for one, name every column read.
    const std::vector<std::string> names = emix::io::text_column_names(path);
    if (rows > 0 && !names.empty() &&
        static_cast<std::int64_t>(names.size()) != emix::io::read_matrix(path, options).cols()) {
      emix::fuzz::finding("text_column_names disagrees with the read's columns");
    }
  });
  return 0;
}
