// emix::sample (emix/fit.hpp) with the caller's blocks: for `emix generate`, which writes a
// sample larger than memory block by block and must draw the same rows however it splits them.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "emix/fit.hpp"

namespace emix {

// The seed words of block b's generators: an mt19937_64 seeded with them draws its labels and
// values; a binomial mixture's component c draws its counts from one seeded with them and c + 1.
using BlockSeed = std::function<std::array<std::uint32_t, 4>(std::int64_t block)>;

// n rows in blocks of `block_rows` (the last may be shorter), block b from block_seed(b), drawn
// in parallel: the first m rows of n are those of m, whatever the threads.
Sample sample_in_blocks(const Model& model, std::int64_t n, int n_threads, std::int64_t block_rows,
                        const BlockSeed& block_seed);

}  // namespace emix
