//===- Specialize.cpp - llama-specialize -------------------------------------------===//
//
// Fixes dynamic batch (index 0) and sequence (index 1) dimensions of every model function's
// arguments, then infers every result type again, in program order, until the functions'
// signatures stop changing (callees settle before their callers).
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMASPECIALIZE
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct SpecializePass : llamac::impl::LlamaSpecializeBase<SpecializePass> {
  using LlamaSpecializeBase::LlamaSpecializeBase;

  void runOnOperation() override {
    if (batch <= 0 || seq < 0) {
      getOperation().emitError() << "llama-specialize needs batch > 0 and seq >= 0, got batch "
                                 << static_cast<int64_t>(batch) << " and seq "
                                 << static_cast<int64_t>(seq);
      return signalPassFailure();
    }
    for (ModelOp model : getOperation().getOps<ModelOp>())
      if (failed(specializeModel(model)))
        return signalPassFailure();
  }

  FailureOr<Type> fixType(Type t, Location loc, int64_t seqLen) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (!tensor || tensor.hasStaticShape())
      return t;
    SmallVector<int64_t> shape(tensor.getShape());
    for (auto [i, d] : llvm::enumerate(shape)) {
      if (!ShapedType::isDynamic(d))
        continue;
      if (i > 1)
        return emitError(loc) << "dynamic dimension " << i << " of " << t
                              << " is neither batch (0) nor sequence (1)";
      d = i == 0 ? batch : seqLen;
    }
    return RankedTensorType::get(shape, tensor.getElementType(), tensor.getEncoding());
  }

  LogicalResult specializeModel(ModelOp model) {
    int64_t seqLen = seq ? int64_t(seq) : model.getConfig().getMaxSeqLen();
    SmallVector<func::FuncOp> funcs;
    model.walk([&](func::FuncOp f) { funcs.push_back(f); });
    // Declarations: the whole signature. Definitions: the arguments first.
    for (func::FuncOp f : funcs) {
      if (!f.isExternal())
        continue;
      SmallVector<Type> inputs, results;
      for (Type t : f.getArgumentTypes()) {
        FailureOr<Type> fixed = fixType(t, f.getLoc(), seqLen);
        if (failed(fixed))
          return failure();
        inputs.push_back(*fixed);
      }
      for (Type t : f.getResultTypes()) {
        FailureOr<Type> fixed = fixType(t, f.getLoc(), seqLen);
        if (failed(fixed))
          return failure();
        results.push_back(*fixed);
      }
      f.setType(FunctionType::get(f.getContext(), inputs, results));
    }
    llvm::erase_if(funcs, [](func::FuncOp f) { return f.isExternal(); });
    for (func::FuncOp f : funcs) {
      SmallVector<Type> inputs;
      for (BlockArgument arg : f.getArguments()) {
        FailureOr<Type> t = fixType(arg.getType(), f.getLoc(), seqLen);
        if (failed(t))
          return failure();
        arg.setType(*t);
        inputs.push_back(*t);
      }
      f.setType(FunctionType::get(f.getContext(), inputs, f.getResultTypes()));
    }
    // Then results, until callers see their callees' new signatures.
    for (size_t sweep = 0; sweep <= funcs.size(); ++sweep) {
      bool changed = false;
      for (func::FuncOp f : funcs) {
        FailureOr<bool> c = reinfer(model, f);
        if (failed(c))
          return failure();
        changed |= *c;
      }
      if (!changed)
        return success();
    }
    return model.emitOpError("llama-specialize did not reach a fixed point");
  }

  /// Infers every result type of `f` again; returns whether its signature changed.
  FailureOr<bool> reinfer(ModelOp model, func::FuncOp f) {
    WalkResult walk = f.walk([&](Operation *op) -> WalkResult {
      SmallVector<Type> types;
      if (auto infer = dyn_cast<InferTypeOpInterface>(op)) {
        if (failed(infer.inferReturnTypes(op->getContext(), op->getLoc(), op->getOperands(),
                                          op->getRawDictionaryAttrs(),
                                          op->getPropertiesStorage(), op->getRegions(),
                                          types)))
          return WalkResult::interrupt();
      } else if (auto cast = dyn_cast<CastOp>(op)) {
        auto in = cast.getInput().getType();
        types.push_back(in.clone(cast.getType().getElementType()));
      } else if (op->hasTrait<OpTrait::SameOperandsAndResultType>()) {
        types.push_back(op->getOperand(0).getType());
      } else if (auto stack = dyn_cast<StackOp>(op)) {
        types.push_back(stack.getInputs().front().getType());
      } else if (auto call = dyn_cast<func::CallOp>(op)) {
        auto callee = model.lookupFunction(call.getCallee());
        if (!callee)
          return WalkResult::advance(); // the verifier reports it
        llvm::append_range(types, callee.getResultTypes());
      } else {
        return WalkResult::advance();
      }
      for (auto [r, t] : llvm::zip(op->getResults(), types))
        r.setType(t);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
    auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
    SmallVector<Type> results(ret.getOperandTypes());
    if (results == SmallVector<Type>(f.getResultTypes()))
      return false;
    f.setType(FunctionType::get(f.getContext(), f.getArgumentTypes(), results));
    return true;
  }
};

} // namespace
