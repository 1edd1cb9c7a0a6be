//===- CpuKernels.cpp - the CPU kernels that generated programs launch ---------------===//
//
// GEMMs, and the matrix products inside the attention tiles, go through BLIS's typed API
// with explicit strides (so no operand is ever transposed in memory) and an explicit thread
// count. Everything else is plain loops written so that GCC vectorises them at the default
// ISA (contiguous inner loops, __restrict, no libm call in a hot loop: see expApprox), with
// OpenMP over the outer loop when the work pays for the threads. Sums that decide a
// normalisation or a loss (norms, softmax denominators, the loss itself) are accumulated in
// double; the rest in f32.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"

#include "runtime/cpu/Quantize.h"

#include <blis.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace llamac::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// Below this many elements an elementwise loop runs on the calling thread: waking the
/// OpenMP team costs a few microseconds, more than the loop itself.
constexpr int64_t kParallelElements = 1 << 15;

/// exp(x) in f32 to within 1e-7 relative, as straight-line code GCC vectorises (glibc's expf
/// is a call, which blocks vectorisation at the default ISA). Cephes' expf: x = n ln2 + r
/// with |r| <= ln2/2, a degree-6 polynomial for exp(r), and 2^n built in the exponent bits.
/// Inputs below -87 (the f32 normal range ends at exp(-87.3)), -inf included, give 0; above
/// 88 they saturate to exp(88), which no caller reaches (they subtract a maximum first).
inline float expApprox(float x) {
  float c = x < -87.0f ? -87.0f : x;
  c = c > 88.0f ? 88.0f : c;
  // Round c / ln2 to the nearest integer by adding 1.5 * 2^23 (no SSE2 rounding instruction).
  float t = c * 1.44269504088896341f + 12582912.0f;
  float n = t - 12582912.0f;
  // ln2 in two parts so that n * ln2 is exact in the first subtraction.
  float r = c - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return x < -87.0f ? 0.0f : y * __builtin_bit_cast(float, bits);
}

inline float sigmoidApprox(float x) { return 1.0f / (1.0f + expApprox(-x)); }

// The exp-bound row loops below are compiled twice, for the default ISA and for x86-64-v3
// (AVX2 and FMA: three times the throughput of expApprox), and the dynamic loader picks one
// per machine (GCC function multi-versioning): the library still runs on any x86-64.
// OpenMP outlines parallel loop bodies into functions of their own, which would not inherit
// the clones, so the clones are these leaf functions, called from inside the loops.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LLAMAC_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LLAMAC_HOT
#endif

LLAMAC_HOT float rowMax(const float *__restrict x, int64_t n) {
  float m = kNegInf;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i)
    m = x[i] > m ? x[i] : m;
  return m;
}

/// sum(exp(x - shift)) in double.
LLAMAC_HOT double sumExpShifted(const float *__restrict x, int64_t n, float shift) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i)
    sum += expApprox(x[i] - shift);
  return sum;
}

/// x = exp(x - shift) in place; returns the sum in double.
LLAMAC_HOT double expShiftedInPlace(float *__restrict x, int64_t n, float shift) {
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    x[i] = expApprox(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

/// out = factor * exp(x - shift).
LLAMAC_HOT void scaledExpShifted(const float *__restrict x, int64_t n, float shift,
                                 float factor, float *__restrict out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = factor * expApprox(x[i] - shift);
}

/// The transpose of a rows x cols block with row stride `ld` into out[cols, rows]: the
/// attention tiles multiply by K^T and V^T, and BLIS runs about twice as fast on a
/// row-stored right operand as on a strided transposed one.
void transposeTile(const float *__restrict in, int64_t rows, int64_t cols, int64_t ld,
                   float *__restrict out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[c * rows + r] = in[r * ld + c];
}

LLAMAC_HOT void swigluRow(const float *__restrict gate, const float *__restrict up, int64_t F,
                          float *__restrict out) {
  for (int64_t i = 0; i < F; ++i)
    out[i] = gate[i] * sigmoidApprox(gate[i]) * up[i];
}

LLAMAC_HOT void swigluGradRow(const float *__restrict gate, const float *__restrict up,
                              const float *__restrict g, int64_t F, float *__restrict dgate,
                              float *__restrict dup) {
  for (int64_t i = 0; i < F; ++i) {
    float s = sigmoidApprox(gate[i]);
    // silu'(x) = s (1 + x (1 - s)), applied to the cotangent of silu(gate), dy * up.
    dgate[i] = g[i] * up[i] * s * (1.0f + gate[i] * (1.0f - s));
    dup[i] = g[i] * gate[i] * s;
  }
}

/// The threads a BLIS call may use: all of OpenMP's outside a parallel region, one inside
/// (the attention kernels call BLIS per tile from their own parallel loops).
int blisThreads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/// C = alpha op(A) op(B) + beta C for general strides: A is m x k with element (i, p) at
/// A[i * rsA + p * csA], B k x n likewise, C m x n. A transposed operand is just swapped
/// strides, so every caller names its layout instead of a transpose flag.
void sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t rsA,
           int64_t csA, const float *b, int64_t rsB, int64_t csB, float beta, float *c,
           int64_t rsC, int64_t csC, int threads) {
  if (m == 0 || n == 0)
    return;
  rntm_t rntm;
  bli_rntm_init(&rntm);
  bli_rntm_set_num_threads(threads, &rntm);
  // The typed API takes non-const pointers but only reads A, B, alpha and beta.
  bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, const_cast<float *>(a),
               rsA, csA, const_cast<float *>(b), rsB, csB, &beta, c, rsC, csC, nullptr, &rntm);
}

/// The keys [lo, hi] the query at key position `pos` sees (as the interpreter's
/// visibleKeys): empty when lo > hi.
struct KeyRange {
  int64_t lo, hi;
};
KeyRange visibleKeys(int64_t pos, int64_t numKeys, bool causal, int64_t window) {
  int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
  int64_t hi = causal ? std::min(pos, numKeys - 1) : numKeys - 1;
  return {lo, hi};
}

/// sum(x * y) in double.
inline double dotDouble(const float *__restrict x, const float *__restrict y, int64_t n) {
  double acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i)
    acc += double(x[i]) * double(y[i]);
  return acc;
}

