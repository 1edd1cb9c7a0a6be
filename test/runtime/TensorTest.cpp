//===- TensorTest.cpp - host tensors and the bf16/f16 conversions ------------------===//
//
// The conversions are checked exhaustively where that is cheap (every bf16 and f16 value,
// every tie between neighbouring values) and against an independent reference (the nearest
// representable value, found by search) on a sweep of float bit patterns.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

using namespace llamac;

namespace {

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

bool isHalfNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool isBF16NaN(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

/// Round to nearest, ties to even, by searching the sorted non-negative values of a 16-bit
/// format, whose bit patterns are ordered like their values. `values` ends with the value one
/// ulp above the largest finite one, standing for infinity (the next pattern, which is even,
/// so the tie between the largest finite value and it goes to infinity).
uint16_t referenceRound(float f, const std::vector<double> &values, uint16_t signBit) {
  uint16_t sign = std::signbit(f) ? signBit : 0;
  double a = std::fabs(static_cast<double>(f));
  if (a >= values.back())
    return static_cast<uint16_t>(sign | (values.size() - 1));
  auto it = std::lower_bound(values.begin(), values.end(), a);
  auto hi = static_cast<uint16_t>(it - values.begin());
  if (*it == a || hi == 0)
    return sign | hi;
  uint16_t lo = hi - 1;
  double below = a - values[lo], above = values[hi] - a; // exact: few significant bits
  if (below < above || (below == above && lo % 2 == 0))
    return sign | lo;
  return sign | hi;
}

/// Every finite non-negative f16, then 65536 in infinity's place.
std::vector<double> positiveHalves() {
  std::vector<double> v;
  for (uint32_t h = 0; h <= 0x7bff; ++h)
    v.push_back(halfToFloat(static_cast<uint16_t>(h)));
  v.push_back(65536.0);
  return v;
}

/// Every finite non-negative bf16, then 2^128 in infinity's place.
std::vector<double> positiveBF16s() {
  std::vector<double> v;
  for (uint32_t b = 0; b <= 0x7f7f; ++b)
    v.push_back(bf16ToFloat(static_cast<uint16_t>(b)));
  v.push_back(std::ldexp(1.0, 128));
  return v;
}

//===----------------------------------------------------------------------------------===//
// DTypes
//===----------------------------------------------------------------------------------===//

TEST(TensorTest, DTypeNamesSizesAndParsing) {
  struct Row {
    DType t;
    const char *name;
    int size;
    bool isFloat;
  };
  const Row rows[] = {{DType::F64, "F64", 8, true},  {DType::F32, "F32", 4, true},
                      {DType::BF16, "BF16", 2, true}, {DType::F16, "F16", 2, true},
                      {DType::I64, "I64", 8, false}, {DType::I32, "I32", 4, false}};
  for (const Row &r : rows) {
    EXPECT_STREQ(dtypeName(r.t), r.name);
    EXPECT_EQ(dtypeSize(r.t), r.size);
    EXPECT_EQ(isFloat(r.t), r.isFloat);
    ASSERT_TRUE(parseDType(r.name).has_value());
    EXPECT_EQ(*parseDType(r.name), r.t);
  }
  // The safetensors spellings only.
  for (const char *name : {"f32", "U8", "BOOL", "F8_E4M3", "", "F32 ", "float32"})
    EXPECT_FALSE(parseDType(name).has_value()) << name;
}

//===----------------------------------------------------------------------------------===//
// bf16
//===----------------------------------------------------------------------------------===//

TEST(TensorTest, BF16EveryValueRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    auto bits = static_cast<uint16_t>(b);
    float f = bf16ToFloat(bits);
    // Widening is exact: the bf16 bits are the float's top half.
    EXPECT_EQ(floatToBits(f), b << 16);
    if (isBF16NaN(bits))
      EXPECT_TRUE(isBF16NaN(floatToBF16(f))) << std::hex << b;
    else
      EXPECT_EQ(floatToBF16(f), bits) << std::hex << b;
  }
}

TEST(TensorTest, BF16RoundsToNearestEvenAtEveryTie) {
  // For each finite b (both signs), the float halfway to the next pattern, and its float
  // neighbours on either side.
  for (uint32_t b = 0; b <= 0x7f7f; ++b) {
    for (uint32_t sign : {0u, 0x8000u}) {
      uint32_t lo = b | sign, hi = (b + 1) | sign;
      uint32_t tie = (lo << 16) | 0x8000;
      uint16_t even = (lo & 1) ? static_cast<uint16_t>(hi) : static_cast<uint16_t>(lo);
      EXPECT_EQ(floatToBF16(bitsToFloat(tie)), even) << std::hex << tie;
      EXPECT_EQ(floatToBF16(bitsToFloat(tie - 1)), lo) << std::hex << tie;
      EXPECT_EQ(floatToBF16(bitsToFloat(tie + 1)), hi) << std::hex << tie;
    }
  }
  EXPECT_EQ(floatToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);     // tie: down to even 1.0
  EXPECT_EQ(floatToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82); // tie: up to even
}

TEST(TensorTest, BF16Subnormals) {
  EXPECT_EQ(floatToBF16(std::ldexp(1.0f, -133)), 0x0001); // the smallest bf16 subnormal
  EXPECT_EQ(bf16ToFloat(0x0001), std::ldexp(1.0f, -133));
  EXPECT_EQ(floatToBF16(std::ldexp(1.0f, -134)), 0x0000);     // tie with zero: even
  EXPECT_EQ(floatToBF16(3 * std::ldexp(1.0f, -134)), 0x0002); // tie: even
  EXPECT_EQ(floatToBF16(-std::ldexp(1.0f, -133)), 0x8001);
  EXPECT_EQ(floatToBF16(bitsToFloat(0x00000001)), 0x0000); // the smallest float subnormal
  EXPECT_EQ(floatToBF16(-0.0f), 0x8000);
  EXPECT_EQ(bf16ToFloat(0x007f), std::ldexp(127.0f, -133)); // the largest subnormal
  EXPECT_EQ(floatToBF16(std::ldexp(1.0f, -126)), 0x0080);    // the smallest normal
}

TEST(TensorTest, BF16OverflowAndInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToBF16(std::ldexp(255.0f, 120)), 0x7f7f); // the largest bf16
  EXPECT_EQ(floatToBF16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(floatToBF16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(floatToBF16(inf), 0x7f80);
  EXPECT_EQ(floatToBF16(-inf), 0xff80);
  EXPECT_EQ(bf16ToFloat(0x7f80), inf);
  EXPECT_EQ(bf16ToFloat(0xff80), -inf);
}

TEST(TensorTest, BF16NaNStaysNaN) {
  // Truncating 0x7f800001 would give infinity; the conversion must keep it a NaN.
  for (uint32_t bits : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu,
                        0x7f80ffffu}) {
    uint16_t b = floatToBF16(bitsToFloat(bits));
    EXPECT_TRUE(isBF16NaN(b)) << std::hex << bits << " -> " << b;
    EXPECT_EQ(b & 0x8000, (bits >> 16) & 0x8000) << "sign of " << std::hex << bits;
    EXPECT_TRUE(std::isnan(bf16ToFloat(b)));
  }
  EXPECT_TRUE(std::isnan(bf16ToFloat(0x7f81)));
}

TEST(TensorTest, BF16MatchesAReferenceOnAFloatSweep) {
  const std::vector<double> values = positiveBF16s();
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
    float f = bitsToFloat(static_cast<uint32_t>(bits));
    if (std::isnan(f))
      continue;
    ASSERT_EQ(floatToBF16(f), referenceRound(f, values, 0x8000))
        << std::hex << bits;
  }
}

