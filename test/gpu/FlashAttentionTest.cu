//===- FlashAttentionTest.cu - the CUDA flash attention against the CPU kernels ----===//
//
// runtime/cuda/FlashAttention.cuh against runtime/cpu/CpuKernels.h on random inputs:
//   - flashAttention (forward) and flashAttentionGrad (backward) on shapes with grouped-query
//     heads, sequences that the tiles do not divide, causal masks with T == S, T < S and
//     T > S (rows that see no key), sliding windows with and without the causal mask,
//     each with two tile configurations (BQ, BK) = (64, 32) and (128, 64);
//   - the f32 forward (flashAttention<D, BQ, BK, false>, the f32 and tf32 programs') on the
//     same kinds of shapes and both tile configurations;
//   - attentionKVCache: a prefill chunk then decode steps (and a chunk in the middle), with
//     a plain cache and with rolling windows (capacity == window, more positions than slots,
//     a chunk longer than the capacity); outputs and the caches after every step.
// Every case also runs the GPU kernel twice and requires the same bits (no atomics).
//
// Tolerances, relative to the largest magnitude of the expected tensor:
//   - forward out: kFwdRel = 2e-2, lse: kLseAbs = 1e-2 absolute (the forward rounds q, k, v
//     and the probabilities to bf16 for the tensor cores); rows without keys must match
//     exactly (out 0, lse -inf);
//   - f32 forward out: kFwdF32Rel = 1e-5, lse: kLseF32Abs = 1e-5 absolute (f32 on both
//     sides, different summation orders); rows without keys exactly;
//   - backward dq, dk, dv: kBwdRel = 1e-3 (f32 on both sides, different summation orders;
//     both are given the CPU forward's out and lse);
//   - KV cache out: kKvRel = 1e-4 (f32); cache contents exactly.
// Without a CUDA device every test is skipped.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cuda/FlashAttention.cuh"

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace llamac;

namespace {

constexpr double kFwdRel = 2e-2;
constexpr double kLseAbs = 1e-2;
constexpr double kFwdF32Rel = 1e-5;
constexpr double kLseF32Abs = 1e-5;
constexpr double kBwdRel = 1e-3;
constexpr double kKvRel = 1e-4;

#define CUDA_OK(expr)                                                                      \
  do {                                                                                     \
    cudaError_t status_ = (expr);                                                          \
    ASSERT_EQ(status_, cudaSuccess) << #expr << ": " << cudaGetErrorString(status_);       \
  } while (0)

std::vector<float> randomVec(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

/// A device buffer of n floats (or bytes of another type), freed on scope exit.
template <typename T = float>
struct DeviceBuffer {
  T *ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (cudaMalloc(&ptr, sizeof(T) * (n ? n : 1)) != cudaSuccess)
      ptr = nullptr;
  }
  explicit DeviceBuffer(const std::vector<T> &host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  void upload(const std::vector<T> &host) {
    if (ptr && !host.empty())
      cudaMemcpy(ptr, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> host(n);
    if (ptr && n)
      cudaMemcpy(host.data(), ptr, sizeof(T) * n, cudaMemcpyDeviceToHost);
    return host;
  }
};

/// max |got - want| <= rel * max |want| (plus `abs`); infinities must match exactly.
void expectClose(const std::vector<float> &got, const std::vector<float> &want,
                 const std::string &what, double rel, double abs = 0.0) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0, err = 0;
  size_t worst = 0;
  for (float w : want)
    if (std::isfinite(w))
      scale = std::max(scale, double(std::fabs(w)));
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i]) || !std::isfinite(got[i])) {
      ASSERT_EQ(got[i], want[i]) << what << " at " << i;
      continue;
    }
    double e = std::fabs(double(got[i]) - double(want[i]));
    if (e > err) {
      err = e;
      worst = i;
    }
  }
  double tol = rel * scale + abs;
  EXPECT_LE(err, tol) << what << ": max error " << err << " at " << worst << " (got "
                      << got[worst] << ", want " << want[worst] << "), max |want| " << scale;
}

void expectSameBits(const std::vector<float> &a, const std::vector<float> &b,
                    const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()), 0)
      << what << " differs between two identical launches";
}

class FlashAttentionGpu : public ::testing::Test {
protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError(); // clear the sticky "no device" error
      GTEST_SKIP() << "no CUDA device";
    }
  }
};

struct Case {
  int64_t B, T, S, H, Hkv;
  bool causal;
  int64_t window;
};

std::string describe(const Case &c, int D, int BQ, int BK) {
  return "D=" + std::to_string(D) + " B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) +
         " S=" + std::to_string(c.S) + " H=" + std::to_string(c.H) + "/" +
         std::to_string(c.Hkv) + (c.causal ? " causal" : "") +
         " window=" + std::to_string(c.window) + " BQ=" + std::to_string(BQ) +
         " BK=" + std::to_string(BK);
}

