//===- TrainingTest.cpp - the derived training program, run in the interpreter ------===//
//
// Whole-model checks of llamac-autodiff, llamac-remat and llamac-train-step on the tiny
// model: gradients against central finite differences of the loss, every remat policy
// against none, and training on one repeated batch until the loss collapses.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"
#include "runtime/interpreter/Equivalence.h"
#include "runtime/interpreter/Interpreter.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

using namespace llamac;

namespace {

class Training : public ::testing::Test {
protected:
  Training() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    static bool registered = [] {
      mlir::registerTransformsPasses();
      registerLlamacPassesAndPipelines();
      return true;
    }();
    (void)registered;
  }

  /// models/<name>.mlir after `pipeline`.
  mlir::OwningOpRef<mlir::ModuleOp> compile(const std::string &name, const std::string &pipeline) {
    auto m = mlir::parseSourceFile<mlir::ModuleOp>(
        std::string(LLAMAC_SOURCE_DIR) + "/models/" + name + ".mlir", &ctx);
    EXPECT_TRUE(m);
    mlir::PassManager pm(&ctx, mlir::ModuleOp::getOperationName());
    std::string err;
    llvm::raw_string_ostream os(err);
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, os))) << err;
    EXPECT_TRUE(mlir::succeeded(pm.run(*m)));
    return m;
  }
  static llama::ModelOp model(mlir::ModuleOp m) { return *m.getOps<llama::ModelOp>().begin(); }

  mlir::MLIRContext ctx;
};

const char *kGrad = "llamac-frontend{batch=1 seq=6},inline,llamac-autodiff";

