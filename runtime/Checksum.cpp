//===- Checksum.cpp - CRC32C and FNV-1a ----------------------------------------------===//
//
// CRC32C in software uses slicing-by-8 (eight 256-entry tables built at compile time, eight
// bytes per step); on x86-64 CPUs with SSE4.2 the crc32 instruction does the same work about
// ten times faster, which matters when a checkpoint of tens of gigabytes is verified.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checksum.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define LLAMAC_HAVE_SSE42_PATH 1
#endif

namespace llamac {

namespace {

// The reflected Castagnoli polynomial.
constexpr uint32_t kPolynomial = 0x82f63b78u;

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables makeTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ ((c & 1) ? kPolynomial : 0);
    t[0][i] = c;
  }
  // t[k][i] is the CRC of byte i followed by k zero bytes.
  for (uint32_t i = 0; i < 256; ++i)
    for (int k = 1; k < 8; ++k)
      t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  return t;
}

constexpr CrcTables kTables = makeTables();

#ifdef LLAMAC_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) uint32_t crc32cHardware(uint32_t crc, const unsigned char *p,
                                                          size_t size) {
  uint64_t c = ~crc;
  for (; size >= 8; size -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; size > 0; --size, ++p)
    c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

bool cpuHasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

} // namespace

uint32_t crc32cPortable(uint32_t crc, const void *data, size_t size) {
  const auto *p = static_cast<const unsigned char *>(data);
  uint32_t c = ~crc;
  // The table walk reads bytes in memory order, so it does not depend on the host's
  // endianness.
  for (; size >= 8; size -= 8, p += 8) {
    uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                       uint32_t(p[3]) << 24);
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][p[4]] ^ kTables[2][p[5]] ^ kTables[1][p[6]] ^
        kTables[0][p[7]];
  }
  for (; size > 0; --size, ++p)
    c = (c >> 8) ^ kTables[0][(c ^ *p) & 0xff];
  return ~c;
}

uint32_t crc32cExtend(uint32_t crc, const void *data, size_t size) {
#ifdef LLAMAC_HAVE_SSE42_PATH
  if (cpuHasSse42())
    return crc32cHardware(crc, static_cast<const unsigned char *>(data), size);
#endif
  return crc32cPortable(crc, data, size);
}

uint64_t fnv1a64Extend(uint64_t hash, const void *data, size_t size) {
  const auto *p = static_cast<const unsigned char *>(data);
  for (size_t i = 0; i < size; ++i)
    hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

} // namespace llamac
