//===- CudaKernels.h - the CUDA kernels that generated programs launch ----*- C++ -*-===//
//
// The CUDA counterpart of runtime/cpu/CpuKernels.h: one host function per kernel kind of the
// kernel-level IR (codegen/KernelIR.h), launching asynchronously on `stream`. The CUDA
// emitter (codegen/CudaEmitter.cpp) writes one call per launch with shapes and attributes as
// constants. Semantics are exactly those of the CPU kernels and of the reference
// interpreter's; test/gpu/CudaKernelsTest.cu compares them on a machine with a GPU.
//
// Conventions, different from the CPU kernels where the GPU needs it:
//   - every pointer is device memory, f32 row-major dense unless stated;
//   - scalars that the program computes (the step, the learning rate, a position, the
//     gradient scale) are device pointers read by the kernel, never host values, so that a
//     whole entry function can be captured in a CUDA graph;
//   - kernels that validate data (token and target ids) do not stop: the smallest bad index
//     is stored in *badIndex (a device int64 that the caller set to -1) with atomicCAS, and
//     the generated code reports it, naming the launch, once the function has finished
//     (embedding still copies every valid row and leaves bad rows zero);
//   - reductions over rows (a norm's weight gradient, the gradient norm) are deterministic:
//     partial sums in a fixed order, never atomics, so runs repeat bit for bit;
//   - temporary memory comes from scratch(), a grow-only device buffer of the library.
//
// GEMMs (cuBLASLt) are in CudaGemm.h; flash attention, templated on the head dimension and
// tile sizes, in FlashAttention.cuh.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CUDA_CUDAKERNELS_H
#define LLAMAC_RUNTIME_CUDA_CUDAKERNELS_H

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace llamac::cuda {

/// A device buffer of at least `bytes`, valid until the next call with a larger size (the
/// library's scratch: one device, one host thread, launches on one stream). Growing it
/// synchronises the device, so it must not happen during a CUDA graph capture, and a graph
/// captured before a growth holds the old address: ExecState runs each entry function once
/// before capturing it and drops its graphs when scratchGeneration() changes. Null if the
/// allocation fails.
void *scratch(size_t bytes);
/// How many times scratch() has grown.
uint64_t scratchGeneration();

//--- memory -----------------------------------------------------------------------------------
void fill(float *out, int64_t n, float value, cudaStream_t stream);
/// `n` 4-byte words (f32 or i32 alike).
void copy(const float *in, int64_t n, float *out, cudaStream_t stream);
/// out[r * outStride + c] = in[r * inStride + c] for `rows` rows of `cols` elements.
void copyRows(const float *in, int64_t rows, int64_t cols, int64_t inStride, int64_t outStride,
              float *out, cudaStream_t stream);
/// The same on bf16 elements (concatenations of bf16 weights under mixed precision).
void copyRows(const uint16_t *in, int64_t rows, int64_t cols, int64_t inStride,
              int64_t outStride, uint16_t *out, cudaStream_t stream);

//--- mixed precision (bf16 storage) -----------------------------------------------------------
/// bf16 values are held as uint16_t, the upper half of an f32's bits, as cpu::cast's. f32 to
/// bf16 rounds to nearest, ties to even, bit for bit as cpu::cast: overflow goes to inf, and a
/// NaN stays a NaN with its sign and top payload bits, made quiet. (Not __float2bfloat16_rn,
/// which turns every NaN into one canonical NaN.) bf16 to f32 is exact. Integer operations
/// only, so fast-math's flushing of subnormals does not touch either direction.
void cast(const float *in, int64_t n, uint16_t *out, cudaStream_t stream);
void cast(const uint16_t *in, int64_t n, float *out, cudaStream_t stream);

//--- elementwise ------------------------------------------------------------------------------
/// The operator numbering of cpu::Binary and cpu::Unary (Add, Sub, Mul, Div, Max, Min;
/// Neg, Exp, Log, Sqrt, Rsqrt, Silu, Sigmoid, Tanh, Abs).
/// out[i] = a[i] op b[i % bSize].
void binary(int32_t op, const float *a, const float *b, int64_t n, int64_t bSize, float *out,
            cudaStream_t stream);
void unary(int32_t op, const float *in, int64_t n, float *out, cudaStream_t stream);
void scale(const float *in, int64_t n, float s, float *out, cudaStream_t stream);

//--- embedding --------------------------------------------------------------------------------
/// out[i, :] = table[tokens[i], :]; a token outside [0, vocab) leaves its row zero and its
/// position in *badIndex.
void embedding(const float *table, const int32_t *tokens, int64_t n, int64_t dim, int64_t vocab,
               float *out, int64_t *badIndex, cudaStream_t stream);
/// out[vocab, dim] = 0, then out[tokens[i], :] += grad[i, :] (out-of-range tokens skipped).
void embeddingGrad(const int32_t *tokens, const float *grad, int64_t n, int64_t dim,
                   int64_t vocab, float *out, cudaStream_t stream);

//--- normalisation ----------------------------------------------------------------------------
void rmsNorm(const float *x, const float *w, int64_t rows, int64_t dim, double eps, float *y,
             cudaStream_t stream);
/// dx[rows, dim]; dw[dim] overwritten with the sum over rows.
void rmsNormGrad(const float *x, const float *w, const float *dy, int64_t rows, int64_t dim,
                 double eps, float *dx, float *dw, cudaStream_t stream);
/// sum = x + residual; y = rms_norm(sum) * w.
void addRmsNorm(const float *x, const float *residual, const float *w, int64_t rows,
                int64_t dim, double eps, float *sum, float *y, cudaStream_t stream);
/// dx = rms_norm_grad(sum, w, dnormed) + dsum (dsum may be null); dw overwritten.
void addRmsNormGrad(const float *sum, const float *w, const float *dnormed, const float *dsum,
                    int64_t rows, int64_t dim, double eps, float *dx, float *dw,
                    cudaStream_t stream);

//--- fused feed-forward and attention input ---------------------------------------------------
/// x[rows, 2F] = [gate | up]; y[rows, F] = silu(gate) * up.
void swiglu(const float *x, int64_t rows, int64_t F, float *y, cudaStream_t stream);
void swigluGrad(const float *x, const float *dy, int64_t rows, int64_t F, float *dx,
                cudaStream_t stream);
/// x[B, T, (H + 2 Hkv) D] = [q | k | v] per token; q[B,T,H,D] and k[B,T,Hkv,D] rotated
/// (adjacent pairs, positions *offset + t, offset null for 0), v[B,T,Hkv,D] copied.
void qkvRope(const float *x, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
             double theta, const int64_t *offset, float *q, float *k, float *v,
             cudaStream_t stream);
void qkvRopeGrad(const float *dq, const float *dk, const float *dv, int64_t B, int64_t T,
                 int64_t H, int64_t Hkv, int64_t D, double theta, const int64_t *offset,
                 float *dx, cudaStream_t stream);

//--- loss -------------------------------------------------------------------------------------
/// Mean cross-entropy over rows whose target != ignoreIndex (0 when there is none) into
/// *loss; lse[rows]. A target outside [0, vocab) other than ignoreIndex: *badIndex.
void fusedCrossEntropy(const float *logits, const int32_t *targets, int64_t rows,
                       int64_t vocab, int64_t ignoreIndex, float *loss, float *lse,
                       int64_t *badIndex, cudaStream_t stream);
/// dlogits = *grad * (softmax - onehot) / count, zero rows for ignored targets.
void fusedCrossEntropyGrad(const float *logits, const int32_t *targets, const float *lse,
                           const float *grad, int64_t rows, int64_t vocab, int64_t ignoreIndex,
                           float *dlogits, cudaStream_t stream);

//--- optimizer --------------------------------------------------------------------------------
/// *out = cpu::lrSchedule(*step, *peak, *total, warmup, floor).
void lrSchedule(const int64_t *step, const float *peak, const int64_t *total, int64_t warmup,
                double floor, float *out, cudaStream_t stream);
/// As cpu::gradClip: grads is a host array of `numGrads` device pointers and sizes a host
/// array of their lengths; *count a device scalar; results in device scalars.
void gradClip(const float *const *grads, const int64_t *sizes, int64_t numGrads,
              const float *count, double maxNorm, float *coefficient, float *norm,
              cudaStream_t stream);
/// One AdamW step in place, as cpu::adamw, with lr, step and gradScale read on the device.
void adamw(float *param, const float *grad, float *m, float *v, int64_t n, const float *lr,
           const int64_t *step, const float *gradScale, double beta1, double beta2, double eps,
           double weightDecay, cudaStream_t stream);

} // namespace llamac::cuda

#endif
