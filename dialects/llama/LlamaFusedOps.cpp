//===- LlamaFusedOps.cpp - fused ops: shape rules and decompositions ---------------===//
//
// The ops the fusion passes produce. Each one's decomposition (DecomposableOpInterface)
// spells its meaning in primitive llama ops; the interpreter's fused kernels are tested
// against it.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "dialects/llama/ShapeHelpers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace llamac::llama;
using namespace llamac::llama::detail;

namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

Value sliceLast(OpBuilder &b, Location loc, Value v, int64_t offset, int64_t size) {
  int64_t last = tensorType(v).getRank() - 1;
  return SliceOp::create(b, loc, v, b.getI64IntegerAttr(last), b.getI64IntegerAttr(offset),
                         b.getI64IntegerAttr(size));
}

} // namespace

namespace {

/// Runs attention's shape rule on (q, k, v) with the op's attributes.
template <typename OpTy>
LogicalResult checkAttention(OpTy op, Value q, Value k, Value v,
                             SmallVectorImpl<Type> &out) {
  AttentionOp::Properties props;
  props.causal = op.getCausalAttr();
  props.window = op.getWindowAttr();
  props.scale = op.getScaleAttr();
  SmallVector<Value> operands = {q, k, v};
  return AttentionOp::inferReturnTypes(op.getContext(), op.getLoc(),
                                       AttentionOp::Adaptor(operands, DictionaryAttr(), props),
                                       out);
}

/// The [batch, seq, heads] f32 type of attention's row statistics for query `q`.
RankedTensorType rowStatsType(Value q) {
  auto t = tensorType(q);
  return RankedTensorType::get({t.getDimSize(0), t.getDimSize(1), t.getDimSize(2)},
                               Float32Type::get(q.getContext()));
}

/// Runs cross_entropy's shape rule and checks `lse` is one f32 per row.
template <typename OpTy>
LogicalResult checkCrossEntropy(OpTy op, Value lse) {
  CrossEntropyOp::Properties props;
  props.ignore_index = op.getIgnoreIndexAttr();
  SmallVector<Value> operands = {op.getLogits(), op.getTargets()};
  SmallVector<Type> out;
  if (failed(CrossEntropyOp::inferReturnTypes(
          op.getContext(), op.getLoc(), CrossEntropyOp::Adaptor(operands, DictionaryAttr(), props),
          out)))
    return failure();
  auto want = RankedTensorType::get(tensorType(op.getLogits()).getShape().drop_back(),
                                    Float32Type::get(op.getContext()));
  if (lse.getType() != want)
    return op.emitOpError() << "lse must be " << want << ", got " << lse.getType();
  return success();
}

/// Runs rms_norm's shape rule on (x, w, eps).
template <typename OpTy>
LogicalResult checkRMSNorm(OpTy op, Value x, Value w) {
  RMSNormOp::Properties props;
  props.eps = op.getEpsAttr();
  SmallVector<Value> operands = {x, w};
  SmallVector<Type> out;
  return RMSNormOp::inferReturnTypes(op.getContext(), op.getLoc(),
                                     RMSNormOp::Adaptor(operands, DictionaryAttr(), props), out);
}

LogicalResult checkAdamWHyper(Operation *op, double b1, double b2, double eps,
                              ArrayRef<double> decays) {
  if (!(b1 >= 0.0 && b1 < 1.0) || !(b2 >= 0.0 && b2 < 1.0))
    return op->emitOpError() << "betas must be in [0, 1), got " << b1 << " and " << b2;
  if (!(eps > 0.0))
    return op->emitOpError() << "eps must be positive";
  for (double d : decays)
    if (!(d >= 0.0))
      return op->emitOpError() << "weight decays must be non-negative, got " << d;
  return success();
}

} // namespace

//===--- swiglu -----------------------------------------------------------------------===//

LogicalResult SwiGLUOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  int64_t last = input->getRank() - 1;
  if (last < 0)
    return emitOptionalError(loc, "swiglu input must have rank >= 1");
  int64_t d = input->getDimSize(last);
  if (ShapedType::isDynamic(d))
    return emitOptionalError(loc, "swiglu last dim must be static (gate and up)");
  if (d % 2 != 0)
    return emitOptionalError(loc, "swiglu last dim must be even (gate and up), got ", d);
  SmallVector<int64_t> shape(input->getShape());
  shape[last] = d / 2;
  out.push_back(RankedTensorType::get(shape, input->getElementType()));
  return success();
}

