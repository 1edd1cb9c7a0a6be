//===- CudaKernels.cu - the CUDA kernels that generated programs launch --------------===//
//
// The device side of CudaKernels.h, kernel for kernel the semantics of runtime/cpu/
// CpuKernels.cpp (and so of the reference interpreter). Every host function only launches
// on its stream: no synchronisation and no host read of device data, so that an entry
// function can be captured in a CUDA graph; the scalars that the program computes are read
// by the kernels. Sizes and indices are int64 throughout (a vocabulary times the rows, or a
// 7B weight, passes 2^31 elements).
//
// Two shapes of kernel:
//   - elementwise: a grid-stride loop, one element per thread per iteration, the grid capped
//     at kMaxBlocks (enough to fill any GPU; the loop covers the rest);
//   - row kernels (norms, cross-entropy): one block of kThreads per row (rows strided over
//     the grid), threads striding over the row and combining with warp shuffles.
//
// As on the CPU, sums that decide a normalisation or a loss are accumulated in double, and
// every reduction runs in an order fixed by the launch shape alone (shuffle trees, per-block
// partials summed in index order), never with float atomics: results repeat bit for bit.
// The one exception to double sums is the cross-entropy's per-thread running sum of
// exponentials (f32, rescaled online; within 1e-6 relative of the CPU's double sum).
// exp, log and tanh are CUDA's accurate f32 functions (no fast-math intrinsics), within a
// few ulps of the CPU's (expApprox among them); unlike expApprox, which saturates at
// exp(88), expf overflows to inf past 88.7, as the interpreter's exp does.
//
// Temporary memory (the norm's per-row factors and partial sums, the gradient norm's
// partials, the cross-entropy's gradient factor) comes from scratch().
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cuda/CudaKernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace llamac::cuda {

namespace {

/// Threads per block of the elementwise and row kernels (a multiple of 32).
constexpr int kThreads = 256;
/// The grid of a grid-stride kernel: 16M threads, more than any GPU holds at once.
constexpr int64_t kMaxBlocks = int64_t(1) << 16;
/// Row kernels: one block per row up to this many rows, then blocks stride over rows.
constexpr int64_t kMaxRowBlocks = int64_t(1) << 30;
/// Threads of the single-block kernels that finish a reduction (sum partials, count rows).
constexpr int kFinishThreads = 1024;
constexpr double kPi = 3.14159265358979323846;

int elementBlocks(int64_t n) {
  return int(std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks));
}
int rowBlocks(int64_t rows) { return int(std::min<int64_t>(rows, kMaxRowBlocks)); }

__device__ inline int64_t firstThread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline int64_t gridThreads() { return int64_t(gridDim.x) * blockDim.x; }
__host__ __device__ inline int64_t min64(int64_t a, int64_t b) { return b < a ? b : a; }
__host__ __device__ inline int64_t max64(int64_t a, int64_t b) { return a < b ? b : a; }

//===----------------------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------------------===//

/// The sum of v over the warp, in lane 0 (a fixed shuffle tree).
template <typename T> __device__ inline T warpSum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

/// The sum of v over the block, returned to every thread. Warp sums go through shared
/// memory and every warp then sums them in the same order, so all threads get the same
/// value and the result depends on the block size only. Every thread of the block must
/// call it (it synchronises); blockDim.x a multiple of 32, at most 1024.
template <typename T> __device__ T blockSum(T v) {
  __shared__ T warpTotals[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  if (lane == 0)
    warpTotals[warp] = v;
  __syncthreads();
  T total = lane < warps ? warpTotals[lane] : T(0);
  total = warpSum(total);
  total = __shfl_sync(0xffffffffu, total, 0);
  __syncthreads(); // warpTotals is free for the next call
  return total;
}

/// A running maximum and the sum of exp(x - max) (the online log-sum-exp).
struct MaxSum {
  float max, sum;
};

/// Merges two partial log-sum-exps. A side whose maximum is -inf has seen no finite value
/// and adds nothing (exp(-inf - -inf) would be NaN). Two +inf maxima give a NaN sum, which
/// the caller never reads: an infinite maximum is the row's lse on its own.
__device__ inline MaxSum mergeMaxSum(MaxSum a, MaxSum b) {
  float m = fmaxf(a.max, b.max);
  float sa = a.max == -INFINITY ? 0.0f : a.sum * expf(a.max - m);
  float sb = b.max == -INFINITY ? 0.0f : b.sum * expf(b.max - m);
  return {m, sa + sb};
}

/// blockSum for MaxSum: the same fixed tree.
__device__ MaxSum blockMaxSum(MaxSum v) {
  __shared__ MaxSum warpTotals[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum other{__shfl_down_sync(0xffffffffu, v.max, offset),
                 __shfl_down_sync(0xffffffffu, v.sum, offset)};
    v = mergeMaxSum(v, other);
  }
  if (lane == 0)
    warpTotals[warp] = v;
  __syncthreads();
  MaxSum total = lane < warps ? warpTotals[lane] : MaxSum{-INFINITY, 0.0f};
  for (int offset = 16; offset > 0; offset >>= 1) {
    MaxSum other{__shfl_down_sync(0xffffffffu, total.max, offset),
                 __shfl_down_sync(0xffffffffu, total.sum, offset)};
    total = mergeMaxSum(total, other);
  }
  total.max = __shfl_sync(0xffffffffu, total.max, 0);
  total.sum = __shfl_sync(0xffffffffu, total.sum, 0);
  __syncthreads();
  return total;
}

/// Stores `position` into *badIndex if it is the smallest bad position so far (the caller
/// set *badIndex to -1): a compare-and-swap from -1, retried while a larger position holds
/// it, so the result is the first bad position whatever the order the blocks ran in.
__device__ void recordBad(int64_t *badIndex, int64_t position) {
  if (!badIndex)
    return;
  auto *slot = reinterpret_cast<unsigned long long *>(badIndex);
  auto mine = static_cast<unsigned long long>(position);
  unsigned long long seen = atomicCAS(slot, ~0ull, mine);
  while (seen != ~0ull && static_cast<long long>(seen) > position) {
    unsigned long long before = atomicCAS(slot, seen, mine);
    if (before == seen)
      break;
    seen = before;
  }
}

//===----------------------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------------------===//

/// Grid-stride: out[i] = value.
__global__ void fillKernel(float *out, int64_t n, float value) {
  for (int64_t i = firstThread(); i < n; i += gridThreads())
    out[i] = value;
}

/// Grid-stride over the rows x cols elements (row = i / cols), so that one long row or many
/// short ones spread alike.
template <class T>
__global__ void copyRowsKernel(const T *in, int64_t rows, int64_t cols, int64_t inStride,
                               int64_t outStride, T *out) {
  int64_t n = rows * cols;
  for (int64_t i = firstThread(); i < n; i += gridThreads()) {
    int64_t r = i / cols, c = i - r * cols;
    out[r * outStride + c] = in[r * inStride + c];
  }
}

//===----------------------------------------------------------------------------------===//
// Mixed precision
//===----------------------------------------------------------------------------------===//

/// The bf16 bits of the f32 with these bits, as cpu::cast: adding 0x7fff and the lowest
/// kept bit rounds to nearest with ties to even (a carry into the exponent gives the next
/// binade, or inf past the largest finite value). A NaN keeps its sign and top payload bits
/// with the quiet bit set: the addition could carry its payload away into an inf.
__device__ inline uint32_t bf16Bits(uint32_t bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return (bits >> 16) | 0x40u;
  return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
}

/// Grid-stride: out[i] = bf16 of the f32 bits in[i]. With Vector, four elements per
/// iteration, a 16-byte load and an 8-byte store (element 0 in the low half of each word,
/// the device being little-endian), then the n % 4 left over one by one; without it (the
/// pointers not so aligned), one by one throughout.
template <bool Vector> __global__ void toBf16Kernel(const uint32_t *in, int64_t n, uint16_t *out) {
  int64_t done = 0;
  if constexpr (Vector) {
    int64_t groups = n / 4;
    const auto *in4 = reinterpret_cast<const uint4 *>(in);
    auto *out4 = reinterpret_cast<uint2 *>(out);
    for (int64_t g = firstThread(); g < groups; g += gridThreads()) {
      uint4 v = in4[g];
      out4[g] = make_uint2(bf16Bits(v.x) | bf16Bits(v.y) << 16,
                           bf16Bits(v.z) | bf16Bits(v.w) << 16);
    }
    done = groups * 4;
  }
  for (int64_t i = done + firstThread(); i < n; i += gridThreads())
    out[i] = uint16_t(bf16Bits(in[i]));
}

/// Grid-stride: the f32 bits of bf16 in[i] (its bits in the upper half, exact), grouped as
/// toBf16Kernel's: an 8-byte load and a 16-byte store of four elements with Vector.
template <bool Vector>
__global__ void fromBf16Kernel(const uint16_t *in, int64_t n, uint32_t *out) {
  int64_t done = 0;
  if constexpr (Vector) {
    int64_t groups = n / 4;
    const auto *in4 = reinterpret_cast<const uint2 *>(in);
    auto *out4 = reinterpret_cast<uint4 *>(out);
    for (int64_t g = firstThread(); g < groups; g += gridThreads()) {
      uint2 v = in4[g];
      out4[g] = make_uint4(v.x << 16, v.x & 0xffff0000u, v.y << 16, v.y & 0xffff0000u);
    }
    done = groups * 4;
  }
  for (int64_t i = done + firstThread(); i < n; i += gridThreads())
    out[i] = uint32_t(in[i]) << 16;
}

bool alignedTo(const void *p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

//===----------------------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------------------===//

// The numbering of cpu::Binary and cpu::Unary.
enum BinaryOp : int32_t { kAdd, kSub, kMul, kDiv, kMax, kMin };
enum UnaryOp : int32_t { kNeg, kExp, kLog, kSqrt, kRsqrt, kSilu, kSigmoid, kTanh, kAbs };

/// How b is indexed: b[i] (bSize >= n), b[0], or b[i % bSize].
enum Broadcast : int { kElementwise, kScalar, kRepeat };

template <int32_t Op> __device__ inline float binaryOp(float x, float y) {
  if constexpr (Op == kAdd)
    return x + y;
  else if constexpr (Op == kSub)
    return x - y;
  else if constexpr (Op == kMul)
    return x * y;
  else if constexpr (Op == kDiv)
    return x / y;
  else if constexpr (Op == kMax)
    return x > y ? x : y; // as the CPU: a NaN in x yields y
  else
    return x < y ? x : y;
}

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <int32_t Op> __device__ inline float unaryOp(float x) {
  if constexpr (Op == kNeg)
    return -x;
  else if constexpr (Op == kExp)
    return expf(x);
  else if constexpr (Op == kLog)
    return logf(x);
  else if constexpr (Op == kSqrt)
    return sqrtf(x);
  else if constexpr (Op == kRsqrt)
    return 1.0f / sqrtf(x); // not rsqrtf: the CPU divides by the rounded square root
  else if constexpr (Op == kSilu)
    return x * sigmoid(x);
  else if constexpr (Op == kSigmoid)
    return sigmoid(x);
  else if constexpr (Op == kTanh)
    return tanhf(x);
  else
    return fabsf(x);
}

/// Grid-stride: out[i] = a[i] op b[...], b indexed as Mode says.
template <int32_t Op, int Mode>
__global__ void binaryKernel(const float *a, const float *b, int64_t n, int64_t bSize,
                             float *out) {
  float scalar = Mode == kScalar ? b[0] : 0.0f;
  for (int64_t i = firstThread(); i < n; i += gridThreads()) {
    float y;
    if constexpr (Mode == kElementwise)
      y = b[i];
    else if constexpr (Mode == kScalar)
      y = scalar;
    else
      y = b[i % bSize];
    out[i] = binaryOp<Op>(a[i], y);
  }
}

template <int32_t Op>
void launchBinary(const float *a, const float *b, int64_t n, int64_t bSize, float *out,
                  cudaStream_t stream) {
  int blocks = elementBlocks(n);
  if (bSize >= n) // i % bSize == i
    binaryKernel<Op, kElementwise><<<blocks, kThreads, 0, stream>>>(a, b, n, bSize, out);
  else if (bSize == 1)
    binaryKernel<Op, kScalar><<<blocks, kThreads, 0, stream>>>(a, b, n, bSize, out);
  else
    binaryKernel<Op, kRepeat><<<blocks, kThreads, 0, stream>>>(a, b, n, bSize, out);
}

/// Grid-stride: out[i] = op(in[i]).
template <int32_t Op> __global__ void unaryKernel(const float *in, int64_t n, float *out) {
  for (int64_t i = firstThread(); i < n; i += gridThreads())
    out[i] = unaryOp<Op>(in[i]);
}

template <int32_t Op>
void launchUnary(const float *in, int64_t n, float *out, cudaStream_t stream) {
  unaryKernel<Op><<<elementBlocks(n), kThreads, 0, stream>>>(in, n, out);
}

/// Grid-stride: out[i] = in[i] * s.
__global__ void scaleKernel(const float *in, int64_t n, float s, float *out) {
  for (int64_t i = firstThread(); i < n; i += gridThreads())
    out[i] = in[i] * s;
}

//===----------------------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------------------===//

/// One block per position (strided over the grid), threads over the row: the table row of
/// the token, or zeros and *badIndex for a token outside [0, vocab).
__global__ void embeddingKernel(const float *table, const int32_t *tokens, int64_t n,
                                int64_t dim, int64_t vocab, float *out, int64_t *badIndex) {
  for (int64_t p = blockIdx.x; p < n; p += gridDim.x) {
    int64_t id = tokens[p];
    float *o = out + p * dim;
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0)
        recordBad(badIndex, p);
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        o[c] = 0.0f;
      continue;
    }
    const float *row = table + id * dim;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
      o[c] = row[c];
  }
}

/// Block (x, y) owns the vocabulary rows [x * rowsPerBlock, ...) and the columns
/// [y * kThreads, ...), one column per thread. It zeroes its rows, then scans the tokens a
/// tile of kThreads positions at a time: the positions whose token it owns are compacted in
/// position order (warp ballots, warps in order) into shared memory, and each thread adds
/// their gradient rows into its column one after the other. Every output element is thus
/// summed by one thread in position order, starting from zero: the CPU's sum exactly, with
/// no atomics. Out-of-range tokens match no block.
__global__ void embeddingGradKernel(const int32_t *tokens, const float *grad, int64_t n,
                                    int64_t dim, int64_t vocab, int64_t rowsPerBlock,
                                    float *out) {
  __shared__ int64_t matchPosition[kThreads];
  __shared__ int32_t matchToken[kThreads];
  __shared__ int warpMatches[kThreads / 32];
  int64_t v0 = int64_t(blockIdx.x) * rowsPerBlock, v1 = min64(vocab, v0 + rowsPerBlock);
  int64_t c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  bool ownsColumn = c < dim;
  if (ownsColumn)
    for (int64_t v = v0; v < v1; ++v)
      out[v * dim + c] = 0.0f;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t base = 0; base < n; base += kThreads) {
    int64_t p = base + threadIdx.x;
    int32_t id = p < n ? tokens[p] : -1;
    bool match = p < n && id >= v0 && id < v1;
    unsigned mask = __ballot_sync(0xffffffffu, match);
    if (lane == 0)
      warpMatches[warp] = __popc(mask);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      before += w < warp ? warpMatches[w] : 0;
      total += warpMatches[w];
    }
    if (match) {
      int slot = before + __popc(mask & ((1u << lane) - 1u));
      matchPosition[slot] = p;
      matchToken[slot] = id;
    }
    __syncthreads();
    if (ownsColumn)
      for (int j = 0; j < total; ++j)
        out[int64_t(matchToken[j]) * dim + c] += grad[matchPosition[j] * dim + c];
    __syncthreads(); // the next tile overwrites the lists
  }
}

