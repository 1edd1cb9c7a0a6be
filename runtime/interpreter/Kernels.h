//===- Kernels.h - reference kernels of the interpreter ------------------*- C++ -*-===//
//
// One plain loop nest per op of the llama dialect, in double precision, on host tensors.
// Written for obviousness, not speed: they are the oracle the generated kernels and every
// pass are checked against. Inputs are assumed to satisfy the op's shape rules (the IR
// verifier has checked them); data-dependent conditions (token ids out of range) are
// reported through `error`.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_INTERPRETER_KERNELS_H
#define LLAMAC_RUNTIME_INTERPRETER_KERNELS_H

#include "runtime/Tensor.h"

#include <functional>
#include <string>

namespace llamac::ref {

/// result[..., :] = table[tokens[...], :]. False (and `error`) for an id outside [0, V).
bool embedding(const Tensor &table, const Tensor &tokens, Tensor &out, std::string *error);
/// result[..., n] = sum_k x[..., k] w[n, k].
Tensor linear(const Tensor &x, const Tensor &w);
/// Batched lhs[b, m, k] x rhs[b, k, n] (rhs[b, n, k] when transposed; rank-2 rhs shared).
Tensor matmul(const Tensor &lhs, const Tensor &rhs, bool transposeRhs);
/// x / sqrt(mean(x^2) + eps) * w over the last dimension.
Tensor rmsNorm(const Tensor &x, const Tensor &w, double eps);
/// Rotates channel pairs (2i, 2i+1) of x[b, t, h, :] by (t + offset) * theta^(-2i/D), or by
/// the opposite angle with `inverse` (the transpose of the rotation, its VJP).
Tensor rope(const Tensor &x, double theta, int64_t offset, bool inverse = false);
/// Causal / grouped-query / sliding-window attention; see llama.attention. window 0: none.
Tensor attention(const Tensor &q, const Tensor &k, const Tensor &v, bool causal,
                 int64_t window, double scale);
/// Softmax over the last dimension.
Tensor softmax(const Tensor &x);
/// Mean of logsumexp(logits[i]) - logits[i, t_i] over targets t_i != ignoreIndex (0 when
/// all are ignored). False (and `error`) for a target outside [0, V).
bool crossEntropy(const Tensor &logits, const Tensor &targets, int64_t ignoreIndex,
                  Tensor &out, std::string *error);

Tensor unary(const Tensor &x, const std::function<double(double)> &f);
Tensor binary(const Tensor &a, const Tensor &b, const std::function<double(double, double)> &f);

/// The same elements under another shape of equal size (split_dim, merge_dims).
Tensor reshape(const Tensor &x, std::vector<int64_t> shape);
Tensor transpose(const Tensor &x, const std::vector<int64_t> &permutation);
Tensor concat(const std::vector<const Tensor *> &inputs, int64_t dim);
Tensor slice(const Tensor &x, int64_t dim, int64_t offset, int64_t size);

/// `x` with `before` zeros ahead of it and `after` zeros behind it along `dim`.
Tensor pad(const Tensor &x, int64_t dim, int64_t before, int64_t after);

double silu(double x);
double sigmoid(double x);

//===--- backward ops -----------------------------------------------------------------===//

/// out[v, :] = sum over positions p with tokens[p] == v of grad[p, :], a [vocab, dim]
/// tensor. False (and `error`) for an id outside [0, vocab): a scatter to it has no row.
bool embeddingGrad(const Tensor &tokens, const Tensor &grad, int64_t vocab, Tensor &out,
                   std::string *error);
/// result[n, k] = sum over leading indices of grad[..., n] * x[..., k].
Tensor linearWeightGrad(const Tensor &grad, const Tensor &x);

struct RMSNormGrads {
  Tensor input, weight;
};
/// With r = 1/sqrt(mean(x^2) + eps) per row and g = grad * w: input = r * (g - x r^2
/// mean(g x)), weight = sum over rows of grad * x * r.
RMSNormGrads rmsNormGrad(const Tensor &x, const Tensor &w, const Tensor &grad, double eps);

struct AttentionGrads {
  Tensor query, key, value;
};
/// The VJP of `attention` with the same masking, recomputing the softmax; query heads of
/// one group accumulate into their shared KV head; rows with no visible key contribute
/// nothing.
AttentionGrads attentionGrad(const Tensor &q, const Tensor &k, const Tensor &v,
                             const Tensor &grad, bool causal, int64_t window, double scale);
/// y * (grad - sum(grad * y, last dim)), from the softmax output y.
Tensor softmaxGrad(const Tensor &y, const Tensor &grad);
/// grad * s * (1 + x (1 - s)) with s = sigmoid(x).
Tensor siluGrad(const Tensor &x, const Tensor &grad);
/// out[i, :] = grad * (softmax(logits[i, :]) - onehot(targets[i])) / count over the count
/// rows whose target is not ignoreIndex; zeros for ignored rows. False (and `error`) for a
/// target outside [0, V), as crossEntropy.
bool crossEntropyGrad(const Tensor &logits, const Tensor &targets, double grad,
                      int64_t ignoreIndex, Tensor &out, std::string *error);

//===--- training ops -----------------------------------------------------------------===//

/// Linear warm-up to `peak` over `warmup` steps, then cosine decay to `floor * peak` at
/// step `total`, and the floor after it; see llama.lr_schedule.
double lrSchedule(int64_t step, double peak, int64_t total, int64_t warmup, double floor);

struct AdamWResult {
  Tensor param, m, v;
};
/// One AdamW step with g = grad * gradScale and bias correction at t = step + 1; see
/// llama.adamw.
AdamWResult adamw(const Tensor &param, const Tensor &grad, const Tensor &m, const Tensor &v,
                  double lr, int64_t step, double gradScale, double beta1, double beta2,
                  double eps, double weightDecay);

struct GradClipResult {
  double coefficient = 0, norm = 0;
};
/// norm = sqrt(sum of (g / count)^2 over every element of every gradient) and
/// coefficient = min(1, maxNorm / (norm + 1e-6)) / count.
GradClipResult gradClip(const std::vector<const Tensor *> &grads, double count,
                        double maxNorm);

//===--- fused ops --------------------------------------------------------------------===//
//
// The kernels of the ops the fusion passes produce (LlamaOps.td, "Fused ops"). Each is
// written the way the fused op is meant to run (tiles, online reductions), not as a call
// to the primitives it decomposes to, so that the tests comparing it with its
// decomposition check the fused algorithm itself.

/// x holds [gate, up] along its last dimension (2F): silu(gate) * up, size F.
Tensor swiglu(const Tensor &x);
/// [grad * up * silu'(gate), grad * silu(gate)] along the last dimension.
Tensor swigluGrad(const Tensor &x, const Tensor &grad);

struct QKV {
  Tensor q, k, v;
};
/// Splits x[b, t, (heads + 2 kvHeads) * D] into q[b, t, heads, D], k and v[b, t, kvHeads,
/// D] and rotates q and k as `rope` does (theta, offset).
QKV qkvRope(const Tensor &x, int64_t heads, int64_t kvHeads, double theta, int64_t offset);
/// The transpose of qkvRope: dq and dk rotated back, then [dq | dk | dv] along the last
/// dimension of a [b, t, (heads + 2 kvHeads) * D] tensor.
Tensor qkvRopeGrad(const Tensor &dq, const Tensor &dk, const Tensor &dv, double theta,
                   int64_t offset);

struct AddRMSNormResult {
  Tensor sum, normed;
};
/// sum = x + residual; normed = rmsNorm(sum, w, eps), in one pass per row.
AddRMSNormResult addRmsNorm(const Tensor &x, const Tensor &residual, const Tensor &w,
                            double eps);
/// input = sumGrad + rmsNormGrad(sum, w, normedGrad).input; weight as rmsNormGrad.
RMSNormGrads addRmsNormGrad(const Tensor &sum, const Tensor &w, const Tensor &normedGrad,
                            const Tensor &sumGrad, double eps);

struct FlashAttentionResult {
  Tensor out, lse; ///< lse[b, t, h] (f32): -inf for a row with no visible key
};
/// `attention` computed by tiles: for each query tile of blockQ rows, key tiles of blockK
/// keys update a running maximum, sum and unnormalised output per row (online softmax).
/// Memory beyond the result is O(blockQ * head_dim + blockK); no seq_q x seq_kv buffer.
FlashAttentionResult flashAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                    bool causal, int64_t window, double scale,
                                    int64_t blockQ, int64_t blockK);
