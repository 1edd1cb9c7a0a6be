//===- MemoryPlan.h - the static memory plan of a function ----------------*- C++ -*-===//
//
// The analysis behind llamac-memory-plan, for the pass, the emitters and the tests: which
// values of a function need storage of their own, when each is live, and where it lives in
// one arena.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_PASSES_MEMORYPLAN_H
#define LLAMAC_PASSES_MEMORYPLAN_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <cstdint>
#include <string>

namespace llamac {

namespace llama {
class ModelOp;
} // namespace llama

/// Every offset in the arena is a multiple of this (a cache line; also enough for any
/// vector load the emitters generate).
constexpr int64_t kArenaAlignment = 64;

/// One value that needs storage in the arena. Its live interval [start, end] counts ops of
/// the function's block (0 is the first op) and is inclusive at both ends: the buffer is
/// written by op `start` and read last by op `end`, so an op's result never shares memory
/// with its operands.
struct PlannedBuffer {
  mlir::Value value;
  int64_t size = 0;    ///< bytes
  int64_t start = 0;   ///< index of the defining op
  int64_t end = 0;     ///< index of the last op that reads it, directly or through a view
  int64_t offset = -1; ///< bytes from the start of the arena; -1 until placed
};

/// The plan of one function.
struct MemoryPlan {
  /// In definition order (op by op, result by result).
  llvm::SmallVector<PlannedBuffer> buffers;
  /// max(offset + size): the arena the function needs.
  int64_t arenaBytes = 0;
  /// The sum of the buffers' sizes: what the function would take without any reuse.
  int64_t buffersBytes = 0;
};

/// Bytes of storage a value of type `type` needs (elements times bytes per element, rounded
/// up to whole bytes); -1 for a type that is not a statically shaped tensor of ints or
/// floats.
int64_t storageBytes(mlir::Type type);

/// The parameters a function of `model` concatenates along their first dimension
/// ([Wq; Wk; Wv], [W1; W3]), each name mapped to its group in concatenation order (the
/// first concatenation naming a parameter decides). Storage places each group back to back,
/// so that the concatenation is a view: the parameter region (kir::lowerParams) and FSDP's
/// units (llamac-plan-fsdp).
llvm::StringMap<llvm::SmallVector<llvm::StringRef>> concatenatedParams(llama::ModelOp model);

/// Whether `op` is a view of its first operand: the reshapes (llama.split_dim,
/// llama.merge_dims), and a llama.slice that keeps a contiguous range of rows (along the
/// first dimension of extent above 1, or an earlier one), which is a window of its input,
/// and a llama.concat along the first dimension of such windows lying back to back in one
/// value's storage.
/// Emitters never copy for a view; its uses count as uses of the input's storage.
bool isView(mlir::Operation *op);

/// Whether `value` needs a buffer of its own: a tensor result of an op of the function's
/// block that is neither a parameter read (llama.get_param results alias parameter storage,
/// outside the arena) nor a view (isView). Function arguments belong to the caller.
bool needsBuffer(mlir::Value value);

/// The buffers of `fn` with their sizes and live intervals, placed in one arena (greedy by
/// size: largest first, each at the lowest 64-byte-aligned offset free for its whole
/// interval). Emits a diagnostic at the offending op and fails on a dynamically shaped
/// value, on a body of several blocks, and on a tensor of elements without a size.
/// `storedElsewhere`, when given, names values that a lowering places outside the arena
/// (written straight into a parameter or a result); they get no buffer.
mlir::FailureOr<MemoryPlan>
planFunction(mlir::func::FuncOp fn,
             llvm::function_ref<bool(mlir::Value)> storedElsewhere = nullptr);

/// Places `plan.buffers` (sizes and intervals given; offsets overwritten) and sets
/// `arenaBytes` and `buffersBytes`. What planFunction does once it has the intervals.
void assignOffsets(MemoryPlan &plan);

/// Whether the plan is sound: every offset placed and aligned, every buffer inside the arena,
/// and no two buffers whose live intervals intersect overlap in memory. On failure `why`,
/// when given, says which buffers.
bool verifyPlan(const MemoryPlan &plan, std::string *why = nullptr);

} // namespace llamac

#endif
