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

#define GET_OP_CLASSES
#include "dialects/llama/LlamaOps.h.inc"

#endif
