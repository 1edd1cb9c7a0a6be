//===- Gemm.cpp - llamac's own f32 GEMM (gemmNTOwn / gemmNNOwn / gemmTNOwn) ---------===//
//
// The alternative to BLIS that the tuner may pick per GEMM shape (codegen/Tunables.cpp:
// `impl`). Same semantics as gemmNT / gemmNN / gemmTN: row-major, dense, C = A op B, or
// C += A op B with `accumulate`; f32 products and sums.
//
// Two paths:
//  - packed (M > kSmallM): the classic three-level blocking. The K dimension is cut into
//    blocks of kc, N into blocks of nc; for each (nc, kc) block the team packs B into
//    kc x 16 panels (shared; kc = 384 unless the tunable says otherwise), then the tasks (an mc-row block of A times a range of the B
//    panels) are split over the threads, each packing its mc x kc block of A into 6-row
//    panels and running a 6 x 16 register-blocked micro-kernel (12 AVX accumulators,
//    broadcast A, two loads of B, 12 FMAs per k step). Packing pads the edges with zeros, so
//    the micro-kernel always computes a whole tile and edge tiles are stored through a
//    small buffer. mc is chosen so that the number of row blocks is a multiple of the
//    thread count; when there are fewer row blocks than threads the B panels are split.
//  - direct (M <= kSmallM, decode): no packing, B is read once from where it lies. NT: dot
//    products of the A rows with each row of B, 4 rows of B at a time; NN/TN: rows of B
//    scaled and added into 32-column strips of C held in registers. Parallel over N.
//
// The micro-kernels are compiled for AVX2+FMA (target attribute) and chosen at run time;
// other x86-64 CPUs (and other architectures) run portable versions of the same blocking.
// Threads: OpenMP's count outside a parallel region, one inside (as the BLIS wrappers).
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLAMAC_GEMM_AVX2 1
#define LLAMAC_AVX2 __attribute__((target("avx2,fma")))
#else
#define LLAMAC_GEMM_AVX2 0
#endif

namespace llamac::cpu {

namespace {

constexpr int kMR = 6, kNR = 16;
/// The K block of the packed path unless the caller names one: measured on stories15m's
/// shapes (K = 288 in one block is 10-25% faster than two blocks of 144).
constexpr int64_t kDefaultKc = 384;
/// Rows of A up to which the direct (unpacked) path runs.
constexpr int64_t kSmallM = 4;

/// A matrix operand read through strides: element (i, p) at p[i * rs + p * cs].
struct View {
  const float *data;
  int64_t rs, cs;
  float at(int64_t i, int64_t j) const { return data[i * rs + j * cs]; }
};

/// A growable, 64-byte aligned scratch buffer, one per thread.
struct Scratch {
  float *data = nullptr;
  size_t size = 0;
  float *get(size_t n) {
    if (n > size) {
      std::free(data);
      size = (n + 1023) / 1024 * 1024;
      data = static_cast<float *>(std::aligned_alloc(64, size * sizeof(float)));
    }
    return data;
  }
  ~Scratch() { std::free(data); }
};
thread_local Scratch packedA, packedB;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

//--- packing ----------------------------------------------------------------------------------

/// Rows [i0, i0 + m) x columns [p0, p0 + k) of A into panels of kMR rows: panel r holds
/// dst[r * k * kMR + p * kMR + i], rows past m zero.
void packA(View a, int64_t i0, int64_t m, int64_t p0, int64_t k, float *dst) {
  for (int64_t ir = 0; ir < m; ir += kMR, dst += k * kMR) {
    int64_t mr = std::min<int64_t>(kMR, m - ir);
    const float *src = a.data + (i0 + ir) * a.rs + p0 * a.cs;
    if (a.rs == 1 && mr == kMR) { // A transposed (TN): the kMR values of a column adjoin
      for (int64_t p = 0; p < k; ++p)
        for (int r = 0; r < kMR; ++r)
          dst[p * kMR + r] = src[p * a.cs + r];
    } else if (a.cs == 1) { // row-major A: read each row along k
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t p = 0; p < k; ++p)
          dst[p * kMR + r] = src[r * a.rs + p];
      for (int64_t r = mr; r < kMR; ++r)
        for (int64_t p = 0; p < k; ++p)
          dst[p * kMR + r] = 0.0f;
    } else {
      for (int64_t p = 0; p < k; ++p)
        for (int r = 0; r < kMR; ++r)
          dst[p * kMR + r] = r < mr ? src[r * a.rs + p * a.cs] : 0.0f;
    }
  }
}

/// Rows [p0, p0 + k) x columns [j0, j0 + n) of B as one panel of kNR columns:
/// dst[p * kNR + j], columns past n zero.
void packBPanel(View b, int64_t p0, int64_t k, int64_t j0, int64_t n, float *dst) {
  const float *src = b.data + p0 * b.rs + j0 * b.cs;
  if (b.cs == 1 && n == kNR) { // row-major B (NN, TN): 16 adjoining values per row
    for (int64_t p = 0; p < k; ++p)
      std::memcpy(dst + p * kNR, src + p * b.rs, kNR * sizeof(float));
  } else if (b.rs == 1) { // B given as [N, K] (NT): read each of its rows along k
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        dst[p * kNR + j] = src[j * b.cs + p];
    for (int64_t j = n; j < kNR; ++j)
      for (int64_t p = 0; p < k; ++p)
        dst[p * kNR + j] = 0.0f;
  } else {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < kNR; ++j)
        dst[p * kNR + j] = j < n ? src[p * b.rs + j * b.cs] : 0.0f;
  }
}

