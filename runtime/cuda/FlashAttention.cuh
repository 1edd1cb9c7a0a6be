//===- FlashAttention.cuh - flash attention kernels for generated CUDA programs -*- CUDA -*-===//
//
// Templates that generated CUDA programs (codegen/CudaEmitter.cpp) include and instantiate
// with constants: the head dimension D and the tile sizes BQ (query rows) and BK (keys), the
// autotuner's parameters. Three host functions, all in namespace llamac::cuda:
//
//   flashAttention<D, BQ, BK, Bf16>  the forward: out and the row log-sum-exp lse;
//   flashAttentionGrad<D, BQ, BK>    the backward: dq, dk, dv;
//   attentionKVCache<D>              inference against a KV cache (batch 1).
//
// Semantics are exactly those of llamac::cpu::flashAttention, flashAttentionGrad and
// attentionKVCache (runtime/cpu/CpuKernels.cpp), which test/gpu/FlashAttentionTest.cu
// compares them with:
//   - q[B,T,H,D], k/v[B,S,Hkv,D], f32 row-major; query head h uses kv head h / (H / Hkv);
//   - query t sits at key position t + (S - T) (causal aligns the last query with the last
//     key) and sees the keys s with lo <= s <= hi, where
//         lo = window > 0 ? max(0, pos - window + 1) : 0      (the window also applies
//         hi = causal ? min(pos, S - 1) : S - 1                 without the causal mask);
//   - out[B,T,H,D]; lse[B,T,H] = log sum_s exp(scale q.k_s) (natural log) over the visible
//     keys; a row that sees no key has out = 0 and lse = -inf (and zero gradients).
//
// Conventions (as runtime/cuda/CudaKernels.h): every pointer is device memory, 16-byte
// aligned (the kernels load float4s; D is a multiple of 16); launches are asynchronous on
// `stream`; nothing is read back on the host and nothing synchronises, so the calls can be
// captured in a CUDA graph. No float atomics: every output element is written by exactly
// one thread, in a fixed order, so results repeat bit for bit.
//
// Precision: the forward comes in two variants, chosen by its Bf16 parameter (the generated
// program's --precision: bf16 for the bf16 programs, f32 for the f32 and tf32 ones):
//   - Bf16 = true (the default): the two matrix products run on tensor cores
//     (nvcuda::wmma, 16x16x16 bf16 fragments, f32 accumulators; sm_80 and later): q, k and v
//     are rounded to bf16 when their tiles are staged in shared memory, and so are the
//     probabilities p = exp(s - m) before P V. Scores, the running max and sum, the
//     accumulator and the output are f32. Expect a relative error of order 1e-2 of the
//     output's magnitude against the f32 CPU kernel, and an absolute error of order 1e-2 in
//     lse.
//   - Bf16 = false: everything in f32 on the CUDA cores (FMAs; the same tiles, masks and
//     online softmax), so the result matches the CPU kernel to a relative error of order
//     1e-6 of the output's magnitude and an absolute error of order 1e-6 in lse, summation
//     order aside. Slower than the tensor cores.
//   - The backward and the KV-cache kernel always compute in f32 on the CUDA cores (a
//     relative error of order 1e-6, summation order aside).
//
// Legal instantiations (static_asserts): D in {16, 32, 48, ..., 128} (D % 16 == 0,
// D <= 128); BQ in {64, 128}; BK in {32, 64}. Every combination fits the shared memory of
// sm_80 (164 KB) and sm_90 (228 KB); a kernel needing more than the default 48 KB raises its
// limit with cudaFuncSetAttribute once per device before its first launch.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CUDA_FLASHATTENTION_CUH
#define LLAMAC_RUNTIME_CUDA_FLASHATTENTION_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace llamac::cuda {

namespace flash_detail {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__host__ __device__ constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
__host__ __device__ constexpr size_t alignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

/// The keys [lo, hi] that the query at key position `pos` sees (empty when lo > hi): the
/// CPU kernels' visibleKeys.
struct KeyRange {
  int64_t lo, hi;
};
__device__ __forceinline__ KeyRange visibleKeys(int64_t pos, int64_t numKeys, bool causal,
                                                int64_t window) {
  int64_t lo = window > 0 ? max64(0, pos - window + 1) : 0;
  int64_t hi = causal ? min64(pos, numKeys - 1) : numKeys - 1;
  return {lo, hi};
}

__device__ __forceinline__ float4 load4(const float *p) {
  return __ldg(reinterpret_cast<const float4 *>(p));
}
__device__ __forceinline__ float dot4(float4 a, float4 b) {
  return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
}
__device__ __forceinline__ void fma4(float4 &acc, float s, float4 x) {
  acc.x += s * x.x;
  acc.y += s * x.y;
  acc.z += s * x.z;
  acc.w += s * x.w;
}

/// Four floats rounded to bf16 and stored as one 8-byte word (p 8-byte aligned).
__device__ __forceinline__ void storeBf16x4(__nv_bfloat16 *p, float4 x) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(x.x, x.y), hi = __floats2bfloat162_rn(x.z, x.w);
  uint2 bits;
  bits.x = *reinterpret_cast<uint32_t *>(&lo);
  bits.y = *reinterpret_cast<uint32_t *>(&hi);
  *reinterpret_cast<uint2 *>(p) = bits;
}

/// Four floats stored into a shared-memory tile of either element type: f32 as they are
/// (p 16-byte aligned), bf16 rounded (storeBf16x4).
__device__ __forceinline__ void storeVec4(float *p, float4 x) {
  *reinterpret_cast<float4 *>(p) = x;
}
__device__ __forceinline__ void storeVec4(__nv_bfloat16 *p, float4 x) { storeBf16x4(p, x); }

/// Raises a kernel's dynamic shared memory limit to `bytes` on the current device, once per
/// device (`done` is a bit set of devices, one per kernel instantiation). Below the default
/// 48 KB nothing is needed.
inline void allowSharedMemory(const void *kernel, size_t bytes,
                              std::atomic<unsigned long long> &done) {
  if (bytes <= 48 * 1024)
    return;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess)
    return;
  unsigned long long bit = 1ull << (device & 63);
  if (done.load(std::memory_order_acquire) & bit)
    return;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)) ==
      cudaSuccess)
    done.fetch_or(bit, std::memory_order_acq_rel);
}

template <int D, int BQ, int BK>
constexpr void checkTiles() {
  static_assert(D % 16 == 0 && D >= 16 && D <= 128, "head dimension: a multiple of 16, <= 128");
  static_assert(BQ == 64 || BQ == 128, "BQ (query rows per tile) must be 64 or 128");
  static_assert(BK == 32 || BK == 64, "BK (keys per tile) must be 32 or 64");
}

//===----------------------------------------------------------------------------------===//
// Forward (tensor cores)
//===----------------------------------------------------------------------------------===//
//
// Work mapping: one thread block per (query tile of BQ rows, head h, batch b), flattened
// into blockIdx.x with the query tile outermost and taken from the last tile down, so that
// under the causal mask the heaviest tiles start first. The block has BQ / 16 warps; warp w
// owns the 16 query rows [16 w, 16 w + 16) of the tile for the whole kernel
// (FlashAttention-2: no state is shared between warps, only the K and V tiles).
//
// Per key tile [s0, s0 + BK) (only the tiles some row of the query tile sees, from the
// first row's lo to the last row's hi; the loop is the same for every warp of the block):
//   1. S = Q K^T: BK/16 accumulator fragments (16x16 f32), D/16 bf16 k-steps each, stored
//      to the warp's score tile in shared memory.
//   2. Online softmax, two lanes per row (lane = 2 r + half; each takes every other pair of
//      columns): mask to the row's [lo, hi], scale by scale*log2(e), new running max m,
//      p = exp2(s - m) written back as bf16 over the same shared memory (P aliases S, row r
//      of P inside row r of S), the running sum l updated, and alpha = exp2(m_old - m_new)
//      published per row in shared memory.
//   3. The output accumulator (D/16 fragments, kept in registers) is rescaled by alpha of
//      each element's row, then O += P V (BK/16 k-steps of bf16 fragments).
// A warp whose 16 rows see nothing of the tile (beyond the causal diagonal, before the
// window) skips 1-3; masks are applied per element but only matter on diagonal tiles.
//
// The wmma accumulator layout (which element of a fragment is which row) is unspecified,
// so each warp probes it once: it loads a 16x16 matrix whose element (r, c) is r into an
// accumulator fragment, which tells every lane the row of each of its fragment elements.
// load_matrix_sync, mma_sync and store_matrix_sync agree on the layout of a fragment type,
// so this mapping is the one the products use.
//
// Pipelining: the next K tile is loaded from global memory into registers while this
// tile's QK^T and softmax run, and stored (as bf16) into shared memory after the first
// barrier; the next V tile likewise while P V runs. Two barriers per key tile. A thread
// prefetches at most 8 float4s of a tile (FwdConfig::kPrefetch); the rest of its share, if
// any (D = 128, BQ = 64, BK = 64), is loaded when the tile is stored.
//
// Shared memory (dynamic, byte offsets in FwdConfig), per block:
//   sRow   [BQ] f32            per row: alpha during the loop, 1 / l at the end
//   sQ     [BQ][D + 8] bf16    the query tile (rows past T are zero)
//   sK     [BK][D + 8] bf16    the key tile (rows past S are zero)
//   sV     [BK][D + 8] bf16    the value tile (rows past S are zero: 0 * garbage is NaN)
//   sS     [BQ][BK + 4] f32    per warp its 16 rows of scores; P (bf16, row stride
//                              2 (BK + 4)) overwrites them in place
// At the end the region from sQ on is reused as the output staging area [BQ][D + 4] f32,
// from which each warp writes its valid rows to `out` with coalesced float4 stores.
// The paddings keep the rows of a fragment load on different banks and every fragment
// pointer 32-byte aligned.

