//===- FusedOpsTest.cpp - every fused op against its decomposition ------------------===//
//
// For each fused op: a model function that applies it (with the ops that produce its
// inputs, where those must be consistent, as a backward op's saved output and lse), and a
// second function, a clone in which the op is replaced by what its DecomposableOpInterface
// builds from primitive ops. Both run in the reference interpreter on the same random
// inputs; every result must agree to a relative (norm-wise) 1e-12 in f64. The fused
// kernels are written as the fused ops run (tiles, online reductions), so this checks the
// algorithms, not a renaming. Then kernel-level cases: flash attention does not depend on
// its block sizes, and the small primitives (logsumexp, attention_lse) by hand.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "dialects/llama/LlamaOps.h"
#include "runtime/interpreter/Interpreter.h"
#include "runtime/interpreter/Kernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>

using namespace llamac;

namespace {

/// The model every test function lives in; its hyper-parameters do not matter here.
const char *kModelHeader = R"mlir(
llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 2, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
)mlir";

const double kInf = std::numeric_limits<double>::infinity();

Tensor make(std::vector<int64_t> shape, std::vector<double> values, DType t = DType::F64) {
  Tensor x(t, std::move(shape));
  EXPECT_EQ(int64_t(values.size()), x.numElements());
  x.data = std::move(values);
  return x;
}

Tensor randomLike(const std::vector<int64_t> &shape, uint64_t seed, const std::string &tag) {
  Tensor x(DType::F64, shape);
  uint64_t key = streamKey(seed, tag);
  for (int64_t i = 0; i < x.numElements(); ++i)
    x[i] = gaussian(key, uint64_t(i));
  return x;
}

Tensor ids(std::vector<int64_t> shape, std::vector<double> values) {
  return make(std::move(shape), std::move(values), DType::I32);
}
Tensor position(int64_t v) { return Tensor(DType::I64, {}, double(v)); }
Tensor f32(double v) { return Tensor(DType::F32, {}, v); }
Tensor i64(int64_t v) { return Tensor(DType::I64, {}, double(v)); }

double norm(const Tensor &t) {
  double ss = 0;
  for (double x : t.data)
    if (std::isfinite(x))
      ss += x * x;
  return std::sqrt(ss);
}

/// ||a - b|| / ||b|| over the finite elements; non-finite elements (the -inf lse of a row
/// that sees no key) must be equal in both. +inf for any other disagreement.
double relativeDifference(const Tensor &a, const Tensor &b) {
  if (a.shape != b.shape)
    return kInf;
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < a.numElements(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      bool same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]));
      if (!same)
        return kInf;
      continue;
    }
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  if (ref == 0)
    return diff == 0 ? 0 : kInf;
  return std::sqrt(diff / ref);
}

std::string tensorType(const std::vector<int64_t> &shape, const std::string &element = "f32") {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + element + ">";
}

/// One fused-op case: `func.func @f(args) -> (resultTypes) { body; return returned }`,
/// with the first op named `subject` decomposed in the reference function.
struct Case {
  std::string args, body, returned, resultTypes, subject;
  std::map<unsigned, Tensor> fixed; ///< argument index -> value (ids, offsets, scalars)
  std::set<unsigned> positive;      ///< float arguments drawn from [0.5, ...)
  std::set<unsigned> zeroResults;   ///< results that are legitimately all zeros
  Precision precision = Precision::F64;
  double tolerance = 1e-12;
  uint64_t seed = 1;
};

/// What a case computed, for checks beyond the comparison.
struct Outcome {
  std::vector<Tensor> inputs, fused, decomposed;
  std::vector<std::string> decomposedOps; ///< op names in the reference function
};

