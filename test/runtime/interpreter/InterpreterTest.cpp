//===- InterpreterTest.cpp - the oracle, pinned down -------------------------------===//
//
// Hand-computed cases for each op kernel, properties that must hold for any input, and
// whole-model runs of the declared and the expanded models.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"
#include "runtime/interpreter/Interpreter.h"
#include "runtime/interpreter/Kernels.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace llamac;

namespace {

Tensor make(std::vector<int64_t> shape, std::vector<double> values, DType t = DType::F64) {
  Tensor x(t, std::move(shape));
  EXPECT_EQ(int64_t(values.size()), x.numElements());
  x.data = std::move(values);
  return x;
}

Tensor random(std::vector<int64_t> shape, uint64_t seed) {
  Tensor x(DType::F64, std::move(shape));
  uint64_t key = streamKey(seed, "test");
  for (int64_t i = 0; i < x.numElements(); ++i)
    x[i] = gaussian(key, i);
  return x;
}

void expectNear(const Tensor &a, const std::vector<double> &b, double tol = 1e-12) {
  ASSERT_EQ(a.numElements(), int64_t(b.size()));
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_NEAR(a[i], b[i], tol) << "element " << i;
}

double maxAbsDiff(const Tensor &a, const Tensor &b) {
  double m = 0;
  for (int64_t i = 0; i < a.numElements(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

//===--- hand-computed cases ----------------------------------------------------------===//

TEST(Kernels, RMSNorm) {
  // rms([3, 4]) = sqrt(12.5); gains 1 and 2.
  Tensor y = ref::rmsNorm(make({1, 2}, {3, 4}), make({2}, {1, 2}), 0.0);
  expectNear(y, {3 / std::sqrt(12.5), 8 / std::sqrt(12.5)});
  // eps enters under the root: x = [1, 1], eps = 3 -> 1 / sqrt(1 + 3) = 0.5.
  expectNear(ref::rmsNorm(make({2}, {1, 1}), make({2}, {1, 1}), 3.0), {0.5, 0.5});
}

TEST(Kernels, RoPEOnKnownVectorsAndPositions) {
  // x[b=0, t, h=0, :] = [1, 0, 0, 1] at t = 0 and t = 1, head dim 4, theta 10000:
  // pair 0 turns by t rad, pair 1 by t * 10000^(-1/2) = t / 100 rad.
  Tensor x = make({1, 2, 1, 4}, {1, 0, 0, 1, 1, 0, 0, 1});
  Tensor y = ref::rope(x, 10000.0, 0);
  expectNear(y, {1, 0, 0, 1, std::cos(1.0), std::sin(1.0), -std::sin(0.01), std::cos(0.01)});
  // The offset shifts positions: t = 0 with offset 1 is t = 1.
  Tensor z = ref::rope(make({1, 1, 1, 4}, {1, 0, 0, 1}), 10000.0, 1);
  expectNear(z, {std::cos(1.0), std::sin(1.0), -std::sin(0.01), std::cos(0.01)});
}

TEST(Kernels, AttentionGroupedQueryCausal) {
  // Two query heads share one KV head. k = [0, ln 2], v = [1, 3], scale 1, head dim 1.
  Tensor q = make({1, 2, 2, 1}, {1, 2, 1, 0}); // [t][h]
  Tensor k = make({1, 2, 1, 1}, {0, std::log(2.0)});
  Tensor v = make({1, 2, 1, 1}, {1, 3});
  Tensor causal = ref::attention(q, k, v, true, 0, 1.0);
  // t=0 sees key 0 only; t=1, h=0: weights [1/3, 2/3]; t=1, h=1 (q=0): [1/2, 1/2].
  expectNear(causal, {1, 1, 1.0 / 3 + 2, 2});
  Tensor full = ref::attention(q, k, v, false, 0, 1.0);
  // t=0, h=1 (q=2): scores [0, 2 ln 2] -> weights [1/5, 4/5] -> 13/5.
  expectNear(full, {1.0 / 3 + 2, 13.0 / 5, 1.0 / 3 + 2, 2});
}

TEST(Kernels, AttentionSlidingWindow) {
  // Window 1: every query sees only its own position.
  Tensor q = make({1, 3, 1, 1}, {1, 1, 1});
  Tensor k = make({1, 3, 1, 1}, {5, -2, 7});
  Tensor v = make({1, 3, 1, 1}, {10, 20, 30});
  expectNear(ref::attention(q, k, v, true, 1, 1.0), {10, 20, 30});
  // Window 2 at t = 2 sees keys 1 and 2: scores [-2, 7].
  Tensor w2 = ref::attention(q, k, v, true, 2, 1.0);
  double p1 = std::exp(-2.0) / (std::exp(-2.0) + std::exp(7.0));
  EXPECT_NEAR(w2[2], p1 * 20 + (1 - p1) * 30, 1e-12);
}

TEST(Kernels, CrossEntropyWithIgnoreIndex) {
  Tensor logits = make({3, 2}, {0, 0, std::log(3.0), 0, 100, -100});
  Tensor targets = make({3}, {0, 0, -1}, DType::I32);
  Tensor loss;
  std::string error;
  ASSERT_TRUE(ref::crossEntropy(logits, targets, -1, loss, &error)) << error;
  EXPECT_EQ(loss.rank(), 0);
  EXPECT_NEAR(loss[0], (std::log(2.0) + std::log(4.0) - std::log(3.0)) / 2, 1e-12);
  // Every target ignored: 0.
  ASSERT_TRUE(ref::crossEntropy(logits, make({3}, {7, 7, 7}, DType::I32), 7, loss, &error));
  EXPECT_EQ(loss[0], 0.0);
  // A target outside the vocabulary is an error naming it.
  EXPECT_FALSE(ref::crossEntropy(logits, make({3}, {0, 2, 0}, DType::I32), -1, loss, &error));
  EXPECT_NE(error.find("target 2 at flat index 1"), std::string::npos) << error;
}

TEST(Kernels, Softmax) {
  expectNear(ref::softmax(make({1, 2}, {0, std::log(3.0)})), {0.25, 0.75});
  // Large inputs do not overflow.
  expectNear(ref::softmax(make({2}, {1000, 1000})), {0.5, 0.5});
}

TEST(Kernels, ShapeOps) {
  Tensor x = make({2, 3}, {0, 1, 2, 3, 4, 5});
  expectNear(ref::transpose(x, {1, 0}), {0, 3, 1, 4, 2, 5});
  expectNear(ref::slice(x, 1, 1, 2), {1, 2, 4, 5});
  Tensor c = ref::concat({&x, &x}, 1);
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 6}));
  expectNear(c, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  expectNear(ref::matmul(make({1, 2, 2}, {1, 2, 3, 4}), make({2, 2}, {5, 6, 7, 8}), false),
             {19, 22, 43, 50});
  expectNear(ref::matmul(make({1, 2, 2}, {1, 2, 3, 4}), make({2, 2}, {5, 6, 7, 8}), true),
             {17, 23, 39, 53});
  expectNear(ref::linear(make({1, 2}, {1, 2}), make({3, 2}, {1, 0, 0, 1, 1, 1})), {1, 2, 3});
}

TEST(Kernels, EmbeddingRejectsOutOfRangeIds) {
  Tensor table = make({3, 2}, {0, 1, 10, 11, 20, 21});
  Tensor out;
  std::string error;
  ASSERT_TRUE(ref::embedding(table, make({2}, {2, 0}, DType::I32), out, &error));
  expectNear(out, {20, 21, 0, 1});
  EXPECT_FALSE(ref::embedding(table, make({2}, {2, 3}, DType::I32), out, &error));
  EXPECT_NE(error.find("token id 3 at flat index 1"), std::string::npos) << error;
}

//===--- properties -------------------------------------------------------------------===//

TEST(Properties, SoftmaxRowsSumToOne) {
  Tensor p = ref::softmax(random({7, 13}, 1));
  for (int64_t r = 0; r < 7; ++r) {
    double s = 0;
    for (int64_t i = 0; i < 13; ++i) {
      EXPECT_GT(p[r * 13 + i], 0.0);
      s += p[r * 13 + i];
    }
    EXPECT_NEAR(s, 1.0, 1e-14);
  }
}

TEST(Properties, CausalAttentionIgnoresTheFuture) {
  Tensor q = random({2, 6, 4, 8}, 2), k = random({2, 6, 2, 8}, 3), v = random({2, 6, 2, 8}, 4);
  Tensor base = ref::attention(q, k, v, true, 0, 0.3);
  for (int64_t t = 0; t < 6; ++t) {
    // Change every input after t.
    Tensor q2 = q, k2 = k, v2 = v;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t s = t + 1; s < 6; ++s) {
        for (int64_t i = 0; i < 4 * 8; ++i)
          q2[(b * 6 + s) * 32 + i] += 1.5;
        for (int64_t i = 0; i < 2 * 8; ++i) {
          k2[(b * 6 + s) * 16 + i] -= 2.0;
          v2[(b * 6 + s) * 16 + i] *= 3.0;
        }
      }
    Tensor moved = ref::attention(q2, k2, v2, true, 0, 0.3);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t s = 0; s <= t; ++s)
        for (int64_t i = 0; i < 32; ++i)
          EXPECT_EQ(moved[(b * 6 + s) * 32 + i], base[(b * 6 + s) * 32 + i]);
  }
}

