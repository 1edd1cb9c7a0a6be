//===- CpuKernelsTest.cpp - the CPU kernels against the reference interpreter -----===//
//
// Every kernel of runtime/cpu/CpuKernels.h on random inputs of small, odd shapes, compared
// with the interpreter's kernel of the same op (runtime/interpreter/Kernels.h, in double).
// The kernels compute in f32, so outputs are compared to within kRel relative to the
// largest magnitude of the expected tensor. Tiles smaller than the sequences and not
// dividing them, grouped-query heads, masks and ignored rows are all exercised.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/Quantize.h"
#include "runtime/interpreter/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

using namespace llamac;

namespace {

/// f32 kernels against double references: a few ulps of f32 on sums of tens of terms.
constexpr double kRel = 1e-5;
const double kInf = std::numeric_limits<double>::infinity();

std::vector<float> randomVec(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

Tensor tensor(std::vector<int64_t> shape, const std::vector<float> &values) {
  Tensor t(DType::F32, std::move(shape));
  EXPECT_EQ(t.numElements(), int64_t(values.size()));
  t.data.assign(values.begin(), values.end());
  return t;
}

Tensor tokenTensor(const std::vector<int32_t> &ids) {
  Tensor t(DType::I32, {int64_t(ids.size())});
  t.data.assign(ids.begin(), ids.end());
  return t;
}

std::vector<float> floats(const Tensor &t) { return {t.data.begin(), t.data.end()}; }

/// max |got - want| <= rel * max |want|; infinities must match exactly.
void expectClose(const std::vector<float> &got, const Tensor &want, const std::string &what,
                 double rel = kRel) {
  ASSERT_EQ(int64_t(got.size()), want.numElements()) << what;
  double scale = 0, err = 0;
  int64_t worst = -1;
  for (double w : want.data)
    if (std::isfinite(w))
      scale = std::max(scale, std::abs(w));
  for (int64_t i = 0; i < want.numElements(); ++i) {
    double w = want[i], g = got[i];
    if (std::isinf(w) || std::isinf(g)) {
      EXPECT_EQ(w, g) << what << ": element " << i;
      continue;
    }
    ASSERT_FALSE(std::isnan(g)) << what << ": element " << i;
    if (std::abs(g - w) > err) {
      err = std::abs(g - w);
      worst = i;
    }
  }
  EXPECT_LE(err, rel * std::max(scale, 1e-30))
      << what << ": element " << worst << " got " << got[worst] << " want " << want[worst]
      << " (max |want| " << scale << ")";
}

void expectClose(float got, double want, const std::string &what, double rel = kRel) {
  EXPECT_LE(std::abs(double(got) - want), rel * std::max(std::abs(want), 1e-30))
      << what << ": got " << got << " want " << want;
}

//===--- GEMM -------------------------------------------------------------------------===//

/// Each GEMM at an odd small shape and at one large enough for BLIS to use its threads,
/// overwriting and accumulating.
TEST(CpuKernelsGemm, MatchesReference) {
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{7, 5, 9}, {131, 67, 300}}) {
    std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
    std::vector<float> a = randomVec(M * K, 1), b = randomVec(N * K, 2),
                       c0 = randomVec(M * N, 3);
    Tensor base = tensor({M, N}, c0);
    for (bool accumulate : {false, true}) {
      std::string what = shape + (accumulate ? " accumulate" : "");
      auto expected = [&](const Tensor &product) {
        return accumulate ? ref::binary(product, base, [](double x, double y) { return x + y; })
                          : product;
      };
      // NT: x W^T with A[M, K], B[N, K].
      std::vector<float> c = c0;
      cpu::gemmNT(M, N, K, a.data(), b.data(), c.data(), accumulate);
      expectClose(c, expected(ref::linear(tensor({M, K}, a), tensor({N, K}, b))), "NT " + what);
      // NN: A[M, K] B[K, N].
      c = c0;
      cpu::gemmNN(M, N, K, a.data(), b.data(), c.data(), accumulate);
      expectClose(c, expected(ref::matmul(tensor({M, K}, a), tensor({K, N}, b), false)),
                  "NN " + what);
      // TN: A[K, M]^T B[K, N], the weight gradient dy^T x.
      c = c0;
      cpu::gemmTN(M, N, K, a.data(), b.data(), c.data(), accumulate);
      expectClose(c, expected(ref::linearWeightGrad(tensor({K, M}, a), tensor({K, N}, b))),
                  "TN " + what);
    }
  }
}

