//===- LlamaOps.h - ops of the llama dialect -----------------------------*- C++ -*-===//
#ifndef LLAMAC_DIALECTS_LLAMA_LLAMAOPS_H
#define LLAMAC_DIALECTS_LLAMA_LLAMAOPS_H

#include "dialects/llama/LlamaDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
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

#define GET_OP_CLASSES
#include "dialects/llama/LlamaOps.h.inc"

#endif
