// Fuzz harness: the raw binary reader. The first 9 bytes of an input choose the options (the
// element type, then raw_cols as a little-endian int64, huge and negative values included);
// the rest is the file. Invariants as for .npy (fuzz_matrix_checks.hpp).
#include <cstdint>
#include <cstring>
#include <string>

#include "emix/io.hpp"
#include "fuzz_input.hpp"
#include "fuzz_matrix_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const char* const kTypes[] = {"float32", "float64", "int8",  "uint8",  "int16", "uint16",
                                       "int32",   "uint32",  "int64", "uint64", "bool",  "complex"};
  if (size < 9) return 0;
  static emix::fuzz::MemoryFile file("emix-fuzz-raw");
  emix::io::ReadOptions options;
  options.format = emix::io::FileFormat::kRaw;
  options.raw_dtype = kTypes[data[0] % (sizeof kTypes / sizeof kTypes[0])];
  std::memcpy(&options.raw_cols, data + 1, sizeof options.raw_cols);
  const std::string& path = file.hold(data + 9, size - 9);
  emix::fuzz::check_matrix_reader(path, options);
  return 0;
}
