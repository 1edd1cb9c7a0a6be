//===- Kernels.cpp - reference kernels ---------------------------------------------===//
//
// Forward kernels first, then the backward ops that the VJP rules build and the training
// ops (schedule, optimizer, clipping). Each follows its op's description in LlamaOps.td.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/interpreter/Kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace llamac::ref {

namespace {

/// Product of the dimensions before the last `keep` ones.
int64_t outer(const Tensor &t, int64_t keep) {
  int64_t n = 1;
  for (int64_t i = 0; i + keep < t.rank(); ++i)
    n *= t.shape[i];
  return n;
}

/// The keys [lo, hi] that the query at key position `pos` sees: `attention`'s masks
/// (causal, sliding window) as an interval, so that a tiled kernel can tell which tiles
/// hold no visible key at all. Empty (lo > hi) when there is none.
struct KeyRange {
  int64_t lo, hi;
};
KeyRange visibleKeys(int64_t pos, int64_t numKeys, bool causal, int64_t window) {
  int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
  int64_t hi = causal ? std::min(pos, numKeys - 1) : numKeys - 1;
  return {lo, hi};
}

double dotProduct(const double *a, const double *b, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += a[i] * b[i];
  return acc;
}

/// cos and sin of rope's angles at position `pos` for a head of `d` channels, computed as
/// `rope` computes them so that the fused kernels rotate identically.
void ropeAngles(double pos, int64_t d, double theta, std::vector<double> &cosines,
                std::vector<double> &sines) {
  cosines.resize(d / 2);
  sines.resize(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) {
    double angle = pos * std::pow(theta, -2.0 * double(i) / double(d));
    cosines[i] = std::cos(angle);
    sines[i] = std::sin(angle);
  }
}

void rotatePairs(const double *in, double *out, const std::vector<double> &cosines,
                 const std::vector<double> &sines) {
  for (size_t i = 0; i < cosines.size(); ++i) {
    double x0 = in[2 * i], x1 = in[2 * i + 1];
    out[2 * i] = x0 * cosines[i] - x1 * sines[i];
    out[2 * i + 1] = x0 * sines[i] + x1 * cosines[i];
  }
}

std::string targetError(int64_t target, int64_t row, int64_t vocab) {
  return "target " + std::to_string(target) + " at flat index " + std::to_string(row) +
         " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
}

const double kNegInf = -std::numeric_limits<double>::infinity();


/// Query row (bi, ti, hi)'s scaled scores against every key into `scores`, -inf where
/// `attention`'s masks hide the key; returns their maximum (-inf when no key is visible).
/// One implementation for the reference forward, backward and log-sum-exp.
double maskedScores(const Tensor &q, const Tensor &k, int64_t bi, int64_t ti, int64_t hi,
                    bool causal, int64_t window, double scale, std::vector<double> &scores) {
  int64_t t = q.dim(1), h = q.dim(2), d = q.dim(3), s = k.dim(1), kvh = k.dim(2);
  int64_t kh = hi / (h / kvh);
  // Queries are aligned to the end of the keys.
  KeyRange seen = visibleKeys(ti + s - t, s, causal, window);
  const double *qv = q.data.data() + ((bi * t + ti) * h + hi) * d;
  double maxScore = kNegInf;
  for (int64_t si = 0; si < s; ++si) {
    scores[si] = si >= seen.lo && si <= seen.hi
                     ? dotProduct(qv, k.data.data() + ((bi * s + si) * kvh + kh) * d, d) * scale
                     : kNegInf;
    maxScore = std::max(maxScore, scores[si]);
  }
  return maxScore;
}

} // namespace

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double silu(double x) { return x * sigmoid(x); }

bool embedding(const Tensor &table, const Tensor &tokens, Tensor &out, std::string *error) {
  int64_t vocab = table.dim(0), d = table.dim(1);
  std::vector<int64_t> shape = tokens.shape;
  shape.push_back(d);
  out = Tensor(table.dtype, shape);
  for (int64_t i = 0; i < tokens.numElements(); ++i) {
    double id = tokens[i];
    if (!(id >= 0 && id < double(vocab))) {
      *error = "token id " + std::to_string(int64_t(id)) + " at flat index " +
               std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) +
               ")";
      return false;
    }
    std::copy_n(table.data.begin() + int64_t(id) * d, d, out.data.begin() + i * d);
  }
  return true;
}

Tensor linear(const Tensor &x, const Tensor &w) {
  int64_t n = w.dim(0), k = w.dim(1), rows = outer(x, 1);
  std::vector<int64_t> shape = x.shape;
  shape.back() = n;
  Tensor out(x.dtype, shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < k; ++i)
        acc += x[r * k + i] * w[j * k + i];
      out[r * n + j] = acc;
    }
  return out;
}