//===----------------------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------------------===//

/// One block per row: the sum of squares in double over the block, then y = s * inv * w
/// with s = x (rms_norm) or s = x + residual, also stored into sum (add_rms_norm).
__global__ void rmsNormKernel(const float *x, const float *residual, const float *w,
                              int64_t rows, int64_t dim, double eps, float *sum, float *y) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * dim;
    float *yr = y + r * dim;
    double ss = 0;
    if (residual) {
      const float *rr = residual + r * dim;
      float *sr = sum + r * dim;
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        float s = xr[i] + rr[i];
        sr[i] = s;
        ss += double(s) * double(s);
      }
    } else {
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
        ss += double(xr[i]) * double(xr[i]);
    }
    ss = blockSum(ss);
    float inv = float(1.0 / sqrt(ss / double(dim) + eps));
    // Each thread reads back the elements of sum that it wrote itself.
    const float *sr = residual ? sum + r * dim : xr;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
      yr[i] = sr[i] * inv * w[i];
  }
}

/// The input gradient, one block per row: sum x^2 and sum dy w x in double over the block,
/// then dx = inv dy w - inv^3 mean(dy w x) x (+ dsum); inv[r] (double) kept for the weight
/// gradient.
__global__ void rmsNormGradRowsKernel(const float *x, const float *w, const float *dy,
                                      const float *dsum, int64_t rows, int64_t dim,
                                      double eps, float *dx, double *inv) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * dim, *gr = dy + r * dim;
    double ss = 0, gx = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      double xv = xr[i];
      ss += xv * xv;
      gx += double(gr[i]) * double(w[i]) * xv;
    }
    ss = blockSum(ss);
    gx = blockSum(gx);
    double rowInv = 1.0 / sqrt(ss / double(dim) + eps);
    if (threadIdx.x == 0)
      inv[r] = rowInv;
    float a = float(rowInv), b = float(rowInv * rowInv * rowInv * gx / double(dim));
    float *out = dx + r * dim;
    if (dsum) {
      const float *ds = dsum + r * dim;
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
        out[i] = ds[i] + a * gr[i] * w[i] - b * xr[i];
    } else {
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
        out[i] = a * gr[i] * w[i] - b * xr[i];
    }
  }
}

