//===- LlamaInterfaces.td - op interfaces of the llama dialect ---*- tablegen -*-===//
#ifndef LLAMA_INTERFACES_TD
#define LLAMA_INTERFACES_TD

include "mlir/IR/OpBase.td"

def VJPOpInterface : OpInterface<"VJPOpInterface"> {
  let cppNamespace = "::llamac::llama";
  let description = [{
    The reverse-mode rule of a differentiable op: given the cotangents of its results
    (null where a result has none), build the cotangent of each operand with `b` (null for
    an operand that is not differentiable, such as token ids or a position offset). The
    rule of each op is written next to the op's shape rule, in LlamaVJP.cpp;
    `llamac-autodiff` composes them.
  }];
  let methods = [
    InterfaceMethod<"Build cotangents for each operand given result cotangents.",
      "::llvm::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$b, "::mlir::ValueRange":$resultCotangents,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandCotangents)>
  ];
}

def DecomposableOpInterface : OpInterface<"DecomposableOpInterface"> {
  let cppNamespace = "::llamac::llama";
  let description = [{
    A fused op's meaning in primitives: `decompose` builds, with `b`, values equal to the
    op's results from primitive llama ops. `llamac-decompose` applies it, and the tests run
    every fused op against its decomposition in the interpreter.
  }];
  let methods = [
    InterfaceMethod<"Build the op's results from primitive ops.",
      "::llvm::LogicalResult", "decompose",
      (ins "::mlir::OpBuilder &":$b, "::llvm::SmallVectorImpl<::mlir::Value> &":$results)>
  ];
}

#endif // LLAMA_INTERFACES_TD