TEST(Properties, SlidingWindowIgnoresOlderKeys) {
  const int64_t w = 3, n = 8;
  Tensor q = random({1, n, 2, 4}, 5), k = random({1, n, 1, 4}, 6), v = random({1, n, 1, 4}, 7);
  Tensor base = ref::attention(q, k, v, true, w, 0.5);
  for (int64_t t = w; t < n; ++t) {
    Tensor k2 = k, v2 = v;
    for (int64_t s = 0; s <= t - w; ++s) // keys older than the window of t
      for (int64_t i = 0; i < 4; ++i) {
        k2[s * 4 + i] += 9.0;
        v2[s * 4 + i] -= 9.0;
      }
    Tensor moved = ref::attention(q, k2, v2, true, w, 0.5);
    for (int64_t i = 0; i < 2 * 4; ++i)
      EXPECT_EQ(moved[t * 8 + i], base[t * 8 + i]) << "t " << t;
  }
  // And the window matters: without it, the same change moves the last output.
  Tensor k3 = k;
  k3[0] += 9.0;
  EXPECT_GT(maxAbsDiff(ref::attention(q, k3, v, true, 0, 0.5),
                       ref::attention(q, k, v, true, 0, 0.5)),
            1e-6);
}

TEST(Properties, RoPEKeepsNormsAndDependsOnRelativePosition) {
  Tensor x = random({1, 5, 3, 16}, 8);
  Tensor y = ref::rope(x, 10000.0, 0);
  for (int64_t r = 0; r < 15; ++r) {
    double a = 0, b = 0;
    for (int64_t i = 0; i < 16; ++i) {
      a += x[r * 16 + i] * x[r * 16 + i];
      b += y[r * 16 + i] * y[r * 16 + i];
    }
    EXPECT_NEAR(std::sqrt(a), std::sqrt(b), 1e-12);
  }
  // <rope(q, m), rope(k, n)> depends on m - n only.
  Tensor q = random({1, 1, 1, 16}, 9), k = random({1, 1, 1, 16}, 10);
  auto dot = [&](int64_t m, int64_t n) {
    Tensor a = ref::rope(q, 10000.0, m), b = ref::rope(k, 10000.0, n);
    double s = 0;
    for (int64_t i = 0; i < 16; ++i)
      s += a[i] * b[i];
    return s;
  };
  EXPECT_NEAR(dot(7, 3), dot(4, 0), 1e-10);
  EXPECT_NEAR(dot(100, 90), dot(10, 0), 1e-10);
  EXPECT_GT(std::abs(dot(7, 3) - dot(7, 4)), 1e-6);
}