/// The weight gradient's first stage: block (x, y) sums dy x inv in double over the rows of
/// chunk y, one column per thread (columns x * kThreads + thread), rows in order, into
/// partial[y, column].
__global__ void rmsNormWeightPartialsKernel(const float *x, const float *dy, const double *inv,
                                            int64_t rows, int64_t dim, int64_t rowsPerChunk,
                                            double *partial) {
  int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim)
    return;
  int64_t r0 = int64_t(blockIdx.y) * rowsPerChunk, r1 = min64(rows, r0 + rowsPerChunk);
  double acc = 0;
  for (int64_t r = r0; r < r1; ++r)
    acc += double(dy[r * dim + c]) * double(x[r * dim + c]) * inv[r];
  partial[int64_t(blockIdx.y) * dim + c] = acc;
}

/// The second stage: one thread per column sums the chunks' partials in chunk order.
__global__ void rmsNormWeightSumKernel(const double *partial, int64_t chunks, int64_t dim,
                                       float *dw) {
  for (int64_t c = firstThread(); c < dim; c += gridThreads()) {
    double acc = 0;
    for (int64_t k = 0; k < chunks; ++k)
      acc += partial[k * dim + c];
    dw[c] = float(acc);
  }
}

/// The rows of one chunk of the weight gradient's partial sums: enough chunks to fill the
/// GPU with blocks, few enough that the partials stay small.
constexpr int64_t kNormChunkRows = 64;
constexpr int64_t kMaxNormChunks = 256;

