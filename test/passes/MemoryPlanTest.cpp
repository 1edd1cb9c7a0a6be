//===- MemoryPlanTest.cpp - the static memory plan of the training step -------------===//
//
// llamac-memory-plan on the training functions of the tiny model and stories15M: the plan
// is sound (no two buffers live at once share bytes), its live intervals agree with a
// liveness computed here independently (a backward scan, the textbook dataflow, where the
// plan reads last uses forwards), and the arena lies between what must be live at once and
// what no reuse would take. The numbers are printed.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "dialects/llama/LlamaOps.h"
#include "passes/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

using namespace llamac;

namespace {

class MemoryPlanTest : public ::testing::Test {
protected:
  MemoryPlanTest() {
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

  /// models/<name>.mlir after `pipeline` (none when empty).
  mlir::OwningOpRef<mlir::ModuleOp> compile(const std::string &name, const std::string &pipeline) {
    auto m = mlir::parseSourceFile<mlir::ModuleOp>(
        std::string(LLAMAC_SOURCE_DIR) + "/models/" + name + ".mlir", &ctx);
    EXPECT_TRUE(m);
    if (!m || pipeline.empty())
      return m;
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

bool isView(mlir::Operation *op) { return llamac::isView(op); }

/// The numbers of one function's plan, and what the checks below measured independently.
struct Numbers {
  size_t buffers = 0;
  int64_t sum = 0, alignedSum = 0, peak = 0, largest = 0, maxLive = 0;
};

/// Checks `plan` of `fn` against an independent liveness and the bounds every sound plan
/// obeys; returns the numbers.
Numbers checkPlan(mlir::func::FuncOp fn, const MemoryPlan &plan) {
  Numbers n;
  std::string why;
  EXPECT_TRUE(verifyPlan(plan, &why)) << why;

  llvm::DenseMap<mlir::Value, size_t> index;
  for (auto [i, b] : llvm::enumerate(plan.buffers))
    index[b.value] = i;

  // Which values are buffers, read off the ops: every tensor result at the top level,
  // except parameter reads and reshapes.
  mlir::Block &block = fn.getBody().front();
  std::vector<mlir::Operation *> ops;
  size_t expected = 0;
  for (mlir::Operation &op : block) {
    ops.push_back(&op);
    if (mlir::isa<llama::GetParamOp>(op) || isView(&op))
      continue;
    for (mlir::Value r : op.getResults())
      if (mlir::isa<mlir::RankedTensorType>(r.getType())) {
        ++expected;
        EXPECT_TRUE(index.count(r))
            << "no buffer for a result of " << op.getName().getStringRef().str();
      }
  }
  EXPECT_EQ(plan.buffers.size(), expected);

  // The buffer a value's storage is, through any chain of views; -1 for none.
  auto bufferOf = [&](mlir::Value v) -> int64_t {
    while (mlir::Operation *def = v.getDefiningOp()) {
      if (!isView(def))
        break;
      v = def->getOperand(0);
    }
    auto it = index.find(v);
    return it == index.end() ? -1 : int64_t(it->second);
  };

  // Backward scan: what is live after op t, plus what op t reads (at any depth of its
  // regions) and writes, is live during op t.
  std::vector<int64_t> first(plan.buffers.size(), -1), last(plan.buffers.size(), -1);
  llvm::DenseSet<int64_t> live;
  for (int64_t t = int64_t(ops.size()) - 1; t >= 0; --t) {
    ops[t]->walk([&](mlir::Operation *nested) {
      for (mlir::Value operand : nested->getOperands())
        if (int64_t b = bufferOf(operand); b >= 0)
          live.insert(b);
    });
    for (mlir::Value r : ops[t]->getResults())
      if (auto it = index.find(r); it != index.end())
        live.insert(int64_t(it->second));
    int64_t bytes = 0;
    for (int64_t b : live) {
      bytes += plan.buffers[b].size;
      first[b] = t;
      if (last[b] < 0)
        last[b] = t;
    }
    n.maxLive = std::max(n.maxLive, bytes);
    for (mlir::Value r : ops[t]->getResults())
      if (auto it = index.find(r); it != index.end())
        live.erase(int64_t(it->second));
  }
  EXPECT_TRUE(live.empty());

  for (auto [i, b] : llvm::enumerate(plan.buffers)) {
    EXPECT_EQ(b.start, first[i]) << "buffer " << i;
    EXPECT_EQ(b.end, last[i]) << "buffer " << i;
    n.sum += b.size;
    n.alignedSum += llvm::alignTo(b.size, kArenaAlignment);
    n.largest = std::max(n.largest, b.size);
    n.peak = std::max(n.peak, b.offset + b.size);
  }
  n.buffers = plan.buffers.size();
  EXPECT_EQ(n.peak, plan.arenaBytes);
  EXPECT_EQ(n.sum, plan.buffersBytes);
  EXPECT_LE(plan.arenaBytes, n.alignedSum); // placing every buffer side by side fits
  EXPECT_LE(plan.arenaBytes, plan.buffersBytes);
  EXPECT_GE(plan.arenaBytes, n.largest);
  EXPECT_GE(plan.arenaBytes, n.maxLive);
  return n;
}

void print(const char *model, const char *fn, const Numbers &n) {
  std::printf("%-10s @%-12s %5zu buffers  sum %12lld  arena %12lld  max live %12lld  "
              "largest %11lld  reuse %.2fx\n",
              model, fn, n.buffers, (long long)n.sum, (long long)n.peak, (long long)n.maxLive,
              (long long)n.largest, double(n.sum) / double(n.peak));
}

TEST_F(MemoryPlanTest, PlacesBuffersGreedilyBySize) {
  // Without IR: sizes and intervals given. The 300-byte buffer is placed first (at 0); the
  // two 100-byte ones, live together, go after it where they overlap it and at 0 where
  // they do not; the 1-byte one fills the aligned gap at 128 between them.
  MemoryPlan plan;
  plan.buffers = {{{}, 100, 0, 1, -1}, {{}, 100, 1, 2, -1}, {{}, 300, 2, 3, -1},
                  {{}, 1, 1, 1, -1}};
  assignOffsets(plan);
  EXPECT_EQ(plan.buffers[2].offset, 0);
  EXPECT_EQ(plan.buffers[0].offset, 0);   // not live with the 300 bytes
  EXPECT_EQ(plan.buffers[1].offset, 320); // live with both: above 300, aligned
  EXPECT_EQ(plan.buffers[3].offset, 128); // live with 0 (0..100) and 1 (320..420)
  EXPECT_EQ(plan.arenaBytes, 420);
  EXPECT_EQ(plan.buffersBytes, 501);
  EXPECT_TRUE(verifyPlan(plan));

  // A plan that puts two live buffers on the same bytes is rejected, with the reason.
  plan.buffers[1].offset = 256;
  std::string why;
  EXPECT_FALSE(verifyPlan(plan, &why));
  EXPECT_EQ(why, "buffers 1 and 2 are live together and overlap in memory");
}

TEST_F(MemoryPlanTest, TrainingStepOfTheTinyModel) {
  auto m = compile("tiny", "llamac-training{batch=2 seq=16}");
  for (const char *name : {"train_grad", "train_update"}) {
    SCOPED_TRACE(name);
    mlir::func::FuncOp fn = model(*m).lookupFunction(name);
    ASSERT_TRUE(fn);
    mlir::FailureOr<MemoryPlan> plan = planFunction(fn);
    ASSERT_TRUE(mlir::succeeded(plan));
    Numbers n = checkPlan(fn, *plan);
    print("tiny", name, n);
    EXPECT_GT(n.buffers, 0u);
  }
}

TEST_F(MemoryPlanTest, TrainingStepOfStories15M) {
  auto m = compile("stories15m", "llamac-training{batch=8 seq=256}");
  for (const char *name : {"train_grad", "train_update"}) {
    SCOPED_TRACE(name);
    mlir::func::FuncOp fn = model(*m).lookupFunction(name);
    ASSERT_TRUE(fn);
    mlir::FailureOr<MemoryPlan> plan = planFunction(fn);
    ASSERT_TRUE(mlir::succeeded(plan));
    Numbers n = checkPlan(fn, *plan);
    print("stories15m", name, n);
    // The backward frees the forward's activations as it consumes them: reuse must pay
    // (2.09x at the time of writing; the peak is the logits and their gradient).
    if (std::string(name) == "train_grad")
      EXPECT_LT(3 * n.peak, 2 * n.sum);
  }
}

TEST_F(MemoryPlanTest, PassWritesThePlan) {
  auto m = compile("tiny", "llamac-training{batch=2 seq=16},llamac-memory-plan");
  for (const char *name : {"train_grad", "train_update", "loss_grad", "forward"}) {
    SCOPED_TRACE(name);
    mlir::func::FuncOp fn = model(*m).lookupFunction(name);
    ASSERT_TRUE(fn);
    mlir::FailureOr<MemoryPlan> plan = planFunction(fn);
    ASSERT_TRUE(mlir::succeeded(plan));
    auto arena = fn->getAttrOfType<mlir::IntegerAttr>("llama.arena_bytes");
    auto buffers = fn->getAttrOfType<mlir::IntegerAttr>("llama.buffers_bytes");
    ASSERT_TRUE(arena && buffers);
    EXPECT_EQ(arena.getInt(), plan->arenaBytes);
    EXPECT_EQ(buffers.getInt(), plan->buffersBytes);
    for (const PlannedBuffer &b : plan->buffers) {
      auto result = mlir::cast<mlir::OpResult>(b.value);
      auto offsets = result.getOwner()->getAttrOfType<mlir::ArrayAttr>("llama.offsets");
      ASSERT_TRUE(offsets);
      ASSERT_EQ(offsets.size(), result.getOwner()->getNumResults());
      EXPECT_EQ(mlir::cast<mlir::IntegerAttr>(offsets[result.getResultNumber()]).getInt(),
                b.offset);
    }
  }
}

TEST_F(MemoryPlanTest, DynamicShapesAreAnError) {
  auto m = compile("tiny", ""); // as declared: batch and sequence are dynamic
  mlir::func::FuncOp fn = model(*m).lookupFunction("forward");
  ASSERT_TRUE(fn);
  std::string message;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    message = d.str();
    return mlir::success();
  });
  EXPECT_TRUE(mlir::failed(planFunction(fn)));
  EXPECT_NE(message.find("llamac-memory-plan needs static shapes; run llamac-frontend first"),
            std::string::npos)
      << message;
}

} // namespace
