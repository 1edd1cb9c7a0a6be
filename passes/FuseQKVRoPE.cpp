//===- FuseQKVRoPE.cpp - llamac-fuse-qkv-rope --------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSEQKVROPE
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

/// One arm of the pattern: [rope](split_dim(linear(x, w))), each single-use.
struct Arm {
  RoPEOp rope; // null for v
  SplitDimOp split;
  LinearOp proj;
};

std::optional<Arm> match(Value v, bool rotated) {
  Arm arm{};
  if (rotated) {
    arm.rope = singleUseDef<RoPEOp>(v);
    if (!arm.rope || arm.rope.getInverse())
      return std::nullopt;
    v = arm.rope.getInput();
  }
  arm.split = singleUseDef<SplitDimOp>(v);
  if (!arm.split || arm.split.getDim() != 2 || arm.split.getSizes().size() != 2)
    return std::nullopt;
  arm.proj = singleUseDef<LinearOp>(arm.split.getInput());
  if (!arm.proj || arm.proj.getInput().getType().getRank() != 3)
    return std::nullopt;
  return arm;
}

struct FuseQKVRoPEPass : llamac::impl::LlamaFuseQKVRoPEBase<FuseQKVRoPEPass> {
  using LlamaFuseQKVRoPEBase::LlamaFuseQKVRoPEBase;

  void runOnOperation() override {
    int64_t count = 0;
    SmallVector<Operation *> attentions;
    getOperation().walk([&](Operation *op) {
      if (isa<AttentionOp, FlashAttentionOp>(op))
        attentions.push_back(op);
    });
    for (Operation *attn : attentions)
      count += fuse(attn);
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }

  bool fuse(Operation *attn) {
    auto q = match(attn->getOperand(0), true), k = match(attn->getOperand(1), true),
         v = match(attn->getOperand(2), false);
    if (!q || !k || !v)
      return false;
    Value x = q->proj.getInput();
    if (k->proj.getInput() != x || v->proj.getInput() != x ||
        q->rope.getThetaAttr() != k->rope.getThetaAttr() ||
        q->rope.getOffset() != k->rope.getOffset())
      return false;
    int64_t heads = q->split.getSizes()[0], kvHeads = k->split.getSizes()[0];
    int64_t hd = q->split.getSizes()[1];
    if (k->split.getSizes()[1] != hd || v->split.getSizes()[0] != kvHeads ||
        v->split.getSizes()[1] != hd)
      return false;
    // The new projection goes where its last input is available: before the attention,
    // after every operand of the three projections (they precede their uses).
    OpBuilder b(attn);
    Location loc = b.getFusedLoc({q->proj.getLoc(), k->proj.getLoc(), v->proj.getLoc()});
    Value w = ConcatOp::create(
        b, loc, ValueRange{q->proj.getWeight(), k->proj.getWeight(), v->proj.getWeight()},
        b.getI64IntegerAttr(0));
    Value qkv = LinearOp::create(b, loc, x, w);
    auto fused = QKVRoPEOp::create(
        b, b.getFusedLoc({q->rope.getLoc(), k->rope.getLoc()}), q->rope.getType(),
        k->rope.getType(), k->rope.getType(), qkv, b.getI64IntegerAttr(heads), b.getI64IntegerAttr(kvHeads),
        q->rope.getThetaAttr(), q->rope.getOffset());
    attn->setOperand(0, fused.getQ());
    attn->setOperand(1, fused.getK());
    attn->setOperand(2, fused.getV());
    for (Arm *arm : {&*q, &*k, &*v}) {
      if (arm->rope)
        arm->rope.erase();
      arm->split.erase();
      arm->proj.erase();
    }
    return true;
  }
};

} // namespace
