//===- ShapeHelpers.h - shared pieces of the ops' shape rules ------------*- C++ -*-===//
//
// Diagnostics that name the offending dimension and both values, used by every shape rule
// (LlamaOps.cpp, LlamaTrainingOps.cpp). Internal to the dialect.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_DIALECTS_LLAMA_SHAPEHELPERS_H
#define LLAMAC_DIALECTS_LLAMA_SHAPEHELPERS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

namespace llamac::llama::detail {

using namespace mlir;


/// True when both sizes are known and differ.
inline bool conflict(int64_t a, int64_t b) {
  return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
}

/// The better-known of two sizes that do not conflict.
inline int64_t meet(int64_t a, int64_t b) { return ShapedType::isDynamic(a) ? b : a; }

/// The ranked tensor type of `v`, or an error naming the operand.
inline FailureOr<RankedTensorType> rankedOperand(std::optional<Location> loc, Value v,
                                          StringRef what) {
  if (!v)
    return emitOptionalError(loc, "missing operand '", what, "'");
  if (auto t = dyn_cast<RankedTensorType>(v.getType()))
    return t;
  return emitOptionalError(loc, "operand '", what, "' must be a ranked tensor, got ",
                           v.getType());
}

inline LogicalResult expectRank(std::optional<Location> loc, RankedTensorType t, StringRef what,
                         int64_t rank, StringRef layout) {
  if (t.getRank() == rank)
    return success();
  return emitOptionalError(loc, what, " must have rank ", rank, " (", layout, "), got rank ",
                           t.getRank());
}

inline LogicalResult sameElementType(std::optional<Location> loc, RankedTensorType a, StringRef an,
                              RankedTensorType b, StringRef bn) {
  if (a.getElementType() == b.getElementType())
    return success();
  return emitOptionalError(loc, an, " element type ", a.getElementType(), " differs from ", bn,
                           " element type ", b.getElementType());
}

/// Checks `a[ai]` against `b[bi]`; on conflict the diagnostic names both dimensions and
/// both values.
inline LogicalResult matchDim(std::optional<Location> loc, RankedTensorType a, int64_t ai,
                       StringRef an, RankedTensorType b, int64_t bi, StringRef bn) {
  if (!conflict(a.getDimSize(ai), b.getDimSize(bi)))
    return success();
  return emitOptionalError(loc, an, " (", a.getDimSize(ai), ") does not match ", bn, " (",
                           b.getDimSize(bi), ")");
}

inline LogicalResult checkDimIndex(std::optional<Location> loc, int64_t dim, int64_t rank) {
  if (dim >= 0 && dim < rank)
    return success();
  return emitOptionalError(loc, "dim ", dim, " is out of range for rank ", rank);
}

} // namespace llamac::llama::detail

#endif
