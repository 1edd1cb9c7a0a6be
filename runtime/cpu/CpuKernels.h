//===- CpuKernels.h - the CPU kernels that generated programs launch ------*- C++ -*-===//
//
// One function per kernel kind of the kernel-level IR (codegen/KernelIR.h), f32, row-major,
// dense. The CPU emitter (codegen/CpuEmitter.cpp) writes one call per launch with the shapes
// and attributes as constants. GEMMs go through BLIS; the other kernels parallelise their
// outer loop with OpenMP where the work pays for the threads. Semantics are exactly those of
// the reference interpreter's kernels (runtime/interpreter/Kernels.h), which the tests
// compare them with; accumulation is in f32 unless stated.
//
// Outputs never alias inputs unless a function says so.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CPU_CPUKERNELS_H
#define LLAMAC_RUNTIME_CPU_CPUKERNELS_H

#include <cstdint>

namespace llamac::cpu {

//--- GEMM (BLIS sgemm) ------------------------------------------------------------------------
// beta = accumulate ? 1 : 0. Leading dimensions are the dense ones.
/// C[M,N] = A[M,K] * B[N,K]^T   (llama.linear: x W^T; matmul transpose_rhs)
void gemmNT(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate = false);
/// C[M,N] = A[M,K] * B[K,N]     (llama.matmul: the input gradient dy W)
void gemmNN(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate = false);
/// C[M,N] = A[K,M]^T * B[K,N]   (llama.linear_weight_grad: dW = dy^T x over K rows)
void gemmTN(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
            bool accumulate = false);

/// llamac's own f32 GEMMs (runtime/cpu/Gemm.cpp), the same contracts as gemmNT / gemmNN /
/// gemmTN above: packed panels and an AVX2/FMA 6 x 16 micro-kernel (portable code on CPUs
/// without them), unpacked for M <= 4. `kc` is the K block of the packed path (0: the
/// default, 384); the tuner picks between these and BLIS per shape (codegen/Tunables.cpp).
void gemmNTOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate = false, int64_t kc = 0);
void gemmNNOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate = false, int64_t kc = 0);
void gemmTNOwn(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
               bool accumulate = false, int64_t kc = 0);

/// C[M,N] = A[M,K] * W^T for int8 weights B[N,K] with one f32 scale per row
/// (runtime/cpu/Quantize.h): each row of A is quantised the same way, the products are summed
/// exactly in int32 and scaled back (llama.linear under `llamac compile --weights int8`).
/// `rowsPerTask` rows of B make one unit of parallel work (a tunable: codegen/Tunables.cpp).
void gemmNTQ8(int64_t M, int64_t N, int64_t K, const float *A, const int8_t *B,
              const float *scales, float *C, int64_t rowsPerTask = 32);

//--- mixed precision (bf16 storage) ---------------------------------------------------------
// bf16 values are held as uint16_t: the upper half of an f32's bits, rounded to nearest even
// when narrowing (NaN stays NaN), as runtime/Tensor.h's floatToBF16 and the interpreter do.
/// out = in rounded to bf16; and back, exactly.
void cast(const float *in, int64_t n, uint16_t *out);
void cast(const uint16_t *in, int64_t n, float *out);
/// The GEMMs of a mixed-precision program (llamac-mixed-precision): bf16 operands widened
/// exactly to f32, the products summed in f32 by BLIS (or, with the "Own" suffix, by the own
/// GEMM with K blocks of kc), the result rounded to bf16 (accumulate: C's old value widened
/// and added first). The CPU has no bf16 arithmetic worth using here; these give the
/// numerics of a bf16 tensor-core GEMM (bf16 in, f32 sums, bf16 out), not its speed.
void gemmNT(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, uint16_t *C,
            bool accumulate = false);
void gemmNN(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, uint16_t *C,
            bool accumulate = false);
void gemmTN(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B, uint16_t *C,
            bool accumulate = false);
void gemmNTOwn(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
               uint16_t *C, bool accumulate = false, int64_t kc = 0);
void gemmNNOwn(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
               uint16_t *C, bool accumulate = false, int64_t kc = 0);
void gemmTNOwn(int64_t M, int64_t N, int64_t K, const uint16_t *A, const uint16_t *B,
               uint16_t *C, bool accumulate = false, int64_t kc = 0);

//--- memory -----------------------------------------------------------------------------------
void fill(float *out, int64_t n, float value);
void copy(const float *in, int64_t n, float *out);
/// `rows` rows of `cols` elements: out[r * outStride + c] = in[r * inStride + c]
/// (llama.concat and llama.slice along any dimension).
void copyRows(const float *in, int64_t rows, int64_t cols, int64_t inStride, int64_t outStride,
              float *out);
/// The same on bf16 elements (concatenations of bf16 weights under mixed precision).
void copyRows(const uint16_t *in, int64_t rows, int64_t cols, int64_t inStride,
              int64_t outStride, uint16_t *out);

//--- elementwise ------------------------------------------------------------------------------
enum class Binary : int32_t { Add, Sub, Mul, Div, Max, Min };
enum class Unary : int32_t { Neg, Exp, Log, Sqrt, Rsqrt, Silu, Sigmoid, Tanh, Abs };
/// out[i] = a[i] op b[i % bSize] (bSize == n, or broadcast of a trailing block, or 1).
void binary(Binary op, const float *a, const float *b, int64_t n, int64_t bSize, float *out);
void unary(Unary op, const float *in, int64_t n, float *out);
/// out[i] = in[i] * s
void scale(const float *in, int64_t n, float s, float *out);