// int8 weights: quantisation keeps every value within half a step of its row's scale, and
// gemmNTQ8 equals the exact integer product of the quantised operands (the AVX2 path and the
// tail past the last 32 columns included), which in turn is close to the f32 product.
TEST(CpuKernelsQ8, QuantizeRows) {
  int64_t rows = 5, cols = 70;
  std::vector<float> w = randomVec(rows * cols, 11);
  std::fill(w.begin() + 2 * cols, w.begin() + 3 * cols, 0.0f); // a row of zeros
  std::vector<int8_t> q(rows * cols);
  std::vector<float> scales(rows);
  quantizeRowsQ8(w.data(), rows, cols, q.data(), scales.data());
  EXPECT_EQ(scales[2], 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c)
      amax = std::max(amax, std::fabs(w[r * cols + c]));
    EXPECT_FLOAT_EQ(scales[r], amax / 127.0f) << "row " << r;
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_LE(std::abs(int(q[r * cols + c])), 127);
      EXPECT_LE(std::fabs(q[r * cols + c] * scales[r] - w[r * cols + c]), 0.5f * scales[r] + 1e-7f)
          << "row " << r << " column " << c;
    }
  }
}

TEST(CpuKernelsQ8, GemmMatchesTheQuantisedProduct) {
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 37, 300},
                         {3, 130, 64},
                         {2, 2000, 288}}) {
    std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
    std::vector<float> a = randomVec(M * K, 12), w = randomVec(N * K, 13, 0.05f);
    std::vector<int8_t> qw(N * K), qa(M * K);
    std::vector<float> sw(N), sa(M), c(M * N);
    quantizeRowsQ8(w.data(), N, K, qw.data(), sw.data());
    quantizeRowsQ8(a.data(), M, K, qa.data(), sa.data());
    cpu::gemmNTQ8(M, N, K, a.data(), qw.data(), sw.data(), c.data());
    double worst = 0, scale = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t dot = 0;
        double exact = 0;
        for (int64_t k = 0; k < K; ++k) {
          dot += int64_t(qa[m * K + k]) * qw[n * K + k];
          exact += double(a[m * K + k]) * w[n * K + k];
        }
        float want = float(dot) * sa[m] * sw[n];
        ASSERT_NEAR(c[m * N + n], want, 1e-6f * std::fabs(want) + 1e-12f)
            << shape << " (" << m << ", " << n << ")";
        worst = std::max(worst, std::fabs(c[m * N + n] - exact));
        scale = std::max(scale, std::fabs(exact));
      }
    // Two 8-bit roundings: ~1% of the largest output is the expected size of the error.
    EXPECT_LT(worst, 0.02 * scale) << shape;
  }
}

//===--- memory and elementwise -------------------------------------------------------===//

TEST(CpuKernelsMemory, FillCopyCopyRows) {
  std::vector<float> out(13, 0.0f);
  cpu::fill(out.data(), 11, 2.5f);
  for (int i = 0; i < 13; ++i)
    EXPECT_EQ(out[i], i < 11 ? 2.5f : 0.0f) << i;
  std::vector<float> in = randomVec(13, 4);
  cpu::copy(in.data(), 13, out.data());
  EXPECT_EQ(out, in);
  // A slice of columns [2, 7) of a [5, 9] tensor, then concatenated back at column 3 of a
  // [5, 8] tensor.
  Tensor x = tensor({5, 9}, randomVec(45, 5));
  std::vector<float> sliced(5 * 5);
  cpu::copyRows(floats(x).data() + 2, 5, 5, 9, 5, sliced.data());
  expectClose(sliced, ref::slice(x, 1, 2, 5), "slice", 0.0);
  Tensor left = tensor({5, 3}, randomVec(15, 6));
  std::vector<float> cat(5 * 8);
  cpu::copyRows(floats(left).data(), 5, 3, 3, 8, cat.data());
  cpu::copyRows(sliced.data(), 5, 5, 5, 8, cat.data() + 3);
  Tensor right = tensor({5, 5}, sliced);
  expectClose(cat, ref::concat({&left, &right}, 1), "concat", 0.0);
}

