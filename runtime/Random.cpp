//===- Random.cpp - counter-based random numbers ---------------------------------------===//
//
// splitmix64 is the one in Checksum.h (the data sampler's hash). These definitions fix the
// values of every seeded parameter and input: changing any constant here changes the
// initial weights of every model and breaks the interpreter tests that pin them.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Random.h"

#include <cmath>

namespace llamac {

double uniform(uint64_t key, uint64_t index) {
  uint64_t bits = splitmix64(key ^ splitmix64(index));
  // The top 53 bits, centred in their interval: never exactly 0 or 1, so log(u) is finite.
  return (double(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

uint64_t streamKey(uint64_t seed, const std::string &name) {
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : name)
    h = (h ^ c) * 1099511628211ull;
  return splitmix64(h ^ splitmix64(seed));
}

double gaussian(uint64_t key, uint64_t index) {
  double u1 = uniform(key, 2 * index), u2 = uniform(key, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

} // namespace llamac
