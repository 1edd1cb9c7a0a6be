//===- Lower.h - tensor-level llama IR to the kernel-level IR -------------*- C++ -*-===//
//
// lowerParams lays out the model's parameter region; lowerFunction turns one function of a
// compiled model (one block, static shapes, fused ops) into a kir::Function: every value
// gets a BufferRef (a view for reshapes and parameter reads, the memory plan's arena slot,
// or, for values that are only stored to a parameter or returned, that parameter or
// result directly), and every op becomes zero or more launches in program order.
//
// With `kvCache`, the function is the forward pass of one batch row at a runtime position:
// it gains an i64 input `pos`, RoPE starts at `pos`, and each attention reads and extends
// its layer's slice of the KV cache (KernelKind::AttentionKVCache).
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_LOWER_H
#define LLAMAC_CODEGEN_LOWER_H

#include "codegen/KernelIR.h"
#include "dialects/llama/LlamaOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace llamac::kir {

/// Adds every llama.param of `model` to `program.params` (64-byte aligned offsets) and fills
/// the hyper-parameters from its config. Fails (with a diagnostic) on a non-f32 parameter.
/// With `quantize`, weights read only as llama.linear's weight are stored as int8 rows with
/// per-row scales (runtime/cpu/Quantize.h), and their products become gemm_nt_q8 launches.
mlir::LogicalResult lowerParams(llama::ModelOp model, Program &program, bool quantize = false);

struct LowerOptions {
  /// The name the function gets in the program.
  std::string name;
  bool kvCache = false;
};

/// Lowers `fn` and appends it to `program.functions`. Fails with a diagnostic at the first
/// op without a kernel, or on a parameter read after it was replaced.
mlir::LogicalResult lowerFunction(mlir::func::FuncOp fn, Program &program,
                                  const LowerOptions &options);

} // namespace llamac::kir

#endif
