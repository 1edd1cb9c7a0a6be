// The model's feed-forward, forward and derived backward:
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-swiglu="report=1" --llamac-autodiff | FileCheck %s
// Where the pattern does not hold:
// RUN: llamac-opt %s --llamac-fuse-swiglu="report=1" | FileCheck %s --check-prefix=NEG
// The fused forward computes the same loss (interpreter, f64):
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-fuse-swiglu' --batch 1 --seq 4 --tol 1e-12 | FileCheck %s --check-prefix=SAME

// One in @forward, one in @loss (which inlined @forward).
// CHECK: llamac-fuse-swiglu: fused 2
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[W1:.*]] = llama.get_param @layers.0.feed_forward.w1
// CHECK: %[[W3:.*]] = llama.get_param @layers.0.feed_forward.w3
// CHECK: %[[W13:.*]] = llama.concat %[[W1]], %[[W3]] dim 0 : tensor<16x8xf32>, tensor<16x8xf32>
// CHECK-NEXT: %[[GU:.*]] = llama.linear %[[HN:.*]], %[[W13]] : tensor<1x4x8xf32>, tensor<32x8xf32>
// CHECK-NEXT: %[[M:.*]] = llama.swiglu %[[GU]] : tensor<1x4x32xf32>
// CHECK-NOT: llama.silu
// Backward: one fused op, one matmul for the input gradient, the weight gradient split.
// CHECK: %[[DGU:.*]] = llama.swiglu_grad %[[GU]], %{{.*}} {llama.backward} : tensor<1x4x32xf32>, tensor<1x4x16xf32>
// CHECK-NEXT: llama.matmul %[[DGU]], %[[W13]] {llama.backward}
// CHECK-NEXT: %[[DW13:.*]] = llama.linear_weight_grad %[[DGU]], %[[HN]] {llama.backward}
// CHECK-DAG: llama.slice %[[DW13]] dim 0 [0, 16] {llama.backward}
// CHECK-DAG: llama.slice %[[DW13]] dim 0 [16, 16] {llama.backward}
// CHECK-NOT: llama.silu_grad

// NEG: llamac-fuse-swiglu: fused 0
// NEG-LABEL: func.func @different_inputs
// NEG: llama.silu
// NEG-LABEL: func.func @gate_needed
// NEG: llama.silu
// NEG-LABEL: func.func @up_needed
// NEG: llama.silu

// SAME: @forward result0 {{.*}} ok
// SAME: @loss result0 {{.*}} ok

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @different_inputs(%x: tensor<2x8xf32>, %y: tensor<2x8xf32>, %w1: tensor<16x8xf32>, %w3: tensor<16x8xf32>) -> tensor<2x16xf32> {
    %g = llama.linear %x, %w1 : tensor<2x8xf32>, tensor<16x8xf32>
    %u = llama.linear %y, %w3 : tensor<2x8xf32>, tensor<16x8xf32>
    %s = llama.silu %g : tensor<2x16xf32>
    %m = llama.mul %s, %u : tensor<2x16xf32>
    return %m : tensor<2x16xf32>
  }
  func.func @gate_needed(%x: tensor<2x8xf32>, %w1: tensor<16x8xf32>, %w3: tensor<16x8xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>) {
    %g = llama.linear %x, %w1 : tensor<2x8xf32>, tensor<16x8xf32>
    %u = llama.linear %x, %w3 : tensor<2x8xf32>, tensor<16x8xf32>
    %s = llama.silu %g : tensor<2x16xf32>
    %m = llama.mul %s, %u : tensor<2x16xf32>
    return %m, %g : tensor<2x16xf32>, tensor<2x16xf32>
  }
  func.func @up_needed(%x: tensor<2x8xf32>, %w1: tensor<16x8xf32>, %w3: tensor<16x8xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>) {
    %g = llama.linear %x, %w1 : tensor<2x8xf32>, tensor<16x8xf32>
    %u = llama.linear %x, %w3 : tensor<2x8xf32>, tensor<16x8xf32>
    %s = llama.silu %g : tensor<2x16xf32>
    %m = llama.mul %s, %u : tensor<2x16xf32>
    return %m, %u : tensor<2x16xf32>, tensor<2x16xf32>
  }
}
