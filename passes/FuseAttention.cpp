//===- FuseAttention.cpp - llamac-fuse-attention -----------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct FuseAttentionPass : llamac::impl::LlamaFuseAttentionBase<FuseAttentionPass> {
  using LlamaFuseAttentionBase::LlamaFuseAttentionBase;

  void runOnOperation() override {
    if (blockQ <= 0 || blockK <= 0) {
      getOperation().emitError() << "llamac-fuse-attention: tiles must be positive, got "
                                 << static_cast<int64_t>(blockQ) << " x "
                                 << static_cast<int64_t>(blockK);
      return signalPassFailure();
    }
    int64_t count = 0;
    SmallVector<AttentionOp> attentions;
    getOperation().walk([&](AttentionOp a) { attentions.push_back(a); });
    for (AttentionOp a : attentions) {
      OpBuilder b(a);
      auto flash = FlashAttentionOp::create(
          b, a.getLoc(), a.getQuery(), a.getKey(), a.getValue(), a.getCausalAttr(),
          a.getWindowAttr(), a.getScaleAttr(), b.getI64IntegerAttr(blockQ),
          b.getI64IntegerAttr(blockK));
      a.getResult().replaceAllUsesWith(flash.getResult());
      a.erase();
      ++count;
    }
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }
};

} // namespace