class Fused : public ::testing::Test {
protected:
  Fused() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  /// Parses the case, builds the decomposed function, runs both and compares. Uses
  /// ASSERT: callers that read `outcome` check HasFatalFailure() first.
  void check(const Case &c, Outcome *outcome = nullptr) {
    std::string text = std::string(kModelHeader) + "  func.func @f(" + c.args + ") -> (" +
                       c.resultTypes + ") {\n" + c.body + "\n    return " + c.returned +
                       " : " + c.resultTypes + "\n  }\n}\n";
    SCOPED_TRACE(text);
    module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
    ASSERT_TRUE(module);
    llama::ModelOp model = *module->getOps<llama::ModelOp>().begin();
    mlir::func::FuncOp fused = model.lookupFunction("f");

    // The reference: a clone of @f with the subject replaced by its decomposition.
    mlir::OpBuilder b(&ctx);
    b.setInsertionPointAfter(fused);
    auto decomposed = mlir::cast<mlir::func::FuncOp>(b.clone(*fused));
    decomposed.setSymName("f_decomposed");
    mlir::Operation *subject = nullptr;
    decomposed.walk([&](mlir::Operation *op) {
      if (!subject && op->getName().getStringRef() == c.subject)
        subject = op;
    });
    ASSERT_TRUE(subject) << "no " << c.subject << " in the function";
    auto decomposable = mlir::dyn_cast<llama::DecomposableOpInterface>(subject);
    ASSERT_TRUE(decomposable) << c.subject << " is not decomposable";
    b.setInsertionPoint(subject);
    llvm::SmallVector<mlir::Value> replacements;
    ASSERT_TRUE(mlir::succeeded(decomposable.decompose(b, replacements)));
    ASSERT_EQ(replacements.size(), subject->getNumResults());
    for (auto [r, v] : llvm::zip(subject->getResults(), replacements))
      ASSERT_EQ(r.getType(), v.getType()) << "result " << r.getResultNumber();
    subject->replaceAllUsesWith(replacements);
    subject->erase();
    // The decomposition's ops must satisfy their own shape rules.
    ASSERT_TRUE(mlir::succeeded(mlir::verify(*module)));

    Outcome local;
    Outcome &o = outcome ? *outcome : local;
    o = Outcome();
    decomposed.walk([&](mlir::Operation *op) {
      o.decomposedOps.push_back(op->getName().getStringRef().str());
    });
    for (auto [i, arg] : llvm::enumerate(fused.getArguments())) {
      auto it = c.fixed.find(unsigned(i));
      if (it != c.fixed.end()) {
        o.inputs.push_back(it->second);
        continue;
      }
      auto type = mlir::dyn_cast<mlir::RankedTensorType>(arg.getType());
      ASSERT_TRUE(type && mlir::isa<mlir::FloatType>(type.getElementType()) &&
                  type.hasStaticShape())
          << "argument " << i << " needs a fixed value";
      Tensor x = randomLike(std::vector<int64_t>(type.getShape()), c.seed,
                            "arg" + std::to_string(i));
      if (c.positive.count(unsigned(i)))
        for (double &v : x.data)
          v = 0.5 + std::abs(v);
      o.inputs.push_back(std::move(x));
    }

    Interpreter interp(model, c.precision, 0);
    std::string error;
    ASSERT_TRUE(interp.run("f", o.inputs, o.fused, &error)) << error;
    ASSERT_TRUE(interp.run("f_decomposed", o.inputs, o.decomposed, &error)) << error;
    ASSERT_EQ(o.fused.size(), o.decomposed.size());
    for (size_t i = 0; i < o.fused.size(); ++i) {
      EXPECT_EQ(o.fused[i].dtype, o.decomposed[i].dtype) << "result " << i;
      double rel = relativeDifference(o.fused[i], o.decomposed[i]);
      EXPECT_LE(rel, c.tolerance) << "result " << i << " of " << c.subject;
      // Agreement on zeros would say nothing about the kernel.
      if (!c.zeroResults.count(unsigned(i)))
        EXPECT_GT(norm(o.decomposed[i]), 1e-3) << "result " << i << " is vacuous";
    }
  }

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

bool contains(const std::vector<std::string> &ops, const std::string &name) {
  return std::find(ops.begin(), ops.end(), name) != ops.end();
}

//===--- swiglu -----------------------------------------------------------------------===//

TEST_F(Fused, SwiGLU) {
  for (auto [in, out] : std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>{
           {{2, 3, 8}, {2, 3, 4}}, {{10}, {5}}}) {
    Case c;
    c.args = "%x: " + tensorType(in);
    c.body = "    %r = llama.swiglu %x : " + tensorType(in);
    c.returned = "%r";
    c.resultTypes = tensorType(out);
    c.subject = "llama.swiglu";
    check(c);
  }
}

TEST_F(Fused, SwiGLUGrad) {
  Case c;
  c.args = "%x: tensor<2x3x8xf32>, %g: tensor<2x3x4xf32>";
  c.body = "    %r = llama.swiglu_grad %x, %g : tensor<2x3x8xf32>, tensor<2x3x4xf32>";
  c.returned = "%r";
  c.resultTypes = "tensor<2x3x8xf32>";
  c.subject = "llama.swiglu_grad";
  check(c);
}

//===--- qkv_rope ---------------------------------------------------------------------===//

/// qkv_rope on [2, 3, (heads + 2 kv) * d], with or without an offset argument.
Case qkvRopeCase(int64_t heads, int64_t kv, int64_t d, const std::string &theta,
                 bool offset) {
  std::vector<int64_t> in = {2, 3, (heads + 2 * kv) * d};
  std::string q = tensorType({2, 3, heads, d}), k = tensorType({2, 3, kv, d});
  Case c;
  c.args = "%x: " + tensorType(in) + (offset ? ", %o: index" : "");
  c.body = "    %q, %k, %v = llama.qkv_rope %x heads " + std::to_string(heads) + " kv_heads " +
           std::to_string(kv) + " theta " + theta + (offset ? " offset %o" : "") + " : " +
           tensorType(in) + " -> " + q + ", " + k;
  c.returned = "%q, %k, %v";
  c.resultTypes = q + ", " + k + ", " + k;
  c.subject = "llama.qkv_rope";
  if (offset)
    c.fixed[1] = position(5);
  return c;
}

TEST_F(Fused, QKVRoPE) {
  check(qkvRopeCase(4, 2, 4, "1.0e+01", false)); // grouped-query
  check(qkvRopeCase(2, 2, 6, "1.0e+04", false)); // one KV head per query head
  check(qkvRopeCase(3, 1, 8, "1.0e+02", false));
}

TEST_F(Fused, QKVRoPEWithOffset) {
  check(qkvRopeCase(4, 2, 4, "1.0e+01", true));
  check(qkvRopeCase(2, 1, 8, "1.0e+04", true));
}

Case qkvRopeGradCase(int64_t heads, int64_t kv, int64_t d, const std::string &theta,
                     bool offset) {
  std::string q = tensorType({2, 3, heads, d}), k = tensorType({2, 3, kv, d});
  Case c;
  c.args = "%dq: " + q + ", %dk: " + k + ", %dv: " + k + (offset ? ", %o: index" : "");
  c.body = "    %r = llama.qkv_rope_grad %dq, %dk, %dv theta " + theta +
           (offset ? " offset %o" : "") + " : " + q + ", " + k + " -> " +
           tensorType({2, 3, (heads + 2 * kv) * d});
  c.returned = "%r";
  c.resultTypes = tensorType({2, 3, (heads + 2 * kv) * d});
  c.subject = "llama.qkv_rope_grad";
  if (offset)
    c.fixed[3] = position(9);
  return c;
}

TEST_F(Fused, QKVRoPEGrad) {
  check(qkvRopeGradCase(4, 2, 4, "1.0e+01", false));
  check(qkvRopeGradCase(3, 1, 8, "1.0e+04", false));
}

TEST_F(Fused, QKVRoPEGradWithOffset) {
  check(qkvRopeGradCase(4, 2, 4, "1.0e+01", true));
  check(qkvRopeGradCase(2, 2, 6, "1.0e+04", true));
}

//===--- add_rms_norm -----------------------------------------------------------------===//

TEST_F(Fused, AddRMSNorm) {
  for (const char *eps : {"1.0e-05", "5.0e-01"}) {
    Case c;
    c.args = "%x: tensor<2x3x6xf32>, %r: tensor<2x3x6xf32>, %w: tensor<6xf32>";
    c.body = std::string("    %s, %n = llama.add_rms_norm %x, %r, %w eps ") + eps +
             " : tensor<2x3x6xf32>, tensor<6xf32>";
    c.returned = "%s, %n";
    c.resultTypes = "tensor<2x3x6xf32>, tensor<2x3x6xf32>";
    c.subject = "llama.add_rms_norm";
    check(c);
  }
}

TEST_F(Fused, AddRMSNormGrad) {
  for (const char *eps : {"1.0e-05", "5.0e-01"}) {
    Case c;
    c.args = "%h: tensor<2x3x6xf32>, %w: tensor<6xf32>, %dn: tensor<2x3x6xf32>, "
             "%ds: tensor<2x3x6xf32>";
    c.body = std::string("    %dx, %dw = llama.add_rms_norm_grad %h, %w, %dn, %ds eps ") + eps +
             " : tensor<2x3x6xf32>, tensor<6xf32>";
    c.returned = "%dx, %dw";
    c.resultTypes = "tensor<2x3x6xf32>, tensor<6xf32>";
    c.subject = "llama.add_rms_norm_grad";
    check(c);
  }
}

//===--- flash_attention --------------------------------------------------------------===//

struct AttentionCase {
  int64_t batch, seqQ, seqKV, heads, kvHeads, headDim;
  std::string attrs; ///< "causal window 3 scale 3.0e-01", before the block sizes
  int64_t blockQ, blockK;
};

std::string blocks(const AttentionCase &a) {
  return " block_q " + std::to_string(a.blockQ) + " block_k " + std::to_string(a.blockK);
}

std::string operandTypes(const AttentionCase &a) {
  std::string k = tensorType({a.batch, a.seqKV, a.kvHeads, a.headDim});
  return tensorType({a.batch, a.seqQ, a.heads, a.headDim}) + ", " + k + ", " + k;
}

std::string lseType(const AttentionCase &a) {
  return tensorType({a.batch, a.seqQ, a.heads});
}

Case flashCase(const AttentionCase &a) {
  std::string k = tensorType({a.batch, a.seqKV, a.kvHeads, a.headDim});
  std::string q = tensorType({a.batch, a.seqQ, a.heads, a.headDim});
  Case c;
  c.args = "%q: " + q + ", %k: " + k + ", %v: " + k;
  c.body = "    %o, %lse = llama.flash_attention %q, %k, %v " + a.attrs + blocks(a) + " : " +
           operandTypes(a);
  c.returned = "%o, %lse";
  c.resultTypes = q + ", " + lseType(a);
  c.subject = "llama.flash_attention";
  return c;
}

/// The forward (for its saved output and lse) followed by the subject, the backward.
Case flashGradCase(const AttentionCase &a) {
  std::string k = tensorType({a.batch, a.seqKV, a.kvHeads, a.headDim});
  std::string q = tensorType({a.batch, a.seqQ, a.heads, a.headDim});
  Case c;
  c.args = "%q: " + q + ", %k: " + k + ", %v: " + k + ", %do: " + q;
  c.body = "    %o, %lse = llama.flash_attention %q, %k, %v " + a.attrs + blocks(a) + " : " +
           operandTypes(a) + "\n    %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %v, " +
           "%o, %lse, %do " + a.attrs + blocks(a) + " : " + operandTypes(a) + ", " +
           lseType(a);
  c.returned = "%dq, %dk, %dv";
  c.resultTypes = q + ", " + k + ", " + k;
  c.subject = "llama.flash_attention_grad";
  return c;
}

class FusedAttention : public Fused {
protected:
  /// flash_attention against its decomposition, llama.attention for the output and
  /// llama.attention_lse for the lse, then flash_attention_grad against its decomposition,
  /// llama.attention_grad.
  void checkBoth(const AttentionCase &a, std::set<unsigned> zeroGrads = {}) {
    SCOPED_TRACE(a.attrs + blocks(a));
    Outcome forward;
    check(flashCase(a), &forward);
    if (HasFatalFailure())
      return;
    EXPECT_TRUE(contains(forward.decomposedOps, "llama.attention"));
    EXPECT_TRUE(contains(forward.decomposedOps, "llama.attention_lse"));
    EXPECT_FALSE(contains(forward.decomposedOps, "llama.flash_attention"));
    // A row that sees no key: lse -inf and a zero output, in both.
    const Tensor &lse = forward.fused[1], &o = forward.fused[0];
    for (int64_t r = 0; r < lse.numElements(); ++r)
      if (lse[r] == -kInf)
        for (int64_t i = 0; i < a.headDim; ++i)
          EXPECT_EQ(o[r * a.headDim + i], 0.0) << "row " << r;
    Outcome backward;
    Case grad = flashGradCase(a);
    grad.zeroResults = std::move(zeroGrads);
    check(grad, &backward);
    if (HasFatalFailure())
      return;
    EXPECT_TRUE(contains(backward.decomposedOps, "llama.attention_grad"));
  }
};

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSECausal) {
  checkBoth({2, 7, 7, 2, 2, 4, "causal", 3, 2});
  checkBoth({1, 5, 5, 2, 2, 4, "causal", 2, 2});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSENonCausal) {
  checkBoth({2, 7, 7, 2, 2, 4, "", 3, 2});
  checkBoth({1, 6, 6, 1, 1, 8, "", 4, 4});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEGroupedQuery) {
  checkBoth({1, 7, 7, 4, 2, 4, "causal", 2, 3});
  checkBoth({2, 5, 5, 3, 1, 4, "", 3, 2}); // every query head on one KV head
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSESlidingWindow) {
  checkBoth({1, 7, 7, 2, 1, 4, "causal window 3", 3, 2});
  // Window 1: each query sees only its own key, a softmax over one score, so dq = dk = 0.
  checkBoth({1, 7, 7, 2, 2, 4, "causal window 1", 2, 2}, {0, 1});
  checkBoth({1, 9, 9, 2, 2, 4, "causal window 2", 4, 3}); // tiles behind the window skip
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEExplicitScale) {
  checkBoth({1, 7, 7, 2, 2, 4, "scale 1.3", 3, 2});
  checkBoth({1, 6, 6, 4, 2, 4, "causal window 3 scale 3.0e-01", 4, 4});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEFewerQueriesThanKeys) {
  // 3 queries on 7 keys: causal queries sit at key positions 4, 5, 6.
  checkBoth({1, 3, 7, 2, 2, 4, "causal", 2, 3});
  checkBoth({2, 3, 7, 2, 1, 4, "", 2, 3});
  checkBoth({1, 3, 7, 2, 2, 4, "causal window 2", 1, 2});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEMoreQueriesThanKeys) {
  // 7 queries on 3 keys, causal: queries 0..3 see no key (lse -inf, zero output).
  checkBoth({1, 7, 3, 2, 2, 4, "causal", 3, 2});
  checkBoth({2, 7, 3, 4, 2, 4, "causal window 2", 2, 2});
  checkBoth({1, 7, 3, 2, 1, 4, "", 3, 2});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEUnevenBlocks) {
  // Blocks that do not divide the sequence: the last tiles are partial.
  checkBoth({1, 7, 7, 2, 2, 4, "causal", 3, 2});
  checkBoth({1, 7, 7, 2, 2, 4, "causal", 2, 5});
  checkBoth({1, 7, 7, 2, 2, 4, "", 1, 1});
}