Tensor matmul(const Tensor &lhs, const Tensor &rhs, bool transposeRhs) {
  int64_t m = lhs.dim(-2), k = lhs.dim(-1);
  int64_t n = transposeRhs ? rhs.dim(-2) : rhs.dim(-1);
  int64_t batch = outer(lhs, 2);
  bool shared = rhs.rank() == 2;
  std::vector<int64_t> shape = lhs.shape;
  shape.back() = n;
  Tensor out(lhs.dtype, shape);
  for (int64_t b = 0; b < batch; ++b) {
    const double *a = lhs.data.data() + b * m * k;
    const double *r = rhs.data.data() + (shared ? 0 : b * k * n);
    double *o = out.data.data() + b * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += a[i * k + p] * (transposeRhs ? r[j * k + p] : r[p * n + j]);
        o[i * n + j] = acc;
      }
  }
  return out;
}

Tensor rmsNorm(const Tensor &x, const Tensor &w, double eps) {
  int64_t d = x.dim(-1), rows = outer(x, 1);
  Tensor out(x.dtype, x.shape);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i)
      ss += x[r * d + i] * x[r * d + i];
    double inv = 1.0 / std::sqrt(ss / double(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      out[r * d + i] = x[r * d + i] * inv * w[i];
  }
  return out;
}

Tensor rope(const Tensor &x, double theta, int64_t offset, bool inverse) {
  int64_t b = x.dim(0), t = x.dim(1), h = x.dim(2), d = x.dim(3);
  Tensor out(x.dtype, x.shape);
  std::vector<double> cosines, sines;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti) {
      // Negating the position negates every angle: the inverse rotation.
      double pos = double(ti + offset) * (inverse ? -1.0 : 1.0);
      ropeAngles(pos, d, theta, cosines, sines);
      for (int64_t hi = 0; hi < h; ++hi) {
        int64_t base = ((bi * t + ti) * h + hi) * d;
        rotatePairs(x.data.data() + base, out.data.data() + base, cosines, sines);
      }
    }
  return out;
}

Tensor attention(const Tensor &q, const Tensor &k, const Tensor &v, bool causal,
                 int64_t window, double scale) {
  int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), d = q.dim(3);
  int64_t s = k.dim(1), kvh = k.dim(2), group = h / kvh;
  Tensor out(q.dtype, q.shape);
  std::vector<double> scores(s);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      int64_t kh = hi / group;
      for (int64_t ti = 0; ti < t; ++ti) {
        double maxScore = maskedScores(q, k, bi, ti, hi, causal, window, scale, scores);
        double *o = out.data.data() + ((bi * t + ti) * h + hi) * d;
        if (maxScore == kNegInf)
          continue; // no visible key: the output row stays zero
        double sum = 0;
        for (int64_t si = 0; si < s; ++si) {
          scores[si] = std::exp(scores[si] - maxScore); // exp(-inf) = 0 for masked keys
          sum += scores[si];
        }
        for (int64_t si = 0; si < s; ++si) {
          if (scores[si] == 0)
            continue;
          const double *vv = v.data.data() + ((bi * s + si) * kvh + kh) * d;
          for (int64_t i = 0; i < d; ++i)
            o[i] += scores[si] / sum * vv[i];
        }
      }
    }
  return out;
}

Tensor softmax(const Tensor &x) {
  int64_t d = x.dim(-1), rows = outer(x, 1);
  Tensor out(x.dtype, x.shape);
  for (int64_t r = 0; r < rows; ++r) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < d; ++i)
      m = std::max(m, x[r * d + i]);
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += (out[r * d + i] = std::exp(x[r * d + i] - m));
    for (int64_t i = 0; i < d; ++i)
      out[r * d + i] /= sum;
  }
  return out;
}

bool crossEntropy(const Tensor &logits, const Tensor &targets, int64_t ignoreIndex,
                  Tensor &out, std::string *error) {
  int64_t v = logits.dim(-1), rows = targets.numElements();
  double total = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    if (target == ignoreIndex)
      continue;
    if (target < 0 || target >= v) {
      *error = "target " + std::to_string(target) + " at flat index " + std::to_string(r) +
               " is outside the vocabulary [0, " + std::to_string(v) + ")";
      return false;
    }
    const double *row = logits.data.data() + r * v;
    double m = *std::max_element(row, row + v), sum = 0;
    for (int64_t i = 0; i < v; ++i)
      sum += std::exp(row[i] - m);
    total += m + std::log(sum) - row[target];
    ++counted;
  }
  out = Tensor(DType::F32, {}, counted ? total / double(counted) : 0.0);
  return true;
}

Tensor unary(const Tensor &x, const std::function<double(double)> &f) {
  Tensor out(x.dtype, x.shape);
  for (int64_t i = 0; i < x.numElements(); ++i)
    out[i] = f(x[i]);
  return out;
}

