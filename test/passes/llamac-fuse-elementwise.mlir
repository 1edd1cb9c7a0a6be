// RUN: llamac-opt %s --llamac-fuse-elementwise="report=1" | FileCheck %s
// RUN: llamac check %s --pipeline 'llamac-fuse-elementwise' --function chain --tol 1e-12 | FileCheck %s --check-prefix=SAME
// RUN: llamac check %s --pipeline 'llamac-fuse-elementwise' --function swish_grad --tol 1e-12 | FileCheck %s --check-prefix=SAME

// CHECK: llamac-fuse-elementwise: fused 2
// A chain of pointwise ops becomes one loop; constants (the scale) become scalars.
// CHECK-LABEL: func.func @chain
// CHECK: %[[R:.*]] = llama.fused_elementwise %arg0, %arg1 : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32> {
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32):
// CHECK: arith.mulf
// CHECK: arith.constant 5.000000e-01 : f32
// CHECK: math.exp
// CHECK: llama.yield
// CHECK: return %[[R]]
// CHECK-LABEL: func.func @swish_grad
// CHECK: llama.fused_elementwise
// An intermediate with another user stays a tensor: no fusion across it.
// CHECK-LABEL: func.func @shared
// CHECK-NEXT: llama.mul
// CHECK-NEXT: llama.exp
// CHECK-NEXT: llama.neg
// CHECK-NOT: llama.fused_elementwise
// SAME: result0 {{.*}} ok

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @chain(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>) -> tensor<2x8xf32> {
    %m = llama.mul %a, %b : tensor<2x8xf32>
    %s = llama.scale %m by 0.5 : tensor<2x8xf32>
    %e = llama.exp %s : tensor<2x8xf32>
    %r = llama.sub %e, %a : tensor<2x8xf32>
    return %r : tensor<2x8xf32>
  }
  func.func @swish_grad(%x: tensor<2x8xf32>, %dy: tensor<2x8xf32>) -> tensor<2x8xf32> {
    %g = llama.silu_grad %x, %dy : tensor<2x8xf32>
    %s = llama.sigmoid %g : tensor<2x8xf32>
    %r = llama.mul %s, %x : tensor<2x8xf32>
    return %r : tensor<2x8xf32>
  }
  func.func @shared(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
    %m = llama.mul %a, %b : tensor<2x8xf32>
    %e = llama.exp %m : tensor<2x8xf32>
    %n = llama.neg %m : tensor<2x8xf32>
    return %e, %n : tensor<2x8xf32>, tensor<2x8xf32>
  }
}
