//===- MixedPrecisionTest.cpp - the CPU's bf16 casts and GEMMs -----------------------===//
//
// The kernels of `llamac compile --precision bf16` on the CPU (runtime/cpu/CpuKernels.h):
//   - cast f32 -> bf16 rounds exactly as runtime/Tensor.h's floatToBF16, which the reference
//     interpreter uses (nearest even, NaN stays NaN, infinities and overflow to infinity);
//     bf16 -> f32 is exact, so every bf16 value survives the round trip;
//   - the bf16 GEMMs (BLIS and the own GEMM, each layout, with and without accumulation)
//     give the bf16 rounding of a sum of the widened operands: each element within half a
//     bf16 step (2^-8 relative: 8 significant bits) of the double-precision sum, plus f32
//     summation error;
//   - row copies of bf16 elements (concatenations of bf16 weights) move 2-byte elements.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Tensor.h"
#include "runtime/cpu/CpuKernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace llamac;

namespace {

uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float fromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(CpuMixedPrecision, NarrowingMatchesTheInterpreter) {
  std::vector<float> x = {0.0f,
                          -0.0f,
                          1.0f,
                          fromBits(0x3f808000), // a tie between two bf16 values: to even (down)
                          fromBits(0x3f818000), // a tie: to even (up)
                          fromBits(0x3f808001), // just above a tie: up
                          fromBits(0x3f807fff), // just below a tie: down
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::max(), // rounds up to infinity
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::quiet_NaN(),
                          fromBits(0x7f800001), // a signalling NaN whose payload is below bf16
                          -std::numeric_limits<float>::quiet_NaN()};
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 100000; ++i)
    x.push_back(fromBits(any(rng)));
  std::vector<uint16_t> y(x.size());
  cpu::cast(x.data(), int64_t(x.size()), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y[i], floatToBF16(x[i])) << "f32 bits 0x" << std::hex << bitsOf(x[i]);
    if (std::isnan(x[i])) {
      uint32_t wide = uint32_t(y[i]) << 16;
      EXPECT_TRUE(std::isnan(fromBits(wide))) << "NaN became 0x" << std::hex << y[i];
    }
  }
  EXPECT_EQ(y[3], 0x3f80);
  EXPECT_EQ(y[4], 0x3f82);
  EXPECT_EQ(y[5], 0x3f81);
  EXPECT_EQ(y[6], 0x3f80);
  EXPECT_EQ(y[9], 0x7f80);
}

TEST(CpuMixedPrecision, WideningIsExact) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i)
    all[i] = uint16_t(i);
  std::vector<float> wide(all.size());
  cpu::cast(all.data(), int64_t(all.size()), wide.data());
  std::vector<uint16_t> back(all.size());
  cpu::cast(wide.data(), int64_t(wide.size()), back.data());
  for (uint32_t i = 0; i < 65536; ++i) {
    ASSERT_EQ(bitsOf(wide[i]), i << 16);
    ASSERT_EQ(bitsOf(bf16ToFloat(all[i])), bitsOf(wide[i])) << i;
    if (!std::isnan(wide[i]))
      ASSERT_EQ(back[i], all[i]) << i;
  }
}

enum class Layout { NT, NN, TN };

std::vector<uint16_t> randomBf16(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (uint16_t &x : v)
    x = floatToBF16(dist(rng));
  return v;
}