Tensor binary(const Tensor &a, const Tensor &b,
              const std::function<double(double, double)> &f) {
  Tensor out(a.dtype, a.shape);
  for (int64_t i = 0; i < a.numElements(); ++i)
    out[i] = f(a[i], b[i]);
  return out;
}

Tensor reshape(const Tensor &x, std::vector<int64_t> shape) {
  Tensor out = x;
  out.shape = std::move(shape);
  return out;
}

Tensor transpose(const Tensor &x, const std::vector<int64_t> &permutation) {
  std::vector<int64_t> shape;
  for (int64_t p : permutation)
    shape.push_back(x.shape[p]);
  Tensor out(x.dtype, shape);
  std::vector<int64_t> inStrides = x.strides(), index(shape.size(), 0);
  for (int64_t i = 0; i < out.numElements(); ++i) {
    int64_t src = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      src += index[d] * inStrides[permutation[d]];
    out[i] = x[src];
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) { // next output index
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
  return out;
}

Tensor concat(const std::vector<const Tensor *> &inputs, int64_t dim) {
  std::vector<int64_t> shape = inputs.front()->shape;
  shape[dim] = 0;
  for (const Tensor *t : inputs)
    shape[dim] += t->shape[dim];
  Tensor out(inputs.front()->dtype, shape);
  int64_t before = 1, after = 1;
  for (int64_t d = 0; d < dim; ++d)
    before *= shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d)
    after *= shape[d];
  int64_t o = 0;
  for (int64_t b = 0; b < before; ++b)
    for (const Tensor *t : inputs) {
      int64_t chunk = t->shape[dim] * after;
      std::copy_n(t->data.begin() + b * chunk, chunk, out.data.begin() + o);
      o += chunk;
    }
  return out;
}

Tensor slice(const Tensor &x, int64_t dim, int64_t offset, int64_t size) {
  std::vector<int64_t> shape = x.shape;
  shape[dim] = size;
  Tensor out(x.dtype, shape);
  int64_t before = 1, after = 1;
  for (int64_t d = 0; d < dim; ++d)
    before *= x.shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d)
    after *= x.shape[d];
  for (int64_t b = 0; b < before; ++b)
    std::copy_n(x.data.begin() + (b * x.shape[dim] + offset) * after, size * after,
                out.data.begin() + b * size * after);
  return out;
}

Tensor pad(const Tensor &x, int64_t dim, int64_t before, int64_t after) {
  std::vector<int64_t> shape = x.shape;
  shape[dim] += before + after;
  Tensor out(x.dtype, shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d)
    outer *= x.shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d)
    inner *= x.shape[d];
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(x.data.begin() + o * x.shape[dim] * inner, x.shape[dim] * inner,
                out.data.begin() + (o * shape[dim] + before) * inner);
  return out;
}

//===----------------------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------------------===//

bool embeddingGrad(const Tensor &tokens, const Tensor &grad, int64_t vocab, Tensor &out,
                   std::string *error) {
  int64_t d = grad.dim(-1);
  out = Tensor(grad.dtype, {vocab, d});
  for (int64_t p = 0; p < tokens.numElements(); ++p) {
    double id = tokens[p];
    if (!(id >= 0 && id < double(vocab))) {
      *error = "token id " + std::to_string(int64_t(id)) + " at flat index " +
               std::to_string(p) + " is outside the vocabulary [0, " + std::to_string(vocab) +
               ")";
      return false;
    }
    for (int64_t i = 0; i < d; ++i)
      out[int64_t(id) * d + i] += grad[p * d + i];
  }
  return true;
}

Tensor linearWeightGrad(const Tensor &grad, const Tensor &x) {
  int64_t n = grad.dim(-1), k = x.dim(-1), rows = outer(grad, 1);
  Tensor out(grad.dtype, {n, k});
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < k; ++i) {
      double acc = 0;
      for (int64_t r = 0; r < rows; ++r)
        acc += grad[r * n + j] * x[r * k + i];
      out[j * k + i] = acc;
    }
  return out;
}

RMSNormGrads rmsNormGrad(const Tensor &x, const Tensor &w, const Tensor &grad, double eps) {
  int64_t d = x.dim(-1), rows = outer(x, 1);
  RMSNormGrads out{Tensor(x.dtype, x.shape), Tensor(w.dtype, w.shape)};
  for (int64_t r = 0; r < rows; ++r) {
    const double *xr = x.data.data() + r * d, *gr = grad.data.data() + r * d;
    double ss = 0, gx = 0;
    for (int64_t i = 0; i < d; ++i) {
      ss += xr[i] * xr[i];
      gx += gr[i] * w[i] * xr[i];
    }
    double inv = 1.0 / std::sqrt(ss / double(d) + eps);
    double meanGX = gx / double(d);
    for (int64_t i = 0; i < d; ++i) {
      out.input[r * d + i] = inv * (gr[i] * w[i] - xr[i] * inv * inv * meanGX);
      out.weight[i] += gr[i] * xr[i] * inv;
    }
  }
  return out;
}

