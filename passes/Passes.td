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

def LlamaRemat : Pass<"llamac-remat", "::mlir::ModuleOp"> {
  let summary = "Recompute forward activations in the backward instead of keeping them";
  let description = [{
    In every function with a backward (ops tagged `llama.backward`), decides which forward
    values the backward may keep alive and recomputes the others right before their first
    backward use. Policies: `none` keeps everything; `selective` (the LLaMA paper's)
    keeps the outputs of linear layers, matmuls, attention and the embedding, and each
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

#endif // LLAMAC_PASSES_TD