//===--- whole models -----------------------------------------------------------------===//

class ModelRun : public ::testing::Test {
protected:
  ModelRun() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }
  mlir::OwningOpRef<mlir::ModuleOp> load(const std::string &name) {
    return mlir::parseSourceFile<mlir::ModuleOp>(
        std::string(LLAMAC_SOURCE_DIR) + "/models/" + name + ".mlir", &ctx);
  }
  static llama::ModelOp model(mlir::ModuleOp m) { return *m.getOps<llama::ModelOp>().begin(); }
  static Tensor tokens(int64_t b, int64_t t, int64_t vocab, uint64_t seed) {
    Tensor x(DType::I32, {b, t});
    std::mt19937_64 rng(seed);
    for (double &v : x.data)
      v = double(rng() % uint64_t(vocab));
    return x;
  }
  mlir::MLIRContext ctx;
};

TEST_F(ModelRun, InitialLossIsCloseToLogVocab) {
  for (const char *name : {"tiny", "stories15m"}) {
    SCOPED_TRACE(name);
    auto m = load(name);
    ASSERT_TRUE(m);
    int64_t vocab = model(*m).getConfig().getVocabSize();
    Interpreter interp(model(*m), Precision::F32, 42);
    std::vector<Tensor> out;
    std::string error;
    Tensor x = tokens(2, 16, vocab, 1), y = tokens(2, 16, vocab, 2);
    ASSERT_TRUE(interp.run("loss", {x, y}, out, &error)) << error;
    ASSERT_EQ(out.size(), 1u);
    // Small initial weights give nearly uniform predictions: the expected loss is
    // ln V + var(logits) / 2, and the logits' std is about 0.02 sqrt(dim) (0.16 for tiny,
    // 0.34 for stories15m), so the excess is under 0.06 plus sampling noise on 32 tokens.
    EXPECT_NEAR(out[0][0], std::log(double(vocab)), 0.2);
    EXPECT_GT(out[0][0], std::log(double(vocab)) - 0.05);
  }
}

