//===- MixedPrecision.cpp - llamac-mixed-precision ---------------------------------===//
//
// Every f32 llama.linear and llama.matmul becomes the same product on bf16 copies of its
// operands, with a bf16 result widened back to f32 for whatever follows:
//
//   %y = llama.linear %x, %w : f32, f32
//     ->
//   %xb = llama.cast %x : f32 to bf16        %wb = llama.cast %w : f32 to bf16
//   %yb = llama.linear %xb, %wb : bf16, bf16
//   %y  = llama.cast %yb : bf16 to f32
//
// These are the numerics of PyTorch's autocast to bf16 for matrix products (products of
// bf16 values summed in f32 by the tensor cores, results stored in bf16), and the rest of
// the program (norms, softmax, losses, the optimizer, the master weights in the parameter
// region) stays f32. Run before llamac-autodiff, the backward follows from the cast's VJP:
// the incoming gradient is rounded to bf16, both backward products take and give bf16, and
// the weight gradient is widened to f32 before it is accumulated, clipped and applied.
//
// Each product gets casts of its own (never shared between products), so that no bf16 value
// has two users and autodiff never sums bf16 cotangents; CSE merges the forward's duplicates
// after autodiff has run.
//
// llamac-plan-fsdp then gathers in bf16 the units whose weights only products read (each
// layer's matrices, the output head): half the bytes, and the same values the unsharded
// program narrows. Norm gains and the embedding table are read in f32, as autocast leaves
// them, and their units are gathered in f32.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/llama/LlamaOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace llamac {
#define GEN_PASS_DEF_LLAMAMIXEDPRECISION
#include "passes/Passes.h.inc"
} // namespace llamac

using namespace mlir;
using namespace llamac;
using namespace llamac::llama;

namespace {

bool isF32Tensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getElementType().isF32();
}

struct MixedPrecisionPass : llamac::impl::LlamaMixedPrecisionBase<MixedPrecisionPass> {
  using LlamaMixedPrecisionBase::LlamaMixedPrecisionBase;

  void runOnOperation() override {
    if (dtype != "bf16") {
      getOperation().emitError("llamac-mixed-precision: dtype must be bf16, not '")
          << dtype << "'";
      return signalPassFailure();
    }
    SmallVector<Operation *> products;
    getOperation().walk([&](Operation *op) {
      if (isa<LinearOp, MatmulOp>(op) && llvm::all_of(op->getOperands(), isF32Tensor))
        products.push_back(op);
    });
    for (Operation *op : products)
      convert(op);
    numProducts += products.size();
  }

  void convert(Operation *op) {
    OpBuilder b(op);
    Location loc = op->getLoc();
    Type bf16 = b.getBF16Type();
    auto narrow = [&](Value v) -> Value {
      auto t = cast<RankedTensorType>(v.getType());
      return CastOp::create(b, loc, t.clone(bf16), v);
    };
    // The casts in operand order (not in an argument list, whose order C++ leaves open).
    Value lhs = narrow(op->getOperand(0)), rhs = narrow(op->getOperand(1));
    Value product;
    if (isa<LinearOp>(op))
      product = LinearOp::create(b, loc, lhs, rhs);
    else
      product = MatmulOp::create(b, loc, lhs, rhs, cast<MatmulOp>(op).getTransposeRhsAttr());
    Value wide = CastOp::create(b, loc, op->getResult(0).getType(), product);
    op->getResult(0).replaceAllUsesWith(wide);
    op->erase();
  }
};

} // namespace