/// The worst |C - reference| / (2^-8 |reference| + 1e-5 scale) of one call, where scale is
/// sum_p |a b| + |C0|: at most 1 when the result is the bf16 rounding of an f32 sum.
double checkGemm(Layout layout, bool own, int64_t M, int64_t N, int64_t K, bool accumulate,
                 uint32_t seed) {
  std::vector<uint16_t> A = randomBf16(M * K, seed), B = randomBf16(K * N, seed + 1),
                        C0 = randomBf16(M * N, seed + 2), C = C0;
  auto a = [&](int64_t i, int64_t p) {
    return double(bf16ToFloat(layout == Layout::TN ? A[p * M + i] : A[i * K + p]));
  };
  auto b = [&](int64_t p, int64_t j) {
    return double(bf16ToFloat(layout == Layout::NT ? B[j * K + p] : B[p * N + j]));
  };
  switch (layout) {
  case Layout::NT:
    own ? cpu::gemmNTOwn(M, N, K, A.data(), B.data(), C.data(), accumulate)
        : cpu::gemmNT(M, N, K, A.data(), B.data(), C.data(), accumulate);
    break;
  case Layout::NN:
    own ? cpu::gemmNNOwn(M, N, K, A.data(), B.data(), C.data(), accumulate)
        : cpu::gemmNN(M, N, K, A.data(), B.data(), C.data(), accumulate);
    break;
  case Layout::TN:
    own ? cpu::gemmTNOwn(M, N, K, A.data(), B.data(), C.data(), accumulate)
        : cpu::gemmTN(M, N, K, A.data(), B.data(), C.data(), accumulate);
    break;
  }
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double c0 = accumulate ? double(bf16ToFloat(C0[i * N + j])) : 0.0;
      double ref = c0, scale = std::fabs(c0);
      for (int64_t p = 0; p < K; ++p) {
        ref += a(i, p) * b(p, j);
        scale += std::fabs(a(i, p) * b(p, j));
      }
      double got = bf16ToFloat(C[i * N + j]);
      double bound = std::ldexp(std::fabs(ref), -8) + 1e-5 * scale + 1e-30;
      worst = std::max(worst, std::fabs(got - ref) / bound);
    }
  return worst;
}

TEST(CpuMixedPrecision, GemmsRoundAnF32Sum) {
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {7, 33, 64}, {64, 48, 96}, {13, 128, 257}};
  uint32_t seed = 1;
  for (Layout layout : {Layout::NT, Layout::NN, Layout::TN})
    for (bool own : {false, true})
      for (bool accumulate : {false, true})
        for (const auto &s : shapes) {
          double worst = checkGemm(layout, own, s[0], s[1], s[2], accumulate, seed += 3);
          EXPECT_LE(worst, 1.0) << "layout " << int(layout) << (own ? " own" : " BLIS")
                                << (accumulate ? " accumulating" : "") << ", M " << s[0]
                                << " N " << s[1] << " K " << s[2];
        }
}

TEST(CpuMixedPrecision, RowCopiesMoveBf16Elements) {
  // Concatenating bf16 weights that do not lie back to back copies rows of 2-byte elements.
  std::vector<uint16_t> in(3 * 5), out(3 * 8, 0xffff);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = uint16_t(0x3f80 + i);
  cpu::copyRows(in.data(), 3, 4, 5, 8, out.data() + 2);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 8; ++c)
      EXPECT_EQ(out[size_t(r * 8 + c)],
                c >= 2 && c < 6 ? in[size_t(r * 5 + c - 2)] : uint16_t(0xffff))
          << "row " << r << ", column " << c;
}

TEST(CpuMixedPrecision, GemmResultIsRoundedNotTruncated) {
  // 1 + 2^-8 + 2^-10 is nearer 1 + 2^-7 than 1 (bf16 has 7 fraction bits): a GEMM that
  // truncated its f32 sum instead of rounding it would give 1.
  std::vector<uint16_t> A = {floatToBF16(1.0f), floatToBF16(1.0f), floatToBF16(1.0f)};
  std::vector<uint16_t> B = {floatToBF16(1.0f), floatToBF16(std::ldexp(1.0f, -8)),
                             floatToBF16(std::ldexp(1.0f, -10))};
  std::vector<uint16_t> C(1);
  cpu::gemmNT(1, 1, 3, A.data(), B.data(), C.data());
  EXPECT_EQ(bf16ToFloat(C[0]), 1.0f + std::ldexp(1.0f, -7));
  cpu::gemmNTOwn(1, 1, 3, A.data(), B.data(), C.data());
  EXPECT_EQ(bf16ToFloat(C[0]), 1.0f + std::ldexp(1.0f, -7));
}

} // namespace
