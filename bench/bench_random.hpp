// Counter-based random numbers for the benchmarks' synthetic data: each row's values are a
// function of its index alone, so data can be made in parallel and are the same whatever the
// thread count.
#pragma once

#include <cmath>
#include <cstdint>

namespace emix::bench {

inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in (0, 1); advances the state.
inline double uniform(std::uint64_t& s) {
  s = splitmix(s);
  return (static_cast<double>(s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal (Box-Muller); advances the state twice.
inline double normal(std::uint64_t& s) {
  const double u = uniform(s), v = uniform(s);
  return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

}  // namespace emix::bench