/// A generated pointwise kernel (llama.fused_elementwise): `element(i)` computes and stores
/// element i; the loop runs in parallel above a size where threads pay.
template <class F> void pointwise(int64_t n, F element) {
#pragma omp parallel for simd schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i)
    element(i);
}
/// The scalar functions of generated bodies: arith.maximumf (NaN-propagating) and rsqrt.
inline float maximum(float a, float b) {
  return a != a || b != b ? a + b : (a > b ? a : b);
}
inline float rsqrt(float x) { return 1.0f / __builtin_sqrtf(x); }

//--- embedding --------------------------------------------------------------------------------
/// out[i, :] = table[tokens[i], :]; false (nothing written past the bad row) when a token is
/// outside [0, vocab); *badIndex then names the position.
bool embedding(const float *table, const int32_t *tokens, int64_t n, int64_t dim,
               int64_t vocab, float *out, int64_t *badIndex);
/// out[vocab, dim] = 0, then out[tokens[i], :] += grad[i, :] (tokens outside [0, vocab) are
/// skipped: embedding has already rejected them).
void embeddingGrad(const int32_t *tokens, const float *grad, int64_t n, int64_t dim,
                   int64_t vocab, float *out);

//--- normalisation ----------------------------------------------------------------------------
void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y);
/// dx[rows, dim]; dw[dim] is overwritten (sum over rows).
void rmsNormGrad(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                 double eps, float *dx, float *dw);
/// sum = x + residual; y = rms_norm(sum) * w.
void addRmsNorm(const float *x, const float *residual, const float *w, int64_t rows,
                int64_t dim, double eps, float *sum, float *y);
/// The gradient of add_rms_norm: dx = rms_norm_grad(sum, w, dnormed) + dsum (dsum may be
/// null for zeros); dw overwritten.
void addRmsNormGrad(const float *sum, const float *w, const float *dnormed, const float *dsum,
                    int64_t rows, int64_t dim, double eps, float *dx, float *dw);

//--- fused feed-forward and attention input ---------------------------------------------------
/// x[rows, 2F] = [gate | up]; y[rows, F] = silu(gate) * up.
void swiglu(const float *x, int64_t rows, int64_t F, float *y);
void swigluGrad(const float *x, const float *dy, int64_t rows, int64_t F, float *dx);
/// x[B, T, (H + 2 Hkv) D] = [q | k | v] per token; q[B,T,H,D] and k[B,T,Hkv,D] rotated
/// (adjacent pairs, positions offset + t), v[B,T,Hkv,D] copied.
void qkvRope(const float *x, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
             double theta, int64_t offset, float *q, float *k, float *v);
/// The inverse: dx from dq, dk (rotated back) and dv.
void qkvRopeGrad(const float *dq, const float *dk, const float *dv, int64_t B, int64_t T,
                 int64_t H, int64_t Hkv, int64_t D, double theta, int64_t offset, float *dx);

//--- attention --------------------------------------------------------------------------------
/// q[B,T,H,D], k/v[B,S,Hkv,D] (query head h uses kv head h / (H / Hkv)); causal aligns the
/// last query with the last key; window > 0 keeps keys within `window` positions back.
/// out[B,T,H,D]; lse[B,T,H] = the row log-sum-exp of the scaled scores.
void flashAttention(const float *q, const float *k, const float *v, int64_t B, int64_t T,
                    int64_t S, int64_t H, int64_t Hkv, int64_t D, bool causal, int64_t window,
                    double scale, int64_t blockQ, int64_t blockK, float *out, float *lse);
void flashAttentionGrad(const float *q, const float *k, const float *v, const float *out,
                        const float *lse, const float *dout, int64_t B, int64_t T, int64_t S,
                        int64_t H, int64_t Hkv, int64_t D, bool causal, int64_t window,
                        double scale, int64_t blockQ, int64_t blockK, float *dq, float *dk,
                        float *dv);
/// Inference with a KV cache, batch 1: k/v[C,Hkv,D] for positions pos..pos+C-1 are written
/// to cacheK/cacheV[capacity, Hkv, D] at slot p (p % capacity when window > 0, capacity ==
/// window; otherwise p < capacity); q[C,H,D] attends causally to every cached position
/// (within the window). out[C,H,D].
void attentionKVCache(const float *q, const float *k, const float *v, float *cacheK,
                      float *cacheV, int64_t capacity, int64_t pos, int64_t C, int64_t H,
                      int64_t Hkv, int64_t D, int64_t window, double scale, float *out);

//--- loss -------------------------------------------------------------------------------------
/// Mean cross-entropy over rows whose target != ignoreIndex (0 when there is none);
/// lse[rows]. Targets outside [0, vocab) other than ignoreIndex: false, *badIndex the row.
bool fusedCrossEntropy(const float *logits, const int32_t *targets, int64_t rows,
                       int64_t vocab, int64_t ignoreIndex, float *loss, float *lse,
                       int64_t *badIndex);
/// dlogits = grad * (softmax - onehot) / count, zero rows for ignored targets.
void fusedCrossEntropyGrad(const float *logits, const int32_t *targets, const float *lse,
                           float grad, int64_t rows, int64_t vocab, int64_t ignoreIndex,
                           float *dlogits);

//--- optimizer --------------------------------------------------------------------------------
float lrSchedule(int64_t step, float peak, int64_t total, int64_t warmup, double floor);
/// The global norm of the gradients divided by count, and coefficient =
/// min(1, maxNorm / (norm + 1e-6)) / count (as the interpreter's gradClip).
void gradClip(const float *const *grads, const int64_t *sizes, int64_t numGrads, float count,
              double maxNorm, float *coefficient, float *norm);
/// One AdamW step in place on param, m, v (grad scaled by gradScale first), as llama.adamw.
void adamw(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
           int64_t step, float gradScale, double beta1, double beta2, double eps,
           double weightDecay);

} // namespace llamac::cpu

#endif
