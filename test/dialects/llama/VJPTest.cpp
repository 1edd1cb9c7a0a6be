//===- VJPTest.cpp - every VJP rule against finite differences ---------------------===//
//
// For each op with a VJP rule: a model function that computes the op alone, and a second
// function, built here from a clone of the op and its rule, that maps (operands, result
// cotangent) to the operand cotangents. Both run in the reference interpreter in f64, and
// <dy, (f(x + h e) - f(x - h e)) / 2h> must match <dx, e> for every element e of every
// float operand (20 random directions for larger operands). Then the training ops by hand
// through the interpreter (rope's inverse, lr_schedule, adamw, grad_clip, set_param) and
// kernel-level cases of the backward kernels that finite differences do not reach.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "dialects/llama/LlamaOps.h"
#include "runtime/interpreter/Interpreter.h"
#include "runtime/interpreter/Kernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

using namespace llamac;

namespace {

/// The model every test function lives in; its hyper-parameters do not matter here.
const char *kModelHeader = R"mlir(
llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 2, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
)mlir";

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

double dot(const Tensor &a, const Tensor &b) {
  double s = 0;
  for (int64_t i = 0; i < a.numElements(); ++i)
    s += a[i] * b[i];
  return s;
}

bool isFloatTensor(mlir::Type t) {
  auto ranked = mlir::dyn_cast<mlir::RankedTensorType>(t);
  return ranked && mlir::isa<mlir::FloatType>(ranked.getElementType());
}