/// rmsNormGrad and addRmsNormGrad: scratch holds inv[rows] then partial[chunks, dim].
void launchRmsNormGrad(const float *x, const float *w, const float *dy, const float *dsum,
                       int64_t rows, int64_t dim, double eps, float *dx, float *dw,
                       cudaStream_t stream) {
  if (dim <= 0)
    return;
  int64_t chunks = std::min((rows + kNormChunkRows - 1) / kNormChunkRows, kMaxNormChunks);
  int64_t rowsPerChunk = chunks > 0 ? (rows + chunks - 1) / chunks : 0;
  if (chunks == 0) { // no rows: dw is a sum of nothing
    fillKernel<<<elementBlocks(dim), kThreads, 0, stream>>>(dw, dim, 0.0f);
    return;
  }
  auto *inv = static_cast<double *>(scratch(sizeof(double) * (rows + chunks * dim)));
  if (!inv)
    return; // cudaMalloc's error is what the caller's cudaGetLastError reports
  double *partial = inv + rows;
  rmsNormGradRowsKernel<<<rowBlocks(rows), kThreads, 0, stream>>>(x, w, dy, dsum, rows, dim,
                                                                  eps, dx, inv);
  dim3 grid(unsigned((dim + kThreads - 1) / kThreads), unsigned(chunks));
  rmsNormWeightPartialsKernel<<<grid, kThreads, 0, stream>>>(x, dy, inv, rows, dim,
                                                             rowsPerChunk, partial);
  rmsNormWeightSumKernel<<<elementBlocks(dim), kThreads, 0, stream>>>(partial, chunks, dim, dw);
}

//===----------------------------------------------------------------------------------===//
// Fused feed-forward and attention input
//===----------------------------------------------------------------------------------===//

/// Grid-stride over rows x F: y = gate * sigmoid(gate) * up.
__global__ void swigluKernel(const float *x, int64_t rows, int64_t F, float *y) {
  int64_t n = rows * F;
  for (int64_t i = firstThread(); i < n; i += gridThreads()) {
    int64_t r = i / F, c = i - r * F;
    float gate = x[r * 2 * F + c], up = x[r * 2 * F + F + c];
    y[i] = gate * sigmoid(gate) * up;
  }
}

/// Grid-stride over rows x F: both halves of dx for one (row, column).
__global__ void swigluGradKernel(const float *x, const float *dy, int64_t rows, int64_t F,
                                 float *dx) {
  int64_t n = rows * F;
  for (int64_t i = firstThread(); i < n; i += gridThreads()) {
    int64_t r = i / F, c = i - r * F;
    int64_t at = r * 2 * F + c;
    float gate = x[at], up = x[at + F], g = dy[i];
    float s = sigmoid(gate);
    // silu'(x) = s (1 + x (1 - s)), applied to the cotangent of silu(gate), dy * up.
    dx[at] = g * up * s * (1.0f + gate * (1.0f - s));
    dx[at + F] = g * gate * s;
  }
}

/// cos and sin of RoPE's angle for position `position` and pair i, in double as the CPU's
/// ropeTables, rounded to f32.
__device__ inline void ropeAngle(int64_t position, int64_t i, int64_t D, double theta,
                                 float &c, float &s) {
  double freq = pow(theta, -2.0 * double(i) / double(D));
  double angle = double(position) * freq;
  c = float(cos(angle));
  s = float(sin(angle));
}

