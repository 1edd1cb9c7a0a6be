//===- Remat.h - what a backward keeps alive ------------------------------*- C++ -*-===//
#ifndef LLAMAC_PASSES_REMAT_H
#define LLAMAC_PASSES_REMAT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <map>
#include <optional>
#include <string>

namespace llamac {

/// The transformer layer an op belongs to ("layers.3"), from the name llama-expand-layers
/// puts in its location; none for ops outside the layers.
std::optional<std::string> layerOf(mlir::Operation *op);

/// Bytes of forward activations that the backward of `fn` uses, per layer ("" for values
/// outside the layers). Parameters are not activations; reshapes count as their source.
std::map<std::string, int64_t> activationBytesKept(mlir::func::FuncOp fn);

} // namespace llamac

#endif
