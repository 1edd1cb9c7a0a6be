//===- LlamaOps.td - ops of the llama dialect --------------------*- tablegen -*-===//
//
// Structure ops (model, param, layer, get_param, stack) and tensor-level compute ops.
// Every compute op infers its result type; the shape rules and their diagnostics live in
// one place per op, LlamaOps.cpp.
//
//===----------------------------------------------------------------------------------===//

#ifndef LLAMA_OPS_TD
#define LLAMA_OPS_TD

include "LlamaDialect.td"
include "LlamaInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

class Llama_Op<string mnemonic, list<Trait> traits = []>
    : Op<Llama_Dialect, mnemonic, traits>;

def Llama_FloatTensor : RankedTensorOf<[F32, BF16, F16]>;
def Llama_TokenTensor : RankedTensorOf<[I32, I64]>;
// Scalars of the training step (loss, learning rate, step): rank-0 tensors, buildable so
// that the assembly need not spell their types.
def Llama_F32Scalar : 0DTensorOf<[F32]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF32Type())">;
def Llama_I64Scalar : 0DTensorOf<[I64]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getI64Type())">;

// What llama.get_param reads and llama.set_param writes: the model's parameter and state
// storage. Reads are not Pure so that CSE never merges a read across a write.
def Llama_ParamResource : Resource<"::llamac::llama::ParamResource">;
def VJP : DeclareOpInterfaceMethods<VJPOpInterface>;
def Decomposable : DeclareOpInterfaceMethods<DecomposableOpInterface>;

//===----------------------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------------------===//

