//===- Decompose.cpp - llamac-decompose --------------------------------------------===//
#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMADECOMPOSE
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

struct DecomposePass : llamac::impl::LlamaDecomposeBase<DecomposePass> {
  void runOnOperation() override {
    SmallVector<DecomposableOpInterface> ops;
    getOperation().walk([&](DecomposableOpInterface op) { ops.push_back(op); });
    for (DecomposableOpInterface op : ops) {
      OpBuilder b(op);
      Operation *before = op->getPrevNode();
      SmallVector<Value> results;
      if (failed(op.decompose(b, results)))
        return signalPassFailure();
      if (results.size() != op->getNumResults()) {
        op->emitOpError("decomposition returned ")
            << results.size() << " values for " << op->getNumResults() << " results";
        return signalPassFailure();
      }
      // Discardable attributes (llama.backward) follow the values they describe.
      Operation *first = before ? before->getNextNode() : &op->getBlock()->front();
      for (Operation *o = first; o != op.getOperation(); o = o->getNextNode())
        for (NamedAttribute attr : op->getDiscardableAttrs())
          o->setAttr(attr.getName(), attr.getValue());
      op->replaceAllUsesWith(results);
      op->erase();
    }
  }
};

} // namespace
