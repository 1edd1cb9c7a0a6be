//===- LlamaVJP.cpp - the reverse-mode rule of every differentiable op -------------===//
//
// One buildVJP per op: from the cotangents of the op's results, the cotangents of its
// operands (null where an operand is not differentiable). Rules build llama ops only, so
// the backward graph is as analysable, fusable and interpretable as the forward one.
// Rules are checked against central finite differences in test/dialects/llama/VJPTest.cpp.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace llamac::llama;

#include "dialects/llama/LlamaInterfaces.cpp.inc"

namespace {

/// [.., a, b] -> [.., b, a].
Value swapLastTwo(OpBuilder &b, Location loc, Value v) {
  int64_t rank = cast<RankedTensorType>(v.getType()).getRank();
  SmallVector<int64_t> perm;
  for (int64_t i = 0; i < rank; ++i)
    perm.push_back(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  return TransposeOp::create(b, loc, v, b.getDenseI64ArrayAttr(perm));
}

/// Merges leading dimensions until `v` has rank `rank`.
Value mergeLeading(OpBuilder &b, Location loc, Value v, int64_t rank) {
  while (cast<RankedTensorType>(v.getType()).getRank() > rank)
    v = MergeDimsOp::create(b, loc, v, b.getI64IntegerAttr(0));
  return v;
}


template <typename OpTy>
Value binary(OpBuilder &b, Location loc, Value x, Value y) {
  return OpTy::create(b, loc, x.getType(), x, y);
}

/// A zero tensor of `type` (static shapes only): the cotangent of a result nothing used.
FailureOr<Value> zerosLike(OpBuilder &b, Operation *op, Type type) {
  auto t = cast<RankedTensorType>(type);
  if (!t.hasStaticShape())
    return op->emitOpError("VJP needs a static shape to build a zero cotangent");
  return Value(arith::ConstantOp::create(b, op->getLoc(), cast<TypedAttr>(b.getZeroAttr(t))));
}

/// `c`, or zeros of `type` if `c` is null.
FailureOr<Value> orZeros(OpBuilder &b, Operation *op, Value c, Type type) {
  return c ? FailureOr<Value>(c) : zerosLike(b, op, type);
}

Value scale(OpBuilder &b, Location loc, Value x, double factor) {
  return ScaleOp::create(b, loc, x.getType(), x, b.getF64FloatAttr(factor));
}

} // namespace

//===--- structured ops ---------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  int64_t vocab = getTable().getType().getDimSize(0);
  out.push_back(EmbeddingGradOp::create(b, getLoc(), getTokens(), ct[0],
                                        b.getI64IntegerAttr(vocab)));
  out.push_back(nullptr); // token ids
  return success();
}

LogicalResult LinearOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  if (getInput().getType().getRank() < 2)
    return emitOpError("VJP needs an input of rank >= 2");
  // dx[.., k] = sum_n dy[.., n] w[n, k]; dw[n, k] = sum_rows dy[r, n] x[r, k].
  out.push_back(MatmulOp::create(b, getLoc(), ct[0], getWeight(), false));
  out.push_back(LinearWeightGradOp::create(b, getLoc(), ct[0], getInput()));
  return success();
}

LogicalResult MatmulOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  Location loc = getLoc();
  Value dy = ct[0], a = getLhs(), rhs = getRhs();
  bool t = getTransposeRhs();
  // dA = dY B^T (or dY B when B is stored transposed).
  out.push_back(MatmulOp::create(b, loc, dy, rhs, !t));
  // dB = A^T dY (or dY^T A when transposed); a shared matrix sums over the batch, which
  // merging the batch into the rows does.
  int64_t rank = getRhs().getType().getRank();
  if (rank != cast<RankedTensorType>(a.getType()).getRank()) {
    a = mergeLeading(b, loc, a, 2);
    dy = mergeLeading(b, loc, dy, 2);
  }
  out.push_back(t ? MatmulOp::create(b, loc, swapLastTwo(b, loc, dy), a, false)
                  : MatmulOp::create(b, loc, swapLastTwo(b, loc, a), dy, false));
  return success();
}

LogicalResult RMSNormOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  auto grad = RMSNormGradOp::create(b, getLoc(), getInput(), getWeight(), ct[0], getEpsAttr());
  out.push_back(grad.getInputGrad());
  out.push_back(grad.getWeightGrad());
  return success();
}

LogicalResult RoPEOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  // A rotation's transpose is the opposite rotation.
  out.push_back(RoPEOp::create(b, getLoc(), ct[0], getThetaAttr(), getOffset(),
                               getInverse() ? UnitAttr() : b.getUnitAttr()));
  if (getOffset())
    out.push_back(nullptr);
  return success();
}