TEST_F(ModelRun, DeclaredAndExpandedModelsAgreeExactly) {
  auto declared = load("tiny");
  auto expanded = load("tiny");
  ASSERT_TRUE(declared && expanded);
  mlir::PassManager pm(&ctx);
  FrontendPipelineOptions options;
  options.batch = 2;
  options.seq = 8;
  buildFrontendPipeline(pm, options);
  ASSERT_TRUE(mlir::succeeded(pm.run(*expanded)));
  Interpreter a(model(*declared), Precision::F64, 7), b(model(*expanded), Precision::F64, 7);
  ASSERT_EQ(a.parameters().size(), b.parameters().size());
  Tensor x = tokens(2, 8, 512, 3);
  std::vector<Tensor> oa, ob;
  std::string error;
  ASSERT_TRUE(a.run("forward", {x}, oa, &error)) << error;
  ASSERT_TRUE(b.run("forward", {x}, ob, &error)) << error;
  EXPECT_EQ(oa[0].shape, (std::vector<int64_t>{2, 8, 512}));
  EXPECT_EQ(maxAbsDiff(oa[0], ob[0]), 0.0);
}

TEST_F(ModelRun, LossIsTheCrossEntropyOfTheLogits) {
  auto m = load("tiny");
  Interpreter interp(model(*m), Precision::F64, 1);
  Tensor x = tokens(1, 5, 512, 4), y = tokens(1, 5, 512, 5);
  y[2] = -1; // ignored
  std::vector<Tensor> logits, loss;
  std::string error;
  ASSERT_TRUE(interp.run("forward", {x}, logits, &error)) << error;
  ASSERT_TRUE(interp.run("loss", {x, y}, loss, &error)) << error;
  double total = 0;
  for (int64_t t : {0, 1, 3, 4}) {
    const double *row = logits[0].data.data() + t * 512;
    double m = *std::max_element(row, row + 512), s = 0;
    for (int i = 0; i < 512; ++i)
      s += std::exp(row[i] - m);
    total += m + std::log(s) - row[int64_t(y[t])];
  }
  EXPECT_NEAR(loss[0][0], total / 4, 1e-12);
}

