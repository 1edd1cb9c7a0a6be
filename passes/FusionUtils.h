//===- FusionUtils.h - what the fusion passes share -----------------------*- C++ -*-===//
#ifndef LLAMAC_PASSES_FUSIONUTILS_H
#define LLAMAC_PASSES_FUSIONUTILS_H

#include "mlir/IR/Operation.h"
#include "llvm/Support/raw_ostream.h"

namespace llamac {

/// The op defining `v` if it is an OpTy with `v` as its only use, else null: the
/// intermediate of a pattern may be fused away only if nothing else needs it.
template <typename OpTy>
OpTy singleUseDef(mlir::Value v) {
  auto def = v.getDefiningOp<OpTy>();
  return def && v.hasOneUse() ? def : OpTy();
}

/// "llamac-fuse-swiglu: fused 4" on stdout, for the passes' `report` option.
inline void reportFused(llvm::StringRef pass, int64_t count) {
  llvm::outs() << pass << ": fused " << count << "\n";
}

} // namespace llamac

#endif
