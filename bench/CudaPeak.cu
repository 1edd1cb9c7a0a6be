//===- CudaPeak.cu - the GPU's own GEMM peak beside llamac's CUDA kernels --------------===//
//
// llamac-bench-cuda: the figures every CUDA performance claim is a ratio to, measured in the
// same run as the kernels they judge (docs/PERFORMANCE.md, bench/bench-cuda.sh):
//   1. the dense bf16 peak that cuBLASLt reaches: C = A B^T at n^3, bf16 inputs and output,
//      f32 accumulation (the best of `repeats` timed runs after a warm-up);
//   2. llamac's GEMMs (runtime/cuda/CudaGemm.h: f32 storage) at the same size, in each
//      precision, as a fraction of (1);
//   3. flash attention (runtime/cuda/FlashAttention.cuh) forward and backward at the ~1B
//      training shape (batch 4, 2048 tokens, 32 heads, 4 KV heads, head dim 64, causal), in
//      TFLOP/s of the attention's matmuls (forward 4 B H T^2 D / 2 with the causal half,
//      backward 2.5x that) and as a fraction of (1).
//
//   llamac-bench-cuda [n] [repeats]
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cuda/CudaGemm.h"
#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/FlashAttention.cuh"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

using namespace llamac;

namespace {

#define CHECK(call)                                                                        \
  do {                                                                                     \
    cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "llamac-bench-cuda: %s: %s\n", #call, cudaGetErrorString(e_));  \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

/// The best time in seconds of `repeats` runs of `fn` after one warm-up.
double best(int repeats, const std::function<void()> &fn) {
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  fn();
  CHECK(cudaDeviceSynchronize());
  double bestSeconds = 1e30;
  for (int i = 0; i < repeats; ++i) {
    CHECK(cudaEventRecord(start));
    fn();
    CHECK(cudaEventRecord(stop));
    CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    bestSeconds = std::min(bestSeconds, ms / 1e3);
  }
  CHECK(cudaGetLastError());
  return bestSeconds;
}

__global__ void fillKernel(float *p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    unsigned h = unsigned(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    p[i] = (float(h & 0xffff) / 65535.0f - 0.5f) * 0.2f;
  }
}

__global__ void toBf16(const float *in, __nv_bfloat16 *out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

float *randomDevice(size_t n, unsigned seed) {
  float *p = nullptr;
  CHECK(cudaMalloc(&p, n * sizeof(float)));
  fillKernel<<<1024, 256>>>(p, n, seed);
  CHECK(cudaGetLastError());
  return p;
}

/// cuBLASLt's own bf16 GEMM: C[n,n] = A[n,n] B[n,n]^T in bf16 with f32 accumulation.
double bf16Peak(int n, int repeats) {
  size_t count = size_t(n) * n;
  float *af = randomDevice(count, 1), *bf = randomDevice(count, 2);
  __nv_bfloat16 *a, *b, *c;
  CHECK(cudaMalloc(&a, count * 2));
  CHECK(cudaMalloc(&b, count * 2));
  CHECK(cudaMalloc(&c, count * 2));
  toBf16<<<1024, 256>>>(af, a, count);
  toBf16<<<1024, 256>>>(bf, b, count);
  cublasLtHandle_t h;
  cublasLtCreate(&h);
  cublasLtMatmulDesc_t desc;
  cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  cublasOperation_t t = CUBLAS_OP_T, nop = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nop, sizeof nop);
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, n, n, n);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, n, n, n);
  cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, n, n);
  size_t wsBytes = size_t(32) << 20;
  void *ws;
  CHECK(cudaMalloc(&ws, wsBytes));
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsBytes,
                                       sizeof wsBytes);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, lc, pref, 1, &result, &found);
  if (found == 0) {
    std::fprintf(stderr, "llamac-bench-cuda: cuBLASLt has no bf16 algorithm for %d^3\n", n);
    std::exit(1);
  }
  const float alpha = 1, beta = 0;
  double s = best(repeats, [&] {
    cublasLtMatmul(h, desc, &alpha, a, la, b, lb, &beta, c, lc, c, lc, &result.algo, ws, wsBytes,
                   nullptr);
  });
  cudaFree(af), cudaFree(bf), cudaFree(a), cudaFree(b), cudaFree(c), cudaFree(ws);
  cublasLtDestroy(h);
  return 2.0 * n * double(n) * n / s;
}

double llamacGemm(int n, int repeats, cuda::Precision precision) {
  size_t count = size_t(n) * n;
  float *a = randomDevice(count, 3), *b = randomDevice(count, 4), *c = randomDevice(count, 5);
  cuda::GemmEngine engine;
  std::string error;
  if (!engine.init(&error)) {
    std::fprintf(stderr, "llamac-bench-cuda: %s\n", error.c_str());
    std::exit(1);
  }
  engine.setPrecision(precision);
  double s = best(repeats, [&] {
    if (engine.nt(n, n, n, a, b, c, false, 0, nullptr) != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "llamac-bench-cuda: the GEMM failed\n");
      std::exit(1);
    }
  });
  cudaFree(a), cudaFree(b), cudaFree(c);
  return 2.0 * n * double(n) * n / s;
}