/// The cos and sin of RoPE's angles (position offset + t, pair i: (offset + t) *
/// theta^(-2i/D)) for t in [0, T), computed in double as the interpreter does (positions in
/// the thousands lose the angle's low bits in f32), stored as f32 [T, D/2].
void ropeTables(int64_t T, int64_t D, double theta, int64_t offset, std::vector<float> &cosines,
                std::vector<float> &sines) {
  int64_t half = D / 2;
  cosines.resize(T * half);
  sines.resize(T * half);
  std::vector<double> freq(half);
  for (int64_t i = 0; i < half; ++i)
    freq[i] = std::pow(theta, -2.0 * double(i) / double(D));
#pragma omp parallel for if (T * half > 4096)
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(t + offset) * freq[i];
      cosines[t * half + i] = float(std::cos(angle));
      sines[t * half + i] = float(std::sin(angle));
    }
}

/// Rotates D channels by pairs; sign -1 rotates by the opposite angle (the transpose).
inline void rotatePairs(const float *__restrict in, float *__restrict out,
                        const float *__restrict cosines, const float *__restrict sines,
                        int64_t half, float sign) {
  for (int64_t i = 0; i < half; ++i) {
    float x0 = in[2 * i], x1 = in[2 * i + 1], c = cosines[i], s = sign * sines[i];
    out[2 * i] = x0 * c - x1 * s;
    out[2 * i + 1] = x0 * s + x1 * c;
  }
}

/// The row sums of the rms-norm weight gradient: dw[i] = sum_r dy[r, i] x[r, i] inv[r].
/// Parallel over column blocks rather than rows so that no thread shares an output and the
/// result does not depend on the thread count.
void rmsNormWeightGrad(const float *x, const float *dy, const double *inv, int64_t rows,
                       int64_t dim, float *dw) {
  constexpr int64_t kCols = 64;
  int64_t blocks = (dim + kCols - 1) / kCols;
#pragma omp parallel for if (rows * dim >= kParallelElements)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t c0 = blk * kCols, width = std::min(kCols, dim - c0);
    double acc[kCols] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float *__restrict xr = x + r * dim + c0, *__restrict gr = dy + r * dim + c0;
      double s = inv[r];
      for (int64_t i = 0; i < width; ++i)
        acc[i] += double(gr[i]) * double(xr[i]) * s;
    }
    for (int64_t i = 0; i < width; ++i)
      dw[c0 + i] = float(acc[i]);
  }
}

/// rms-norm backward for the rows of x: dx = inv (dy w - x inv^2 mean(dy w x)) (+ dsum),
/// inv[r] kept for the weight gradient.
void rmsNormInputGrad(const float *x, const float *w, const float *dy, const float *dsum,
                      int64_t rows, int64_t dim, double eps, float *dx, double *inv) {
#pragma omp parallel for if (rows * dim >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *__restrict xr = x + r * dim, *__restrict gr = dy + r * dim;
    double ss = 0, gx = 0;
#pragma omp simd reduction(+ : ss, gx)
    for (int64_t i = 0; i < dim; ++i) {
      ss += double(xr[i]) * double(xr[i]);
      gx += double(gr[i]) * double(w[i]) * double(xr[i]);
    }
    double rowInv = 1.0 / std::sqrt(ss / double(dim) + eps);
    inv[r] = rowInv;
    float a = float(rowInv), b = float(rowInv * rowInv * rowInv * gx / double(dim));
    float *__restrict out = dx + r * dim;
    if (dsum) {
      const float *__restrict ds = dsum + r * dim;
      for (int64_t i = 0; i < dim; ++i)
        out[i] = ds[i] + a * gr[i] * w[i] - b * xr[i];
    } else {
      for (int64_t i = 0; i < dim; ++i)
        out[i] = a * gr[i] * w[i] - b * xr[i];
    }
  }
}

} // namespace

//===----------------------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------------------===//

void gemmNT(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate) {
  // B[N, K] read as K x N: element (p, j) at B[j * K + p].
  sgemm(M, N, K, 1.0f, A, K, 1, B, 1, K, accumulate ? 1.0f : 0.0f, C, N, 1, blisThreads());
}

void gemmNN(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate) {
  sgemm(M, N, K, 1.0f, A, K, 1, B, N, 1, accumulate ? 1.0f : 0.0f, C, N, 1, blisThreads());
}

void gemmTN(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate) {
  // A[K, M] read as M x K: element (i, p) at A[p * M + i].
  sgemm(M, N, K, 1.0f, A, 1, M, B, N, 1, accumulate ? 1.0f : 0.0f, C, N, 1, blisThreads());
}

//===----------------------------------------------------------------------------------===//
// int8 GEMM (inference with quantised weights)
//===----------------------------------------------------------------------------------===//

namespace {

int32_t dotQ8Scalar(const int8_t *a, const int8_t *b, int64_t k) {
  int32_t total = 0;
  for (int64_t i = 0; i < k; ++i)
    total += int32_t(a[i]) * int32_t(b[i]);
  return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
// 32 products per step: maddubs multiplies unsigned by signed bytes, so |a| goes in as the
// unsigned operand and a's sign moves onto b. Values are in [-127, 127], so a pair of
// products (at most 2 x 127 x 127 = 32258) fits the int16 maddubs makes.
__attribute__((target("avx2"))) int32_t dotQ8Avx2(const int8_t *a, const int8_t *b,
                                                  int64_t k) {
  __m256i acc = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a + i));
    __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + i));
    __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(va, va), _mm256_sign_epi8(vb, va));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_hadd_epi32(s, s);
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(s) + dotQ8Scalar(a + i, b + i, k - i);
}
inline __attribute__((target("avx2"))) int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_hadd_epi32(s, s);
  s = _mm_hadd_epi32(s, s);
  return _mm_cvtsi128_si32(s);
}

/// Four rows of B against one row of a: each 32-byte slice of a is loaded and sign-split
/// once for the four, and the four sums share the loop.
__attribute__((target("avx2"))) void dotQ8Avx2x4(const int8_t *a, const int8_t *b,
                                                 int64_t ldb, int64_t k, int32_t *out) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(a + i));
    __m256i absa = _mm256_sign_epi8(va, va);
    // (A lambda would not inherit the function's target; hence the macro.)
