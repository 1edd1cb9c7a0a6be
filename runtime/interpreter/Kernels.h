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
/// Rotates channel pairs (2i, 2i+1) of x[b, t, h, :] by (t + offset) * theta^(-2i/D).
Tensor rope(const Tensor &x, double theta, int64_t offset);
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

double silu(double x);
double sigmoid(double x);

} // namespace llamac::ref

#endif