//--- micro-kernels ----------------------------------------------------------------------------

/// C[m x n] (ldc) = or += the kMR x kNR product of packed panels a (k x kMR) and b (k x kNR).
using MicroKernel = void (*)(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                             bool add, int m, int n);

/// Stores a computed tile: all of it, or the m x n corner.
inline void storeTile(const float *t, float *c, int64_t ldc, bool add, int m, int n) {
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j)
      c[r * ldc + j] = add ? c[r * ldc + j] + t[r * kNR + j] : t[r * kNR + j];
}

void microKernelGeneric(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                        bool add, int m, int n) {
  float t[kMR * kNR] = {};
  for (int64_t p = 0; p < k; ++p, a += kMR, b += kNR)
    for (int r = 0; r < kMR; ++r)
      for (int j = 0; j < kNR; ++j)
        t[r * kNR + j] += a[r] * b[j];
  storeTile(t, c, ldc, add, m, n);
}

#if LLAMAC_GEMM_AVX2
LLAMAC_AVX2 void microKernelAvx2(int64_t k, const float *a, const float *b, float *c,
                                 int64_t ldc, bool add, int m, int n) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int r = 0; r < m; ++r)
    _mm_prefetch(reinterpret_cast<const char *>(c + r * ldc), _MM_HINT_T0);
#define LLAMAC_STEP                                                                            \
  {                                                                                            \
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), x;                             \
    x = _mm256_broadcast_ss(a + 0);                                                            \
    c00 = _mm256_fmadd_ps(x, b0, c00);                                                         \
    c01 = _mm256_fmadd_ps(x, b1, c01);                                                         \
    x = _mm256_broadcast_ss(a + 1);                                                            \
    c10 = _mm256_fmadd_ps(x, b0, c10);                                                         \
    c11 = _mm256_fmadd_ps(x, b1, c11);                                                         \
    x = _mm256_broadcast_ss(a + 2);                                                            \
    c20 = _mm256_fmadd_ps(x, b0, c20);                                                         \
    c21 = _mm256_fmadd_ps(x, b1, c21);                                                         \
    x = _mm256_broadcast_ss(a + 3);                                                            \
    c30 = _mm256_fmadd_ps(x, b0, c30);                                                         \
    c31 = _mm256_fmadd_ps(x, b1, c31);                                                         \
    x = _mm256_broadcast_ss(a + 4);                                                            \
    c40 = _mm256_fmadd_ps(x, b0, c40);                                                         \
    c41 = _mm256_fmadd_ps(x, b1, c41);                                                         \
    x = _mm256_broadcast_ss(a + 5);                                                            \
    c50 = _mm256_fmadd_ps(x, b0, c50);                                                         \
    c51 = _mm256_fmadd_ps(x, b1, c51);                                                         \
    a += kMR;                                                                                  \
    b += kNR;                                                                                  \
  }
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    _mm_prefetch(reinterpret_cast<const char *>(b + 8 * kNR), _MM_HINT_T0);
    LLAMAC_STEP LLAMAC_STEP LLAMAC_STEP LLAMAC_STEP
  }
  for (; p < k; ++p)
    LLAMAC_STEP
