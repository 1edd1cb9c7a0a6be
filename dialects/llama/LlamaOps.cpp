//===- LlamaOps.cpp - verifiers and shape rules of the llama ops -------------------===//
//
// Each compute op's shape rule is written once, in its inferReturnTypes: the parser calls
// it (so malformed IR gets a located diagnostic naming the dimension and both values) and
// so does every builder that omits the result type. Operand types are checked defensively
// here because inference runs before the ODS type constraints are verified.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "dialects/llama/ShapeHelpers.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>
#include <string>

using namespace mlir;
using namespace llamac::llama;

using namespace llamac::llama::detail;

//===----------------------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------------------===//

func::FuncOp ModelOp::lookupFunction(StringRef name) {
  return dyn_cast_or_null<func::FuncOp>(::mlir::SymbolTable::lookupSymbolIn(*this, name));
}

LogicalResult ModelOp::verify() {
  int64_t repeats = 0;
  bool anyLayer = false;
  for (Operation &op : getBody().front()) {
    if (auto layer = dyn_cast<LayerOp>(op)) {
      repeats += layer.getRepeat();
      anyLayer = true;
    }
  }
  int64_t nLayers = getConfig().getNLayers();
  if (anyLayer && repeats != nLayers)
    return emitOpError() << "config n_layers (" << nLayers
                         << ") does not match the layers declared (" << repeats
                         << " repetitions)";
  return success();
}

LogicalResult ParamOp::verify() {
  if (!isa_and_nonnull<ModelOp, LayerOp>((*this)->getParentOp()))
    return emitOpError() << "must be declared in a llama.model or a llama.layer";
  RankedTensorType type = getTensorType();
  for (auto [i, d] : llvm::enumerate(type.getShape()))
    if (ShapedType::isDynamic(d))
      return emitOpError() << "parameter @" << getSymName()
                           << " must have a static shape, dimension " << i << " is dynamic";
  std::optional<double> std = getStd() ? std::optional<double>(getStd()->convertToDouble())
                                       : std::nullopt;
  if (getInit() == InitKind::normal) {
    if (!std || !(*std > 0.0) || !std::isfinite(*std))
      return emitOpError() << "normal initialiser of @" << getSymName()
                           << " needs a positive finite std, e.g. 'init normal(0.02)'";
  } else if (std) {
    return emitOpError() << stringifyInitKind(getInit()) << " initialiser of @"
                         << getSymName() << " takes no std";
  }
  return success();
}

func::FuncOp LayerOp::getBodyFunction() {
  for (Operation &op : getBody().front())
    if (auto fn = dyn_cast<func::FuncOp>(op))
      return fn;
  return nullptr;
}

LogicalResult LayerOp::verify() {
  func::FuncOp body;
  for (Operation &op : getBody().front()) {
    if (isa<ParamOp>(op))
      continue;
    if (auto fn = dyn_cast<func::FuncOp>(op)) {
      if (body)
        return emitOpError() << "layer @" << getSymName()
                             << " declares more than one function (@" << body.getSymName()
                             << " and @" << fn.getSymName() << ")";
      body = fn;
      continue;
    }
    return emitOpError() << "layer body may hold only llama.param and one func.func, found '"
                         << op.getName() << "'";
  }
  if (!body)
    return emitOpError() << "layer @" << getSymName() << " declares no function";
  FunctionType type = body.getFunctionType();
  if (type.getNumInputs() < 1 || type.getNumResults() != 1 ||
      type.getInput(0) != type.getResult(0))
    return emitOpError() << "layer function @" << body.getSymName()
                         << " must map its first argument to one result of the same type, "
                            "got "
                         << type;
  return success();
}

LogicalResult GetParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *scope = (*this)->getParentOfType<LayerOp>();
  if (!scope)
    scope = (*this)->getParentOfType<ModelOp>();
  if (!scope)
    return emitOpError() << "must be nested in a llama.model or a llama.layer";
  auto param = dyn_cast_or_null<ParamOp>(symbolTable.lookupSymbolIn(scope, getNameAttr()));
  if (!param)
    return emitOpError() << getNameAttr() << " does not name a parameter of "
                         << scope->getName() << " @"
                         << SymbolTable::getSymbolName(scope).getValue();
  if (param.getType() != getType())
    return emitOpError() << "result type " << getType() << " does not match parameter "
                         << getNameAttr() << " of type " << param.getType();
  return success();
}

