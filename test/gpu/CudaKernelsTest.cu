//===- CudaKernelsTest.cu - the CUDA kernels against the CPU kernels ---------------===//
//
// Every function of runtime/cuda/CudaKernels.h on random inputs (fixed seeds) of small,
// odd shapes (rows 37, dims 70 and 333, vocabularies 11 and 1003: nothing a multiple of a
// block), compared with its counterpart in runtime/cpu/CpuKernels.h. Outputs are compared
// as max |got - want| <= tolerance * max |want| (infinities must match exactly):
//   - kExact (1e-6) where both sides do the same f32 operations (copies, +-*/, the
//     embedding gradient's position-order sums, AdamW in double);
//   - kPointwise (1e-5) where a libm function differs from the CPU's (exp, tanh, ...);
//   - kReduction (1e-5) where the summation order differs (norms, losses, the grad norm).
// The casts between f32 and bf16 must match cpu::cast bit for bit: every bf16 pattern
// widened, and narrowed f32 patterns chosen for the rounding (ties both ways, carries into
// the exponent, overflow to inf, subnormals, NaNs of every kind) and random ones, through
// the vector kernels and, from unaligned pointers, the element-by-element ones.
// Also covered: broadcasting of binary (bSize == n, a trailing block, 1), grouped-query
// RoPE with a device position offset, ignored and bad targets, bad tokens, many gradients
// of many sizes, two AdamW steps, the learning rate in and after warm-up, bit-for-bit
// repetition of the reductions, and a CUDA graph capturing a sequence of launches.
//
// Without a CUDA device (or driver) every test is skipped.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cuda/CudaKernels.h"
#include "test/gpu/GpuTestSupport.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace llamac;
using namespace llamac::gputest;

namespace {

constexpr double kExact = 1e-6;
constexpr double kPointwise = 1e-5;
constexpr double kReduction = 1e-5;
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<int32_t> randomIds(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> v(n);
  for (int32_t &x : v)
    x = dist(rng);
  return v;
}

class CudaKernelsTest : public ::testing::Test {
protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError(); // clear the error of the failed query
      GTEST_SKIP() << "no CUDA device";
    }
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  }
  void TearDown() override {
    if (stream)
      cudaStreamDestroy(stream);
  }

  /// The launches' errors, then the stream's.
  ::testing::AssertionResult finish() {
    cudaError_t launch = cudaGetLastError();
    if (launch != cudaSuccess)
      return ::testing::AssertionFailure() << "launch: " << cudaGetErrorString(launch);
    cudaError_t run = cudaStreamSynchronize(stream);
    if (run != cudaSuccess)
      return ::testing::AssertionFailure() << "run: " << cudaGetErrorString(run);
    return ::testing::AssertionSuccess();
  }

  cudaStream_t stream = nullptr;
};

//===----------------------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, FillCopyCopyRows) {
  int64_t n = 1003;
  DeviceArray<float> out(n);
  cuda::fill(out.ptr, n, 2.5f, stream);
  ASSERT_TRUE(finish());
  std::vector<float> want(n);
  cpu::fill(want.data(), n, 2.5f);
  EXPECT_TRUE(close(out.download(), want, 0.0));

  std::vector<float> in = randomVec(n, 1);
  DeviceArray<float> src(in);
  cuda::copy(src.ptr, n, out.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(out.download(), in));

  // 37 rows of 70 out of rows of 101 into rows of 83; the gaps keep their sentinel.
  int64_t rows = 37, cols = 70, inStride = 101, outStride = 83;
  std::vector<float> rowsIn = randomVec(rows * inStride, 2);
  std::vector<float> wantRows(rows * outStride, -7.0f);
  cpu::copyRows(rowsIn.data(), rows, cols, inStride, outStride, wantRows.data());
  DeviceArray<float> dIn(rowsIn), dOut(std::vector<float>(rows * outStride, -7.0f));
  cuda::copyRows(dIn.ptr, rows, cols, inStride, outStride, dOut.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(dOut.download(), wantRows));
}

//===----------------------------------------------------------------------------------===//
// Mixed precision
//===----------------------------------------------------------------------------------===//

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// The first index where got and want differ, as bits, or success.
template <typename T>
::testing::AssertionResult sameBits(const std::vector<T> &got, const std::vector<T> &want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " instead of " << want.size();
  for (size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      uint32_t g = 0, w = 0;
      std::memcpy(&g, &got[i], sizeof(T));
      std::memcpy(&w, &want[i], sizeof(T));
      return ::testing::AssertionFailure() << "element " << i << ": got bits 0x" << std::hex
                                           << g << ", want 0x" << w;
    }
  return ::testing::AssertionSuccess();
}