#undef LLAMAC_STEP
  const __m256 rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == kMR && n == kNR) {
    for (int r = 0; r < kMR; ++r) {
      float *cr = c + r * ldc;
      __m256 v0 = rows[r][0], v1 = rows[r][1];
      if (add) {
        v0 = _mm256_add_ps(_mm256_loadu_ps(cr), v0);
        v1 = _mm256_add_ps(_mm256_loadu_ps(cr + 8), v1);
      }
      _mm256_storeu_ps(cr, v0);
      _mm256_storeu_ps(cr + 8, v1);
    }
    return;
  }
  alignas(32) float t[kMR * kNR];
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(t + r * kNR, rows[r][0]);
    _mm256_store_ps(t + r * kNR + 8, rows[r][1]);
  }
  storeTile(t, c, ldc, add, m, n);
}

inline LLAMAC_AVX2 float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// Direct NT for rows [i0, i0 + NI) of A and rows [j0, j1) of B: C[i, j] = A_i . B_j.
template <int NI>
LLAMAC_AVX2 void dotRowsAvx2(int64_t K, const float *A, const float *B, float *C, int64_t N,
                             int64_t j0, int64_t j1, bool add) {
  int64_t j = j0;
  for (; j + 4 <= j1; j += 4) {
    __m256 acc[NI][4];
    for (int i = 0; i < NI; ++i)
      for (int q = 0; q < 4; ++q)
        acc[i][q] = _mm256_setzero_ps();
    const float *b = B + j * K;
    int64_t p = 0;
    for (; p + 8 <= K; p += 8) {
      __m256 b0 = _mm256_loadu_ps(b + p), b1 = _mm256_loadu_ps(b + K + p),
             b2 = _mm256_loadu_ps(b + 2 * K + p), b3 = _mm256_loadu_ps(b + 3 * K + p);
      for (int i = 0; i < NI; ++i) {
        __m256 x = _mm256_loadu_ps(A + i * K + p);
        acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
        acc[i][2] = _mm256_fmadd_ps(x, b2, acc[i][2]);
        acc[i][3] = _mm256_fmadd_ps(x, b3, acc[i][3]);
      }
    }
    for (int i = 0; i < NI; ++i)
      for (int q = 0; q < 4; ++q) {
        float s = hsum(acc[i][q]);
        for (int64_t r = p; r < K; ++r)
          s += A[i * K + r] * b[q * K + r];
        float &out = C[i * N + j + q];
        out = add ? out + s : s;
      }
  }
  for (; j < j1; ++j) {
    const float *b = B + j * K;
    for (int i = 0; i < NI; ++i) {
      __m256 acc = _mm256_setzero_ps();
      int64_t p = 0;
      for (; p + 8 <= K; p += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(A + i * K + p), _mm256_loadu_ps(b + p), acc);
      float s = hsum(acc);
      for (; p < K; ++p)
        s += A[i * K + p] * b[p];
      float &out = C[i * N + j];
      out = add ? out + s : s;
    }
  }
}