LogicalResult SwiGLUGradOp::verify() {
  RankedTensorType in = getInput().getType(), g = getGrad().getType();
  SmallVector<Type> forward;
  if (failed(SwiGLUOp::inferReturnTypes(getContext(), getLoc(),
                                        SwiGLUOp::Adaptor(ValueRange{getInput()},
                                                          DictionaryAttr(), {}),
                                        forward)))
    return failure();
  if (g != forward[0])
    return emitOpError() << "grad must be " << forward[0] << " (half of the input's last dim), "
                         << "got " << g;
  (void)in;
  return success();
}

LogicalResult SwiGLUOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  int64_t f = getType().getShape().back();
  Value gate = sliceLast(b, loc, getInput(), 0, f), up = sliceLast(b, loc, getInput(), f, f);
  Value s = SiLUOp::create(b, loc, gate.getType(), gate);
  results.push_back(MulOp::create(b, loc, s.getType(), s, up));
  return success();
}

LogicalResult SwiGLUGradOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  int64_t f = getGrad().getType().getShape().back();
  Value gate = sliceLast(b, loc, getInput(), 0, f), up = sliceLast(b, loc, getInput(), f, f);
  Type t = gate.getType();
  Value dgate = SiLUGradOp::create(b, loc, t, gate, MulOp::create(b, loc, t, getGrad(), up));
  Value dup = MulOp::create(b, loc, t, getGrad(), SiLUOp::create(b, loc, t, gate));
  int64_t last = getGrad().getType().getRank() - 1;
  results.push_back(
      ConcatOp::create(b, loc, ValueRange{dgate, dup}, b.getI64IntegerAttr(last)));
  return success();
}

//===--- qkv_rope ---------------------------------------------------------------------===//

LogicalResult QKVRoPEOp::verify() {
  RankedTensorType in = getInput().getType();
  int64_t h = getHeads(), kv = getKvHeads();
  if (in.getRank() != 3)
    return emitOpError() << "input must be [batch, seq, (heads + 2 kv_heads) * head_dim], got "
                            "rank "
                         << in.getRank();
  if (h <= 0 || kv <= 0 || h % kv != 0)
    return emitOpError() << "heads (" << h << ") must be a positive multiple of kv_heads ("
                         << kv << ")";
  int64_t width = in.getDimSize(2);
  if (ShapedType::isDynamic(width))
    return emitOpError() << "input width (dim 2) must be static";
  if (!(getTheta().convertToDouble() > 0.0))
    return emitOpError() << "theta must be positive";
  if (width % (h + 2 * kv) != 0 ||
      (width / (h + 2 * kv)) % 2 != 0)
    return emitOpError() << "input width (" << width << ") must be (heads " << h
                         << " + 2 x kv_heads " << kv << ") x an even head_dim";
  int64_t hd = width / (h + 2 * kv);
  auto expect = [&](Value v, int64_t heads, StringRef what) -> LogicalResult {
    SmallVector<int64_t> shape = {in.getDimSize(0), in.getDimSize(1), heads, hd};
    auto want = RankedTensorType::get(shape, in.getElementType());
    if (v.getType() != want)
      return emitOpError() << what << " must be " << want << ", got " << v.getType();
    return success();
  };
  return failure(failed(expect(getQ(), h, "q")) || failed(expect(getK(), kv, "k")) ||
                 failed(expect(getV(), kv, "v")));
}

LogicalResult QKVRoPEOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  int64_t h = getHeads(), kv = getKvHeads(), hd = getQ().getType().getDimSize(3);
  Value q = sliceLast(b, loc, getInput(), 0, h * hd);
  Value k = sliceLast(b, loc, getInput(), h * hd, kv * hd);
  Value v = sliceLast(b, loc, getInput(), (h + kv) * hd, kv * hd);
  auto split = [&](Value x, int64_t heads) {
    return SplitDimOp::create(b, loc, x, b.getI64IntegerAttr(2),
                              b.getDenseI64ArrayAttr({heads, hd}));
  };
  results.push_back(RoPEOp::create(b, loc, split(q, h), getThetaAttr(), getOffset(), nullptr));
  results.push_back(RoPEOp::create(b, loc, split(k, kv), getThetaAttr(), getOffset(), nullptr));
  results.push_back(split(v, kv));
  return success();
}

