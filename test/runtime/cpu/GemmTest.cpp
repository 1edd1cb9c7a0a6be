//===- GemmTest.cpp - llamac's own f32 GEMM against a double-precision reference ----===//
//
// gemmNTOwn / gemmNNOwn / gemmTNOwn (runtime/cpu/Gemm.cpp) on random inputs, for each layout,
// with and without accumulation, on shapes that hit every edge of the blocking: M, N, K of
// 1, primes, sizes just off the 6 x 16 tile and the K block, the unpacked path (M <= 4),
// several K and N blocks, one thread and all of them, and calls from inside a parallel
// region. Tolerance: each element within 1e-5 of sum_p |A(i,p) B(p,j)| + |C0(i,j)|, the
// scale of f32 rounding of a K-term sum (the error bound is about K * 2^-24 times it; the
// observed error is far below it for these K).
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace llamac;

namespace {

enum class Layout { NT, NN, TN };

std::vector<float> randomVec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = dist(rng);
  return v;
}

/// Checks one call against the double reference; returns the worst error / bound.
double checkOne(Layout layout, int64_t M, int64_t N, int64_t K, bool accumulate, int64_t kc,
                uint32_t seed) {
  std::vector<float> A = randomVec(M * K, seed), B = randomVec(K * N, seed + 1),
                     C0 = randomVec(M * N, seed + 2);
  // A(i, p) and B(p, j) in each layout's storage.
  auto a = [&](int64_t i, int64_t p) { return layout == Layout::TN ? A[p * M + i] : A[i * K + p]; };
  auto b = [&](int64_t p, int64_t j) { return layout == Layout::NT ? B[j * K + p] : B[p * N + j]; };
  std::vector<float> C = C0;
  switch (layout) {
  case Layout::NT:
    cpu::gemmNTOwn(M, N, K, A.data(), B.data(), C.data(), accumulate, kc);
    break;
  case Layout::NN:
    cpu::gemmNNOwn(M, N, K, A.data(), B.data(), C.data(), accumulate, kc);
    break;
  case Layout::TN:
    cpu::gemmTNOwn(M, N, K, A.data(), B.data(), C.data(), accumulate, kc);
    break;
  }
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double sum = accumulate ? double(C0[i * N + j]) : 0.0;
      double scale = accumulate ? std::fabs(double(C0[i * N + j])) : 0.0;
      for (int64_t p = 0; p < K; ++p) {
        double t = double(a(i, p)) * double(b(p, j));
        sum += t;
        scale += std::fabs(t);
      }
      double err = std::fabs(double(C[i * N + j]) - sum);
      double bound = 1e-5 * (scale + 1e-30);
      worst = std::max(worst, scale == 0 ? err : err / bound);
    }
  return worst;
}

const char *name(Layout l) { return l == Layout::NT ? "NT" : l == Layout::NN ? "NN" : "TN"; }

void checkAll(const std::vector<std::array<int64_t, 3>> &shapes, int64_t kc = 0) {
  uint32_t seed = 1;
  for (Layout layout : {Layout::NT, Layout::NN, Layout::TN})
    for (bool accumulate : {false, true})
      for (const auto &[M, N, K] : shapes) {
        double worst = checkOne(layout, M, N, K, accumulate, kc, seed += 3);
        EXPECT_LE(worst, 1.0) << name(layout) << " M=" << M << " N=" << N << " K=" << K
                              << " accumulate=" << accumulate << " kc=" << kc;
      }
}

const std::vector<std::array<int64_t, 3>> kEdgeShapes = {
    {1, 1, 1},    {1, 17, 1},  {2, 3, 5},    {3, 16, 7},    {4, 33, 65},  {5, 15, 16},
    {6, 16, 1},   {6, 16, 2},  {7, 17, 13},  {11, 47, 31},  {13, 31, 257}, {1, 288, 768},
    {2, 301, 97}, {31, 1, 64}, {37, 5, 300}, {64, 64, 64},  {97, 101, 103}, {1, 1000, 3},
    {200, 130, 600}, {149, 67, 259}, {300, 29, 2}};

} // namespace

TEST(CpuOwnGemm, EdgeShapesAllThreads) { checkAll(kEdgeShapes); }

TEST(CpuOwnGemm, OneThread) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  checkAll(kEdgeShapes);
  omp_set_num_threads(saved);
}

TEST(CpuOwnGemm, SmallKBlocks) {
  // K blocks of 16 (and 5): many blocks, a ragged last one, accumulation across them.
  checkAll({{7, 17, 13}, {13, 31, 257}, {97, 101, 103}, {149, 67, 259}}, 16);
  checkAll({{7, 17, 13}, {50, 40, 33}}, 5);
}

TEST(CpuOwnGemm, SeveralNBlocks) {
  // kc x nc of the packed B is capped (~2 MiB): N = 4001 with K = 300 needs two N blocks.
  checkAll({{7, 4001, 300}, {150, 3500, 260}});
}

TEST(CpuOwnGemm, InsideAParallelRegion) {
  // Called from the threads of a parallel loop (as attention calls GEMMs per tile): each
  // call runs on its own thread with its own packing buffers.
  std::vector<double> worst(8, 0.0);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < 8; ++t)
    worst[size_t(t)] = checkOne(Layout(t % 3), 37 + t, 45 + 2 * t, 70 + 3 * t, t % 2 == 1, 0,
                                uint32_t(100 + t));
  for (int t = 0; t < 8; ++t)
    EXPECT_LE(worst[size_t(t)], 1.0) << "call " << t;
}

TEST(CpuOwnGemm, ZeroK) {
  // K = 0: C = 0, or C unchanged with accumulate (as BLIS with beta 0 / 1).
  std::vector<float> C(6, 3.0f);
  cpu::gemmNNOwn(2, 3, 0, nullptr, nullptr, C.data(), true);
  EXPECT_EQ(C, std::vector<float>(6, 3.0f));
  cpu::gemmNTOwn(2, 3, 0, nullptr, nullptr, C.data(), false);
  EXPECT_EQ(C, std::vector<float>(6, 0.0f));
}

TEST(CpuOwnGemm, AgreesWithBlis) {
  // The tuner lets a variant win only within 1e-4 (norm-wise) of BLIS's output: a shape of
  // the tiny model's training step, in each layout.
  int64_t M = 128, N = 96, K = 64;
  std::vector<float> A = randomVec(M * K, 7), B = randomVec(K * N, 8);
  std::vector<float> ours(size_t(M * N)), blis(size_t(M * N));
  using Fn = void (*)(int64_t, int64_t, int64_t, const float *, const float *, float *, bool);
  std::pair<Fn, Fn> pairs[] = {
      {[](int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
         cpu::gemmNTOwn(m, n, k, a, b, c, acc);
       },
       &cpu::gemmNT},
      {[](int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
         cpu::gemmNNOwn(m, n, k, a, b, c, acc);
       },
       &cpu::gemmNN},
      {[](int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
         cpu::gemmTNOwn(m, n, k, a, b, c, acc);
       },
       &cpu::gemmTN}};
  for (auto [own, ref] : pairs) {
    own(M, N, K, A.data(), B.data(), ours.data(), false);
    ref(M, N, K, A.data(), B.data(), blis.data(), false);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      worst = std::max(worst, double(std::fabs(ours[i] - blis[i])));
      scale = std::max(scale, double(std::fabs(blis[i])));
    }
    EXPECT_LE(worst / scale, 1e-5);
  }
}