template <int D, int BQ, int BK>
struct FwdConfig {
  static constexpr int kWarps = BQ / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kLdQ = D + 8;  // bf16 elements per row of sQ, sK, sV
  static constexpr int kLdS = BK + 4; // f32 elements per row of sS (P: 2 kLdS bf16)
  static constexpr int kLdO = D + 4;  // f32 elements per row of the output staging
  static constexpr bool kQInRegs = D <= 64; // keep the Q fragments in registers
  /// float4 elements of a K or V tile that each thread loads, and how many of them it
  /// prefetches into registers during the previous tile's products (at most 8: 32 registers,
  /// more spills with D = 128).
  static constexpr int kStageVecs = (BK * D / 4 + kThreads - 1) / kThreads;
  static constexpr int kPrefetch = kStageVecs < 8 ? kStageVecs : 8;

  static constexpr size_t kRowOff = 0;
  static constexpr size_t kQOff = alignUp(kRowOff + size_t(BQ) * 4, 128);
  static constexpr size_t kKOff = kQOff + alignUp(size_t(BQ) * kLdQ * 2, 128);
  static constexpr size_t kVOff = kKOff + alignUp(size_t(BK) * kLdQ * 2, 128);
  static constexpr size_t kSOff = kVOff + alignUp(size_t(BK) * kLdQ * 2, 128);
  static constexpr size_t kLoopEnd = kSOff + size_t(BQ) * kLdS * 4;
  static constexpr size_t kStageEnd = kQOff + size_t(BQ) * kLdO * 4;
  static constexpr size_t kSmemBytes = kLoopEnd > kStageEnd ? kLoopEnd : kStageEnd;
};

/// Loads part of rows [first, first + ROWS) of a [*, stride] f32 matrix (columns [0, D))
/// into registers: the tile is a row-major sequence of float4 elements, of which thread
/// `tid` takes tid + i NT for i in [I0, I0 + N). Rows at or past `limit` read as zero.
template <int D, int ROWS, int NT, int I0, int N>
__device__ __forceinline__ void loadTile(const float *base, int64_t first, int64_t limit,
                                         int64_t stride, int tid, float4 (&stage)[N]) {
  constexpr int kVecs = ROWS * D / 4;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int idx = tid + (I0 + i) * NT;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (idx < kVecs) {
      int r = idx / (D / 4), c4 = idx % (D / 4);
      if (first + r < limit)
        x = load4(base + (first + r) * stride + c4 * 4);
    }
    stage[i] = x;
  }
}

/// Stores what loadTile<D, ROWS, NT, I0, N> loaded into a [ROWS][LD] tile of bf16 (rounded;
/// the tensor-core forward) or f32 (the f32 forward).
template <int D, int ROWS, int NT, int LD, int I0, int N, typename E>
__device__ __forceinline__ void storeTile(E *tile, int tid, const float4 (&stage)[N]) {
  constexpr int kVecs = ROWS * D / 4;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int idx = tid + (I0 + i) * NT;
    if (idx < kVecs) {
      int r = idx / (D / 4), c4 = idx % (D / 4);
      storeVec4(tile + r * LD + c4 * 4, stage[i]);
    }
  }
}

/// Stores a K or V tile: the first kPrefetch float4s per thread from `stage` (loaded
/// earlier, their latency hidden behind the previous tile's products), the rest loaded now.
template <int D, int BK, int NT, int LD, int kVecsPerThread, int kPrefetch, typename E>
__device__ __forceinline__ void finishTile(E *tile, const float *base, int64_t first,
                                           int64_t limit, int64_t stride, int tid,
                                           const float4 (&stage)[kPrefetch]) {
  storeTile<D, BK, NT, LD, 0>(tile, tid, stage);
  if constexpr (kVecsPerThread > kPrefetch) {
    float4 rest[kVecsPerThread - kPrefetch];
    loadTile<D, BK, NT, kPrefetch>(base, first, limit, stride, tid, rest);
    storeTile<D, BK, NT, LD, kPrefetch>(tile, tid, rest);
  }
}

