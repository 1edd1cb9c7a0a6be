//===- LlamaTrainingOps.cpp - shape rules of the backward and training ops ---------===//
//
// The ops that autodiff and the training step introduce: their result types and
// verifiers. Their forward counterparts are in LlamaOps.cpp, their VJP rules (the rules of
// the forward ops that build them) in LlamaVJP.cpp.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "dialects/llama/ShapeHelpers.h"

#include "mlir/IR/Builders.h"

#include <cmath>

using namespace mlir;
using namespace llamac::llama;
using namespace llamac::llama::detail;

LogicalResult PadOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                      Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input) || failed(checkDimIndex(loc, adaptor.getDim(), input->getRank())))
    return failure();
  int64_t before = adaptor.getBefore(), after = adaptor.getAfter();
  if (before < 0 || after < 0 || before > (int64_t(1) << 40) || after > (int64_t(1) << 40))
    return emitOptionalError(loc, "pad sizes must be in [0, 2^40], got ", before, " and ",
                             after);
  SmallVector<int64_t> shape(input->getShape());
  int64_t &d = shape[adaptor.getDim()];
  if (!ShapedType::isDynamic(d))
    d += before + after;
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult EmbeddingGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto tokens = rankedOperand(loc, adaptor.getTokens(), "tokens");
  auto grad = rankedOperand(loc, adaptor.getGrad(), "grad");
  if (failed(tokens) || failed(grad))
    return failure();
  if (grad->getRank() != tokens->getRank() + 1)
    return emitOptionalError(loc, "embedding_grad grad must have rank ", tokens->getRank() + 1,
                             " (the tokens' and dim), got ", grad->getRank());
  for (int64_t i = 0; i < tokens->getRank(); ++i)
    if (failed(matchDim(loc, *tokens, i, "tokens dim", *grad, i, "grad dim")))
      return failure();
  // I64Attr getters return the bits unsigned.
  int64_t vocab = static_cast<int64_t>(adaptor.getVocab());
  if (vocab <= 0)
    return emitOptionalError(loc, "embedding_grad vocab must be positive, got ", vocab);
  out.push_back(RankedTensorType::get({vocab, grad->getShape().back()},
                                      grad->getElementType()));
  return success();
}

LogicalResult LinearWeightGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                   Adaptor adaptor,
                                                   SmallVectorImpl<Type> &out) {
  auto grad = rankedOperand(loc, adaptor.getGrad(), "grad");
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(grad) || failed(input))
    return failure();
  if (grad->getRank() != input->getRank() || grad->getRank() < 1)
    return emitOptionalError(loc, "linear_weight_grad operands must have one rank >= 1, got ",
                             grad->getRank(), " and ", input->getRank());
  for (int64_t i = 0; i + 1 < grad->getRank(); ++i)
    if (failed(matchDim(loc, *grad, i, "grad dim", *input, i, "input dim")))
      return failure();
  if (failed(sameElementType(loc, *grad, "grad", *input, "input")))
    return failure();
  out.push_back(RankedTensorType::get({grad->getShape().back(), input->getShape().back()},
                                      grad->getElementType()));
  return success();
}

LogicalResult RMSNormGradOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                              Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  auto grad = rankedOperand(loc, adaptor.getGrad(), "grad");
  if (failed(input) || failed(grad))
    return failure();
  if (*input != *grad)
    return emitOptionalError(loc, "rms_norm_grad grad type ", *grad,
                             " differs from input type ", *input);
  // The weight's rule is the forward op's.
  SmallVector<Type> forward;
  RMSNormOp::Properties props;
  props.eps = adaptor.getEpsAttr();
  SmallVector<Value> operands = {adaptor.getInput(), adaptor.getWeight()};
  RMSNormOp::Adaptor fwd(operands, DictionaryAttr(), props);
  if (failed(RMSNormOp::inferReturnTypes(ctx, loc, fwd, forward)))
    return failure();
  out.push_back(*input);
  out.push_back(adaptor.getWeight().getType());
  return success();
}

