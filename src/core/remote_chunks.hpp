// Passes over chunks that live elsewhere: the blocks of a Dask array on a cluster's workers,
// say. A ChunkSource that also derives from RemoteChunks computes each pass where its chunks
// are, so that a fit or selection over it moves no chunk to this process: the pass's models go
// to the chunks as bytes (encode_pass), each chunk's side computes its statistics (chunk_pass),
// and the fit adds them in chunk order, bitwise what reading the chunks here with the same
// engine would give. When the source knows every chunk's rows (ChunkSource::known_rows), only
// chunk 0 is read here (ChunkSource::chunk), for the data's shape and type; otherwise the fit
// first reads every chunk to count them. The rows the initialisation samples are fetched
// (gather).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/prepared_model.hpp"
#include "emix/data.hpp"
#include "emix/options.hpp"

namespace emix {

class RemoteChunks {
 public:
  virtual ~RemoteChunks() = default;
  // Whether passes run where the chunks are; when false the fit reads every chunk here.
  virtual bool computes_remotely() = 0;
  // Where the passes run, for the fit report's engine ("12 Dask blocks on 2 workers").
  virtual std::string engine_name() = 0;
  // What the source calls a chunk in its messages ("block"), as its side names them.
  virtual std::string chunk_noun() = 0;
  // For each chunk, in order: chunk_pass(pass, chunk, its weights) on the chunk's side (empty
  // for a chunk without rows). Errors about a chunk's values are raised, naming it. A source may
  // add chunks' answers together where they are, to bound this process's memory when they are
  // large: the sum in the first answer with rows, the chunks it holds after it empty (then the
  // fit's sums are the source's order of additions, not bitwise chunk order's).
  virtual std::vector<std::vector<double>> chunk_statistics(
      const std::vector<std::uint8_t>& pass) = 0;
  // Rows idx[0..count) (rows of the whole data, in any order) as doubles, count x cols
  // row-major, and their sample weights (ones without weights); either output may be null.
  virtual void gather(const std::int64_t* idx, std::int64_t count, std::int64_t cols, double* rows,
                      double* weights) = 0;
  // Each chunk's sum of its sample weights, added in row order from 0, as a chunk read here is
  // summed (called only for weighted data, whose weights the chunks' side checks).
  virtual std::vector<double> weight_sums() = 0;
};

// The models of one pass as bytes for chunk_pass (the same build of emix on both sides; not a
// storage format).
std::vector<std::uint8_t> encode_pass(const std::vector<const PreparedModel*>& models);

// On a chunk's side: the chunk's values and weights checked as a fit checks them (DataError
// naming the row within the chunk), then its statistics under every model of `pass`,
// concatenated in the pass's order, each bitwise what a fit reading the chunk computes; the
// engine's name into engine_name when given.
std::vector<double> chunk_pass(const std::vector<std::uint8_t>& pass, const DataView& chunk,
                               const double* weights, const EngineOptions& options,
                               std::string* engine_name = nullptr);

}  // namespace emix