template <int D, int BQ, int BK>
__global__ void __launch_bounds__(FwdConfig<D, BQ, BK>::kThreads)
    flashForwardKernel(const float *__restrict__ q, const float *__restrict__ k,
                       const float *__restrict__ v, int64_t B, int64_t T, int64_t S, int64_t H,
                       int64_t Hkv, bool causal, int64_t window, float scaleLog2,
                       float *__restrict__ out, float *__restrict__ lse) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  using Cfg = FwdConfig<D, BQ, BK>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>;
  using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  constexpr int NT = Cfg::kThreads, LDQ = Cfg::kLdQ, LDS = Cfg::kLdS, LDO = Cfg::kLdO;
  constexpr int kElems = FragC::num_elements;
  constexpr float kNegInf = -INFINITY;

  extern __shared__ __align__(128) unsigned char smem[];
  float *sRow = reinterpret_cast<float *>(smem + Cfg::kRowOff);
  __nv_bfloat16 *sQ = reinterpret_cast<__nv_bfloat16 *>(smem + Cfg::kQOff);
  __nv_bfloat16 *sK = reinterpret_cast<__nv_bfloat16 *>(smem + Cfg::kKOff);
  __nv_bfloat16 *sV = reinterpret_cast<__nv_bfloat16 *>(smem + Cfg::kVOff);
  float *sS = reinterpret_cast<float *>(smem + Cfg::kSOff);
  float *sStage = reinterpret_cast<float *>(smem + Cfg::kQOff); // after the loop only

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // Block -> (query tile, batch, head), the last query tile first.
  const int64_t BH = B * H, qTiles = (T + BQ - 1) / BQ;
  const int64_t tile = blockIdx.x;
  const int64_t qt = qTiles - 1 - tile / BH, bh = tile % BH;
  const int64_t b = bh / H, h = bh % H, kh = h / (H / Hkv);
  const int64_t t0 = qt * BQ;
  const int rows = int(min64(BQ, T - t0)); // valid query rows of the tile
  const int64_t shift = S - T;             // query t is at key position t + shift
  const int64_t qStride = H * D, kvStride = Hkv * D;
  const float *qTile = q + ((b * T + t0) * H + h) * D; // row r at qTile + r * qStride
  const float *kHead = k + b * S * kvStride + kh * D;  // key s at kHead + s * kvStride
  const float *vHead = v + b * S * kvStride + kh * D;

  // The query tile, bf16, zero past T.
  for (int idx = tid; idx < BQ * D / 4; idx += NT) {
    int r = idx / (D / 4), c4 = idx % (D / 4);
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < rows)
      x = load4(qTile + r * qStride + c4 * 4);
    storeBf16x4(sQ + r * LDQ + c4 * 4, x);
  }

  // Probe the accumulator layout: which row each element of a FragC holds.
  float *sSw = sS + warp * 16 * LDS; // this warp's score tile
  float *sRoww = sRow + warp * 16;   // this warp's per-row scalars
  for (int idx = lane; idx < 256; idx += 32)
    sSw[(idx >> 4) * LDS + (idx & 15)] = float(idx >> 4);
  __syncwarp();
  static_assert(kElems <= 8, "the rows of a fragment's elements are packed 4 bits each");
  uint32_t rowOf = 0; // bits [4 i, 4 i + 4): the row of element i
  {
    FragC probe;
    wmma::load_matrix_sync(probe, sSw, LDS, wmma::mem_row_major);
#pragma unroll
    for (int i = 0; i < kElems; ++i)
      rowOf |= uint32_t(probe.x[i]) << (4 * i);
  }
  __syncwarp();

  // The key tiles the block visits: from the first row's lo (rounded down to the tile grid)
  // to the last valid row's hi.
  const KeyRange blockFirst = visibleKeys(t0 + shift, S, causal, window);
  const KeyRange blockLast = visibleKeys(t0 + rows - 1 + shift, S, causal, window);
  const int64_t sBegin = blockFirst.lo / BK * BK;
  const int64_t numTiles = blockLast.hi >= sBegin ? (blockLast.hi - sBegin) / BK + 1 : 0;
  // This warp's rows (including rows past T, which are computed and never written) see
  // keys in [warpLo, warpHi]; both ends grow with the row.
  const bool warpActive = warp * 16 < rows;
  const int64_t warpLo = visibleKeys(t0 + warp * 16 + shift, S, causal, window).lo;
  const int64_t warpHi = visibleKeys(t0 + warp * 16 + 15 + shift, S, causal, window).hi;
  // This lane's row in the softmax: r = lane / 2; half picks the column pairs.
  const int r = lane >> 1, half = lane & 1;
  const int64_t myT = t0 + warp * 16 + r;
  const KeyRange mine = visibleKeys(myT + shift, S, causal, window);

  constexpr int kVecs = Cfg::kStageVecs, kPre = Cfg::kPrefetch;
  float4 stage[kPre];
  if (numTiles > 0) {
    loadTile<D, BK, NT, 0>(kHead, sBegin, S, kvStride, tid, stage);
    finishTile<D, BK, NT, LDQ, kVecs>(sK, kHead, sBegin, S, kvStride, tid, stage);
    loadTile<D, BK, NT, 0>(vHead, sBegin, S, kvStride, tid, stage);
    finishTile<D, BK, NT, LDQ, kVecs>(sV, vHead, sBegin, S, kvStride, tid, stage);
  }
  __syncthreads();

  FragA qFrag[Cfg::kQInRegs ? D / 16 : 1];
  if constexpr (Cfg::kQInRegs) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      wmma::load_matrix_sync(qFrag[kk], sQ + warp * 16 * LDQ + kk * 16, LDQ);
  }
  FragC acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n)
    wmma::fill_fragment(acc[n], 0.0f);
  float m = kNegInf; // running max of this lane's row, in log2 units (scores * log2 e)
  float l = 0.0f;    // running sum of exp2(score - m)

  for (int64_t it = 0; it < numTiles; ++it) {
    const int64_t s0 = sBegin + it * BK;
    const bool hasNext = it + 1 < numTiles;
    if (hasNext) // the next K tile travels while this one is used
      loadTile<D, BK, NT, 0>(kHead, s0 + BK, S, kvStride, tid, stage);
    const bool compute = warpActive && s0 <= warpHi && s0 + BK - 1 >= warpLo;

    if (compute) {
      // 1. S = Q K^T (16 x BK), k-steps outermost so that each Q fragment is read once.
      FragC sc[BK / 16];
#pragma unroll
      for (int j = 0; j < BK / 16; ++j)
        wmma::fill_fragment(sc[j], 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        FragA a;
        if constexpr (Cfg::kQInRegs)
          a = qFrag[kk];
        else
          wmma::load_matrix_sync(a, sQ + warp * 16 * LDQ + kk * 16, LDQ);
#pragma unroll
        for (int j = 0; j < BK / 16; ++j) {
          FragBCol bk; // K^T: column-major view of the row-major K tile
          wmma::load_matrix_sync(bk, sK + j * 16 * LDQ + kk * 16, LDQ);
          wmma::mma_sync(sc[j], a, bk, sc[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < BK / 16; ++j)
        wmma::store_matrix_sync(sSw + j * 16, sc[j], LDS, wmma::mem_row_major);
      __syncwarp();

      // 2. Online softmax of row r: columns [cLo, cHi] of this tile are visible.
      const int cLo = int(max64(0, min64(mine.lo - s0, BK)));
      const int cHi = int(max64(-1, min64(mine.hi - s0, BK - 1)));
      const float *sRowS = sSw + r * LDS;
      float2 vals[BK / 4];
      float tileMax = kNegInf;
#pragma unroll
      for (int i = 0; i < BK / 4; ++i) {
        const int c = 4 * i + 2 * half;
        float2 x = *reinterpret_cast<const float2 *>(sRowS + c);
        x.x = (c >= cLo && c <= cHi) ? x.x * scaleLog2 : kNegInf;
        x.y = (c + 1 >= cLo && c + 1 <= cHi) ? x.y * scaleLog2 : kNegInf;
        tileMax = fmaxf(tileMax, fmaxf(x.x, x.y));
        vals[i] = x;
      }
      tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
      const float mNew = fmaxf(m, tileMax);
      // A row that has seen nothing yet keeps p = 0 (exp2(-inf - 0)) and alpha = 0.
      const float base = mNew == kNegInf ? 0.0f : mNew;
      const float alpha = exp2f(m - base);
      __syncwarp(); // every lane has read its scores: P may overwrite them
      __nv_bfloat16 *sRowP = reinterpret_cast<__nv_bfloat16 *>(sSw) + r * 2 * LDS;
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < BK / 4; ++i) {
        const float p0 = exp2f(vals[i].x - base), p1 = exp2f(vals[i].y - base);
        sum += p0 + p1;
        *reinterpret_cast<__nv_bfloat162 *>(sRowP + 4 * i + 2 * half) =
            __floats2bfloat162_rn(p0, p1);
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      l = l * alpha + sum;
      m = mNew;
      if (half == 0)
        sRoww[r] = alpha;
      __syncwarp();

      // 3a. Rescale the accumulator rows by alpha.
      float rowScale[kElems];
#pragma unroll
      for (int i = 0; i < kElems; ++i)
        rowScale[i] = sRoww[(rowOf >> (4 * i)) & 15];
#pragma unroll
      for (int n = 0; n < D / 16; ++n)
#pragma unroll
        for (int i = 0; i < kElems; ++i)
          acc[n].x[i] *= rowScale[i];
    }

    __syncthreads(); // (A) every warp is done with sK
    if (hasNext) {
      finishTile<D, BK, NT, LDQ, kVecs>(sK, kHead, s0 + BK, S, kvStride, tid, stage);
      loadTile<D, BK, NT, 0>(vHead, s0 + BK, S, kvStride, tid, stage);
    }

    if (compute) {
      // 3b. O += P V.
      const __nv_bfloat16 *sP = reinterpret_cast<const __nv_bfloat16 *>(sSw);
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        FragA pa;
        wmma::load_matrix_sync(pa, sP + kk * 16, 2 * LDS);
#pragma unroll
        for (int n = 0; n < D / 16; ++n) {
          FragBRow vb;
          wmma::load_matrix_sync(vb, sV + kk * 16 * LDQ + n * 16, LDQ);
          wmma::mma_sync(acc[n], pa, vb, acc[n]);
        }
      }
    }

    __syncthreads(); // (B) every warp is done with sV; the next sK is visible
    if (hasNext) // visible after the next (A)
      finishTile<D, BK, NT, LDQ, kVecs>(sV, vHead, s0 + BK, S, kvStride, tid, stage);
  }

  // Epilogue: out = acc / l, lse = m ln 2 + log l; no visible key: out 0, lse -inf.
  __syncthreads(); // the staging area overlaps sQ, sK and sV
  if (warpActive) {
    if (half == 0) {
      sRoww[r] = l > 0.0f ? 1.0f / l : 0.0f;
      if (myT < T)
        lse[(b * T + myT) * H + h] = l > 0.0f ? m * kLn2 + logf(l) : kNegInf;
    }
    __syncwarp();
    float rowScale[kElems];
#pragma unroll
    for (int i = 0; i < kElems; ++i)
      rowScale[i] = sRoww[(rowOf >> (4 * i)) & 15];
    float *stageW = sStage + warp * 16 * LDO;
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
#pragma unroll
      for (int i = 0; i < kElems; ++i)
        acc[n].x[i] *= rowScale[i];
      wmma::store_matrix_sync(stageW + n * 16, acc[n], LDO, wmma::mem_row_major);
    }
    __syncwarp();
    for (int idx = lane; idx < 16 * D / 4; idx += 32) {
      const int rr = idx / (D / 4), c4 = idx % (D / 4);
      const int64_t t = t0 + warp * 16 + rr;
      if (t < T)
        *reinterpret_cast<float4 *>(out + ((b * T + t) * H + h) * D + c4 * 4) =
            *reinterpret_cast<const float4 *>(stageW + rr * LDO + c4 * 4);
    }
  }
#else
  // Tensor-core bf16 fragments need sm_80 or later.
  __trap();
#endif
}