TEST_F(FusedAttention, OutputEqualsAttentionAndLseEqualsAttentionLSEBlocksLargerThanSeq) {
  checkBoth({1, 7, 7, 2, 2, 4, "causal", 16, 64});
  checkBoth({2, 3, 7, 4, 2, 4, "causal", 64, 2});
  checkBoth({1, 7, 3, 2, 1, 4, "causal", 2, 64});
}

//===--- cross-entropy ----------------------------------------------------------------===//

/// fused_cross_entropy on logits [2, 3, V] (or `shape`), targets given.
Case crossEntropyCase(int64_t chunk, const Tensor &targets, int64_t vocab,
                      const std::string &element = "f32", const std::string &ignore = "") {
  std::vector<int64_t> shape = targets.shape;
  shape.push_back(vocab);
  std::string l = tensorType(shape, element), t = tensorType(targets.shape, "i32");
  Case c;
  c.args = "%l: " + l + ", %t: " + t;
  c.body = "    %loss, %lse = llama.fused_cross_entropy %l, %t" + ignore + " chunk " +
           std::to_string(chunk) + " : " + l + ", " + t;
  c.returned = "%loss, %lse";
  c.resultTypes = "tensor<f32>, " + tensorType(targets.shape);
  c.subject = "llama.fused_cross_entropy";
  c.fixed[1] = targets;
  return c;
}

