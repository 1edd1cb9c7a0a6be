//===- Passes.td - llamac passes ---------------------------------*- tablegen -*-===//
//
// Every pass of the project, one definition each; the implementation lives in the file
// named after the pass and its lit test in test/passes/<pass-name>.mlir.
//
//===----------------------------------------------------------------------------------===//

#ifndef LLAMAC_PASSES_TD
#define LLAMAC_PASSES_TD

include "mlir/Pass/PassBase.td"

def LlamaExpandLayers : Pass<"llama-expand-layers", "::mlir::ModuleOp"> {
  let summary = "Instantiate each declared layer once per repetition";
  let description = [{
    For every `llama.layer @L repeat N`, declares the parameters of each repetition at
    model level as `@L.<i>.<name>` (the names of Meta's checkpoints, `layers.0.attention.wq`)
    and replaces every `llama.stack @L` by N inlined copies of the layer's function, the
    i-th copy reading the i-th parameters. The layer declarations are then removed. The
    result holds only model-level parameters and functions, which later passes (autodiff,
    fusion, FSDP) see whole.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
  let statistics = [
    Statistic<"numLayersExpanded", "layers-expanded", "Layer repetitions instantiated">,
    Statistic<"numParamsDeclared", "params-declared", "Per-repetition parameters declared">
  ];
}

def LlamaSpecialize : Pass<"llama-specialize", "::mlir::ModuleOp"> {
  let summary = "Fix the dynamic batch and sequence dimensions of a model's functions";
  let description = [{
    A dynamic dimension at index 0 of a function argument is the batch, at index 1 the
    sequence; both become the given sizes, and every result type in the functions is
    inferred again from the new operand types. Any other dynamic dimension is an error.
  }];
  let options = [
    Option<"batch", "batch", "int64_t", "1", "Batch size">,
    Option<"seq", "seq", "int64_t", "0",
           "Sequence length (0: the model's max_seq_len)">
  ];
}

def LlamaMixedPrecision : Pass<"llamac-mixed-precision", "::mlir::ModuleOp"> {
  let summary = "Matrix products on bf16 operands with bf16 results; the rest stays f32";
  let description = [{
    Every f32 `llama.linear` and `llama.matmul` becomes the same product on bf16 casts of its
    operands, its bf16 result cast back to f32: the numerics of autocast to bf16 (bf16
    products summed in f32, results stored in bf16). Norms (their gains included), the
    embedding, softmax, losses, the optimizer and the master weights stay f32;
    llamac-plan-fsdp gathers in bf16 the units only products read. Run before llamac-autodiff (and after the
    forward fusions), the backward products follow in bf16 from the casts' VJPs, and the
    weight gradients are widened to f32. Each product gets casts of its own, so no bf16
    value has two users. `llamac compile --precision bf16` runs it.
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "Storage type of the products' operands and results (bf16)">
  ];
  let statistics = [
    Statistic<"numProducts", "products", "Matrix products moved to bf16">
  ];
}

def LlamaAutodiff : Pass<"llamac-autodiff", "::mlir::ModuleOp"> {
  let summary = "Derive the gradients of a scalar loss with respect to the parameters";
  let description = [{
    Reverse-mode differentiation of a model function returning a scalar loss first (after
    llamac-frontend and inlining: one flat function). Creates `@<function>_grad` with the
    same arguments, returning the loss and then the gradient of every trainable parameter
    the loss depends on, in declaration order; the function's `llama.grads` attribute
    names them. Only values that depend on a parameter and on which the loss depends get a
    cotangent (token ids and targets never do); a value used several times (the residual
    stream) accumulates its cotangents; operations left without a use are erased. Each op's
    rule comes from its VJPOpInterface; an op on a gradient path without one is an error
    naming it. Backward ops carry the unit attribute `llama.backward`.
  }];
  let options = [
    Option<"function", "function", "std::string", "\"loss\"", "Function to differentiate">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
  let statistics = [
    Statistic<"numRules", "vjp-rules", "VJP rules applied">,
    Statistic<"numAccumulations", "accumulations", "Cotangents accumulated (fan-out)">,
    Statistic<"numGradients", "gradients", "Parameters given a gradient">,
    Statistic<"numErased", "dead-ops-erased", "Operations erased as dead">
  ];
}

def LlamaTrainStep : Pass<"llamac-train-step", "::mlir::ModuleOp"> {
  let summary = "Build the training step around the gradient function";
  let description = [{
    From `@<function>_grad` (llamac-autodiff), declares the state of training (gradient
    accumulators `@grad.<p>`, AdamW moments `@adamw.m.<p>` and `@adamw.v.<p>`, all `state`)
    and builds two functions that one compiled program calls for a whole run:
    `@train_grad(tokens, targets) -> loss` adds one micro-batch's gradients to the
    accumulators; `@train_update(step, lr, total_steps, micro_batches) -> (lr_t, grad_norm)`
    averages the accumulated gradients over the micro-batches, clips their global norm,
    applies the learning-rate schedule (linear warm-up, cosine decay to a floor) and AdamW
    (no weight decay on rank-1 parameters: the norm gains), and clears the accumulators.
    Defaults are LLaMA's recipe.
  }];
  let options = [
    Option<"function", "function", "std::string", "\"loss\"",
           "Function whose _grad function to train with">,
    Option<"warmup", "warmup", "int64_t", "2000", "Warm-up steps">,
    Option<"floor", "floor", "double", "0.1", "Final learning rate, as a fraction of the peak">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW beta1">,
    Option<"beta2", "beta2", "double", "0.95", "AdamW beta2">,
    Option<"eps", "eps", "double", "1e-5", "AdamW epsilon">,
    Option<"weightDecay", "weight-decay", "double", "0.1", "AdamW decoupled weight decay">,
    Option<"maxGradNorm", "max-grad-norm", "double", "1.0", "Global gradient-norm clip">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def LlamaPlanFsdp : Pass<"llamac-plan-fsdp", "::mlir::ModuleOp"> {
  let summary = "Shard weights, gradients and optimizer state over data-parallel ranks";
  let description = [{
    Fully sharded data parallelism on the training program (after llamac-train-step): the
    weights are grouped in flat units (one per layer, one per top-level matrix, one for the
    norm gains), padded to a multiple of `ranks` and sharded over the grid `@fsdp`; each
    function all-gathers a unit before its first use (and again in the backward with
    reshard-after-forward), @train_grad reduce-scatters the gradients into the rank's
    shard, and @train_update clips with the global norm (shard.all_reduce) and applies
    AdamW to the rank's shard only. See passes/PlanFsdp.cpp.
  }];
  let options = [
    Option<"ranks", "ranks", "int64_t", "1", "Data-parallel ranks to shard over">,
    Option<"replicas", "replicas", "int64_t", "1",
           "Shard within groups of ranks/replicas ranks and replicate across the groups "
           "(a 2-D grid: hybrid sharding)">,
    Option<"reshardAfterForward", "reshard-after-forward", "bool", "true",
           "Free a unit after its last forward use and gather it again for the backward">,
    Option<"prefetch", "prefetch", "int64_t", "1",
           "Issue a unit's gather this many units ahead of its first use (0: just before)">,
    Option<"report", "report", "bool", "false",
           "Print the units and the per-rank memory of weights, gradients and AdamW state">
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::shard::ShardDialect"];
}

def LlamaRemat : Pass<"llamac-remat", "::mlir::ModuleOp"> {
  let summary = "Recompute forward activations in the backward instead of keeping them";
  let description = [{
    In every function with a backward (ops tagged `llama.backward`), decides which forward
    values the backward may keep alive and recomputes the others right before their first
    backward use. Policies: `none` keeps everything; `selective` (the LLaMA paper's)
    keeps the outputs of linear layers, matmuls, attention (both results of
    flash_attention) and the embedding, and each
    layer's input, and recomputes norms, RoPE, SiLU and the other pointwise ops; `full`
    keeps only each layer's input (and values outside the layers) and recomputes the
    layer. Gradients are unchanged; `report` prints the activation bytes kept per layer.
  }];
  let options = [
    Option<"policy", "policy", "std::string", "\"selective\"",
           "none, selective or full">,
    Option<"report", "report", "bool", "false",
           "Print the activation bytes kept per layer">
  ];
  let statistics = [
    Statistic<"numRecomputed", "ops-recomputed", "Forward ops cloned into the backward">
  ];
}

//===----------------------------------------------------------------------------------===//
// Fusion. The structural fusions (SwiGLU, QKV+RoPE, add+RMSNorm, attention, cross-entropy)
// run on the forward before llamac-autodiff: each fused op's VJP rule builds its fused
// backward, so the derived backward is fused by construction. AdamW and pointwise-chain
// fusion run on the whole training program afterwards. Each pass counts what it fused
// (pass statistics; also printed by `report`).
//===----------------------------------------------------------------------------------===//

class FusionPass<string arg, string summary_, string descr> : Pass<arg, "::mlir::ModuleOp"> {
  let summary = summary_;
  let description = descr;
  let statistics = [Statistic<"numFused", "fused", "Patterns fused">];
  let options = [Option<"report", "report", "bool", "false",
                        "Print the number of patterns fused">];
}

def LlamaFuseSwiGLU : FusionPass<"llamac-fuse-swiglu", "Fuse the SwiGLU feed-forward input",
  [{`mul(silu(linear(x, W1)), linear(x, W3))`, when each intermediate has no other user,
    becomes `swiglu(linear(x, concat(W1, W3)))`: one matmul instead of two, one pointwise
    op instead of two. Its backward (the VJP of llama.swiglu) is one swiglu_grad and one
    matmul for the input gradient.}]>;

def LlamaFuseQKVRoPE : FusionPass<"llamac-fuse-qkv-rope",
  "Fuse the Q, K, V projections with RoPE into one matmul and one op",
  [{When attention's query and key are `rope(split_dim(linear(x, Wq|Wk)))` and its value
    `split_dim(linear(x, Wv))` with one `x`, one theta and offset, and no other users:
    `qkv_rope(linear(x, concat(Wq, Wk, Wv)))`, which yields q, k and v in attention's
    layout. Its backward is one qkv_rope_grad (inverse rotation and repacking) and one
    matmul.}]>;

def LlamaFuseAddRMSNorm : FusionPass<"llamac-fuse-add-rms-norm",
  "Fuse the residual add with the RMSNorm that follows it",
  [{`rms_norm(add(x, r), w)` becomes `add_rms_norm(x, r, w)`, which returns both the sum
    (the residual stream, which may have other users) and the normalised value.}]>;

def LlamaFuseAttention : FusionPass<"llamac-fuse-attention",
  "Attention with flash-attention semantics",
  [{Every llama.attention becomes llama.flash_attention (online softmax by tiles, row
    log-sum-exp kept for the backward), tiles of `block-q` x `block-k`.}]> {
  let options = [
    Option<"report", "report", "bool", "false", "Print the number of patterns fused">,
    Option<"blockQ", "block-q", "int64_t", "64", "Query tile">,
    Option<"blockK", "block-k", "int64_t", "64", "Key tile">
  ];
}

def LlamaFuseCrossEntropy : FusionPass<"llamac-fuse-cross-entropy",
  "Cross-entropy fused with log-softmax, by vocabulary chunks",
  [{Every llama.cross_entropy becomes llama.fused_cross_entropy (online log-sum-exp over
    chunks of `chunk` vocabulary entries; the backward computes the logits gradient from
    the kept log-sum-exp without a probability tensor).}]> {
  let options = [
    Option<"report", "report", "bool", "false", "Print the number of patterns fused">,
    Option<"chunk", "chunk", "int64_t", "4096", "Vocabulary chunk">
  ];
}

def LlamaFuseAdamW : FusionPass<"llamac-fuse-adamw", "AdamW over all parameters as one op",
  [{The llama.adamw ops of a function that share learning rate, step, gradient scale and
    hyper-parameters become one llama.multi_adamw, placed before the first parameter
    write.}]>;

def LlamaFuseElementwise : FusionPass<"llamac-fuse-elementwise",
  "Fuse chains of pointwise ops into one loop",
  [{A pointwise op whose operands come from other pointwise ops of the same shape, each
    used only there, is merged with them into llama.fused_elementwise, whose body computes
    one element with scalar arith and math ops.}]>;

def LlamaDecompose : Pass<"llamac-decompose", "::mlir::ModuleOp"> {
  let summary = "Replace every fused op by its decomposition into primitives";
  let description = [{The inverse of the fusion passes, op by op, through
    DecomposableOpInterface: the reference the fused ops are checked against.}];
}

def LlamaMemoryPlan : Pass<"llamac-memory-plan", "::mlir::ModuleOp"> {
  let summary = "Place every activation of a function in one arena, reusing dead buffers";
  let description = [{
    For every function of a model, with static shapes (after llamac-training): each tensor
    result of an op of the body is a buffer, except parameter reads (`llama.get_param`
    aliases parameter storage) and reshapes (`llama.split_dim` and `llama.merge_dims` alias
    their input, whose life they extend to their own uses); arguments belong to the caller.
    A buffer lives from its defining op to its last reader (function results to the end).
    Buffers are placed greedily by size, largest first, each at the lowest 64-byte-aligned
    offset that no buffer live at the same time occupies. Each op producing a buffer gets
    `llama.offsets` (one offset per result, -1 for a result without a buffer); each
    function gets `llama.arena_bytes` (the arena: max of offset + size) and
    `llama.buffers_bytes` (the sum of the buffers' sizes, what no reuse would take).
  }];
  let options = [
    Option<"report", "report", "bool", "false",
           "Print each function's buffers, their total size, the arena and the reuse ratio">
  ];
  let statistics = [
    Statistic<"numBuffers", "buffers", "Buffers placed">
  ];
}

#endif // LLAMAC_PASSES_TD
