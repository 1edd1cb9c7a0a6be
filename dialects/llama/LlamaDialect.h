//===- LlamaDialect.h - the llama dialect --------------------------------*- C++ -*-===//
#ifndef LLAMAC_DIALECTS_LLAMA_LLAMADIALECT_H
#define LLAMAC_DIALECTS_LLAMA_LLAMADIALECT_H

#include "mlir/IR/Dialect.h"
#include "mlir/IR/DialectImplementation.h"

#include "dialects/llama/LlamaDialect.h.inc"
#include "dialects/llama/LlamaEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/llama/LlamaAttrs.h.inc"

#endif