TEST_F(Fused, FusedCrossEntropyChunks) {
  Tensor t = ids({2, 3}, {0, 10, -1, 4, 4, 7}); // one ignored row
  for (int64_t chunk : {4, 1, 3, 11, 16}) {     // 4 and 3 leave a partial last chunk
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    check(crossEntropyCase(chunk, t, 11));
  }
}

TEST_F(Fused, FusedCrossEntropyIgnoreIndex) {
  Case c = crossEntropyCase(5, ids({4}, {-100, 1, -100, 0}), 7, "f32", " ignore_index -100");
  Outcome o;
  check(c, &o);
  if (HasFatalFailure())
    return;
  // The ignored rows' lse is computed anyway: the reference logsumexp of the row.
  for (int64_t r : {0, 2})
    EXPECT_TRUE(std::isfinite(o.fused[1][r]));
  // Every row ignored: loss 0, no division by zero; lse still computed.
  Case all = crossEntropyCase(3, ids({2, 2}, {-1, -1, -1, -1}), 5);
  all.zeroResults = {0};
  check(all, &o);
  if (HasFatalFailure())
    return;
  EXPECT_EQ(o.fused[0][0], 0.0);
}

TEST_F(Fused, FusedCrossEntropyNarrowLogits) {
  // bf16 logits: the decomposition casts them to f32 for the lse.
  check(crossEntropyCase(4, ids({2, 3}, {0, 1, 2, 3, -1, 5}), 6, "bf16"));
}

/// Logits far from zero: exp(logit) overflows even a double (1e4 >> 709).
Tensor largeLogits(const std::vector<int64_t> &shape, uint64_t seed) {
  Tensor l = randomLike(shape, seed, "logits");
  int64_t v = shape.back();
  for (int64_t i = 0; i < l.numElements(); ++i)
    l[i] = 1.0e4 * double(1 + (i / v) % 3) + 3.0 * l[i]; // rows at 1e4, 2e4, 3e4
  return l;
}