LogicalResult AttentionGradOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                                Adaptor adaptor, SmallVectorImpl<Type> &out) {
  AttentionOp::Properties props;
  props.causal = adaptor.getCausalAttr();
  props.window = adaptor.getWindowAttr();
  props.scale = adaptor.getScaleAttr();
  SmallVector<Value> operands = {adaptor.getQuery(), adaptor.getKey(), adaptor.getValue()};
  AttentionOp::Adaptor fwd(operands, DictionaryAttr(), props);
  SmallVector<Type> forward;
  if (failed(AttentionOp::inferReturnTypes(ctx, loc, fwd, forward)))
    return failure();
  if (adaptor.getGrad().getType() != forward[0])
    return emitOptionalError(loc, "attention_grad grad type ", adaptor.getGrad().getType(),
                             " differs from the attention output type ", forward[0]);
  out.push_back(adaptor.getQuery().getType());
  out.push_back(adaptor.getKey().getType());
  out.push_back(adaptor.getValue().getType());
  return success();
}

double AttentionGradOp::getEffectiveScale() {
  return attentionScale(getScale(), getQuery(), getKey(), getValue());
}

LogicalResult CrossEntropyGradOp::inferReturnTypes(MLIRContext *ctx,
                                                   std::optional<Location> loc,
                                                   Adaptor adaptor,
                                                   SmallVectorImpl<Type> &out) {
  CrossEntropyOp::Properties props;
  props.ignore_index = adaptor.getIgnoreIndexAttr();
  SmallVector<Value> operands = {adaptor.getLogits(), adaptor.getTargets()};
  CrossEntropyOp::Adaptor fwd(operands, DictionaryAttr(), props);
  SmallVector<Type> forward;
  if (failed(CrossEntropyOp::inferReturnTypes(ctx, loc, fwd, forward)))
    return failure();
  out.push_back(adaptor.getLogits().getType());
  return success();
}

LogicalResult SetParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if ((*this)->getParentOfType<LayerOp>())
    return emitOpError() << "cannot write parameters inside a layer";
  auto model = (*this)->getParentOfType<ModelOp>();
  if (!model)
    return emitOpError() << "must be nested in a llama.model";
  auto param = dyn_cast_or_null<ParamOp>(symbolTable.lookupSymbolIn(model, getNameAttr()));
  if (!param)
    return emitOpError() << getNameAttr() << " does not name a parameter of model @"
                         << model.getSymName();
  if (param.getType() != getValue().getType())
    return emitOpError() << "value type " << getValue().getType()
                         << " does not match parameter " << getNameAttr() << " of type "
                         << param.getType();
  return success();
}

LogicalResult GradClipOp::verify() {
  if (!(getMaxNorm().convertToDouble() > 0.0))
    return emitOpError() << "max_norm must be positive";
  return success();
}

void LRScheduleOp::build(OpBuilder &b, OperationState &state, Value step, Value peak,
                         Value total, int64_t warmup, double floor) {
  build(b, state, RankedTensorType::get({}, b.getF32Type()), step, peak, total,
        b.getI64IntegerAttr(warmup), b.getF64FloatAttr(floor));
}

LogicalResult LRScheduleOp::verify() {
  int64_t warmup = static_cast<int64_t>(getWarmup()); // the getter returns the bits unsigned
  if (warmup < 0)
    return emitOpError() << "warmup must be non-negative, got " << warmup;
  double floor = getFloor().convertToDouble();
  if (!(floor >= 0.0 && floor <= 1.0))
    return emitOpError() << "floor must be in [0, 1], got " << floor;
  return success();
}

LogicalResult AdamWOp::verify() {
  double b1 = getBeta1().convertToDouble(), b2 = getBeta2().convertToDouble();
  if (!(b1 >= 0.0 && b1 < 1.0) || !(b2 >= 0.0 && b2 < 1.0))
    return emitOpError() << "betas must be in [0, 1), got " << b1 << " and " << b2;
  if (!(getEps().convertToDouble() > 0.0))
    return emitOpError() << "eps must be positive";
  if (!(getWeightDecay().convertToDouble() >= 0.0))
    return emitOpError() << "weight_decay must be non-negative";
  return success();
}