TEST_F(CudaKernelsTest, CastToBf16MatchesTheCpuBitForBit) {
  // f32 bits and their bf16, worked out by hand from round-to-nearest-even.
  const std::pair<uint32_t, uint16_t> cases[] = {
      {0x00000000u, 0x0000}, {0x80000000u, 0x8000},  // +-0
      {0x3f800000u, 0x3f80}, {0xbf800000u, 0xbf80},  // +-1, exact
      {0x3f807fffu, 0x3f80}, {0x3f808001u, 0x3f81},  // below, above half an ulp
      {0x3f808000u, 0x3f80}, {0x3f818000u, 0x3f82},  // ties: down to even, up to even
      {0xbf818000u, 0xbf82}, {0x3fffffffu, 0x4000},  // negative tie; carry to 2.0
      {0x7f7f7fffu, 0x7f7f}, {0x7f7f8000u, 0x7f80},  // largest finite; tie to inf
      {0x7f7fffffu, 0x7f80}, {0xff7fffffu, 0xff80},  // FLT_MAX rounds to +-inf
      {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80},  // +-inf
      {0x7fc00000u, 0x7fc0}, {0xffc00000u, 0xffc0},  // quiet NaNs
      {0x7f800001u, 0x7fc0}, {0x7fbfffffu, 0x7fff},  // signalling NaNs made quiet
      {0x7fffffffu, 0x7fff}, {0xff812345u, 0xffc1},  // not carried into inf
      {0x00000001u, 0x0000}, {0x00008000u, 0x0000},  // subnormals: down, tie to even
      {0x00018000u, 0x0002}, {0x007fffffu, 0x0080},  // tie up; carry to the smallest normal
      {0x80008001u, 0x8001},  // negative subnormal rounding up
  };
  std::vector<uint32_t> bits;
  std::vector<uint16_t> expected;
  for (auto [in, out] : cases) {
    bits.push_back(in);
    expected.push_back(out);
  }
  // Then random bit patterns (NaNs and subnormals among them) and random values, to an odd
  // count so that the vector kernel has a tail.
  std::mt19937 rng(41);
  for (int i = 0; i < 4000; ++i)
    bits.push_back(rng());
  std::vector<float> values;
  for (uint32_t b : bits)
    values.push_back(fromBits(b));
  for (float x : randomVec(1003, 42, 100.0f))
    values.push_back(x);
  int64_t n = int64_t(values.size());

  std::vector<uint16_t> want(n);
  cpu::cast(values.data(), n, want.data());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(want[i], expected[i]) << "cpu::cast of 0x" << std::hex << bits[i];

  DeviceArray<float> in(values);
  DeviceArray<uint16_t> out(n);
  cuda::cast(in.ptr, n, out.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(sameBits(out.download(), want)) << "aligned";

  // One element in: neither pointer aligned for the vector kernel.
  std::vector<float> shifted = {0.0f};
  shifted.insert(shifted.end(), values.begin(), values.end());
  DeviceArray<float> in1(shifted);
  DeviceArray<uint16_t> out1(std::vector<uint16_t>(n + 1, 0x1234));
  cuda::cast(in1.ptr + 1, n, out1.ptr + 1, stream);
  ASSERT_TRUE(finish());
  std::vector<uint16_t> got1 = out1.download();
  EXPECT_EQ(got1[0], 0x1234) << "written before the output";
  EXPECT_TRUE(sameBits(std::vector<uint16_t>(got1.begin() + 1, got1.end()), want))
      << "unaligned";
}

TEST_F(CudaKernelsTest, CastFromBf16MatchesTheCpuBitForBit) {
  // Every bf16 pattern, and a short odd tail.
  std::vector<uint16_t> values;
  for (uint32_t b = 0; b <= 0xffffu; ++b)
    values.push_back(uint16_t(b));
  for (uint16_t b : {0x3f80, 0x7fc1, 0x0001})
    values.push_back(b);
  int64_t n = int64_t(values.size());
  std::vector<float> want(n);
  cpu::cast(values.data(), n, want.data());

  DeviceArray<uint16_t> in(values);
  DeviceArray<float> out(n);
  cuda::cast(in.ptr, n, out.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(sameBits(out.download(), want)) << "aligned";

  std::vector<uint16_t> shifted = {0};
  shifted.insert(shifted.end(), values.begin(), values.end());
  DeviceArray<uint16_t> in1(shifted);
  DeviceArray<float> out1(std::vector<float>(n + 1, -7.0f));
  cuda::cast(in1.ptr + 1, n, out1.ptr + 1, stream);
  ASSERT_TRUE(finish());
  std::vector<float> got1 = out1.download();
  EXPECT_EQ(got1[0], -7.0f) << "written before the output";
  EXPECT_TRUE(sameBits(std::vector<float>(got1.begin() + 1, got1.end()), want)) << "unaligned";

  // Nothing to do: no launch, no error.
  cuda::cast(in.ptr, 0, out.ptr, stream);
  cuda::cast(out.ptr, 0, in.ptr, stream);
  EXPECT_TRUE(finish());
}

//===----------------------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, BinaryAllOpsAndBroadcasts) {
  int64_t rows = 37, cols = 70, n = rows * cols;
  std::vector<float> a = randomVec(n, 3);
  DeviceArray<float> da(a), out(n);
  for (int64_t bSize : {n, cols, int64_t(1)}) {
    std::vector<float> b = randomVec(bSize, 4 + uint32_t(bSize));
    DeviceArray<float> db(b);
    for (int32_t op = 0; op <= int32_t(cpu::Binary::Min); ++op) {
      std::vector<float> want(n);
      cpu::binary(cpu::Binary(op), a.data(), b.data(), n, bSize, want.data());
      cuda::binary(op, da.ptr, db.ptr, n, bSize, out.ptr, stream);
      ASSERT_TRUE(finish());
      EXPECT_TRUE(close(out.download(), want, kExact)) << "op " << op << " bSize " << bSize;
    }
  }
}

TEST_F(CudaKernelsTest, UnaryAllOps) {
  int64_t n = 2590;
  std::vector<float> any = randomVec(n, 5, 3.0f), positive = any;
  for (float &x : positive)
    x = std::abs(x) + 0.05f;
  DeviceArray<float> dAny(any), dPositive(positive), out(n);
  for (int32_t op = 0; op <= int32_t(cpu::Unary::Abs); ++op) {
    cpu::Unary u = cpu::Unary(op);
    bool needsPositive = u == cpu::Unary::Log || u == cpu::Unary::Sqrt || u == cpu::Unary::Rsqrt;
    const std::vector<float> &in = needsPositive ? positive : any;
    std::vector<float> want(n);
    cpu::unary(u, in.data(), n, want.data());
    cuda::unary(op, needsPositive ? dPositive.ptr : dAny.ptr, n, out.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(out.download(), want, kPointwise)) << "op " << op;
  }
}

TEST_F(CudaKernelsTest, Scale) {
  int64_t n = 1003;
  std::vector<float> in = randomVec(n, 6), want(n);
  cpu::scale(in.data(), n, -0.37f, want.data());
  DeviceArray<float> din(in), out(n);
  cuda::scale(din.ptr, n, -0.37f, out.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(close(out.download(), want, kExact));
}

//===----------------------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, Embedding) {
  int64_t n = 37, dim = 70, vocab = 1003;
  std::vector<float> table = randomVec(vocab * dim, 7);
  std::vector<int32_t> tokens = randomIds(n, int32_t(vocab), 8);
  tokens[0] = 0;
  tokens[1] = int32_t(vocab - 1);
  DeviceArray<float> dTable(table), out(n * dim);
  DeviceArray<int32_t> dTokens(tokens);
  DeviceArray<int64_t> bad(std::vector<int64_t>{-1});

  std::vector<float> want(n * dim);
  int64_t cpuBad = -1;
  ASSERT_TRUE(cpu::embedding(table.data(), tokens.data(), n, dim, vocab, want.data(), &cpuBad));
  cuda::embedding(dTable.ptr, dTokens.ptr, n, dim, vocab, out.ptr, bad.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(out.download(), want));
  EXPECT_EQ(bad.value(), -1);

  // Two bad tokens: the first position is reported, the bad rows are zero, the good rows
  // (after the bad ones too) are copied.
  tokens[11] = int32_t(vocab);
  tokens[25] = -3;
  dTokens.upload(tokens);
  std::vector<float> partial(n * dim, 0.0f);
  EXPECT_FALSE(cpu::embedding(table.data(), tokens.data(), n, dim, vocab, partial.data(),
                              &cpuBad));
  EXPECT_EQ(cpuBad, 11);
  cuda::embedding(dTable.ptr, dTokens.ptr, n, dim, vocab, out.ptr, bad.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_EQ(bad.value(), 11);
  std::vector<float> got = out.download();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c) {
      float w = i == 11 || i == 25 ? 0.0f : table[tokens[i] * dim + c];
      ASSERT_EQ(got[i * dim + c], w) << "position " << i << " column " << c;
      if (i < 11) // the rows the CPU wrote before stopping
        ASSERT_EQ(got[i * dim + c], partial[i * dim + c]);
    }
}

TEST_F(CudaKernelsTest, EmbeddingGrad) {
  // A small vocabulary (every token repeated, out-of-range ones skipped) and a larger one
  // with more than one tile of positions and more than one block of columns.
  struct Shape {
    int64_t n, dim, vocab;
  };
  for (Shape s : {Shape{37, 70, 11}, Shape{600, 333, 1003}}) {
    std::vector<int32_t> tokens = randomIds(s.n, int32_t(s.vocab), 9);
    tokens[5] = int32_t(s.vocab);
    tokens[9] = -3;
    std::vector<float> grad = randomVec(s.n * s.dim, 10);
    std::vector<float> want(s.vocab * s.dim);
    cpu::embeddingGrad(tokens.data(), grad.data(), s.n, s.dim, s.vocab, want.data());
    DeviceArray<int32_t> dTokens(tokens);
    DeviceArray<float> dGrad(grad), out(std::vector<float>(s.vocab * s.dim, 123.0f));
    cuda::embeddingGrad(dTokens.ptr, dGrad.ptr, s.n, s.dim, s.vocab, out.ptr, stream);
    ASSERT_TRUE(finish());
    // The same additions in the same (position) order.
    EXPECT_TRUE(close(out.download(), want, kExact)) << "vocab " << s.vocab;
  }
}

//===----------------------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, RmsNorm) {
  struct Shape {
    int64_t rows, dim;
  };
  for (Shape s : {Shape{37, 70}, Shape{5, 4099}}) {
    std::vector<float> x = randomVec(s.rows * s.dim, 11), w = randomVec(s.dim, 12);
    std::vector<float> want(s.rows * s.dim);
    cpu::rmsNorm(x.data(), w.data(), s.rows, s.dim, 1e-5, want.data());
    DeviceArray<float> dx(x), dw(w), y(s.rows * s.dim);
    cuda::rmsNorm(dx.ptr, dw.ptr, s.rows, s.dim, 1e-5, y.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(y.download(), want, kReduction)) << "dim " << s.dim;
  }
}

