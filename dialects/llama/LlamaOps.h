//===- LlamaOps.h - ops of the llama dialect -----------------------------*- C++ -*-===//
#ifndef LLAMAC_DIALECTS_LLAMA_LLAMAOPS_H
#define LLAMAC_DIALECTS_LLAMA_LLAMAOPS_H

#include "dialects/llama/LlamaDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace llamac::llama {
/// The storage of parameters and state tensors, read by llama.get_param and written by
/// llama.set_param.
struct ParamResource : mlir::SideEffects::Resource::Base<ParamResource> {
  llvm::StringRef getName() override { return "llama.params"; }
};
} // namespace llamac::llama

#include "dialects/llama/LlamaInterfaces.h.inc"

namespace llamac::llama {
/// The scale attention applies: `scale` if given, else 1/sqrt(head_dim), the head dim
/// taken from whichever of query, key and value knows it.
double attentionScale(std::optional<llvm::APFloat> scale, mlir::Value query, mlir::Value key,
                      mlir::Value value);
} // namespace llamac::llama

#define GET_OP_CLASSES
#include "dialects/llama/LlamaOps.h.inc"

#endif
