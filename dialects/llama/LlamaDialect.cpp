//===- LlamaDialect.cpp - dialect registration and attributes ----------------------===//
#include "dialects/llama/LlamaDialect.h"
#include "dialects/llama/LlamaOps.h"

#include "mlir/Transforms/InliningUtils.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace llamac::llama;

#include "dialects/llama/LlamaDialect.cpp.inc"
#include "dialects/llama/LlamaEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "dialects/llama/LlamaAttrs.cpp.inc"

namespace {
/// Every llama op may be inlined: the model's functions are pure tensor programs (a call
/// from @loss to @forward becomes one flat function for autodiff).
struct LlamaInlinerInterface : DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final { return true; }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final { return true; }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final { return true; }
};
} // namespace

void LlamaDialect::initialize() {
  addInterfaces<LlamaInlinerInterface>();
  addOperations<
#define GET_OP_LIST
#include "dialects/llama/LlamaOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/llama/LlamaAttrs.cpp.inc"
      >();
}

LogicalResult ConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t dim,
                                 int64_t nLayers, int64_t nHeads, int64_t nKVHeads,
                                 int64_t ffnDim, int64_t vocabSize, int64_t maxSeqLen,
                                 APFloat normEpsF, APFloat ropeThetaF, int64_t slidingWindow) {
  double normEps = normEpsF.convertToDouble(), ropeTheta = ropeThetaF.convertToDouble();
  auto positive = [&](StringRef name, int64_t v) -> LogicalResult {
    if (v > 0)
      return success();
    return emitError() << "config " << name << " must be positive, got " << v;
  };
  if (failed(positive("dim", dim)) || failed(positive("n_layers", nLayers)) ||
      failed(positive("n_heads", nHeads)) || failed(positive("n_kv_heads", nKVHeads)) ||
      failed(positive("ffn_dim", ffnDim)) || failed(positive("vocab_size", vocabSize)) ||
      failed(positive("max_seq_len", maxSeqLen)))
    return failure();
  if (dim % nHeads != 0)
    return emitError() << "config dim (" << dim << ") is not divisible by n_heads (" << nHeads
                       << ")";
  if ((dim / nHeads) % 2 != 0)
    return emitError() << "config head dim (dim " << dim << " / n_heads " << nHeads << " = "
                       << dim / nHeads << ") must be even for rotary embeddings";
  if (nHeads % nKVHeads != 0)
    return emitError() << "config n_heads (" << nHeads << ") is not divisible by n_kv_heads ("
                       << nKVHeads << ")";
  if (!(normEps > 0.0) || !std::isfinite(normEps))
    return emitError() << "config norm_eps must be positive";
  if (!(ropeTheta > 0.0) || !std::isfinite(ropeTheta))
    return emitError() << "config rope_theta must be positive";
  if (slidingWindow < 0)
    return emitError() << "config sliding_window must be 0 (none) or positive, got "
                       << slidingWindow;
  return success();
}