//===----------------------------------------------------------------------------------===//
// f16
//===----------------------------------------------------------------------------------===//

TEST(TensorTest, F16EveryValueRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    auto bits = static_cast<uint16_t>(h);
    float f = halfToFloat(bits);
    if (isHalfNaN(bits)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(isHalfNaN(floatToHalf(f))) << std::hex << h;
    } else {
      EXPECT_EQ(floatToHalf(f), bits) << std::hex << h;
    }
  }
}

TEST(TensorTest, F16RoundsToNearestEvenAtEveryTie) {
  for (uint32_t h = 0; h <= 0x7bff; ++h) {
    for (float sign : {1.0f, -1.0f}) {
      uint16_t signBit = sign < 0 ? 0x8000 : 0;
      double lo = halfToFloat(static_cast<uint16_t>(h));
      // Past the largest finite value the next value up would be 65536.
      double hi = h == 0x7bff ? 65536.0 : halfToFloat(static_cast<uint16_t>(h + 1));
      auto tie = static_cast<float>(sign * (lo + hi) / 2); // exact: one more bit than f16
      ASSERT_EQ(static_cast<double>(tie), sign * (lo + hi) / 2);
      auto even = static_cast<uint16_t>(signBit | ((h & 1) ? h + 1 : h));
      EXPECT_EQ(floatToHalf(tie), even) << std::hex << h;
      EXPECT_EQ(floatToHalf(std::nextafter(tie, 0.0f)), signBit | h) << std::hex << h;
      EXPECT_EQ(floatToHalf(std::nextafter(tie, sign * 1e30f)), signBit | (h + 1))
          << std::hex << h;
    }
  }
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);     // tie: down to even 1.0
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02); // tie: up to even
}

