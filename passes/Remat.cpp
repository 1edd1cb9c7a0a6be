//===- Remat.cpp - llamac-remat ----------------------------------------------------===//
//
// A forward value the policy does not keep is recomputed right before its first backward
// use: its defining op is cloned there, with operands that are themselves recomputed
// unless kept (memoised per value), and its backward uses are redirected to the clone.
//
//===----------------------------------------------------------------------------------===//

#include "passes/Remat.h"

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Format.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAREMAT
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

bool isBackward(Operation *op) { return op->hasAttr("llama.backward"); }

/// Reshapes are views: they cost nothing and keep their source alive.
Value viewRoot(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<SplitDimOp, MergeDimsOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

int64_t bytesOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || !t.hasStaticShape())
    return 0;
  return t.getNumElements() * ((t.getElementTypeBitWidth() + 7) / 8);
}

} // namespace

std::optional<std::string> llamac::layerOf(Operation *op) {
  std::optional<std::string> found;
  op->getLoc()->walk([&](Location loc) {
    if (auto name = dyn_cast<NameLoc>(loc)) {
      StringRef n = name.getName().strref();
      auto dot = n.rfind('.');
      unsigned index;
      if (dot != StringRef::npos && !n.drop_front(dot + 1).getAsInteger(10, index)) {
        found = n.str();
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  return found;
}

std::map<std::string, int64_t> llamac::activationBytesKept(func::FuncOp fn) {
  std::map<std::string, int64_t> kept;
  DenseSet<Value> counted;
  fn.walk([&](Operation *op) {
    if (isBackward(op) || isa<func::ReturnOp>(op))
      return;
    for (Value r : op->getResults()) {
      if (isa<GetParamOp>(op))
        continue;
      if (!llvm::any_of(r.getUsers(), [](Operation *u) { return isBackward(u); }))
        continue;
      Value root = viewRoot(r);
      if (root.getDefiningOp() && isa<GetParamOp>(root.getDefiningOp()))
        continue;
      if (!counted.insert(root).second)
        continue;
      Operation *def = root.getDefiningOp();
      kept[def ? layerOf(def).value_or("") : ""] += bytesOf(root);
    }
  });
  return kept;
}

namespace {

struct RematPass : llamac::impl::LlamaRematBase<RematPass> {
  using LlamaRematBase::LlamaRematBase;

  void runOnOperation() override {
    if (policy != "none" && policy != "selective" && policy != "full") {
      getOperation().emitError() << "llamac-remat: unknown policy '" << policy
                                 << "' (none, selective or full)";
      return signalPassFailure();
    }
    getOperation().walk([&](func::FuncOp fn) {
      bool hasBackward = false;
      fn.walk([&](Operation *op) { hasBackward |= isBackward(op); });
      if (!hasBackward)
        return;
      if (policy != "none")
        rematerialise(fn);
      if (report)
        printReport(fn);
    });
  }

  /// Whether `v`, defined in the forward, crosses a layer boundary: an input of another
  /// layer, or of the ops outside the layers (the last layer's output feeds the head).
  static bool isLayerInput(Value v) {
    Operation *def = v.getDefiningOp();
    std::optional<std::string> defLayer = def ? layerOf(def) : std::nullopt;
    for (Operation *user : v.getUsers()) {
      if (isBackward(user))
        continue;
      if (layerOf(user) != defLayer)
        return true;
    }
    return false;
  }

  bool keep(Value v) {
    Operation *def = v.getDefiningOp();
    if (!def || isa<GetParamOp>(def))
      return true; // arguments and parameters are not activations
    if (!layerOf(def) || isLayerInput(v))
      return true;
    if (policy == "full")
      return false;
    return isa<LinearOp, MatmulOp, AttentionOp, FlashAttentionOp, EmbeddingOp>(def);
  }

  void rematerialise(func::FuncOp fn) {
    Block &block = fn.getBody().front();
    SmallVector<std::pair<Value, Operation *>> todo; // value, first backward user
    for (Operation &op : block) {
      if (isBackward(&op))
        continue;
      for (Value r : op.getResults()) {
        if (keep(r))
          continue;
        Operation *first = nullptr;
        for (Operation *u : r.getUsers())
          if (isBackward(u) && (!first || u->isBeforeInBlock(first)))
            first = u;
        if (first)
          todo.push_back({r, first});
      }
    }
    for (auto [value, first] : todo) {
      OpBuilder b(first);
      DenseMap<Value, Value> memo;
      Value copy = recompute(b, value, memo);
      value.replaceUsesWithIf(copy, [&](OpOperand &use) { return isBackward(use.getOwner()); });
    }
  }

  Value recompute(OpBuilder &b, Value v, DenseMap<Value, Value> &memo) {
    if (keep(v))
      return v;
    if (Value done = memo.lookup(v))
      return done;
    Operation *def = v.getDefiningOp();
    IRMapping map;
    for (Value operand : def->getOperands())
      map.map(operand, recompute(b, operand, memo));
    Operation *clone = b.clone(*def, map);
    clone->setAttr("llama.backward", b.getUnitAttr());
    ++numRecomputed;
    for (auto [orig, copy] : llvm::zip(def->getResults(), clone->getResults()))
      memo[orig] = copy;
    return memo.lookup(v);
  }

  void printReport(func::FuncOp fn) {
    std::map<std::string, int64_t> kept = activationBytesKept(fn);
    int64_t total = 0;
    llvm::outs() << "remat policy " << policy << ", @" << fn.getSymName()
                 << ": activation bytes kept for the backward\n";
    for (auto &[layer, bytes] : kept) {
      llvm::outs() << llvm::format("  %-14s %14lld\n",
                                   (layer.empty() ? "(outside)" : layer).c_str(),
                                   (long long)bytes);
      total += bytes;
    }
    llvm::outs() << llvm::format("  %-14s %14lld\n", "total", (long long)total);
  }
};

} // namespace