AttentionGrads attentionGrad(const Tensor &q, const Tensor &k, const Tensor &v,
                             const Tensor &grad, bool causal, int64_t window, double scale) {
  int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), d = q.dim(3);
  int64_t s = k.dim(1), kvh = k.dim(2), group = h / kvh;
  AttentionGrads out{Tensor(q.dtype, q.shape), Tensor(k.dtype, k.shape),
                     Tensor(v.dtype, v.shape)};
  std::vector<double> p(s), dp(s);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      int64_t kh = hi / group;
      for (int64_t ti = 0; ti < t; ++ti) {
        int64_t row = ((bi * t + ti) * h + hi) * d;
        const double *qv = q.data.data() + row, *go = grad.data.data() + row;
        // Recompute the probabilities of this row, as the forward kernel does.
        double maxScore = maskedScores(q, k, bi, ti, hi, causal, window, scale, p);
        if (maxScore == kNegInf)
          continue; // no visible key: the output was the constant zero
        double sum = 0;
        for (int64_t si = 0; si < s; ++si)
          sum += (p[si] = std::exp(p[si] - maxScore));
        // dv_j += p_j do; dp_j = <do, v_j>; ds_j = p_j (dp_j - sum_i p_i dp_i).
        double rowDot = 0;
        for (int64_t si = 0; si < s; ++si) {
          p[si] /= sum;
          int64_t kvRow = ((bi * s + si) * kvh + kh) * d;
          double acc = 0;
          for (int64_t i = 0; i < d; ++i) {
            out.value[kvRow + i] += p[si] * go[i];
            acc += go[i] * v[kvRow + i];
          }
          dp[si] = acc;
          rowDot += p[si] * acc;
        }
        for (int64_t si = 0; si < s; ++si) {
          if (p[si] == 0)
            continue; // masked (or underflowed) keys have no gradient
          double ds = p[si] * (dp[si] - rowDot) * scale;
          int64_t kvRow = ((bi * s + si) * kvh + kh) * d;
          for (int64_t i = 0; i < d; ++i) {
            out.query[row + i] += ds * k[kvRow + i];
            out.key[kvRow + i] += ds * qv[i];
          }
        }
      }
    }
  return out;
}

Tensor softmaxGrad(const Tensor &y, const Tensor &grad) {
  int64_t d = y.dim(-1), rows = outer(y, 1);
  Tensor out(y.dtype, y.shape);
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0;
    for (int64_t i = 0; i < d; ++i)
      dot += grad[r * d + i] * y[r * d + i];
    for (int64_t i = 0; i < d; ++i)
      out[r * d + i] = y[r * d + i] * (grad[r * d + i] - dot);
  }
  return out;
}

Tensor siluGrad(const Tensor &x, const Tensor &grad) {
  Tensor out(x.dtype, x.shape);
  for (int64_t i = 0; i < x.numElements(); ++i) {
    double s = sigmoid(x[i]);
    out[i] = grad[i] * s * (1.0 + x[i] * (1.0 - s));
  }
  return out;
}

bool crossEntropyGrad(const Tensor &logits, const Tensor &targets, double grad,
                      int64_t ignoreIndex, Tensor &out, std::string *error) {
  int64_t v = logits.dim(-1), rows = targets.numElements();
  // The mean's denominator first: every counted row's gradient is divided by it.
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    if (target == ignoreIndex)
      continue;
    if (target < 0 || target >= v) {
      *error = "target " + std::to_string(target) + " at flat index " + std::to_string(r) +
               " is outside the vocabulary [0, " + std::to_string(v) + ")";
      return false;
    }
    ++count;
  }
  out = Tensor(logits.dtype, logits.shape);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    if (target == ignoreIndex)
      continue;
    const double *row = logits.data.data() + r * v;
    double m = *std::max_element(row, row + v), sum = 0;
    for (int64_t i = 0; i < v; ++i)
      sum += std::exp(row[i] - m);
    double factor = grad / double(count);
    for (int64_t i = 0; i < v; ++i)
      out[r * v + i] = factor * (std::exp(row[i] - m) / sum - (i == target ? 1.0 : 0.0));
  }
  return true;
}

//===----------------------------------------------------------------------------------===//
// Training ops
//===----------------------------------------------------------------------------------===//

double lrSchedule(int64_t step, double peak, int64_t total, int64_t warmup, double floor) {
  if (step < warmup)
    return peak * double(step + 1) / double(warmup);
  double progress =
      std::min(1.0, double(step - warmup) / double(std::max<int64_t>(1, total - warmup)));
  return peak * (floor + (1.0 - floor) * (1.0 + std::cos(M_PI * progress)) / 2.0);
}

