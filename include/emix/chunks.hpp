// Fits over data given chunk by chunk: data larger than memory (a memory-mapped file, an HDF5
// or Parquet dataset read piece by piece), exact EM all the same. Every E-step reads every chunk
// once, in order, and merges their statistics (emix/statistics.hpp) in chunk order.
#pragma once

#include <cstdint>

#include "emix/data.hpp"
#include "emix/fit.hpp"
#include "emix/options.hpp"

namespace emix {

// Data as an ordered list of chunks, read again on every pass (every EM iteration). A source
// must give the same chunks, in the same order, every time: the fit checks each chunk's shape
// against its first read and names the chunk that changed.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  virtual std::int64_t n_chunks() = 0;
  // Chunk i (0 <= i < n_chunks()): rows of the same width and element type as every other
  // chunk, host or device memory; valid until the next call of chunk() or the source's end.
  virtual DataView chunk(std::int64_t i) = 0;
  // Chunk i's sample weights (host, one per row), or null. Called right after chunk(i), valid as
  // long as it. Either every chunk has weights or none has.
  virtual const double* chunk_weights(std::int64_t) { return nullptr; }
  // Chunk i's row count when the source knows it without reading the chunk (a file's header
  // tells it), else -1. When it knows every chunk's, the fit reads no chunk before it needs its
  // values: each chunk is checked the first time it is read (by the initialisation's sample or
  // the first E-step), which saves a whole read of the data from disk. Otherwise the fit first
  // reads every chunk once, to count and check the rows.
  virtual std::int64_t known_rows(std::int64_t) { return -1; }
};

// fit() over the source's rows in order (chunk 0's rows first). Equal to fit() of all rows in
// one array up to the order of the sums (about 1e-15 relative per iteration). Errors name the
// chunk (and its row and column, counted within the whole data) where they occur.
FitReport fit(ChunkSource& source, const FitOptions& options);

}  // namespace emix
