//===- ExpandLayers.cpp - llama-expand-layers --------------------------------------===//
//
// Instantiates each `llama.layer` once per repetition: per-repetition parameters at model
// level, and every `llama.stack` replaced by the inlined layer function, repeated.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAEXPANDLAYERS
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

std::string instanceParamName(StringRef layer, int64_t i, StringRef param) {
  return (layer + "." + Twine(i) + "." + param).str();
}

struct ExpandLayersPass : llamac::impl::LlamaExpandLayersBase<ExpandLayersPass> {
  void runOnOperation() override {
    for (ModelOp model : getOperation().getOps<ModelOp>())
      if (failed(expandModel(model)))
        return signalPassFailure();
  }

  LogicalResult expandModel(ModelOp model) {
    SmallVector<LayerOp> layers(model.getOps<LayerOp>());
    for (LayerOp layer : layers) {
      func::FuncOp body = layer.getBodyFunction();
      if (!body.getBody().hasOneBlock())
        return body.emitOpError("layer function must have a single block to be expanded");
      declareInstanceParams(model, layer);
      SmallVector<StackOp> stacks;
      model.walk([&](StackOp s) {
        if (s.getLayer() == layer.getSymName())
          stacks.push_back(s);
      });
      for (StackOp stack : stacks)
        inlineStack(stack, layer, body);
      layer.erase();
    }
    return success();
  }

  /// Declares `@<layer>.<i>.<param>` at model level, just before the layer, for every
  /// repetition i and every parameter of the layer.
  void declareInstanceParams(ModelOp model, LayerOp layer) {
    OpBuilder b(layer);
    for (int64_t i = 0; i < layer.getRepeat(); ++i) {
      for (ParamOp p : layer.getBody().front().getOps<ParamOp>()) {
        auto clone = cast<ParamOp>(b.clone(*p));
        clone.setSymName(instanceParamName(layer.getSymName(), i, p.getSymName()));
        ++numParamsDeclared;
      }
    }
  }

  void inlineStack(StackOp stack, LayerOp layer, func::FuncOp body) {
    OpBuilder b(stack);
    Block &block = body.getBody().front();
    Value stream = stack.getInputs().front();
    for (int64_t i = 0; i < layer.getRepeat(); ++i) {
      IRMapping map;
      map.map(block.getArgument(0), stream);
      for (auto [arg, input] :
           llvm::zip(block.getArguments().drop_front(), stack.getInputs().drop_front()))
        map.map(arg, input);
      std::string unit = (layer.getSymName() + "." + Twine(i)).str();
      for (Operation &op : block.without_terminator()) {
        Operation *clone = b.clone(op, map);
        clone->setLoc(NameLoc::get(b.getStringAttr(unit), op.getLoc()));
        if (auto get = dyn_cast<GetParamOp>(clone))
          get.setName(instanceParamName(layer.getSymName(), i, get.getName()));
      }
      stream = map.lookup(block.getTerminator()->getOperand(0));
      ++numLayersExpanded;
    }
    stack.getResult().replaceAllUsesWith(stream);
    stack.erase();
  }
};

} // namespace
