//===- ModelInfo.cpp - parameter, FLOP and memory accounting -----------------------===//
#include "models/ModelInfo.h"

#include "passes/Passes.h"
#include "passes/Remat.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

int64_t numElements(RankedTensorType t) { return t.getNumElements(); }

int64_t numBytes(RankedTensorType t) {
  return numElements(t) * ((t.getElementTypeBitWidth() + 7) / 8);
}

} // namespace

void llamac::countParameters(ModelOp declared, ModelInfo &info) {
  info.name = declared.getSymName().str();
  info.config = declared.getConfig();
  for (Operation &op : declared.getBody().front()) {
    if (auto p = dyn_cast<ParamOp>(op)) {
      if (p.getState())
        continue; // optimizer state, not a parameter
      info.numParams += numElements(p.getTensorType());
      info.paramBytes += numBytes(p.getTensorType());
      if (p.getSymName() == "tok_embeddings")
        info.numEmbeddingParams += numElements(p.getTensorType());
    } else if (auto layer = dyn_cast<LayerOp>(op)) {
      int64_t one = 0, bytes = 0;
      for (ParamOp p : layer.getBody().front().getOps<ParamOp>()) {
        one += numElements(p.getTensorType());
        bytes += numBytes(p.getTensorType());
      }
      info.numLayerParams += one;
      info.numLayers += layer.getRepeat();
      info.numParams += one * layer.getRepeat();
      info.paramBytes += bytes * layer.getRepeat();
    }
  }
}

