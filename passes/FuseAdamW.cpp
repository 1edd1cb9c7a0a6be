//===- FuseAdamW.cpp - llamac-fuse-adamw -------------------------------------------===//
//
// All llama.adamw ops of a function that share their scalars and hyper-parameters become
// one llama.multi_adamw. It must read every parameter and moment before the first write,
// so the parameter reads it needs move up to it; a read of a symbol that an earlier write
// in the function changed cannot move, and then nothing is fused.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAFUSEADAMW
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct FuseAdamWPass : llamac::impl::LlamaFuseAdamWBase<FuseAdamWPass> {
  using LlamaFuseAdamWBase::LlamaFuseAdamWBase;

  void runOnOperation() override {
    int64_t count = 0;
    getOperation().walk([&](func::FuncOp fn) { count += fuse(fn); });
    numFused += count;
    if (report)
      reportFused(getArgument(), count);
  }

  static bool sameGroup(AdamWOp a, AdamWOp b) {
    return a.getLr() == b.getLr() && a.getStep() == b.getStep() &&
           a.getGradScale() == b.getGradScale() && a.getBeta1() == b.getBeta1() &&
           a.getBeta2() == b.getBeta2() && a.getEps() == b.getEps();
  }

  /// Returns the number of adamw ops fused (0 or all of the function's).
  int64_t fuse(func::FuncOp fn) {
    if (fn.isExternal())
      return 0;
    Block &block = fn.getBody().front();
    SmallVector<AdamWOp> ops(block.getOps<AdamWOp>());
    if (ops.size() < 2 || !llvm::all_of(ops, [&](AdamWOp a) { return sameGroup(a, ops[0]); }))
      return 0;
    // The insertion point: the first write of the function, or the first adamw.
    Operation *point = ops.front();
    for (Operation &op : block)
      if (isa<SetParamOp>(op) && op.isBeforeInBlock(point)) {
        point = &op;
        break;
      }
    // Every operand must be available there; parameter reads may move up unless an earlier
    // write touched their symbol.
    llvm::StringSet<> written;
    for (Operation &op : block) {
      if (&op == point)
        break;
      if (auto set = dyn_cast<SetParamOp>(op))
        written.insert(set.getName());
    }
    SmallVector<Operation *> toMove;
    for (AdamWOp a : ops)
      for (Value v : a->getOperands()) {
        Operation *def = v.getDefiningOp();
        if (!def || def->isBeforeInBlock(point) || def == point)
          continue;
        auto get = dyn_cast<GetParamOp>(def);
        if (!get || written.contains(get.getName()))
          return 0;
        // A later write of the same symbol before this read would be reordered too.
        for (Operation *o = point; o != def; o = o->getNextNode())
          if (auto set = dyn_cast<SetParamOp>(o); set && set.getName() == get.getName())
            return 0;
        toMove.push_back(def);
      }
    for (Operation *def : toMove)
      def->moveBefore(point);

    OpBuilder b(point);
    SmallVector<Value> params, grads, ms, vs;
    SmallVector<double> decays;
    SmallVector<Type> types;
    SmallVector<Location> locs;
    for (AdamWOp a : ops) {
      params.push_back(a.getParam());
      grads.push_back(a.getGrad());
      ms.push_back(a.getM());
      vs.push_back(a.getV());
      decays.push_back(a.getWeightDecay().convertToDouble());
      types.push_back(a.getParam().getType());
      locs.push_back(a.getLoc());
    }
    SmallVector<Type> resultTypes;
    for (int i = 0; i < 3; ++i)
      llvm::append_range(resultTypes, types);
    AdamWOp first = ops.front();
    auto multi = MultiAdamWOp::create(b, b.getFusedLoc(locs), resultTypes, params, grads, ms, vs,
                                      first.getLr(), first.getStep(), first.getGradScale(),
                                      first.getBeta1Attr(), first.getBeta2Attr(),
                                      first.getEpsAttr(), b.getDenseF64ArrayAttr(decays));
    size_t n = ops.size();
    for (auto [i, a] : llvm::enumerate(ops)) {
      a.getNewParam().replaceAllUsesWith(multi.getResult(i));
      a.getNewM().replaceAllUsesWith(multi.getResult(n + i));
      a.getNewV().replaceAllUsesWith(multi.getResult(2 * n + i));
      a.erase();
    }
    return int64_t(n);
  }
};

} // namespace