#define LLAMAC_Q8_STEP(acc, row)                                                              \
  acc = _mm256_add_epi32(                                                                    \
      acc, _mm256_madd_epi16(                                                                \
               _mm256_maddubs_epi16(                                                         \
                   absa, _mm256_sign_epi8(                                                   \
                             _mm256_loadu_si256(reinterpret_cast<const __m256i *>((row) + i)), \
                             va)),                                                           \
               ones))
    LLAMAC_Q8_STEP(acc0, b);
    LLAMAC_Q8_STEP(acc1, b + ldb);
    LLAMAC_Q8_STEP(acc2, b + 2 * ldb);
    LLAMAC_Q8_STEP(acc3, b + 3 * ldb);
#undef LLAMAC_Q8_STEP
  }
  out[0] = hsum(acc0) + dotQ8Scalar(a + i, b + i, k - i);
  out[1] = hsum(acc1) + dotQ8Scalar(a + i, b + ldb + i, k - i);
  out[2] = hsum(acc2) + dotQ8Scalar(a + i, b + 2 * ldb + i, k - i);
  out[3] = hsum(acc3) + dotQ8Scalar(a + i, b + 3 * ldb + i, k - i);
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#else
const bool kHaveAvx2 = false;
int32_t dotQ8Avx2(const int8_t *a, const int8_t *b, int64_t k) { return dotQ8Scalar(a, b, k); }
void dotQ8Avx2x4(const int8_t *a, const int8_t *b, int64_t ldb, int64_t k, int32_t *out) {
  for (int r = 0; r < 4; ++r)
    out[r] = dotQ8Scalar(a, b + r * ldb, k);
}
#endif

} // namespace

void gemmNTQ8(int64_t M, int64_t N, int64_t K, const float *A, const int8_t *B,
              const float *scales, float *C, int64_t rowsPerTask) {
  // The rows of A are few (one per decoded token, a chunk in prefill): quantise them once,
  // then stream the weights, each row of B meeting every row of A while it is in L1.
  std::vector<int8_t> qa(M * K);
  std::vector<float> sa(M);
  quantizeRowsQ8(A, M, K, qa.data(), sa.data());
  const int64_t kBlock = std::max<int64_t>(4, rowsPerTask);
  int64_t blocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * K >= kParallelElements && !omp_in_parallel())
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t end = std::min(N, (b + 1) * kBlock), n = b * kBlock;
    if (kHaveAvx2)
      for (; n + 4 <= end; n += 4)
        for (int64_t m = 0; m < M; ++m) {
          int32_t dots[4];
          dotQ8Avx2x4(qa.data() + m * K, B + n * K, K, K, dots);
          for (int r = 0; r < 4; ++r)
            C[m * N + n + r] = float(dots[r]) * sa[m] * scales[n + r];
        }
    for (; n < end; ++n)
      for (int64_t m = 0; m < M; ++m) {
        int32_t dot = kHaveAvx2 ? dotQ8Avx2(qa.data() + m * K, B + n * K, K)
                                : dotQ8Scalar(qa.data() + m * K, B + n * K, K);
        C[m * N + n] = float(dot) * sa[m] * scales[n];
      }
  }
}

//===----------------------------------------------------------------------------------===//
// Mixed precision
//===----------------------------------------------------------------------------------===//

namespace {

inline uint16_t toBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (f != f)
    return uint16_t((bits >> 16) | 0x40); // a quiet NaN
  return uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

inline float fromBf16(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// The f32 GEMM `f32Gemm` on widened copies of bf16 operands, its result rounded to bf16.
/// The copies live in per-thread buffers that grow to the largest product seen.
template <class F32Gemm>
void gemmBf16(int64_t aElems, int64_t bElems, int64_t cElems, const uint16_t *A,
              const uint16_t *B, uint16_t *C, bool accumulate, F32Gemm f32Gemm) {
  thread_local std::vector<float> a, b, c;
  a.resize(size_t(aElems));
  b.resize(size_t(bElems));
  c.resize(size_t(cElems));
  cast(A, aElems, a.data());
  cast(B, bElems, b.data());
  if (accumulate)
    cast(C, cElems, c.data());
  f32Gemm(a.data(), b.data(), c.data(), accumulate);
  cast(c.data(), cElems, C);
}

} // namespace

void cast(const float *in, int64_t n, uint16_t *out) {
#pragma omp parallel for if (n >= 4 * kParallelElements && !omp_in_parallel())
  for (int64_t i = 0; i < n; ++i)
    out[i] = toBf16(in[i]);
}

void cast(const uint16_t *in, int64_t n, float *out) {
#pragma omp parallel for if (n >= 4 * kParallelElements && !omp_in_parallel())
  for (int64_t i = 0; i < n; ++i)
    out[i] = fromBf16(in[i]);
}

#define LLAMAC_GEMM_BF16(NAME, AE, BE)                                                      \
  void NAME(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,          \
            uint16_t *C, bool accumulate) {                                                 \
    gemmBf16(AE, BE, M * N, A, B, C, accumulate,                                            \
             [&](const float *a, const float *b, float *c, bool acc) {                      \
               NAME(M, N, K, a, b, c, acc);                                                 \
             });                                                                            \
  }                                                                                         \
  void NAME##Own(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,     \
                 uint16_t *C, bool accumulate, int64_t kc) {                                \
    gemmBf16(AE, BE, M * N, A, B, C, accumulate,                                            \
             [&](const float *a, const float *b, float *c, bool acc) {                      \
               NAME##Own(M, N, K, a, b, c, acc, kc);                                        \
             });                                                                            \
  }
// Operand sizes: nt A[M,K] B[N,K]; nn A[M,K] B[K,N]; tn A[K,M] B[K,N].
LLAMAC_GEMM_BF16(gemmNT, M * K, N * K)
LLAMAC_GEMM_BF16(gemmNN, M * K, K * N)
LLAMAC_GEMM_BF16(gemmTN, K * M, K * N)
#undef LLAMAC_GEMM_BF16

//===----------------------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------------------===//

void fill(float *out, int64_t n, float value) {
#pragma omp parallel for if (n >= 4 * kParallelElements)
  for (int64_t i = 0; i < n; ++i)
    out[i] = value;
}

void copy(const float *in, int64_t n, float *out) {
  constexpr int64_t kChunk = 1 << 16;
  int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n >= 4 * kParallelElements)
  for (int64_t c = 0; c < chunks; ++c)
    std::memcpy(out + c * kChunk, in + c * kChunk,
                sizeof(float) * std::min(kChunk, n - c * kChunk));
}