TEST_F(Fused, FusedCrossEntropyLargeLogitsInF32DoNotOverflow) {
  Case c = crossEntropyCase(4, ids({2, 3}, {0, 10, -1, 4, 4, 7}), 11);
  c.fixed[0] = largeLogits({2, 3, 11}, 3);
  c.precision = Precision::F32;
  // Both compute in double from the same f32 inputs and round the results to f32: they
  // may differ by an f32 rounding.
  c.tolerance = 1e-6;
  Outcome o;
  check(c, &o);
  if (HasFatalFailure())
    return;
  EXPECT_TRUE(std::isfinite(o.fused[0][0]));
  EXPECT_GT(o.fused[0][0], 0.0);
  for (int64_t r = 0; r < 6; ++r) {
    EXPECT_TRUE(std::isfinite(o.fused[1][r])) << "row " << r;
    EXPECT_GT(o.fused[1][r], 1.0e4 * double(1 + r % 3)) << "row " << r;
  }
}

Case crossEntropyGradCase(int64_t chunk, const Tensor &targets, int64_t vocab,
                          const std::string &ignore = "") {
  std::vector<int64_t> shape = targets.shape;
  shape.push_back(vocab);
  std::string l = tensorType(shape), t = tensorType(targets.shape, "i32");
  std::string lse = tensorType(targets.shape);
  std::string attrs = ignore + " chunk " + std::to_string(chunk);
  Case c;
  c.args = "%l: " + l + ", %t: " + t + ", %g: tensor<f32>";
  c.body = "    %loss, %lse = llama.fused_cross_entropy %l, %t" + attrs + " : " + l + ", " + t +
           "\n    %d = llama.fused_cross_entropy_grad %l, %t, %lse, %g" + attrs + " : " + l +
           ", " + t + ", " + lse;
  c.returned = "%d";
  c.resultTypes = l;
  c.subject = "llama.fused_cross_entropy_grad";
  c.fixed[1] = targets;
  c.fixed[2] = f32(1.7);
  return c;
}

TEST_F(Fused, FusedCrossEntropyGradChunks) {
  Tensor t = ids({2, 3}, {0, 10, -1, 4, 4, 7});
  for (int64_t chunk : {4, 1, 3, 11, 16}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    Outcome o;
    check(crossEntropyGradCase(chunk, t, 11), &o);
    if (HasFatalFailure())
      return;
    for (int64_t i = 2 * 11; i < 3 * 11; ++i) // the ignored row
      EXPECT_EQ(o.fused[0][i], 0.0);
  }
}

TEST_F(Fused, FusedCrossEntropyGradIgnoreIndex) {
  check(crossEntropyGradCase(2, ids({4}, {-100, 1, -100, 0}), 5, " ignore_index -100"));
}

TEST_F(Fused, FusedCrossEntropyGradLargeLogits) {
  // In f64 the saved lse is exact and exp(logit - lse) needs no shift.
  Case c = crossEntropyGradCase(4, ids({2, 3}, {0, 10, -1, 4, 4, 7}), 11);
  c.fixed[0] = largeLogits({2, 3, 11}, 4);
  check(c);
  // In f32 the lse is saved as f32: near 3e4 its rounding (up to 2^-10) moves every
  // exp(logit - lse) by up to about 1e-3 relative, where the decomposition recomputes the
  // softmax in double. That is the precision of the logits themselves at that magnitude.
  c.precision = Precision::F32;
  c.tolerance = 2e-3;
  Outcome o;
  check(c, &o);
  if (HasFatalFailure())
    return;
  for (double x : o.fused[0].data)
    EXPECT_TRUE(std::isfinite(x));
}

TEST_F(Fused, FusedCrossEntropyRejectsTargetsOutsideTheVocabulary) {
  Case c = crossEntropyCase(4, ids({3}, {0, 11, 2}), 11);
  std::string text = std::string(kModelHeader) + "  func.func @f(" + c.args + ") -> (" +
                     c.resultTypes + ") {\n" + c.body + "\n    return " + c.returned + " : " +
                     c.resultTypes + "\n  }\n}\n";
  module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
  ASSERT_TRUE(module) << text;
  Interpreter interp(*module->getOps<llama::ModelOp>().begin(), Precision::F64, 0);
  Tensor logits = randomLike({3, 11}, 1, "l"), out, lse;
  std::vector<Tensor> results;
  std::string error;
  EXPECT_FALSE(interp.run("f", {logits, c.fixed[1]}, results, &error));
  EXPECT_NE(error.find("target 11 at flat index 1"), std::string::npos) << error;
  EXPECT_NE(error.find("llama.fused_cross_entropy"), std::string::npos) << error;
  // The backward kernel checks too (its forward would normally have failed first).
  EXPECT_FALSE(ref::fusedCrossEntropyGrad(logits, ids({3}, {0, -2, 2}), Tensor(DType::F32, {3}),
                                          1.0, -1, 4, out, &error));
  EXPECT_NE(error.find("target -2 at flat index 1"), std::string::npos) << error;
  // The ignore index itself is never out of range.
  EXPECT_TRUE(ref::fusedCrossEntropy(logits, ids({3}, {-5, -5, 2}), -5, 4, out, lse, &error))
      << error;
}

//===--- multi_adamw ------------------------------------------------------------------===//