LogicalResult QKVRoPEGradOp::verify() {
  RankedTensorType q = getQGrad().getType(), k = getKGrad().getType();
  if (q.getRank() != 4 || k.getRank() != 4)
    return emitOpError() << "q_grad and k_grad must be [batch, seq, heads, head_dim]";
  if (!(getTheta().convertToDouble() > 0.0))
    return emitOpError() << "theta must be positive";
  if (q.isDynamicDim(2) || k.isDynamicDim(2) || q.isDynamicDim(3) || k.getDimSize(3) != q.getDimSize(3) ||
      q.getDimSize(0) != k.getDimSize(0) || q.getDimSize(1) != k.getDimSize(1) ||
      q.getElementType() != k.getElementType())
    return emitOpError() << "q_grad " << q << " and k_grad " << k
                         << " must share batch, seq, a static head_dim and element type";
  auto want = RankedTensorType::get(
      {q.getDimSize(0), q.getDimSize(1), (q.getDimSize(2) + 2 * k.getDimSize(2)) * q.getDimSize(3)},
      q.getElementType());
  if (getType() != want)
    return emitOpError() << "result must be " << want << ", got " << getType();
  return success();
}

LogicalResult QKVRoPEGradOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  auto undo = [&](Value g) {
    return MergeDimsOp::create(
        b, loc, RoPEOp::create(b, loc, g, getThetaAttr(), getOffset(), b.getUnitAttr()),
        b.getI64IntegerAttr(2));
  };
  Value v = MergeDimsOp::create(b, loc, getVGrad(), b.getI64IntegerAttr(2));
  results.push_back(ConcatOp::create(b, loc, ValueRange{undo(getQGrad()), undo(getKGrad()), v},
                                     b.getI64IntegerAttr(2)));
  return success();
}

//===--- add_rms_norm -----------------------------------------------------------------===//

LogicalResult AddRMSNormOp::verify() {
  if (getInput().getType() != getResidual().getType())
    return emitOpError() << "input type " << getInput().getType()
                         << " differs from residual type " << getResidual().getType();
  SmallVector<Type> forward;
  RMSNormOp::Properties props;
  props.eps = getEpsAttr();
  SmallVector<Value> operands = {getInput(), getWeight()};
  if (failed(RMSNormOp::inferReturnTypes(getContext(), getLoc(),
                                         RMSNormOp::Adaptor(operands, DictionaryAttr(), props),
                                         forward)))
    return failure();
  if (getSum().getType() != getInput().getType() || getNormed().getType() != forward[0])
    return emitOpError() << "results must both have the input type " << getInput().getType();
  return success();
}

LogicalResult AddRMSNormOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Value sum = AddOp::create(b, getLoc(), getInput().getType(), getInput(), getResidual());
  results.push_back(sum);
  results.push_back(RMSNormOp::create(b, getLoc(), sum, getWeight(), getEpsAttr()));
  return success();
}

LogicalResult AddRMSNormGradOp::verify() {
  return checkRMSNorm(*this, getSum(), getWeight());
}

LogicalResult AddRMSNormGradOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  auto g = RMSNormGradOp::create(b, getLoc(), getSum(), getWeight(), getNormedGrad(),
                                 getEpsAttr());
  results.push_back(AddOp::create(b, getLoc(), getSum().getType(), getSumGrad(),
                                  g.getInputGrad()));
  results.push_back(g.getWeightGrad());
  return success();
}

//===--- flash_attention --------------------------------------------------------------===//

LogicalResult FlashAttentionOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                                 Adaptor adaptor, SmallVectorImpl<Type> &out) {
  AttentionOp::Properties props;
  props.causal = adaptor.getCausalAttr();
  props.window = adaptor.getWindowAttr();
  props.scale = adaptor.getScaleAttr();
  SmallVector<Value> operands = {adaptor.getQuery(), adaptor.getKey(), adaptor.getValue()};
  if (failed(AttentionOp::inferReturnTypes(
          ctx, loc, AttentionOp::Adaptor(operands, DictionaryAttr(), props), out)))
    return failure();
  auto q = cast<RankedTensorType>(out[0]);
  out.push_back(RankedTensorType::get({q.getDimSize(0), q.getDimSize(1), q.getDimSize(2)},
                                      Float32Type::get(ctx)));
  return success();
}

double FlashAttentionOp::getEffectiveScale() {
  return attentionScale(getScale(), getQuery(), getKey(), getValue());
}

double FlashAttentionGradOp::getEffectiveScale() {
  return attentionScale(getScale(), getQuery(), getKey(), getValue());
}

LogicalResult FlashAttentionOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  results.push_back(AttentionOp::create(b, getLoc(), getQuery(), getKey(), getValue(),
                                        getCausalAttr(), getWindowAttr(), getScaleAttr()));
  results.push_back(AttentionLSEOp::create(b, getLoc(), getLse().getType(), getQuery(),
                                           getKey(), getCausalAttr(), getWindowAttr(),
                                           getScaleAttr()));
  return success();
}