//===----------------------------------------------------------------------------------===//
// Forward (f32, CUDA cores)
//===----------------------------------------------------------------------------------===//
//
// flashAttention<D, BQ, BK, false>: the tensor-core forward's block mapping, key-tile loop,
// prefetching and barriers (one block of BQ / 16 warps per query tile, the last tile first;
// warp w owns the rows [16 w, 16 w + 16) of the tile and skips the key tiles none of them
// sees), but the tiles stay f32 in shared memory and both products are f32 FMAs on the CUDA
// cores: nothing is rounded to a narrower type.
//
// A warp is 4 groups of 8 lanes. Group g (lanes 8 g .. 8 g + 7) owns the 4 rows
// 16 w + g + 4 r (r < 4) of its warp (the 4 groups read Q rows on distinct banks), and lane j
// of the group
//   1. in S = Q K^T takes the keys j + 8 i (i < BK / 8) of the tile: 4 x BK / 8 scores in
//      registers, accumulated over D one float4 at a time (the 8 lanes of a group read 8 K
//      rows on distinct banks, the 4 groups the same ones; a Q float4 is a broadcast within
//      its group);
//   2. in the online softmax keeps per row the running max m (the same on the group's 8
//      lanes: the tile's max is reduced with three xor shuffles) and its own partial sum l
//      of exp(s - m) over its keys, rescaled by the same alpha = exp(m_old - m_new) as the
//      accumulator; the 8 partial sums are added once, after the loop, in a fixed order;
//   3. in O += P V owns the float2 columns j + 8 c (c < D / 16) of its 4 rows (D / 4
//      accumulators); the probabilities of key j' + 8 i come from lane j' of the group
//      (__shfl_sync, width 8), the V row from shared memory (the 8 lanes read 64 contiguous
//      bytes, the 4 groups the same ones).
// Scores are in natural units as in the CPU kernel: s = scale q.k, p = exp(s - m),
// lse = m + log l.
//
// Shared memory (dynamic, f32, rows padded to D + 4 floats), per block:
//   sQ [BQ][D + 4]   the query tile (rows past T are zero)
//   sK [BK][D + 4]   the key tile (rows past S are zero)
//   sV [BK][D + 4]   the value tile (rows past S are zero: 0 * garbage is NaN)
// At most 132 KB (D = 128, BQ = 128, BK = 64).

template <int D, int BQ, int BK>
struct FwdF32Config {
  static constexpr int kThreads = FwdConfig<D, BQ, BK>::kThreads; // BQ / 16 warps
  static constexpr int kGroup = 8;               // lanes that share query rows
  static constexpr int kRows = 4;                // query rows per group (and lane)
  static constexpr int kKeys = BK / kGroup;      // keys per lane in S = Q K^T
  static constexpr int kCols = D / (2 * kGroup); // float2 columns per lane in P V
  static constexpr int kLd = D + 4;              // floats per row of sQ, sK, sV
  static constexpr int kStageVecs = FwdConfig<D, BQ, BK>::kStageVecs;
  static constexpr int kPrefetch = FwdConfig<D, BQ, BK>::kPrefetch;
  static constexpr size_t kSmemBytes = size_t(BQ + 2 * BK) * kLd * 4;
};

template <int D, int BQ, int BK>
__global__ void __launch_bounds__(FwdF32Config<D, BQ, BK>::kThreads)
    flashForwardF32Kernel(const float *__restrict__ q, const float *__restrict__ k,
                          const float *__restrict__ v, int64_t B, int64_t T, int64_t S,
                          int64_t H, int64_t Hkv, bool causal, int64_t window, float scale,
                          float *__restrict__ out, float *__restrict__ lse) {
  using Cfg = FwdF32Config<D, BQ, BK>;
  constexpr int NT = Cfg::kThreads, LD = Cfg::kLd;
  constexpr int G = Cfg::kGroup, RT = Cfg::kRows, KT = Cfg::kKeys, CT = Cfg::kCols;
  static_assert(RT * (32 / G) == 16 && KT * G == BK && CT * 2 * G == D, "lane mapping");
  constexpr float kNegInf = -INFINITY;
  constexpr unsigned kFull = 0xffffffffu;

  extern __shared__ __align__(16) float smemF[];
  float *sQ = smemF, *sK = sQ + BQ * LD, *sV = sK + BK * LD;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int grp = lane / G, j = lane % G; // the lane's group and its place in it
  // Block -> (query tile, batch, head), the last query tile first. In 32 bits (every factor
  // divides the grid size): a 64-bit division is a call, around which ptxas spills.
  const unsigned BH = unsigned(B * H), qTiles = unsigned((T + BQ - 1) / BQ);
  const unsigned Hu = unsigned(H), group = Hu / unsigned(Hkv);
  const unsigned tile = blockIdx.x, bh = tile % BH, hu = bh % Hu;
  const int64_t qt = qTiles - 1 - tile / BH;
  const int64_t b = bh / Hu, h = hu, kh = hu / group;
  const int64_t t0 = qt * BQ;
  const int rows = int(min64(BQ, T - t0)); // valid query rows of the tile
  const int64_t shift = S - T;             // query t is at key position t + shift
  const int64_t qStride = H * D, kvStride = Hkv * D;
  const float *qTile = q + ((b * T + t0) * H + h) * D; // row r at qTile + r * qStride
  const float *kHead = k + b * S * kvStride + kh * D;  // key s at kHead + s * kvStride
  const float *vHead = v + b * S * kvStride + kh * D;

  // The query tile, zero past T.
  for (int idx = tid; idx < BQ * D / 4; idx += NT) {
    const int r = idx / (D / 4), c4 = idx % (D / 4);
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (r < rows)
      x = load4(qTile + r * qStride + c4 * 4);
    *reinterpret_cast<float4 *>(sQ + r * LD + c4 * 4) = x;
  }

  // The key tiles the block visits, as the bf16 forward. Key ranges below are relative to
  // sBegin, in 32 bits (clamped to [-1, the end of the last tile]), which keeps the 64-bit
  // values live in the loop few.
  const KeyRange blockFirst = visibleKeys(t0 + shift, S, causal, window);
  const KeyRange blockLast = visibleKeys(t0 + rows - 1 + shift, S, causal, window);
  const int64_t sBegin = blockFirst.lo / BK * BK;
  const int numTiles = blockLast.hi >= sBegin ? int((blockLast.hi - sBegin) / BK + 1) : 0;
  const int64_t keyEnd = int64_t(numTiles) * BK;
  auto relative = [&](int64_t s) { return int(max64(-1, min64(s - sBegin, keyEnd))); };
  // The warp's rows (including rows past T, which are computed and never written) see keys
  // in [warpLo, warpHi]; both ends grow with the row.
  const bool warpActive = warp * 16 < rows;
  const int warpLo = relative(visibleKeys(t0 + warp * 16 + shift, S, causal, window).lo);
  const int warpHi = relative(visibleKeys(t0 + warp * 16 + 15 + shift, S, causal, window).hi);
  const int row0 = warp * 16 + grp; // the lane's rows: row0 + 4 r (tile-relative)
  int rowLo[RT], rowHi[RT];         // their visible keys
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const KeyRange seen = visibleKeys(t0 + row0 + 4 * r + shift, S, causal, window);
    rowLo[r] = relative(seen.lo);
    rowHi[r] = relative(seen.hi);
  }

  constexpr int kVecs = Cfg::kStageVecs, kPre = Cfg::kPrefetch;
  float4 stage[kPre];
  if (numTiles > 0) {
    loadTile<D, BK, NT, 0>(kHead, sBegin, S, kvStride, tid, stage);
    finishTile<D, BK, NT, LD, kVecs>(sK, kHead, sBegin, S, kvStride, tid, stage);
    loadTile<D, BK, NT, 0>(vHead, sBegin, S, kvStride, tid, stage);
    finishTile<D, BK, NT, LD, kVecs>(sV, vHead, sBegin, S, kvStride, tid, stage);
  }
  __syncthreads();

  float2 acc[RT][CT]; // O of rows row0 + 4 r, columns 2 (j + 8 c) and the next
  float m[RT], l[RT]; // running max (the same on the group's lanes) and partial sum
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    m[r] = kNegInf;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < CT; ++c)
      acc[r][c] = make_float2(0.f, 0.f);
  }
  float sc[RT][KT]; // scores, then probabilities, of rows row0 + 4 r, keys j + 8 i

  for (int it = 0; it < numTiles; ++it) {
    const int c0 = it * BK; // the tile's first key, relative to sBegin
    const int64_t s0 = sBegin + c0;
    const bool hasNext = it + 1 < numTiles;
    if (hasNext) // the next K tile travels while this one is used
      loadTile<D, BK, NT, 0>(kHead, s0 + BK, S, kvStride, tid, stage);
    const bool compute = warpActive && c0 <= warpHi && c0 + BK - 1 >= warpLo;

    if (compute) {
      // 1. S = Q K^T.
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int i = 0; i < KT; ++i)
          sc[r][i] = 0.0f;
#pragma unroll 2
      for (int c4 = 0; c4 < D / 4; ++c4) {
        float4 qx[RT];
#pragma unroll
        for (int r = 0; r < RT; ++r)
          qx[r] = *reinterpret_cast<const float4 *>(sQ + (row0 + 4 * r) * LD + c4 * 4);
#pragma unroll
        for (int i = 0; i < KT; ++i) {
          const float4 kx = *reinterpret_cast<const float4 *>(sK + (j + G * i) * LD + c4 * 4);
#pragma unroll
          for (int r = 0; r < RT; ++r)
            sc[r][i] += dot4(qx[r], kx);
        }
      }

      // 2. Online softmax per row: columns [cLo, cHi] of this tile are visible.
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const int cLo = max(0, min(rowLo[r] - c0, BK));
        const int cHi = max(-1, min(rowHi[r] - c0, BK - 1));
        float tileMax = kNegInf;
#pragma unroll
        for (int i = 0; i < KT; ++i) {
          const int c = j + G * i;
          const float x = (c >= cLo && c <= cHi) ? sc[r][i] * scale : kNegInf;
          sc[r][i] = x;
          tileMax = fmaxf(tileMax, x);
        }
#pragma unroll
        for (int off = 1; off < G; off <<= 1)
          tileMax = fmaxf(tileMax, __shfl_xor_sync(kFull, tileMax, off));
        const float mNew = fmaxf(m[r], tileMax);
        // A row that has seen nothing yet keeps p = 0 (exp(-inf - 0)) and alpha = 0.
        const float base = mNew == kNegInf ? 0.0f : mNew;
        const float alpha = expf(m[r] - base);
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < KT; ++i) {
          const float p = expf(sc[r][i] - base);
          sc[r][i] = p;
          sum += p;
        }
        l[r] = l[r] * alpha + sum;
        m[r] = mNew;
