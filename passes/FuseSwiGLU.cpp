//===- FuseSwiGLU.cpp - llamac-fuse-swiglu -----------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSESWIGLU
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct FuseSwiGLUPass : llamac::impl::LlamaFuseSwiGLUBase<FuseSwiGLUPass> {
  using LlamaFuseSwiGLUBase::LlamaFuseSwiGLUBase;

  void runOnOperation() override {
    int64_t count = 0;
    SmallVector<MulOp> muls;
    getOperation().walk([&](MulOp m) { muls.push_back(m); });
    for (MulOp mul : muls)
      count += fuse(mul);
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }

  /// mul(silu(linear(x, w1)), linear(x, w3)), in either operand order.
  bool fuse(MulOp mul) {
    for (int gateSide = 0; gateSide < 2; ++gateSide) {
      auto silu = singleUseDef<SiLUOp>(mul->getOperand(gateSide));
      if (!silu)
        continue;
      auto gate = singleUseDef<LinearOp>(silu.getInput());
      auto up = singleUseDef<LinearOp>(mul->getOperand(1 - gateSide));
      if (!gate || !up || gate.getInput() != up.getInput() ||
          gate.getWeight().getType() != up.getWeight().getType())
        continue;
      OpBuilder b(mul);
      Location loc = b.getFusedLoc({gate.getLoc(), up.getLoc(), silu.getLoc(), mul.getLoc()});
      Value w13 = ConcatOp::create(b, loc, ValueRange{gate.getWeight(), up.getWeight()},
                                   b.getI64IntegerAttr(0));
      Value gu = LinearOp::create(b, loc, gate.getInput(), w13);
      Value out = SwiGLUOp::create(b, mul.getLoc(), gu);
      mul.getResult().replaceAllUsesWith(out);
      mul.erase();
      silu.erase();
      gate.erase();
      up.erase();
      return true;
    }
    return false;
  }
};

} // namespace
