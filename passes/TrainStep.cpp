//===- TrainStep.cpp - llamac-train-step -------------------------------------------===//
//
// Wraps the gradient function in the two functions a training loop calls:
//   @train_grad(tokens, targets) -> loss            once per micro-batch
//   @train_update(step, lr, total, micro_batches)   once per optimizer step
//       -> (lr_t, grad_norm)
// and declares the training state (gradient accumulators, AdamW moments) as `state`
// parameters, so that checkpoints hold everything a run needs to resume.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMATRAINSTEP
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct TrainStepPass : llamac::impl::LlamaTrainStepBase<TrainStepPass> {
  using LlamaTrainStepBase::LlamaTrainStepBase;

  void runOnOperation() override {
    for (ModelOp model : getOperation().getOps<ModelOp>())
      if (failed(build(model)))
        return signalPassFailure();
  }

  LogicalResult build(ModelOp model) {
    std::string gradName = function + "_grad";
    func::FuncOp grad = model.lookupFunction(gradName);
    if (!grad)
      return model.emitOpError("llamac-train-step needs @")
             << gradName << " (run llamac-autodiff first)";
    auto names = grad->getAttrOfType<ArrayAttr>("llama.grads");
    if (!names || names.size() + 1 != grad.getNumResults())
      return grad.emitOpError("has no valid llama.grads attribute");
    for (StringRef taken : {"train_grad", "train_update"})
      if (model.lookupFunction(taken))
        return model.emitOpError("llamac-train-step: @") << taken << " already exists";

    // The trained parameters and their state.
    SmallVector<ParamOp> params;
    for (Attribute a : names) {
      auto p = dyn_cast_or_null<ParamOp>(
          SymbolTable::lookupSymbolIn(model, cast<FlatSymbolRefAttr>(a).getAttr()));
      if (!p)
        return grad.emitOpError("llama.grads names an unknown parameter ") << a;
      params.push_back(p);
    }
    OpBuilder b(model.getContext());
    b.setInsertionPointAfter(params.back());
    auto declareState = [&](StringRef prefix, ParamOp p) {
      std::string name = (prefix + p.getSymName()).str();
      auto state = cast<ParamOp>(b.clone(*p));
      state.setSymName(name);
      state.setInit(InitKind::zeros);
      state.removeStdAttr();
      state.setState(true);
      return FlatSymbolRefAttr::get(b.getContext(), name);
    };
    SmallVector<FlatSymbolRefAttr> accumulators, firstMoments, secondMoments;
    for (ParamOp p : params)
      accumulators.push_back(declareState("grad.", p));
    for (ParamOp p : params)
      firstMoments.push_back(declareState("adamw.m.", p));
    for (ParamOp p : params)
      secondMoments.push_back(declareState("adamw.v.", p));

    buildGradStep(grad, accumulators);
    buildUpdate(grad, params, accumulators, firstMoments, secondMoments);
    return success();
  }

  /// @train_grad: the gradient function's body, then grad.<p> += g_p.
  void buildGradStep(func::FuncOp grad, ArrayRef<FlatSymbolRefAttr> accumulators) {
    OpBuilder b(grad);
    b.setInsertionPointAfter(grad);
    auto fn = cast<func::FuncOp>(b.clone(*grad));
    fn.setSymName("train_grad");
    fn->removeAttr("llama.grads");
    auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
    b.setInsertionPoint(ret);
    for (auto [i, acc] : llvm::enumerate(accumulators)) {
      Value g = ret.getOperand(i + 1);
      Location loc = g.getLoc();
      Value old = GetParamOp::create(b, loc, g.getType(), acc);
      Value sum = AddOp::create(b, loc, g.getType(), old, g);
      SetParamOp::create(b, loc, acc, sum);
    }
    Value loss = ret.getOperand(0);
    func::ReturnOp::create(b, ret.getLoc(), loss);
    ret.erase();
    fn.setType(FunctionType::get(fn.getContext(), fn.getArgumentTypes(), {loss.getType()}));
  }

  /// @train_update: clip, schedule, AdamW, clear the accumulators.
  void buildUpdate(func::FuncOp grad, ArrayRef<ParamOp> params,
                   ArrayRef<FlatSymbolRefAttr> accumulators, ArrayRef<FlatSymbolRefAttr> ms,
                   ArrayRef<FlatSymbolRefAttr> vs) {
    MLIRContext *ctx = grad.getContext();
    OpBuilder b(ctx);
    b.setInsertionPointToEnd(&grad->getParentOfType<ModelOp>().getBody().front());
    auto f32 = RankedTensorType::get({}, b.getF32Type());
    auto i64 = RankedTensorType::get({}, b.getI64Type());
    Location loc = grad.getLoc();
    auto fn = func::FuncOp::create(b, loc, "train_update",
                                   FunctionType::get(ctx, {i64, f32, i64, f32}, {f32, f32}));
    Block *block = fn.addEntryBlock();
    b.setInsertionPointToStart(block);
    Value step = block->getArgument(0), peak = block->getArgument(1),
          total = block->getArgument(2), count = block->getArgument(3);

    SmallVector<Value> grads;
    for (auto [i, acc] : llvm::enumerate(accumulators))
      grads.push_back(GetParamOp::create(b, loc, ParamOp(params[i]).getType(), acc));
    auto clip = GradClipOp::create(b, loc, f32, f32, grads, count,
                                   b.getF64FloatAttr(maxGradNorm));
    Value lr = LRScheduleOp::create(b, loc, step, peak, total, warmup, floor);
    for (size_t i = 0; i < params.size(); ++i) {
      ParamOp p = params[i];
      Type t = p.getType();
      FlatSymbolRefAttr name = FlatSymbolRefAttr::get(p.getSymNameAttr());
      Value param = GetParamOp::create(b, loc, t, name);
      Value m = GetParamOp::create(b, loc, t, ms[i]);
      Value v = GetParamOp::create(b, loc, t, vs[i]);
      // Norm gains (rank 1) are not decayed, as in LLaMA.
      double decay = p.getTensorType().getRank() >= 2 ? double(weightDecay) : 0.0;
      auto update = AdamWOp::create(b, p.getLoc(), t, t, t, param, grads[i], m, v, lr, step,
                                    clip.getCoefficient(), b.getF64FloatAttr(beta1),
                                    b.getF64FloatAttr(beta2), b.getF64FloatAttr(eps),
                                    b.getF64FloatAttr(decay));
      SetParamOp::create(b, loc, name, update.getNewParam());
      SetParamOp::create(b, loc, ms[i], update.getNewM());
      SetParamOp::create(b, loc, vs[i], update.getNewV());
      auto zeros = arith::ConstantOp::create(b, loc, cast<TypedAttr>(b.getZeroAttr(t)));
      SetParamOp::create(b, loc, accumulators[i], zeros);
    }
    func::ReturnOp::create(b, loc, ValueRange{lr, clip.getNorm()});
  }
};

} // namespace
