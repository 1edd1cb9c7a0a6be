//===- Random.h - counter-based random numbers shared by runtime and interpreter -*- C++ -*-===//
//
// Every random value llamac produces (parameter initialisation, seeded test inputs) is a
// pure function of (seed, stream name, element index): no generator state, so a value does
// not depend on the order in which tensors are initialised, on the IR stage that declares
// them, or on whether the reference interpreter or a generated executable computes it.
// The interpreter and the drivers both call these functions, which keeps a compiled
// program's initial parameters bit-identical to the interpreter's (after rounding to f32).
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_RANDOM_H
#define LLAMAC_RUNTIME_RANDOM_H

#include "runtime/Checksum.h" // splitmix64

#include <cstdint>
#include <string>

namespace llamac {

/// Uniform double in (0, 1), element `index` of the stream `key`.
double uniform(uint64_t key, uint64_t index);
/// Standard normal sample `index` of the stream `key` (Box-Muller over two uniforms): the
/// same on every machine.
double gaussian(uint64_t key, uint64_t index);
/// A 64-bit key for (seed, name): FNV-1a of the name mixed with the seed.
uint64_t streamKey(uint64_t seed, const std::string &name);

} // namespace llamac

#endif