void copyRows(const float *in, int64_t rows, int64_t cols, int64_t inStride, int64_t outStride,
              float *out) {
#pragma omp parallel for if (rows * cols >= 4 * kParallelElements)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out + r * outStride, in + r * inStride, sizeof(float) * cols);
}

void copyRows(const uint16_t *in, int64_t rows, int64_t cols, int64_t inStride,
              int64_t outStride, uint16_t *out) {
#pragma omp parallel for if (rows * cols >= 4 * kParallelElements)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out + r * outStride, in + r * inStride, sizeof(uint16_t) * cols);
}

//===----------------------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------------------===//

namespace {

/// One element of `Op`; a template parameter, so that each loop below that applies it is
/// branch-free and vectorises.
template <Binary Op> inline float binaryOp(float x, float y) {
  if constexpr (Op == Binary::Add)
    return x + y;
  else if constexpr (Op == Binary::Sub)
    return x - y;
  else if constexpr (Op == Binary::Mul)
    return x * y;
  else if constexpr (Op == Binary::Div)
    return x / y;
  else if constexpr (Op == Binary::Max)
    return x > y ? x : y;
  else
    return x < y ? x : y;
}

/// out[i] = a[i] op b[i] over one contiguous run.
template <Binary Op>
void binaryRun(const float *__restrict a, const float *__restrict b, int64_t n,
               float *__restrict out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = binaryOp<Op>(a[i], b[i]);
}

/// The same with a scalar right operand (bSize == 1).
template <Binary Op>
void binaryScalar(const float *__restrict a, float y, int64_t n, float *__restrict out) {
  for (int64_t i = 0; i < n; ++i)
    out[i] = binaryOp<Op>(a[i], y);
}

template <Binary Op>
void binaryImpl(const float *a, const float *b, int64_t n, int64_t bSize, float *out) {
  if (bSize == 1) {
    float y = b[0];
    constexpr int64_t kChunk = 1 << 14;
    int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n >= kParallelElements)
    for (int64_t c = 0; c < chunks; ++c)
      binaryScalar<Op>(a + c * kChunk, y, std::min(kChunk, n - c * kChunk), out + c * kChunk);
    return;
  }
  // b repeats every bSize elements (bSize == n: no repetition); a long b is cut into chunks
  // too so that a plain elementwise op still spreads over the threads.
  constexpr int64_t kChunk = 1 << 14;
  int64_t chunk = std::min(bSize, kChunk);
  int64_t perBlock = (bSize + chunk - 1) / chunk, blocks = (n + bSize - 1) / bSize;
#pragma omp parallel for collapse(2) if (n >= kParallelElements)
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t c = 0; c < perBlock; ++c) {
      int64_t lo = c * chunk, hi = std::min(std::min(bSize, lo + chunk), n - blk * bSize);
      if (hi > lo)
        binaryRun<Op>(a + blk * bSize + lo, b + lo, hi - lo, out + blk * bSize + lo);
    }
}

template <Unary Op>
void unaryRun(const float *__restrict in, int64_t n, float *__restrict out) {
  for (int64_t i = 0; i < n; ++i) {
    float x = in[i];
    if constexpr (Op == Unary::Neg)
      out[i] = -x;
    else if constexpr (Op == Unary::Exp)
      out[i] = expApprox(x);
    else if constexpr (Op == Unary::Log)
      out[i] = std::log(x);
    else if constexpr (Op == Unary::Sqrt)
      out[i] = std::sqrt(x);
    else if constexpr (Op == Unary::Rsqrt)
      out[i] = 1.0f / std::sqrt(x);
    else if constexpr (Op == Unary::Silu)
      out[i] = x * sigmoidApprox(x);
    else if constexpr (Op == Unary::Sigmoid)
      out[i] = sigmoidApprox(x);
    else if constexpr (Op == Unary::Tanh)
      out[i] = std::tanh(x);
    else
      out[i] = std::fabs(x);
  }
}

template <Unary Op> void unaryImpl(const float *in, int64_t n, float *out) {
  constexpr int64_t kChunk = 1 << 14;
  int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for if (n >= kParallelElements)
  for (int64_t c = 0; c < chunks; ++c)
    unaryRun<Op>(in + c * kChunk, std::min(kChunk, n - c * kChunk), out + c * kChunk);
}

} // namespace

void binary(Binary op, const float *a, const float *b, int64_t n, int64_t bSize, float *out) {
  switch (op) {
  case Binary::Add:
    return binaryImpl<Binary::Add>(a, b, n, bSize, out);
  case Binary::Sub:
    return binaryImpl<Binary::Sub>(a, b, n, bSize, out);
  case Binary::Mul:
    return binaryImpl<Binary::Mul>(a, b, n, bSize, out);
  case Binary::Div:
    return binaryImpl<Binary::Div>(a, b, n, bSize, out);
  case Binary::Max:
    return binaryImpl<Binary::Max>(a, b, n, bSize, out);
  case Binary::Min:
    return binaryImpl<Binary::Min>(a, b, n, bSize, out);
  }
}

void unary(Unary op, const float *in, int64_t n, float *out) {
  switch (op) {
  case Unary::Neg:
    return unaryImpl<Unary::Neg>(in, n, out);
  case Unary::Exp:
    return unaryImpl<Unary::Exp>(in, n, out);
  case Unary::Log:
    return unaryImpl<Unary::Log>(in, n, out);
  case Unary::Sqrt:
    return unaryImpl<Unary::Sqrt>(in, n, out);
  case Unary::Rsqrt:
    return unaryImpl<Unary::Rsqrt>(in, n, out);
  case Unary::Silu:
    return unaryImpl<Unary::Silu>(in, n, out);
  case Unary::Sigmoid:
    return unaryImpl<Unary::Sigmoid>(in, n, out);
  case Unary::Tanh:
    return unaryImpl<Unary::Tanh>(in, n, out);
  case Unary::Abs:
    return unaryImpl<Unary::Abs>(in, n, out);
  }
}

void scale(const float *in, int64_t n, float s, float *out) {
  binaryImpl<Binary::Mul>(in, &s, n, 1, out);
}

//===----------------------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------------------===//

bool embedding(const float *table, const int32_t *tokens, int64_t n, int64_t dim, int64_t vocab,
               float *out, int64_t *badIndex) {
  // Find the first bad token before copying, so that the rows before it are written (as the
  // interpreter does) and nothing after it.
  int64_t valid = n;
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      valid = i;
      break;
    }
