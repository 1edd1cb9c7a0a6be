//===- InitAllDialects.h - the dialects every llamac tool loads ---------*- C++ -*-===//
#ifndef LLAMAC_DIALECTS_INITALLDIALECTS_H
#define LLAMAC_DIALECTS_INITALLDIALECTS_H

#include "dialects/llama/LlamaDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/DialectRegistry.h"

namespace llamac {

/// One list, shared by llamac-opt, llamac and the tests.
inline void registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<llama::LlamaDialect, mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::math::MathDialect, mlir::shard::ShardDialect>();
  mlir::func::registerInlinerExtension(registry);
}

} // namespace llamac

#endif