LogicalResult StackOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if ((*this)->getParentOfType<LayerOp>())
    return emitOpError() << "cannot apply a layer stack inside a layer";
  auto model = (*this)->getParentOfType<ModelOp>();
  if (!model)
    return emitOpError() << "must be nested in a llama.model";
  auto layer = dyn_cast_or_null<LayerOp>(symbolTable.lookupSymbolIn(model, getLayerAttr()));
  if (!layer)
    return emitOpError() << getLayerAttr() << " does not name a layer of model @"
                         << model.getSymName();
  func::FuncOp body = layer.getBodyFunction();
  if (!body)
    return emitOpError() << "layer " << getLayerAttr() << " has no function";
  FunctionType type = body.getFunctionType();
  if (type.getNumInputs() != getInputs().size())
    return emitOpError() << "layer " << getLayerAttr() << " takes " << type.getNumInputs()
                         << " inputs, got " << getInputs().size();
  for (auto [i, pair] : llvm::enumerate(llvm::zip(type.getInputs(), getInputs()))) {
    auto [expected, value] = pair;
    if (expected != value.getType())
      return emitOpError() << "input " << i << " has type " << value.getType()
                           << " but layer " << getLayerAttr() << " expects " << expected;
  }
  if (type.getNumResults() != 1 || type.getResult(0) != getType())
    return emitOpError() << "result type " << getType() << " does not match layer "
                         << getLayerAttr() << " result";
  return success();
}

//===----------------------------------------------------------------------------------===//
// Compute: shape rules
//===----------------------------------------------------------------------------------===//

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto table = rankedOperand(loc, adaptor.getTable(), "table");
  auto tokens = rankedOperand(loc, adaptor.getTokens(), "tokens");
  if (failed(table) || failed(tokens))
    return failure();
  if (failed(expectRank(loc, *table, "embedding table", 2, "[vocab, dim]")))
    return failure();
  SmallVector<int64_t> shape(tokens->getShape());
  shape.push_back(table->getDimSize(1));
  out.push_back(RankedTensorType::get(shape, table->getElementType()));
  return success();
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  auto weight = rankedOperand(loc, adaptor.getWeight(), "weight");
  if (failed(input) || failed(weight))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, "linear input must have rank >= 1, got a scalar");
  if (failed(expectRank(loc, *weight, "linear weight", 2, "[out_features, in_features]")) ||
      failed(sameElementType(loc, *input, "input", *weight, "weight")) ||
      failed(matchDim(loc, *input, input->getRank() - 1, "input features (last dim)", *weight,
                      1, "weight in_features (dim 1)")))
    return failure();
  SmallVector<int64_t> shape(input->getShape());
  shape.back() = weight->getDimSize(0);
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto lhs = rankedOperand(loc, adaptor.getLhs(), "lhs");
  auto rhs = rankedOperand(loc, adaptor.getRhs(), "rhs");
  if (failed(lhs) || failed(rhs))
    return failure();
  int64_t lr = lhs->getRank(), rr = rhs->getRank();
  if (lr < 2 || rr < 2)
    return emitOptionalError(loc, "matmul operands must have rank >= 2, got ", lr, " and ",
                             rr);
  if (rr != 2 && rr != lr)
    return emitOptionalError(loc, "matmul rhs must be a matrix or have the lhs rank (", lr,
                             "), got rank ", rr);
  if (failed(sameElementType(loc, *lhs, "lhs", *rhs, "rhs")))
    return failure();
  bool t = adaptor.getTransposeRhs();
  int64_t rk = t ? rr - 1 : rr - 2, rn = t ? rr - 2 : rr - 1;
  if (failed(matchDim(loc, *lhs, lr - 1, "lhs contraction dim", *rhs, rk,
                      "rhs contraction dim")))
    return failure();
  SmallVector<int64_t> shape(lhs->getShape());
  if (rr == lr) {
    for (int64_t i = 0; i < lr - 2; ++i) {
      if (conflict(lhs->getDimSize(i), rhs->getDimSize(i)))
        return emitOptionalError(loc, "matmul batch dim ", i, ": lhs (", lhs->getDimSize(i),
                                 ") does not match rhs (", rhs->getDimSize(i), ")");
      shape[i] = meet(lhs->getDimSize(i), rhs->getDimSize(i));
    }
  }
  shape[lr - 1] = rhs->getDimSize(rn);
  out.push_back(RankedTensorType::get(shape, lhs->getElementType()));
  return success();
}

LogicalResult RMSNormOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                          Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  auto weight = rankedOperand(loc, adaptor.getWeight(), "weight");
  if (failed(input) || failed(weight))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, "rms_norm input must have rank >= 1, got a scalar");
  if (failed(expectRank(loc, *weight, "rms_norm weight", 1, "[dim]")) ||
      failed(sameElementType(loc, *input, "input", *weight, "weight")) ||
      failed(matchDim(loc, *input, input->getRank() - 1, "input dim (last)", *weight, 0,
                      "weight dim")))
    return failure();
  if (adaptor.getEpsAttr() && !(adaptor.getEps().convertToDouble() > 0.0))
    return emitOptionalError(loc, "rms_norm eps must be positive");
  out.push_back(*input);
  return success();
}

