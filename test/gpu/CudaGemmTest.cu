//===- CudaGemmTest.cu - cuBLASLt GEMMs against the CPU's ----------------------------===//
//
// The three row-major GEMM kinds of runtime/cuda/CudaGemm.h, with and without accumulation,
// on shapes that are not multiples of any tile, against llamac::cpu's BLIS GEMMs, in each
// precision. The products round the inputs (bf16: 8-bit mantissas, TF32: 11), so the bound
// is relative to the largest output: 2e-2 for bf16, 2e-3 for TF32, 1e-5 for f32.
//
// The bf16 overloads (bf16 operands and results, f32 sums) against the CPU's bf16 GEMMs on
// the same bf16 inputs: the products are exact and both sides sum in f32, in different
// orders, so the f32 results agree to about 1e-6 of the row's magnitude, but each is then
// rounded to bf16 and the two may land on neighbouring values. The bound is therefore two
// bf16 ulps of the largest |value| of the output row, per element.
//
// Skipped without a GPU.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cuda/CudaGemm.h"

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using namespace llamac;

namespace {

class CudaGemm : public ::testing::Test {
protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
      GTEST_SKIP() << "no CUDA device";
    std::string error;
    ASSERT_TRUE(engine_.init(&error)) << error;
  }
  cuda::GemmEngine engine_;
};

std::vector<float> randomVector(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(gen);
  return v;
}

template <class T> T *upload(const std::vector<T> &v) {
  T *d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, v.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

template <class T> std::vector<T> download(const T *d, size_t n) {
  std::vector<T> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return v;
}

double relativeError(const std::vector<float> &got, const std::vector<float> &want) {
  double maxRef = 0, maxDiff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    maxRef = std::max(maxRef, std::fabs(double(want[i])));
    maxDiff = std::max(maxDiff, std::fabs(double(got[i]) - double(want[i])));
  }
  return maxRef > 0 ? maxDiff / maxRef : maxDiff;
}

double boundOf(cuda::Precision p) {
  return p == cuda::Precision::F32 ? 1e-5 : p == cuda::Precision::TF32 ? 2e-3 : 2e-2;
}