TEST_F(CudaKernelsTest, RmsNormGrad) {
  // 300 rows: several chunks of the weight gradient's partial sums; 20000: more chunks than
  // the cap, so chunks of more rows and an empty last one.
  struct Shape {
    int64_t rows, dim;
  };
  for (Shape s : {Shape{37, 70}, Shape{300, 333}, Shape{20000, 70}}) {
    std::vector<float> x = randomVec(s.rows * s.dim, 13), w = randomVec(s.dim, 14),
                       dy = randomVec(s.rows * s.dim, 15);
    std::vector<float> wantDx(s.rows * s.dim), wantDw(s.dim);
    cpu::rmsNormGrad(x.data(), w.data(), dy.data(), s.rows, s.dim, 1e-5, wantDx.data(),
                     wantDw.data());
    DeviceArray<float> dX(x), dW(w), dDy(dy), dx(s.rows * s.dim), dw(s.dim);
    cuda::rmsNormGrad(dX.ptr, dW.ptr, dDy.ptr, s.rows, s.dim, 1e-5, dx.ptr, dw.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(dx.download(), wantDx, kReduction)) << "rows " << s.rows;
    EXPECT_TRUE(close(dw.download(), wantDw, kReduction)) << "rows " << s.rows;
  }
}

TEST_F(CudaKernelsTest, AddRmsNorm) {
  int64_t rows = 37, dim = 70;
  std::vector<float> x = randomVec(rows * dim, 16), r = randomVec(rows * dim, 17),
                     w = randomVec(dim, 18);
  std::vector<float> wantSum(rows * dim), wantY(rows * dim);
  cpu::addRmsNorm(x.data(), r.data(), w.data(), rows, dim, 1e-6, wantSum.data(), wantY.data());
  DeviceArray<float> dX(x), dR(r), dW(w), sum(rows * dim), y(rows * dim);
  cuda::addRmsNorm(dX.ptr, dR.ptr, dW.ptr, rows, dim, 1e-6, sum.ptr, y.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(sum.download(), wantSum));
  EXPECT_TRUE(close(y.download(), wantY, kReduction));
}

