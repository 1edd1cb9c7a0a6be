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

#endif // LLAMAC_PASSES_TD