/// The VJP of flashAttention from its saved output and lse, FlashAttention-2 style: per
/// tile P = exp(scale q.k - lse), dS = P (dO.V - rowsum(dO * O)); no softmax recomputed
/// over whole rows.
AttentionGrads flashAttentionGrad(const Tensor &q, const Tensor &k, const Tensor &v,
                                  const Tensor &out, const Tensor &lse, const Tensor &grad,
                                  bool causal, int64_t window, double scale, int64_t blockQ,
                                  int64_t blockK);
/// lse[b, t, h] (f32) of the masked, scaled scores of each query row, computed over whole
/// rows as `attention` does; -inf for a row with no visible key.
Tensor attentionLse(const Tensor &q, const Tensor &k, bool causal, int64_t window,
                    double scale);

/// log(sum(exp(x))) over the last dimension (max-shifted).
Tensor logsumexp(const Tensor &x);
/// The loss of crossEntropy with an online log-sum-exp over vocabulary chunks of `chunk`
/// entries; `lse` (f32, the logits' shape without the last dimension) is kept for every row,
/// ignored ones included. False (and `error`) for a target outside [0, V).
bool fusedCrossEntropy(const Tensor &logits, const Tensor &targets, int64_t ignoreIndex,
                       int64_t chunk, Tensor &loss, Tensor &lse, std::string *error);
/// grad * (exp(logits - lse) - onehot(target)) / count chunk by chunk, zeros for ignored
/// rows. False (and `error`) for a target outside [0, V).
bool fusedCrossEntropyGrad(const Tensor &logits, const Tensor &targets, const Tensor &lse,
                           double grad, int64_t ignoreIndex, int64_t chunk, Tensor &out,
                           std::string *error);

/// `adamw` on every (params[i], grads[i], ms[i], vs[i]) with decay weightDecays[i].
std::vector<AdamWResult> multiAdamw(const std::vector<const Tensor *> &params,
                                    const std::vector<const Tensor *> &grads,
                                    const std::vector<const Tensor *> &ms,
                                    const std::vector<const Tensor *> &vs, double lr,
                                    int64_t step, double gradScale, double beta1,
                                    double beta2, double eps,
                                    const std::vector<double> &weightDecays);

} // namespace llamac::ref

#endif