/// The same product on bf16 operands with a bf16 result, as mixed-precision programs run
/// every GEMM (f32 sums on the tensor cores).
double llamacGemmBf16(int n, int repeats) {
  size_t count = size_t(n) * n;
  float *af = randomDevice(count, 3), *bf = randomDevice(count, 4);
  uint16_t *a = nullptr, *b = nullptr, *c = nullptr;
  CHECK(cudaMalloc(&a, count * 2));
  CHECK(cudaMalloc(&b, count * 2));
  CHECK(cudaMalloc(&c, count * 2));
  cuda::cast(af, int64_t(count), a, nullptr);
  cuda::cast(bf, int64_t(count), b, nullptr);
  CHECK(cudaDeviceSynchronize());
  cuda::GemmEngine engine;
  std::string error;
  if (!engine.init(&error)) {
    std::fprintf(stderr, "llamac-bench-cuda: %s\n", error.c_str());
    std::exit(1);
  }
  double s = best(repeats, [&] {
    if (engine.nt(n, n, n, a, b, c, false, 0, nullptr) != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "llamac-bench-cuda: the bf16 GEMM failed\n");
      std::exit(1);
    }
  });
  cudaFree(af), cudaFree(bf), cudaFree(a), cudaFree(b), cudaFree(c);
  return 2.0 * n * double(n) * n / s;
}

} // namespace

int main(int argc, char **argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 8192;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
  if (n <= 0 || repeats <= 0) {
    std::fprintf(stderr, "usage: llamac-bench-cuda [n > 0] [repeats > 0]\n");
    return 2;
  }
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("gpu: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  const double peak = bf16Peak(n, repeats);
  std::printf("bf16 peak: cuBLASLt bf16 GEMM %d^3: %.1f TFLOP/s\n", n, peak / 1e12);
  for (auto [p, name] : {std::pair{cuda::Precision::BF16, "bf16"},
                         std::pair{cuda::Precision::TF32, "tf32"},
                         std::pair{cuda::Precision::F32, "f32"}}) {
    double f = llamacGemm(n, repeats, p);
    std::printf("llamac gemm %d^3, f32 storage, %s products: %.1f TFLOP/s (%.2f of bf16 peak)\n",
                n, name, f / 1e12, f / peak);
  }
  double mixed = llamacGemmBf16(n, repeats);
  std::printf("llamac gemm %d^3, bf16 storage (mixed precision): %.1f TFLOP/s (%.2f of bf16 "
              "peak)\n",
              n, mixed / 1e12, mixed / peak);

  // Flash attention at the ~1B training shape.
  const int64_t B = 4, T = 2048, H = 32, Hkv = 4;
  constexpr int D = 64;
  const float scale = 0.125f;
  float *q = randomDevice(size_t(B * T * H * D), 6), *k = randomDevice(size_t(B * T * Hkv * D), 7),
        *v = randomDevice(size_t(B * T * Hkv * D), 8), *o = randomDevice(size_t(B * T * H * D), 9),
        *lse = randomDevice(size_t(B * T * H), 10), *dout = randomDevice(size_t(B * T * H * D), 11),
        *dq = randomDevice(size_t(B * T * H * D), 12), *dk = randomDevice(size_t(B * T * Hkv * D), 13),
        *dv = randomDevice(size_t(B * T * Hkv * D), 14);
  const double fwdFlops = 4.0 * B * H * double(T) * T * D / 2; // causal: half the scores
  double fwd = best(repeats, [&] {
    cuda::flashAttention<D, 128, 64>(q, k, v, B, T, T, H, Hkv, true, 0, scale, o, lse, nullptr);
  });
  std::printf("flash attention forward B=%lld T=%lld H=%lld Hkv=%lld D=%d causal: %.1f TFLOP/s "
              "(%.2f of bf16 peak)\n",
              (long long)B, (long long)T, (long long)H, (long long)Hkv, D, fwdFlops / fwd / 1e12,
              fwdFlops / fwd / peak);
  double bwd = best(repeats, [&] {
    cuda::flashAttentionGrad<D, 64, 64>(q, k, v, o, lse, dout, B, T, T, H, Hkv, true, 0, scale,
                                        dq, dk, dv, nullptr);
  });
  std::printf("flash attention backward, same shape: %.1f TFLOP/s (%.2f of bf16 peak)\n",
              2.5 * fwdFlops / bwd / 1e12, 2.5 * fwdFlops / bwd / peak);
  return 0;
}