TEST_F(Training, WholeModelGradientMatchesFiniteDifferences) {
  auto m = compile("tiny", kGrad);
  llama::ModelOp tiny = model(*m);
  auto fn = tiny.lookupFunction("loss_grad");
  ASSERT_TRUE(fn);
  auto names = fn->getAttrOfType<mlir::ArrayAttr>("llama.grads");
  ASSERT_EQ(names.size(), 21u); // every parameter of the tiny model
  std::vector<Tensor> inputs = randomInputs(fn, 512, 1, 6, 5);
  Interpreter interp(tiny, Precision::F64, 11);
  std::vector<Tensor> out;
  std::string error;
  ASSERT_TRUE(interp.run("loss_grad", inputs, out, &error)) << error;

  // Three elements of every parameter: the largest-gradient one and two others.
  const double h = 1e-5;
  int checked = 0;
  for (size_t p = 0; p < names.size(); ++p) {
    std::string name = mlir::cast<mlir::FlatSymbolRefAttr>(names[p]).getValue().str();
    const Tensor &grad = out[p + 1];
    int64_t n = grad.numElements(), top = 0;
    for (int64_t i = 1; i < n; ++i)
      if (std::abs(grad[i]) > std::abs(grad[top]))
        top = i;
    for (int64_t i : {top, n / 3, (2 * n) / 3 + 1}) {
      Tensor base = *interp.parameter(name), plus = base, minus = base;
      plus[i] += h;
      minus[i] -= h;
      std::vector<Tensor> lp, lm, unused;
      ASSERT_TRUE(interp.setParameter(name, plus, &error)) << error;
      ASSERT_TRUE(interp.run("loss", inputs, lp, &error)) << error;
      ASSERT_TRUE(interp.setParameter(name, minus, &error)) << error;
      ASSERT_TRUE(interp.run("loss", inputs, lm, &error)) << error;
      ASSERT_TRUE(interp.setParameter(name, base, &error)) << error;
      double fd = (lp[0][0] - lm[0][0]) / (2 * h);
      EXPECT_NEAR(grad[i], fd, 1e-6 + 1e-4 * std::abs(fd)) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 63);
}

TEST_F(Training, EveryRematPolicyGivesTheSameGradients) {
  auto reference = compile("tiny", std::string(kGrad) + ",llamac-remat{policy=none}");
  for (const char *policy : {"selective", "full"}) {
    SCOPED_TRACE(policy);
    auto m = compile("tiny", std::string(kGrad) + ",llamac-remat{policy=" + policy + "}");
    EquivalenceOptions options;
    options.batch = 1;
    options.seq = 6;
    options.function = "loss_grad";
    std::vector<OutputDifference> diffs;
    std::string error;
    ASSERT_TRUE(compareModels(model(*reference), model(*m), options, diffs, &error)) << error;
    ASSERT_EQ(diffs.size(), 22u); // the loss and 21 gradients
    for (const OutputDifference &d : diffs)
      EXPECT_EQ(d.maxAbs, 0.0) << "result " << d.index; // the same ops, recomputed
  }
}

TEST_F(Training, OverfitsOneRepeatedBatch) {
  auto m = compile("tiny", "llamac-training{batch=2 seq=16 warmup=10}");
  llama::ModelOp tiny = model(*m);
  ASSERT_TRUE(tiny.lookupFunction("train_grad") && tiny.lookupFunction("train_update"));
  Interpreter interp(tiny, Precision::F32, 1);
  std::vector<Tensor> batch = randomInputs(tiny.lookupFunction("train_grad"), 512, 2, 16, 3);
  std::string error;
  double first = 0, last = 0, lastNorm = 0;
  const int steps = 60;
  for (int step = 0; step < steps; ++step) {
    std::vector<Tensor> loss, update;
    ASSERT_TRUE(interp.run("train_grad", batch, loss, &error)) << error;
    std::vector<Tensor> args = {Tensor(DType::I64, {}, double(step)),
                                Tensor(DType::F32, {}, 1e-2),
                                Tensor(DType::I64, {}, double(steps)),
                                Tensor(DType::F32, {}, 1.0)};
    ASSERT_TRUE(interp.run("train_update", args, update, &error)) << error;
    if (step == 0)
      first = loss[0][0];
    last = loss[0][0];
    lastNorm = update[1][0];
    ASSERT_TRUE(std::isfinite(last)) << "step " << step;
  }
  std::printf("tiny, one batch of 2x16 tokens, %d steps: loss %.4f -> %.4f\n", steps, first,
              last);
  EXPECT_NEAR(first, std::log(512.0), 0.2);
  EXPECT_LT(last, first / 10) << "loss " << first << " -> " << last;
  EXPECT_TRUE(std::isfinite(lastNorm));
  // The optimizer state moved and the accumulators were cleared.
  const Tensor *m1 = interp.parameter("adamw.m.output");
  const Tensor *acc = interp.parameter("grad.output");
  ASSERT_TRUE(m1 && acc);
  double mnorm = 0, anorm = 0;
  for (int64_t i = 0; i < m1->numElements(); ++i) {
    mnorm += std::abs((*m1)[i]);
    anorm += std::abs((*acc)[i]);
  }
  EXPECT_GT(mnorm, 0.0);
  EXPECT_EQ(anorm, 0.0);
}

// Fusion preserves the numbers of the derived training program: the gradient function
// with every fusion, and with each one alone, against none, in f64. Relative tolerance
// 1e-10: the fused kernels sum in a different order (tiles, chunks), nothing else.
TEST_F(Training, FusionPreservesLossAndGradients) {
  const char *fusions[] = {"fuse-swiglu", "fuse-qkv-rope", "fuse-add-rms-norm",
                           "fuse-attention", "fuse-cross-entropy"};
  auto off = [&](const std::string &except) {
    std::string o;
    for (const char *f : fusions)
      o += std::string(" ") + f + (except == f || except == "all" ? "=true" : "=false");
    return o;
  };
  for (const char *name : {"tiny", "stories15m"}) {
    std::string base = "llamac-training{batch=1 seq=8";
    auto reference = compile(name, base + off("") + "}");
    std::vector<std::string> variants = {"all"};
    if (std::string(name) == "tiny")
      variants.insert(variants.end(), std::begin(fusions), std::end(fusions));
    for (const std::string &v : variants) {
      SCOPED_TRACE(std::string(name) + " " + v);
      auto fused = compile(name, base + off(v) + "}");
      EquivalenceOptions options;
      options.batch = 1;
      options.seq = 8;
      options.function = "loss_grad";
      std::vector<OutputDifference> diffs;
      std::string error;
      ASSERT_TRUE(compareModels(model(*reference), model(*fused), options, diffs, &error))
          << error;
      ASSERT_EQ(diffs.size(), 1 + model(*reference).lookupFunction("loss_grad")
                                      ->getAttrOfType<mlir::ArrayAttr>("llama.grads")
                                      .size());
      for (const OutputDifference &d : diffs)
        EXPECT_LE(d.maxRel, 1e-10) << "result " << d.index;
    }
  }
}

// The whole training step, fused (all seven fusions, including multi-tensor AdamW and
// pointwise chains) and unfused, three optimizer steps of two micro-batches each, in f64:
// the losses, gradient norms and final parameters agree to 1e-9 relative.
TEST_F(Training, FusedTrainingStepsMatchUnfused) {
  const std::string base = "llamac-training{batch=2 seq=8 warmup=2";
  const std::string none = " fuse-swiglu=false fuse-qkv-rope=false fuse-add-rms-norm=false "
                           "fuse-attention=false fuse-cross-entropy=false fuse-adamw=false "
                           "fuse-elementwise=false}";
  // (stories15m's gradients are compared in FusionPreservesLossAndGradients; its optimizer
  // steps in the f64 interpreter would take a minute.)
  for (const char *name : {"tiny"}) {
    SCOPED_TRACE(name);
    auto plain = compile(name, base + none);
    auto fused = compile(name, base + "}");
    ASSERT_TRUE(plain && fused);
    int64_t vocab = model(*plain).getConfig().getVocabSize();
    Interpreter a(model(*plain), Precision::F64, 9), b(model(*fused), Precision::F64, 9);
    std::string error;
    for (int step = 0; step < 3; ++step) {
      for (int micro = 0; micro < 2; ++micro) {
        std::vector<Tensor> batch = randomInputs(model(*plain).lookupFunction("train_grad"),
                                                 vocab, 2, 8, uint64_t(10 * step + micro));
        std::vector<Tensor> la, lb;
        ASSERT_TRUE(a.run("train_grad", batch, la, &error)) << error;
        ASSERT_TRUE(b.run("train_grad", batch, lb, &error)) << error;
        EXPECT_NEAR(la[0][0], lb[0][0], 1e-9 * std::abs(la[0][0]));
      }
      std::vector<Tensor> args = {Tensor(DType::I64, {}, double(step)),
                                  Tensor(DType::F32, {}, 3e-3), Tensor(DType::I64, {}, 3.0),
                                  Tensor(DType::F32, {}, 2.0)};
      std::vector<Tensor> ua, ub;
      ASSERT_TRUE(a.run("train_update", args, ua, &error)) << error;
      ASSERT_TRUE(b.run("train_update", args, ub, &error)) << error;
      EXPECT_NEAR(ua[1][0], ub[1][0], 1e-9 * std::abs(ua[1][0])); // gradient norm
    }
    for (const ParamDecl &p : a.parameters()) {
      const Tensor *x = a.parameter(p.name), *y = b.parameter(p.name);
      ASSERT_TRUE(x && y) << p.name;
      double diff = 0, scale = 0;
      for (int64_t i = 0; i < x->numElements(); ++i) {
        diff = std::max(diff, std::abs((*x)[i] - (*y)[i]));
        scale = std::max(scale, std::abs((*x)[i]));
      }
      EXPECT_LE(diff, 1e-9 * std::max(scale, 1e-30)) << p.name;
    }
  }
}

} // namespace