TEST(CpuKernelsElementwise, Binary) {
  using Fn = double (*)(double, double);
  const std::vector<std::pair<cpu::Binary, Fn>> ops = {
      {cpu::Binary::Add, [](double x, double y) { return x + y; }},
      {cpu::Binary::Sub, [](double x, double y) { return x - y; }},
      {cpu::Binary::Mul, [](double x, double y) { return x * y; }},
      {cpu::Binary::Div, [](double x, double y) { return x / y; }},
      {cpu::Binary::Max, [](double x, double y) { return std::max(x, y); }},
      {cpu::Binary::Min, [](double x, double y) { return std::min(x, y); }}};
  // n = 7 x 9; b whole, a broadcast trailing row of 9, a scalar; and a long vector for the
  // threaded path.
  for (int64_t n : {int64_t(63), int64_t(100003)})
    for (int64_t bSize : {n, int64_t(9), int64_t(1)}) {
      if (n % bSize)
        continue;
      std::vector<float> a = randomVec(n, 7), b = randomVec(bSize, 8);
      for (float &x : b)
        x += x >= 0 ? 0.5f : -0.5f; // keep divisors away from zero
      std::vector<float> bFull(n);
      for (int64_t i = 0; i < n; ++i)
        bFull[i] = b[i % bSize];
      for (auto [op, fn] : ops) {
        std::vector<float> out(n);
        cpu::binary(op, a.data(), b.data(), n, bSize, out.data());
        expectClose(out, ref::binary(tensor({n}, a), tensor({n}, bFull), fn),
                    "binary op " + std::to_string(int(op)) + " n " + std::to_string(n) +
                        " bSize " + std::to_string(bSize));
      }
    }
}

