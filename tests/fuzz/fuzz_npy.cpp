// Fuzz harness: the .npy reader (io::read_matrix with FileFormat::kNpy, io::count_rows).
// Invariants beyond "no crash, only emix::Error": the row count from the header agrees with the
// rows read, a row range is exactly those rows of the whole, float32 values are the float64
// ones narrowed, and a strict read holds no NaN or Inf.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "emix/io.hpp"
#include "fuzz_input.hpp"
#include "fuzz_matrix_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static emix::fuzz::MemoryFile file("emix-fuzz-npy");
  const std::string& path = file.hold(data, size);
  emix::io::ReadOptions options;
  options.format = emix::io::FileFormat::kNpy;
  emix::fuzz::check_matrix_reader(path, options);
  return 0;
}