/// Forward and backward of one case with one tile configuration.
template <int D, int BQ, int BK>
void checkCase(const Case &c) {
  const std::string what = describe(c, D, BQ, BK);
  SCOPED_TRACE(what);
  const int64_t nq = c.B * c.T * c.H * D, nkv = c.B * c.S * c.Hkv * D, nrow = c.B * c.T * c.H;
  const float scale = 1.0f / std::sqrt(float(D));
  std::vector<float> q = randomVec(nq, 1), k = randomVec(nkv, 2), v = randomVec(nkv, 3),
                     dout = randomVec(nq, 4);

  // The CPU reference (its own tiles differ from the GPU's on purpose).
  std::vector<float> out(nq), lse(nrow), dq(nq), dk(nkv), dv(nkv);
  cpu::flashAttention(q.data(), k.data(), v.data(), c.B, c.T, c.S, c.H, c.Hkv, D, c.causal,
                      c.window, scale, 32, 48, out.data(), lse.data());
  cpu::flashAttentionGrad(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                          c.B, c.T, c.S, c.H, c.Hkv, D, c.causal, c.window, scale, 32, 48,
                          dq.data(), dk.data(), dv.data());

  DeviceBuffer<float> dQ(q), dK(k), dV(v), dOut(nq), dLse(nrow), dDout(dout);
  DeviceBuffer<float> dRefOut(out), dRefLse(lse), dDq(nq), dDk(nkv), dDv(nkv);
  ASSERT_TRUE(dQ.ptr && dK.ptr && dV.ptr && dOut.ptr && dLse.ptr && dDout.ptr && dRefOut.ptr &&
              dRefLse.ptr && dDq.ptr && dDk.ptr && dDv.ptr);
  // Poison the outputs: every element must be written.
  CUDA_OK(cudaMemset(dOut.ptr, 0xff, sizeof(float) * nq));
  CUDA_OK(cudaMemset(dDq.ptr, 0xff, sizeof(float) * nq));
  CUDA_OK(cudaMemset(dDk.ptr, 0xff, sizeof(float) * nkv));
  CUDA_OK(cudaMemset(dDv.ptr, 0xff, sizeof(float) * nkv));

  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  cuda::flashAttention<D, BQ, BK>(dQ.ptr, dK.ptr, dV.ptr, c.B, c.T, c.S, c.H, c.Hkv, c.causal,
                                  c.window, scale, dOut.ptr, dLse.ptr, stream);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<float> gotOut = dOut.download(), gotLse = dLse.download();
  expectClose(gotOut, out, "out", kFwdRel);
  expectClose(gotLse, lse, "lse", 0.0, kLseAbs);

  // The backward from the reference forward, so that only the backward is compared.
  cuda::flashAttentionGrad<D, BQ, BK>(dQ.ptr, dK.ptr, dV.ptr, dRefOut.ptr, dRefLse.ptr,
                                      dDout.ptr, c.B, c.T, c.S, c.H, c.Hkv, c.causal, c.window,
                                      scale, dDq.ptr, dDk.ptr, dDv.ptr, stream);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<float> gotDq = dDq.download(), gotDk = dDk.download(), gotDv = dDv.download();
  expectClose(gotDq, dq, "dq", kBwdRel);
  expectClose(gotDk, dk, "dk", kBwdRel);
  expectClose(gotDv, dv, "dv", kBwdRel);

  // Determinism: the same launches again give the same bits.
  cuda::flashAttention<D, BQ, BK>(dQ.ptr, dK.ptr, dV.ptr, c.B, c.T, c.S, c.H, c.Hkv, c.causal,
                                  c.window, scale, dOut.ptr, dLse.ptr, stream);
  cuda::flashAttentionGrad<D, BQ, BK>(dQ.ptr, dK.ptr, dV.ptr, dRefOut.ptr, dRefLse.ptr,
                                      dDout.ptr, c.B, c.T, c.S, c.H, c.Hkv, c.causal, c.window,
                                      scale, dDq.ptr, dDk.ptr, dDv.ptr, stream);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaStreamSynchronize(stream));
  expectSameBits(dOut.download(), gotOut, "out");
  expectSameBits(dLse.download(), gotLse, "lse");
  expectSameBits(dDq.download(), gotDq, "dq");
  expectSameBits(dDk.download(), gotDk, "dk");
  expectSameBits(dDv.download(), gotDv, "dv");
  CUDA_OK(cudaStreamDestroy(stream));
}

/// Both tile configurations.
template <int D>
void checkBothTiles(const Case &c) {
  checkCase<D, 64, 32>(c);
  checkCase<D, 128, 64>(c);
}