LogicalResult FlashAttentionGradOp::verify() {
  SmallVector<Type> forward;
  if (failed(checkAttention(*this, getQuery(), getKey(), getValue(), forward)))
    return failure();
  if (getLse().getType() != rowStatsType(getQuery()))
    return emitOpError() << "lse must be " << rowStatsType(getQuery()) << ", got "
                         << getLse().getType();
  return success();
}

LogicalResult AttentionLSEOp::verify() {
  SmallVector<Type> forward;
  if (failed(checkAttention(*this, getQuery(), getKey(), getKey(), forward)))
    return failure();
  if (getType() != rowStatsType(getQuery()))
    return emitOpError() << "result must be " << rowStatsType(getQuery()) << ", got "
                         << getType();
  return success();
}

LogicalResult FlashAttentionGradOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  auto g = AttentionGradOp::create(b, getLoc(), getQuery(), getKey(), getValue(), getGrad(),
                                   getCausalAttr(), getWindowAttr(), getScaleAttr());
  llvm::append_range(results, g.getResults());
  return success();
}

//===--- cross-entropy ----------------------------------------------------------------===//

LogicalResult LogSumExpOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &out) {
  auto input = rankedOperand(loc, adaptor.getInput(), "input");
  if (failed(input))
    return failure();
  if (input->getRank() < 1)
    return emitOptionalError(loc, "logsumexp input must have rank >= 1");
  out.push_back(RankedTensorType::get(input->getShape().drop_back(), input->getElementType()));
  return success();
}

LogicalResult FusedCrossEntropyOp::inferReturnTypes(MLIRContext *ctx,
                                                    std::optional<Location> loc,
                                                    Adaptor adaptor, SmallVectorImpl<Type> &out) {
  CrossEntropyOp::Properties props;
  props.ignore_index = adaptor.getIgnoreIndexAttr();
  SmallVector<Value> operands = {adaptor.getLogits(), adaptor.getTargets()};
  if (failed(CrossEntropyOp::inferReturnTypes(
          ctx, loc, CrossEntropyOp::Adaptor(operands, DictionaryAttr(), props), out)))
    return failure();
  auto logits = cast<RankedTensorType>(adaptor.getLogits().getType());
  out.push_back(RankedTensorType::get(logits.getShape().drop_back(), Float32Type::get(ctx)));
  return success();
}

LogicalResult FusedCrossEntropyOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  results.push_back(CrossEntropyOp::create(b, loc, getLogits(), getTargets(),
                                           getIgnoreIndexAttr()));
  Value logits = getLogits();
  if (!getLogits().getType().getElementType().isF32())
    logits = CastOp::create(b, loc, getLogits().getType().clone(b.getF32Type()), logits);
  results.push_back(LogSumExpOp::create(b, loc, logits));
  return success();
}

LogicalResult FusedCrossEntropyGradOp::verify() { return checkCrossEntropy(*this, getLse()); }

LogicalResult FusedCrossEntropyGradOp::decompose(OpBuilder &b,
                                                 SmallVectorImpl<Value> &results) {
  results.push_back(CrossEntropyGradOp::create(b, getLoc(), getLogits(), getTargets(),
                                               getGrad(), getIgnoreIndexAttr()));
  return success();
}

//===--- multi_adamw ------------------------------------------------------------------===//

LogicalResult MultiAdamWOp::verify() {
  size_t n = getParams().size();
  if (getGrads().size() != n || getMs().size() != n || getVs().size() != n)
    return emitOpError() << "needs as many grads, ms and vs as params (" << n << "), got "
                         << getGrads().size() << ", " << getMs().size() << ", "
                         << getVs().size();
  if (getWeightDecays().size() != n)
    return emitOpError() << "needs one weight decay per param (" << n << "), got "
                         << getWeightDecays().size();
  if (failed(checkAdamWHyper(*this, getBeta1().convertToDouble(), getBeta2().convertToDouble(),
                             getEps().convertToDouble(), getWeightDecays())))
    return failure();
  if (getResults().size() != 3 * n)
    return emitOpError() << "has " << getResults().size() << " results for " << n
                         << " params (expected " << 3 * n << ")";
  for (size_t i = 0; i < n; ++i) {
    Type t = getParams()[i].getType();
    for (Value v : {getGrads()[i], getMs()[i], getVs()[i], Value(getResults()[i]),
                    Value(getResults()[n + i]), Value(getResults()[2 * n + i])})
      if (v.getType() != t)
        return emitOpError() << "param " << i << " has type " << t << " but a matching grad, "
                             << "moment or result has " << v.getType();
  }
  return success();
}