LogicalResult RoPEOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                       Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input) ||
      failed(expectRank(loc, *input, "rope input", 4, "[batch, seq, heads, head_dim]")))
    return failure();
  int64_t hd = input->getDimSize(3);
  if (!ShapedType::isDynamic(hd) && hd % 2 != 0)
    return emitOptionalError(loc, "rope head_dim (dim 3) must be even, got ", hd);
  if (adaptor.getThetaAttr() && !(adaptor.getTheta().convertToDouble() > 0.0))
    return emitOptionalError(loc, "rope theta must be positive");
  out.push_back(*input);
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto q = rankedOperand(loc, adaptor.getQuery(), "query");
  auto k = rankedOperand(loc, adaptor.getKey(), "key");
  auto v = rankedOperand(loc, adaptor.getValue(), "value");
  if (failed(q) || failed(k) || failed(v))
    return failure();
  StringRef layout = "[batch, seq, heads, head_dim]";
  if (failed(expectRank(loc, *q, "query", 4, layout)) ||
      failed(expectRank(loc, *k, "key", 4, layout)) ||
      failed(expectRank(loc, *v, "value", 4, layout)) ||
      failed(sameElementType(loc, *q, "query", *k, "key")) ||
      failed(sameElementType(loc, *q, "query", *v, "value")) ||
      failed(matchDim(loc, *q, 0, "query batch (dim 0)", *k, 0, "key batch (dim 0)")) ||
      failed(matchDim(loc, *q, 3, "query head_dim (dim 3)", *k, 3, "key head_dim (dim 3)")) ||
      failed(matchDim(loc, *k, 0, "key batch (dim 0)", *v, 0, "value batch (dim 0)")) ||
      failed(matchDim(loc, *k, 1, "key seq (dim 1)", *v, 1, "value seq (dim 1)")) ||
      failed(matchDim(loc, *k, 2, "key heads (dim 2)", *v, 2, "value heads (dim 2)")) ||
      failed(matchDim(loc, *q, 3, "query head_dim (dim 3)", *v, 3, "value head_dim (dim 3)")) ||
      failed(matchDim(loc, *q, 0, "query batch (dim 0)", *v, 0, "value batch (dim 0)")))
    return failure();
  if (q->isDynamicDim(3) && k->isDynamicDim(3) && v->isDynamicDim(3))
    return emitOptionalError(loc, "attention head_dim (dim 3) must be static");
  if (adaptor.getWindowAttr() && !adaptor.getCausal())
    return emitOptionalError(loc, "attention window ", *adaptor.getWindow(),
                             " needs causal attention");
  int64_t heads = q->getDimSize(2), kvHeads = meet(k->getDimSize(2), v->getDimSize(2));
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads) &&
      (kvHeads == 0 || heads % kvHeads != 0))
    return emitOptionalError(loc, "query heads (", heads,
                             ") is not divisible by key/value heads (", kvHeads, ")");
  if (adaptor.getScaleAttr() && !(adaptor.getScaleAttr().getValueAsDouble() > 0.0))
    return emitOptionalError(loc, "attention scale must be positive");
  out.push_back(*q);
  return success();
}

double llamac::llama::attentionScale(std::optional<APFloat> scale, Value query, Value key,
                                     Value value) {
  if (scale)
    return scale->convertToDouble();
  int64_t headDim = ShapedType::kDynamic;
  for (Value v : {query, key, value})
    if (ShapedType::isDynamic(headDim))
      headDim = cast<RankedTensorType>(v.getType()).getDimSize(3);
  return 1.0 / std::sqrt(static_cast<double>(headDim)); // the verifier ensures one is known
}

double AttentionOp::getEffectiveScale() {
  return attentionScale(getScale(), getQuery(), getKey(), getValue());
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                               Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto logits = rankedOperand(loc, adaptor.getLogits(), "logits");
  auto targets = rankedOperand(loc, adaptor.getTargets(), "targets");
  if (failed(logits) || failed(targets))
    return failure();
  if (logits->getRank() < 1)
    return emitOptionalError(loc, "cross_entropy logits must have rank >= 1 (vocab last), "
                                  "got a scalar");
  if (targets->getRank() != logits->getRank() - 1)
    return emitOptionalError(loc, "cross_entropy targets must have rank ",
                             logits->getRank() - 1, " (the logits without the vocab dim), "
                             "got rank ", targets->getRank());
  for (int64_t i = 0; i < targets->getRank(); ++i)
    if (conflict(logits->getDimSize(i), targets->getDimSize(i)))
      return emitOptionalError(loc, "cross_entropy dim ", i, ": logits (",
                               logits->getDimSize(i), ") does not match targets (",
                               targets->getDimSize(i), ")");
  out.push_back(RankedTensorType::get({}, Float32Type::get(ctx)));
  return success();
}