TEST_F(Fused, MultiAdamW) {
  const std::vector<std::string> types = {"tensor<4xf32>", "tensor<2x3xf32>",
                                          "tensor<2x2x2xf32>"};
  std::string list, args;
  for (auto [group, keyword] : std::vector<std::pair<const char *, const char *>>{
           {"p", "params"}, {"g", "grads"}, {"m", "m"}, {"v", "v"}})
    for (size_t i = 0; i < types.size(); ++i) {
      args += std::string(args.empty() ? "" : ", ") + "%" + group + std::to_string(i) + ": " +
              types[i];
      list += (i == 0 ? std::string(" ") + keyword + " [" : std::string(", ")) + "%" + group +
              std::to_string(i) + (i + 1 == types.size() ? "]" : "");
    }
  std::string operandTypes, resultTypes;
  for (int group = 0; group < 4; ++group)
    for (const std::string &t : types)
      operandTypes += t + ", ";
  operandTypes += "tensor<f32>, tensor<i64>, tensor<f32>";
  for (int group = 0; group < 3; ++group)
    for (const std::string &t : types)
      resultTypes += (resultTypes.empty() ? "" : ", ") + t;
  Case c;
  c.args = args + ", %lr: tensor<f32>, %s: tensor<i64>, %c: tensor<f32>";
  c.body = "    %r:9 = llama.multi_adamw" + list + " lr %lr step %s grad_scale %c beta1 0.9 " +
           "beta2 0.95 eps 1.0e-08 weight_decays [0.0, 0.1, 0.01] : (" + operandTypes +
           ") -> (" + resultTypes + ")";
  for (int i = 0; i < 9; ++i)
    c.returned += (i ? ", %r#" : "%r#") + std::to_string(i);
  c.resultTypes = resultTypes;
  c.subject = "llama.multi_adamw";
  c.positive = {9, 10, 11}; // second moments
  c.fixed[12] = f32(1e-2);
  c.fixed[13] = i64(3);
  c.fixed[14] = f32(0.5);
  Outcome o;
  check(c, &o);
  if (HasFatalFailure())
    return;
  EXPECT_EQ(std::count(o.decomposedOps.begin(), o.decomposedOps.end(), "llama.adamw"), 3);
  // Each parameter moved, by its own decay among other things: the weight-decay term of
  // parameter 1 is lr * 0.1 * p.
  for (int i = 0; i < 3; ++i)
    EXPECT_GT(relativeDifference(o.fused[i], o.inputs[i]), 1e-4) << "param " << i;
}

//===--- fused_elementwise ------------------------------------------------------------===//

Case elementwiseCase(unsigned inputs, const std::string &body, const std::string &type) {
  Case c;
  std::string operands, blockArgs, types;
  for (unsigned i = 0; i < inputs; ++i) {
    c.args += (i ? ", %in" : "%in") + std::to_string(i) + ": " + type;
    operands += (i ? ", %in" : "%in") + std::to_string(i);
    blockArgs += (i ? ", %a" : "%a") + std::to_string(i) + ": f32";
    types += (i ? ", " : "") + type;
  }
  c.body = "    %r = llama.fused_elementwise " + operands + " : " + types + " -> " + type +
           " {\n    ^bb0(" + blockArgs + "):\n" + body + "\n    }";
  c.returned = "%r";
  c.resultTypes = type;
  c.subject = "llama.fused_elementwise";
  return c;
}

const char *kArithBody = R"mlir(
      %0 = arith.addf %a0, %a1 : f32
      %1 = arith.subf %0, %a2 : f32
      %2 = arith.mulf %1, %a0 : f32
      %3 = arith.divf %2, %a2 : f32
      %4 = arith.negf %3 : f32
      %5 = arith.maximumf %4, %a1 : f32
      llama.yield %5 : f32)mlir";

const char *kMathBody = R"mlir(
      %c = arith.constant 2.5 : f32
      %0 = math.sqrt %a0 : f32
      %1 = math.rsqrt %a0 : f32
      %2 = math.log %a0 : f32
      %3 = math.exp %2 : f32
      %4 = arith.mulf %c, %0 : f32
      %5 = arith.addf %4, %1 : f32
      %6 = arith.subf %5, %3 : f32
      llama.yield %6 : f32)mlir";

const char *kSiLUBody = R"mlir(
      %one = arith.constant 1.0 : f32
      %n = arith.negf %a0 : f32
      %e = math.exp %n : f32
      %d = arith.addf %one, %e : f32
      %r = arith.divf %a0, %d : f32
      llama.yield %r : f32)mlir";

TEST_F(Fused, FusedElementwiseArith) {
  Case c = elementwiseCase(3, kArithBody, "tensor<2x3x4xf32>");
  c.positive = {2}; // the divisor
  check(c);
}

TEST_F(Fused, FusedElementwiseMathAndConstant) {
  Case c = elementwiseCase(1, kMathBody, "tensor<3x5xf32>");
  c.positive = {0}; // sqrt, rsqrt, log
  check(c);
}

TEST_F(Fused, FusedElementwiseSiLU) {
  Outcome o;
  check(elementwiseCase(1, kSiLUBody, "tensor<2x8xf32>"), &o);
  if (HasFatalFailure())
    return;
  Tensor want = ref::unary(o.inputs[0], ref::silu);
  EXPECT_LE(relativeDifference(o.fused[0], want), 1e-15);
}

TEST_F(Fused, FusedElementwiseYieldsAnArgumentOrAConstant) {
  check(elementwiseCase(2, "      llama.yield %a1 : f32", "tensor<3x2xf32>"));
  check(elementwiseCase(
      1, "      %c = arith.constant -0.75 : f32\n      llama.yield %c : f32", "tensor<4xf32>"));
}