/// The f32 forward (flashAttention<D, BQ, BK, false>) of one case with one tile
/// configuration, against the CPU forward with the f32 tolerances.
template <int D, int BQ, int BK>
void checkForwardF32(const Case &c) {
  const std::string what = describe(c, D, BQ, BK) + " f32";
  SCOPED_TRACE(what);
  const int64_t nq = c.B * c.T * c.H * D, nkv = c.B * c.S * c.Hkv * D, nrow = c.B * c.T * c.H;
  const float scale = 1.0f / std::sqrt(float(D));
  std::vector<float> q = randomVec(nq, 1), k = randomVec(nkv, 2), v = randomVec(nkv, 3);
  std::vector<float> out(nq), lse(nrow);
  cpu::flashAttention(q.data(), k.data(), v.data(), c.B, c.T, c.S, c.H, c.Hkv, D, c.causal,
                      c.window, scale, 32, 48, out.data(), lse.data());

  DeviceBuffer<float> dQ(q), dK(k), dV(v), dOut(nq), dLse(nrow);
  ASSERT_TRUE(dQ.ptr && dK.ptr && dV.ptr && dOut.ptr && dLse.ptr);
  // Poison the outputs: every element must be written.
  CUDA_OK(cudaMemset(dOut.ptr, 0xff, sizeof(float) * nq));
  CUDA_OK(cudaMemset(dLse.ptr, 0xff, sizeof(float) * nrow));

  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  cuda::flashAttention<D, BQ, BK, false>(dQ.ptr, dK.ptr, dV.ptr, c.B, c.T, c.S, c.H, c.Hkv,
                                         c.causal, c.window, scale, dOut.ptr, dLse.ptr, stream);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaStreamSynchronize(stream));
  std::vector<float> gotOut = dOut.download(), gotLse = dLse.download();
  expectClose(gotOut, out, "out", kFwdF32Rel);
  expectClose(gotLse, lse, "lse", 0.0, kLseF32Abs);

  // Determinism: the same launch again gives the same bits.
  cuda::flashAttention<D, BQ, BK, false>(dQ.ptr, dK.ptr, dV.ptr, c.B, c.T, c.S, c.H, c.Hkv,
                                         c.causal, c.window, scale, dOut.ptr, dLse.ptr, stream);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaStreamSynchronize(stream));
  expectSameBits(dOut.download(), gotOut, "out");
  expectSameBits(dLse.download(), gotLse, "lse");
  CUDA_OK(cudaStreamDestroy(stream));
}

template <int D>
void checkBothTilesF32(const Case &c) {
  checkForwardF32<D, 64, 32>(c);
  checkForwardF32<D, 128, 64>(c);
}

TEST_F(FlashAttentionGpu, D16CausalGroupedOddLength) {
  checkBothTiles<16>({2, 70, 70, 4, 2, true, 0});
}

TEST_F(FlashAttentionGpu, D64Causal) { checkBothTiles<64>({1, 256, 256, 4, 4, true, 0}); }

TEST_F(FlashAttentionGpu, D64CausalWindow) { checkBothTiles<64>({2, 200, 200, 4, 2, true, 32}); }

TEST_F(FlashAttentionGpu, D128Grouped) {
  checkBothTiles<128>({1, 130, 130, 8, 2, false, 0});
  checkBothTiles<128>({1, 130, 130, 8, 2, true, 0});
}

TEST_F(FlashAttentionGpu, D32NonCausalFewerQueries) {
  checkBothTiles<32>({2, 50, 90, 2, 1, false, 0});
}

TEST_F(FlashAttentionGpu, D96CausalFewerQueries) {
  // The last query sees every key; the first sees S - T + 1 of them.
  checkBothTiles<96>({1, 40, 100, 2, 2, true, 0});
}

TEST_F(FlashAttentionGpu, D80CausalMoreQueries) {
  // T > S: the first T - S queries see no key (out 0, lse -inf, zero gradients).
  checkBothTiles<80>({1, 100, 60, 2, 1, true, 0});
}

TEST_F(FlashAttentionGpu, D64NonCausalWindow) {
  // The window bounds the keys from below even without the causal mask.
  checkBothTiles<64>({1, 90, 150, 2, 1, false, 20});
}

TEST_F(FlashAttentionGpu, F32D16CausalGroupedOddLength) {
  checkBothTilesF32<16>({2, 70, 70, 4, 2, true, 0});
}

TEST_F(FlashAttentionGpu, F32D64Causal) { checkBothTilesF32<64>({1, 256, 256, 4, 4, true, 0}); }

TEST_F(FlashAttentionGpu, F32D64CausalWindow) {
  checkBothTilesF32<64>({2, 200, 200, 4, 2, true, 32});
}