TEST(TensorTest, F16LargestValueAndOverflowToInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(floatToHalf(65519.996f), 0x7bff); // just under the tie with 65536
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);   // the tie goes to even, which is infinity
  EXPECT_EQ(floatToHalf(-65520.0f), 0xfc00);
  EXPECT_EQ(floatToHalf(65536.0f), 0x7c00);
  EXPECT_EQ(floatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(floatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(floatToHalf(inf), 0x7c00);
  EXPECT_EQ(floatToHalf(-inf), 0xfc00);
  EXPECT_EQ(halfToFloat(0x7c00), inf);
  EXPECT_EQ(halfToFloat(0xfc00), -inf);
}

TEST(TensorTest, F16SmallestNormalAndSubnormals) {
  // 2^-14 = 6.103515625e-5 is the smallest normal, 2^-24 = 5.96e-8 the smallest subnormal.
  EXPECT_EQ(floatToHalf(6.103515625e-5f), 0x0400);
  EXPECT_EQ(halfToFloat(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(halfToFloat(0x03ff), std::ldexp(1023.0f, -24)); // the largest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(floatToHalf(6.1e-5f), 0x03ff); // 1023.4 * 2^-24: rounds down, stays subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(2047.0f, -25)), 0x0400); // tie into the normals: even
  EXPECT_EQ(floatToHalf(5.96e-8f), 0x0001);                  // 0.99992 * 2^-24
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000); // tie with zero: even
  EXPECT_EQ(floatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(3.0f, -25)), 0x0002); // tie between 1 and 2: even
  EXPECT_EQ(floatToHalf(std::ldexp(5.0f, -25)), 0x0002); // tie between 2 and 3: even
  EXPECT_EQ(floatToHalf(2.9e-8f), 0x0000);
  EXPECT_EQ(floatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(floatToHalf(-1e-10f), 0x8000); // underflow keeps the sign
  EXPECT_EQ(floatToHalf(bitsToFloat(0x00000001)), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(halfToFloat(0x8000)));
}

TEST(TensorTest, F16NaNStaysNaN) {
  for (uint32_t bits : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    uint16_t h = floatToHalf(bitsToFloat(bits));
    EXPECT_TRUE(isHalfNaN(h)) << std::hex << bits << " -> " << h;
    EXPECT_EQ(h & 0x8000, (bits >> 16) & 0x8000) << "sign of " << std::hex << bits;
  }
  EXPECT_TRUE(std::isnan(halfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0x7c01)));
  EXPECT_TRUE(std::isnan(halfToFloat(0xffff)));
}

TEST(TensorTest, F16ExactValuesRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.0f, 0.5f, 0.333251953125f, 1024.0f, 1025.0f, 2050.0f, 65504.0f,
                  -65504.0f, 6.103515625e-5f, std::ldexp(1.0f, -24), std::ldexp(1000.0f, -24)})
    EXPECT_EQ(halfToFloat(floatToHalf(f)), f) << f;
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(0.5f), 0x3800);
}

TEST(TensorTest, F16MatchesAReferenceOnAFloatSweep) {
  const std::vector<double> values = positiveHalves();
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
    float f = bitsToFloat(static_cast<uint32_t>(bits));
    if (std::isnan(f))
      continue;
    ASSERT_EQ(floatToHalf(f), referenceRound(f, values, 0x8000))
        << std::hex << bits;
  }
}

//===----------------------------------------------------------------------------------===//
// roundTo
//===----------------------------------------------------------------------------------===//

TEST(TensorTest, RoundToF64IsTheIdentity) {
  for (double v : {0.1, -1e300, 4.9e-324, 1.0 / 3.0})
    EXPECT_EQ(roundTo(DType::F64, v), v);
  EXPECT_TRUE(std::isnan(roundTo(DType::F64, std::nan(""))));
}