/// Grid-stride over (token, pair i) with pairs = ceil(D / 2): the thread computes the
/// pair's angle once and rotates pair i of every q and k head of the token (sign -1 rotates
/// back), and copies elements 2i and 2i + 1 of every v head. Forward reads x and writes
/// q, k, v; backward (Grad) reads dq, dk, dv and writes dx.
template <bool Grad>
__global__ void qkvRopeKernel(const float *x, const float *dq, const float *dk, const float *dv,
                              int64_t BT, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                              double theta, const int64_t *offset, float *q, float *k,
                              float *v, float *dx) {
  int64_t pairs = (D + 1) / 2, half = D / 2, width = (H + 2 * Hkv) * D;
  int64_t start = offset ? *offset : 0;
  int64_t n = BT * pairs;
  for (int64_t idx = firstThread(); idx < n; idx += gridThreads()) {
    int64_t bt = idx / pairs, i = idx - bt * pairs;
    int64_t e0 = 2 * i, e1 = 2 * i + 1;
    if (i < half) { // an odd D's last channel is not rotated (nor written), as on the CPU
      float c, s;
      ropeAngle(start + bt % T, i, D, theta, c, s);
      if constexpr (Grad)
        s = -s;
      for (int64_t h = 0; h < H + Hkv; ++h) {
        const float *in;
        float *out;
        if constexpr (!Grad) {
          in = x + bt * width + h * D;
          out = h < H ? q + (bt * H + h) * D : k + (bt * Hkv + h - H) * D;
        } else {
          in = h < H ? dq + (bt * H + h) * D : dk + (bt * Hkv + h - H) * D;
          out = dx + bt * width + h * D;
        }
        float x0 = in[e0], x1 = in[e1];
        out[e0] = x0 * c - x1 * s;
        out[e1] = x0 * s + x1 * c;
      }
    }
    for (int64_t h = 0; h < Hkv; ++h) {
      float *to;
      const float *from;
      if constexpr (!Grad) {
        from = x + bt * width + (H + Hkv + h) * D;
        to = v + (bt * Hkv + h) * D;
      } else {
        from = dv + (bt * Hkv + h) * D;
        to = dx + bt * width + (H + Hkv + h) * D;
      }
      to[e0] = from[e0];
      if (e1 < D)
        to[e1] = from[e1];
    }
  }
}

//===----------------------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------------------===//

/// One block per row: an online max and sum of exp(x - max) per thread in one pass over the
/// row, merged over the block; lse = max + log(sum) in double (the maximum itself when it
/// is infinite, as the CPU). Thread 0 validates the row's target.
__global__ void crossEntropyRowsKernel(const float *logits, const int32_t *targets,
                                       int64_t rows, int64_t vocab, int64_t ignoreIndex,
                                       float *lse, int64_t *badIndex) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *row = logits + r * vocab;
    MaxSum acc{-INFINITY, 0.0f};
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      float xv = row[i];
      if (xv > acc.max) {
        acc.sum = (acc.max == -INFINITY ? 0.0f : acc.sum * expf(acc.max - xv)) + 1.0f;
        acc.max = xv;
      } else if (xv != -INFINITY) {
        acc.sum += expf(xv - acc.max);
      }
    }
    acc = blockMaxSum(acc);
    if (threadIdx.x == 0) {
      lse[r] = isinf(acc.max) ? acc.max : float(double(acc.max) + log(double(acc.sum)));
      int64_t target = targets[r];
      if (target != ignoreIndex && (target < 0 || target >= vocab))
        recordBad(badIndex, r);
    }
  }
}

/// One block: the mean of lse - logit[target] over counted rows, each term in double, the
/// sum in the block's fixed order. Rows with a bad target are left out (already reported).
__global__ void __launch_bounds__(kFinishThreads)
    crossEntropyLossKernel(const float *logits, const int32_t *targets, const float *lse,
                           int64_t rows, int64_t vocab, int64_t ignoreIndex, float *loss) {
  double total = 0;
  long long counted = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    int64_t target = targets[r];
    if (target == ignoreIndex || target < 0 || target >= vocab)
      continue;
    total += double(lse[r]) - double(logits[r * vocab + target]);
    ++counted;
  }
  total = blockSum(total);
  counted = blockSum(counted);
  if (threadIdx.x == 0)
    *loss = counted ? float(total / double(counted)) : 0.0f;
}

/// One block: factor = *grad / count over rows whose target is not ignoreIndex (0 if none).
__global__ void __launch_bounds__(kFinishThreads)
    crossEntropyFactorKernel(const int32_t *targets, int64_t rows, int64_t ignoreIndex,
                             const float *grad, float *factor) {
  long long count = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    count += int64_t(targets[r]) != ignoreIndex;
  count = blockSum(count);
  if (threadIdx.x == 0)
    *factor = count ? float(double(*grad) / double(count)) : 0.0f;
}

/// One block per row, threads over the vocabulary: factor * (exp(x - lse) - onehot), or
/// zeros for an ignored row.
__global__ void crossEntropyGradKernel(const float *logits, const int32_t *targets,
                                       const float *lse, const float *factorAt, int64_t rows,
                                       int64_t vocab, int64_t ignoreIndex, float *dlogits) {
  float factor = *factorAt;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float *out = dlogits + r * vocab;
    int64_t target = targets[r];
    if (target == ignoreIndex) {
      for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
        out[i] = 0.0f;
      continue;
    }
    const float *row = logits + r * vocab;
    float rowLse = lse[r];
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      float g = factor * expf(row[i] - rowLse);
      if (i == target) // never for an out-of-range target
        g -= factor;
      out[i] = g;
    }
  }
}

//===----------------------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------------------===//

