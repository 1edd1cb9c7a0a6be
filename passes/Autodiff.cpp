//===- Autodiff.cpp - llamac-autodiff ----------------------------------------------===//
//
// Reverse-mode differentiation of one flat function: activity analysis (varied: depends on
// a trainable parameter; useful: the loss depends on it), then one reverse sweep that asks
// each active op's VJPOpInterface for its operands' cotangents and accumulates them, then
// dead-code elimination.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAAUTODIFF
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

struct AutodiffPass : llamac::impl::LlamaAutodiffBase<AutodiffPass> {
  using LlamaAutodiffBase::LlamaAutodiffBase;

  void runOnOperation() override {
    for (ModelOp model : getOperation().getOps<ModelOp>()) {
      func::FuncOp fn = model.lookupFunction(function);
      if (!fn) {
        model.emitError() << "llamac-autodiff: model @" << model.getSymName()
                          << " has no function @" << function;
        return signalPassFailure();
      }
      if (failed(differentiate(model, fn)))
        return signalPassFailure();
    }
  }

  LogicalResult differentiate(ModelOp model, func::FuncOp original) {
    if (original.isExternal() || !original.getBody().hasOneBlock())
      return original.emitOpError("llamac-autodiff needs a body of one block");
    auto ret = cast<func::ReturnOp>(original.getBody().front().getTerminator());
    auto lossType = ret.getNumOperands() ? dyn_cast<RankedTensorType>(ret.getOperand(0).getType())
                                         : RankedTensorType();
    if (!lossType || lossType.getRank() != 0 || !lossType.getElementType().isF32())
      return original.emitOpError("llamac-autodiff needs a function whose first result is "
                                  "the scalar loss (tensor<f32>)");
    std::string name = (original.getSymName() + "_grad").str();
    if (model.lookupFunction(name))
      return original.emitOpError("llamac-autodiff: @") << name << " already exists";

    // The gradient function starts as a copy of the original.
    OpBuilder top(original);
    top.setInsertionPointAfter(original);
    auto fn = cast<func::FuncOp>(top.clone(*original));
    fn.setSymName(name);
    Block &block = fn.getBody().front();
    ret = cast<func::ReturnOp>(block.getTerminator());
    Value loss = ret.getOperand(0);

    for (Operation &op : block)
      if (isa<func::CallOp, StackOp>(op))
        return op.emitOpError("llamac-autodiff needs a flat function: run llamac-frontend "
                              "and inline first");

    // Activity analysis.
    auto trainable = [&](GetParamOp get) {
      auto p = dyn_cast_or_null<ParamOp>(SymbolTable::lookupSymbolIn(model, get.getNameAttr()));
      return p && !p.getState();
    };
    DenseSet<Value> varied, useful;
    for (Operation &op : block) {
      bool v = false;
      if (auto get = dyn_cast<GetParamOp>(op))
        v = trainable(get);
      else
        v = llvm::any_of(op.getOperands(), [&](Value x) { return varied.contains(x); });
      if (v)
        for (Value r : op.getResults())
          if (isFloatTensor(r))
            varied.insert(r);
    }
    useful.insert(loss);
    for (Operation &op : llvm::reverse(block))
      if (llvm::any_of(op.getResults(), [&](Value r) { return useful.contains(r); }))
        for (Value x : op.getOperands())
          useful.insert(x);
    auto active = [&](Value v) { return varied.contains(v) && useful.contains(v); };
    if (!active(loss))
      return original.emitOpError("the loss does not depend on any trainable parameter");

    // The reverse sweep, appended before the return, tagging every op it creates.
    OpBuilder b(ret);
    UnitAttr tag = b.getUnitAttr();
    auto tagNew = [&](Operation *before) {
      for (Operation *op = before ? before->getNextNode() : &block.front(); op != ret;
           op = op->getNextNode())
        op->setAttr("llama.backward", tag);
    };
    DenseMap<Value, Value> cotangent;
    auto accumulate = [&](Value v, Value c) {
      Value &slot = cotangent[v];
      if (!slot) {
        slot = c;
        return;
      }
      Operation *before = ret->getPrevNode();
      slot = AddOp::create(b, v.getLoc(), slot.getType(), slot, c);
      tagNew(before);
      ++numAccumulations;
    };
    {
      Operation *before = ret->getPrevNode();
      auto one = arith::ConstantOp::create(
          b, loss.getLoc(), DenseElementsAttr::get(lossType, b.getF32FloatAttr(1.0f)));
      tagNew(before);
      cotangent[loss] = one;
    }
    std::map<std::string, Value> gradOf;
    SmallVector<Operation *> forward;
    for (Operation &op : block)
      if (&op != ret.getOperation() && !op.hasAttr("llama.backward"))
        forward.push_back(&op);
    for (Operation *op : llvm::reverse(forward)) {
      SmallVector<Value> resultCts;
      bool any = false;
      for (Value r : op->getResults()) {
        // Null for a result without a cotangent; a multi-result op's rule handles it.
      resultCts.push_back(active(r) ? cotangent.lookup(r) : Value());
        any |= bool(resultCts.back());
      }
      if (!any)
        continue;
      if (auto get = dyn_cast<GetParamOp>(op)) {
        Value &g = gradOf[get.getName().str()];
        if (!g) {
          g = resultCts[0];
        } else {
          Operation *before = ret->getPrevNode();
          g = AddOp::create(b, get.getLoc(), g.getType(), g, resultCts[0]);
          tagNew(before);
          ++numAccumulations;
        }
        continue;
      }
      auto vjp = dyn_cast<VJPOpInterface>(op);
      if (!vjp)
        return op->emitOpError("is on a gradient path of @")
               << original.getSymName() << " but has no VJP rule";
      Operation *before = ret->getPrevNode();
      SmallVector<Value> operandCts;
      b.setInsertionPoint(ret);
      if (failed(vjp.buildVJP(b, resultCts, operandCts)))
        return failure();
      tagNew(before);
      ++numRules;
      if (operandCts.size() != op->getNumOperands())
        return op->emitOpError("VJP rule returned ")
               << operandCts.size() << " cotangents for " << op->getNumOperands()
               << " operands";
      for (auto [x, c] : llvm::zip(op->getOperands(), operandCts))
        if (c && active(x))
          accumulate(x, c);
    }

    // Loss, then the gradients in declaration order.
    SmallVector<Value> results = {loss};
    SmallVector<Attribute> names;
    for (ParamOp p : model.getOps<ParamOp>()) {
      auto it = gradOf.find(p.getSymName().str());
      if (it == gradOf.end())
        continue;
      results.push_back(it->second);
      names.push_back(FlatSymbolRefAttr::get(p.getSymNameAttr()));
      ++numGradients;
    }
    func::ReturnOp::create(b, ret.getLoc(), results);
    ret.erase();
    SmallVector<Type> resultTypes;
    for (Value v : results)
      resultTypes.push_back(v.getType());
    fn.setType(FunctionType::get(fn.getContext(), fn.getArgumentTypes(), resultTypes));
    fn->setAttr("llama.grads", b.getArrayAttr(names));

    // Dead-gradient elimination: what no result needs goes.
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (op.use_empty() && wouldOpBeTriviallyDead(&op)) {
        op.erase();
        ++numErased;
      }
    return success();
  }
};

} // namespace