TEST_F(Fused, FusedElementwiseRoundsEachIntermediateInF32) {
  // In f32 the decomposition rounds every whole-tensor intermediate to f32; the body's
  // scalars are f32 and must be rounded the same way: the results are identical.
  struct Body {
    unsigned inputs;
    const char *text;
    std::set<unsigned> positive;
  };
  for (const Body &body : {Body{3, kArithBody, {2}}, Body{1, kMathBody, {0}},
                           Body{1, kSiLUBody, {}}}) {
    Case c = elementwiseCase(body.inputs, body.text, "tensor<4x16xf32>");
    c.positive = body.positive;
    c.precision = Precision::F32;
    c.tolerance = 0;
    Outcome o;
    check(c, &o);
    if (HasFatalFailure())
      return;
    // Rounding only the result would not do: the exact program on the same f32 inputs,
    // rounded once at the end, differs somewhere.
    Interpreter exact(*module->getOps<llama::ModelOp>().begin(), Precision::F64, 0);
    std::vector<Tensor> inputs = o.inputs, out;
    for (Tensor &t : inputs) {
      t.dtype = DType::F32;
      t.round();
    }
    std::string error;
    ASSERT_TRUE(exact.run("f", inputs, out, &error)) << error;
    out[0].round();
    int64_t differing = 0;
    for (int64_t i = 0; i < out[0].numElements(); ++i)
      differing += out[0][i] != o.fused[0][i];
    EXPECT_GT(differing, 0) << body.text;
  }
}

//===--- malformed backward ops -------------------------------------------------------===//

// The backward fused ops and attention_lse have no shape rule relating their operands (the
// verifier accepts each function below); their kernels index by those shapes, so the
// interpreter checks them and fails with a message instead of reading out of bounds.
TEST_F(Fused, VerifierRelatesTheGradientOpsShapes) {
  // Each of these once passed the verifier (and the interpreter had to guard its kernels);
  // the verifier now rejects every one. test/dialects/llama/invalid.mlir has the messages.
  const char *cases[] = {
      R"mlir(
  func.func @swiglu(%x: tensor<2x8xf32>, %g: tensor<2x3xf32>) -> tensor<2x8xf32> {
    %r = llama.swiglu_grad %x, %g : tensor<2x8xf32>, tensor<2x3xf32>
    return %r : tensor<2x8xf32>
  }
)mlir",
      R"mlir(
  func.func @qkv(%dq: tensor<1x3x4x4xf32>, %dk: tensor<1x5x2x4xf32>) -> tensor<1x3x32xf32> {
    %r = llama.qkv_rope_grad %dq, %dk, %dk theta 1.0e+01
        : tensor<1x3x4x4xf32>, tensor<1x5x2x4xf32> -> tensor<1x3x32xf32>
    return %r : tensor<1x3x32xf32>
  }
)mlir",
      R"mlir(
  func.func @norm(%h: tensor<2x6xf32>, %w: tensor<4xf32>) -> tensor<4xf32> {
    %dx, %dw = llama.add_rms_norm_grad %h, %w, %h, %h eps 1.0e-05 : tensor<2x6xf32>, tensor<4xf32>
    return %dw : tensor<4xf32>
  }
)mlir",
      R"mlir(
  func.func @lse(%q: tensor<1x3x2x4xf32>, %k: tensor<1x3x2x4xf32>, %lse: tensor<6xf32>)
      -> tensor<1x3x2x4xf32> {
    %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %k, %q, %lse, %q causal block_q 2
        block_k 2 : tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<6xf32>
    return %dq : tensor<1x3x2x4xf32>
  }
)mlir",
      R"mlir(
  func.func @heads(%q: tensor<1x3x3x4xf32>, %k: tensor<1x3x2x4xf32>, %lse: tensor<1x3x3xf32>)
      -> tensor<1x3x3x4xf32> {
    %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %k, %q, %lse, %q causal block_q 2
        block_k 2 : tensor<1x3x3x4xf32>, tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>,
        tensor<1x3x3xf32>
    return %dq : tensor<1x3x3x4xf32>
  }
)mlir",
      R"mlir(
  func.func @alse(%q: tensor<1x3x2x4xf32>, %k: tensor<1x3x2x6xf32>) -> tensor<1x3x2xf32> {
    %r = llama.attention_lse %q, %k causal : tensor<1x3x2x4xf32>, tensor<1x3x2x6xf32>
        -> tensor<1x3x2xf32>
    return %r : tensor<1x3x2xf32>
  }
)mlir",
      R"mlir(
  func.func @ce(%l: tensor<3x5xf32>, %t: tensor<3xi32>, %lse: tensor<1xf32>, %g: tensor<f32>)
      -> tensor<3x5xf32> {
    %r = llama.fused_cross_entropy_grad %l, %t, %lse, %g chunk 2
        : tensor<3x5xf32>, tensor<3xi32>, tensor<1xf32>
    return %r : tensor<3x5xf32>
  }
)mlir",
  };
  for (const char *c : cases) {
    SCOPED_TRACE(c);
    mlir::ScopedDiagnosticHandler silence(&ctx, [](mlir::Diagnostic &) {
      return mlir::success();
    });
    auto m = mlir::parseSourceString<mlir::ModuleOp>(std::string(kModelHeader) + c + "}\n",
                                                     &ctx);
    EXPECT_FALSE(m);
  }
}