#pragma omp parallel for if (valid * dim >= 4 * kParallelElements)
  for (int64_t i = 0; i < valid; ++i)
    std::memcpy(out + i * dim, table + int64_t(tokens[i]) * dim, sizeof(float) * dim);
  if (valid == n)
    return true;
  if (badIndex)
    *badIndex = valid;
  return false;
}

void embeddingGrad(const int32_t *tokens, const float *grad, int64_t n, int64_t dim,
                   int64_t vocab, float *out) {
  fill(out, vocab * dim, 0.0f);
  // Threads own column blocks, so that two positions with the same token never race; the
  // sum over positions runs in position order, as the interpreter's.
  constexpr int64_t kCols = 64;
  int64_t blocks = (dim + kCols - 1) / kCols;
#pragma omp parallel for if (n * dim >= kParallelElements && blocks > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t c0 = blk * kCols, width = std::min(kCols, dim - c0);
    for (int64_t p = 0; p < n; ++p) {
      int32_t id = tokens[p];
      if (id < 0 || id >= vocab)
        continue;
      float *__restrict o = out + int64_t(id) * dim + c0;
      const float *__restrict g = grad + p * dim + c0;
      for (int64_t i = 0; i < width; ++i)
        o[i] += g[i];
    }
  }
}

//===----------------------------------------------------------------------------------===//
// Normalisation
//===----------------------------------------------------------------------------------===//

void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y) {
#pragma omp parallel for if (rows * dim >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *__restrict xr = x + r * dim;
    float *__restrict yr = y + r * dim;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; ++i)
      ss += double(xr[i]) * double(xr[i]);
    float inv = float(1.0 / std::sqrt(ss / double(dim) + eps));
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = xr[i] * inv * w[i];
  }
}

void rmsNormGrad(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                 double eps, float *dx, float *dw) {
  std::vector<double> inv(rows);
  rmsNormInputGrad(x, w, dy, nullptr, rows, dim, eps, dx, inv.data());
  rmsNormWeightGrad(x, dy, inv.data(), rows, dim, dw);
}

void addRmsNorm(const float *x, const float *residual, const float *w, int64_t rows,
                int64_t dim, double eps, float *sum, float *y) {
#pragma omp parallel for if (rows * dim >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *__restrict xr = x + r * dim, *__restrict rr = residual + r * dim;
    float *__restrict sr = sum + r * dim, *__restrict yr = y + r * dim;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; ++i) {
      float s = xr[i] + rr[i];
      sr[i] = s;
      ss += double(s) * double(s);
    }
    float inv = float(1.0 / std::sqrt(ss / double(dim) + eps));
    for (int64_t i = 0; i < dim; ++i)
      yr[i] = sr[i] * inv * w[i];
  }
}

void addRmsNormGrad(const float *sum, const float *w, const float *dnormed, const float *dsum,
                    int64_t rows, int64_t dim, double eps, float *dx, float *dw) {
  std::vector<double> inv(rows);
  rmsNormInputGrad(sum, w, dnormed, dsum, rows, dim, eps, dx, inv.data());
  rmsNormWeightGrad(sum, dnormed, inv.data(), rows, dim, dw);
}

//===----------------------------------------------------------------------------------===//
// Fused feed-forward and attention input
//===----------------------------------------------------------------------------------===//

void swiglu(const float *x, int64_t rows, int64_t F, float *y) {
#pragma omp parallel for if (rows * F >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *gate = x + r * 2 * F;
    swigluRow(gate, gate + F, F, y + r * F);
  }
}

void swigluGrad(const float *x, const float *dy, int64_t rows, int64_t F, float *dx) {
#pragma omp parallel for if (rows * F >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *gate = x + r * 2 * F;
    float *dgate = dx + r * 2 * F;
    swigluGradRow(gate, gate + F, dy + r * F, F, dgate, dgate + F);
  }
}

void qkvRope(const float *x, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
             double theta, int64_t offset, float *q, float *k, float *v) {
  std::vector<float> cosines, sines;
  ropeTables(T, D, theta, offset, cosines, sines);
  int64_t half = D / 2, width = (H + 2 * Hkv) * D;
#pragma omp parallel for if (B * T * width >= kParallelElements)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const float *row = x + bt * width;
    const float *c = cosines.data() + (bt % T) * half, *s = sines.data() + (bt % T) * half;
    for (int64_t h = 0; h < H; ++h)
      rotatePairs(row + h * D, q + (bt * H + h) * D, c, s, half, 1.0f);
    for (int64_t h = 0; h < Hkv; ++h) {
      rotatePairs(row + (H + h) * D, k + (bt * Hkv + h) * D, c, s, half, 1.0f);
      std::memcpy(v + (bt * Hkv + h) * D, row + (H + Hkv + h) * D, sizeof(float) * D);
    }
  }
}

void qkvRopeGrad(const float *dq, const float *dk, const float *dv, int64_t B, int64_t T,
                 int64_t H, int64_t Hkv, int64_t D, double theta, int64_t offset, float *dx) {
  std::vector<float> cosines, sines;
  ropeTables(T, D, theta, offset, cosines, sines);
  int64_t half = D / 2, width = (H + 2 * Hkv) * D;
#pragma omp parallel for if (B * T * width >= kParallelElements)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    float *row = dx + bt * width;
    const float *c = cosines.data() + (bt % T) * half, *s = sines.data() + (bt % T) * half;
    // The rotation is orthogonal: its transpose rotates by the opposite angle.
    for (int64_t h = 0; h < H; ++h)
      rotatePairs(dq + (bt * H + h) * D, row + h * D, c, s, half, -1.0f);
    for (int64_t h = 0; h < Hkv; ++h) {
      rotatePairs(dk + (bt * Hkv + h) * D, row + (H + h) * D, c, s, half, -1.0f);
      std::memcpy(row + (H + Hkv + h) * D, dv + (bt * Hkv + h) * D, sizeof(float) * D);
    }
  }
}

//===----------------------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------------------===//