TEST_F(ModelRun, ParametersDependOnSeedAndNameOnly) {
  auto m = load("tiny");
  Interpreter a(model(*m), Precision::F32, 3), b(model(*m), Precision::F32, 3),
      c(model(*m), Precision::F32, 4);
  const Tensor *wa = a.parameter("layers.1.attention.wq");
  // Touch another parameter first in b: values must not depend on the order of use.
  ASSERT_TRUE(b.parameter("output"));
  const Tensor *wb = b.parameter("layers.1.attention.wq");
  ASSERT_TRUE(wa && wb);
  EXPECT_EQ(maxAbsDiff(*wa, *wb), 0.0);
  EXPECT_GT(maxAbsDiff(*wa, *c.parameter("layers.1.attention.wq")), 0.0);
  // normal(0.02): the sample std is close to 0.02; norms start at one.
  double ss = 0;
  for (double v : wa->data)
    ss += v * v;
  EXPECT_NEAR(std::sqrt(ss / double(wa->numElements())), 0.02, 0.002);
  EXPECT_EQ(a.parameter("layers.0.ffn_norm")->data, std::vector<double>(64, 1.0));
  EXPECT_EQ(a.parameter("no.such.param"), nullptr);
}

TEST_F(ModelRun, BadInputsAreNamed) {
  auto m = load("tiny");
  Interpreter interp(model(*m), Precision::F32, 0);
  std::vector<Tensor> out;
  std::string error;
  EXPECT_FALSE(interp.run("nope", {}, out, &error));
  EXPECT_NE(error.find("has no function @nope (it has @forward, @loss)"), std::string::npos)
      << error;
  EXPECT_FALSE(interp.run("forward", {}, out, &error));
  EXPECT_NE(error.find("takes 1 inputs, got 0"), std::string::npos) << error;
  EXPECT_FALSE(interp.run("forward", {Tensor(DType::F32, {1, 4})}, out, &error));
  EXPECT_NE(error.find("must be tensor<?x?xi32>, got f32[1x4]"), std::string::npos) << error;
  EXPECT_FALSE(interp.run("forward", {Tensor(DType::I32, {4})}, out, &error));
  EXPECT_NE(error.find("got i32[4]"), std::string::npos) << error;
  EXPECT_FALSE(interp.run("forward", {Tensor(DType::I32, {1, 2}, 512.0)}, out, &error));
  EXPECT_NE(error.find("token id 512"), std::string::npos) << error;
  EXPECT_NE(error.find("llama.embedding"), std::string::npos) << error;
  EXPECT_FALSE(interp.setParameter("output", Tensor(DType::F32, {3, 3}), &error));
  EXPECT_NE(error.find("parameter 'output' is f32[3x3] but the model declares f32[512x64]"),
            std::string::npos)
      << error;
  EXPECT_FALSE(interp.setParameter("output", Tensor(DType::F16, {512, 64}), &error));
  EXPECT_NE(error.find("is f16[512x64] but the model declares f32[512x64]"), std::string::npos)
      << error;
  EXPECT_FALSE(interp.setParameter("layers.9.ffn_norm", Tensor(DType::F32, {64}), &error));
  EXPECT_NE(error.find("declares no parameter 'layers.9.ffn_norm'"), std::string::npos)
      << error;
}

} // namespace