/// One thread: cpu::lrSchedule on the device scalars.
__global__ void lrScheduleKernel(const int64_t *stepAt, const float *peakAt,
                                 const int64_t *totalAt, int64_t warmup, double floorFraction,
                                 float *out) {
  int64_t step = *stepAt, total = *totalAt;
  double peak = *peakAt;
  if (step < warmup) {
    *out = float(peak * double(step + 1) / double(warmup));
    return;
  }
  double progress = double(step - warmup) / double(max64(1, total - warmup));
  progress = progress < 1.0 ? progress : 1.0; // std::min(1.0, progress), NaN included
  *out = float(peak * (floorFraction +
                       (1.0 - floorFraction) * (1.0 + cos(kPi * progress)) / 2.0));
}

/// Gradients per sum-of-squares launch: their pointers, sizes and first blocks travel as a
/// kernel parameter (about 1.5 KB, under the 4 KB limit).
constexpr int kClipBatch = 64;
/// Elements per block of the sum of squares (64 per thread).
constexpr int64_t kClipBlockElements = 64 * kThreads;

struct ClipBatch {
  const float *grads[kClipBatch];
  int64_t sizes[kClipBatch];
  /// Gradient j owns the blocks [firstBlock[j], firstBlock[j + 1]) of the launch.
  int64_t firstBlock[kClipBatch + 1];
  int count;
};

/// Block b finds its gradient (the last with firstBlock <= b; empty gradients own no block)
/// and sums the squares of its kClipBlockElements elements in double into partial[b]. The
/// block-to-elements map depends on the sizes only, so the partials are deterministic.
__global__ void sumSquaresKernel(ClipBatch batch, double *partial) {
  int64_t block = blockIdx.x;
  int j = 0;
  while (j + 1 < batch.count && batch.firstBlock[j + 1] <= block)
    ++j;
  const float *g = batch.grads[j];
  int64_t begin = (block - batch.firstBlock[j]) * kClipBlockElements;
  int64_t end = min64(batch.sizes[j], begin + kClipBlockElements);
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    double v = g[i];
    acc += v * v;
  }
  acc = blockSum(acc);
  if (threadIdx.x == 0)
    partial[block] = acc;
}

/// One block: the partials summed in a fixed order, then norm and coefficient as
/// cpu::gradClip.
__global__ void __launch_bounds__(kFinishThreads)
    gradClipFinishKernel(const double *partial, int64_t numPartials, const float *countAt,
                         double maxNorm, float *coefficient, float *norm) {
  double ss = 0;
  for (int64_t i = threadIdx.x; i < numPartials; i += blockDim.x)
    ss += partial[i];
  ss = blockSum(ss);
  if (threadIdx.x == 0) {
    // sum (g / count)^2 = sum g^2 / count^2.
    double c = double(*countAt), globalNorm = sqrt(ss) / c;
    double ratio = maxNorm / (globalNorm + 1e-6);
    *norm = float(globalNorm);
    *coefficient = float((ratio < 1.0 ? ratio : 1.0) / c); // std::min(1.0, ratio)
  }
}

/// Grid-stride: the AdamW update per element in double, as cpu::adamw. Each thread derives
/// the bias corrections from the device step once.
__global__ void adamwKernel(float *param, const float *grad, float *m, float *v, int64_t n,
                            const float *lrAt, const int64_t *stepAt, const float *gradScaleAt,
                            double beta1, double beta2, double eps, double weightDecay) {
  double t = double(*stepAt + 1);
  double rc1 = 1.0 / (1.0 - pow(beta1, t)), rc2 = 1.0 / (1.0 - pow(beta2, t));
  double lr = *lrAt, gs = *gradScaleAt;
  for (int64_t i = firstThread(); i < n; i += gridThreads()) {
    double g = double(grad[i]) * gs;
    double m1 = beta1 * double(m[i]) + (1.0 - beta1) * g;
    double v1 = beta2 * double(v[i]) + (1.0 - beta2) * g * g;
    double update = m1 * rc1 / (sqrt(v1 * rc2) + eps);
    double p = param[i];
    param[i] = float(p - lr * (update + weightDecay * p));
    m[i] = float(m1);
    v[i] = float(v1);
  }
}

} // namespace

//===----------------------------------------------------------------------------------===//
// Scratch
//===----------------------------------------------------------------------------------===//

namespace {
uint64_t scratchGrowths = 0;
} // namespace

uint64_t scratchGeneration() { return scratchGrowths; }

void *scratch(size_t bytes) {
  static void *buffer = nullptr;
  static size_t capacity = 0;
  if (buffer && bytes <= capacity)
    return buffer;
  // Growing: kernels queued earlier may still use the old buffer, so wait for them before
  // freeing it (the only synchronisation of the library). Sizes are rounded up to 1 MiB so
  // that small requests do not grow the buffer one by one.
  if (buffer) {
    cudaDeviceSynchronize();
    cudaFree(buffer);
    buffer = nullptr;
    capacity = 0;
  }
  constexpr size_t kGranule = size_t(1) << 20;
  size_t size = (std::max<size_t>(bytes, 1) + kGranule - 1) / kGranule * kGranule;
  void *fresh = nullptr;
  if (cudaMalloc(&fresh, size) != cudaSuccess)
    return nullptr;
  buffer = fresh;
  capacity = size;
  ++scratchGrowths;
  return buffer;
}

//===----------------------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------------------===//

void fill(float *out, int64_t n, float value, cudaStream_t stream) {
  if (n > 0)
    fillKernel<<<elementBlocks(n), kThreads, 0, stream>>>(out, n, value);
}

void copy(const float *in, int64_t n, float *out, cudaStream_t stream) {
  if (n > 0)
    cudaMemcpyAsync(out, in, sizeof(float) * size_t(n), cudaMemcpyDeviceToDevice, stream);
}

void copyRows(const float *in, int64_t rows, int64_t cols, int64_t inStride, int64_t outStride,
              float *out, cudaStream_t stream) {
  if (rows > 0 && cols > 0)
    copyRowsKernel<<<elementBlocks(rows * cols), kThreads, 0, stream>>>(in, rows, cols,
                                                                        inStride, outStride, out);
}