#pragma unroll
        for (int c = 0; c < CT; ++c) {
          acc[r][c].x *= alpha;
          acc[r][c].y *= alpha;
        }
      }
    }

    __syncthreads(); // (A) every warp is done with sK
    if (hasNext) {
      finishTile<D, BK, NT, LD, kVecs>(sK, kHead, s0 + BK, S, kvStride, tid, stage);
      loadTile<D, BK, NT, 0>(vHead, s0 + BK, S, kvStride, tid, stage);
    }

    if (compute) {
      // 3. O += P V, key by key: j2 + 8 i, its probabilities from lane j2 of the group.
#pragma unroll
      for (int i = 0; i < KT; ++i) {
#pragma unroll 4
        for (int j2 = 0; j2 < G; ++j2) {
          float p[RT];
#pragma unroll
          for (int r = 0; r < RT; ++r)
            p[r] = __shfl_sync(kFull, sc[r][i], j2, G);
          const float *vRow = sV + (j2 + G * i) * LD + 2 * j;
#pragma unroll
          for (int c = 0; c < CT; ++c) {
            const float2 x = *reinterpret_cast<const float2 *>(vRow + 2 * G * c);
#pragma unroll
            for (int r = 0; r < RT; ++r) {
              acc[r][c].x += p[r] * x.x;
              acc[r][c].y += p[r] * x.y;
            }
          }
        }
      }
    }

    __syncthreads(); // (B) every warp is done with sV; the next sK is visible
    if (hasNext) // visible after the next (A)
      finishTile<D, BK, NT, LD, kVecs>(sV, vHead, s0 + BK, S, kvStride, tid, stage);
  }

  // Epilogue: l = the group's partial sums (xor butterfly: the same bits on every lane),
  // out = acc / l, lse = m + log l; no visible key: out 0, lse -inf.
  const int64_t row0Out = (b * T + t0 + row0) * H + h; // (b, t, h) of row row0
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    float sum = l[r];
#pragma unroll
    for (int off = 1; off < G; off <<= 1)
      sum += __shfl_xor_sync(kFull, sum, off);
    if (row0 + 4 * r < rows) {
      const int64_t row = row0Out + 4 * r * H;
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      float *o = out + row * D + 2 * j;
#pragma unroll
      for (int c = 0; c < CT; ++c)
        *reinterpret_cast<float2 *>(o + 2 * G * c) =
            make_float2(acc[r][c].x * inv, acc[r][c].y * inv);
      if (j == 0)
        lse[row] = sum > 0.0f ? m[r] + logf(sum) : kNegInf;
    }
  }
}

//===----------------------------------------------------------------------------------===//
// Backward (f32, CUDA cores)
//===----------------------------------------------------------------------------------===//
//
// Three launches, in stream order:
//   1. rowDotKernel: Di = sum_d dout * out per query row (the softmax correction
//      sum_s P_s dP_s), one warp per row, accumulated in double. It is written to the
//      first B*T*H floats of dq, used as scratch: dq is only computed by launch 3.
//   2. gradKVKernel: one block per (key tile of BK keys, kv head, batch), key tile
//      outermost (under the causal mask the first key tiles have the most queries and start
//      first). The block holds its K and V tiles in shared memory and dK, dV of its keys in
//      registers, and loops over the query heads of its group and, per head, over the
//      chunks of 32 query rows that see some key of the tile. Per chunk:
//        A. S^T = K Q^T and dP^T = V dO^T (BK x 32), thread (tid % 16, tid / 16) taking the
//           keys tid % 16 + 16 i and the queries tid / 16 + (BK / 4) j;
//           P = exp(scale S - lse) on visible entries (0 elsewhere and for lse = -inf rows),
//           dS = P (dP - Di) scale, both to shared memory;
//        B. dV += P^T dO, dK += dS^T Q: thread tid owns key row tid / 4 and the float4
//           columns tid % 4 + 4 j.
//      Each dk/dv element is written once, by its owner, at the end: no atomics.
//   3. gradQKernel: one block per (query tile of BQ / 2 rows, head, batch), last tile
//      first. Q and dO of the tile stay in shared memory (Di recomputed from out); the
//      block loops over the key tiles its rows see. Per key tile:
//        A. S = Q K^T and dP = dO V^T (BQ/2 x BK): thread (tid % 16, tid / 16) takes rows
//           tid % 16 + 16 i and keys tid / 16 + (BQ / 8) j; dS as above to shared memory;
//        B. dQ += dS K: thread tid owns query row tid / 4, float4 columns tid % 4 + 4 j.
//
// Shared memory, f32, rows padded to D + 4 floats (float4 rows on distinct banks):
//   gradKV: sK, sV [BK][D+4]; sQ, sDO [32][D+4]; sP, sDS [BK][33]; sLse, sDi [32]
//   gradQ:  sQ, sDO [BQ/2][D+4]; sK, sV [BK][D+4]; sDS [BQ/2][BK+1]; sLse, sDi [BQ/2]

template <int D>
__global__ void __launch_bounds__(256)
    rowDotKernel(const float *__restrict__ out, const float *__restrict__ dout, int64_t rows,
                 float *__restrict__ di) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * 8 + warp;
  if (row >= rows)
    return;
  const float *o = out + row * D, *g = dout + row * D;
  double sum = 0.0;
  for (int c = lane; c < D; c += 32)
    sum += double(o[c]) * double(g[c]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0)
    di[row] = float(sum);
}

template <int D, int BK>
struct GradKVConfig {
  static constexpr int kThreads = 4 * BK;
  static constexpr int kQC = 32;       // query rows per chunk
  static constexpr int kLd = D + 4;    // floats per row of sK, sV, sQ, sDO
  static constexpr int kLdP = kQC + 1; // floats per row of sP, sDS
  static constexpr size_t kSmemBytes =
      (size_t(2) * BK * kLd + size_t(2) * kQC * kLd + size_t(2) * BK * kLdP + 2 * kQC) * 4;
};

