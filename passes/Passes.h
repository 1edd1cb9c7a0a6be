//===- Passes.h - llamac passes and pipelines ----------------------------*- C++ -*-===//
#ifndef LLAMAC_PASSES_PASSES_H
#define LLAMAC_PASSES_PASSES_H

#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

#include <string>
#include <vector>

namespace llamac {

namespace llama {
class ModelOp;
} // namespace llama

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the front-end pipeline: from the declared model to specialised, expanded
/// tensor-level IR.
struct FrontendPipelineOptions : public mlir::PassPipelineOptions<FrontendPipelineOptions> {
  Option<int64_t> batch{*this, "batch", llvm::cl::desc("Batch size"), llvm::cl::init(1)};
  Option<int64_t> seq{*this, "seq",
                      llvm::cl::desc("Sequence length (0: the model's max_seq_len)"),
                      llvm::cl::init(0)};
};

/// Adds llama-expand-layers and llama-specialize (then CSE) to `pm`.
void buildFrontendPipeline(mlir::OpPassManager &pm, const FrontendPipelineOptions &options);

/// Options of the training pipeline: the front end, then the derived training step.
struct TrainingPipelineOptions : public mlir::PassPipelineOptions<TrainingPipelineOptions> {
  Option<int64_t> batch{*this, "batch", llvm::cl::desc("Micro-batch size"), llvm::cl::init(1)};
  Option<int64_t> seq{*this, "seq",
                      llvm::cl::desc("Sequence length (0: the model's max_seq_len)"),
                      llvm::cl::init(0)};
  Option<std::string> precision{*this, "precision",
                                llvm::cl::desc("Matrix products: f32, or bf16 operands and "
                                               "results (llamac-mixed-precision)"),
                                llvm::cl::init("f32")};
  Option<int64_t> warmup{*this, "warmup", llvm::cl::desc("Warm-up steps"), llvm::cl::init(2000)};
  Option<double> floor{*this, "floor", llvm::cl::desc("Final learning rate / peak"),
                       llvm::cl::init(0.1)};
  Option<double> weightDecay{*this, "weight-decay", llvm::cl::desc("AdamW weight decay"),
                             llvm::cl::init(0.1)};
  Option<double> maxGradNorm{*this, "max-grad-norm", llvm::cl::desc("Gradient clip"),
                             llvm::cl::init(1.0)};
  Option<std::string> remat{*this, "remat",
                            llvm::cl::desc("Rematerialisation: none, selective or full"),
                            llvm::cl::init("selective")};
  Option<int64_t> fsdp{*this, "fsdp",
                       llvm::cl::desc("Shard over this many data-parallel ranks "
                                      "(llamac-plan-fsdp; 0: no sharding)"),
                       llvm::cl::init(0)};
  Option<int64_t> fsdpReplicas{*this, "fsdp-replicas",
                               llvm::cl::desc("llamac-plan-fsdp's replicas (hybrid sharding)"),
                               llvm::cl::init(1)};
  Option<int64_t> fsdpPrefetch{*this, "fsdp-prefetch",
                               llvm::cl::desc("llamac-plan-fsdp's prefetch depth"),
                               llvm::cl::init(1)};
  // Each fusion can be turned off (all are on by default).
  Option<bool> fuseSwiGLU{*this, "fuse-swiglu", llvm::cl::desc("llamac-fuse-swiglu"),
                          llvm::cl::init(true)};
  Option<bool> fuseQKVRoPE{*this, "fuse-qkv-rope", llvm::cl::desc("llamac-fuse-qkv-rope"),
                           llvm::cl::init(true)};
  Option<bool> fuseAddRMSNorm{*this, "fuse-add-rms-norm",
                              llvm::cl::desc("llamac-fuse-add-rms-norm"), llvm::cl::init(true)};
  Option<bool> fuseAttention{*this, "fuse-attention", llvm::cl::desc("llamac-fuse-attention"),
                             llvm::cl::init(true)};
  Option<bool> fuseCrossEntropy{*this, "fuse-cross-entropy",
                                llvm::cl::desc("llamac-fuse-cross-entropy"),
                                llvm::cl::init(true)};
  Option<bool> fuseAdamW{*this, "fuse-adamw", llvm::cl::desc("llamac-fuse-adamw"),
                         llvm::cl::init(true)};
  Option<bool> fuseElementwise{*this, "fuse-elementwise",
                               llvm::cl::desc("llamac-fuse-elementwise"), llvm::cl::init(true)};
};

/// llamac-frontend, inlining, the forward fusions, llamac-autodiff of @loss, llamac-remat,
/// llamac-train-step, the AdamW and pointwise fusions, CSE.
/// The front end, then the forward-pass fusions (SwiGLU, QKV+RoPE, add+RMSNorm, flash
/// attention): what `llamac compile --mode infer` lowers.
void buildInferencePipeline(mlir::OpPassManager &pm, const FrontendPipelineOptions &options);
void buildTrainingPipeline(mlir::OpPassManager &pm, const TrainingPipelineOptions &options);

/// Registers every llamac pass and the named pipelines (`llamac-frontend`).
void registerLlamacPassesAndPipelines();

/// The units llamac-plan-fsdp groups a model's weights into (declared or expanded model),
/// with their elements before padding: what each gather and reduce-scatter moves. The
/// planner (`llamac plan`) sizes its collectives with them.
struct FsdpUnitSize {
  std::string name;
  int64_t elements;
};
mlir::FailureOr<std::vector<FsdpUnitSize>> fsdpUnitSizes(llama::ModelOp model);

} // namespace llamac

#endif