/// Direct NN/TN for rows [i0, i0 + NI) of C and columns [j0, j1): C[i, :] = sum_p A(i, p)
/// B[p, :], 32 columns per strip in registers.
template <int NI>
LLAMAC_AVX2 void axpyRowsAvx2(int64_t K, View a, int64_t i0, const float *B, float *C,
                              int64_t N, int64_t j0, int64_t j1, bool add) {
  int64_t j = j0;
  for (; j + 32 <= j1; j += 32) {
    __m256 acc[NI][4];
    for (int i = 0; i < NI; ++i)
      for (int q = 0; q < 4; ++q)
        acc[i][q] = _mm256_setzero_ps();
    for (int64_t p = 0; p < K; ++p) {
      const float *b = B + p * N + j;
      __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16),
             b3 = _mm256_loadu_ps(b + 24);
      for (int i = 0; i < NI; ++i) {
        __m256 x = _mm256_set1_ps(a.at(i0 + i, p));
        acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
        acc[i][2] = _mm256_fmadd_ps(x, b2, acc[i][2]);
        acc[i][3] = _mm256_fmadd_ps(x, b3, acc[i][3]);
      }
    }
    for (int i = 0; i < NI; ++i)
      for (int q = 0; q < 4; ++q) {
        float *c = C + (i0 + i) * N + j + 8 * q;
        _mm256_storeu_ps(c, add ? _mm256_add_ps(_mm256_loadu_ps(c), acc[i][q]) : acc[i][q]);
      }
  }
  for (; j < j1; ++j)
    for (int i = 0; i < NI; ++i) {
      float s = 0;
      for (int64_t p = 0; p < K; ++p)
        s += a.at(i0 + i, p) * B[p * N + j];
      float &out = C[(i0 + i) * N + j];
      out = add ? out + s : s;
    }
}

const bool kHaveAvx2Fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool kHaveAvx2Fma = false;
#endif

MicroKernel microKernel() {
#if LLAMAC_GEMM_AVX2
  if (kHaveAvx2Fma)
    return microKernelAvx2;
#endif
  return microKernelGeneric;
}

int gemmThreads(int64_t M, int64_t N, int64_t K) {
  if (omp_in_parallel())
    return 1;
  // Below ~2 MFLOP (tens of microseconds on one core) the team's start and barriers cost
  // more than a second thread saves.
  if (double(M) * double(N) * double(K) < 1048576.0)
    return 1;
  return omp_get_max_threads();
}

/// C = A B or C += A B through the direct path (M <= kSmallM, AVX2 only).
#if LLAMAC_GEMM_AVX2
void gemmDirect(int64_t M, int64_t N, int64_t K, View a, View b, bool nt, float *C, bool add,
                int threads) {
  // Parallel over blocks of 16 columns of C (rows of B for NT).
  int64_t blocks = ceilDiv(N, 16);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    int64_t j0 = blk * 16, j1 = std::min(N, j0 + 16);
    for (int64_t i = 0; i < M;) {
      int64_t ni = std::min<int64_t>(2, M - i);
      if (nt) { // a.rs == K, b = B[N, K]
        const float *A = a.data + i * K;
        if (ni == 2)
          dotRowsAvx2<2>(K, A, b.data, C + i * N, N, j0, j1, add);
        else
          dotRowsAvx2<1>(K, A, b.data, C + i * N, N, j0, j1, add);
      } else {
        if (ni == 2)
          axpyRowsAvx2<2>(K, a, i, b.data, C, N, j0, j1, add);
        else
          axpyRowsAvx2<1>(K, a, i, b.data, C, N, j0, j1, add);
      }
      i += ni;
    }
  }
}
#endif