LogicalResult MultiAdamWOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  size_t n = getParams().size();
  SmallVector<Value> ps, ms, vs;
  for (size_t i = 0; i < n; ++i) {
    Type t = getParams()[i].getType();
    auto u = AdamWOp::create(b, getLoc(), t, t, t, getParams()[i], getGrads()[i], getMs()[i],
                             getVs()[i], getLr(), getStep(), getGradScale(), getBeta1Attr(),
                             getBeta2Attr(), getEpsAttr(),
                             b.getF64FloatAttr(getWeightDecays()[i]));
    ps.push_back(u.getNewParam());
    ms.push_back(u.getNewM());
    vs.push_back(u.getNewV());
  }
  llvm::append_range(results, ps);
  llvm::append_range(results, ms);
  llvm::append_range(results, vs);
  return success();
}

//===--- fused_elementwise ------------------------------------------------------------===//

LogicalResult FusedElementwiseOp::verify() {
  RankedTensorType result = getType();
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError() << "body takes " << body.getNumArguments() << " scalars for "
                         << getInputs().size() << " inputs";
  for (auto [i, v] : llvm::enumerate(getInputs())) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getShape() != result.getShape())
      return emitOpError() << "input " << i << " has shape " << t << ", the result "
                           << result;
    if (body.getArgument(i).getType() != t.getElementType())
      return emitOpError() << "body argument " << i << " must be "
                           << t.getElementType();
  }
  auto yield = body.empty() ? YieldOp() : dyn_cast<YieldOp>(body.back());
  if (!yield || yield.getValue().getType() != result.getElementType())
    return emitOpError() << "body must end with llama.yield of " << result.getElementType();
  Type et = result.getElementType();
  for (Operation &op : body.without_terminator()) {
    if (!isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp, arith::NegFOp,
             arith::MaximumFOp, arith::ConstantOp, math::ExpOp, math::LogOp, math::SqrtOp,
             math::RsqrtOp>(op))
      return op.emitOpError("is not supported in a llama.fused_elementwise body");
    // Every scalar is of the element type, and computed in the body (one element at a time:
    // nothing from outside).
    for (Value v : op.getOperands())
      if (v.getParentRegion() != &getBody())
        return op.emitOpError("uses a value defined outside the llama.fused_elementwise body");
    for (Type t : op.getResultTypes())
      if (t != et)
        return op.emitOpError() << "must produce " << et << ", got " << t;
  }
  if (yield.getValue().getParentRegion() != &getBody())
    return emitOpError() << "body must yield a value it computes";
  return success();
}

LogicalResult FusedElementwiseOp::decompose(OpBuilder &b, SmallVectorImpl<Value> &results) {
  Location loc = getLoc();
  RankedTensorType type = getType();
  if (!type.hasStaticShape())
    return emitOpError("decomposition needs a static shape");
  IRMapping map;
  Block &body = getBody().front();
  for (auto [arg, input] : llvm::zip(body.getArguments(), getInputs()))
    map.map(arg, input);
  for (Operation &op : body.without_terminator()) {
    auto in = [&](unsigned i) { return map.lookup(op.getOperand(i)); };
    Type t = type;
    Value v =
        llvm::TypeSwitch<Operation *, Value>(&op)
            .Case([&](arith::AddFOp) { return AddOp::create(b, loc, t, in(0), in(1)); })
            .Case([&](arith::SubFOp) { return SubOp::create(b, loc, t, in(0), in(1)); })
            .Case([&](arith::MulFOp) { return MulOp::create(b, loc, t, in(0), in(1)); })
            .Case([&](arith::DivFOp) { return DivOp::create(b, loc, t, in(0), in(1)); })
            .Case([&](arith::MaximumFOp) { return MaxOp::create(b, loc, t, in(0), in(1)); })
            .Case([&](arith::NegFOp) { return NegOp::create(b, loc, t, in(0)); })
            .Case([&](math::ExpOp) { return ExpOp::create(b, loc, t, in(0)); })
            .Case([&](math::LogOp) { return LogOp::create(b, loc, t, in(0)); })
            .Case([&](math::SqrtOp) { return SqrtOp::create(b, loc, t, in(0)); })
            .Case([&](math::RsqrtOp) { return RsqrtOp::create(b, loc, t, in(0)); })
            .Case([&](arith::ConstantOp c) -> Value {
              auto value = cast<FloatAttr>(c.getValue());
              return arith::ConstantOp::create(
                  b, loc, DenseElementsAttr::get(type, value.getValue()));
            })
            .Default([](Operation *) { return Value(); });
    if (!v)
      return op.emitOpError("cannot be decomposed");
    map.map(op.getResult(0), v);
  }
  results.push_back(map.lookup(cast<YieldOp>(body.getTerminator()).getValue()));
  return success();
}
