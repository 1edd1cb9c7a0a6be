//===- FuseAddRMSNorm.cpp - llamac-fuse-add-rms-norm -------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSEADDRMSNORM
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct FuseAddRMSNormPass : llamac::impl::LlamaFuseAddRMSNormBase<FuseAddRMSNormPass> {
  using LlamaFuseAddRMSNormBase::LlamaFuseAddRMSNormBase;

  void runOnOperation() override {
    int64_t count = 0;
    SmallVector<RMSNormOp> norms;
    getOperation().walk([&](RMSNormOp n) { norms.push_back(n); });
    for (RMSNormOp norm : norms)
      count += fuse(norm);
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }

  bool fuse(RMSNormOp norm) {
    auto add = norm.getInput().getDefiningOp<AddOp>();
    if (!add || add->getBlock() != norm->getBlock())
      return false;
    // The fused op replaces the add, so the norm's weight must be available there; a
    // parameter read (no operands) may move up to it.
    Value weight = norm.getWeight();
    Operation *wdef = weight.getDefiningOp();
    if (wdef && !wdef->isBeforeInBlock(add)) {
      if (!isa<GetParamOp>(wdef) || wdef->getBlock() != add->getBlock())
        return false;
      wdef->moveBefore(add);
    }
    OpBuilder b(add);
    auto fused = AddRMSNormOp::create(b, b.getFusedLoc({add.getLoc(), norm.getLoc()}),
                                      add.getLhs(), add.getRhs(), weight, norm.getEpsAttr());
    add.getResult().replaceAllUsesWith(fused.getSum());
    norm.getResult().replaceAllUsesWith(fused.getNormed());
    norm.erase();
    add.erase();
    return true;
  }
};

} // namespace
