//===- FuseElementwise.cpp - llamac-fuse-elementwise -------------------------------===//
//
// Greedy, from the last op back: a pointwise root absorbs the pointwise ops that feed it
// (same type, no other user), transitively; a group of two or more becomes one
// llama.fused_elementwise whose body is the group in scalar arith/math ops.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

bool isPointwise(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, MaxOp, NegOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ScaleOp,
             SiLUOp, SigmoidOp, SiLUGradOp>(op);
}

/// The scalar computation of one pointwise op, from the scalars of its operands.
Value scalarOf(OpBuilder &b, Location loc, Operation *op, ArrayRef<Value> in, FloatType et) {
  auto constant = [&](double v) {
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(et, v)).getResult();
  };
  auto sigmoid = [&](Value x) {
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
    return arith::DivFOp::create(b, loc, constant(1.0),
                                 arith::AddFOp::create(b, loc, constant(1.0), e))
        .getResult();
  };
  return llvm::TypeSwitch<Operation *, Value>(op)
      .Case([&](AddOp) { return arith::AddFOp::create(b, loc, in[0], in[1]); })
      .Case([&](SubOp) { return arith::SubFOp::create(b, loc, in[0], in[1]); })
      .Case([&](MulOp) { return arith::MulFOp::create(b, loc, in[0], in[1]); })
      .Case([&](DivOp) { return arith::DivFOp::create(b, loc, in[0], in[1]); })
      .Case([&](MaxOp) { return arith::MaximumFOp::create(b, loc, in[0], in[1]); })
      .Case([&](NegOp) { return arith::NegFOp::create(b, loc, in[0]); })
      .Case([&](ExpOp) { return math::ExpOp::create(b, loc, in[0]); })
      .Case([&](LogOp) { return math::LogOp::create(b, loc, in[0]); })
      .Case([&](SqrtOp) { return math::SqrtOp::create(b, loc, in[0]); })
      .Case([&](RsqrtOp) { return math::RsqrtOp::create(b, loc, in[0]); })
      .Case([&](ScaleOp s) {
        return arith::MulFOp::create(b, loc, in[0],
                                     constant(s.getFactor().convertToDouble()));
      })
      .Case([&](SigmoidOp) { return sigmoid(in[0]); })
      .Case([&](SiLUOp) { return arith::MulFOp::create(b, loc, in[0], sigmoid(in[0])); })
      .Case([&](SiLUGradOp) -> Value {
        // dy * s * (1 + x (1 - s)).
        Value s = sigmoid(in[0]);
        Value oneMinus = arith::SubFOp::create(b, loc, constant(1.0), s);
        Value inner = arith::AddFOp::create(
            b, loc, constant(1.0), arith::MulFOp::create(b, loc, in[0], oneMinus));
        return arith::MulFOp::create(b, loc, in[1],
                                     arith::MulFOp::create(b, loc, s, inner));
      })
      .Default([](Operation *) { return Value(); });
}

struct FuseElementwisePass : llamac::impl::LlamaFuseElementwiseBase<FuseElementwisePass> {
  using LlamaFuseElementwiseBase::LlamaFuseElementwiseBase;

  void runOnOperation() override {
    int64_t count = 0;
    getOperation().walk([&](func::FuncOp fn) {
      if (!fn.isExternal())
        count += fuseBlock(fn.getBody().front());
    });
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }

  int64_t fuseBlock(Block &block) {
    int64_t groups = 0;
    DenseSet<Operation *> taken;
    SmallVector<Operation *> roots;
    for (Operation &op : llvm::reverse(block))
      roots.push_back(&op);
    for (Operation *root : roots) {
      if (taken.contains(root) || !isPointwise(root))
        continue;
      SmallVector<Operation *> group = {root}, work = {root};
      while (!work.empty()) {
        Operation *o = work.pop_back_val();
        for (Value v : o->getOperands()) {
          Operation *def = v.getDefiningOp();
          if (def && isPointwise(def) && !taken.contains(def) && v.hasOneUse() &&
              def->getBlock() == &block && v.getType() == root->getResult(0).getType() &&
              !llvm::is_contained(group, def)) {
            group.push_back(def);
            work.push_back(def);
          }
        }
      }
      if (group.size() < 2)
        continue;
      for (Operation *o : group)
        taken.insert(o);
      build(root, group);
      ++groups;
    }
    return groups;
  }

  void build(Operation *root, SmallVector<Operation *> &group) {
    llvm::sort(group, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    DenseSet<Operation *> members(group.begin(), group.end());
    SmallVector<Value> inputs;
    for (Operation *o : group)
      for (Value v : o->getOperands())
        if ((!v.getDefiningOp() || !members.contains(v.getDefiningOp())) &&
            !llvm::is_contained(inputs, v))
          inputs.push_back(v);
    auto type = cast<RankedTensorType>(root->getResult(0).getType());
    auto et = cast<FloatType>(type.getElementType());
    SmallVector<Location> locs;
    for (Operation *o : group)
      locs.push_back(o->getLoc());
    OpBuilder b(root);
    Location loc = b.getFusedLoc(locs);
    auto fused = FusedElementwiseOp::create(b, loc, type, inputs);
    fused->setDiscardableAttrs(root->getDiscardableAttrDictionary());
    Block *body = b.createBlock(&fused.getBody());
    DenseMap<Value, Value> scalar;
    for (Value v : inputs)
      scalar[v] = body->addArgument(et, v.getLoc());
    b.setInsertionPointToStart(body);
    for (Operation *o : group) {
      SmallVector<Value> in;
      for (Value v : o->getOperands())
        in.push_back(scalar.lookup(v));
      scalar[o->getResult(0)] = scalarOf(b, o->getLoc(), o, in, et);
    }
    YieldOp::create(b, loc, scalar.lookup(root->getResult(0)));
    root->getResult(0).replaceAllUsesWith(fused.getResult());
    for (Operation *o : llvm::reverse(group))
      o->erase();
  }
};

} // namespace