void copyRows(const uint16_t *in, int64_t rows, int64_t cols, int64_t inStride,
              int64_t outStride, uint16_t *out, cudaStream_t stream) {
  if (rows > 0 && cols > 0)
    copyRowsKernel<<<elementBlocks(rows * cols), kThreads, 0, stream>>>(in, rows, cols,
                                                                        inStride, outStride, out);
}

//===----------------------------------------------------------------------------------===//
// Mixed precision
//===----------------------------------------------------------------------------------===//

// Both directions move bits as integers: no float operation, so --use_fast_math's flushing
// of subnormals cannot change a value. The vector kernels need the f32 side 16-byte and the
// bf16 side 8-byte aligned, as the memory plan's buffers are (views into them may not be:
// those go one by one).

void cast(const float *in, int64_t n, uint16_t *out, cudaStream_t stream) {
  if (n <= 0)
    return;
  const auto *bits = reinterpret_cast<const uint32_t *>(in);
  if (alignedTo(in, 16) && alignedTo(out, 8))
    toBf16Kernel<true><<<elementBlocks((n + 3) / 4), kThreads, 0, stream>>>(bits, n, out);
  else
    toBf16Kernel<false><<<elementBlocks(n), kThreads, 0, stream>>>(bits, n, out);
}

void cast(const uint16_t *in, int64_t n, float *out, cudaStream_t stream) {
  if (n <= 0)
    return;
  auto *bits = reinterpret_cast<uint32_t *>(out);
  if (alignedTo(in, 8) && alignedTo(out, 16))
    fromBf16Kernel<true><<<elementBlocks((n + 3) / 4), kThreads, 0, stream>>>(in, n, bits);
  else
    fromBf16Kernel<false><<<elementBlocks(n), kThreads, 0, stream>>>(in, n, bits);
}

//===----------------------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------------------===//

void binary(int32_t op, const float *a, const float *b, int64_t n, int64_t bSize, float *out,
            cudaStream_t stream) {
  if (n <= 0 || bSize <= 0)
    return;
  switch (op) {
  case kAdd:
    return launchBinary<kAdd>(a, b, n, bSize, out, stream);
  case kSub:
    return launchBinary<kSub>(a, b, n, bSize, out, stream);
  case kMul:
    return launchBinary<kMul>(a, b, n, bSize, out, stream);
  case kDiv:
    return launchBinary<kDiv>(a, b, n, bSize, out, stream);
  case kMax:
    return launchBinary<kMax>(a, b, n, bSize, out, stream);
  case kMin:
    return launchBinary<kMin>(a, b, n, bSize, out, stream);
  default:
    return; // the emitter writes only the numbers above
  }
}

void unary(int32_t op, const float *in, int64_t n, float *out, cudaStream_t stream) {
  if (n <= 0)
    return;
  switch (op) {
  case kNeg:
    return launchUnary<kNeg>(in, n, out, stream);
  case kExp:
    return launchUnary<kExp>(in, n, out, stream);
  case kLog:
    return launchUnary<kLog>(in, n, out, stream);
  case kSqrt:
    return launchUnary<kSqrt>(in, n, out, stream);
  case kRsqrt:
    return launchUnary<kRsqrt>(in, n, out, stream);
  case kSilu:
    return launchUnary<kSilu>(in, n, out, stream);
  case kSigmoid:
    return launchUnary<kSigmoid>(in, n, out, stream);
  case kTanh:
    return launchUnary<kTanh>(in, n, out, stream);
  case kAbs:
    return launchUnary<kAbs>(in, n, out, stream);
  default:
    return;
  }
}

void scale(const float *in, int64_t n, float s, float *out, cudaStream_t stream) {
  if (n > 0)
    scaleKernel<<<elementBlocks(n), kThreads, 0, stream>>>(in, n, s, out);
}

//===----------------------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------------------===//

void embedding(const float *table, const int32_t *tokens, int64_t n, int64_t dim, int64_t vocab,
               float *out, int64_t *badIndex, cudaStream_t stream) {
  if (n > 0 && dim > 0)
    embeddingKernel<<<rowBlocks(n), kThreads, 0, stream>>>(table, tokens, n, dim, vocab, out,
                                                           badIndex);
}

void embeddingGrad(const int32_t *tokens, const float *grad, int64_t n, int64_t dim,
                   int64_t vocab, float *out, cudaStream_t stream) {
  if (vocab <= 0 || dim <= 0)
    return;
  // About 256 vocabulary blocks: each scans every token, so more would cost more scanning
  // than they gain in parallelism (the column blocks multiply them already).
  int64_t rowsPerBlock = (vocab + 255) / 256;
  dim3 grid(unsigned((vocab + rowsPerBlock - 1) / rowsPerBlock),
            unsigned((dim + kThreads - 1) / kThreads));
  embeddingGradKernel<<<grid, kThreads, 0, stream>>>(tokens, grad, n, dim, vocab, rowsPerBlock,
                                                     out);
}

//===----------------------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------------------===//

void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y,
             cudaStream_t stream) {
  if (rows > 0 && dim > 0)
    rmsNormKernel<<<rowBlocks(rows), kThreads, 0, stream>>>(x, nullptr, w, rows, dim, eps,
                                                            nullptr, y);
}

void rmsNormGrad(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                 double eps, float *dx, float *dw, cudaStream_t stream) {
  launchRmsNormGrad(x, w, dy, nullptr, rows, dim, eps, dx, dw, stream);
}

void addRmsNorm(const float *x, const float *residual, const float *w, int64_t rows,
                int64_t dim, double eps, float *sum, float *y, cudaStream_t stream) {
  if (rows > 0 && dim > 0)
    rmsNormKernel<<<rowBlocks(rows), kThreads, 0, stream>>>(x, residual, w, rows, dim, eps,
                                                            sum, y);
}