void flashAttention(const float *q, const float *k, const float *v, int64_t B, int64_t T,
                    int64_t S, int64_t H, int64_t Hkv, int64_t D, bool causal, int64_t window,
                    double scale, int64_t blockQ, int64_t blockK, float *out, float *lse) {
  int64_t group = H / Hkv;
  int64_t bq = std::clamp<int64_t>(blockQ, 1, std::max<int64_t>(T, 1));
  int64_t bk = std::clamp<int64_t>(blockK, 1, std::max<int64_t>(S, 1));
  int64_t qTiles = (T + bq - 1) / bq;
  int64_t qStride = H * D, kvStride = Hkv * D;
  float fscale = float(scale);
#pragma omp parallel
  {
    // One query tile's state: scores/probabilities against one key tile, the running
    // maximum m and sum l per row, and the output accumulated under exp(-m).
    std::vector<float> scores(bq * bk), acc(bq * D), m(bq), kT(D * bk);
    std::vector<double> l(bq);
    // Causal tiles differ in work (the first sees one key tile, the last all of them).
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t qt = 0; qt < qTiles; ++qt) {
          int64_t t0 = qt * bq, rows = std::min(bq, T - t0), kh = h / group;
          const float *qTile = q + ((b * T + t0) * H + h) * D;
          std::fill_n(m.begin(), rows, kNegInf);
          std::fill_n(l.begin(), rows, 0.0);
          std::fill_n(acc.begin(), rows * D, 0.0f);
          // Queries are aligned with the end of the keys; both ends of a row's visible
          // range grow with its position, so the tile sees at most [first.lo, last.hi].
          KeyRange first = visibleKeys(t0 + S - T, S, causal, window);
          KeyRange last = visibleKeys(t0 + rows - 1 + S - T, S, causal, window);
          for (int64_t s0 = first.lo / bk * bk; s0 <= last.hi; s0 += bk) {
            int64_t s1 = std::min(s0 + bk, S), kn = s1 - s0;
            const float *kTile = k + ((b * S + s0) * Hkv + kh) * D;
            const float *vTile = v + ((b * S + s0) * Hkv + kh) * D;
            // scores[rows, kn] = scale * Q K^T.
            transposeTile(kTile, kn, D, kvStride, kT.data());
            sgemm(rows, kn, D, fscale, qTile, qStride, 1, kT.data(), kn, 1, 0.0f, scores.data(),
                  kn, 1, 1);
            for (int64_t r = 0; r < rows; ++r) {
              KeyRange seen = visibleKeys(t0 + r + S - T, S, causal, window);
              int64_t lo = std::max(s0, seen.lo) - s0, hi = std::min(s1 - 1, seen.hi) - s0;
              float *__restrict p = scores.data() + r * kn;
              if (lo > hi) { // this row sees nothing here: a zero row of P adds nothing
                std::fill_n(p, kn, 0.0f);
                continue;
              }
              float mNew = std::max(m[r], rowMax(p + lo, hi - lo + 1));
              // What was accumulated under the old maximum is rescaled to the new one
              // (exp(-inf) = 0 on the row's first visible tile).
              float alpha = expApprox(m[r] - mNew);
              std::fill_n(p, lo, 0.0f);
              double sum = expShiftedInPlace(p + lo, hi - lo + 1, mNew);
              std::fill(p + hi + 1, p + kn, 0.0f);
              l[r] = l[r] * alpha + sum;
              m[r] = mNew;
              if (alpha != 1.0f) {
                float *__restrict a = acc.data() + r * D;
                for (int64_t i = 0; i < D; ++i)
                  a[i] *= alpha;
              }
            }
            // acc[rows, D] += P V.
            sgemm(rows, D, kn, 1.0f, scores.data(), kn, 1, vTile, kvStride, 1, 1.0f, acc.data(),
                  D, 1, 1);
          }
          for (int64_t r = 0; r < rows; ++r) {
            int64_t row = (b * T + t0 + r) * H + h;
            float *__restrict o = out + row * D;
            if (m[r] == kNegInf) { // no visible key: a zero output, lse -inf
              std::fill_n(o, D, 0.0f);
              lse[row] = kNegInf;
              continue;
            }
            float inv = float(1.0 / l[r]);
            const float *__restrict a = acc.data() + r * D;
            for (int64_t i = 0; i < D; ++i)
              o[i] = a[i] * inv;
            lse[row] = float(double(m[r]) + std::log(l[r]));
          }
        }
  }
}