template <int D, int BK>
__global__ void __launch_bounds__(4 * BK, 1)
    gradKVKernel(const float *__restrict__ q, const float *__restrict__ k,
                 const float *__restrict__ v, const float *__restrict__ lse,
                 const float *__restrict__ di, const float *__restrict__ dout, int64_t B,
                 int64_t T, int64_t S, int64_t H, int64_t Hkv, bool causal, int64_t window,
                 float scale, float *__restrict__ dk, float *__restrict__ dv) {
  using Cfg = GradKVConfig<D, BK>;
  constexpr int NT = Cfg::kThreads, QC = Cfg::kQC, LD = Cfg::kLd, LDP = Cfg::kLdP;
  constexpr int AK = BK / 16;     // step A: keys per thread
  constexpr int AQS = NT / 16;    // step A: stride between a thread's queries
  constexpr int AQ = QC / AQS;    // step A: queries per thread
  constexpr int C4 = D / 16;      // step B: float4 columns per thread
  static_assert(AQ * AQS == QC && AK * 16 == BK, "step A mapping");
  constexpr float kNegInf = -INFINITY;

  extern __shared__ __align__(16) float smemF[];
  float *sK = smemF, *sV = sK + BK * LD, *sQ = sV + BK * LD, *sDO = sQ + QC * LD;
  float *sP = sDO + QC * LD, *sDS = sP + BK * LDP, *sLse = sDS + BK * LDP, *sDi = sLse + QC;

  const int tid = threadIdx.x;
  const int64_t BHkv = B * Hkv;
  const int64_t kt = blockIdx.x / BHkv, bkh = blockIdx.x % BHkv;
  const int64_t b = bkh / Hkv, kh = bkh % Hkv, group = H / Hkv;
  const int64_t s0 = kt * BK;
  const int kn = int(min64(BK, S - s0)); // valid keys of the tile
  const int64_t shift = S - T, kvStride = Hkv * D;
  const int64_t kvOff = (b * S + s0) * kvStride + kh * D; // key s0 + r at kvOff + r*kvStride

  for (int idx = tid; idx < BK * D / 4; idx += NT) {
    const int rr = idx / (D / 4), c4 = idx % (D / 4);
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f), y = x;
    if (rr < kn) {
      x = load4(k + kvOff + rr * kvStride + c4 * 4);
      y = load4(v + kvOff + rr * kvStride + c4 * 4);
    }
    *reinterpret_cast<float4 *>(sK + rr * LD + c4 * 4) = x;
    *reinterpret_cast<float4 *>(sV + rr * LD + c4 * 4) = y;
  }

  const int aKey = tid & 15, aQ = tid >> 4; // step A
  const int bRow = tid >> 2, bCol = tid & 3; // step B
  float4 dKa[C4], dVa[C4];
#pragma unroll
  for (int j = 0; j < C4; ++j)
    dKa[j] = dVa[j] = make_float4(0.f, 0.f, 0.f, 0.f);

  // The queries that see some key of [s0, sLast]: hi(t) >= s0 and lo(t) <= sLast.
  const int64_t sLast = s0 + kn - 1;
  const int64_t tBegin = causal ? max64(0, s0 - shift) : 0;
  const int64_t tEnd = window > 0 ? min64(T, sLast - shift + window) : T;

  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = kh * group + g;
    for (int64_t c0 = tBegin; c0 < tEnd; c0 += QC) {
      __syncthreads(); // the previous chunk is consumed (first time: K, V are stored)
      for (int idx = tid; idx < QC * D / 4; idx += NT) {
        const int rr = idx / (D / 4), c4 = idx % (D / 4);
        const int64_t t = c0 + rr;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f), y = x;
        if (t < T) {
          const int64_t off = ((b * T + t) * H + h) * D + c4 * 4;
          x = load4(q + off);
          y = load4(dout + off);
        }
        *reinterpret_cast<float4 *>(sQ + rr * LD + c4 * 4) = x;
        *reinterpret_cast<float4 *>(sDO + rr * LD + c4 * 4) = y;
      }
      for (int rr = tid; rr < QC; rr += NT) {
        const int64_t t = c0 + rr;
        sLse[rr] = t < T ? lse[(b * T + t) * H + h] : kNegInf;
        sDi[rr] = t < T ? di[(b * T + t) * H + h] : 0.0f;
      }
      __syncthreads();

      // A. S^T and dP^T for keys aKey + 16 i, queries aQ + AQS j.
      float sc[AK][AQ], dp[AK][AQ];
#pragma unroll
      for (int i = 0; i < AK; ++i)
#pragma unroll
        for (int j = 0; j < AQ; ++j)
          sc[i][j] = dp[i][j] = 0.0f;
#pragma unroll 1
      for (int c4 = 0; c4 < D / 4; ++c4) {
        float4 qx[AQ], gx[AQ];
#pragma unroll
        for (int j = 0; j < AQ; ++j) {
          qx[j] = *reinterpret_cast<const float4 *>(sQ + (aQ + AQS * j) * LD + c4 * 4);
          gx[j] = *reinterpret_cast<const float4 *>(sDO + (aQ + AQS * j) * LD + c4 * 4);
        }
#pragma unroll
        for (int i = 0; i < AK; ++i) {
          const float4 kx = *reinterpret_cast<const float4 *>(sK + (aKey + 16 * i) * LD + c4 * 4);
          const float4 vx = *reinterpret_cast<const float4 *>(sV + (aKey + 16 * i) * LD + c4 * 4);
#pragma unroll
          for (int j = 0; j < AQ; ++j) {
            sc[i][j] += dot4(kx, qx[j]);
            dp[i][j] += dot4(vx, gx[j]);
          }
        }
      }
#pragma unroll
      for (int j = 0; j < AQ; ++j) {
        const int tr = aQ + AQS * j;
        const int64_t t = c0 + tr;
        const float rowLse = sLse[tr], rowDi = sDi[tr];
        const KeyRange seen = visibleKeys(t + shift, S, causal, window);
#pragma unroll
        for (int i = 0; i < AK; ++i) {
          const int sr = aKey + 16 * i;
          const int64_t s = s0 + sr;
          float p = 0.0f;
          if (t < T && rowLse != kNegInf && s >= seen.lo && s <= seen.hi)
            p = expf(sc[i][j] * scale - rowLse);
          sP[sr * LDP + tr] = p;
          sDS[sr * LDP + tr] = p * (dp[i][j] - rowDi) * scale;
        }
      }
      __syncthreads();

      // B. dV += P^T dO and dK += dS^T Q for key row bRow.
#pragma unroll 4
      for (int tr = 0; tr < QC; ++tr) {
        const float p = sP[bRow * LDP + tr], ds = sDS[bRow * LDP + tr];
#pragma unroll
        for (int j = 0; j < C4; ++j) {
          const int c = (bCol + 4 * j) * 4;
          fma4(dVa[j], p, *reinterpret_cast<const float4 *>(sDO + tr * LD + c));
          fma4(dKa[j], ds, *reinterpret_cast<const float4 *>(sQ + tr * LD + c));
        }
      }
    }
  }

  if (bRow < kn) {
    const int64_t off = kvOff + bRow * kvStride;
#pragma unroll
    for (int j = 0; j < C4; ++j) {
      const int c = (bCol + 4 * j) * 4;
      *reinterpret_cast<float4 *>(dk + off + c) = dKa[j];
      *reinterpret_cast<float4 *>(dv + off + c) = dVa[j];
    }
  }
}

template <int D, int QT, int BK>
struct GradQConfig {
  static constexpr int kThreads = 4 * QT;
  static constexpr int kLd = D + 4;
  static constexpr int kLdS = BK + 1;
  static constexpr size_t kSmemBytes =
      (size_t(2) * QT * kLd + size_t(2) * BK * kLd + size_t(QT) * kLdS + 2 * QT) * 4;
};

template <int D, int QT, int BK>
__global__ void __launch_bounds__(4 * QT, 1)
    gradQKernel(const float *__restrict__ q, const float *__restrict__ k,
                const float *__restrict__ v, const float *__restrict__ out,
                const float *__restrict__ lse, const float *__restrict__ dout, int64_t B,
                int64_t T, int64_t S, int64_t H, int64_t Hkv, bool causal, int64_t window,
                float scale, float *__restrict__ dq) {
  using Cfg = GradQConfig<D, QT, BK>;
  constexpr int NT = Cfg::kThreads, LD = Cfg::kLd, LDS = Cfg::kLdS;
  constexpr int AR = QT / 16;     // step A: query rows per thread
  constexpr int AKS = NT / 16;    // step A: stride between a thread's keys
  constexpr int AK = BK / AKS;    // step A: keys per thread
  constexpr int C4 = D / 16;      // step B: float4 columns per thread
  static_assert(AK * AKS == BK && AR * 16 == QT, "step A mapping");
  constexpr float kNegInf = -INFINITY;

  extern __shared__ __align__(16) float smemF[];
  float *sQ = smemF, *sDO = sQ + QT * LD, *sK = sDO + QT * LD, *sV = sK + BK * LD;
  float *sDS = sV + BK * LD, *sLse = sDS + QT * LDS, *sDi = sLse + QT;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t BH = B * H, qTiles = (T + QT - 1) / QT;
  const int64_t tile = blockIdx.x;
  const int64_t qt = qTiles - 1 - tile / BH, bh = tile % BH;
  const int64_t b = bh / H, h = bh % H, kh = h / (H / Hkv);
  const int64_t t0 = qt * QT;
  const int rows = int(min64(QT, T - t0));
  const int64_t shift = S - T, qStride = H * D, kvStride = Hkv * D;
  const int64_t qOff = ((b * T + t0) * H + h) * D; // row r at qOff + r * qStride
  const float *kHead = k + b * S * kvStride + kh * D;
  const float *vHead = v + b * S * kvStride + kh * D;

  for (int idx = tid; idx < QT * D / 4; idx += NT) {
    const int rr = idx / (D / 4), c4 = idx % (D / 4);
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f), y = x;
    if (rr < rows) {
      x = load4(q + qOff + rr * qStride + c4 * 4);
      y = load4(dout + qOff + rr * qStride + c4 * 4);
    }
    *reinterpret_cast<float4 *>(sQ + rr * LD + c4 * 4) = x;
    *reinterpret_cast<float4 *>(sDO + rr * LD + c4 * 4) = y;
  }
  for (int rr = tid; rr < QT; rr += NT)
    sLse[rr] = rr < rows ? lse[(b * T + t0 + rr) * H + h] : kNegInf;
  __syncthreads();
  // Di = dout . out per row (double, as the CPU kernel), one warp per row.
  for (int rr = warp; rr < QT; rr += NT / 32) {
    double sum = 0.0;
    if (rr < rows)
      for (int c = lane; c < D; c += 32)
        sum += double(sDO[rr * LD + c]) * double(out[qOff + rr * qStride + c]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
      sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0)
      sDi[rr] = float(sum);
  }

  const int aRow = tid & 15, aKey = tid >> 4; // step A
  const int bRow = tid >> 2, bCol = tid & 3;  // step B
  float4 acc[C4];