void addRmsNormGrad(const float *sum, const float *w, const float *dnormed, const float *dsum,
                    int64_t rows, int64_t dim, double eps, float *dx, float *dw,
                    cudaStream_t stream) {
  launchRmsNormGrad(sum, w, dnormed, dsum, rows, dim, eps, dx, dw, stream);
}

//===----------------------------------------------------------------------------------===//
// Fused feed-forward and attention input
//===----------------------------------------------------------------------------------===//

void swiglu(const float *x, int64_t rows, int64_t F, float *y, cudaStream_t stream) {
  if (rows > 0 && F > 0)
    swigluKernel<<<elementBlocks(rows * F), kThreads, 0, stream>>>(x, rows, F, y);
}

void swigluGrad(const float *x, const float *dy, int64_t rows, int64_t F, float *dx,
                cudaStream_t stream) {
  if (rows > 0 && F > 0)
    swigluGradKernel<<<elementBlocks(rows * F), kThreads, 0, stream>>>(x, dy, rows, F, dx);
}

void qkvRope(const float *x, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
             double theta, const int64_t *offset, float *q, float *k, float *v,
             cudaStream_t stream) {
  int64_t n = B * T * ((D + 1) / 2);
  if (n > 0)
    qkvRopeKernel<false><<<elementBlocks(n), kThreads, 0, stream>>>(
        x, nullptr, nullptr, nullptr, B * T, T, H, Hkv, D, theta, offset, q, k, v, nullptr);
}

void qkvRopeGrad(const float *dq, const float *dk, const float *dv, int64_t B, int64_t T,
                 int64_t H, int64_t Hkv, int64_t D, double theta, const int64_t *offset,
                 float *dx, cudaStream_t stream) {
  int64_t n = B * T * ((D + 1) / 2);
  if (n > 0)
    qkvRopeKernel<true><<<elementBlocks(n), kThreads, 0, stream>>>(
        nullptr, dq, dk, dv, B * T, T, H, Hkv, D, theta, offset, nullptr, nullptr, nullptr, dx);
}

//===----------------------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------------------===//

void fusedCrossEntropy(const float *logits, const int32_t *targets, int64_t rows,
                       int64_t vocab, int64_t ignoreIndex, float *loss, float *lse,
                       int64_t *badIndex, cudaStream_t stream) {
  if (rows > 0 && vocab > 0)
    crossEntropyRowsKernel<<<rowBlocks(rows), kThreads, 0, stream>>>(
        logits, targets, rows, vocab, ignoreIndex, lse, badIndex);
  crossEntropyLossKernel<<<1, kFinishThreads, 0, stream>>>(logits, targets, lse,
                                                           vocab > 0 ? rows : 0, vocab,
                                                           ignoreIndex, loss);
}

void fusedCrossEntropyGrad(const float *logits, const int32_t *targets, const float *lse,
                           const float *grad, int64_t rows, int64_t vocab, int64_t ignoreIndex,
                           float *dlogits, cudaStream_t stream) {
  if (rows <= 0 || vocab <= 0)
    return;
  auto *factor = static_cast<float *>(scratch(sizeof(float)));
  if (!factor)
    return;
  crossEntropyFactorKernel<<<1, kFinishThreads, 0, stream>>>(targets, rows, ignoreIndex, grad,
                                                             factor);
  crossEntropyGradKernel<<<rowBlocks(rows), kThreads, 0, stream>>>(
      logits, targets, lse, factor, rows, vocab, ignoreIndex, dlogits);
}

//===----------------------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------------------===//

void lrSchedule(const int64_t *step, const float *peak, const int64_t *total, int64_t warmup,
                double floor, float *out, cudaStream_t stream) {
  lrScheduleKernel<<<1, 1, 0, stream>>>(step, peak, total, warmup, floor, out);
}

void gradClip(const float *const *grads, const int64_t *sizes, int64_t numGrads,
              const float *count, double maxNorm, float *coefficient, float *norm,
              cudaStream_t stream) {
  // One partial per block of every gradient, at a slot fixed by the sizes alone.
  auto blocksOf = [](int64_t size) {
    return size > 0 ? (size + kClipBlockElements - 1) / kClipBlockElements : int64_t(0);
  };
  int64_t numPartials = 0;
  for (int64_t gi = 0; gi < numGrads; ++gi)
    numPartials += blocksOf(sizes[gi]);
  auto *partial =
      static_cast<double *>(scratch(sizeof(double) * size_t(std::max<int64_t>(numPartials, 1))));
  if (!partial)
    return;
  int64_t slot = 0;
  for (int64_t g0 = 0; g0 < numGrads; g0 += kClipBatch) {
    ClipBatch batch{};
    batch.count = int(std::min<int64_t>(kClipBatch, numGrads - g0));
    int64_t blocks = 0;
    for (int j = 0; j < batch.count; ++j) {
      batch.grads[j] = grads[g0 + j];
      batch.sizes[j] = sizes[g0 + j];
      batch.firstBlock[j] = blocks;
      blocks += blocksOf(sizes[g0 + j]);
    }
    batch.firstBlock[batch.count] = blocks;
    if (blocks > 0)
      sumSquaresKernel<<<unsigned(blocks), kThreads, 0, stream>>>(batch, partial + slot);
    slot += blocks;
  }
  gradClipFinishKernel<<<1, kFinishThreads, 0, stream>>>(partial, numPartials, count, maxNorm,
                                                         coefficient, norm);
}

void adamw(float *param, const float *grad, float *m, float *v, int64_t n, const float *lr,
           const int64_t *step, const float *gradScale, double beta1, double beta2, double eps,
           double weightDecay, cudaStream_t stream) {
  if (n > 0)
    adamwKernel<<<elementBlocks(n), kThreads, 0, stream>>>(param, grad, m, v, n, lr, step,
                                                           gradScale, beta1, beta2, eps,
                                                           weightDecay);
}

} // namespace llamac::cuda
