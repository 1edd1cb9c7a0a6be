//===- CudaGemmTest.cu - cuBLASLt GEMMs against the CPU's ----------------------------===//
//
// The three row-major GEMM kinds of runtime/cuda/CudaGemm.h, with and without accumulation,
// on shapes that are not multiples of any tile, against llamac::cpu's BLIS GEMMs, in each
// precision. The products round the inputs (bf16: 8-bit mantissas, TF32: 11), so the bound
// is relative to the largest output: 2e-2 for bf16, 2e-3 for TF32, 1e-5 for f32. Skipped
// without a GPU.
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

float *upload(const std::vector<float> &v) {
  float *d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, v.size() * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice),
            cudaSuccess);
  return d;
}

std::vector<float> download(const float *d, size_t n) {
  std::vector<float> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
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