AdamWResult adamw(const Tensor &param, const Tensor &grad, const Tensor &m, const Tensor &v,
                  double lr, int64_t step, double gradScale, double beta1, double beta2,
                  double eps, double weightDecay) {
  AdamWResult out{Tensor(param.dtype, param.shape), Tensor(m.dtype, m.shape),
                  Tensor(v.dtype, v.shape)};
  double t = double(step + 1);
  double correction1 = 1.0 - std::pow(beta1, t), correction2 = 1.0 - std::pow(beta2, t);
  for (int64_t i = 0; i < param.numElements(); ++i) {
    double g = grad[i] * gradScale;
    double m1 = beta1 * m[i] + (1.0 - beta1) * g;
    double v1 = beta2 * v[i] + (1.0 - beta2) * g * g;
    double update = m1 / correction1 / (std::sqrt(v1 / correction2) + eps);
    out.param[i] = param[i] - lr * (update + weightDecay * param[i]);
    out.m[i] = m1;
    out.v[i] = v1;
  }
  return out;
}

GradClipResult gradClip(const std::vector<const Tensor *> &grads, double count,
                        double maxNorm) {
  double ss = 0;
  for (const Tensor *g : grads)
    for (double x : g->data)
      ss += (x / count) * (x / count);
  GradClipResult out;
  out.norm = std::sqrt(ss);
  out.coefficient = std::min(1.0, maxNorm / (out.norm + 1e-6)) / count;
  return out;
}

//===----------------------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------------------===//


Tensor swiglu(const Tensor &x) {
  int64_t f = x.dim(-1) / 2, rows = outer(x, 1);
  std::vector<int64_t> shape = x.shape;
  shape.back() = f;
  Tensor out(x.dtype, shape);
  for (int64_t r = 0; r < rows; ++r) {
    const double *gate = x.data.data() + r * 2 * f, *up = gate + f;
    for (int64_t i = 0; i < f; ++i)
      out[r * f + i] = silu(gate[i]) * up[i];
  }
  return out;
}

Tensor swigluGrad(const Tensor &x, const Tensor &grad) {
  int64_t f = x.dim(-1) / 2, rows = outer(x, 1);
  Tensor out(x.dtype, x.shape);
  for (int64_t r = 0; r < rows; ++r) {
    const double *gate = x.data.data() + r * 2 * f, *up = gate + f;
    const double *g = grad.data.data() + r * f;
    double *dgate = out.data.data() + r * 2 * f, *dup = dgate + f;
    for (int64_t i = 0; i < f; ++i) {
      double s = sigmoid(gate[i]);
      // silu'(x) = s (1 + x (1 - s)), applied to the cotangent of silu(gate), grad * up.
      dgate[i] = g[i] * up[i] * s * (1.0 + gate[i] * (1.0 - s));
      dup[i] = g[i] * silu(gate[i]);
    }
  }
  return out;
}

QKV qkvRope(const Tensor &x, int64_t heads, int64_t kvHeads, double theta, int64_t offset) {
  int64_t b = x.dim(0), t = x.dim(1), width = x.dim(2), d = width / (heads + 2 * kvHeads);
  QKV out{Tensor(x.dtype, {b, t, heads, d}), Tensor(x.dtype, {b, t, kvHeads, d}),
          Tensor(x.dtype, {b, t, kvHeads, d})};
  std::vector<double> cosines, sines;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti) {
      // One position per row: its angles serve every q and k head of the row.
      ropeAngles(double(ti + offset), d, theta, cosines, sines);
      const double *row = x.data.data() + (bi * t + ti) * width;
      for (int64_t h = 0; h < heads; ++h)
        rotatePairs(row + h * d, out.q.data.data() + ((bi * t + ti) * heads + h) * d, cosines,
                    sines);
      for (int64_t h = 0; h < kvHeads; ++h) {
        int64_t dst = ((bi * t + ti) * kvHeads + h) * d;
        rotatePairs(row + (heads + h) * d, out.k.data.data() + dst, cosines, sines);
        std::copy_n(row + (heads + kvHeads + h) * d, d, out.v.data.begin() + dst);
      }
    }
  return out;
}

Tensor qkvRopeGrad(const Tensor &dq, const Tensor &dk, const Tensor &dv, double theta,
                   int64_t offset) {
  int64_t b = dq.dim(0), t = dq.dim(1), heads = dq.dim(2), d = dq.dim(3);
  int64_t kvHeads = dk.dim(2), width = (heads + 2 * kvHeads) * d;
  Tensor out(dq.dtype, {b, t, width});
  std::vector<double> cosines, sines;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti) {
      // The rotation is orthogonal: its transpose is the rotation by the opposite angle.
      ropeAngles(-double(ti + offset), d, theta, cosines, sines);
      double *row = out.data.data() + (bi * t + ti) * width;
      for (int64_t h = 0; h < heads; ++h)
        rotatePairs(dq.data.data() + ((bi * t + ti) * heads + h) * d, row + h * d, cosines,
                    sines);
      for (int64_t h = 0; h < kvHeads; ++h) {
        int64_t src = ((bi * t + ti) * kvHeads + h) * d;
        rotatePairs(dk.data.data() + src, row + (heads + h) * d, cosines, sines);
        std::copy_n(dv.data.begin() + src, d, row + (heads + kvHeads + h) * d);
      }
    }
  return out;
}