#pragma unroll
  for (int j = 0; j < C4; ++j)
    acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);

  // Step A's rows: their visible key ranges.
  KeyRange seen[AR];
#pragma unroll
  for (int i = 0; i < AR; ++i)
    seen[i] = visibleKeys(t0 + aRow + 16 * i + shift, S, causal, window);

  const KeyRange first = visibleKeys(t0 + shift, S, causal, window);
  const KeyRange last = visibleKeys(t0 + rows - 1 + shift, S, causal, window);
  const int64_t sBegin = first.lo / BK * BK;
  for (int64_t s0 = sBegin; s0 <= last.hi; s0 += BK) {
    __syncthreads(); // the previous key tile is consumed (first time: Di is visible below)
    for (int idx = tid; idx < BK * D / 4; idx += NT) {
      const int rr = idx / (D / 4), c4 = idx % (D / 4);
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f), y = x;
      if (s0 + rr < S) {
        x = load4(kHead + (s0 + rr) * kvStride + c4 * 4);
        y = load4(vHead + (s0 + rr) * kvStride + c4 * 4);
      }
      *reinterpret_cast<float4 *>(sK + rr * LD + c4 * 4) = x;
      *reinterpret_cast<float4 *>(sV + rr * LD + c4 * 4) = y;
    }
    __syncthreads();

    // A. S and dP for rows aRow + 16 i, keys aKey + AKS j.
    float sc[AR][AK], dp[AR][AK];
#pragma unroll
    for (int i = 0; i < AR; ++i)
#pragma unroll
      for (int j = 0; j < AK; ++j)
        sc[i][j] = dp[i][j] = 0.0f;
#pragma unroll 1
    for (int c4 = 0; c4 < D / 4; ++c4) {
      float4 kx[AK], vx[AK];
#pragma unroll
      for (int j = 0; j < AK; ++j) {
        kx[j] = *reinterpret_cast<const float4 *>(sK + (aKey + AKS * j) * LD + c4 * 4);
        vx[j] = *reinterpret_cast<const float4 *>(sV + (aKey + AKS * j) * LD + c4 * 4);
      }
#pragma unroll
      for (int i = 0; i < AR; ++i) {
        const float4 qx = *reinterpret_cast<const float4 *>(sQ + (aRow + 16 * i) * LD + c4 * 4);
        const float4 gx = *reinterpret_cast<const float4 *>(sDO + (aRow + 16 * i) * LD + c4 * 4);
#pragma unroll
        for (int j = 0; j < AK; ++j) {
          sc[i][j] += dot4(qx, kx[j]);
          dp[i][j] += dot4(gx, vx[j]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < AR; ++i) {
      const int tr = aRow + 16 * i;
      const float rowLse = sLse[tr], rowDi = sDi[tr];
#pragma unroll
      for (int j = 0; j < AK; ++j) {
        const int sr = aKey + AKS * j;
        const int64_t s = s0 + sr;
        float p = 0.0f;
        if (tr < rows && rowLse != kNegInf && s >= seen[i].lo && s <= seen[i].hi)
          p = expf(sc[i][j] * scale - rowLse);
        sDS[tr * LDS + sr] = p * (dp[i][j] - rowDi) * scale;
      }
    }
    __syncthreads();

    // B. dQ += dS K for query row bRow.
#pragma unroll 4
    for (int sr = 0; sr < BK; ++sr) {
      const float ds = sDS[bRow * LDS + sr];
#pragma unroll
      for (int j = 0; j < C4; ++j)
        fma4(acc[j], ds, *reinterpret_cast<const float4 *>(sK + sr * LD + (bCol + 4 * j) * 4));
    }
  }

  if (bRow < rows) {
    const int64_t off = qOff + bRow * qStride;
#pragma unroll
    for (int j = 0; j < C4; ++j)
      *reinterpret_cast<float4 *>(dq + off + (bCol + 4 * j) * 4) = acc[j];
  }
}

//===----------------------------------------------------------------------------------===//
// Attention against a KV cache (f32, CUDA cores)
//===----------------------------------------------------------------------------------===//
//
// kvCacheAttendKernel: one block of 128 threads per (query i of the chunk, head h). The
// query at position p = *pos + i sees keys lo..p (lo = max(0, p - window + 1) with a
// window, else 0); key j comes from the chunk's k/v when j >= *pos and from the cache slot
// (window > 0 ? j % capacity : j) otherwise (as the CPU kernel: in a rolling buffer a later
// position of the chunk may own the slot of a key an earlier query sees, so the cache is
// written only after every query has run, by the second launch). The 4 warps are split into
// 16 groups of 8 lanes; group g takes the keys lo + g, lo + g + 16, ...; within a group,
// lane c of 8 holds the float2 elements c, c + 8, ... of the head (coalesced 64-byte
// segments), the dot product is reduced with three shuffles, and each group keeps its own
// online softmax (max m, sum l, accumulator). The 16 partial states are combined through
// shared memory (sM[16], sL[16], sAcc[16][D]) in a fixed order.
//
// kvCacheWriteKernel: copies the chunk's k/v rows of positions *pos + i into their slots
// (with a window, only the last `capacity` rows of a longer chunk, as the CPU kernel).

constexpr int kKvThreads = 128;
constexpr int kKvGroups = kKvThreads / 8;

template <int D>
__global__ void __launch_bounds__(kKvThreads)
    kvCacheAttendKernel(const float *__restrict__ q, const float *__restrict__ k,
                        const float *__restrict__ v, const float *__restrict__ cacheK,
                        const float *__restrict__ cacheV, int64_t capacity,
                        const int64_t *__restrict__ posPtr, int64_t H, int64_t Hkv,
                        int64_t window, float scale, float *__restrict__ out) {
  constexpr int kPairs = D / 16; // float2 elements per lane
  constexpr float kNegInf = -INFINITY;
  __shared__ float sM[kKvGroups], sL[kKvGroups];
  __shared__ __align__(16) float sAcc[kKvGroups][D];

  const int tid = threadIdx.x, lane = tid & 31;
  const int group = tid >> 3, sub = lane & 7;
  const unsigned groupMask = 0xffu << (lane & 24);
  const int64_t i = blockIdx.x / H, h = blockIdx.x % H, kh = h / (H / Hkv);
  const int64_t kvStride = Hkv * D;
  const int64_t pos = *posPtr, p = pos + i;
  const int64_t lo = window > 0 ? max64(0, p - window + 1) : 0;

  const float *qRow = q + (i * H + h) * D;
  float2 qv[kPairs], acc[kPairs];
#pragma unroll
  for (int c = 0; c < kPairs; ++c) {
    qv[c] = *reinterpret_cast<const float2 *>(qRow + (c * 8 + sub) * 2);
    acc[c] = make_float2(0.f, 0.f);
  }
  float m = kNegInf, l = 0.0f;
  for (int64_t j = lo + group; j <= p; j += kKvGroups) {
    const float *kr, *vr;
    if (j >= pos) {
      kr = k + (j - pos) * kvStride + kh * D;
      vr = v + (j - pos) * kvStride + kh * D;
    } else {
      const int64_t slot = window > 0 ? j % capacity : j;
      kr = cacheK + slot * kvStride + kh * D;
      vr = cacheV + slot * kvStride + kh * D;
    }
    float dot = 0.0f;
#pragma unroll
    for (int c = 0; c < kPairs; ++c) {
      const float2 x = *reinterpret_cast<const float2 *>(kr + (c * 8 + sub) * 2);
      dot += qv[c].x * x.x + qv[c].y * x.y;
    }
    dot += __shfl_xor_sync(groupMask, dot, 1);
    dot += __shfl_xor_sync(groupMask, dot, 2);
    dot += __shfl_xor_sync(groupMask, dot, 4);
    const float s = dot * scale;
    const float mNew = fmaxf(m, s);
    const float alpha = expf(m - mNew), w = expf(s - mNew); // m = -inf: alpha = 0
    l = l * alpha + w;
#pragma unroll
    for (int c = 0; c < kPairs; ++c) {
      const float2 x = *reinterpret_cast<const float2 *>(vr + (c * 8 + sub) * 2);
      acc[c].x = acc[c].x * alpha + w * x.x;
      acc[c].y = acc[c].y * alpha + w * x.y;
    }
    m = mNew;
  }

  if (sub == 0) {
    sM[group] = m;
    sL[group] = l;
  }
#pragma unroll
  for (int c = 0; c < kPairs; ++c)
    *reinterpret_cast<float2 *>(&sAcc[group][(c * 8 + sub) * 2]) = acc[c];
  __syncthreads();

  float M = kNegInf;
#pragma unroll
  for (int g = 0; g < kKvGroups; ++g)
    M = fmaxf(M, sM[g]);
  float L = 0.0f;
  float weight[kKvGroups];
#pragma unroll
  for (int g = 0; g < kKvGroups; ++g) {
    weight[g] = sM[g] == kNegInf ? 0.0f : expf(sM[g] - M);
    L += sL[g] * weight[g];
  }
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  for (int d = tid; d < D; d += kKvThreads) {
    float o = 0.0f;
#pragma unroll
    for (int g = 0; g < kKvGroups; ++g)
      o += sAcc[g][d] * weight[g];
    out[(i * H + h) * D + d] = o * inv;
  }
}

template <int D>
__global__ void __launch_bounds__(256)
    kvCacheWriteKernel(const float *__restrict__ k, const float *__restrict__ v,
                       float *__restrict__ cacheK, float *__restrict__ cacheV, int64_t capacity,
                       const int64_t *__restrict__ posPtr, int64_t C, int64_t firstKept,
                       int64_t Hkv, int64_t window) {
  const int64_t rowVecs = Hkv * D / 4;
  const int64_t n = (C - firstKept) * rowVecs;
  const int64_t pos = *posPtr;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = firstKept + idx / rowVecs, c = (idx % rowVecs) * 4;
    const int64_t p = pos + i;
    const int64_t slot = window > 0 ? p % capacity : p;
    *reinterpret_cast<float4 *>(cacheK + slot * Hkv * D + c) =
        *reinterpret_cast<const float4 *>(k + i * Hkv * D + c);
    *reinterpret_cast<float4 *>(cacheV + slot * Hkv * D + c) =
        *reinterpret_cast<const float4 *>(v + i * Hkv * D + c);
  }
}

} // namespace flash_detail

