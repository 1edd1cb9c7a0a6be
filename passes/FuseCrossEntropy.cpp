//===- FuseCrossEntropy.cpp - llamac-fuse-cross-entropy ----------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSECROSSENTROPY
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct FuseCrossEntropyPass : llamac::impl::LlamaFuseCrossEntropyBase<FuseCrossEntropyPass> {
  using LlamaFuseCrossEntropyBase::LlamaFuseCrossEntropyBase;

  void runOnOperation() override {
    if (chunk <= 0) {
      getOperation().emitError() << "llamac-fuse-cross-entropy: chunk must be positive, got "
                                 << static_cast<int64_t>(chunk);
      return signalPassFailure();
    }
    int64_t count = 0;
    SmallVector<CrossEntropyOp> ces;
    getOperation().walk([&](CrossEntropyOp c) { ces.push_back(c); });
    for (CrossEntropyOp ce : ces) {
      OpBuilder b(ce);
      auto fused = FusedCrossEntropyOp::create(b, ce.getLoc(), ce.getLogits(), ce.getTargets(),
                                               ce.getIgnoreIndexAttr(),
                                               b.getI64IntegerAttr(chunk));
      ce.getResult().replaceAllUsesWith(fused.getLoss());
      ce.erase();
      ++count;
    }
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }
};

} // namespace