AddRMSNormResult addRmsNorm(const Tensor &x, const Tensor &residual, const Tensor &w,
                            double eps) {
  int64_t d = x.dim(-1), rows = outer(x, 1);
  AddRMSNormResult out{Tensor(x.dtype, x.shape), Tensor(x.dtype, x.shape)};
  for (int64_t r = 0; r < rows; ++r) {
    double *sum = out.sum.data.data() + r * d, ss = 0;
    for (int64_t i = 0; i < d; ++i) {
      sum[i] = x[r * d + i] + residual[r * d + i];
      ss += sum[i] * sum[i];
    }
    double inv = 1.0 / std::sqrt(ss / double(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      out.normed[r * d + i] = sum[i] * inv * w[i];
  }
  return out;
}

RMSNormGrads addRmsNormGrad(const Tensor &sum, const Tensor &w, const Tensor &normedGrad,
                            const Tensor &sumGrad, double eps) {
  int64_t d = sum.dim(-1), rows = outer(sum, 1);
  RMSNormGrads out{Tensor(sum.dtype, sum.shape), Tensor(w.dtype, w.shape)};
  for (int64_t r = 0; r < rows; ++r) {
    const double *xr = sum.data.data() + r * d, *gr = normedGrad.data.data() + r * d;
    double ss = 0, gx = 0;
    for (int64_t i = 0; i < d; ++i) {
      ss += xr[i] * xr[i];
      gx += gr[i] * w[i] * xr[i];
    }
    double inv = 1.0 / std::sqrt(ss / double(d) + eps);
    double meanGX = gx / double(d);
    for (int64_t i = 0; i < d; ++i) {
      // The residual stream's cotangent passes through the add unchanged.
      out.input[r * d + i] =
          sumGrad[r * d + i] + inv * (gr[i] * w[i] - xr[i] * inv * inv * meanGX);
      out.weight[i] += gr[i] * xr[i] * inv;
    }
  }
  return out;
}

FlashAttentionResult flashAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                    bool causal, int64_t window, double scale,
                                    int64_t blockQ, int64_t blockK) {
  int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), d = q.dim(3);
  int64_t s = k.dim(1), kvh = k.dim(2), group = h / kvh;
  FlashAttentionResult out{Tensor(q.dtype, q.shape), Tensor(DType::F32, {b, t, h})};
  // The state of one query tile (running max m, running sum l and the output accumulator
  // scaled by exp(-m), per row) and the scores of one row against one key tile: blocks
  // larger than the sequence shrink to it.
  int64_t tileRows = std::min(blockQ, t), tileKeys = std::min(blockK, s);
  std::vector<double> m(tileRows), l(tileRows), acc(tileRows * d), scores(tileKeys);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      int64_t kh = hi / group; // grouped-query: query head hi reads KV head kh
      for (int64_t t0 = 0; t0 < t; t0 += blockQ) {
        int64_t rows = std::min(blockQ, t - t0);
        std::fill_n(m.begin(), rows, kNegInf);
        std::fill_n(l.begin(), rows, 0.0);
        std::fill_n(acc.begin(), rows * d, 0.0);
        // Queries are aligned to the end of the keys. Both ends of the visible range grow
        // with the position, so the tile sees at most [first.lo, last.hi].
        KeyRange first = visibleKeys(t0 + s - t, s, causal, window);
        KeyRange last = visibleKeys(t0 + rows - 1 + s - t, s, causal, window);
        for (int64_t s0 = 0; s0 < s; s0 += blockK) {
          int64_t s1 = std::min(s0 + blockK, s);
          // A key tile above the causal diagonal or behind the window is skipped whole.
          if (s1 - 1 < first.lo || s0 > last.hi)
            continue;
          for (int64_t r = 0; r < rows; ++r) {
            KeyRange seen = visibleKeys(t0 + r + s - t, s, causal, window);
            int64_t lo = std::max(s0, seen.lo), hiKey = std::min(s1 - 1, seen.hi);
            if (lo > hiKey)
              continue; // this row sees nothing in this tile
            const double *qv = q.data.data() + ((bi * t + t0 + r) * h + hi) * d;
            double tileMax = kNegInf;
            for (int64_t si = lo; si <= hiKey; ++si) {
              const double *kv = k.data.data() + ((bi * s + si) * kvh + kh) * d;
              scores[si - s0] = dotProduct(qv, kv, d) * scale;
              tileMax = std::max(tileMax, scores[si - s0]);
            }
            double mNew = std::max(m[r], tileMax);
            // What was accumulated under the old maximum is rescaled to the new one
            // (exp(-inf) = 0 on the row's first visible tile).
            double alpha = std::exp(m[r] - mNew);
            double *a = acc.data() + r * d;
            l[r] *= alpha;
            for (int64_t i = 0; i < d; ++i)
              a[i] *= alpha;
            for (int64_t si = lo; si <= hiKey; ++si) {
              double p = std::exp(scores[si - s0] - mNew);
              l[r] += p;
              const double *vv = v.data.data() + ((bi * s + si) * kvh + kh) * d;
              for (int64_t i = 0; i < d; ++i)
                a[i] += p * vv[i];
            }
            m[r] = mNew;
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          int64_t row = (bi * t + t0 + r) * h + hi;
          if (m[r] == kNegInf) {
            out.lse[row] = kNegInf; // no visible key: the output row stays zero
            continue;
          }
          for (int64_t i = 0; i < d; ++i)
            out.out[row * d + i] = acc[r * d + i] / l[r];
          out.lse[row] = m[r] + std::log(l[r]);
        }
      }
    }
  return out;
}