//===----------------------------------------------------------------------------------===//
// Host functions
//===----------------------------------------------------------------------------------===//

/// The forward: out[B,T,H,D] and lse[B,T,H] of q[B,T,H,D] against k/v[B,S,Hkv,D] (see the
/// file comment for the mask and the precision). H must be a multiple of Hkv. Bf16: the
/// products on tensor cores with q, k, v and the probabilities rounded to bf16 (sm_80 and
/// later); otherwise all in f32 on the CUDA cores (the f32 and tf32 programs).
template <int D, int BQ, int BK, bool Bf16 = true>
void flashAttention(const float *q, const float *k, const float *v, int64_t B, int64_t T,
                    int64_t S, int64_t H, int64_t Hkv, bool causal, int64_t window, float scale,
                    float *out, float *lse, cudaStream_t stream) {
  flash_detail::checkTiles<D, BQ, BK>();
  if (B <= 0 || T <= 0 || H <= 0 || Hkv <= 0)
    return;
  const int64_t blocks = (T + BQ - 1) / BQ * B * H;
  if constexpr (Bf16) {
    using Cfg = flash_detail::FwdConfig<D, BQ, BK>;
    auto kernel = flash_detail::flashForwardKernel<D, BQ, BK>;
    static std::atomic<unsigned long long> configured{0};
    flash_detail::allowSharedMemory(reinterpret_cast<const void *>(kernel), Cfg::kSmemBytes,
                                    configured);
    kernel<<<unsigned(blocks), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(
        q, k, v, B, T, S, H, Hkv, causal, window, scale * flash_detail::kLog2e, out, lse);
  } else {
    using Cfg = flash_detail::FwdF32Config<D, BQ, BK>;
    auto kernel = flash_detail::flashForwardF32Kernel<D, BQ, BK>;
    static std::atomic<unsigned long long> configured{0};
    flash_detail::allowSharedMemory(reinterpret_cast<const void *>(kernel), Cfg::kSmemBytes,
                                    configured);
    kernel<<<unsigned(blocks), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(
        q, k, v, B, T, S, H, Hkv, causal, window, scale, out, lse);
  }
}

/// The backward: dq[B,T,H,D], dk/dv[B,S,Hkv,D] (dk, dv summed over the query heads of each
/// kv head) from the forward's inputs, its out and lse, and dout. Every element of the three
/// outputs is written (zero where no query sees a key). dq doubles as scratch for the row
/// dots between the launches, so it must not alias an input.
template <int D, int BQ, int BK>
void flashAttentionGrad(const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *dout, int64_t B, int64_t T, int64_t S,
                        int64_t H, int64_t Hkv, bool causal, int64_t window, float scale,
                        float *dq, float *dk, float *dv, cudaStream_t stream) {
  flash_detail::checkTiles<D, BQ, BK>();
  if (B <= 0 || H <= 0 || Hkv <= 0)
    return;
  const int64_t rows = B * T * H;
  if (rows > 0)
    flash_detail::rowDotKernel<D><<<unsigned((rows + 7) / 8), 256, 0, stream>>>(out, dout,
                                                                                 rows, dq);
  if (S > 0) {
    using Cfg = flash_detail::GradKVConfig<D, BK>;
    auto kernel = flash_detail::gradKVKernel<D, BK>;
    static std::atomic<unsigned long long> configured{0};
    flash_detail::allowSharedMemory(reinterpret_cast<const void *>(kernel), Cfg::kSmemBytes,
                                    configured);
    const int64_t blocks = (S + BK - 1) / BK * B * Hkv;
    kernel<<<unsigned(blocks), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(
        q, k, v, lse, dq, dout, B, T, S, H, Hkv, causal, window, scale, dk, dv);
  }
  if (rows > 0) {
    constexpr int QT = BQ / 2;
    using Cfg = flash_detail::GradQConfig<D, QT, BK>;
    auto kernel = flash_detail::gradQKernel<D, QT, BK>;
    static std::atomic<unsigned long long> configured{0};
    flash_detail::allowSharedMemory(reinterpret_cast<const void *>(kernel), Cfg::kSmemBytes,
                                    configured);
    const int64_t blocks = (T + QT - 1) / QT * B * H;
    kernel<<<unsigned(blocks), Cfg::kThreads, Cfg::kSmemBytes, stream>>>(
        q, k, v, out, lse, dout, B, T, S, H, Hkv, causal, window, scale, dq);
  }
}

/// Inference with a KV cache, batch 1 (cpu::attentionKVCache): q[C,H,D] for positions
/// *pos .. *pos + C - 1 (pos a device pointer) attends causally, within the window, to the
/// cached keys and the chunk's own k/v[C,Hkv,D]; then the chunk's k/v are written into
/// cacheK/cacheV[capacity,Hkv,D] at slot p % capacity (window > 0, capacity == window) or p
/// (otherwise p < capacity). out[C,H,D].
template <int D>
void attentionKVCache(const float *q, const float *k, const float *v, float *cacheK,
                      float *cacheV, int64_t capacity, const int64_t *pos, int64_t C, int64_t H,
                      int64_t Hkv, int64_t window, float scale, float *out,
                      cudaStream_t stream) {
  static_assert(D % 16 == 0 && D >= 16 && D <= 128, "head dimension: a multiple of 16, <= 128");
  if (C <= 0 || H <= 0 || Hkv <= 0)
    return;
  flash_detail::kvCacheAttendKernel<D><<<unsigned(C * H), flash_detail::kKvThreads, 0, stream>>>(
      q, k, v, cacheK, cacheV, capacity, pos, H, Hkv, window, scale, out);
  const int64_t firstKept = window > 0 ? flash_detail::max64(0, C - capacity) : 0;
  const int64_t vecs = (C - firstKept) * Hkv * D / 4;
  const int64_t blocks = flash_detail::min64((vecs + 255) / 256, 4096);
  if (blocks > 0)
    flash_detail::kvCacheWriteKernel<D><<<unsigned(blocks), 256, 0, stream>>>(
        k, v, cacheK, cacheV, capacity, pos, C, firstKept, Hkv, window);
}

} // namespace llamac::cuda

#endif
