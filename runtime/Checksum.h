//===- Checksum.h - CRC32C, FNV-1a and splitmix64 --------------------------*- C++ -*-===//
//
// The checksums and the counter-based hash the runtime's file formats and data sampler share:
// CRC32C (Castagnoli), as TFRecord framing requires and as checkpoints use to detect
// corruption; FNV-1a 64, a cheap identity hash for small inputs (a tokenizer's model bytes);
// and splitmix64, a bijective 64-bit mixer for hashing counters without any state.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CHECKSUM_H
#define LLAMAC_RUNTIME_CHECKSUM_H

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace llamac {

/// CRC32C of `size` bytes, continuing from `crc` (the CRC of the bytes before them; 0 to
/// start). crc32c("123456789") == 0xE3069283. Uses the SSE4.2 instruction when the CPU has it.
uint32_t crc32cExtend(uint32_t crc, const void *data, size_t size);
inline uint32_t crc32c(std::string_view bytes) {
  return crc32cExtend(0, bytes.data(), bytes.size());
}

/// The portable table-driven implementation, exposed so that tests can compare it with the
/// hardware path.
uint32_t crc32cPortable(uint32_t crc, const void *data, size_t size);

/// TFRecord's masked CRC: a CRC stored next to the data it covers is masked so that the CRC
/// of a string containing CRCs stays well distributed.
inline uint32_t maskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t unmaskCrc32c(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
/// FNV-1a 64 of `size` bytes, continuing from `hash` (kFnv1a64Offset to start).
uint64_t fnv1a64Extend(uint64_t hash, const void *data, size_t size);
inline uint64_t fnv1a64(std::string_view bytes) {
  return fnv1a64Extend(kFnv1a64Offset, bytes.data(), bytes.size());
}

/// The splitmix64 finaliser of x + golden ratio: a bijection on 64-bit integers whose outputs
/// pass statistical tests even for consecutive inputs.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

} // namespace llamac

#endif