AttentionGrads flashAttentionGrad(const Tensor &q, const Tensor &k, const Tensor &v,
                                  const Tensor &out, const Tensor &lse, const Tensor &grad,
                                  bool causal, int64_t window, double scale, int64_t blockQ,
                                  int64_t blockK) {
  int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), d = q.dim(3);
  int64_t s = k.dim(1), kvh = k.dim(2), group = h / kvh;
  AttentionGrads g{Tensor(q.dtype, q.shape), Tensor(k.dtype, k.shape),
                   Tensor(v.dtype, v.shape)};
  // D = rowsum(dO * O) per query row of one (batch, head): the softmax's correction term
  // sum_j P_j dP_j, read from the saved output instead of a whole row of P.
  std::vector<double> rowDot(t);
  // As FlashAttention-2: the outer loop runs over key tiles, whose dK and dV accumulate
  // here, and the inner loop over query tiles, which add into dQ.
  int64_t tileKeys = std::min(blockK, s);
  std::vector<double> dk(tileKeys * d), dv(tileKeys * d);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi) {
      int64_t kh = hi / group;
      for (int64_t ti = 0; ti < t; ++ti) {
        int64_t row = ((bi * t + ti) * h + hi) * d;
        rowDot[ti] = dotProduct(grad.data.data() + row, out.data.data() + row, d);
      }
      for (int64_t s0 = 0; s0 < s; s0 += blockK) {
        int64_t s1 = std::min(s0 + blockK, s);
        std::fill_n(dk.begin(), (s1 - s0) * d, 0.0);
        std::fill_n(dv.begin(), (s1 - s0) * d, 0.0);
        for (int64_t t0 = 0; t0 < t; t0 += blockQ) {
          int64_t rows = std::min(blockQ, t - t0);
          KeyRange first = visibleKeys(t0 + s - t, s, causal, window);
          KeyRange last = visibleKeys(t0 + rows - 1 + s - t, s, causal, window);
          if (s1 - 1 < first.lo || s0 > last.hi)
            continue;
          for (int64_t r = 0; r < rows; ++r) {
            int64_t ti = t0 + r;
            double rowLse = lse[(bi * t + ti) * h + hi];
            if (rowLse == kNegInf)
              continue; // no visible key: the output was the constant zero
            KeyRange seen = visibleKeys(ti + s - t, s, causal, window);
            int64_t row = ((bi * t + ti) * h + hi) * d;
            const double *qv = q.data.data() + row, *go = grad.data.data() + row;
            double *dq = g.query.data.data() + row;
            for (int64_t si = std::max(s0, seen.lo); si <= std::min(s1 - 1, seen.hi); ++si) {
              int64_t kvRow = ((bi * s + si) * kvh + kh) * d;
              const double *kv = k.data.data() + kvRow, *vv = v.data.data() + kvRow;
              double p = std::exp(dotProduct(qv, kv, d) * scale - rowLse);
              double dp = dotProduct(go, vv, d);
              double ds = p * (dp - rowDot[ti]) * scale;
              double *dkRow = dk.data() + (si - s0) * d, *dvRow = dv.data() + (si - s0) * d;
              for (int64_t i = 0; i < d; ++i) {
                dvRow[i] += p * go[i];
                dq[i] += ds * kv[i];
                dkRow[i] += ds * qv[i];
              }
            }
          }
        }
        // The query heads of one group share this KV head: their tiles accumulate.
        for (int64_t si = s0; si < s1; ++si) {
          int64_t kvRow = ((bi * s + si) * kvh + kh) * d;
          for (int64_t i = 0; i < d; ++i) {
            g.key[kvRow + i] += dk[(si - s0) * d + i];
            g.value[kvRow + i] += dv[(si - s0) * d + i];
          }
        }
      }
    }
  return g;
}