LogicalResult AttentionOp::buildVJP(OpBuilder &b, ValueRange ct,
                                    SmallVectorImpl<Value> &out) {
  auto grad = AttentionGradOp::create(b, getLoc(), getQuery(), getKey(), getValue(), ct[0],
                                      getCausalAttr(), getWindowAttr(), getScaleAttr());
  out.push_back(grad.getQueryGrad());
  out.push_back(grad.getKeyGrad());
  out.push_back(grad.getValueGrad());
  return success();
}

LogicalResult SoftmaxOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(SoftmaxGradOp::create(b, getLoc(), getType(), getResult(), ct[0]));
  return success();
}

LogicalResult CrossEntropyOp::buildVJP(OpBuilder &b, ValueRange ct,
                                       SmallVectorImpl<Value> &out) {
  out.push_back(CrossEntropyGradOp::create(b, getLoc(), getLogits(), getTargets(), ct[0],
                                           getIgnoreIndexAttr()));
  out.push_back(nullptr); // targets
  return success();
}

//===--- elementwise ops --------------------------------------------------------------===//

LogicalResult SiLUOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(SiLUGradOp::create(b, getLoc(), getType(), getInput(), ct[0]));
  return success();
}

LogicalResult SigmoidOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  // dy * y (1 - y) = dy * (y - y^2).
  Location loc = getLoc();
  Value y = getResult();
  Value d = binary<SubOp>(b, loc, y, binary<MulOp>(b, loc, y, y));
  out.push_back(binary<MulOp>(b, loc, ct[0], d));
  return success();
}

LogicalResult NegOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(NegOp::create(b, getLoc(), getType(), ct[0]));
  return success();
}

LogicalResult ExpOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(binary<MulOp>(b, getLoc(), ct[0], getResult()));
  return success();
}

LogicalResult LogOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(binary<DivOp>(b, getLoc(), ct[0], getInput()));
  return success();
}

LogicalResult SqrtOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  // dy / (2 sqrt(x)).
  out.push_back(binary<DivOp>(b, getLoc(), scale(b, getLoc(), ct[0], 0.5), getResult()));
  return success();
}

LogicalResult RsqrtOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3.
  Location loc = getLoc();
  Value y = getResult();
  Value y3 = binary<MulOp>(b, loc, y, binary<MulOp>(b, loc, y, y));
  out.push_back(scale(b, loc, binary<MulOp>(b, loc, ct[0], y3), -0.5));
  return success();
}

LogicalResult ScaleOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(ScaleOp::create(b, getLoc(), getType(), ct[0], getFactorAttr()));
  return success();
}

LogicalResult CastOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(CastOp::create(b, getLoc(), getInput().getType(), ct[0]));
  return success();
}

LogicalResult AddOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(ct[0]);
  out.push_back(ct[0]);
  return success();
}

LogicalResult SubOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(ct[0]);
  out.push_back(NegOp::create(b, getLoc(), getType(), ct[0]));
  return success();
}

LogicalResult MulOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(binary<MulOp>(b, getLoc(), ct[0], getRhs()));
  out.push_back(binary<MulOp>(b, getLoc(), ct[0], getLhs()));
  return success();
}

LogicalResult DivOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  // d(x/y) = dx / y - x dy / y^2.
  Location loc = getLoc();
  out.push_back(binary<DivOp>(b, loc, ct[0], getRhs()));
  Value num = binary<MulOp>(b, loc, ct[0], getLhs());
  Value den = binary<MulOp>(b, loc, getRhs(), getRhs());
  out.push_back(NegOp::create(b, loc, getType(), binary<DivOp>(b, loc, num, den)));
  return success();
}

//===--- shape ops --------------------------------------------------------------------===//

LogicalResult SplitDimOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  Value v = ct[0];
  for (size_t i = 1; i < getSizes().size(); ++i)
    v = MergeDimsOp::create(b, getLoc(), v, getDimAttr());
  out.push_back(v);
  return success();
}

LogicalResult MergeDimsOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  RankedTensorType in = getInput().getType();
  int64_t d = getDim();
  if (in.isDynamicDim(d) || in.isDynamicDim(d + 1))
    return emitOpError("VJP needs static sizes for dims ") << d << " and " << d + 1;
  out.push_back(SplitDimOp::create(b, getLoc(), ct[0], getDimAttr(),
                                   b.getDenseI64ArrayAttr({in.getDimSize(d),
                                                           in.getDimSize(d + 1)})));
  return success();
}