def Llama_ModelOp : Llama_Op<"model", [
    Symbol, SymbolTable, IsolatedFromAbove, NoTerminator, SingleBlock, NoRegionArguments]> {
  let summary = "a model: hyper-parameters, parameters, layers and functions";
  let description = [{
    The container of one model. Its body declares parameters (`llama.param`), the
    transformer layer (`llama.layer`, written once) and the model's functions. The verifier
    checks that the hyper-parameters are consistent (heads divide the width, KV heads divide
    the heads) and that the declared layer repeats `n_layers` times.

    ```mlir
    llama.model @tiny config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
        ffn_dim = 192, vocab_size = 256, max_seq_len = 64, norm_eps = 1.0e-05,
        rope_theta = 1.0e+04> {
      llama.param @tok_embeddings : tensor<256x64xf32> init normal(2.0e-02)
      llama.layer @layers repeat 2 { ... }
      func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x256xf32> { ... }
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, Llama_ConfigAttr:$config);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name `config` $config attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The function of this model with the given name, or null.
    ::mlir::func::FuncOp lookupFunction(::llvm::StringRef name);
  }];
}

def Llama_ParamOp : Llama_Op<"param", [Symbol]> {
  let summary = "a trainable parameter and its initialiser";
  let description = [{
    Declares a parameter of a model or of a layer. Initialisers: `normal(std)` (mean 0),
    `zeros`, `ones`. The shape is static. Inside a layer the parameter exists once per
    repetition after `llama-expand-layers` (`@layers.0.attention.wq`, ...).

    A `state` parameter is not trained: optimizer moments and accumulated gradients that
    the training step declares; it is checkpointed with the parameters but not counted,
    differentiated or decayed.

    ```mlir
    llama.param @attention.wq : tensor<4096x4096xf32> init normal(2.0e-02)
    llama.param @attention_norm : tensor<4096xf32> init ones
    llama.param @adamw.m.output : tensor<32000x4096xf32> init zeros state
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<Llama_FloatTensor>:$type,
                       Llama_InitKind:$init, OptionalAttr<F64Attr>:$std, UnitAttr:$state);
  let assemblyFormat =
      "$sym_name `:` $type `init` $init (`(` $std^ `)`)? (`state` $state^)? attr-dict";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def Llama_LayerOp : Llama_Op<"layer", [
    Symbol, SymbolTable, HasParent<"ModelOp">, NoTerminator, SingleBlock,
    NoRegionArguments]> {
  let summary = "a transformer layer, declared once and repeated";
  let description = [{
    Declares the parameters of one layer and its computation, a single `func.func` whose
    first argument and only result have the same type (the residual stream). `llama.stack`
    applies the layer `repeat` times; `llama-expand-layers` instantiates it.

    ```mlir
    llama.layer @layers repeat 32 {
      llama.param @attention_norm : tensor<4096xf32> init ones
      func.func @block(%x: tensor<?x?x4096xf32>) -> tensor<?x?x4096xf32> { ... }
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       ConfinedAttr<I64Attr, [IntPositive]>:$repeat);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name `repeat` $repeat attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The layer's computation (the verifier guarantees there is exactly one).
    ::mlir::func::FuncOp getBodyFunction();
  }];
}

def Llama_GetParamOp : Llama_Op<"get_param", [
    MemoryEffects<[MemRead<Llama_ParamResource>]>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the value of a parameter";
  let description = [{
    Reads a parameter of the nearest enclosing layer (inside a layer's function) or model
    (inside a model's function); a layer's function sees only the layer's parameters.

    ```mlir
    %wq = llama.get_param @attention.wq : tensor<4096x4096xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def Llama_StackOp : Llama_Op<"stack", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "apply a layer `repeat` times to the residual stream";
  let description = [{
    Threads the first operand through `repeat` applications of the layer's function; the
    other operands (for example a position offset) are passed unchanged to every layer.

    ```mlir
    %h1 = llama.stack @layers(%h0) : (tensor<?x?x4096xf32>) -> tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$layer, Variadic<AnyType>:$inputs);
  let results = (outs AnyType:$result);
  let assemblyFormat =
      "$layer `(` $inputs `)` attr-dict `:` functional-type($inputs, $result)";
}

//===----------------------------------------------------------------------------------===//
// Compute
//===----------------------------------------------------------------------------------===//

def Llama_EmbeddingOp : Llama_Op<"embedding", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[..., :] = table[tokens[...], :]`. Token ids outside `[0, V)` are an error at
    run time.

    ```mlir
    %h = llama.embedding %table[%tokens] : tensor<32000x4096xf32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$table, Llama_TokenTensor:$tokens);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat =
      "$table `[` $tokens `]` attr-dict `:` type($table) `,` type($tokens)";
}

def Llama_LinearOp : Llama_Op<"linear", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "linear projection without bias, weight stored [out, in]";
  let description = [{
    `result[..., n] = sum_k input[..., k] * weight[n, k]`, the layout of Meta's and Hugging
    Face's checkpoints.

    ```mlir
    %q = llama.linear %x, %wq : tensor<?x?x4096xf32>, tensor<4096x4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$weight);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat =
      "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
}

def Llama_MatmulOp : Llama_Op<"matmul", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "batched matrix product";
  let description = [{
    `result[b..., m, n] = sum_k lhs[b..., m, k] * rhs[b..., k, n]` (or `rhs[b..., n, k]`
    with `transpose_rhs`). The batch dimensions of both sides are equal, or `rhs` is a
    matrix shared by every batch.

    ```mlir
    %s = llama.matmul %q, %k transpose_rhs : tensor<8x32x128x64xf32>, tensor<8x32x128x64xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$lhs, Llama_FloatTensor:$rhs,
                       UnitAttr:$transpose_rhs);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs (`transpose_rhs` $transpose_rhs^)? attr-dict `:` "
                       "type($lhs) `,` type($rhs)";
}

def Llama_RMSNormOp : Llama_Op<"rms_norm", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "RMSNorm over the last dimension, with a learned gain";
  let description = [{
    `result = input / sqrt(mean(input^2, last dim) + eps) * weight`.

    ```mlir
    %n = llama.rms_norm %x, %g eps 1.0e-05 : tensor<?x?x4096xf32>, tensor<4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$weight, F64Attr:$eps);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight `eps` $eps attr-dict `:` type($input) `,` "
                       "type($weight)";
}

def Llama_RoPEOp : Llama_Op<"rope", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "rotary position embedding, adjacent channel pairs";
  let description = [{
    Input layout `[batch, seq, heads, head_dim]`. For position `p = t + offset` and pair
    `i < head_dim / 2`, channels `(2i, 2i+1)` are rotated by the angle
    `p * theta^(-2i / head_dim)`, as in Meta's reference code. `offset` (default 0) is the
    position of the first token, for decoding with a KV cache. With `inverse` the rotation
    is by the opposite angle: the transpose, which is the VJP of the rotation.

    ```mlir
    %qr = llama.rope %q theta 1.0e+04 : tensor<?x?x32x128xf32>
    %kr = llama.rope %k theta 1.0e+04 offset %pos : tensor<1x1x32x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, F64Attr:$theta, Optional<Index>:$offset,
                       UnitAttr:$inverse);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input `theta` $theta (`offset` $offset^)? (`inverse` $inverse^)? "
                       "attr-dict `:` type($input)";
}

def Llama_AttentionOp : Llama_Op<"attention", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "scaled dot-product attention: causal, grouped-query, sliding window";
  let description = [{
    Query `[batch, seq_q, heads, head_dim]`; key and value
    `[batch, seq_kv, kv_heads, head_dim]`. Query head `h` attends with KV head
    `h / (heads / kv_heads)` (grouped-query attention; `kv_heads == heads` is multi-head).
    `scale` defaults to `1/sqrt(head_dim)`. With `causal`, queries are aligned to the end of
    the keys: query `t` sits at key position `t + seq_kv - seq_q` and sees keys at positions
    up to its own (a query with no visible key yields zeros). With `window w` (which needs
    `causal`), it sees only the `w` most recent of them (positions `> pos - w`), as in
    Mistral. The head dimension must be static.

    ```mlir
    %o = llama.attention %q, %k, %v causal window 4096
        : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>, tensor<?x?x8x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$query, Llama_FloatTensor:$key,
                       Llama_FloatTensor:$value, UnitAttr:$causal,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$window,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`causal` $causal^)? (`window` $window^)?
    (`scale` $scale^)? attr-dict `:` type($query) `,` type($key) `,` type($value)
  }];
  let extraClassDeclaration = [{
    /// The scale actually applied: the attribute, or 1/sqrt(head_dim).
    double getEffectiveScale();
  }];
}

def Llama_SoftmaxOp : Llama_Op<"softmax", [Pure, SameOperandsAndResultType, VJP]> {
  let summary = "softmax over the last dimension";
  let description = [{
    ```mlir
    %p = llama.softmax %s : tensor<8x32x128x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Llama_CrossEntropyOp : Llama_Op<"cross_entropy", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "mean softmax cross-entropy over the non-ignored targets";
  let description = [{
    `result = mean over {i : targets[i] != ignore_index} of
    (logsumexp(logits[i, :]) - logits[i, targets[i]])`, an f32 scalar; 0 when every target
    is ignored. `ignore_index` defaults to -1.

    ```mlir
    %loss = llama.cross_entropy %logits, %targets ignore_index -100
        : tensor<?x?x32000xf32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$logits, Llama_TokenTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-1">:$ignore_index);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = "$logits `,` $targets (`ignore_index` $ignore_index^)? attr-dict `:` "
                       "type($logits) `,` type($targets)";
}

// Elementwise ops: same shape and element type in and out, no broadcasting.
class Llama_UnaryOp<string mnemonic, string expr, list<Trait> traits = [VJP]>
    : Llama_Op<mnemonic, !listconcat([Pure, Elementwise, SameOperandsAndResultType], traits)> {
  let summary = "elementwise " # expr;
  let description = "`result = " # expr # "`, elementwise.\n\n```mlir\n%y = llama." #
                    mnemonic # " %x : tensor<?x?x4096xf32>\n```";
  let arguments = (ins Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

class Llama_BinaryOp<string mnemonic, string expr, list<Trait> traits = [VJP]>
    : Llama_Op<mnemonic, !listconcat([Pure, Elementwise, SameOperandsAndResultType],
                                     traits)> {
  let summary = "elementwise " # expr;
  let description = "`result = " # expr # "`, elementwise, operands of one type.\n\n"
                    "```mlir\n%z = llama." # mnemonic #
                    " %x, %y : tensor<?x?x4096xf32>\n```";
  let arguments = (ins Llama_FloatTensor:$lhs, Llama_FloatTensor:$rhs);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Llama_SiLUOp : Llama_UnaryOp<"silu", "x * sigmoid(x)">;
def Llama_SigmoidOp : Llama_UnaryOp<"sigmoid", "1 / (1 + exp(-x))">;
def Llama_NegOp : Llama_UnaryOp<"neg", "-x">;
def Llama_ExpOp : Llama_UnaryOp<"exp", "exp(x)">;
def Llama_LogOp : Llama_UnaryOp<"log", "log(x)">;
def Llama_SqrtOp : Llama_UnaryOp<"sqrt", "sqrt(x)">;
def Llama_RsqrtOp : Llama_UnaryOp<"rsqrt", "1 / sqrt(x)">;

def Llama_AddOp : Llama_BinaryOp<"add", "x + y", [Commutative, VJP]>;
def Llama_SubOp : Llama_BinaryOp<"sub", "x - y">;
def Llama_MulOp : Llama_BinaryOp<"mul", "x * y", [Commutative, VJP]>;
def Llama_DivOp : Llama_BinaryOp<"div", "x / y">;
// No VJP rule: max is not differentiable where x == y (autodiff reports it on a gradient
// path).
def Llama_MaxOp : Llama_BinaryOp<"max", "max(x, y)", [Commutative]>;

def Llama_ScaleOp : Llama_Op<"scale", [Pure, Elementwise, SameOperandsAndResultType, VJP]> {
  let summary = "multiply by a constant";
  let description = [{
    ```mlir
    %y = llama.scale %x by 5.0e-01 : tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input `by` $factor attr-dict `:` type($result)";
}

def Llama_CastOp : Llama_Op<"cast", [Pure, Elementwise, VJP]> {
  let summary = "convert between f32, bf16 and f16";
  let description = [{
    Rounds to nearest even when narrowing.

    ```mlir
    %y = llama.cast %x : tensor<?x4096xf32> to tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------------------===//

def Llama_SplitDimOp : Llama_Op<"split_dim", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "split one dimension into several (row-major)";
  let description = [{
    ```mlir
    %q4 = llama.split_dim %q dim 2 into [32, 128] : tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim, DenseI64ArrayAttr:$sizes);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `dim` $dim `into` $sizes attr-dict `:` type($input)";
}

def Llama_MergeDimsOp : Llama_Op<"merge_dims", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "merge a dimension with the next one (row-major)";
  let description = [{
    ```mlir
    %o = llama.merge_dims %o4 dim 2 : tensor<?x?x32x128xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `dim` $dim attr-dict `:` type($input)";
}

def Llama_TransposeOp : Llama_Op<"transpose", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "permute dimensions";
  let description = [{
    `result` dimension `i` is `input` dimension `permutation[i]`.

    ```mlir
    %t = llama.transpose %x [0, 2, 1, 3] : tensor<?x?x32x128xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input $permutation attr-dict `:` type($input)";
}

def Llama_ConcatOp : Llama_Op<"concat", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "concatenate along one dimension";
  let description = [{
    ```mlir
    %w13 = llama.concat %w1, %w3 dim 0 : tensor<11008x4096xf32>, tensor<11008x4096xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, I64Attr:$dim);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$inputs `dim` $dim attr-dict `:` type($inputs)";
}

def Llama_SliceOp : Llama_Op<"slice", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "a contiguous range of one dimension";
  let description = [{
    `result` holds indices `[offset, offset + size)` of dimension `dim`.

    ```mlir
    %w1 = llama.slice %w13 dim 0 [0, 11008] : tensor<22016x4096xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim, I64Attr:$offset,
                       I64Attr:$size);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `dim` $dim ` ` `[` $offset `,` $size `]` attr-dict `:` "
                       "type($input)";
}

def Llama_PadOp : Llama_Op<"pad", [Pure, InferTypeOpAdaptor, VJP]> {
  let summary = "zeros before and after one dimension";
  let description = [{
    The VJP of `llama.slice`: `result` is `input` with `before` zeros ahead of it and
    `after` zeros behind it along `dim`.

    ```mlir
    %g = llama.pad %d dim 0 [11008, 0] : tensor<11008x4096xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim, I64Attr:$before, I64Attr:$after);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input `dim` $dim ` ` `[` $before `,` $after `]` attr-dict `:` "
                       "type($input)";
}

//===----------------------------------------------------------------------------------===//
// Backward ops: what the VJP rules build where a composition of primitives would be long
// or would lose the structure that fusion and code generation want.
//===----------------------------------------------------------------------------------===//

def Llama_EmbeddingGradOp : Llama_Op<"embedding_grad", [Pure, InferTypeOpAdaptor]> {
  let summary = "gradient of an embedding table: scatter-add of rows";
  let description = [{
    `result[v, :] = sum over positions p with tokens[p] == v of grad[p, :]`, a
    `[vocab, dim]` tensor.

    ```mlir
    %dE = llama.embedding_grad %tokens, %dh vocab 32000 : tensor<?x?xi32>, tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins Llama_TokenTensor:$tokens, Llama_FloatTensor:$grad, I64Attr:$vocab);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$tokens `,` $grad `vocab` $vocab attr-dict `:` type($tokens) `,` "
                       "type($grad)";
}

def Llama_LinearWeightGradOp : Llama_Op<"linear_weight_grad", [Pure, InferTypeOpAdaptor]> {
  let summary = "gradient of a linear weight: sum of outer products";
  let description = [{
    `result[n, k] = sum over leading indices of grad[..., n] * input[..., k]`, the
    gradient of `llama.linear`'s `[out, in]` weight.

    ```mlir
    %dW = llama.linear_weight_grad %dy, %x : tensor<?x?x4096xf32>, tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$grad, Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$grad `,` $input attr-dict `:` type($grad) `,` type($input)";
}

def Llama_RMSNormGradOp : Llama_Op<"rms_norm_grad", [Pure, InferTypeOpAdaptor]> {
  let summary = "gradients of RMSNorm with respect to its input and gain";
  let description = [{
    With `r = 1/sqrt(mean(x^2) + eps)` per row and `g = grad * weight`:
    `input_grad = r * (g - x * r^2 * mean(g * x))`, `weight_grad = sum over rows of
    grad * x * r`.

    ```mlir
    %dx, %dw = llama.rms_norm_grad %x, %w, %dy eps 1.0e-05
        : tensor<?x?x4096xf32>, tensor<4096xf32>, tensor<?x?x4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$weight,
                       Llama_FloatTensor:$grad, F64Attr:$eps);
  let results = (outs Llama_FloatTensor:$input_grad, Llama_FloatTensor:$weight_grad);
  let assemblyFormat = "$input `,` $weight `,` $grad `eps` $eps attr-dict `:` type($input) "
                       "`,` type($weight) `,` type($grad)";
}

def Llama_AttentionGradOp : Llama_Op<"attention_grad", [Pure, InferTypeOpAdaptor]> {
  let summary = "gradients of attention with respect to query, key and value";
  let description = [{
    The VJP of `llama.attention` with the same attributes: given the output gradient,
    returns `dq` (shaped as the query) and `dk`, `dv` (shaped as key and value; grouped
    query heads sum into their shared KV head). The reference recomputes the softmax; a
    fused kernel keeps the row log-sum-exp of the forward instead.

    ```mlir
    %dq, %dk, %dv = llama.attention_grad %q, %k, %v, %do causal
        : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>, tensor<?x?x8x128xf32>,
          tensor<?x?x32x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$query, Llama_FloatTensor:$key,
                       Llama_FloatTensor:$value, Llama_FloatTensor:$grad, UnitAttr:$causal,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$window,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs Llama_FloatTensor:$query_grad, Llama_FloatTensor:$key_grad,
                      Llama_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad (`causal` $causal^)? (`window` $window^)?
    (`scale` $scale^)? attr-dict `:` type($query) `,` type($key) `,` type($value) `,`
    type($grad)
  }];
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
}

def Llama_SoftmaxGradOp : Llama_Op<"softmax_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "gradient of softmax from its output";
  let description = [{
    `result = output * (grad - sum(grad * output, last dim))`.

    ```mlir
    %ds = llama.softmax_grad %p, %dp : tensor<8x32x128x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$output, Llama_FloatTensor:$grad);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` type($result)";
}

def Llama_SiLUGradOp : Llama_Op<"silu_grad", [Pure, Elementwise, SameOperandsAndResultType]> {
  let summary = "gradient of SiLU";
  let description = [{
    `result = grad * s * (1 + x * (1 - s))` with `s = sigmoid(x)`.

    ```mlir
    %dg = llama.silu_grad %g, %dh : tensor<?x?x11008xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$grad);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
}

def Llama_CrossEntropyGradOp : Llama_Op<"cross_entropy_grad", [Pure, InferTypeOpAdaptor]> {
  let summary = "gradient of the mean cross-entropy with respect to the logits";
  let description = [{
    `result[i, :] = grad * (softmax(logits[i, :]) - onehot(targets[i])) / count` for the
    `count` rows whose target is not `ignore_index`; ignored rows get zeros.

    ```mlir
    %dl = llama.cross_entropy_grad %logits, %targets, %dloss
        : tensor<?x?x32000xf32>, tensor<?x?xi32>, tensor<f32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$logits, Llama_TokenTensor:$targets,
                       Llama_F32Scalar:$grad, DefaultValuedAttr<I64Attr, "-1">:$ignore_index);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$logits `,` $targets `,` $grad (`ignore_index` $ignore_index^)? "
                       "attr-dict `:` type($logits) `,` type($targets)";
}

//===----------------------------------------------------------------------------------===//
// Training ops: state updates, clipping, schedule and optimizer.
//===----------------------------------------------------------------------------------===//

def Llama_SetParamOp : Llama_Op<"set_param", [
    MemoryEffects<[MemWrite<Llama_ParamResource>]>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "overwrite a parameter or a state tensor";
  let description = [{
    The training step's only side effect: the optimizer writes the new parameters and
    moments, the gradient step accumulates into `state` tensors.

    ```mlir
    llama.set_param @adamw.m.output = %m1 : tensor<32000x4096xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name, Llama_FloatTensor:$value);
  let assemblyFormat = "$name `=` $value attr-dict `:` type($value)";
}

def Llama_GradClipOp : Llama_Op<"grad_clip", [Pure]> {
  let summary = "global gradient norm and the clipping coefficient";
  let description = [{
    With `norm = sqrt(sum over every element of every gradient of (g / count)^2)`, the
    gradients averaged over `count` micro-batches: `norm` and
    `coefficient = min(1, max_norm / (norm + 1e-6)) / count`, the factor that turns the
    summed gradients into the averaged, clipped ones.

    ```mlir
    %coef, %norm = llama.grad_clip %g0, %g1 count %n max_norm 1.0
        : tensor<4096xf32>, tensor<32000x4096xf32>
    ```
  }];
  let arguments = (ins Variadic<Llama_FloatTensor>:$grads, Llama_F32Scalar:$count,
                       F64Attr:$max_norm);
  let results = (outs Llama_F32Scalar:$coefficient, Llama_F32Scalar:$norm);
  let assemblyFormat = "$grads `count` $count `max_norm` $max_norm attr-dict `:` type($grads)";
  let hasVerifier = 1;
}

def Llama_LRScheduleOp : Llama_Op<"lr_schedule", [Pure]> {
  let summary = "linear warm-up, then cosine decay to a floor";
  let description = [{
    For step `s` (counted from 0), peak rate `lr` and `total` steps:
    `lr * (s + 1) / warmup` while `s < warmup`; then, with `p = min(1, (s - warmup) /
    max(1, total - warmup))`, `lr * (floor + (1 - floor) * (1 + cos(pi p)) / 2)`. LLaMA:
    warm-up 2000 steps, floor 0.1.

    ```mlir
    %lr_t = llama.lr_schedule %step, %lr, %total warmup 2000 floor 1.0e-01
    ```
  }];
  let arguments = (ins Llama_I64Scalar:$step, Llama_F32Scalar:$peak, Llama_I64Scalar:$total,
                       I64Attr:$warmup, F64Attr:$floor);
  let results = (outs Llama_F32Scalar:$result);
  let assemblyFormat = "$step `,` $peak `,` $total `warmup` $warmup `floor` $floor attr-dict";
  let builders = [
    OpBuilder<(ins "::mlir::Value":$step, "::mlir::Value":$peak, "::mlir::Value":$total,
                   "int64_t":$warmup, "double":$floor)>
  ];
  let hasVerifier = 1;
}

def Llama_AdamWOp : Llama_Op<"adamw", [Pure, AllTypesMatch<["param", "grad", "m", "v",
                                                          "new_param", "new_m", "new_v"]>]> {
  let summary = "one AdamW update of one parameter";
  let description = [{
    With `g = grad * grad_scale` and `t = step + 1`:
    `m' = beta1 m + (1 - beta1) g`, `v' = beta2 v + (1 - beta2) g^2`,
    `param' = param - lr (m' / (1 - beta1^t) / (sqrt(v' / (1 - beta2^t)) + eps)
    + weight_decay param)` (decoupled weight decay, Loshchilov and Hutter).

    ```mlir
    %p1, %m1, %v1 = llama.adamw %p, %g, %m, %v lr %lr step %step grad_scale %c
        beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decay 0.1 : tensor<4096x4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$param, Llama_FloatTensor:$grad,
                       Llama_FloatTensor:$m, Llama_FloatTensor:$v, Llama_F32Scalar:$lr,
                       Llama_I64Scalar:$step, Llama_F32Scalar:$grad_scale, F64Attr:$beta1,
                       F64Attr:$beta2, F64Attr:$eps, F64Attr:$weight_decay);
  let results = (outs Llama_FloatTensor:$new_param, Llama_FloatTensor:$new_m,
                      Llama_FloatTensor:$new_v);
  let assemblyFormat = [{
    $param `,` $grad `,` $m `,` $v `lr` $lr `step` $step `grad_scale` $grad_scale
    `beta1` $beta1 `beta2` $beta2 `eps` $eps `weight_decay` $weight_decay attr-dict `:`
    type($param)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------------------===//
// Fused ops: what the fusion passes (passes/Fuse*.cpp) produce. Each decomposes back into
// primitives (DecomposableOpInterface) and, where it appears before autodiff, has a VJP rule
// that builds its fused backward.
//===----------------------------------------------------------------------------------===//

def Llama_SwiGLUOp : Llama_Op<"swiglu", [Pure, InferTypeOpAdaptor, VJP, Decomposable]> {
  let summary = "SwiGLU on a concatenated gate and up projection";
  let description = [{
    `input` holds `[gate, up]` along its last dimension (size 2F, the output of one matmul
    against `[W1; W3]`); `result = silu(gate) * up`, size F.

    ```mlir
    %m = llama.swiglu %gu : tensor<?x?x22016xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Llama_SwiGLUGradOp : Llama_Op<"swiglu_grad", [Pure, Decomposable,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "gradient of SwiGLU with respect to the concatenated projection";
  let description = [{
    `result = [grad * up * silu'(gate), grad * silu(gate)]` along the last dimension.

    ```mlir
    %dgu = llama.swiglu_grad %gu, %dm : tensor<?x?x22016xf32>, tensor<?x?x11008xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$grad);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($input) `,` type($grad)";
  let hasVerifier = 1;
}

def Llama_QKVRoPEOp : Llama_Op<"qkv_rope", [Pure, VJP, Decomposable,
    AllTypesMatch<["k", "v"]>]> {
  let summary = "split a fused QKV projection into heads and rotate q and k";
  let description = [{
    `input` is `[batch, seq, (heads + 2 kv_heads) * head_dim]`, the output of one matmul
    against `[Wq; Wk; Wv]`. Returns q `[batch, seq, heads, head_dim]` and k, v
    `[batch, seq, kv_heads, head_dim]`, the layout attention takes, with q and k rotated
    as by `llama.rope` (theta, offset).

    ```mlir
    %q, %k, %v = llama.qkv_rope %qkv heads 32 kv_heads 8 theta 1.0e+04
        : tensor<?x?x6144xf32> -> tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, I64Attr:$heads, I64Attr:$kv_heads,
                       F64Attr:$theta, Optional<Index>:$offset);
  let results = (outs Llama_FloatTensor:$q, Llama_FloatTensor:$k, Llama_FloatTensor:$v);
  let assemblyFormat = [{
    $input `heads` $heads `kv_heads` $kv_heads `theta` $theta (`offset` $offset^)? attr-dict
    `:` type($input) `->` type($q) `,` type($k)
  }];
  let hasVerifier = 1;
}

def Llama_QKVRoPEGradOp : Llama_Op<"qkv_rope_grad", [Pure, Decomposable,
    AllTypesMatch<["k_grad", "v_grad"]>]> {
  let summary = "gradient of qkv_rope: inverse rotation and repacking in one op";
  let description = [{
    ```mlir
    %dqkv = llama.qkv_rope_grad %dq, %dk, %dv theta 1.0e+04
        : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32> -> tensor<?x?x6144xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$q_grad, Llama_FloatTensor:$k_grad,
                       Llama_FloatTensor:$v_grad, F64Attr:$theta, Optional<Index>:$offset);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = [{
    $q_grad `,` $k_grad `,` $v_grad `theta` $theta (`offset` $offset^)? attr-dict `:`
    type($q_grad) `,` type($k_grad) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Llama_AddRMSNormOp : Llama_Op<"add_rms_norm", [Pure, VJP, Decomposable,
    AllTypesMatch<["input", "residual", "sum", "normed"]>]> {
  let summary = "residual add followed by RMSNorm, both results";
  let description = [{
    `sum = input + residual`, `normed = rms_norm(sum, weight, eps)`: the pre-norm pattern of
    every LLaMA layer, one pass over the residual stream.

    ```mlir
    %h, %hn = llama.add_rms_norm %x, %attn, %w eps 1.0e-05
        : tensor<?x?x4096xf32>, tensor<4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input, Llama_FloatTensor:$residual,
                       Llama_FloatTensor:$weight, F64Attr:$eps);
  let results = (outs Llama_FloatTensor:$sum, Llama_FloatTensor:$normed);
  let assemblyFormat = "$input `,` $residual `,` $weight `eps` $eps attr-dict `:` "
                       "type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def Llama_AddRMSNormGradOp : Llama_Op<"add_rms_norm_grad", [Pure, Decomposable,
    AllTypesMatch<["sum", "normed_grad", "sum_grad", "input_grad"]>,
    AllTypesMatch<["weight", "weight_grad"]>]> {
  let summary = "gradient of add_rms_norm";
  let description = [{
    With `dn` the cotangent of `normed` and `ds` that of `sum`: `input_grad = ds +
    rms_norm_input_grad(sum, weight, dn)` (also the residual's gradient) and
    `weight_grad`.

    ```mlir
    %dx, %dw = llama.add_rms_norm_grad %h, %w, %dn, %ds eps 1.0e-05
        : tensor<?x?x4096xf32>, tensor<4096xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$sum, Llama_FloatTensor:$weight,
                       Llama_FloatTensor:$normed_grad, Llama_FloatTensor:$sum_grad,
                       F64Attr:$eps);
  let results = (outs Llama_FloatTensor:$input_grad, Llama_FloatTensor:$weight_grad);
  let assemblyFormat = "$sum `,` $weight `,` $normed_grad `,` $sum_grad `eps` $eps attr-dict "
                       "`:` type($sum) `,` type($weight)";
  let hasVerifier = 1;
}

def Llama_FlashAttentionOp : Llama_Op<"flash_attention", [Pure, InferTypeOpAdaptor, VJP,
    Decomposable]> {
  let summary = "attention by tiles with an online softmax; keeps the row log-sum-exp";
  let description = [{
    The same output as `llama.attention` (same layouts and attributes), computed over key
    tiles of `block_k` keys for query tiles of `block_q` rows with a running maximum and
    sum, so that no `seq_q x seq_kv` score matrix exists; `lse[b, t, h]` (f32) is the
    log-sum-exp of the scaled, masked scores of each row, which the backward uses to
    recompute probabilities tile by tile. Rows with no visible key have lse -inf and zero
    output.

    ```mlir
    %o, %lse = llama.flash_attention %q, %k, %v causal block_q 64 block_k 64
        : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>, tensor<?x?x8x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$query, Llama_FloatTensor:$key,
                       Llama_FloatTensor:$value, UnitAttr:$causal,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$window,
                       OptionalAttr<F64Attr>:$scale,
                       ConfinedAttr<I64Attr, [IntPositive]>:$block_q,
                       ConfinedAttr<I64Attr, [IntPositive]>:$block_k);
  let results = (outs Llama_FloatTensor:$result, RankedTensorOf<[F32]>:$lse);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`causal` $causal^)? (`window` $window^)? (`scale` $scale^)?
    `block_q` $block_q `block_k` $block_k attr-dict `:` type($query) `,` type($key) `,`
    type($value)
  }];
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
}

def Llama_FlashAttentionGradOp : Llama_Op<"flash_attention_grad", [Pure, Decomposable,
    AllTypesMatch<["query", "output", "grad", "query_grad"]>,
    AllTypesMatch<["key", "key_grad"]>, AllTypesMatch<["value", "value_grad"]>]> {
  let summary = "attention backward from the saved output and log-sum-exp";
  let description = [{
    dq, dk, dv of `llama.flash_attention`, recomputing each tile's probabilities as
    `exp(scale q.k - lse)` and using `D = rowsum(do * o)`, as FlashAttention-2 does.

    ```mlir
    %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %v, %o, %lse, %do causal
        block_q 64 block_k 64
        : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>, tensor<?x?x8x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$query, Llama_FloatTensor:$key,
                       Llama_FloatTensor:$value, Llama_FloatTensor:$output,
                       RankedTensorOf<[F32]>:$lse, Llama_FloatTensor:$grad, UnitAttr:$causal,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$window,
                       OptionalAttr<F64Attr>:$scale,
                       ConfinedAttr<I64Attr, [IntPositive]>:$block_q,
                       ConfinedAttr<I64Attr, [IntPositive]>:$block_k);
  let results = (outs Llama_FloatTensor:$query_grad, Llama_FloatTensor:$key_grad,
                      Llama_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $output `,` $lse `,` $grad (`causal` $causal^)?
    (`window` $window^)? (`scale` $scale^)? `block_q` $block_q `block_k` $block_k attr-dict
    `:` type($query) `,` type($key) `,` type($value) `,` type($lse)
  }];
  let extraClassDeclaration = [{
    double getEffectiveScale();
  }];
  let hasVerifier = 1;
}

def Llama_AttentionLSEOp : Llama_Op<"attention_lse", [Pure]> {
  let summary = "row log-sum-exp of attention scores (reference primitive)";
  let description = [{
    `result[b, t, h]` (f32) is the log-sum-exp over the visible keys of the scaled scores of
    query row `(b, t, h)`, with `llama.attention`'s masking; -inf for a row with no visible
    key. The primitive that flash_attention's second result decomposes to.

    ```mlir
    %lse = llama.attention_lse %q, %k causal : tensor<?x?x32x128xf32>, tensor<?x?x8x128xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$query, Llama_FloatTensor:$key, UnitAttr:$causal,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$window,
                       OptionalAttr<F64Attr>:$scale);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $query `,` $key (`causal` $causal^)? (`window` $window^)? (`scale` $scale^)? attr-dict
    `:` type($query) `,` type($key) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Llama_LogSumExpOp : Llama_Op<"logsumexp", [Pure, InferTypeOpAdaptor]> {
  let summary = "log-sum-exp over the last dimension";
  let description = [{
    ```mlir
    %lse = llama.logsumexp %logits : tensor<?x?x32000xf32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$input);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Llama_FusedCrossEntropyOp : Llama_Op<"fused_cross_entropy", [Pure, InferTypeOpAdaptor,
    VJP, Decomposable]> {
  let summary = "cross-entropy by vocabulary chunks; keeps the row log-sum-exp";
  let description = [{
    The loss of `llama.cross_entropy`, computed with an online log-sum-exp over chunks of
    `chunk` vocabulary entries, so that no probability tensor exists; `lse` (f32, one per
    row) is kept for the backward.

    ```mlir
    %loss, %lse = llama.fused_cross_entropy %logits, %targets chunk 8192
        : tensor<?x?x32000xf32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$logits, Llama_TokenTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-1">:$ignore_index,
                       ConfinedAttr<I64Attr, [IntPositive]>:$chunk);
  let results = (outs 0DTensorOf<[F32]>:$loss, RankedTensorOf<[F32]>:$lse);
  let assemblyFormat = "$logits `,` $targets (`ignore_index` $ignore_index^)? `chunk` $chunk "
                       "attr-dict `:` type($logits) `,` type($targets)";
  }

def Llama_FusedCrossEntropyGradOp : Llama_Op<"fused_cross_entropy_grad", [Pure, Decomposable,
    AllTypesMatch<["logits", "result"]>]> {
  let summary = "logits gradient from the saved log-sum-exp, chunk by chunk";
  let description = [{
    `result[i, v] = grad * (exp(logits[i, v] - lse[i]) - [v == target_i]) / count`, zeros
    for ignored rows: `llama.cross_entropy_grad` without recomputing the softmax.

    ```mlir
    %dl = llama.fused_cross_entropy_grad %logits, %targets, %lse, %dloss chunk 8192
        : tensor<?x?x32000xf32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins Llama_FloatTensor:$logits, Llama_TokenTensor:$targets,
                       RankedTensorOf<[F32]>:$lse, Llama_F32Scalar:$grad,
                       DefaultValuedAttr<I64Attr, "-1">:$ignore_index,
                       ConfinedAttr<I64Attr, [IntPositive]>:$chunk);
  let results = (outs Llama_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $targets `,` $lse `,` $grad (`ignore_index` $ignore_index^)? `chunk` $chunk
    attr-dict `:` type($logits) `,` type($targets) `,` type($lse)
  }];
  let hasVerifier = 1;
}

def Llama_MultiAdamWOp : Llama_Op<"multi_adamw", [Pure, AttrSizedOperandSegments,
                                                 Decomposable]> {
  let summary = "AdamW over many parameters in one update";
  let description = [{
    `llama.adamw` applied to every (param, grad, m, v) quadruple with one learning rate,
    step and gradient scale; `weight_decays` gives each parameter's decay. Results: the new
    parameters, then the new first moments, then the new second moments.

    ```mlir
    %r:6 = llama.multi_adamw params [%p0, %p1] grads [%g0, %g1] m [%m0, %m1] v [%v0, %v1]
        lr %lr step %s
        grad_scale %c beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.0, 0.1]
        : tensor<4096xf32>, tensor<4096x4096xf32>
    ```
  }];
  let arguments = (ins Variadic<Llama_FloatTensor>:$params, Variadic<Llama_FloatTensor>:$grads,
                       Variadic<Llama_FloatTensor>:$ms, Variadic<Llama_FloatTensor>:$vs,
                       Llama_F32Scalar:$lr, Llama_I64Scalar:$step, Llama_F32Scalar:$grad_scale,
                       F64Attr:$beta1, F64Attr:$beta2, F64Attr:$eps,
                       DenseF64ArrayAttr:$weight_decays);
  let results = (outs Variadic<Llama_FloatTensor>:$results);
  let assemblyFormat = [{
    `params` ` ` `[` $params `]` `grads` ` ` `[` $grads `]` `m` ` ` `[` $ms `]` `v` ` ` `[` $vs `]`
    `lr` $lr `step` $step
    `grad_scale` $grad_scale `beta1` $beta1 `beta2` $beta2 `eps` $eps `weight_decays`
    $weight_decays attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Llama_FusedElementwiseOp : Llama_Op<"fused_elementwise", [Pure, SingleBlock,
    Decomposable]> {
  let summary = "a chain of elementwise ops as one loop over the elements";
  let description = [{
    All operands and the result have one shape. The region computes one result element from
    one element of each operand with scalar `arith` and `math` ops (f32 scalars);
    `llama.yield` returns it.

    ```mlir
    %r = llama.fused_elementwise %a, %b : tensor<?x?x4096xf32>, tensor<?x?x4096xf32>
        -> tensor<?x?x4096xf32> {
    ^bb0(%x: f32, %y: f32):
      %s = arith.mulf %x, %y : f32
      llama.yield %s : f32
    }
    ```
  }];
  let arguments = (ins Variadic<Llama_FloatTensor>:$inputs);
  let results = (outs Llama_FloatTensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result) $body";
  let hasVerifier = 1;
}

def Llama_YieldOp : Llama_Op<"yield", [Pure, Terminator, HasParent<"FusedElementwiseOp">]> {
  let summary = "the element a fused_elementwise body computes";
  let arguments = (ins AnyFloat:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

#endif // LLAMA_OPS_TD