void flashAttentionGrad(const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *dout, int64_t B, int64_t T, int64_t S,
                        int64_t H, int64_t Hkv, int64_t D, bool causal, int64_t window,
                        double scale, int64_t blockQ, int64_t blockK, float *dq, float *dk,
                        float *dv) {
  int64_t group = H / Hkv;
  int64_t bq = std::clamp<int64_t>(blockQ, 1, std::max<int64_t>(T, 1));
  int64_t bk = std::clamp<int64_t>(blockK, 1, std::max<int64_t>(S, 1));
  int64_t qStride = H * D, kvStride = Hkv * D;
  float fscale = float(scale);
#pragma omp parallel
  {
    std::vector<float> p(bq * bk), dp(bq * bk), rowDot(group * T), kT(D * bk), vT(D * bk);
    // One task per (batch, KV head): it owns that head's dK and dV rows and the dQ rows of
    // the query heads of its group, so no two tasks write the same element.
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t kh = 0; kh < Hkv; ++kh) {
        for (int64_t s = 0; s < S; ++s) {
          std::fill_n(dk + ((b * S + s) * Hkv + kh) * D, D, 0.0f);
          std::fill_n(dv + ((b * S + s) * Hkv + kh) * D, D, 0.0f);
        }
        // rowDot = rowsum(dO * O): the softmax's correction sum_j P_j dP_j, read from the
        // saved output instead of a whole row of P.
        for (int64_t g = 0; g < group; ++g)
          for (int64_t t = 0; t < T; ++t) {
            int64_t row = ((b * T + t) * H + kh * group + g) * D;
            std::fill_n(dq + row, D, 0.0f);
            rowDot[g * T + t] = float(dotDouble(dout + row, out + row, D));
          }
        // As FlashAttention-2: key tiles outside, so that a tile's dK and dV stay hot while
        // every query tile of every head of the group adds into them.
        for (int64_t s0 = 0; s0 < S; s0 += bk) {
          int64_t s1 = std::min(s0 + bk, S), kn = s1 - s0;
          int64_t kvOff = ((b * S + s0) * Hkv + kh) * D;
          const float *kTile = k + kvOff, *vTile = v + kvOff;
          float *dkTile = dk + kvOff, *dvTile = dv + kvOff;
          transposeTile(kTile, kn, D, kvStride, kT.data());
          transposeTile(vTile, kn, D, kvStride, vT.data());
          for (int64_t g = 0; g < group; ++g) {
            int64_t h = kh * group + g;
            for (int64_t t0 = 0; t0 < T; t0 += bq) {
              int64_t rows = std::min(bq, T - t0);
              KeyRange first = visibleKeys(t0 + S - T, S, causal, window);
              KeyRange last = visibleKeys(t0 + rows - 1 + S - T, S, causal, window);
              if (s1 - 1 < first.lo || s0 > last.hi)
                continue; // the whole tile is masked
              int64_t qOff = ((b * T + t0) * H + h) * D;
              const float *qTile = q + qOff, *doTile = dout + qOff;
              float *dqTile = dq + qOff;
              // P = exp(scale Q K^T - lse), zero where masked.
              sgemm(rows, kn, D, fscale, qTile, qStride, 1, kT.data(), kn, 1, 0.0f, p.data(),
                    kn, 1, 1);
              bool any = false;
              for (int64_t r = 0; r < rows; ++r) {
                KeyRange seen = visibleKeys(t0 + r + S - T, S, causal, window);
                int64_t lo = std::max(s0, seen.lo) - s0, hi = std::min(s1 - 1, seen.hi) - s0;
                float rowLse = lse[(b * T + t0 + r) * H + h];
                float *__restrict pr = p.data() + r * kn;
                if (lo > hi || rowLse == kNegInf) {
                  std::fill_n(pr, kn, 0.0f);
                  continue;
                }
                any = true;
                std::fill_n(pr, lo, 0.0f);
                expShiftedInPlace(pr + lo, hi - lo + 1, rowLse);
                std::fill(pr + hi + 1, pr + kn, 0.0f);
              }
              if (!any)
                continue;
              // dV += P^T dO.
              sgemm(kn, D, rows, 1.0f, p.data(), 1, kn, doTile, qStride, 1, 1.0f, dvTile,
                    kvStride, 1, 1);
              // dP = dO V^T; dS = P (dP - rowDot) scale, in place.
              sgemm(rows, kn, D, 1.0f, doTile, qStride, 1, vT.data(), kn, 1, 0.0f, dp.data(),
                    kn, 1, 1);
              for (int64_t r = 0; r < rows; ++r) {
                float *__restrict ds = dp.data() + r * kn;
                const float *__restrict pr = p.data() + r * kn;
                float d = rowDot[g * T + t0 + r];
                for (int64_t j = 0; j < kn; ++j)
                  ds[j] = pr[j] * (ds[j] - d) * fscale;
              }
              // dQ += dS K; dK += dS^T Q.
              sgemm(rows, D, kn, 1.0f, dp.data(), kn, 1, kTile, kvStride, 1, 1.0f, dqTile,
                    qStride, 1, 1);
              sgemm(kn, D, rows, 1.0f, dp.data(), 1, kn, qTile, qStride, 1, 1.0f, dkTile,
                    kvStride, 1, 1);
            }
          }
        }
      }
  }
}

namespace {

/// One query row of attentionKVCache: query position p attends to keys lo..p, read from
/// the chunk (positions >= pos) or the cache. A leaf, so that the x86-64-v3 clone runs
/// inside the parallel loop (see LLAMAC_HOT): with the default ISA the D-long dot products
/// and updates ran at a fraction of the AVX2 rate and decoding spent a quarter of its time
/// here.
LLAMAC_HOT void attendRow(const float *__restrict qv, const float *k, const float *v,
                          const float *cacheK, const float *cacheV, int64_t pos, int64_t lo,
                          int64_t p, int64_t kvStride, int64_t headOffset, int64_t D,
                          int64_t window, int64_t capacity, float scale,
                          float *__restrict scores, float *__restrict acc,
                          float *__restrict out) {
  auto row = [&](const float *chunk, const float *cache, int64_t j) {
    int64_t slot = window > 0 ? j % capacity : j;
    return (j >= pos ? chunk + (j - pos) * kvStride : cache + slot * kvStride) + headOffset;
  };
  // Four keys at a time: one pass over q for four dot products, so that the horizontal
  // sums at the end of each are amortised (decode attention is many short dots).
  float maxScore = kNegInf;
  int64_t j = lo;
  for (; j + 4 <= p + 1; j += 4) {
    const float *__restrict k0 = row(k, cacheK, j), *__restrict k1 = row(k, cacheK, j + 1),
                            *__restrict k2 = row(k, cacheK, j + 2),
                            *__restrict k3 = row(k, cacheK, j + 3);
    float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
    for (int64_t c = 0; c < D; ++c) {
      d0 += qv[c] * k0[c];
      d1 += qv[c] * k1[c];
      d2 += qv[c] * k2[c];
      d3 += qv[c] * k3[c];
    }
    float *sc = scores + (j - lo);
    sc[0] = d0 * scale;
    sc[1] = d1 * scale;
    sc[2] = d2 * scale;
    sc[3] = d3 * scale;
    maxScore = std::max(maxScore, std::max(std::max(sc[0], sc[1]), std::max(sc[2], sc[3])));
  }
  for (; j <= p; ++j) {
    const float *__restrict kv = row(k, cacheK, j);
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < D; ++c)
      dot += qv[c] * kv[c];
    scores[j - lo] = dot * scale;
    maxScore = std::max(maxScore, scores[j - lo]);
  }
  int64_t n = p - lo + 1;
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    scores[j] = expApprox(scores[j] - maxScore);
    sum += scores[j];
  }
  for (int64_t c = 0; c < D; ++c)
    acc[c] = 0.0f;
  j = lo;
  for (; j + 4 <= p + 1; j += 4) {
    const float *__restrict v0 = row(v, cacheV, j), *__restrict v1 = row(v, cacheV, j + 1),
                            *__restrict v2 = row(v, cacheV, j + 2),
                            *__restrict v3 = row(v, cacheV, j + 3);
    const float *w = scores + (j - lo);
    float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
#pragma omp simd
    for (int64_t c = 0; c < D; ++c)
      acc[c] += w0 * v0[c] + w1 * v1[c] + w2 * v2[c] + w3 * v3[c];
  }
  for (; j <= p; ++j) {
    const float *__restrict vv = row(v, cacheV, j);
    float w = scores[j - lo];
#pragma omp simd
    for (int64_t c = 0; c < D; ++c)
      acc[c] += w * vv[c];
  }
  float inv = float(1.0 / sum);
  for (int64_t c = 0; c < D; ++c)
    out[c] = acc[c] * inv;
}

} // namespace