void check(cuda::GemmEngine &engine, cuda::GemmEngine::Op op, int64_t M, int64_t N, int64_t K,
           bool accumulate, double bound) {
  std::vector<float> a = randomVector(size_t(M * K), 1), b = randomVector(size_t(N * K), 2),
                     c0 = randomVector(size_t(M * N), 3);
  std::vector<float> want = c0;
  switch (op) {
  case cuda::GemmEngine::Op::NT:
    cpu::gemmNT(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  case cuda::GemmEngine::Op::NN:
    cpu::gemmNN(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  case cuda::GemmEngine::Op::TN:
    cpu::gemmTN(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  }
  float *da = upload(a), *db = upload(b), *dc = upload(c0);
  ASSERT_EQ(engine.run(op, M, N, K, da, db, dc, accumulate, 0, nullptr), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got = download(dc, size_t(M * N));
  EXPECT_LT(relativeError(got, want), bound)
      << "op " << int(op) << " M " << M << " N " << N << " K " << K << " acc " << accumulate;
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

TEST_F(CudaGemm, MatchesCpuOnOddShapes) {
  for (auto precision : {cuda::Precision::F32, cuda::Precision::TF32, cuda::Precision::BF16}) {
    engine_.setPrecision(precision);
    for (auto op : {cuda::GemmEngine::Op::NT, cuda::GemmEngine::Op::NN, cuda::GemmEngine::Op::TN})
      for (bool accumulate : {false, true}) {
        check(engine_, op, 37, 53, 70, accumulate, boundOf(precision));
        check(engine_, op, 256, 352, 64, accumulate, boundOf(precision));
        check(engine_, op, 1, 1003, 128, accumulate, boundOf(precision)); // a decode GEMV
      }
  }
}

//===----------------------------------------------------------------------------------===//
// bf16 operands and results
//===----------------------------------------------------------------------------------===//

std::vector<uint16_t> toBf16(const std::vector<float> &v) {
  std::vector<uint16_t> b(v.size());
  cpu::cast(v.data(), int64_t(v.size()), b.data());
  return b;
}

std::vector<float> widen(const std::vector<uint16_t> &b) {
  std::vector<float> v(b.size());
  cpu::cast(b.data(), int64_t(b.size()), v.data());
  return v;
}

/// |got - want| <= ulps bf16 ulps of the largest |want| of the element's row (of `cols`),
/// element by element; the worst element otherwise.
::testing::AssertionResult withinBf16Ulps(const std::vector<uint16_t> &gotBits,
                                          const std::vector<uint16_t> &wantBits, int64_t cols,
                                          double ulps) {
  std::vector<float> got = widen(gotBits), want = widen(wantBits);
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " not " << want.size();
  double worst = 0; // in ulps
  size_t worstAt = 0;
  for (size_t begin = 0; begin < want.size(); begin += size_t(cols)) {
    size_t end = std::min(want.size(), begin + size_t(cols));
    double rowMax = 0;
    for (size_t i = begin; i < end; ++i)
      rowMax = std::max(rowMax, std::fabs(double(want[i])));
    // bf16 holds 8 significant bits: an ulp at x = m 2^e (m in [0.5, 1)) is 2^(e - 8).
    int e = 0;
    std::frexp(rowMax, &e);
    double ulp = std::ldexp(1.0, e - 8);
    for (size_t i = begin; i < end; ++i) {
      double d = std::fabs(double(got[i]) - double(want[i]));
      double inUlps = std::isnan(d) ? INFINITY : d / ulp;
      if (inUlps > worst) {
        worst = inUlps;
        worstAt = i;
      }
    }
  }
  if (worst <= ulps)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worstAt << " (row " << worstAt / size_t(cols) << "): got "
         << got[worstAt] << " want " << want[worstAt] << ", " << worst
         << " ulps of the row's largest value (at most " << ulps << ")";
}

constexpr double kBf16Ulps = 2;

void checkBf16(cuda::GemmEngine &engine, cuda::GemmEngine::Op op, int64_t M, int64_t N,
               int64_t K, bool accumulate) {
  // Inputs rounded to bf16 once, so that both sides start from the same values.
  std::vector<uint16_t> a = toBf16(randomVector(size_t(M * K), 11)),
                        b = toBf16(randomVector(size_t(N * K), 12)),
                        c0 = toBf16(randomVector(size_t(M * N), 13));
  std::vector<uint16_t> want = c0;
  switch (op) {
  case cuda::GemmEngine::Op::NT:
    cpu::gemmNT(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  case cuda::GemmEngine::Op::NN:
    cpu::gemmNN(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  case cuda::GemmEngine::Op::TN:
    cpu::gemmTN(M, N, K, a.data(), b.data(), want.data(), accumulate);
    break;
  }
  uint16_t *da = upload(a), *db = upload(b), *dc = upload(c0);
  cublasStatus_t status = op == cuda::GemmEngine::Op::NT
                              ? engine.nt(M, N, K, da, db, dc, accumulate, 0, nullptr)
                          : op == cuda::GemmEngine::Op::NN
                              ? engine.nn(M, N, K, da, db, dc, accumulate, 0, nullptr)
                              : engine.tn(M, N, K, da, db, dc, accumulate, 0, nullptr);
  EXPECT_EQ(status, CUBLAS_STATUS_SUCCESS) << cuda::statusName(status);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  if (status == CUBLAS_STATUS_SUCCESS)
    EXPECT_TRUE(withinBf16Ulps(download(dc, size_t(M * N)), want, N, kBf16Ulps))
        << "op " << int(op) << " M " << M << " N " << N << " K " << K << " acc " << accumulate;
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

TEST_F(CudaGemm, Bf16MatchesCpuOnOddShapes) {
  // The products' precision is for f32 operands: bf16 ones compute the same under each.
  for (auto precision : {cuda::Precision::BF16, cuda::Precision::F32}) {
    engine_.setPrecision(precision);
    for (auto op : {cuda::GemmEngine::Op::NT, cuda::GemmEngine::Op::NN, cuda::GemmEngine::Op::TN})
      for (bool accumulate : {false, true}) {
        checkBf16(engine_, op, 37, 53, 70, accumulate);
        checkBf16(engine_, op, 3, 5, 7, accumulate);
        checkBf16(engine_, op, 256, 352, 64, accumulate);
        checkBf16(engine_, op, 1, 1003, 128, accumulate); // a decode GEMV
      }
  }
}

TEST_F(CudaGemm, Bf16AndF32PlansOfOneShapeAreKeptApart) {
  // One shape in f32, then bf16, then f32 again: each must find its own plan (a bf16 layout
  // applied to f32 data, or the reverse, reads the wrong bytes).
  engine_.setPrecision(cuda::Precision::F32);
  check(engine_, cuda::GemmEngine::Op::NT, 64, 96, 80, false, boundOf(cuda::Precision::F32));
  checkBf16(engine_, cuda::GemmEngine::Op::NT, 64, 96, 80, false);
  check(engine_, cuda::GemmEngine::Op::NT, 64, 96, 80, false, boundOf(cuda::Precision::F32));
  EXPECT_GE(engine_.candidates(cuda::GemmEngine::Op::NT, 64, 96, 80, false, 1), 1);
  EXPECT_GE(engine_.candidates(cuda::GemmEngine::Op::NT, 64, 96, 80, false, 1,
                               cuda::DataType::BF16),
            1);
}

TEST_F(CudaGemm, EveryBf16CandidateComputesTheSameProduct) {
  int n = engine_.candidates(cuda::GemmEngine::Op::NT, 512, 512, 512, false, 4,
                             cuda::DataType::BF16);
  ASSERT_GE(n, 1);
  std::vector<uint16_t> a = toBf16(randomVector(512 * 512, 14)),
                        b = toBf16(randomVector(512 * 512, 15));
  std::vector<uint16_t> want(512 * 512);
  cpu::gemmNT(512, 512, 512, a.data(), b.data(), want.data(), false);
  uint16_t *da = upload(a), *db = upload(b), *dc = upload(want);
  for (int algo = 0; algo < n; ++algo) {
    ASSERT_EQ(engine_.nt(512, 512, 512, da, db, dc, false, algo, nullptr), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_TRUE(withinBf16Ulps(download(dc, 512 * 512), want, 512, kBf16Ulps))
        << "candidate " << algo;
  }
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

TEST_F(CudaGemm, EveryCandidateComputesTheSameProduct) {
  engine_.setPrecision(cuda::Precision::TF32);
  int n = engine_.candidates(cuda::GemmEngine::Op::NT, 512, 512, 512, false, 4);
  ASSERT_GE(n, 1);
  std::vector<float> a = randomVector(512 * 512, 4), b = randomVector(512 * 512, 5);
  std::vector<float> want(512 * 512);
  cpu::gemmNT(512, 512, 512, a.data(), b.data(), want.data(), false);
  float *da = upload(a), *db = upload(b), *dc = upload(want);
  for (int algo = 0; algo < n; ++algo) {
    ASSERT_EQ(engine_.nt(512, 512, 512, da, db, dc, false, algo, nullptr), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(relativeError(download(dc, 512 * 512), want), 2e-3) << "candidate " << algo;
  }
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

} // namespace