LogicalResult llamac::measureForward(ModelOp expanded, ModelInfo &info) {
  func::FuncOp forward = expanded.lookupFunction("forward");
  if (!forward)
    return expanded.emitOpError("has no @forward function to measure");
  auto tokens = dyn_cast<RankedTensorType>(forward.getArgumentTypes().front());
  if (!tokens || !tokens.hasStaticShape() || tokens.getRank() != 2)
    return forward.emitOpError("@forward must take static [batch, seq] tokens to be measured");
  info.batch = tokens.getDimSize(0);
  info.seq = tokens.getDimSize(1);
  WalkResult walk = forward.walk([&](Operation *op) -> WalkResult {
    for (Type t : op->getResultTypes()) {
      auto tensor = dyn_cast<RankedTensorType>(t);
      if (!tensor)
        continue;
      if (!tensor.hasStaticShape()) {
        op->emitOpError("result has a dynamic shape; run llamac-frontend first");
        return WalkResult::interrupt();
      }
      // Parameters are not activations; reshapes are views of their input.
      if (!isa<GetParamOp, SplitDimOp, MergeDimsOp>(op))
        info.activationBytes += numBytes(tensor);
    }
    if (auto linear = dyn_cast<LinearOp>(op)) {
      auto w = linear.getWeight().getType();
      double rows = double(linear.getInput().getType().getNumElements()) / w.getDimSize(1);
      info.matmulFlops += 2.0 * rows * w.getDimSize(0) * w.getDimSize(1);
    } else if (auto mm = dyn_cast<MatmulOp>(op)) {
      auto lhs = mm.getLhs().getType();
      double k = lhs.getShape().back();
      info.matmulFlops += 2.0 * k * mm.getType().getNumElements();
    } else if (auto attn = dyn_cast<AttentionOp>(op)) {
      auto q = attn.getQuery().getType();
      auto k = attn.getKey().getType();
      // QK^T and PV: 2 x (2 x T x S x Dh) per batch and head.
      info.attentionFlops += 4.0 * q.getDimSize(0) * q.getDimSize(2) * q.getDimSize(1) *
                             k.getDimSize(1) * q.getDimSize(3);
    }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

LogicalResult llamac::measureRemat(ModuleOp expanded, ModelInfo &info) {
  auto model = dyn_cast_or_null<ModelOp>(
      SymbolTable::lookupSymbolIn(expanded, StringAttr::get(expanded.getContext(), info.name)));
  if (!model || !model.lookupFunction("loss"))
    return success();
  for (const char *policy : {"none", "selective", "full"}) {
    OwningOpRef<ModuleOp> copy = expanded.clone();
    PassManager pm(expanded.getContext(), ModuleOp::getOperationName());
    pm.addPass(createInlinerPass());
    pm.addPass(createLlamaAutodiff());
    LlamaRematOptions options;
    options.policy = policy;
    pm.addPass(createLlamaRemat(options));
    if (failed(pm.run(*copy)))
      return failure();
    auto m = cast<ModelOp>(SymbolTable::lookupSymbolIn(*copy, model.getSymNameAttr()));
    ModelInfo::Remat r;
    r.policy = policy;
    for (auto &[layer, bytes] : activationBytesKept(m.lookupFunction("loss_grad"))) {
      r.total += bytes;
      if (!layer.empty())
        r.largestLayer = std::max(r.largestLayer, bytes);
    }
    info.remat.push_back(r);
  }
  return success();
}

ModelInfo::Traffic llamac::intermediateTraffic(func::FuncOp fn) {
  ModelInfo::Traffic t;
  auto bytes = [](Type type) -> double {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape())
      return 0;
    return double(tensor.getNumElements()) * ((tensor.getElementTypeBitWidth() + 7) / 8);
  };
  auto isFree = [](Operation *op) {
    return isa<GetParamOp, SetParamOp, SplitDimOp, MergeDimsOp, arith::ConstantOp,
               func::ReturnOp, YieldOp>(op) ||
           op->getParentOfType<FusedElementwiseOp>();
  };
  // The value a view stands for.
  auto root = [](Value v) {
    while (Operation *def = v.getDefiningOp()) {
      if (!isa<SplitDimOp, MergeDimsOp>(def))
        break;
      v = def->getOperand(0);
    }
    return v;
  };
  fn.walk([&](Operation *op) {
    if (isFree(op))
      return;
    // Results that only update parameters or optimizer state are not intermediates.
    for (Value r : op->getResults())
      if (!llvm::all_of(r.getUsers(), [](Operation *u) { return isa<SetParamOp>(u); }) ||
          r.use_empty())
        t.written += bytes(r.getType());
    for (Value v : op->getOperands()) {
      Operation *def = root(v).getDefiningOp();
      if (def && !isa<GetParamOp, arith::ConstantOp>(def))
        t.read += bytes(v.getType());
    }
    // What unfused implementations of these ops put in memory on top.
    auto scores = [&](Value q, Value k) {
      auto qt = cast<RankedTensorType>(q.getType()), kt = cast<RankedTensorType>(k.getType());
      return 4.0 * qt.getDimSize(0) * qt.getDimSize(2) * qt.getDimSize(1) * kt.getDimSize(1);
    };
    if (auto a = dyn_cast<AttentionOp>(op)) {
      t.written += 2 * scores(a.getQuery(), a.getKey()); // scores, probabilities
      t.read += 2 * scores(a.getQuery(), a.getKey());
    } else if (auto g = dyn_cast<AttentionGradOp>(op)) {
      t.written += 2 * scores(g.getQuery(), g.getKey()); // probabilities, their gradient
      t.read += 2 * scores(g.getQuery(), g.getKey());
    } else if (auto c = dyn_cast<CrossEntropyOp>(op)) {
      t.written += bytes(c.getLogits().getType()); // probabilities
      t.read += bytes(c.getLogits().getType());
    } else if (auto c = dyn_cast<CrossEntropyGradOp>(op)) {
      t.written += bytes(c.getLogits().getType());
      t.read += bytes(c.getLogits().getType());
    }
  });
  return t;
}

LogicalResult llamac::measureTraffic(ModuleOp expanded, ModelInfo &info) {
  auto model = dyn_cast_or_null<ModelOp>(
      SymbolTable::lookupSymbolIn(expanded, StringAttr::get(expanded.getContext(), info.name)));
  if (!model || !model.lookupFunction("loss"))
    return success();
  for (bool fuse : {false, true}) {
    OwningOpRef<ModuleOp> copy = expanded.clone();
    PassManager pm(expanded.getContext(), ModuleOp::getOperationName());
    TrainingPipelineOptions options;
    options.batch = info.batch;
    options.seq = info.seq;
    for (auto *o : {&options.fuseSwiGLU, &options.fuseQKVRoPE, &options.fuseAddRMSNorm,
                    &options.fuseAttention, &options.fuseCrossEntropy, &options.fuseAdamW,
                    &options.fuseElementwise})
      *o = fuse;
    buildTrainingPipeline(pm, options);
    if (failed(pm.run(*copy)))
      return failure();
    auto m = cast<ModelOp>(SymbolTable::lookupSymbolIn(*copy, model.getSymNameAttr()));
    ModelInfo::Traffic &t = fuse ? info.fused : info.unfused;
    for (StringRef name : {"train_grad", "train_update"}) {
      ModelInfo::Traffic f = intermediateTraffic(m.lookupFunction(name));
      t.written += f.written;
      t.read += f.read;
    }
  }
  return success();
}

std::string llamac::humanCount(double n) {
  const char *units[] = {"", "K", "M", "B", "T"};
  int u = 0;
  while (n >= 1000.0 && u < 4) {
    n /= 1000.0;
    ++u;
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format(n >= 100 ? "%.1f%s" : "%.2f%s", n, units[u]);
  return s;
}

std::string llamac::humanBytes(double bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.1f %s", bytes, units[u]);
  return s;
}

void llamac::printModelInfo(const ModelInfo &info, llvm::raw_ostream &os) {
  ConfigAttr c = info.config;
  os << "model: @" << info.name << "\n";
  os << "config: dim " << c.getDim() << ", layers " << c.getNLayers() << ", heads "
     << c.getNHeads() << " (kv heads " << c.getNKvHeads() << ", head dim " << c.getHeadDim()
     << "), ffn " << c.getFfnDim() << ", vocab " << c.getVocabSize() << ", context "
     << c.getMaxSeqLen() << ", norm eps " << c.getNormEps().convertToDouble()
     << ", rope theta " << c.getRopeTheta().convertToDouble();
  if (c.hasSlidingWindow())
    os << ", sliding window " << c.getSlidingWindow();
  os << "\n";
  os << "parameters: " << info.numParams << " (" << humanCount(info.numParams) << ")\n";
  os << "parameters per layer: " << info.numLayerParams << " x " << info.numLayers << "\n";
  os << "parameters in embedding: " << info.numEmbeddingParams << "\n";
  os << "parameters outside embedding: " << info.numParams - info.numEmbeddingParams << " ("
     << humanCount(info.numParams - info.numEmbeddingParams) << ")\n";
  os << "batch: " << info.batch << ", seq: " << info.seq << "\n";
  os << llvm::format("training flops per token: %.4g (matmuls %.4g, attention %.4g)\n",
                     info.trainingFlopsPerToken(), info.trainingMatmulFlopsPerToken(),
                     info.trainingAttentionFlopsPerToken());
  os << llvm::format("training flops per step: %.4g\n",
                     info.trainingFlopsPerToken() * info.tokens());
  double p = double(info.numParams);
  os << "memory weights: " << humanBytes(info.paramBytes) << " as declared; "
     << humanBytes(2 * p) << " as bf16\n";
  os << "memory gradients: " << humanBytes(4 * p) << " (fp32)\n";
  os << "memory optimizer state: " << humanBytes(8 * p) << " (AdamW moments, fp32)\n";
  os << "memory activations: " << humanBytes(info.activationBytes)
     << " (every forward intermediate, no recomputation)\n";
  for (const ModelInfo::Remat &r : info.remat)
    os << "memory activations kept for the backward, remat " << r.policy << ": "
       << humanBytes(r.total) << " (largest layer " << humanBytes(r.largestLayer) << ")\n";
  if (info.unfused.written > 0)
    os << "intermediate traffic per training step: unfused " << humanBytes(info.unfused.written)
       << " written, " << humanBytes(info.unfused.read) << " read; fused "
       << humanBytes(info.fused.written) << " written, " << humanBytes(info.fused.read)
       << " read\n";
  os << "memory total for training: "
     << humanBytes(info.paramBytes + 12 * p + info.activationBytes) << "\n";
}
