//===- TestPasses.cpp - passes that exist only to test the tools -------------------===//
//
// test-llama-perturb changes the numbers on purpose (it doubles the rotary theta of every
// llama.rope), so that `llamac check` and `llamac bisect` have a culprit to find.
//
//===----------------------------------------------------------------------------------===//
#include "test/lib/TestPasses.h"

#include "dialects/llama/LlamaOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

namespace {

struct TestPerturbPass : PassWrapper<TestPerturbPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(TestPerturbPass)
  StringRef getArgument() const final { return "test-llama-perturb"; }
  StringRef getDescription() const final {
    return "Double the theta of every llama.rope (changes the numbers; for testing)";
  }
  void runOnOperation() override {
    getOperation().walk([](llamac::llama::RoPEOp rope) {
      rope.setTheta(APFloat(rope.getTheta().convertToDouble() * 2.0));
    });
  }
};

} // namespace

void llamac::registerTestPasses() { PassRegistration<TestPerturbPass>(); }
