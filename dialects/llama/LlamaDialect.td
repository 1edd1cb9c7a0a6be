//===- LlamaDialect.td - the llama dialect, its attributes -------*- tablegen -*-===//
//
// The dialect in which a LLaMA-family model is declared: its hyper-parameters, its
// parameters with their initialisers, one transformer layer written once, and the forward
// computation at tensor level.
//
//===----------------------------------------------------------------------------------===//

#ifndef LLAMA_DIALECT_TD
#define LLAMA_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Llama_Dialect : Dialect {
  let name = "llama";
  let cppNamespace = "::llamac::llama";
  let summary = "Declarations of LLaMA-family transformers at tensor level";
  let description = [{
    A model is a `llama.model` op: a symbol table that carries the hyper-parameters
    (`#llama.config`), declares parameters (`llama.param`) with their initialisers, declares
    the transformer layer once (`llama.layer`, instantiated `repeat` times by
    `llama-expand-layers`), and holds the model's functions (`func.func @forward`, ...).

    Compute ops take and return builtin tensors of f32, bf16 or f16 (token ids: i32 or i64).
    Batch and sequence dimensions may be dynamic; `llama-specialize` fixes them. Result types
    are inferred from the operands, so the assembly shows only operand types.
  }];
  let useDefaultAttributePrinterParser = 1;
  let dependentDialects = ["::mlir::func::FuncDialect", "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

//===----------------------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------------------===//

def Llama_InitKind : I32EnumAttr<"InitKind", "parameter initialiser", [
    I32EnumAttrCase<"normal", 0>,
    I32EnumAttrCase<"zeros", 1>,
    I32EnumAttrCase<"ones", 2>
  ]> {
  let cppNamespace = "::llamac::llama";
}

// A finite double printed and parsed as a bare float literal (no `: f64`).
def Llama_DoubleParameter : APFloatParameter<"a float literal"> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = [{ $_printer << $_self.convertToDouble() }];
}

def Llama_ConfigAttr : AttrDef<Llama_Dialect, "Config"> {
  let mnemonic = "config";
  let summary = "hyper-parameters of a LLaMA-family model";
  let description = [{
    The published hyper-parameters of a model. `ffn_dim` is the SwiGLU hidden size;
    `sliding_window` is 0 for full causal attention; `max_seq_len` is the training context.

    ```mlir
    #llama.config<dim = 4096, n_layers = 32, n_heads = 32, n_kv_heads = 32,
                  ffn_dim = 11008, vocab_size = 32000, max_seq_len = 2048,
                  norm_eps = 1.0e-05, rope_theta = 1.0e+04, sliding_window = 0>
    ```
  }];
  let parameters = (ins
    "int64_t":$dim,
    "int64_t":$n_layers,
    "int64_t":$n_heads,
    "int64_t":$n_kv_heads,
    "int64_t":$ffn_dim,
    "int64_t":$vocab_size,
    "int64_t":$max_seq_len,
    Llama_DoubleParameter:$norm_eps,
    Llama_DoubleParameter:$rope_theta,
    DefaultValuedParameter<"int64_t", "0">:$sliding_window
  );
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getHeadDim() const { return getDim() / getNHeads(); }
    bool hasSlidingWindow() const { return getSlidingWindow() > 0; }
  }];
}

#endif // LLAMA_DIALECT_TD