TEST_F(FlashAttentionGpu, F32D128Grouped) {
  checkBothTilesF32<128>({1, 130, 130, 8, 2, false, 0});
  checkBothTilesF32<128>({1, 130, 130, 8, 2, true, 0});
}

TEST_F(FlashAttentionGpu, F32D32NonCausalFewerQueries) {
  checkBothTilesF32<32>({2, 50, 90, 2, 1, false, 0});
}

TEST_F(FlashAttentionGpu, F32D96CausalFewerQueries) {
  checkBothTilesF32<96>({1, 40, 100, 2, 2, true, 0});
}

TEST_F(FlashAttentionGpu, F32D80CausalMoreQueries) {
  // T > S: the first T - S queries see no key (out 0, lse -inf).
  checkBothTilesF32<80>({1, 100, 60, 2, 1, true, 0});
}

TEST_F(FlashAttentionGpu, F32D64NonCausalWindow) {
  checkBothTilesF32<64>({1, 90, 150, 2, 1, false, 20});
}

TEST_F(FlashAttentionGpu, F32OtherTiles) {
  // (BQ, BK) = (64, 64) and (128, 32); D = 128 with BQ = 64, BK = 64 loads part of each K and
  // V tile late (more than the prefetch registers hold).
  checkForwardF32<128, 64, 64>({1, 150, 150, 2, 1, true, 40});
  checkForwardF32<128, 128, 32>({1, 150, 150, 2, 1, true, 40});
  checkForwardF32<48, 64, 64>({1, 150, 150, 2, 1, true, 0});
  checkForwardF32<48, 128, 32>({1, 33, 200, 3, 1, false, 0});
}

/// A sequence of chunks through attentionKVCache on both sides: outputs per step and the
/// caches after every step.
template <int D>
void checkKVCache(int64_t H, int64_t Hkv, int64_t capacity, int64_t window,
                  const std::vector<int64_t> &chunks) {
  SCOPED_TRACE("D=" + std::to_string(D) + " H=" + std::to_string(H) + "/" +
               std::to_string(Hkv) + " capacity=" + std::to_string(capacity) +
               " window=" + std::to_string(window));
  const float scale = 1.0f / std::sqrt(float(D));
  const int64_t cacheSize = capacity * Hkv * D;
  std::vector<float> cacheK = randomVec(cacheSize, 10), cacheV = randomVec(cacheSize, 11);
  DeviceBuffer<float> gK(cacheK), gV(cacheV);
  DeviceBuffer<int64_t> gPos(1);
  ASSERT_TRUE(gK.ptr && gV.ptr && gPos.ptr);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  int64_t pos = 0;
  uint32_t seed = 100;
  for (int64_t C : chunks) {
    SCOPED_TRACE("pos=" + std::to_string(pos) + " C=" + std::to_string(C));
    std::vector<float> q = randomVec(C * H * D, seed++), k = randomVec(C * Hkv * D, seed++),
                       v = randomVec(C * Hkv * D, seed++), out(C * H * D);
    // The GPU first: the CPU call updates its caches.
    DeviceBuffer<float> gq(q), gk(k), gv(v), gOut(C * H * D);
    ASSERT_TRUE(gq.ptr && gk.ptr && gv.ptr && gOut.ptr);
    gPos.upload({pos});
    cuda::attentionKVCache<D>(gq.ptr, gk.ptr, gv.ptr, gK.ptr, gV.ptr, capacity, gPos.ptr, C, H,
                              Hkv, window, scale, gOut.ptr, stream);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaStreamSynchronize(stream));
    cpu::attentionKVCache(q.data(), k.data(), v.data(), cacheK.data(), cacheV.data(), capacity,
                          pos, C, H, Hkv, D, window, scale, out.data());
    expectClose(gOut.download(), out, "out", kKvRel);
    expectSameBits(gK.download(), cacheK, "cacheK");
    expectSameBits(gV.download(), cacheV, "cacheV");
    pos += C;
  }
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST_F(FlashAttentionGpu, KVCachePrefillThenDecode) {
  checkKVCache<64>(4, 2, 32, 0, {10, 1, 1, 1, 3, 1, 1});
}

TEST_F(FlashAttentionGpu, KVCacheRollingWindow) {
  // window 8 == capacity: a first chunk longer than the cache, then 13 more positions.
  checkKVCache<32>(4, 1, 8, 8, {12, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1});
  checkKVCache<16>(2, 2, 8, 8, {5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
}

TEST_F(FlashAttentionGpu, KVCacheLongDecode) {
  // Many more keys than the 16 key groups of the decode kernel, head dimension 128.
  checkKVCache<128>(8, 2, 300, 0, {200, 1, 1, 37, 1});
}

} // namespace
