//===- ModelInfo.h - what a declared model costs -------------------------*- C++ -*-===//
//
// Parameter counts are read from the declarations (a layer's parameters times its
// repetitions); FLOPs and activation bytes from the expanded, specialised forward function
// (the output of the llamac-frontend pipeline), op by op.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_MODELS_MODELINFO_H
#define LLAMAC_MODELS_MODELINFO_H

#include "dialects/llama/LlamaOps.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace llamac {

struct ModelInfo {
  std::string name;
  llama::ConfigAttr config;
  int64_t batch = 0, seq = 0;

  // Parameters, from the declarations.
  int64_t numParams = 0;      ///< everything
  int64_t numLayerParams = 0; ///< one repetition of the layers
  int64_t numLayers = 0;      ///< repetitions
  int64_t numEmbeddingParams = 0;
  int64_t paramBytes = 0; ///< at the declared element types

  // Forward pass at (batch, seq), from the expanded and specialised IR.
  double matmulFlops = 0;    ///< linear and matmul: 2 x M x N x K
  double attentionFlops = 0; ///< scores and weighted values: 4 x B x H x T x S x Dh
  int64_t activationBytes = 0;

  /// Activation bytes the backward of @loss keeps under each rematerialisation policy
  /// (llamac-remat), in total and for the largest layer.
  struct Remat {
    std::string policy;
    int64_t total = 0, largestLayer = 0;
  };
  std::vector<Remat> remat;

  /// Bytes of intermediate tensors written and read by one training step (@train_grad and
  /// @train_update), without and with the fusion passes. Parameter and optimizer-state
  /// traffic is not counted; reshapes are views. An unfused llama.attention (and its gradient) is
  /// counted as an unfused implementation runs it: the [B, H, T, S] scores and
  /// probabilities written and read once each; an unfused cross_entropy likewise writes and
  /// reads the probabilities.
  struct Traffic {
    double written = 0, read = 0;
  };
  Traffic unfused, fused;

  double tokens() const { return double(batch) * double(seq); }
  /// Training FLOPs per token: forward plus backward (twice the forward), the convention of
  /// Kaplan et al. and PaLM (no discount for the causal mask).
  double trainingFlopsPerToken() const { return 3.0 * (matmulFlops + attentionFlops) / tokens(); }
  double trainingMatmulFlopsPerToken() const { return 3.0 * matmulFlops / tokens(); }
  double trainingAttentionFlopsPerToken() const { return 3.0 * attentionFlops / tokens(); }
};

/// Counts the parameters of `declared` (a model as written, layers not yet expanded).
void countParameters(llama::ModelOp declared, ModelInfo &info);

/// Adds the FLOPs and activation bytes of `expanded`'s @forward, which must have static
/// shapes (run llamac-frontend first). Fails with a diagnostic on the model otherwise.
mlir::LogicalResult measureForward(llama::ModelOp expanded, ModelInfo &info);

/// Fills info.remat by differentiating a copy of `expanded`'s @loss under each policy.
/// Does nothing for a model without @loss.
mlir::LogicalResult measureRemat(mlir::ModuleOp expanded, ModelInfo &info);

/// Fills info.unfused and info.fused by compiling copies of `expanded` (the llamac-frontend
/// output) through the training pipeline without and with fusion.
mlir::LogicalResult measureTraffic(mlir::ModuleOp expanded, ModelInfo &info);

/// The intermediate bytes one function writes and reads (see ModelInfo::Traffic).
ModelInfo::Traffic intermediateTraffic(mlir::func::FuncOp fn);

/// The report `llamac info` prints: one `key: value` line per figure.
void printModelInfo(const ModelInfo &info, llvm::raw_ostream &os);

/// "6.74B", "24.4M", "1.5K".
std::string humanCount(double n);
/// "25.1 GiB".
std::string humanBytes(double bytes);

} // namespace llamac

#endif