/// The packed path (see the file comment). kc: the K block (the tunable's value, or 0 for
/// the default).
void gemmPacked(int64_t M, int64_t N, int64_t K, View a, View b, float *C, bool accumulate,
                int threads, int64_t kcWanted) {
  const MicroKernel kernel = microKernel();
  // K blocks of about kcWanted, as equal as possible.
  int64_t kcMax = kcWanted > 0 ? kcWanted : kDefaultKc;
  int64_t kBlocks = ceilDiv(K, kcMax), kc = ceilDiv(K, kBlocks);
  // N blocks: the packed B block (kc x nc) stays within ~2 MiB.
  int64_t ncMax = std::max<int64_t>(kNR, (int64_t(1) << 19) / kc / kNR * kNR);
  int64_t nBlocks = ceilDiv(N, ncMax), nc = ceilDiv(ceilDiv(N, nBlocks), kNR) * kNR;
  // M blocks of at most ~144 rows, their number a multiple of the threads when there are
  // enough rows (otherwise the tasks split the B panels instead).
  int64_t mBlocks = ceilDiv(M, 144);
  if (M >= 96 * threads)
    mBlocks = ceilDiv(mBlocks, threads) * threads;
  int64_t mc = ceilDiv(ceilDiv(M, mBlocks), kMR) * kMR;
  mBlocks = ceilDiv(M, mc);
  float *bp = packedB.get(size_t(kc) * size_t(nc));

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float *ap = packedA.get(size_t(mc) * size_t(kc));
    for (int64_t jc = 0; jc < N; jc += nc) {
      int64_t n = std::min(nc, N - jc);
      int64_t panels = ceilDiv(n, kNR);
      // Fewer row blocks than twice the threads: split the panels among tasks too.
      int64_t split = mBlocks % threads == 0
                          ? 1
                          : std::min(panels, std::max<int64_t>(1, ceilDiv(2 * threads, mBlocks)));
      int64_t tasks = mBlocks * split;
      for (int64_t pc = 0; pc < K; pc += kc) {
        int64_t k = std::min(kc, K - pc);
        bool add = accumulate || pc > 0;
#pragma omp for schedule(static)
        for (int64_t jr = 0; jr < panels; ++jr)
          packBPanel(b, pc, k, jc + jr * kNR, std::min<int64_t>(kNR, n - jr * kNR),
                     bp + jr * kNR * k);
        int64_t packedBlock = -1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; ++t) {
          int64_t ib = t / split, s = t % split;
          int64_t i0 = ib * mc, m = std::min(mc, M - i0);
          if (packedBlock != ib) {
            packA(a, i0, m, pc, k, ap);
            packedBlock = ib;
          }
          int64_t jr0 = panels * s / split, jr1 = panels * (s + 1) / split;
          for (int64_t jr = jr0; jr < jr1; ++jr) {
            int nr = int(std::min<int64_t>(kNR, n - jr * kNR));
            const float *bpanel = bp + jr * kNR * k;
            for (int64_t ir = 0; ir < m; ir += kMR)
              kernel(k, ap + ir * k, bpanel, C + (i0 + ir) * N + jc + jr * kNR, N, add,
                     int(std::min<int64_t>(kMR, m - ir)), nr);
          }
        }
      }
    }
  }
}

void gemmOwn(int64_t M, int64_t N, int64_t K, View a, View b, bool nt, float *C,
             bool accumulate, int64_t kc) {
  if (M <= 0 || N <= 0)
    return;
  if (K <= 0) {
    if (!accumulate)
      std::memset(C, 0, size_t(M) * size_t(N) * sizeof(float));
    return;
  }
  int threads = gemmThreads(M, N, K);
#if LLAMAC_GEMM_AVX2
  if (M <= kSmallM && kHaveAvx2Fma) {
    // Memory-bound: a second thread pays from ~64K products (B of 256 KiB) on.
    if (!omp_in_parallel() && double(M) * double(N) * double(K) >= 65536.0)
      threads = omp_get_max_threads();
    gemmDirect(M, N, K, a, b, nt, C, accumulate, threads);
    return;
  }
#endif
  gemmPacked(M, N, K, a, b, C, accumulate, threads, kc);
}

} // namespace

void gemmNTOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate, int64_t kc) {
  gemmOwn(M, N, K, {A, K, 1}, {B, 1, K}, true, C, accumulate, kc);
}

void gemmNNOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate, int64_t kc) {
  gemmOwn(M, N, K, {A, K, 1}, {B, N, 1}, false, C, accumulate, kc);
}

void gemmTNOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate, int64_t kc) {
  gemmOwn(M, N, K, {A, 1, M}, {B, N, 1}, false, C, accumulate, kc);
}

} // namespace llamac::cpu