void attentionKVCache(const float *q, const float *k, const float *v, float *cacheK,
                      float *cacheV, int64_t capacity, int64_t pos, int64_t C, int64_t H,
                      int64_t Hkv, int64_t D, int64_t window, double scale, float *out) {
  int64_t group = H / Hkv, kvStride = Hkv * D;
  auto slot = [&](int64_t p) { return window > 0 ? p % capacity : p; };
  // Keys of this chunk are read from k and v, not from the cache: in a rolling buffer a
  // later position of the chunk may already own the slot of a key an earlier query sees.
  // The cache is written once every query has run.
  int64_t maxKeys = window > 0 ? std::min(window, pos + C) : pos + C;
  float fscale = float(scale);
  // One decoded token is a few hundred thousand flops: threads cost more than they save.
#pragma omp parallel if (C * H * maxKeys * D >= kParallelElements)
  {
    std::vector<float> scores(maxKeys);
    std::vector<float> acc(D);
#pragma omp for collapse(2)
    for (int64_t i = 0; i < C; ++i)
      for (int64_t h = 0; h < H; ++h) {
        int64_t p = pos + i;
        int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
        attendRow(q + (i * H + h) * D, k, v, cacheK, cacheV, pos, lo, p, kvStride,
                  (h / group) * D, D, window, capacity, fscale, scores.data(), acc.data(),
                  out + (i * H + h) * D);
      }
  }
  // Only the last `capacity` positions of a long chunk survive in a rolling buffer.
  int64_t firstKept = window > 0 ? std::max<int64_t>(0, C - capacity) : 0;
  for (int64_t i = firstKept; i < C; ++i) {
    std::memcpy(cacheK + slot(pos + i) * kvStride, k + i * kvStride, sizeof(float) * kvStride);
    std::memcpy(cacheV + slot(pos + i) * kvStride, v + i * kvStride, sizeof(float) * kvStride);
  }
}

//===----------------------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------------------===//

bool fusedCrossEntropy(const float *logits, const int32_t *targets, int64_t rows, int64_t vocab,
                       int64_t ignoreIndex, float *loss, float *lse, int64_t *badIndex) {
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = targets[r];
    if (target != ignoreIndex && (target < 0 || target >= vocab)) {
      if (badIndex)
        *badIndex = r;
      return false;
    }
  }
  // Per-row terms in double, summed in row order afterwards: the loss does not depend on
  // the thread count.
  std::vector<double> terms(rows, 0.0);
#pragma omp parallel for if (rows * vocab >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float *__restrict row = logits + r * vocab;
    float m = rowMax(row, vocab);
    double rowLse = m; // all -inf, or an infinite logit: x - m would be NaN
    if (m != kNegInf && m != std::numeric_limits<float>::infinity())
      rowLse = double(m) + std::log(sumExpShifted(row, vocab, m));
    lse[r] = float(rowLse);
    int64_t target = targets[r];
    if (target != ignoreIndex)
      terms[r] = rowLse - double(row[target]);
  }
  double total = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r)
    if (targets[r] != ignoreIndex) {
      total += terms[r];
      ++counted;
    }
  *loss = counted ? float(total / double(counted)) : 0.0f;
  return true;
}

void fusedCrossEntropyGrad(const float *logits, const int32_t *targets, const float *lse,
                           float grad, int64_t rows, int64_t vocab, int64_t ignoreIndex,
                           float *dlogits) {
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r)
    count += targets[r] != ignoreIndex;
  float factor = count ? float(double(grad) / double(count)) : 0.0f;
#pragma omp parallel for if (rows * vocab >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    float *__restrict out = dlogits + r * vocab;
    int64_t target = targets[r];
    if (target == ignoreIndex) {
      std::fill_n(out, vocab, 0.0f);
      continue;
    }
    scaledExpShifted(logits + r * vocab, vocab, lse[r], factor, out);
    // fusedCrossEntropy has rejected out-of-range targets; none is written here.
    if (target >= 0 && target < vocab)
      out[target] -= factor;
  }
}

//===----------------------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------------------===//

float lrSchedule(int64_t step, float peak, int64_t total, int64_t warmup, double floor) {
  if (step < warmup)
    return float(double(peak) * double(step + 1) / double(warmup));
  double progress =
      std::min(1.0, double(step - warmup) / double(std::max<int64_t>(1, total - warmup)));
  return float(double(peak) *
               (floor + (1.0 - floor) * (1.0 + std::cos(M_PI * progress)) / 2.0));
}

void gradClip(const float *const *grads, const int64_t *sizes, int64_t numGrads, float count,
              double maxNorm, float *coefficient, float *norm) {
  double ss = 0;
  for (int64_t gi = 0; gi < numGrads; ++gi) {
    const float *g = grads[gi];
    int64_t n = sizes[gi];
    double part = 0;
#pragma omp parallel for simd reduction(+ : part) if (n >= kParallelElements)
    for (int64_t i = 0; i < n; ++i)
      part += double(g[i]) * double(g[i]);
    ss += part;
  }
  // sum (g / count)^2 = sum g^2 / count^2.
  double c = double(count), globalNorm = std::sqrt(ss) / c;
  *norm = float(globalNorm);
  *coefficient = float(std::min(1.0, maxNorm / (globalNorm + 1e-6)) / c);
}

void adamw(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
           int64_t step, float gradScale, double beta1, double beta2, double eps,
           double weightDecay) {
  double t = double(step + 1);
  double correction1 = 1.0 - std::pow(beta1, t), correction2 = 1.0 - std::pow(beta2, t);
  // Per element in double: the update is memory-bound, so the precision is free.
  double rc1 = 1.0 / correction1, rc2 = 1.0 / correction2, dlr = lr, gs = gradScale;
#pragma omp parallel for simd if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    double g = double(grad[i]) * gs;
    double m1 = beta1 * double(m[i]) + (1.0 - beta1) * g;
    double v1 = beta2 * double(v[i]) + (1.0 - beta2) * g * g;
    double update = m1 * rc1 / (std::sqrt(v1 * rc2) + eps);
    double p = param[i];
    param[i] = float(p - dlr * (update + weightDecay * p));
    m[i] = float(m1);
    v[i] = float(v1);
  }
}

} // namespace llamac::cpu