std::string str(mlir::Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

/// Adds to `fwd`'s model a function `name`(fwd's arguments..., cotangent of the result)
/// that recomputes fwd's single op on a clone and returns what the op's VJP rule builds
/// for its float operands; `differentiable` receives their operand indices. Checks the
/// rule's contract on the way: one cotangent per operand, null exactly for the operands
/// that are not float tensors, each of its operand's type.
bool buildVJPFunction(mlir::func::FuncOp fwd, llvm::StringRef name,
                      std::vector<unsigned> &differentiable, std::string *error) {
  mlir::Block &body = fwd.getBody().front();
  if (body.getOperations().size() != 2) {
    *error = "the forward function must hold one op and the return";
    return false;
  }
  mlir::Operation *op = &body.front();
  if (!mlir::isa<llama::VJPOpInterface>(op)) {
    *error = op->getName().getStringRef().str() + " does not implement VJPOpInterface";
    return false;
  }
  // The clone is mapped through the arguments only: every operand must be one.
  for (mlir::Value v : op->getOperands())
    if (!mlir::isa<mlir::BlockArgument>(v)) {
      *error = "every operand of the op must be an argument of the function";
      return false;
    }

  mlir::OpBuilder b(fwd->getContext());
  b.setInsertionPointAfter(fwd);
  llvm::SmallVector<mlir::Type> inputs(fwd.getArgumentTypes());
  for (mlir::Type t : op->getResultTypes())
    inputs.push_back(t);
  auto fn = mlir::func::FuncOp::create(b, fwd.getLoc(), name, b.getFunctionType(inputs, {}));
  mlir::Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  mlir::IRMapping map;
  map.map(body.getArguments(), entry->getArguments().take_front(fwd.getNumArguments()));
  mlir::Operation *clone = b.clone(*op, map);
  llvm::SmallVector<mlir::Value> cotangents(
      entry->getArguments().drop_front(fwd.getNumArguments()));
  llvm::SmallVector<mlir::Value> out;
  if (mlir::failed(mlir::cast<llama::VJPOpInterface>(clone).buildVJP(b, cotangents, out))) {
    *error = "buildVJP failed";
    return false;
  }
  if (out.size() != clone->getNumOperands()) {
    *error = "the rule built " + std::to_string(out.size()) + " cotangents for " +
             std::to_string(clone->getNumOperands()) + " operands";
    return false;
  }
  llvm::SmallVector<mlir::Value> results;
  llvm::SmallVector<mlir::Type> resultTypes;
  for (unsigned i = 0; i < out.size(); ++i) {
    mlir::Type want = clone->getOperand(i).getType();
    if (!isFloatTensor(want)) {
      if (out[i]) {
        *error = "the rule built a cotangent for non-float operand " + std::to_string(i);
        return false;
      }
      continue;
    }
    if (!out[i]) {
      *error = "the rule built no cotangent for float operand " + std::to_string(i);
      return false;
    }
    if (out[i].getType() != want) {
      *error = "the cotangent of operand " + std::to_string(i) + " is " +
               str(out[i].getType()) + " but the operand is " + str(want);
      return false;
    }
    differentiable.push_back(i);
    results.push_back(out[i]);
    resultTypes.push_back(want);
  }
  mlir::func::ReturnOp::create(b, fwd.getLoc(), results);
  fn.setFunctionType(b.getFunctionType(inputs, resultTypes));
  return true;
}

struct Options {
  std::map<unsigned, Tensor> fixed; ///< argument index -> value (token ids, offsets)
  std::set<unsigned> positive;      ///< float arguments drawn from [0.5, ...) (log, div)
  std::set<unsigned> noInfluence;   ///< float arguments the result does not depend on
  std::map<unsigned, std::vector<int64_t>> shapes; ///< shapes of dynamically shaped floats
  uint64_t seed = 1;
};

class VJP : public ::testing::Test {
protected:
  VJP() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  /// Checks the VJP rule of the op in `func.func @f(args) -> resultType { %r = op }`.
  void check(const std::string &args, const std::string &op, const std::string &resultType,
             const Options &options = {}) {
    std::string text = std::string(kModelHeader) + "  func.func @f(" + args + ") -> " +
                       resultType + " {\n    %r = " + op + "\n    return %r : " + resultType +
                       "\n  }\n}\n";
    SCOPED_TRACE(op);
    auto module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
    ASSERT_TRUE(module) << text;
    llama::ModelOp model = *module->getOps<llama::ModelOp>().begin();
    mlir::func::FuncOp fwd = model.lookupFunction("f");
    std::vector<unsigned> diff;
    std::string error;
    ASSERT_TRUE(buildVJPFunction(fwd, "f_vjp", diff, &error)) << error;
    // The rule's ops must satisfy their own shape rules.
    ASSERT_TRUE(mlir::succeeded(mlir::verify(*module)));
    ASSERT_FALSE(diff.empty());

    std::vector<Tensor> inputs;
    for (auto [i, arg] : llvm::enumerate(fwd.getArguments())) {
      auto it = options.fixed.find(unsigned(i));
      if (it != options.fixed.end()) {
        inputs.push_back(it->second);
        continue;
      }
      ASSERT_TRUE(isFloatTensor(arg.getType())) << "argument " << i << " needs a fixed value";
      auto type = mlir::cast<mlir::RankedTensorType>(arg.getType());
      auto shape = options.shapes.find(unsigned(i));
      ASSERT_TRUE(type.hasStaticShape() || shape != options.shapes.end())
          << "argument " << i << " needs a shape";
      Tensor x = randomLike(type.hasStaticShape() ? std::vector<int64_t>(type.getShape())
                                                  : shape->second,
                            options.seed, "arg" + std::to_string(i));
      if (options.positive.count(unsigned(i)))
        for (double &v : x.data)
          v = 0.5 + std::abs(v);
      inputs.push_back(std::move(x));
    }

    Interpreter interp(model, Precision::F64, 0);
    std::vector<Tensor> y;
    ASSERT_TRUE(interp.run("f", inputs, y, &error)) << error;
    ASSERT_EQ(y.size(), 1u);
    Tensor dy = randomLike(y[0].shape, options.seed, "cotangent");
    std::vector<Tensor> vjpInputs = inputs, dx;
    vjpInputs.push_back(dy);
    ASSERT_TRUE(interp.run("f_vjp", vjpInputs, dx, &error)) << error;
    ASSERT_EQ(dx.size(), diff.size());

    const double h = 1e-6, tol = 1e-6;
    auto projected = [&](std::vector<Tensor> at) {
      std::vector<Tensor> out;
      EXPECT_TRUE(interp.run("f", at, out, &error)) << error;
      return out.empty() ? 0.0 : dot(dy, out[0]);
    };
    for (size_t k = 0; k < diff.size(); ++k) {
      unsigned operand = diff[k];
      const Tensor &x = inputs[operand];
      ASSERT_EQ(dx[k].shape, x.shape) << "operand " << operand;
      int64_t n = x.numElements();
      bool everyElement = n <= 64;
      int64_t directions = everyElement ? n : 20;
      double largest = 0;
      for (int64_t d = 0; d < directions; ++d) {
        Tensor e(DType::F64, x.shape);
        if (everyElement)
          e[d] = 1.0;
        else
          e = randomLike(x.shape, options.seed + 1000 + uint64_t(d), "direction");
        std::vector<Tensor> plus = inputs, minus = inputs;
        for (int64_t i = 0; i < n; ++i) {
          plus[operand][i] += h * e[i];
          minus[operand][i] -= h * e[i];
        }
        double numeric = (projected(plus) - projected(minus)) / (2 * h);
        double analytic = dot(dx[k], e);
        largest = std::max(largest, std::abs(analytic));
        EXPECT_NEAR(analytic, numeric, tol * std::max({1.0, std::abs(analytic),
                                                       std::abs(numeric)}))
            << "operand " << operand << (everyElement ? ", element " : ", direction ") << d;
      }
      // A rule that returned zeros against a function that ignores the operand would
      // pass vacuously: unless the case says otherwise, the operand does influence the
      // result.
      if (options.noInfluence.count(operand))
        EXPECT_LT(largest, 1e-12) << "operand " << operand;
      else
        EXPECT_GT(largest, 1e-3) << "operand " << operand << " has a vanishing cotangent";
    }
  }

  mlir::MLIRContext ctx;
};

Tensor ids(std::vector<int64_t> shape, std::vector<double> values) {
  return make(std::move(shape), std::move(values), DType::I32);
}

Tensor position(int64_t v) { return Tensor(DType::I64, {}, double(v)); }

//===--- structured ops ---------------------------------------------------------------===//

TEST_F(VJP, Embedding) {
  Options o;
  o.fixed[1] = ids({2, 3}, {0, 4, 2, 4, 4, 1}); // repeated ids accumulate; row 3 unused
  check("%t: tensor<5x3xf32>, %i: tensor<2x3xi32>",
        "llama.embedding %t[%i] : tensor<5x3xf32>, tensor<2x3xi32>", "tensor<2x3x3xf32>", o);
}

TEST_F(VJP, Linear) {
  check("%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>",
        "llama.linear %x, %w : tensor<2x3x4xf32>, tensor<5x4xf32>", "tensor<2x3x5xf32>");
  check("%x: tensor<3x4xf32>, %w: tensor<5x4xf32>",
        "llama.linear %x, %w : tensor<3x4xf32>, tensor<5x4xf32>", "tensor<3x5xf32>");
  // Larger operands: 20 random directions each.
  check("%x: tensor<2x5x16xf32>, %w: tensor<12x16xf32>",
        "llama.linear %x, %w : tensor<2x5x16xf32>, tensor<12x16xf32>", "tensor<2x5x12xf32>");
}

TEST_F(VJP, MatmulBatched) {
  check("%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>",
        "llama.matmul %a, %b : tensor<2x3x4xf32>, tensor<2x4x5xf32>", "tensor<2x3x5xf32>");
  check("%a: tensor<3x4xf32>, %b: tensor<4x5xf32>",
        "llama.matmul %a, %b : tensor<3x4xf32>, tensor<4x5xf32>", "tensor<3x5xf32>");
  check("%a: tensor<2x2x3x2xf32>, %b: tensor<2x2x2x3xf32>",
        "llama.matmul %a, %b : tensor<2x2x3x2xf32>, tensor<2x2x2x3xf32>",
        "tensor<2x2x3x3xf32>");
}

TEST_F(VJP, MatmulTransposeRhs) {
  check("%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>",
        "llama.matmul %a, %b transpose_rhs : tensor<2x3x4xf32>, tensor<2x5x4xf32>",
        "tensor<2x3x5xf32>");
  check("%a: tensor<2x2x3x2xf32>, %b: tensor<2x2x4x2xf32>",
        "llama.matmul %a, %b transpose_rhs : tensor<2x2x3x2xf32>, tensor<2x2x4x2xf32>",
        "tensor<2x2x3x4xf32>");
}

TEST_F(VJP, MatmulSharedRhs) {
  check("%a: tensor<2x3x4xf32>, %b: tensor<4x5xf32>",
        "llama.matmul %a, %b : tensor<2x3x4xf32>, tensor<4x5xf32>", "tensor<2x3x5xf32>");
  check("%a: tensor<2x3x4xf32>, %b: tensor<5x4xf32>",
        "llama.matmul %a, %b transpose_rhs : tensor<2x3x4xf32>, tensor<5x4xf32>",
        "tensor<2x3x5xf32>");
  // Rank 4 against a shared matrix: the rule merges two leading dimensions.
  check("%a: tensor<2x2x3x4xf32>, %b: tensor<4x5xf32>",
        "llama.matmul %a, %b : tensor<2x2x3x4xf32>, tensor<4x5xf32>", "tensor<2x2x3x5xf32>");
  check("%a: tensor<2x2x3x4xf32>, %b: tensor<5x4xf32>",
        "llama.matmul %a, %b transpose_rhs : tensor<2x2x3x4xf32>, tensor<5x4xf32>",
        "tensor<2x2x3x5xf32>");
}

TEST_F(VJP, RMSNorm) {
  check("%x: tensor<2x3x6xf32>, %w: tensor<6xf32>",
        "llama.rms_norm %x, %w eps 1.0e-05 : tensor<2x3x6xf32>, tensor<6xf32>",
        "tensor<2x3x6xf32>");
  // A large eps makes its term in the rule visible.
  check("%x: tensor<4x5xf32>, %w: tensor<5xf32>",
        "llama.rms_norm %x, %w eps 5.0e-01 : tensor<4x5xf32>, tensor<5xf32>",
        "tensor<4x5xf32>");
}

TEST_F(VJP, RoPE) {
  // theta 10 turns the higher pairs far enough to tell positions apart.
  check("%x: tensor<2x3x2x4xf32>", "llama.rope %x theta 1.0e+01 : tensor<2x3x2x4xf32>",
        "tensor<2x3x2x4xf32>");
  check("%x: tensor<2x3x2x4xf32>", "llama.rope %x theta 1.0e+01 inverse : tensor<2x3x2x4xf32>",
        "tensor<2x3x2x4xf32>");
  check("%x: tensor<1x4x1x8xf32>", "llama.rope %x theta 1.0e+04 : tensor<1x4x1x8xf32>",
        "tensor<1x4x1x8xf32>");
  Options o;
  o.fixed[1] = position(5);
  check("%x: tensor<1x3x2x4xf32>, %o: index",
        "llama.rope %x theta 1.0e+01 offset %o : tensor<1x3x2x4xf32>", "tensor<1x3x2x4xf32>",
        o);
  check("%x: tensor<1x3x2x4xf32>, %o: index",
        "llama.rope %x theta 1.0e+04 offset %o inverse : tensor<1x3x2x4xf32>",
        "tensor<1x3x2x4xf32>", o);
}

TEST_F(VJP, AttentionCausal) {
  check("%q: tensor<2x3x2x4xf32>, %k: tensor<2x3x2x4xf32>, %v: tensor<2x3x2x4xf32>",
        "llama.attention %q, %k, %v causal : tensor<2x3x2x4xf32>, tensor<2x3x2x4xf32>, "
        "tensor<2x3x2x4xf32>",
        "tensor<2x3x2x4xf32>");
}

TEST_F(VJP, AttentionNonCausal) {
  // Fewer queries than keys, without a mask.
  check("%q: tensor<2x3x2x4xf32>, %k: tensor<2x5x2x4xf32>, %v: tensor<2x5x2x4xf32>",
        "llama.attention %q, %k, %v : tensor<2x3x2x4xf32>, tensor<2x5x2x4xf32>, "
        "tensor<2x5x2x4xf32>",
        "tensor<2x3x2x4xf32>");
}

TEST_F(VJP, AttentionGroupedQuery) {
  check("%q: tensor<1x4x4x4xf32>, %k: tensor<1x4x2x4xf32>, %v: tensor<1x4x2x4xf32>",
        "llama.attention %q, %k, %v causal : tensor<1x4x4x4xf32>, tensor<1x4x2x4xf32>, "
        "tensor<1x4x2x4xf32>",
        "tensor<1x4x4x4xf32>");
  // Every query head on one KV head.
  check("%q: tensor<1x3x4x2xf32>, %k: tensor<1x3x1x2xf32>, %v: tensor<1x3x1x2xf32>",
        "llama.attention %q, %k, %v : tensor<1x3x4x2xf32>, tensor<1x3x1x2xf32>, "
        "tensor<1x3x1x2xf32>",
        "tensor<1x3x4x2xf32>");
}

TEST_F(VJP, AttentionCausalAlignedToTheEndOfTheKeys) {
  // 3 queries on 5 keys: query t sits at key position t + 2.
  check("%q: tensor<1x3x2x4xf32>, %k: tensor<1x5x2x4xf32>, %v: tensor<1x5x2x4xf32>",
        "llama.attention %q, %k, %v causal : tensor<1x3x2x4xf32>, tensor<1x5x2x4xf32>, "
        "tensor<1x5x2x4xf32>",
        "tensor<1x3x2x4xf32>");
  // 4 queries on 2 keys: queries 0 and 1 see no key and yield constant zeros.
  check("%q: tensor<1x4x2x4xf32>, %k: tensor<1x2x2x4xf32>, %v: tensor<1x2x2x4xf32>",
        "llama.attention %q, %k, %v causal : tensor<1x4x2x4xf32>, tensor<1x2x2x4xf32>, "
        "tensor<1x2x2x4xf32>",
        "tensor<1x4x2x4xf32>");
}

TEST_F(VJP, AttentionSlidingWindow) {
  check("%q: tensor<1x5x2x4xf32>, %k: tensor<1x5x1x4xf32>, %v: tensor<1x5x1x4xf32>",
        "llama.attention %q, %k, %v causal window 2 : tensor<1x5x2x4xf32>, "
        "tensor<1x5x1x4xf32>, tensor<1x5x1x4xf32>",
        "tensor<1x5x2x4xf32>");
  // Window 1: each query sees only its own key, a softmax over one score, so neither the
  // query nor the key has any influence; the value does.
  Options o;
  o.noInfluence = {0, 1};
  check("%q: tensor<1x3x1x2xf32>, %k: tensor<1x3x1x2xf32>, %v: tensor<1x3x1x2xf32>",
        "llama.attention %q, %k, %v causal window 1 : tensor<1x3x1x2xf32>, "
        "tensor<1x3x1x2xf32>, tensor<1x3x1x2xf32>",
        "tensor<1x3x1x2xf32>", o);
}

TEST_F(VJP, AttentionLarger) {
  // Batch 2, grouped-query, causal with a window, on operands large enough that the check
  // uses random directions.
  check("%q: tensor<2x6x4x8xf32>, %k: tensor<2x6x2x8xf32>, %v: tensor<2x6x2x8xf32>",
        "llama.attention %q, %k, %v causal window 3 : tensor<2x6x4x8xf32>, "
        "tensor<2x6x2x8xf32>, tensor<2x6x2x8xf32>",
        "tensor<2x6x4x8xf32>");
}

TEST_F(VJP, AttentionExplicitScale) {
  check("%q: tensor<1x3x2x4xf32>, %k: tensor<1x4x2x4xf32>, %v: tensor<1x4x2x4xf32>",
        "llama.attention %q, %k, %v scale 1.3 : tensor<1x3x2x4xf32>, tensor<1x4x2x4xf32>, "
        "tensor<1x4x2x4xf32>",
        "tensor<1x3x2x4xf32>");
  check("%q: tensor<1x4x2x4xf32>, %k: tensor<1x4x1x4xf32>, %v: tensor<1x4x1x4xf32>",
        "llama.attention %q, %k, %v causal window 2 scale 2.5e-01 : tensor<1x4x2x4xf32>, "
        "tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>",
        "tensor<1x4x2x4xf32>");
}

TEST_F(VJP, Softmax) {
  check("%x: tensor<3x5xf32>", "llama.softmax %x : tensor<3x5xf32>", "tensor<3x5xf32>");
  check("%x: tensor<2x2x4xf32>", "llama.softmax %x : tensor<2x2x4xf32>", "tensor<2x2x4xf32>");
}

TEST_F(VJP, CrossEntropy) {
  Options o;
  o.fixed[1] = ids({2, 3}, {0, 4, -1, 2, 2, 3}); // one ignored row
  check("%l: tensor<2x3x5xf32>, %t: tensor<2x3xi32>",
        "llama.cross_entropy %l, %t : tensor<2x3x5xf32>, tensor<2x3xi32>", "tensor<f32>", o);
  Options p;
  p.fixed[1] = ids({4}, {-100, 1, -100, 0});
  check("%l: tensor<4x3xf32>, %t: tensor<4xi32>",
        "llama.cross_entropy %l, %t ignore_index -100 : tensor<4x3xf32>, tensor<4xi32>",
        "tensor<f32>", p);
}

TEST_F(VJP, DynamicBatchAndSeq) {
  // The declared model's functions keep batch and sequence dynamic until llama-specialize:
  // the rules must build valid IR for them too.
  Options o;
  o.shapes[0] = {2, 3, 4};
  check("%x: tensor<?x?x4xf32>, %w: tensor<5x4xf32>",
        "llama.linear %x, %w : tensor<?x?x4xf32>, tensor<5x4xf32>", "tensor<?x?x5xf32>", o);
  check("%x: tensor<?x?x4xf32>, %w: tensor<4xf32>",
        "llama.rms_norm %x, %w eps 1.0e-05 : tensor<?x?x4xf32>, tensor<4xf32>",
        "tensor<?x?x4xf32>", o);
  check("%a: tensor<?x?x4xf32>, %b: tensor<4x5xf32>",
        "llama.matmul %a, %b : tensor<?x?x4xf32>, tensor<4x5xf32>", "tensor<?x?x5xf32>", o);
  Options r;
  r.shapes[0] = {2, 3, 2, 4};
  check("%x: tensor<?x?x2x4xf32>", "llama.rope %x theta 1.0e+01 : tensor<?x?x2x4xf32>",
        "tensor<?x?x2x4xf32>", r);
  Options a;
  a.shapes = {{0, {1, 3, 2, 4}}, {1, {1, 3, 1, 4}}, {2, {1, 3, 1, 4}}};
  check("%q: tensor<?x?x2x4xf32>, %k: tensor<?x?x1x4xf32>, %v: tensor<?x?x1x4xf32>",
        "llama.attention %q, %k, %v causal : tensor<?x?x2x4xf32>, tensor<?x?x1x4xf32>, "
        "tensor<?x?x1x4xf32>",
        "tensor<?x?x2x4xf32>", a);
  Options e;
  e.fixed[1] = ids({2, 2}, {1, 1, 0, 3});
  check("%t: tensor<4x3xf32>, %i: tensor<?x?xi32>",
        "llama.embedding %t[%i] : tensor<4x3xf32>, tensor<?x?xi32>", "tensor<?x?x3xf32>", e);
  Options c;
  c.shapes[0] = {2, 2, 4};
  c.fixed[1] = ids({2, 2}, {3, -1, 0, 1});
  check("%l: tensor<?x?x4xf32>, %t: tensor<?x?xi32>",
        "llama.cross_entropy %l, %t : tensor<?x?x4xf32>, tensor<?x?xi32>", "tensor<f32>", c);
}

TEST_F(VJP, NarrowElementTypes) {
  // The f64 interpreter does not round, so these check that the rules build valid IR on
  // bf16 and f16 operands and still match the derivative.
  check("%x: tensor<3x4xbf16>, %w: tensor<5x4xbf16>",
        "llama.linear %x, %w : tensor<3x4xbf16>, tensor<5x4xbf16>", "tensor<3x5xbf16>");
  check("%x: tensor<3x4xf16>, %w: tensor<4xf16>",
        "llama.rms_norm %x, %w eps 1.0e-05 : tensor<3x4xf16>, tensor<4xf16>",
        "tensor<3x4xf16>");
  check("%q: tensor<1x3x2x4xbf16>, %k: tensor<1x3x1x4xbf16>, %v: tensor<1x3x1x4xbf16>",
        "llama.attention %q, %k, %v causal : tensor<1x3x2x4xbf16>, tensor<1x3x1x4xbf16>, "
        "tensor<1x3x1x4xbf16>",
        "tensor<1x3x2x4xbf16>");
  Options c;
  c.fixed[1] = ids({3}, {0, 2, -1});
  check("%l: tensor<3x4xbf16>, %t: tensor<3xi64>",
        "llama.cross_entropy %l, %t : tensor<3x4xbf16>, tensor<3xi64>", "tensor<f32>", c);
  check("%x: tensor<2x3xbf16>", "llama.cast %x : tensor<2x3xbf16> to tensor<2x3xf32>",
        "tensor<2x3xf32>");
}

// A dynamic query head_dim (the shape rule accepts it when key or value knows it): the
// default scale of attention and of attention_grad comes from the key's head_dim (it once
// was 1/sqrt(kDynamic) = NaN in attention_grad, and the gradients were all zeros).
TEST_F(VJP, AttentionDynamicQueryHeadDim) {
  Options o;
  o.shapes[0] = {1, 3, 2, 4};
  check("%q: tensor<1x3x2x?xf32>, %k: tensor<1x3x2x4xf32>, %v: tensor<1x3x2x4xf32>",
        "llama.attention %q, %k, %v : tensor<1x3x2x?xf32>, tensor<1x3x2x4xf32>, "
        "tensor<1x3x2x4xf32>",
        "tensor<1x3x2x?xf32>", o);
}

//===--- elementwise ops --------------------------------------------------------------===//

TEST_F(VJP, Unary) {
  for (const char *name : {"silu", "sigmoid", "neg", "exp"})
    check("%x: tensor<2x3x4xf32>", std::string("llama.") + name + " %x : tensor<2x3x4xf32>",
          "tensor<2x3x4xf32>");
  // Away from 0, where log, sqrt and rsqrt are smooth.
  Options o;
  o.positive.insert(0);
  for (const char *name : {"log", "sqrt", "rsqrt"})
    check("%x: tensor<2x3x4xf32>", std::string("llama.") + name + " %x : tensor<2x3x4xf32>",
          "tensor<2x3x4xf32>", o);
}

TEST_F(VJP, ScaleAndCast) {
  check("%x: tensor<2x3xf32>", "llama.scale %x by -1.5 : tensor<2x3xf32>", "tensor<2x3xf32>");
  check("%x: tensor<2x3xf32>", "llama.cast %x : tensor<2x3xf32> to tensor<2x3xf32>",
        "tensor<2x3xf32>");
  // In f64 the interpreter does not round, so the narrowing cast is the identity too; the
  // rule must still cast the cotangent back to f32.
  check("%x: tensor<2x3xf32>", "llama.cast %x : tensor<2x3xf32> to tensor<2x3xbf16>",
        "tensor<2x3xbf16>");
}

TEST_F(VJP, Binary) {
  for (const char *name : {"add", "sub", "mul"})
    check("%x: tensor<3x4xf32>, %y: tensor<3x4xf32>",
          std::string("llama.") + name + " %x, %y : tensor<3x4xf32>", "tensor<3x4xf32>");
  Options o;
  o.positive.insert(1); // a divisor away from 0
  check("%x: tensor<3x4xf32>, %y: tensor<3x4xf32>", "llama.div %x, %y : tensor<3x4xf32>",
        "tensor<3x4xf32>", o);
}

//===--- shape ops --------------------------------------------------------------------===//

TEST_F(VJP, SplitDimAndMergeDims) {
  check("%x: tensor<2x6x3xf32>", "llama.split_dim %x dim 1 into [2, 3] : tensor<2x6x3xf32>",
        "tensor<2x2x3x3xf32>");
  check("%x: tensor<2x12xf32>", "llama.split_dim %x dim 1 into [2, 3, 2] : tensor<2x12xf32>",
        "tensor<2x2x3x2xf32>");
  check("%x: tensor<2x3x4xf32>", "llama.merge_dims %x dim 1 : tensor<2x3x4xf32>",
        "tensor<2x12xf32>");
  check("%x: tensor<2x3x4xf32>", "llama.merge_dims %x dim 0 : tensor<2x3x4xf32>",
        "tensor<6x4xf32>");
}

TEST_F(VJP, Transpose) {
  check("%x: tensor<2x3x4xf32>", "llama.transpose %x [2, 0, 1] : tensor<2x3x4xf32>",
        "tensor<4x2x3xf32>");
  check("%x: tensor<2x3x4x2xf32>", "llama.transpose %x [0, 2, 1, 3] : tensor<2x3x4x2xf32>",
        "tensor<2x4x3x2xf32>");
}

TEST_F(VJP, Concat) {
  check("%a: tensor<2x1x3xf32>, %b: tensor<2x2x3xf32>, %c: tensor<2x3x3xf32>",
        "llama.concat %a, %b, %c dim 1 : tensor<2x1x3xf32>, tensor<2x2x3xf32>, "
        "tensor<2x3x3xf32>",
        "tensor<2x6x3xf32>");
  check("%a: tensor<2x3xf32>, %b: tensor<4x3xf32>",
        "llama.concat %a, %b dim 0 : tensor<2x3xf32>, tensor<4x3xf32>", "tensor<6x3xf32>");
}

TEST_F(VJP, SliceAndPad) {
  check("%x: tensor<2x5x3xf32>", "llama.slice %x dim 1 [1, 3] : tensor<2x5x3xf32>",
        "tensor<2x3x3xf32>");
  check("%x: tensor<6x2xf32>", "llama.slice %x dim 0 [0, 2] : tensor<6x2xf32>",
        "tensor<2x2xf32>");
  check("%x: tensor<2x3xf32>", "llama.pad %x dim 1 [1, 2] : tensor<2x3xf32>",
        "tensor<2x6xf32>");
  check("%x: tensor<2x3x2xf32>", "llama.pad %x dim 0 [0, 3] : tensor<2x3x2xf32>",
        "tensor<5x3x2xf32>");
}

//===--- training ops through the interpreter ----------------------------------------===//

class VJPInterpreterOps : public VJP {
protected:
  /// Parses `body` (functions and parameters) into the test model.
  llama::ModelOp load(const std::string &body) {
    module = mlir::parseSourceString<mlir::ModuleOp>(std::string(kModelHeader) + body + "}\n",
                                                     &ctx);
    EXPECT_TRUE(module);
    return module ? *module->getOps<llama::ModelOp>().begin() : llama::ModelOp();
  }
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

Tensor f32(double v) { return Tensor(DType::F32, {}, v); }
Tensor i64(int64_t v) { return Tensor(DType::I64, {}, double(v)); }

TEST_F(VJPInterpreterOps, RoPEInverseUndoesRoPE) {
  llama::ModelOp m = load(R"mlir(
  func.func @f(%x: tensor<2x3x2x8xf32>, %o: index) -> (tensor<2x3x2x8xf32>, tensor<2x3x2x8xf32>) {
    %a = llama.rope %x theta 1.0e+04 offset %o : tensor<2x3x2x8xf32>
    %b = llama.rope %a theta 1.0e+04 offset %o inverse : tensor<2x3x2x8xf32>
    return %a, %b : tensor<2x3x2x8xf32>, tensor<2x3x2x8xf32>
  }
)mlir");
  ASSERT_TRUE(m);
  Tensor x = randomLike({2, 3, 2, 8}, 3, "x");
  for (Precision p : {Precision::F64, Precision::F32}) {
    Interpreter interp(m, p, 0);
    std::vector<Tensor> out;
    std::string error;
    ASSERT_TRUE(interp.run("f", {x, position(7)}, out, &error)) << error;
    double tol = p == Precision::F64 ? 1e-12 : 1e-6, moved = 0;
    for (int64_t i = 0; i < x.numElements(); ++i) {
      EXPECT_NEAR(out[1][i], x[i], tol) << "element " << i;
      moved = std::max(moved, std::abs(out[0][i] - x[i]));
    }
    EXPECT_GT(moved, 0.1); // rope itself is not the identity at positions 7..9
  }
}

TEST_F(VJPInterpreterOps, LRSchedule) {
  llama::ModelOp m = load(R"mlir(
  func.func @lr(%s: tensor<i64>, %peak: tensor<f32>, %total: tensor<i64>) -> tensor<f32> {
    %r = llama.lr_schedule %s, %peak, %total warmup 10 floor 1.0e-01
    return %r : tensor<f32>
  }
)mlir");
  ASSERT_TRUE(m);
  Interpreter interp(m, Precision::F64, 0);
  auto lr = [&](int64_t step) {
    std::vector<Tensor> out;
    std::string error;
    EXPECT_TRUE(interp.run("lr", {i64(step), f32(2.0), i64(110)}, out, &error)) << error;
    EXPECT_EQ(out.at(0).rank(), 0);
    return out.at(0)[0];
  };
  EXPECT_NEAR(lr(0), 2.0 * 1 / 10, 1e-15);  // warm-up counts the step from 1
  EXPECT_NEAR(lr(4), 2.0 * 5 / 10, 1e-15);  // mid warm-up
  EXPECT_NEAR(lr(10), 2.0, 1e-15);          // the peak: p = 0
  // The middle of the cosine: p = 50 / 100, cos(pi / 2) = 0 -> floor + (1 - floor) / 2.
  EXPECT_NEAR(lr(60), 2.0 * (0.1 + 0.9 * 0.5), 1e-12);
  // A quarter in: (1 + cos(pi / 4)) / 2.
  EXPECT_NEAR(lr(35), 2.0 * (0.1 + 0.9 * (1 + std::sqrt(0.5)) / 2), 1e-12);
  EXPECT_NEAR(lr(110), 2.0 * 0.1, 1e-12); // the end
  EXPECT_NEAR(lr(500), 2.0 * 0.1, 1e-12); // and the floor after it
  // No warm-up and total == warmup: the denominator is max(1, 0), so step 0 is the peak
  // and step 1 already the floor.
  EXPECT_NEAR(ref::lrSchedule(0, 1.0, 0, 0, 0.25), 1.0, 1e-15);
  EXPECT_NEAR(ref::lrSchedule(1, 1.0, 0, 0, 0.25), 0.25, 1e-15);
}

TEST_F(VJPInterpreterOps, AdamW) {
  llama::ModelOp m = load(R"mlir(
  func.func @step(%p: tensor<2xf32>, %g: tensor<2xf32>, %m: tensor<2xf32>, %v: tensor<2xf32>,
                  %lr: tensor<f32>, %s: tensor<i64>, %c: tensor<f32>)
      -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>,
          tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {
    %p0, %m0, %v0 = llama.adamw %p, %g, %m, %v lr %lr step %s grad_scale %c beta1 0.9
        beta2 0.95 eps 1.0e-08 weight_decay 0.0 : tensor<2xf32>
    %p1, %m1, %v1 = llama.adamw %p, %g, %m, %v lr %lr step %s grad_scale %c beta1 0.9
        beta2 0.95 eps 1.0e-08 weight_decay 0.1 : tensor<2xf32>
    return %p0, %m0, %v0, %p1, %m1, %v1
        : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>
  }
)mlir");
  ASSERT_TRUE(m);
  Interpreter interp(m, Precision::F64, 0);
  std::vector<Tensor> out;
  std::string error;
  Tensor p = make({2}, {1.0, -2.0}), g = make({2}, {0.5, -0.1}), zero = make({2}, {0, 0});
  // Step 0 from zero moments: bias correction makes m_hat = g and v_hat = g^2, so the
  // update is g / (|g| + eps), about sign(g). grad_scale 2 doubles g first.
  ASSERT_TRUE(interp.run("step", {p, g, zero, zero, f32(0.1), i64(0), f32(2.0)}, out, &error))
      << error;
  ASSERT_EQ(out.size(), 6u);
  // g = [1, -0.2]; m' = 0.1 g; v' = 0.05 g^2.
  EXPECT_NEAR(out[1][0], 0.1, 1e-15);
  EXPECT_NEAR(out[1][1], -0.02, 1e-15);
  EXPECT_NEAR(out[2][0], 0.05, 1e-15);
  EXPECT_NEAR(out[2][1], 0.05 * 0.04, 1e-15);
  EXPECT_NEAR(out[0][0], 1.0 - 0.1 * 1.0 / (1.0 + 1e-8), 1e-14);
  EXPECT_NEAR(out[0][1], -2.0 + 0.1 * 0.2 / (0.2 + 1e-8), 1e-14);
  // Decoupled weight decay: lr * wd * param on top, the moments unchanged.
  EXPECT_NEAR(out[3][0], 1.0 - 0.1 * (1.0 / (1.0 + 1e-8) + 0.1 * 1.0), 1e-14);
  EXPECT_NEAR(out[3][1], -2.0 - 0.1 * (-0.2 / (0.2 + 1e-8) + 0.1 * -2.0), 1e-14);
  EXPECT_EQ(out[4].data, out[1].data);
  EXPECT_EQ(out[5].data, out[2].data);

  // Step 2 (t = 3) from non-zero moments, element 0 only by hand:
  // g = 1; m' = 0.9 * 0.2 + 0.1 = 0.28; v' = 0.95 * 0.3 + 0.05 = 0.335;
  // m_hat = 0.28 / (1 - 0.729) ; v_hat = 0.335 / (1 - 0.857375).
  Tensor m0 = make({2}, {0.2, 0.0}), v0 = make({2}, {0.3, 1.0});
  ASSERT_TRUE(interp.run("step", {p, g, m0, v0, f32(0.01), i64(2), f32(2.0)}, out, &error))
      << error;
  double mHat = 0.28 / 0.271, vHat = 0.335 / 0.142625;
  EXPECT_NEAR(out[1][0], 0.28, 1e-15);
  EXPECT_NEAR(out[2][0], 0.335, 1e-15);
  EXPECT_NEAR(out[0][0], 1.0 - 0.01 * mHat / (std::sqrt(vHat) + 1e-8), 1e-14);
  EXPECT_NEAR(out[3][0], 1.0 - 0.01 * (mHat / (std::sqrt(vHat) + 1e-8) + 0.1), 1e-14);
}

TEST_F(VJPInterpreterOps, GradClip) {
  llama::ModelOp m = load(R"mlir(
  func.func @clip(%a: tensor<2xf32>, %b: tensor<1x1xf32>, %n: tensor<f32>)
      -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>) {
    %c1, %n1 = llama.grad_clip %a, %b count %n max_norm 1.0 : tensor<2xf32>, tensor<1x1xf32>
    %c5, %n5 = llama.grad_clip %a, %b count %n max_norm 5.0 : tensor<2xf32>, tensor<1x1xf32>
    return %c1, %n1, %c5, %n5 : tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>
  }
)mlir");
  ASSERT_TRUE(m);
  Interpreter interp(m, Precision::F64, 0);
  std::vector<Tensor> out;
  std::string error;
  // Summed over 2 micro-batches: the averages are [1.5, 0] and [2], norm 2.5.
  ASSERT_TRUE(interp.run("clip", {make({2}, {3, 0}), make({1, 1}, {-4}), f32(2)}, out, &error))
      << error;
  ASSERT_EQ(out.size(), 4u);
  EXPECT_NEAR(out[1][0], 2.5, 1e-15);
  EXPECT_NEAR(out[3][0], 2.5, 1e-15);
  // Over max_norm 1: scale to norm 1, and average: (1 / 2.500001) / 2.
  EXPECT_NEAR(out[0][0], 1.0 / (2.5 + 1e-6) / 2, 1e-15);
  // Under max_norm 5: no clipping, only the average.
  EXPECT_NEAR(out[2][0], 0.5, 1e-15);
}

TEST_F(VJPInterpreterOps, SetParamThenGetParam) {
  llama::ModelOp m = load(R"mlir(
  llama.param @w : tensor<3xf32> init ones
  llama.param @adamw.m.w : tensor<3xf32> init zeros state
  func.func @step(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
    %before = llama.get_param @w : tensor<3xf32>
    %m = llama.get_param @adamw.m.w : tensor<3xf32>
    llama.set_param @w = %x : tensor<3xf32>
    %m1 = llama.add %m, %x : tensor<3xf32>
    llama.set_param @adamw.m.w = %m1 : tensor<3xf32>
    %after = llama.get_param @w : tensor<3xf32>
    return %before, %after, %m : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
  }
)mlir");
  ASSERT_TRUE(m);
  Tensor x = make({3}, {0.1, -2.0, 3.0});
  {
    Interpreter interp(m, Precision::F64, 0);
    std::vector<Tensor> out;
    std::string error;
    ASSERT_TRUE(interp.run("step", {x}, out, &error)) << error;
    EXPECT_EQ(out[0].data, std::vector<double>(3, 1.0));
    EXPECT_EQ(out[1].data, x.data);
    EXPECT_EQ(out[2].data, std::vector<double>(3, 0.0)); // state starts at its init, zeros
    EXPECT_EQ(interp.parameter("w")->data, x.data);
    // The writes persist into the next run: the state accumulates.
    ASSERT_TRUE(interp.run("step", {x}, out, &error)) << error;
    EXPECT_EQ(out[0].data, x.data);
    EXPECT_EQ(out[2].data, x.data);
    EXPECT_EQ(interp.parameter("adamw.m.w")->data,
              (std::vector<double>{0.2, -4.0, 6.0}));
  }
  {
    // In f32 precision the stored value is rounded to the declared type.
    Interpreter interp(m, Precision::F32, 0);
    std::vector<Tensor> out;
    std::string error;
    ASSERT_TRUE(interp.run("step", {x}, out, &error)) << error;
    EXPECT_EQ(out[1][0], double(0.1f));
    EXPECT_EQ(interp.parameter("w")->data[0], double(0.1f));
    EXPECT_EQ(interp.parameter("w")->dtype, DType::F32);
  }
}

TEST_F(VJPInterpreterOps, BackwardOpsRunInF32) {
  // The backward ops round like every other op in f32 precision.
  llama::ModelOp m = load(R"mlir(
  func.func @g(%l: tensor<2x3xf32>, %t: tensor<2xi32>, %d: tensor<f32>) -> tensor<2x3xf32> {
    %r = llama.cross_entropy_grad %l, %t, %d : tensor<2x3xf32>, tensor<2xi32>
    return %r : tensor<2x3xf32>
  }
)mlir");
  ASSERT_TRUE(m);
  Interpreter interp(m, Precision::F32, 0);
  std::vector<Tensor> out;
  std::string error;
  ASSERT_FALSE(
      interp.run("g", {make({2, 3}, {0, 0, 0, 1, 2, 3}), ids({2}, {1, 5}), f32(1.0)}, out,
                 &error));
  EXPECT_NE(error.find("target 5 at flat index 1"), std::string::npos) << error;
  EXPECT_NE(error.find("llama.cross_entropy_grad"), std::string::npos) << error;
  ASSERT_TRUE(interp.run("g", {make({2, 3}, {0, 0, 0, 1, 2, 3}), ids({2}, {1, -1}), f32(0.3)},
                         out, &error))
      << error;
  // One counted row: grad (rounded to f32 on input) * (1/3 - onehot), rounded again.
  double grad = double(0.3f);
  EXPECT_EQ(out[0][0], double(float(grad * (1.0 / 3))));
  EXPECT_EQ(out[0][1], double(float(grad * (1.0 / 3 - 1))));
  EXPECT_EQ(out[0][3], 0.0);
}

//===--- kernel-level cases -----------------------------------------------------------===//

TEST(KernelsGrad, EmbeddingGradScatterAddsRepeatedTokens) {
  // Token 2 appears three times, token 0 once, tokens 1 and 3 never.
  Tensor tokens = ids({2, 2}, {2, 0, 2, 2});
  Tensor grad = make({2, 2, 2}, {1, 10, 2, 20, 3, 30, 4, 40});
  Tensor out;
  std::string error;
  ASSERT_TRUE(ref::embeddingGrad(tokens, grad, 4, out, &error)) << error;
  EXPECT_EQ(out.shape, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(out.data, (std::vector<double>{2, 20, 0, 0, 1 + 3 + 4, 10 + 30 + 40, 0, 0}));
  EXPECT_FALSE(ref::embeddingGrad(ids({2}, {0, 4}), make({2, 1}, {1, 1}), 4, out, &error));
  EXPECT_NE(error.find("token id 4 at flat index 1"), std::string::npos) << error;
}

TEST(KernelsGrad, CrossEntropyGradIgnoredRowsAreZero) {
  Tensor logits = make({3, 2}, {0, 0, 5, -1, std::log(3.0), 0});
  Tensor out;
  std::string error;
  ASSERT_TRUE(ref::crossEntropyGrad(logits, ids({3}, {0, -1, 1}), 2.0, -1, out, &error))
      << error;
  // Two counted rows: factor 2 / 2 = 1. Row 0: [1/2 - 1, 1/2]; row 2: [3/4, 1/4 - 1].
  EXPECT_NEAR(out[0], -0.5, 1e-15);
  EXPECT_NEAR(out[1], 0.5, 1e-15);
  EXPECT_EQ(out[2], 0.0);
  EXPECT_EQ(out[3], 0.0);
  EXPECT_NEAR(out[4], 0.75, 1e-15);
  EXPECT_NEAR(out[5], -0.75, 1e-15);
  // Every row ignored: all zeros, no division by zero.
  ASSERT_TRUE(ref::crossEntropyGrad(logits, ids({3}, {7, 7, 7}), 1.0, 7, out, &error));
  EXPECT_EQ(out.data, std::vector<double>(6, 0.0));
  // An out-of-range target is an error, as in the forward kernel.
  EXPECT_FALSE(ref::crossEntropyGrad(logits, ids({3}, {0, -2, 1}), 1.0, -1, out, &error));
  EXPECT_NE(error.find("target -2 at flat index 1"), std::string::npos) << error;
}

TEST(KernelsGrad, PadAndSliceAreAdjoint) {
  Tensor x = make({2, 2}, {1, 2, 3, 4});
  Tensor p = ref::pad(x, 1, 1, 2);
  EXPECT_EQ(p.shape, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(p.data, (std::vector<double>{0, 1, 2, 0, 0, 0, 3, 4, 0, 0}));
  EXPECT_EQ(ref::pad(x, 0, 0, 1).data, (std::vector<double>{1, 2, 3, 4, 0, 0}));
  EXPECT_EQ(ref::slice(p, 1, 1, 2).data, x.data);
}

TEST(KernelsGrad, AttentionGradRowsWithoutKeysAreZero) {
  // 3 queries on 1 key, causal: queries 0 and 1 see nothing.
  Tensor q = randomLike({1, 3, 1, 2}, 5, "q"), k = randomLike({1, 1, 1, 2}, 5, "k");
  Tensor v = randomLike({1, 1, 1, 2}, 5, "v"), g = randomLike({1, 3, 1, 2}, 5, "g");
  ref::AttentionGrads d = ref::attentionGrad(q, k, v, g, true, 0, 0.7);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(d.query[i], 0.0);
  // Query 2 sees one key: its softmax is constant 1, so dq = dk = 0 and dv = g[2].
  EXPECT_NEAR(d.query[4], 0.0, 1e-15);
  EXPECT_NEAR(d.key[0], 0.0, 1e-15);
  EXPECT_NEAR(d.value[0], g[4], 1e-15);
  EXPECT_NEAR(d.value[1], g[5], 1e-15);
}

TEST(KernelsGrad, RMSNormGradOfAConstantRow) {
  // x = [2, 2], w = [1, 3], eps 0: r = 1/2; g = grad * w = [1, 3] for grad = [1, 1];
  // mean(g x) = 4; dx = r (g - x r^2 4) = 0.5 ([1, 3] - [2, 2]) = [-0.5, 0.5];
  // dw = grad x r = [1, 1].
  ref::RMSNormGrads d = ref::rmsNormGrad(make({1, 2}, {2, 2}), make({2}, {1, 3}),
                                         make({1, 2}, {1, 1}), 0.0);
  EXPECT_NEAR(d.input[0], -0.5, 1e-15);
  EXPECT_NEAR(d.input[1], 0.5, 1e-15);
  EXPECT_NEAR(d.weight[0], 1.0, 1e-15);
  EXPECT_NEAR(d.weight[1], 1.0, 1e-15);
}

TEST(KernelsGrad, LinearWeightGradSumsOuterProducts) {
  // Rows r: grad [1, 2] and [3, 4], inputs [5] and [6]: dW = [[1*5 + 3*6], [2*5 + 4*6]].
  Tensor d = ref::linearWeightGrad(make({2, 1, 2}, {1, 2, 3, 4}), make({2, 1, 1}, {5, 6}));
  EXPECT_EQ(d.shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(d.data, (std::vector<double>{23, 34}));
}

} // namespace