TEST(TensorTest, RoundToF32) {
  EXPECT_EQ(roundTo(DType::F32, 0.1), static_cast<double>(0.1f));
  EXPECT_NE(roundTo(DType::F32, 0.1), 0.1);
  EXPECT_EQ(roundTo(DType::F32, 1.0 + std::ldexp(1, -24)), 1.0); // tie: even
  EXPECT_EQ(roundTo(DType::F32, 1.0 + 3 * std::ldexp(1, -24)), 1.0 + std::ldexp(1, -22));
  EXPECT_EQ(roundTo(DType::F32, 1e39), std::numeric_limits<double>::infinity());
  EXPECT_EQ(roundTo(DType::F32, 1e-50), 0.0);
  EXPECT_TRUE(std::isnan(roundTo(DType::F32, std::nan(""))));
}

TEST(TensorTest, RoundToBF16AndF16GoThroughTheConversions) {
  for (double v : {0.1, -3.14159, 65519.0, 65520.0, 1e-6, 3e38, 1.0 + std::ldexp(1, -8)}) {
    EXPECT_EQ(roundTo(DType::BF16, v),
              static_cast<double>(bf16ToFloat(floatToBF16(static_cast<float>(v)))))
        << v;
    EXPECT_EQ(roundTo(DType::F16, v),
              static_cast<double>(halfToFloat(floatToHalf(static_cast<float>(v)))))
        << v;
  }
  EXPECT_EQ(roundTo(DType::BF16, 0.1), 0.10009765625);
  EXPECT_EQ(roundTo(DType::F16, 0.1), 0.0999755859375);
  EXPECT_EQ(roundTo(DType::F16, 70000.0), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(roundTo(DType::BF16, std::nan(""))));
  EXPECT_TRUE(std::isnan(roundTo(DType::F16, std::nan(""))));
}

TEST(TensorTest, RoundToI64TruncatesAndWraps) {
  EXPECT_EQ(roundTo(DType::I64, 2.9), 2.0);
  EXPECT_EQ(roundTo(DType::I64, -2.9), -2.0);
  EXPECT_EQ(roundTo(DType::I64, 9007199254740992.0), 9007199254740992.0);
  EXPECT_EQ(roundTo(DType::I64, -9223372036854775808.0), -9223372036854775808.0);
  // No negative zero for an integer.
  EXPECT_FALSE(std::signbit(roundTo(DType::I64, -0.5)));
  EXPECT_FALSE(std::signbit(roundTo(DType::I64, -0.0)));
  // Out of range wraps modulo 2^64 instead of being undefined behaviour.
  EXPECT_EQ(roundTo(DType::I64, 9223372036854775808.0), -9223372036854775808.0);
  EXPECT_EQ(roundTo(DType::I64, std::ldexp(3, 62)), -std::ldexp(1, 62));
  EXPECT_EQ(roundTo(DType::I64, -std::ldexp(1, 63) - 2048), std::ldexp(1, 63) - 2048);
  EXPECT_EQ(roundTo(DType::I64, std::ldexp(1, 64)), 0.0);
  EXPECT_EQ(roundTo(DType::I64, 1e20), 7766279631452241920.0);
  EXPECT_EQ(roundTo(DType::I64, std::nan("")), 0.0);
  EXPECT_EQ(roundTo(DType::I64, std::numeric_limits<double>::infinity()), 0.0);
}

TEST(TensorTest, RoundToI32TruncatesAndWraps) {
  EXPECT_EQ(roundTo(DType::I32, 2.9), 2.0);
  EXPECT_EQ(roundTo(DType::I32, -2.9), -2.0);
  EXPECT_EQ(roundTo(DType::I32, 2147483647.9), 2147483647.0);
  EXPECT_EQ(roundTo(DType::I32, -2147483648.9), -2147483648.0);
  EXPECT_FALSE(std::signbit(roundTo(DType::I32, -0.25)));
  // Wraps like 32-bit arithmetic.
  EXPECT_EQ(roundTo(DType::I32, 2147483648.0), -2147483648.0);
  EXPECT_EQ(roundTo(DType::I32, -2147483649.0), 2147483647.0);
  EXPECT_EQ(roundTo(DType::I32, 4294967296.0 + 5), 5.0);
  EXPECT_EQ(roundTo(DType::I32, 4294967295.0), -1.0);
  EXPECT_EQ(roundTo(DType::I32, 1e20), 1661992960.0);
  EXPECT_EQ(roundTo(DType::I32, std::nan("")), 0.0);
  EXPECT_EQ(roundTo(DType::I32, -std::numeric_limits<double>::infinity()), 0.0);
}