Tensor attentionLse(const Tensor &q, const Tensor &k, bool causal, int64_t window,
                    double scale) {
  int64_t b = q.dim(0), t = q.dim(1), h = q.dim(2), s = k.dim(1);
  Tensor out(DType::F32, {b, t, h});
  std::vector<double> scores(s);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti)
      for (int64_t hi = 0; hi < h; ++hi) {
        double maxScore = maskedScores(q, k, bi, ti, hi, causal, window, scale, scores);
        double &o = out[(bi * t + ti) * h + hi];
        if (maxScore == kNegInf) {
          o = kNegInf;
          continue;
        }
        double sum = 0;
        for (int64_t si = 0; si < s; ++si)
          sum += std::exp(scores[si] - maxScore);
        o = maxScore + std::log(sum);
      }
  return out;
}

Tensor logsumexp(const Tensor &x) {
  int64_t d = x.dim(-1), rows = outer(x, 1);
  Tensor out(x.dtype, std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  for (int64_t r = 0; r < rows; ++r) {
    const double *row = x.data.data() + r * d;
    double m = kNegInf;
    for (int64_t i = 0; i < d; ++i)
      m = std::max(m, row[i]);
    if (std::isinf(m)) {
      out[r] = m; // all -inf (or empty), or an infinite entry: x - m would be NaN
      continue;
    }
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += std::exp(row[i] - m);
    out[r] = m + std::log(sum);
  }
  return out;
}

bool fusedCrossEntropy(const Tensor &logits, const Tensor &targets, int64_t ignoreIndex,
                       int64_t chunk, Tensor &loss, Tensor &lse, std::string *error) {
  int64_t v = logits.dim(-1), rows = targets.numElements();
  Tensor rowLse(DType::F32, std::vector<int64_t>(logits.shape.begin(), logits.shape.end() - 1));
  double total = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    bool ignored = target == ignoreIndex;
    if (!ignored && (target < 0 || target >= v)) {
      *error = targetError(target, r, v);
      return false;
    }
    // Online log-sum-exp: a running maximum m and a sum l of exp(x - m), rescaled when a
    // chunk raises the maximum, so that only one chunk of the row is live at a time.
    const double *row = logits.data.data() + r * v;
    double m = kNegInf, l = 0;
    for (int64_t c0 = 0; c0 < v; c0 += chunk) {
      int64_t c1 = std::min(c0 + chunk, v);
      double chunkMax = *std::max_element(row + c0, row + c1);
      double mNew = std::max(m, chunkMax);
      if (mNew == kNegInf)
        continue; // every logit so far is -inf: nothing to add yet
      l *= std::exp(m - mNew);
      for (int64_t i = c0; i < c1; ++i)
        l += std::exp(row[i] - mNew);
      m = mNew;
    }
    rowLse[r] = m + std::log(l);
    if (ignored)
      continue;
    total += rowLse[r] - row[target];
    ++counted;
  }
  loss = Tensor(DType::F32, {}, counted ? total / double(counted) : 0.0);
  lse = std::move(rowLse);
  return true;
}

bool fusedCrossEntropyGrad(const Tensor &logits, const Tensor &targets, const Tensor &lse,
                           double grad, int64_t ignoreIndex, int64_t chunk, Tensor &out,
                           std::string *error) {
  int64_t v = logits.dim(-1), rows = targets.numElements();
  // The mean's denominator first: every counted row's gradient is divided by it.
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    if (target == ignoreIndex)
      continue;
    if (target < 0 || target >= v) {
      *error = targetError(target, r, v);
      return false;
    }
    ++count;
  }
  out = Tensor(logits.dtype, logits.shape);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t target = int64_t(targets[r]);
    if (target == ignoreIndex)
      continue;
    // The saved lse turns each logit into its probability on its own: no pass over the row
    // to find the maximum and the sum, one chunk at a time.
    double factor = grad / double(count), rowLse = lse[r];
    const double *row = logits.data.data() + r * v;
    for (int64_t c0 = 0; c0 < v; c0 += chunk)
      for (int64_t i = c0; i < std::min(c0 + chunk, v); ++i)
        out[r * v + i] = factor * (std::exp(row[i] - rowLse) - (i == target ? 1.0 : 0.0));
  }
  return true;
}

std::vector<AdamWResult> multiAdamw(const std::vector<const Tensor *> &params,
                                    const std::vector<const Tensor *> &grads,
                                    const std::vector<const Tensor *> &ms,
                                    const std::vector<const Tensor *> &vs, double lr,
                                    int64_t step, double gradScale, double beta1,
                                    double beta2, double eps,
                                    const std::vector<double> &weightDecays) {
  std::vector<AdamWResult> out;
  for (size_t i = 0; i < params.size(); ++i)
    out.push_back(adamw(*params[i], *grads[i], *ms[i], *vs[i], lr, step, gradScale, beta1,
                        beta2, eps, weightDecays[i]));
  return out;
}

} // namespace llamac::ref