LogicalResult TransposeOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inverse[perm[i]] = int64_t(i);
  out.push_back(TransposeOp::create(b, getLoc(), ct[0], b.getDenseI64ArrayAttr(inverse)));
  return success();
}

LogicalResult ConcatOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  int64_t dim = getDim(), offset = 0;
  for (Value in : getInputs()) {
    int64_t size = cast<RankedTensorType>(in.getType()).getDimSize(dim);
    if (ShapedType::isDynamic(size))
      return emitOpError("VJP needs static sizes along the concatenated dim ") << dim;
    out.push_back(SliceOp::create(b, getLoc(), ct[0], getDimAttr(),
                                  b.getI64IntegerAttr(offset), b.getI64IntegerAttr(size)));
    offset += size;
  }
  return success();
}

LogicalResult SliceOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  int64_t extent = getInput().getType().getDimSize(getDim());
  if (ShapedType::isDynamic(extent))
    return emitOpError("VJP needs a static size along the sliced dim ") << getDim();
  out.push_back(PadOp::create(b, getLoc(), ct[0], getDimAttr(), getOffsetAttr(),
                              b.getI64IntegerAttr(extent - getOffset() - getSize())));
  return success();
}

LogicalResult PadOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  int64_t size = getInput().getType().getDimSize(getDim());
  if (ShapedType::isDynamic(size))
    return emitOpError("VJP needs a static size along the padded dim ") << getDim();
  out.push_back(SliceOp::create(b, getLoc(), ct[0], getDimAttr(), getBeforeAttr(),
                                b.getI64IntegerAttr(size)));
  return success();
}

//===--- fused ops --------------------------------------------------------------------===//

LogicalResult SwiGLUOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  out.push_back(SwiGLUGradOp::create(b, getLoc(), getInput(), ct[0]));
  return success();
}

LogicalResult QKVRoPEOp::buildVJP(OpBuilder &b, ValueRange ct, SmallVectorImpl<Value> &out) {
  FailureOr<Value> dq = orZeros(b, *this, ct[0], getQ().getType());
  FailureOr<Value> dk = orZeros(b, *this, ct[1], getK().getType());
  FailureOr<Value> dv = orZeros(b, *this, ct[2], getV().getType());
  if (failed(dq) || failed(dk) || failed(dv))
    return failure();
  out.push_back(QKVRoPEGradOp::create(b, getLoc(), getInput().getType(), *dq, *dk, *dv,
                                      getThetaAttr(), getOffset()));
  if (getOffset())
    out.push_back(nullptr);
  return success();
}

LogicalResult AddRMSNormOp::buildVJP(OpBuilder &b, ValueRange ct,
                                     SmallVectorImpl<Value> &out) {
  FailureOr<Value> ds = orZeros(b, *this, ct[0], getSum().getType());
  FailureOr<Value> dn = orZeros(b, *this, ct[1], getNormed().getType());
  if (failed(ds) || failed(dn))
    return failure();
  auto g = AddRMSNormGradOp::create(b, getLoc(), getSum(), getWeight(), *dn, *ds, getEpsAttr());
  out.push_back(g.getInputGrad()); // input and residual get the same gradient
  out.push_back(g.getInputGrad());
  out.push_back(g.getWeightGrad());
  return success();
}

LogicalResult FlashAttentionOp::buildVJP(OpBuilder &b, ValueRange ct,
                                         SmallVectorImpl<Value> &out) {
  if (ct[1])
    return emitOpError("the log-sum-exp result is for the backward and is not differentiable");
  auto g = FlashAttentionGradOp::create(b, getLoc(), getQuery().getType(), getKey().getType(),
                                        getValue().getType(), getQuery(), getKey(), getValue(),
                                        getResult(), getLse(), ct[0], getCausalAttr(),
                                        getWindowAttr(), getScaleAttr(), getBlockQAttr(),
                                        getBlockKAttr());
  llvm::append_range(out, g.getResults());
  return success();
}

LogicalResult FusedCrossEntropyOp::buildVJP(OpBuilder &b, ValueRange ct,
                                            SmallVectorImpl<Value> &out) {
  if (ct[1])
    return emitOpError("the log-sum-exp result is for the backward and is not differentiable");
  out.push_back(FusedCrossEntropyGradOp::create(b, getLoc(), getLogits(), getTargets(),
                                                getLse(), ct[0], getIgnoreIndexAttr(),
                                                getChunkAttr()));
  out.push_back(nullptr); // targets
  return success();
}