//===----------------------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------------------===//

TEST(TensorTest, ConstructionAndNumElements) {
  Tensor t(DType::BF16, {2, 3}, 1.5);
  EXPECT_EQ(t.dtype, DType::BF16);
  EXPECT_EQ(t.rank(), 2);
  EXPECT_EQ(t.numElements(), 6);
  EXPECT_EQ(t.data, std::vector<double>(6, 1.5));
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(t.dim(-2), 2);

  Tensor scalar(DType::F32, {});
  EXPECT_EQ(scalar.rank(), 0);
  EXPECT_EQ(scalar.numElements(), 1);
  EXPECT_EQ(scalar.data, std::vector<double>{0.0});

  EXPECT_EQ(Tensor(DType::I32, {0}).numElements(), 0);
  EXPECT_EQ(Tensor(DType::I32, {4, 0, 7}).numElements(), 0);
  EXPECT_TRUE(Tensor(DType::I32, {4, 0, 7}).data.empty());
  EXPECT_EQ(Tensor(DType::F64, {2, 3, 4, 5}).numElements(), 120);

  Tensor defaulted;
  EXPECT_EQ(defaulted.dtype, DType::F32);
  EXPECT_EQ(defaulted.numElements(), 1); // a scalar shape, though no data was allocated
  EXPECT_TRUE(defaulted.data.empty());
}

TEST(TensorTest, Strides) {
  EXPECT_EQ(Tensor(DType::F32, {2, 3, 4}).strides(), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(Tensor(DType::F32, {7}).strides(), (std::vector<int64_t>{1}));
  EXPECT_EQ(Tensor(DType::F32, {}).strides(), std::vector<int64_t>{});
  EXPECT_EQ(Tensor(DType::F32, {5, 1, 3}).strides(), (std::vector<int64_t>{3, 3, 1}));
  EXPECT_EQ(Tensor(DType::F32, {2, 0, 3}).strides(), (std::vector<int64_t>{0, 3, 1}));
  // Element (i, j, k) of a [2x3x4] tensor is at i*12 + j*4 + k.
  Tensor t(DType::F64, {2, 3, 4});
  for (int64_t i = 0; i < t.numElements(); ++i)
    t[i] = static_cast<double>(i);
  std::vector<int64_t> s = t.strides();
  EXPECT_EQ(t[1 * s[0] + 2 * s[1] + 3 * s[2]], 23.0);
}

TEST(TensorTest, RoundRoundsEveryElementToTheDType) {
  Tensor bf16(DType::BF16, {3});
  bf16.data = {0.1, 1.0 + std::ldexp(1, -8), 3.4e38};
  bf16.round();
  EXPECT_EQ(bf16.data, (std::vector<double>{0.10009765625, 1.0,
                                            std::numeric_limits<double>::infinity()}));
  Tensor i32(DType::I32, {2});
  i32.data = {-7.5, 2147483648.0};
  i32.round();
  EXPECT_EQ(i32.data, (std::vector<double>{-7.0, -2147483648.0}));
  Tensor f64(DType::F64, {1});
  f64.data = {0.1};
  f64.round();
  EXPECT_EQ(f64.data, std::vector<double>{0.1});
}

TEST(TensorTest, DescribeAndShapeString) {
  EXPECT_EQ(Tensor(DType::F32, {2, 3}).describe(), "f32[2x3]");
  EXPECT_EQ(Tensor(DType::BF16, {}).describe(), "bf16[scalar]");
  EXPECT_EQ(Tensor(DType::I64, {0}).describe(), "i64[0]");
  EXPECT_EQ(Tensor(DType::F16, {1, 1, 1}).describe(), "f16[1x1x1]");
  EXPECT_EQ(Tensor(DType::F64, {5}).describe(), "f64[5]");
  Tensor big; // describe() needs only the shape, so no data is allocated
  big.dtype = DType::I32;
  big.shape = {4096, 32000};
  EXPECT_EQ(big.describe(), "i32[4096x32000]");
  EXPECT_EQ(shapeString({}), "scalar");
  EXPECT_EQ(shapeString({7}), "7");
  EXPECT_EQ(shapeString({2, 0, 3}), "2x0x3");
}

} // namespace
