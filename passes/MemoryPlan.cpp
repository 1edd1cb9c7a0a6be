//===- MemoryPlan.cpp - llamac-memory-plan -----------------------------------------===//
//
// One arena per function. Liveness is read off program order (the function is one block),
// with a view's uses counted as uses of the buffer it aliases; placement is greedy by size,
// as the heap simulators of TFLite and XLA do it: the largest buffers are placed first,
// while the arena is still empty, because they are the hardest to fit, and each buffer
// goes to the lowest aligned offset that no buffer live at the same time occupies.
//
//===----------------------------------------------------------------------------------===//
#include "passes/MemoryPlan.h"

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

namespace llamac {
#define GEN_PASS_DEF_LLAMAMEMORYPLAN
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {


bool intervalsIntersect(const PlannedBuffer &a, const PlannedBuffer &b) {
  return a.start <= b.end && b.start <= a.end;
}

bool memoryOverlaps(const PlannedBuffer &a, const PlannedBuffer &b) {
  // Empty buffers occupy nothing, wherever they are placed.
  if (a.size == 0 || b.size == 0)
    return false;
  return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

const char *kStaticShapes = "llamac-memory-plan needs static shapes; run llamac-frontend first";

} // namespace

int64_t llamac::storageBytes(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape() || !tensor.getElementType().isIntOrFloat())
    return -1;
  return tensor.getNumElements() * llvm::divideCeil(tensor.getElementTypeBitWidth(), 8);
}

namespace {

/// The value whose storage `v` is a window of, through reshapes and view slices, and the
/// window's first element and length in it.
struct Window {
  Value root;
  int64_t start = 0, count = 0;
};

Window windowOf(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  Window w{v, 0, type && type.hasStaticShape() ? type.getNumElements() : -1};
  while (Operation *def = w.root.getDefiningOp()) {
    if (isa<SplitDimOp, MergeDimsOp>(def)) {
      w.root = def->getOperand(0);
      continue;
    }
    auto slice = dyn_cast<SliceOp>(def);
    if (!slice || !isView(def))
      break;
    auto in = cast<RankedTensorType>(slice.getInput().getType());
    int64_t inner = 1;
    for (int64_t d = int64_t(slice.getDim()) + 1; d < in.getRank(); ++d)
      inner *= in.getDimSize(d);
    w.start += int64_t(slice.getOffset()) * inner;
    w.root = slice.getInput();
  }
  return w;
}

} // namespace

llvm::StringMap<SmallVector<StringRef>> llamac::concatenatedParams(ModelOp model) {
  llvm::StringMap<SmallVector<StringRef>> groupOf;
  model.walk([&](ConcatOp c) {
    if (c.getDim() != 0)
      return;
    SmallVector<StringRef> names;
    for (Value in : c.getInputs()) {
      auto g = in.getDefiningOp<GetParamOp>();
      if (!g)
        return;
      names.push_back(g.getName());
    }
    if (llvm::any_of(names, [&](StringRef n) { return groupOf.count(n); }))
      return;
    for (StringRef n : names)
      groupOf[n] = names;
  });
  return groupOf;
}

bool llamac::isView(Operation *op) {
  // Reshapes: row-major data does not move when dimensions are split or merged.
  if (isa<SplitDimOp, MergeDimsOp>(op))
    return true;
  // A concatenation along the first dimension of windows that lie back to back in one
  // value's storage (FSDP's [Wq; Wk; Wv] out of a gathered unit) is the window they make.
  if (auto concat = dyn_cast<ConcatOp>(op)) {
    if (concat.getDim() != 0 || concat.getInputs().empty())
      return false;
    Window first = windowOf(concat.getInputs()[0]);
    if (first.count < 0 || !first.root.getDefiningOp())
      return false;
    int64_t next = first.start + first.count;
    for (Value in : concat.getInputs().drop_front()) {
      Window w = windowOf(in);
      if (w.root != first.root || w.count < 0 || w.start != next)
        return false;
      next += w.count;
    }
    return true;
  }
  // A slice along a dimension with only extents of 1 before it is one contiguous range.
  auto slice = dyn_cast<SliceOp>(op);
  if (!slice)
    return false;
  auto type = dyn_cast<RankedTensorType>(slice.getInput().getType());
  if (!type || !type.hasStaticShape())
    return false;
  for (int64_t d = 0; d < int64_t(slice.getDim()); ++d)
    if (type.getDimSize(d) != 1)
      return false;
  return true;
}

bool llamac::needsBuffer(Value value) {
  Operation *def = value.getDefiningOp();
  if (!def || !isa<TensorType>(value.getType()))
    return false;
  return !isa<GetParamOp>(def) && !isView(def);
}

void llamac::assignOffsets(MemoryPlan &plan) {
  SmallVector<PlannedBuffer> &buffers = plan.buffers;
  SmallVector<size_t> order(buffers.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  // Stable, so that buffers of one size are placed in definition order.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].size > buffers[b].size; });

  SmallVector<size_t> placed;
  SmallVector<std::pair<int64_t, int64_t>> taken; // [offset, offset + size), live with it
  plan.arenaBytes = 0;
  plan.buffersBytes = 0;
  for (size_t i : order) {
    PlannedBuffer &buffer = buffers[i];
    taken.clear();
    for (size_t j : placed)
      if (intervalsIntersect(buffer, buffers[j]) && buffers[j].size > 0)
        taken.push_back({buffers[j].offset, buffers[j].offset + buffers[j].size});
    llvm::sort(taken);
    // Walk the occupied ranges upwards: the first gap before one of them that holds the
    // buffer wins; past all of them, the space above the highest is free.
    int64_t cursor = 0;
    for (auto [lo, hi] : taken) {
      if (llvm::alignTo(cursor, kArenaAlignment) + buffer.size <= lo)
        break;
      cursor = std::max(cursor, hi);
    }
    buffer.offset = llvm::alignTo(cursor, kArenaAlignment);
    placed.push_back(i);
    plan.arenaBytes = std::max(plan.arenaBytes, buffer.offset + buffer.size);
    plan.buffersBytes += buffer.size;
  }
}

FailureOr<MemoryPlan> llamac::planFunction(func::FuncOp fn,
                                           function_ref<bool(Value)> storedElsewhere) {
  if (fn.isExternal())
    return MemoryPlan{};
  if (!fn.getBody().hasOneBlock())
    return fn.emitError("llamac-memory-plan needs a function of one block");
  Block &block = fn.getBody().front();

  for (BlockArgument arg : block.getArguments()) {
    auto shaped = dyn_cast<ShapedType>(arg.getType());
    if (shaped && !shaped.hasStaticShape())
      return fn.emitError(kStaticShapes)
             << " (argument " << arg.getArgNumber() << " is " << arg.getType() << ")";
  }

  MemoryPlan plan;
  DenseMap<Operation *, int64_t> position;
  // The buffer each value's storage is: its own, or for a view the one it aliases.
  DenseMap<Value, size_t> bufferOf;
  int64_t index = 0;
  for (Operation &op : block) {
    position[&op] = index;
    for (OpResult result : op.getResults()) {
      auto shaped = dyn_cast<ShapedType>(result.getType());
      if (shaped && !shaped.hasStaticShape())
        return op.emitError(kStaticShapes) << " (result " << result.getResultNumber()
                                           << " is " << result.getType() << ")";
      if (isView(&op)) {
        auto source = bufferOf.find(op.getOperand(0));
        if (source != bufferOf.end())
          bufferOf[result] = source->second;
        continue;
      }
      if (!needsBuffer(result) || (storedElsewhere && storedElsewhere(result)))
        continue;
      int64_t size = storageBytes(result.getType());
      if (size < 0)
        return op.emitError("llamac-memory-plan: no byte size for the elements of result ")
               << result.getResultNumber() << " (" << result.getType() << ")";
      bufferOf[result] = plan.buffers.size();
      plan.buffers.push_back({result, size, index, index, -1});
    }
    ++index;
  }

  // A buffer lives until the last op that reads it or any view of it. A use nested in a
  // region counts at the op of the block that holds the region.
  for (auto [value, buffer] : bufferOf) {
    for (Operation *user : value.getUsers()) {
      Operation *inBlock = block.findAncestorOpInBlock(*user);
      if (!inBlock)
        continue;
      int64_t &end = plan.buffers[buffer].end;
      end = std::max(end, position[inBlock]);
    }
  }
  // A collective runs on the communication stream, beside the compute that follows it in
  // the block; the compute stream waits for it only where its result is first read. What
  // it reads must stay untouched until then, or the next buffer placed there would make
  // that compute wait for the collective (llamac-plan-fsdp's prefetch would not overlap).
  for (Operation &op : block) {
    if (!isa<shard::AllGatherOp, shard::ReduceScatterOp, shard::AllReduceOp>(op))
      continue;
    int64_t firstRead = index - 1;
    SmallVector<Value> values = {op.getResult(0)};
    while (!values.empty()) {
      Value v = values.pop_back_val();
      for (Operation *user : v.getUsers()) {
        Operation *inBlock = block.findAncestorOpInBlock(*user);
        if (!inBlock)
          continue;
        if (isView(inBlock))
          values.append(inBlock->result_begin(), inBlock->result_end());
        else
          firstRead = std::min(firstRead, position[inBlock]);
      }
    }
    for (Value operand : op.getOperands())
      if (auto buffer = bufferOf.find(operand); buffer != bufferOf.end())
        plan.buffers[buffer->second].end =
            std::max(plan.buffers[buffer->second].end, firstRead);
  }
  // The results belong to the caller once the function returns: keep them to the end even
  // where the terminator is not the last reader (it always is in one block, but the plan
  // should not depend on that).
  Operation *terminator = block.getTerminator();
  for (Value returned : terminator->getOperands()) {
    auto buffer = bufferOf.find(returned);
    if (buffer != bufferOf.end())
      plan.buffers[buffer->second].end = index - 1;
  }

  assignOffsets(plan);
  return plan;
}

bool llamac::verifyPlan(const MemoryPlan &plan, std::string *why) {
  auto fail = [&](const Twine &message) {
    if (why)
      *why = message.str();
    return false;
  };
  int64_t sum = 0;
  for (auto [i, b] : llvm::enumerate(plan.buffers)) {
    if (b.offset < 0 || b.offset % kArenaAlignment != 0)
      return fail("buffer " + Twine(i) + " has offset " + Twine(b.offset));
    if (b.size < 0 || b.offset + b.size > plan.arenaBytes)
      return fail("buffer " + Twine(i) + " ends at " + Twine(b.offset + b.size) +
                  ", beyond the arena of " + Twine(plan.arenaBytes));
    if (b.start > b.end)
      return fail("buffer " + Twine(i) + " has an empty live interval");
    sum += b.size;
  }
  if (sum != plan.buffersBytes)
    return fail("the sizes sum to " + Twine(sum) + ", not " + Twine(plan.buffersBytes));
  for (size_t i = 0; i < plan.buffers.size(); ++i)
    for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
      const PlannedBuffer &a = plan.buffers[i], &b = plan.buffers[j];
      if (intervalsIntersect(a, b) && memoryOverlaps(a, b))
        return fail("buffers " + Twine(i) + " and " + Twine(j) +
                    " are live together and overlap in memory");
    }
  return true;
}

namespace {

struct MemoryPlanPass : llamac::impl::LlamaMemoryPlanBase<MemoryPlanPass> {
  using LlamaMemoryPlanBase::LlamaMemoryPlanBase;