TEST(CpuKernelsElementwise, UnaryAndScale) {
  const std::vector<std::pair<cpu::Unary, double (*)(double)>> ops = {
      {cpu::Unary::Neg, [](double x) { return -x; }},
      {cpu::Unary::Exp, [](double x) { return std::exp(x); }},
      {cpu::Unary::Log, [](double x) { return std::log(x); }},
      {cpu::Unary::Sqrt, [](double x) { return std::sqrt(x); }},
      {cpu::Unary::Rsqrt, [](double x) { return 1.0 / std::sqrt(x); }},
      {cpu::Unary::Silu, ref::silu},
      {cpu::Unary::Sigmoid, ref::sigmoid},
      {cpu::Unary::Tanh, [](double x) { return std::tanh(x); }},
      {cpu::Unary::Abs, [](double x) { return std::abs(x); }}};
  for (int64_t n : {int64_t(37), int64_t(70001)}) {
    std::vector<float> x = randomVec(n, 9, 3.0f);
    std::vector<float> positive(n);
    for (int64_t i = 0; i < n; ++i)
      positive[i] = std::abs(x[i]) + 0.1f;
    for (auto [op, fn] : ops) {
      bool needsPositive =
          op == cpu::Unary::Log || op == cpu::Unary::Sqrt || op == cpu::Unary::Rsqrt;
      const std::vector<float> &in = needsPositive ? positive : x;
      std::vector<float> out(n);
      cpu::unary(op, in.data(), n, out.data());
      Tensor want = ref::unary(tensor({n}, in), fn);
      // Elementwise: relative to each element rather than to the largest one.
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(out[i], want[i], 4e-7 * std::max(1.0, std::abs(want[i])))
            << "unary op " << int(op) << " element " << i << " of " << in[i];
    }
    std::vector<float> out(n);
    cpu::scale(x.data(), n, -1.5f, out.data());
    expectClose(out, ref::unary(tensor({n}, x), [](double v) { return -1.5 * v; }), "scale");
  }
  // exp at the ends of the f32 range: -inf and underflow give 0, large arguments stay finite.
  std::vector<float> edge = {-std::numeric_limits<float>::infinity(), -200.0f, -87.5f, 80.0f};
  std::vector<float> out(4);
  cpu::unary(cpu::Unary::Exp, edge.data(), 4, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_LT(out[2], 1e-37f);
  EXPECT_NEAR(out[3] / std::exp(80.0), 1.0, 1e-6);
}

//===--- embedding --------------------------------------------------------------------===//

TEST(CpuKernelsEmbedding, ForwardAndBadToken) {
  int64_t vocab = 37, dim = 24;
  std::vector<float> table = randomVec(vocab * dim, 10);
  std::vector<int32_t> ids = {3, 0, 36, 3, 17, 9, 21};
  std::vector<float> out(ids.size() * dim);
  int64_t bad = -1;
  ASSERT_TRUE(cpu::embedding(table.data(), ids.data(), int64_t(ids.size()), dim, vocab,
                             out.data(), &bad));
  Tensor want;
  std::string error;
  ASSERT_TRUE(ref::embedding(tensor({vocab, dim}, table), tokenTensor(ids), want, &error));
  expectClose(out, want, "embedding", 0.0);

  // A token past the vocabulary at position 4: false, the position named, rows before it
  // written and nothing after it.
  for (int32_t badId : {int32_t(37), int32_t(-1)}) {
    std::vector<int32_t> badIds = ids;
    badIds[4] = badId;
    std::vector<float> sentinel(ids.size() * dim, 123.0f);
    bad = -1;
    EXPECT_FALSE(cpu::embedding(table.data(), badIds.data(), int64_t(ids.size()), dim, vocab,
                                sentinel.data(), &bad));
    EXPECT_EQ(bad, 4);
    for (int64_t i = 0; i < int64_t(ids.size()) * dim; ++i)
      ASSERT_EQ(sentinel[i], i < 4 * dim ? out[i] : 123.0f) << "element " << i;
  }
}

TEST(CpuKernelsEmbedding, Grad) {
  int64_t vocab = 37, dim = 130; // more than one column block of the kernel
  std::vector<int32_t> ids = {3, 0, 36, 3, 17, 3, 0, 12, 36};
  int64_t n = int64_t(ids.size());
  std::vector<float> grad = randomVec(n * dim, 11);
  std::vector<float> out(vocab * dim, 99.0f); // overwritten, not accumulated into
  cpu::embeddingGrad(ids.data(), grad.data(), n, dim, vocab, out.data());
  Tensor want;
  std::string error;
  ASSERT_TRUE(
      ref::embeddingGrad(tokenTensor(ids), tensor({n, dim}, grad), vocab, want, &error));
  expectClose(out, want, "embeddingGrad");
}

//===--- normalisation ----------------------------------------------------------------===//

TEST(CpuKernelsNorm, RmsNormAndGrad) {
  int64_t rows = 7, dim = 24;
  double eps = 1e-5;
  std::vector<float> x = randomVec(rows * dim, 12), w = randomVec(dim, 13),
                     dy = randomVec(rows * dim, 14);
  Tensor tx = tensor({rows, dim}, x), tw = tensor({dim}, w), tdy = tensor({rows, dim}, dy);
  std::vector<float> y(rows * dim);
  cpu::rmsNorm(x.data(), w.data(), rows, dim, eps, y.data());
  expectClose(y, ref::rmsNorm(tx, tw, eps), "rmsNorm");

  std::vector<float> dx(rows * dim), dw(dim, 7.0f);
  cpu::rmsNormGrad(x.data(), w.data(), dy.data(), rows, dim, eps, dx.data(), dw.data());
  ref::RMSNormGrads want = ref::rmsNormGrad(tx, tw, tdy, eps);
  expectClose(dx, want.input, "rmsNormGrad dx");
  expectClose(dw, want.weight, "rmsNormGrad dw");
}

TEST(CpuKernelsNorm, AddRmsNormAndGrad) {
  int64_t rows = 7, dim = 24;
  double eps = 1e-6;
  std::vector<float> x = randomVec(rows * dim, 15), res = randomVec(rows * dim, 16),
                     w = randomVec(dim, 17), dn = randomVec(rows * dim, 18),
                     ds = randomVec(rows * dim, 19);
  Tensor tw = tensor({dim}, w);
  std::vector<float> sum(rows * dim), y(rows * dim);
  cpu::addRmsNorm(x.data(), res.data(), w.data(), rows, dim, eps, sum.data(), y.data());
  ref::AddRMSNormResult want =
      ref::addRmsNorm(tensor({rows, dim}, x), tensor({rows, dim}, res), tw, eps);
  expectClose(sum, want.sum, "addRmsNorm sum");
  expectClose(y, want.normed, "addRmsNorm normed");

  Tensor tsum = tensor({rows, dim}, sum), tdn = tensor({rows, dim}, dn);
  std::vector<float> dx(rows * dim), dw(dim);
  cpu::addRmsNormGrad(sum.data(), w.data(), dn.data(), ds.data(), rows, dim, eps, dx.data(),
                      dw.data());
  ref::RMSNormGrads g = ref::addRmsNormGrad(tsum, tw, tdn, tensor({rows, dim}, ds), eps);
  expectClose(dx, g.input, "addRmsNormGrad dx");
  expectClose(dw, g.weight, "addRmsNormGrad dw");
  // A null dsum stands for zeros.
  cpu::addRmsNormGrad(sum.data(), w.data(), dn.data(), nullptr, rows, dim, eps, dx.data(),
                      dw.data());
  g = ref::addRmsNormGrad(tsum, tw, tdn, Tensor(DType::F32, {rows, dim}), eps);
  expectClose(dx, g.input, "addRmsNormGrad dx (no dsum)");
  expectClose(dw, g.weight, "addRmsNormGrad dw (no dsum)");
}

//===--- fused feed-forward and attention input ---------------------------------------===//

TEST(CpuKernelsFused, SwigluAndGrad) {
  int64_t rows = 7, F = 13;
  std::vector<float> x = randomVec(rows * 2 * F, 20, 2.0f), dy = randomVec(rows * F, 21);
  Tensor tx = tensor({rows, 2 * F}, x);
  std::vector<float> y(rows * F), dx(rows * 2 * F);
  cpu::swiglu(x.data(), rows, F, y.data());
  expectClose(y, ref::swiglu(tx), "swiglu");
  cpu::swigluGrad(x.data(), dy.data(), rows, F, dx.data());
  expectClose(dx, ref::swigluGrad(tx, tensor({rows, F}, dy)), "swigluGrad");
}

TEST(CpuKernelsFused, QkvRopeAndGrad) {
  int64_t B = 2, T = 5, H = 4, Hkv = 2, D = 8, width = (H + 2 * Hkv) * D;
  double theta = 10000.0;
  for (int64_t offset : {int64_t(0), int64_t(3), int64_t(1000)}) {
    std::string at = " offset " + std::to_string(offset);
    std::vector<float> x = randomVec(B * T * width, 22);
    std::vector<float> q(B * T * H * D), k(B * T * Hkv * D), v(B * T * Hkv * D);
    cpu::qkvRope(x.data(), B, T, H, Hkv, D, theta, offset, q.data(), k.data(), v.data());
    ref::QKV want = ref::qkvRope(tensor({B, T, width}, x), H, Hkv, theta, offset);
    expectClose(q, want.q, "qkvRope q" + at);
    expectClose(k, want.k, "qkvRope k" + at);
    expectClose(v, want.v, "qkvRope v" + at, 0.0);

    std::vector<float> dq = randomVec(q.size(), 23), dk = randomVec(k.size(), 24),
                       dv = randomVec(v.size(), 25), dx(x.size());
    cpu::qkvRopeGrad(dq.data(), dk.data(), dv.data(), B, T, H, Hkv, D, theta, offset,
                     dx.data());
    expectClose(dx,
                ref::qkvRopeGrad(tensor({B, T, H, D}, dq), tensor({B, T, Hkv, D}, dk),
                                 tensor({B, T, Hkv, D}, dv), theta, offset),
                "qkvRopeGrad" + at);
  }
}

//===--- attention --------------------------------------------------------------------===//

struct AttentionCase {
  int64_t T, S;
  bool causal;
  int64_t window, blockQ, blockK;
};

std::string describe(const AttentionCase &c) {
  return "T " + std::to_string(c.T) + " S " + std::to_string(c.S) +
         (c.causal ? " causal" : " full") + " window " + std::to_string(c.window) + " blocks " +
         std::to_string(c.blockQ) + "x" + std::to_string(c.blockK);
}

// Tiles smaller than the sequences and not dividing them, larger than them, and one key per
// tile; fewer queries than keys (aligned with the end), more queries than keys (the first
// causal rows see nothing: lse -inf, zero output).
const AttentionCase kAttentionCases[] = {
    {5, 5, true, 0, 2, 3},   {5, 5, true, 3, 2, 2},  {5, 5, false, 0, 3, 2},
    {5, 5, false, 2, 4, 3},  {3, 7, true, 0, 2, 3},  {7, 3, true, 0, 3, 2},
    {9, 9, true, 4, 64, 64}, {9, 11, true, 5, 4, 1}, {6, 6, true, 0, 1, 1},
};

TEST(CpuKernelsAttention, FlashForward) {
  int64_t B = 2, H = 4, Hkv = 2, D = 8;
  double scale = 1.0 / std::sqrt(double(D));
  for (const AttentionCase &c : kAttentionCases) {
    std::vector<float> q = randomVec(B * c.T * H * D, 26), k = randomVec(B * c.S * Hkv * D, 27),
                       v = randomVec(B * c.S * Hkv * D, 28);
    Tensor tq = tensor({B, c.T, H, D}, q), tk = tensor({B, c.S, Hkv, D}, k),
           tv = tensor({B, c.S, Hkv, D}, v);
    std::vector<float> out(q.size(), 5.0f), lse(B * c.T * H, 5.0f);
    cpu::flashAttention(q.data(), k.data(), v.data(), B, c.T, c.S, H, Hkv, D, c.causal,
                        c.window, scale, c.blockQ, c.blockK, out.data(), lse.data());
    // Both the untiled attention and the interpreter's tiled kernel.
    expectClose(out, ref::attention(tq, tk, tv, c.causal, c.window, scale),
                "flashAttention out, " + describe(c));
    expectClose(lse, ref::attentionLse(tq, tk, c.causal, c.window, scale),
                "flashAttention lse, " + describe(c));
    ref::FlashAttentionResult tiled =
        ref::flashAttention(tq, tk, tv, c.causal, c.window, scale, c.blockQ, c.blockK);
    expectClose(out, tiled.out, "flashAttention vs tiled reference, " + describe(c));
  }
}

TEST(CpuKernelsAttention, FlashGrad) {
  int64_t B = 2, H = 4, Hkv = 2, D = 8;
  double scale = 0.3;
  for (const AttentionCase &c : kAttentionCases) {
    std::vector<float> q = randomVec(B * c.T * H * D, 29), k = randomVec(B * c.S * Hkv * D, 30),
                       v = randomVec(B * c.S * Hkv * D, 31), dout = randomVec(q.size(), 32);
    Tensor tq = tensor({B, c.T, H, D}, q), tk = tensor({B, c.S, Hkv, D}, k),
           tv = tensor({B, c.S, Hkv, D}, v), tdo = tensor({B, c.T, H, D}, dout);
    // The saved forward results, as f32 (as the forward kernel would have written them).
    ref::FlashAttentionResult fwd =
        ref::flashAttention(tq, tk, tv, c.causal, c.window, scale, c.blockQ, c.blockK);
    std::vector<float> out = floats(fwd.out), lse = floats(fwd.lse);
    std::vector<float> dq(q.size(), 5.0f), dk(k.size(), 5.0f), dv(v.size(), 5.0f);
    cpu::flashAttentionGrad(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                            B, c.T, c.S, H, Hkv, D, c.causal, c.window, scale, c.blockQ,
                            c.blockK, dq.data(), dk.data(), dv.data());
    ref::AttentionGrads want = ref::attentionGrad(tq, tk, tv, tdo, c.causal, c.window, scale);
    expectClose(dq, want.query, "flashAttentionGrad dq, " + describe(c));
    expectClose(dk, want.key, "flashAttentionGrad dk, " + describe(c));
    expectClose(dv, want.value, "flashAttentionGrad dv, " + describe(c));
  }
}

/// Feeds a sequence into the KV cache in chunks and compares every output row with causal
/// flashAttention over the whole sequence at once.
void checkKVCache(int64_t T, int64_t window, int64_t capacity,
                  const std::vector<int64_t> &chunks) {
  int64_t H = 4, Hkv = 2, D = 8;
  double scale = 1.0 / std::sqrt(double(D));
  std::vector<float> q = randomVec(T * H * D, 33), k = randomVec(T * Hkv * D, 34),
                     v = randomVec(T * Hkv * D, 35);
  ref::FlashAttentionResult want =
      ref::flashAttention(tensor({1, T, H, D}, q), tensor({1, T, Hkv, D}, k),
                          tensor({1, T, Hkv, D}, v), true, window, scale, 3, 2);
  std::vector<float> cacheK(capacity * Hkv * D, 1e6f), cacheV(capacity * Hkv * D, 1e6f);
  std::vector<float> out(q.size(), 5.0f);
  int64_t pos = 0;
  for (int64_t c : chunks) {
    ASSERT_LE(pos + c, T);
    cpu::attentionKVCache(q.data() + pos * H * D, k.data() + pos * Hkv * D,
                          v.data() + pos * Hkv * D, cacheK.data(), cacheV.data(), capacity, pos,
                          c, H, Hkv, D, window, scale, out.data() + pos * H * D);
    pos += c;
  }
  ASSERT_EQ(pos, T);
  expectClose(out, want.out,
              "attentionKVCache window " + std::to_string(window) + " capacity " +
                  std::to_string(capacity));
  // The cache holds each position's key and value at its slot.
  for (int64_t p = std::max<int64_t>(0, T - capacity); p < T; ++p) {
    int64_t slot = window > 0 ? p % capacity : p;
    for (int64_t i = 0; i < Hkv * D; ++i) {
      ASSERT_EQ(cacheK[slot * Hkv * D + i], k[p * Hkv * D + i]) << "position " << p;
      ASSERT_EQ(cacheV[slot * Hkv * D + i], v[p * Hkv * D + i]) << "position " << p;
    }
  }
}

TEST(CpuKernelsAttention, KVCacheMatchesCausalFlash) {
  // Chunks of 3, then one token at a time.
  checkKVCache(11, 0, 16, {3, 3, 3, 1, 1});
}

TEST(CpuKernelsAttention, KVCacheRollingBufferMatchesWindowedFlash) {
  checkKVCache(11, 4, 4, {3, 3, 3, 1, 1});
  checkKVCache(11, 4, 4, {3, 1, 1, 1, 1, 1, 1, 1, 1});
  // A chunk longer than the buffer: its early keys are overwritten by its later ones.
  checkKVCache(13, 4, 4, {2, 6, 1, 4});
}

//===--- loss -------------------------------------------------------------------------===//

TEST(CpuKernelsLoss, CrossEntropyAndGrad) {
  int64_t rows = 7, vocab = 37, ignore = -100;
  std::vector<float> logits = randomVec(rows * vocab, 36, 3.0f);
  std::vector<int32_t> targets = {5, -100, 36, 0, 17, -100, 2};
  Tensor tl = tensor({rows, vocab}, logits), tt = tokenTensor(targets);
  float loss = 0;
  std::vector<float> lse(rows);
  int64_t bad = -1;
  ASSERT_TRUE(cpu::fusedCrossEntropy(logits.data(), targets.data(), rows, vocab, ignore, &loss,
                                     lse.data(), &bad));
  Tensor wantLoss, wantLse;
  std::string error;
  ASSERT_TRUE(ref::fusedCrossEntropy(tl, tt, ignore, 8, wantLoss, wantLse, &error));
  expectClose(loss, wantLoss[0], "cross-entropy loss");
  expectClose(lse, wantLse, "cross-entropy lse (ignored rows included)");

  std::vector<float> dlogits(rows * vocab, 5.0f);
  cpu::fusedCrossEntropyGrad(logits.data(), targets.data(), lse.data(), 0.7f, rows, vocab,
                             ignore, dlogits.data());
  Tensor wantGrad;
  ASSERT_TRUE(ref::fusedCrossEntropyGrad(tl, tt, wantLse, 0.7, ignore, 8, wantGrad, &error));
  expectClose(dlogits, wantGrad, "cross-entropy grad");

  // Every row ignored: loss 0, zero gradient.
  std::vector<int32_t> none(rows, int32_t(ignore));
  ASSERT_TRUE(cpu::fusedCrossEntropy(logits.data(), none.data(), rows, vocab, ignore, &loss,
                                     lse.data(), &bad));
  EXPECT_EQ(loss, 0.0f);
  cpu::fusedCrossEntropyGrad(logits.data(), none.data(), lse.data(), 1.0f, rows, vocab, ignore,
                             dlogits.data());
  for (float g : dlogits)
    ASSERT_EQ(g, 0.0f);

  // A target outside the vocabulary that is not the ignore index: false, its row named.
  for (int32_t badTarget : {int32_t(37), int32_t(-1)}) {
    std::vector<int32_t> badTargets = targets;
    badTargets[3] = badTarget;
    bad = -1;
    EXPECT_FALSE(cpu::fusedCrossEntropy(logits.data(), badTargets.data(), rows, vocab, ignore,
                                        &loss, lse.data(), &bad));
    EXPECT_EQ(bad, 3);
  }
}

TEST(CpuKernelsLoss, CrossEntropyLargeVocabulary) {
  // Enough rows and columns for the threaded path, logits spread wide.
  int64_t rows = 64, vocab = 3001, ignore = 0;
  std::vector<float> logits = randomVec(rows * vocab, 37, 8.0f);
  std::vector<int32_t> targets(rows);
  for (int64_t r = 0; r < rows; ++r)
    targets[r] = int32_t((r * 977) % vocab);
  Tensor tl = tensor({rows, vocab}, logits), tt = tokenTensor(targets);
  float loss = 0;
  std::vector<float> lse(rows), dlogits(rows * vocab);
  ASSERT_TRUE(cpu::fusedCrossEntropy(logits.data(), targets.data(), rows, vocab, ignore, &loss,
                                     lse.data(), nullptr));
  Tensor wantLoss, wantLse, wantGrad;
  std::string error;
  ASSERT_TRUE(ref::fusedCrossEntropy(tl, tt, ignore, 512, wantLoss, wantLse, &error));
  expectClose(loss, wantLoss[0], "cross-entropy loss");
  expectClose(lse, wantLse, "cross-entropy lse");
  cpu::fusedCrossEntropyGrad(logits.data(), targets.data(), lse.data(), 1.0f, rows, vocab,
                             ignore, dlogits.data());
  ASSERT_TRUE(ref::fusedCrossEntropyGrad(tl, tt, wantLse, 1.0, ignore, 512, wantGrad, &error));
  expectClose(dlogits, wantGrad, "cross-entropy grad");
}

//===--- optimizer --------------------------------------------------------------------===//

TEST(CpuKernelsOptimizer, LrSchedule) {
  for (int64_t step : {0, 3, 9, 10, 11, 55, 99, 100, 150})
    expectClose(cpu::lrSchedule(step, 3e-4f, 100, 10, 0.1),
                ref::lrSchedule(step, double(3e-4f), 100, 10, 0.1),
                "lrSchedule step " + std::to_string(step), 1e-6);
}

TEST(CpuKernelsOptimizer, GradClip) {
  std::vector<float> g1 = randomVec(37, 38), g2 = randomVec(70001, 39, 0.01f);
  Tensor t1 = tensor({37}, g1), t2 = tensor({70001}, g2);
  const float *grads[] = {g1.data(), g2.data()};
  const int64_t sizes[] = {37, 70001};
  for (double maxNorm : {1.0, 1000.0}) { // clipping, and not
    float coefficient = 0, norm = 0;
    cpu::gradClip(grads, sizes, 2, 4.0f, maxNorm, &coefficient, &norm);
    ref::GradClipResult want = ref::gradClip({&t1, &t2}, 4.0, maxNorm);
    expectClose(norm, want.norm, "gradClip norm");
    expectClose(coefficient, want.coefficient, "gradClip coefficient");
  }
}

TEST(CpuKernelsOptimizer, AdamW) {
  for (int64_t n : {int64_t(37), int64_t(70001)}) {
    std::vector<float> param = randomVec(n, 40), grad = randomVec(n, 41),
                       m = randomVec(n, 42, 0.1f), v = randomVec(n, 43, 0.1f);
    for (float &x : v)
      x = x * x;
    Tensor tp = tensor({n}, param), tg = tensor({n}, grad), tm = tensor({n}, m),
           tv = tensor({n}, v);
    for (int64_t step : {int64_t(0), int64_t(7)}) {
      std::vector<float> p = param, m1 = m, v1 = v;
      cpu::adamw(p.data(), grad.data(), m1.data(), v1.data(), n, 1e-3f, step, 0.5f, 0.9, 0.95,
                 1e-8, 0.1);
      ref::AdamWResult want =
          ref::adamw(tp, tg, tm, tv, double(1e-3f), step, 0.5, 0.9, 0.95, 1e-8, 0.1);
      expectClose(p, want.param, "adamw param");
      expectClose(m1, want.m, "adamw m");
      expectClose(v1, want.v, "adamw v");
    }
  }
}

} // namespace
