//===- Pipelines.cpp - named pass pipelines ----------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void llamac::buildFrontendPipeline(OpPassManager &pm, const FrontendPipelineOptions &options) {
  pm.addPass(createLlamaExpandLayers());
  pm.addPass(createLlamaSpecialize(LlamaSpecializeOptions{options.batch, options.seq}));
  pm.addPass(createCSEPass());
}

void llamac::registerLlamacPassesAndPipelines() {
  registerLlamacPasses();
  PassPipelineRegistration<FrontendPipelineOptions>(
      "llamac-frontend",
      "Expand the layers and specialise batch and sequence: the tensor-level IR that "
      "autodiff, fusion and the interpreter work on",
      buildFrontendPipeline);
}
