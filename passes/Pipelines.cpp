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

/// llamac-mixed-precision unless `precision` is f32 (the pass rejects what is not bf16, so
/// that a pipeline string with another value fails instead of running in f32).
static void addMixedPrecision(OpPassManager &pm, StringRef precision) {
  using namespace llamac;
  if (precision == "f32")
    return;
  LlamaMixedPrecisionOptions options;
  options.dtype = precision.str();
  pm.addPass(createLlamaMixedPrecision(options));
}

void llamac::buildInferencePipeline(OpPassManager &pm, const FrontendPipelineOptions &options) {
  buildFrontendPipeline(pm, options);
  pm.addPass(createInlinerPass());
  pm.addPass(createLlamaFuseSwiGLU());
  pm.addPass(createLlamaFuseQKVRoPE());
  pm.addPass(createLlamaFuseAddRMSNorm());
  pm.addPass(createLlamaFuseAttention());
  pm.addPass(createCSEPass());
}

void llamac::buildTrainingPipeline(OpPassManager &pm, const TrainingPipelineOptions &options) {
  FrontendPipelineOptions frontend;
  frontend.batch = options.batch;
  frontend.seq = options.seq;
  buildFrontendPipeline(pm, frontend);
  pm.addPass(createInlinerPass());
  if (options.fuseSwiGLU)
    pm.addPass(createLlamaFuseSwiGLU());
  if (options.fuseQKVRoPE)
    pm.addPass(createLlamaFuseQKVRoPE());
  if (options.fuseAddRMSNorm)
    pm.addPass(createLlamaFuseAddRMSNorm());
  if (options.fuseAttention)
    pm.addPass(createLlamaFuseAttention());
  if (options.fuseCrossEntropy)
    pm.addPass(createLlamaFuseCrossEntropy());
  addMixedPrecision(pm, options.precision);
  pm.addPass(createLlamaAutodiff());
  LlamaRematOptions remat;
  remat.policy = options.remat;
  pm.addPass(createLlamaRemat(remat));
  LlamaTrainStepOptions step;
  step.warmup = options.warmup;
  step.floor = options.floor;
  step.weightDecay = options.weightDecay;
  step.maxGradNorm = options.maxGradNorm;
  pm.addPass(createLlamaTrainStep(step));
  if (options.fsdp > 0) {
    LlamaPlanFsdpOptions fsdp;
    fsdp.ranks = options.fsdp;
    fsdp.prefetch = options.fsdpPrefetch;
    fsdp.replicas = options.fsdpReplicas;
    pm.addPass(createLlamaPlanFsdp(fsdp));
  }
  if (options.fuseAdamW)
    pm.addPass(createLlamaFuseAdamW());
  if (options.fuseElementwise)
    pm.addPass(createLlamaFuseElementwise());
  pm.addPass(createCSEPass());
}

void llamac::registerLlamacPassesAndPipelines() {
  registerLlamacPasses();
  PassPipelineRegistration<FrontendPipelineOptions>(
      "llamac-frontend",
      "Expand the layers and specialise batch and sequence: the tensor-level IR that "
      "autodiff, fusion and the interpreter work on",
      buildFrontendPipeline);
  PassPipelineRegistration<FrontendPipelineOptions>(
      "llamac-inference",
      "The front end, then the forward-pass fusions: what `llamac compile --mode infer` "
      "lowers to kernels",
      buildInferencePipeline);
  PassPipelineRegistration<TrainingPipelineOptions>(
      "llamac-training",
      "The front end, then the training step: gradients of @loss (llamac-autodiff) and "
      "@train_grad / @train_update (llamac-train-step)",
      buildTrainingPipeline);
}