TEST_F(CudaKernelsTest, AddRmsNormGrad) {
  int64_t rows = 300, dim = 333;
  std::vector<float> sum = randomVec(rows * dim, 19), w = randomVec(dim, 20),
                     dn = randomVec(rows * dim, 21), ds = randomVec(rows * dim, 22);
  DeviceArray<float> dSum(sum), dW(w), dDn(dn), dDs(ds), dx(rows * dim), dw(dim);
  for (bool withDsum : {true, false}) {
    std::vector<float> wantDx(rows * dim), wantDw(dim);
    cpu::addRmsNormGrad(sum.data(), w.data(), dn.data(), withDsum ? ds.data() : nullptr, rows,
                        dim, 1e-5, wantDx.data(), wantDw.data());
    cuda::addRmsNormGrad(dSum.ptr, dW.ptr, dDn.ptr, withDsum ? dDs.ptr : nullptr, rows, dim,
                         1e-5, dx.ptr, dw.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(dx.download(), wantDx, kReduction)) << "dsum " << withDsum;
    EXPECT_TRUE(close(dw.download(), wantDw, kReduction)) << "dsum " << withDsum;
  }
}

//===----------------------------------------------------------------------------------===//
// Fused feed-forward and attention input
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, Swiglu) {
  int64_t rows = 37, F = 70;
  std::vector<float> x = randomVec(rows * 2 * F, 23, 2.0f), dy = randomVec(rows * F, 24);
  std::vector<float> wantY(rows * F), wantDx(rows * 2 * F);
  cpu::swiglu(x.data(), rows, F, wantY.data());
  cpu::swigluGrad(x.data(), dy.data(), rows, F, wantDx.data());
  DeviceArray<float> dX(x), dDy(dy), y(rows * F), dx(rows * 2 * F);
  cuda::swiglu(dX.ptr, rows, F, y.ptr, stream);
  cuda::swigluGrad(dX.ptr, dDy.ptr, rows, F, dx.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(close(y.download(), wantY, kPointwise));
  EXPECT_TRUE(close(dx.download(), wantDx, kPointwise));
}

TEST_F(CudaKernelsTest, QkvRope) {
  // Grouped-query heads (H != Hkv) at a large device offset, and the offset as null.
  struct Shape {
    int64_t B, T, H, Hkv, D;
    int64_t offset;
    bool nullOffset;
  };
  for (Shape s : {Shape{2, 37, 6, 2, 70, 4093, false}, Shape{1, 5, 4, 4, 16, 0, true}}) {
    int64_t tokens = s.B * s.T, width = (s.H + 2 * s.Hkv) * s.D;
    int64_t qn = tokens * s.H * s.D, kn = tokens * s.Hkv * s.D;
    double theta = 10000.0;
    std::vector<float> x = randomVec(tokens * width, 25);
    std::vector<float> wantQ(qn), wantK(kn), wantV(kn);
    cpu::qkvRope(x.data(), s.B, s.T, s.H, s.Hkv, s.D, theta, s.offset, wantQ.data(),
                 wantK.data(), wantV.data());
    DeviceArray<float> dX(x), q(qn), k(kn), v(kn);
    DeviceArray<int64_t> offset(std::vector<int64_t>{s.offset});
    const int64_t *offsetAt = s.nullOffset ? nullptr : offset.ptr;
    cuda::qkvRope(dX.ptr, s.B, s.T, s.H, s.Hkv, s.D, theta, offsetAt, q.ptr, k.ptr, v.ptr,
                  stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(q.download(), wantQ, kPointwise)) << "D " << s.D;
    EXPECT_TRUE(close(k.download(), wantK, kPointwise)) << "D " << s.D;
    EXPECT_TRUE(bitEqual(v.download(), wantV)) << "D " << s.D;

    std::vector<float> dq = randomVec(qn, 26), dk = randomVec(kn, 27), dv = randomVec(kn, 28);
    std::vector<float> wantDx(tokens * width);
    cpu::qkvRopeGrad(dq.data(), dk.data(), dv.data(), s.B, s.T, s.H, s.Hkv, s.D, theta,
                     s.offset, wantDx.data());
    DeviceArray<float> dDq(dq), dDk(dk), dDv(dv), dx(tokens * width);
    cuda::qkvRopeGrad(dDq.ptr, dDk.ptr, dDv.ptr, s.B, s.T, s.H, s.Hkv, s.D, theta, offsetAt,
                      dx.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(dx.download(), wantDx, kPointwise)) << "D " << s.D;
  }
}

//===----------------------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, FusedCrossEntropy) {
  int64_t rows = 37, vocab = 1003, ignore = -100;
  std::vector<float> logits = randomVec(rows * vocab, 29, 2.0f);
  std::vector<int32_t> targets = randomIds(rows, int32_t(vocab), 30);
  targets[3] = targets[20] = int32_t(ignore);
  // Masked logits: part of row 5, and all of row 7 (whose lse is -inf; ignored).
  for (int64_t i = 0; i < 10; ++i)
    logits[5 * vocab + i] = -kInf;
  targets[5] = 20;
  for (int64_t i = 0; i < vocab; ++i)
    logits[7 * vocab + i] = -kInf;
  targets[7] = int32_t(ignore);

  float wantLoss = 0;
  std::vector<float> wantLse(rows);
  int64_t cpuBad = -1;
  ASSERT_TRUE(cpu::fusedCrossEntropy(logits.data(), targets.data(), rows, vocab, ignore,
                                     &wantLoss, wantLse.data(), &cpuBad));
  DeviceArray<float> dLogits(logits), loss(1), lse(rows);
  DeviceArray<int32_t> dTargets(targets);
  DeviceArray<int64_t> bad(std::vector<int64_t>{-1});
  cuda::fusedCrossEntropy(dLogits.ptr, dTargets.ptr, rows, vocab, ignore, loss.ptr, lse.ptr,
                          bad.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_EQ(bad.value(), -1);
  EXPECT_TRUE(close(loss.value(), wantLoss, kReduction));
  EXPECT_TRUE(close(lse.download(), wantLse, kReduction));

  // The gradient, from the CPU's lse so that only the gradient kernel is compared.
  DeviceArray<float> grad(std::vector<float>{0.7f}), dlogits(rows * vocab);
  std::vector<float> wantD(rows * vocab);
  cpu::fusedCrossEntropyGrad(logits.data(), targets.data(), wantLse.data(), 0.7f, rows, vocab,
                             ignore, wantD.data());
  lse.upload(wantLse);
  cuda::fusedCrossEntropyGrad(dLogits.ptr, dTargets.ptr, lse.ptr, grad.ptr, rows, vocab,
                              ignore, dlogits.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(close(dlogits.download(), wantD, kPointwise));

  // Bad targets: the first bad row is reported.
  targets[12] = int32_t(vocab);
  targets[30] = -5;
  EXPECT_FALSE(cpu::fusedCrossEntropy(logits.data(), targets.data(), rows, vocab, ignore,
                                      &wantLoss, wantLse.data(), &cpuBad));
  EXPECT_EQ(cpuBad, 12);
  dTargets.upload(targets);
  cuda::fusedCrossEntropy(dLogits.ptr, dTargets.ptr, rows, vocab, ignore, loss.ptr, lse.ptr,
                          bad.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_EQ(bad.value(), 12);
}

TEST_F(CudaKernelsTest, FusedCrossEntropyAllIgnored) {
  int64_t rows = 37, vocab = 70, ignore = 0;
  std::vector<float> logits = randomVec(rows * vocab, 31);
  std::vector<int32_t> targets(rows, 0);
  DeviceArray<float> dLogits(logits), loss(std::vector<float>{5.0f}), lse(rows),
      grad(std::vector<float>{1.0f}), dlogits(std::vector<float>(rows * vocab, 9.0f));
  DeviceArray<int32_t> dTargets(targets);
  DeviceArray<int64_t> bad(std::vector<int64_t>{-1});
  cuda::fusedCrossEntropy(dLogits.ptr, dTargets.ptr, rows, vocab, ignore, loss.ptr, lse.ptr,
                          bad.ptr, stream);
  cuda::fusedCrossEntropyGrad(dLogits.ptr, dTargets.ptr, lse.ptr, grad.ptr, rows, vocab,
                              ignore, dlogits.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_EQ(loss.value(), 0.0f);
  EXPECT_EQ(bad.value(), -1);
  EXPECT_TRUE(bitEqual(dlogits.download(), std::vector<float>(rows * vocab, 0.0f)));
}

TEST_F(CudaKernelsTest, FusedCrossEntropyLargeVocabulary) {
  int64_t rows = 4, vocab = 32000, ignore = -1;
  std::vector<float> logits = randomVec(rows * vocab, 32, 4.0f);
  std::vector<int32_t> targets = randomIds(rows, int32_t(vocab), 33);
  float wantLoss = 0;
  std::vector<float> wantLse(rows), wantD(rows * vocab);
  ASSERT_TRUE(cpu::fusedCrossEntropy(logits.data(), targets.data(), rows, vocab, ignore,
                                     &wantLoss, wantLse.data(), nullptr));
  cpu::fusedCrossEntropyGrad(logits.data(), targets.data(), wantLse.data(), 1.0f, rows, vocab,
                             ignore, wantD.data());
  DeviceArray<float> dLogits(logits), loss(1), lse(rows), grad(std::vector<float>{1.0f}),
      dlogits(rows * vocab);
  DeviceArray<int32_t> dTargets(targets);
  DeviceArray<int64_t> bad(std::vector<int64_t>{-1});
  cuda::fusedCrossEntropy(dLogits.ptr, dTargets.ptr, rows, vocab, ignore, loss.ptr, lse.ptr,
                          bad.ptr, stream);
  cuda::fusedCrossEntropyGrad(dLogits.ptr, dTargets.ptr, lse.ptr, grad.ptr, rows, vocab,
                              ignore, dlogits.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_TRUE(close(loss.value(), wantLoss, kReduction));
  EXPECT_TRUE(close(lse.download(), wantLse, kReduction));
  EXPECT_TRUE(close(dlogits.download(), wantD, kReduction));
}

//===----------------------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, LrSchedule) {
  DeviceArray<int64_t> step(1), total(std::vector<int64_t>{100});
  DeviceArray<float> peak(std::vector<float>{3e-4f}), out(1);
  for (int64_t warmup : {int64_t(10), int64_t(0)})
    for (int64_t s : {0, 3, 9, 10, 11, 55, 99, 100, 250}) {
      step.upload({s});
      cuda::lrSchedule(step.ptr, peak.ptr, total.ptr, warmup, 0.1, out.ptr, stream);
      ASSERT_TRUE(finish());
      float want = cpu::lrSchedule(s, 3e-4f, 100, warmup, 0.1);
      EXPECT_TRUE(close(out.value(), want, kExact)) << "step " << s << " warmup " << warmup;
    }
}

TEST_F(CudaKernelsTest, GradClip) {
  // More gradients than one launch takes, of sizes around the block's element count, one
  // empty.
  std::vector<int64_t> sizes = {1, 70, 1003, 16384, 16385, 300000, 0};
  std::mt19937 rng(34);
  for (int i = 0; i < 93; ++i)
    sizes.push_back(1 + int64_t(rng() % 5000));
  std::vector<std::vector<float>> host;
  std::vector<const float *> hostPtrs, devicePtrs;
  std::vector<std::unique_ptr<DeviceArray<float>>> device;
  for (size_t i = 0; i < sizes.size(); ++i) {
    host.push_back(randomVec(sizes[i], 100 + uint32_t(i), 0.1f));
    device.push_back(std::make_unique<DeviceArray<float>>(host.back()));
    hostPtrs.push_back(host.back().data());
    devicePtrs.push_back(device.back()->ptr);
  }
  DeviceArray<float> count(std::vector<float>{4.0f}), coefficient(1), norm(1);
  for (double maxNorm : {1.0, 1e9}) {
    float wantCoefficient = 0, wantNorm = 0;
    cpu::gradClip(hostPtrs.data(), sizes.data(), int64_t(sizes.size()), 4.0f, maxNorm,
                  &wantCoefficient, &wantNorm);
    cuda::gradClip(devicePtrs.data(), sizes.data(), int64_t(sizes.size()), count.ptr, maxNorm,
                   coefficient.ptr, norm.ptr, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(norm.value(), wantNorm, kReduction)) << "maxNorm " << maxNorm;
    EXPECT_TRUE(close(coefficient.value(), wantCoefficient, kReduction))
        << "maxNorm " << maxNorm;
  }
  // No gradient at all: norm 0, coefficient 1 / count.
  cuda::gradClip(devicePtrs.data(), sizes.data(), 0, count.ptr, 1.0, coefficient.ptr,
                 norm.ptr, stream);
  ASSERT_TRUE(finish());
  EXPECT_EQ(norm.value(), 0.0f);
  EXPECT_EQ(coefficient.value(), 0.25f);
}

TEST_F(CudaKernelsTest, AdamWTwoSteps) {
  int64_t n = 1003;
  std::vector<float> param = randomVec(n, 35), m(n, 0.0f), v(n, 0.0f);
  DeviceArray<float> dParam(param), dM(m), dV(v), grad(n);
  DeviceArray<float> lr(std::vector<float>{1e-3f}), gradScale(std::vector<float>{0.5f});
  DeviceArray<int64_t> step(1);
  for (int64_t s = 0; s < 2; ++s) {
    std::vector<float> g = randomVec(n, 36 + uint32_t(s));
    cpu::adamw(param.data(), g.data(), m.data(), v.data(), n, 1e-3f, s, 0.5f, 0.9, 0.95, 1e-8,
               0.1);
    grad.upload(g);
    step.upload({s});
    cuda::adamw(dParam.ptr, grad.ptr, dM.ptr, dV.ptr, n, lr.ptr, step.ptr, gradScale.ptr, 0.9,
                0.95, 1e-8, 0.1, stream);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(close(dParam.download(), param, kExact)) << "step " << s;
    EXPECT_TRUE(close(dM.download(), m, kExact)) << "step " << s;
    EXPECT_TRUE(close(dV.download(), v, kExact)) << "step " << s;
  }
}

//===----------------------------------------------------------------------------------===//
// Determinism and graph capture
//===----------------------------------------------------------------------------------===//

TEST_F(CudaKernelsTest, ReductionsRepeatBitForBit) {
  int64_t rows = 300, dim = 333, vocab = 1003;
  std::vector<float> x = randomVec(rows * dim, 37), w = randomVec(dim, 38),
                     dy = randomVec(rows * dim, 39);
  std::vector<int32_t> tokens = randomIds(rows, 50, 40);
  DeviceArray<float> dX(x), dW(w), dDy(dy), dx(rows * dim), dw(dim), emb(vocab * dim),
      count(std::vector<float>{1.0f}), coefficient(1), norm(1);
  DeviceArray<int32_t> dTokens(tokens);
  std::vector<const float *> grads = {dX.ptr, dDy.ptr, dW.ptr};
  std::vector<int64_t> sizes = {rows * dim, rows * dim, dim};
  std::vector<float> first[4];
  for (int run = 0; run < 2; ++run) {
    cuda::rmsNormGrad(dX.ptr, dW.ptr, dDy.ptr, rows, dim, 1e-5, dx.ptr, dw.ptr, stream);
    cuda::embeddingGrad(dTokens.ptr, dDy.ptr, rows, dim, vocab, emb.ptr, stream);
    cuda::gradClip(grads.data(), sizes.data(), 3, count.ptr, 1.0, coefficient.ptr, norm.ptr,
                   stream);
    ASSERT_TRUE(finish());
    std::vector<float> now[4] = {dw.download(), emb.download(), norm.download(),
                                 coefficient.download()};
    for (int i = 0; i < 4; ++i) {
      if (run == 0)
        first[i] = now[i];
      else
        EXPECT_TRUE(bitEqual(now[i], first[i])) << "output " << i;
    }
  }
}

TEST_F(CudaKernelsTest, CapturedInAGraph) {
  // A training-step-like sequence captured once and replayed: every function must launch
  // without synchronising or reading device data on the host. The scratch buffer is grown
  // by an eager run first (growth synchronises, which a capture forbids).
  int64_t rows = 37, dim = 70, vocab = 1003;
  std::vector<float> x = randomVec(rows * dim, 41), w = randomVec(dim, 42),
                     dy = randomVec(rows * dim, 43), logits = randomVec(rows * vocab, 44);
  std::vector<int32_t> targets = randomIds(rows, int32_t(vocab), 45);
  DeviceArray<float> dX(x), dW(w), dDy(dy), dLogits(logits), dx(rows * dim), dw(dim),
      loss(1), lse(rows), dlogits(rows * vocab), one(std::vector<float>{1.0f}), coefficient(1),
      norm(1), lr(1), peak(std::vector<float>{1e-3f}), param(x), m(rows * dim), v(rows * dim);
  DeviceArray<int32_t> dTargets(targets);
  DeviceArray<int64_t> bad(std::vector<int64_t>{-1}), step(std::vector<int64_t>{3}),
      total(std::vector<int64_t>{100});
  std::vector<const float *> grads = {dx.ptr, dw.ptr};
  std::vector<int64_t> sizes = {rows * dim, dim};
  auto sequence = [&] {
    cuda::fill(m.ptr, rows * dim, 0.0f, stream);
    cuda::fill(v.ptr, rows * dim, 0.0f, stream);
    cuda::copy(dX.ptr, rows * dim, param.ptr, stream);
    cuda::rmsNormGrad(dX.ptr, dW.ptr, dDy.ptr, rows, dim, 1e-5, dx.ptr, dw.ptr, stream);
    cuda::fusedCrossEntropy(dLogits.ptr, dTargets.ptr, rows, vocab, -100, loss.ptr, lse.ptr,
                            bad.ptr, stream);
    cuda::fusedCrossEntropyGrad(dLogits.ptr, dTargets.ptr, lse.ptr, one.ptr, rows, vocab, -100,
                                dlogits.ptr, stream);
    cuda::gradClip(grads.data(), sizes.data(), 2, one.ptr, 1.0, coefficient.ptr, norm.ptr,
                   stream);
    cuda::lrSchedule(step.ptr, peak.ptr, total.ptr, 10, 0.1, lr.ptr, stream);
    cuda::adamw(param.ptr, dx.ptr, m.ptr, v.ptr, rows * dim, lr.ptr, step.ptr, coefficient.ptr,
                0.9, 0.95, 1e-8, 0.1, stream);
  };
  sequence();
  ASSERT_TRUE(finish());
  std::vector<float> eager[4] = {param.download(), loss.download(), dlogits.download(),
                                 norm.download()};
  cuda::fill(param.ptr, rows * dim, 0.0f, stream);
  cuda::fill(dlogits.ptr, rows * vocab, 0.0f, stream);
  ASSERT_TRUE(finish());

  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  sequence();
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_TRUE(finish());
  std::vector<float> replayed[4] = {param.download(), loss.download(), dlogits.download(),
                                    norm.download()};
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(bitEqual(replayed[i], eager[i])) << "output " << i;
  EXPECT_EQ(bad.value(), -1);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

} // namespace