TEST(FusedKernels, FlashAttentionDoesNotDependOnBlockSizes) {
  struct Shape {
    int64_t t, s, h, kv;
    bool causal;
    int64_t window;
  };
  const std::vector<std::pair<int64_t, int64_t>> sizes = {
      {1, 1}, {1, 7}, {2, 3}, {3, 2}, {4, 4}, {7, 7}, {5, 1}, {64, 64}, {8, 100}};
  for (Shape sh : {Shape{7, 7, 2, 2, true, 0}, Shape{7, 7, 4, 2, false, 0},
                   Shape{7, 7, 2, 1, true, 3}, Shape{3, 7, 2, 2, true, 0},
                   Shape{7, 3, 2, 2, true, 0}, Shape{9, 9, 3, 1, true, 2}}) {
    SCOPED_TRACE("t " + std::to_string(sh.t) + " s " + std::to_string(sh.s) + " h " +
                 std::to_string(sh.h) + " kv " + std::to_string(sh.kv) +
                 (sh.causal ? " causal" : "") + " window " + std::to_string(sh.window));
    Tensor q = randomLike({2, sh.t, sh.h, 4}, 7, "q"), k = randomLike({2, sh.s, sh.kv, 4}, 7, "k");
    Tensor v = randomLike({2, sh.s, sh.kv, 4}, 7, "v"), g = randomLike({2, sh.t, sh.h, 4}, 7, "g");
    double scale = 0.5;
    ref::FlashAttentionResult base =
        ref::flashAttention(q, k, v, sh.causal, sh.window, scale, sizes[0].first,
                            sizes[0].second);
    ref::AttentionGrads baseGrad = ref::flashAttentionGrad(
        q, k, v, base.out, base.lse, g, sh.causal, sh.window, scale, sizes[0].first,
        sizes[0].second);
    // And the reference kernels, computed over whole rows.
    EXPECT_LE(relativeDifference(base.out, ref::attention(q, k, v, sh.causal, sh.window, scale)),
              1e-12);
    EXPECT_LE(relativeDifference(base.lse, ref::attentionLse(q, k, sh.causal, sh.window, scale)),
              1e-12);
    ref::AttentionGrads refGrad = ref::attentionGrad(q, k, v, g, sh.causal, sh.window, scale);
    EXPECT_LE(relativeDifference(baseGrad.query, refGrad.query), 1e-12);
    EXPECT_LE(relativeDifference(baseGrad.key, refGrad.key), 1e-12);
    EXPECT_LE(relativeDifference(baseGrad.value, refGrad.value), 1e-12);
    for (auto [bq, bk] : sizes) {
      SCOPED_TRACE("block_q " + std::to_string(bq) + " block_k " + std::to_string(bk));
      ref::FlashAttentionResult r =
          ref::flashAttention(q, k, v, sh.causal, sh.window, scale, bq, bk);
      EXPECT_LE(relativeDifference(r.out, base.out), 1e-12);
      EXPECT_LE(relativeDifference(r.lse, base.lse), 1e-12);
      ref::AttentionGrads d = ref::flashAttentionGrad(q, k, v, base.out, base.lse, g, sh.causal,
                                                      sh.window, scale, bq, bk);
      EXPECT_LE(relativeDifference(d.query, baseGrad.query), 1e-12);
      EXPECT_LE(relativeDifference(d.key, baseGrad.key), 1e-12);
      EXPECT_LE(relativeDifference(d.value, baseGrad.value), 1e-12);
    }
  }
}

TEST(FusedKernels, FlashAttentionRowsWithoutKeys) {
  // 3 queries on 1 key, causal: queries 0 and 1 see nothing.
  Tensor q = randomLike({1, 3, 1, 2}, 5, "q"), k = randomLike({1, 1, 1, 2}, 5, "k");
  Tensor v = randomLike({1, 1, 1, 2}, 5, "v"), g = randomLike({1, 3, 1, 2}, 5, "g");
  ref::FlashAttentionResult r = ref::flashAttention(q, k, v, true, 0, 0.7, 2, 2);
  EXPECT_EQ(r.lse.dtype, DType::F32);
  EXPECT_EQ(r.lse[0], -kInf);
  EXPECT_EQ(r.lse[1], -kInf);
  // Query 2 sees its one key: lse is that score, and the output is the key's value.
  EXPECT_NEAR(r.lse[2], 0.7 * (q[4] * k[0] + q[5] * k[1]), 1e-15);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(r.out[i], 0.0);
  EXPECT_NEAR(r.out[4], v[0], 1e-15);
  EXPECT_NEAR(r.out[5], v[1], 1e-15);
  ref::AttentionGrads d = ref::flashAttentionGrad(q, k, v, r.out, r.lse, g, true, 0, 0.7, 2, 2);
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_NEAR(d.query[i], 0.0, 1e-15) << i; // no key, or a constant softmax
  EXPECT_NEAR(d.value[0], g[4], 1e-15);
  EXPECT_NEAR(d.value[1], g[5], 1e-15);
}

TEST(FusedKernels, LogSumExp) {
  Tensor x = make({2, 3}, {0, std::log(3.0), -kInf, 1000, 1000, 1000});
  Tensor r = ref::logsumexp(x);
  EXPECT_EQ(r.shape, (std::vector<int64_t>{2}));
  EXPECT_NEAR(r[0], std::log(4.0), 1e-15);
  EXPECT_NEAR(r[1], 1000 + std::log(3.0), 1e-12); // shifted: exp(1000) would overflow
  EXPECT_EQ(ref::logsumexp(make({1, 2}, {-kInf, -kInf}))[0], -kInf);
  EXPECT_EQ(ref::logsumexp(make({3}, {1, 2, 3})).rank(), 0);
}

TEST(FusedKernels, FusedCrossEntropyOnlineLseMatchesLogSumExp) {
  Tensor logits = randomLike({5, 13}, 2, "logits");
  for (int64_t i = 13; i < 26; ++i)
    logits[i] += 800; // one row past exp's range, to exercise the running max
  Tensor targets = ids({5}, {0, 12, -1, 6, 3}), loss, lse, want;
  std::string error;
  Tensor whole = ref::logsumexp(logits);
  ASSERT_TRUE(ref::crossEntropy(logits, targets, -1, want, &error)) << error;
  for (int64_t chunk : {1, 2, 5, 13, 40}) {
    ASSERT_TRUE(ref::fusedCrossEntropy(logits, targets, -1, chunk, loss, lse, &error)) << error;
    EXPECT_EQ(lse.dtype, DType::F32);
    EXPECT_EQ(lse.shape, (std::vector<int64_t>{5}));
    EXPECT_LE(relativeDifference(lse, whole), 1e-14) << "chunk " << chunk;
    EXPECT_NEAR(loss[0], want[0], 1e-12 * std::abs(want[0])) << "chunk " << chunk;
  }
}

} // namespace