  void runOnOperation() override {
    bool ok = true;
    for (ModelOp model : getOperation().getOps<ModelOp>())
      for (auto fn : model.getBody().front().getOps<func::FuncOp>()) {
        if (fn.isExternal())
          continue;
        FailureOr<MemoryPlan> plan = planFunction(fn);
        if (failed(plan)) {
          ok = false;
          continue;
        }
        annotate(fn, *plan);
        numBuffers += plan->buffers.size();
        if (report)
          printReport(fn, *plan);
      }
    if (!ok)
      signalPassFailure();
  }

  static void annotate(func::FuncOp fn, const MemoryPlan &plan) {
    Builder b(fn.getContext());
    // A plan from an earlier run may name ops that no longer produce buffers.
    for (Operation &op : fn.getBody().front())
      op.removeAttr("llama.offsets");
    DenseMap<Operation *, SmallVector<int64_t>> offsets;
    for (const PlannedBuffer &buffer : plan.buffers) {
      auto result = cast<OpResult>(buffer.value);
      SmallVector<int64_t> &list = offsets[result.getOwner()];
      if (list.empty())
        list.assign(result.getOwner()->getNumResults(), -1);
      list[result.getResultNumber()] = buffer.offset;
    }
    for (auto &[op, list] : offsets)
      op->setAttr("llama.offsets", b.getI64ArrayAttr(list));
    fn->setAttr("llama.arena_bytes", b.getI64IntegerAttr(plan.arenaBytes));
    fn->setAttr("llama.buffers_bytes", b.getI64IntegerAttr(plan.buffersBytes));
  }

  static void printReport(func::FuncOp fn, const MemoryPlan &plan) {
    llvm::outs() << "memory plan @" << fn.getSymName() << ": " << plan.buffers.size()
                 << " buffers, " << plan.buffersBytes << " bytes without reuse, arena "
                 << plan.arenaBytes << " bytes";
    if (plan.arenaBytes > 0)
      llvm::outs() << llvm::format(", reuse %.2fx",
                                   double(plan.buffersBytes) / double(plan.arenaBytes));
    llvm::outs() << "\n";
  }
};

} // namespace