LogicalResult CastOp::verify() {
  auto in = getInput().getType(), res = getResult().getType();
  if (in.getShape() != res.getShape())
    return emitOpError() << "cast changes the shape from " << in << " to " << res;
  return success();
}

//===----------------------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------------------===//

LogicalResult SplitDimOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                           Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  int64_t dim = adaptor.getDim();
  if (failed(checkDimIndex(loc, dim, input->getRank())))
    return failure();
  ArrayRef<int64_t> sizes = adaptor.getSizes();
  if (sizes.size() < 2)
    return emitOptionalError(loc, "split_dim needs at least two sizes, got ", sizes.size());
  int64_t product = 1;
  for (int64_t s : sizes) {
    if (s <= 0)
      return emitOptionalError(loc, "split_dim sizes must be positive, got ", s);
    product *= s;
  }
  int64_t d = input->getDimSize(dim);
  if (!ShapedType::isDynamic(d) && d != product)
    return emitOptionalError(loc, "split_dim: dim ", dim, " (", d,
                             ") does not equal the product of the sizes (", product, ")");
  SmallVector<int64_t> shape(input->getShape().take_front(dim));
  shape.append(sizes.begin(), sizes.end());
  shape.append(input->getShape().begin() + dim + 1, input->getShape().end());
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult MergeDimsOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  int64_t dim = adaptor.getDim();
  if (dim < 0 || dim + 1 >= input->getRank())
    return emitOptionalError(loc, "merge_dims needs dims ", dim, " and ", dim + 1,
                             ", out of range for rank ", input->getRank());
  int64_t a = input->getDimSize(dim), b = input->getDimSize(dim + 1);
  SmallVector<int64_t> shape(input->getShape());
  shape[dim] = (ShapedType::isDynamic(a) || ShapedType::isDynamic(b)) ? ShapedType::kDynamic
                                                                      : a * b;
  shape.erase(shape.begin() + dim + 1);
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  int64_t rank = input->getRank();
  if (static_cast<int64_t>(perm.size()) != rank)
    return emitOptionalError(loc, "transpose permutation has ", perm.size(),
                             " entries but the input has rank ", rank);
  SmallVector<bool> seen(rank, false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen[p])
      return emitOptionalError(loc, "transpose permutation is not a permutation of 0..",
                               rank - 1);
    seen[p] = true;
    shape.push_back(input->getDimSize(p));
  }
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &out) {
  ValueRange inputs = adaptor.getInputs();
  if (inputs.empty())
    return emitOptionalError(loc, "concat needs at least one input");
  auto first = rankedOperand(loc, inputs[0], "input 0");
  if (failed(first))
    return failure();
  int64_t dim = adaptor.getDim(), rank = first->getRank();
  if (failed(checkDimIndex(loc, dim, rank)))
    return failure();
  SmallVector<int64_t> shape(first->getShape());
  for (auto [i, v] : llvm::enumerate(inputs.drop_front())) {
    std::string name = "input " + std::to_string(i + 1);
    auto t = rankedOperand(loc, v, name);
    if (failed(t))
      return failure();
    if (t->getRank() != rank)
      return emitOptionalError(loc, "concat ", name, " has rank ", t->getRank(),
                               ", input 0 has rank ", rank);
    if (failed(sameElementType(loc, *first, "input 0", *t, name)))
      return failure();
    for (int64_t d = 0; d < rank; ++d) {
      if (d == dim) {
        shape[d] = (ShapedType::isDynamic(shape[d]) || t->isDynamicDim(d))
                       ? ShapedType::kDynamic
                       : shape[d] + t->getDimSize(d);
      } else if (conflict(shape[d], t->getDimSize(d))) {
        return emitOptionalError(loc, "concat dim ", d, ": ", name, " (", t->getDimSize(d),
                                 ") does not match input 0 (", shape[d], ")");
      } else {
        shape[d] = meet(shape[d], t->getDimSize(d));
      }
    }
  }
  out.push_back(RankedTensorType::get(shape, first->getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  int64_t dim = adaptor.getDim(), offset = adaptor.getOffset(), size = adaptor.getSize();
  if (failed(checkDimIndex(loc, dim, input->getRank())))
    return failure();
  if (offset < 0 || size <= 0)
    return emitOptionalError(loc, "slice needs offset >= 0 and size > 0, got offset ",
                             offset, " and size ", size);
  int64_t d = input->getDimSize(dim);
  if (!ShapedType::isDynamic(d) && (offset > d || size > d - offset))
    return emitOptionalError(loc, "slice at offset ", offset, " of size ", size,
                             " exceeds dim ", dim, " (", d, ")");
  SmallVector<int64_t> shape(input->getShape());
  shape[dim] = size;
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

#define GET_OP_CLASSES
#include "dialects/llama/LlamaOps.cpp.inc"
