// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-qkv-rope="report=1" --llamac-autodiff | FileCheck %s
// RUN: llamac-opt %s --llamac-fuse-qkv-rope="report=1" | FileCheck %s --check-prefix=NEG
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-fuse-qkv-rope' --batch 1 --seq 4 --tol 1e-12 | FileCheck %s --check-prefix=SAME

// CHECK: llamac-fuse-qkv-rope: fused 2
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[W:.*]] = llama.concat %{{.*}}, %{{.*}}, %{{.*}} dim 0 : tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
// CHECK-NEXT: %[[QKV:.*]] = llama.linear %[[XN:.*]], %[[W]] : tensor<1x4x8xf32>, tensor<16x8xf32>
// CHECK-NEXT: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = llama.qkv_rope %[[QKV]] heads 2 kv_heads 1 theta 1.000000e+04 : tensor<1x4x16xf32> -> tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>
// CHECK-NEXT: llama.attention %[[Q]], %[[K]], %[[V]] causal
// Backward: the inverse rotation and repacking in one op, then one matmul.
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = llama.attention_grad
// CHECK-NEXT: %[[DQKV:.*]] = llama.qkv_rope_grad %[[DQ]], %[[DK]], %[[DV]] theta 1.000000e+04 {llama.backward} : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32> -> tensor<1x4x16xf32>
// CHECK-NEXT: llama.matmul %[[DQKV]], %[[W]] {llama.backward}
// CHECK-NEXT: llama.linear_weight_grad %[[DQKV]], %[[XN]] {llama.backward}
// CHECK-NOT: llama.rope

// NEG: llamac-fuse-qkv-rope: fused 0
// NEG-LABEL: func.func @two_inputs
// NEG: llama.rope
// NEG-LABEL: func.func @thetas
// NEG: llama.rope
// NEG-LABEL: func.func @q_needed
// NEG: llama.rope

// SAME: @forward result0 {{.*}} ok
// SAME: @loss result0 {{.*}} ok

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @two_inputs(%x: tensor<1x4x8xf32>, %y: tensor<1x4x8xf32>, %wq: tensor<8x8xf32>, %wk: tensor<4x8xf32>, %wv: tensor<4x8xf32>) -> tensor<1x4x2x4xf32> {
    %q = llama.linear %x, %wq : tensor<1x4x8xf32>, tensor<8x8xf32>
    %k = llama.linear %y, %wk : tensor<1x4x8xf32>, tensor<4x8xf32>
    %v = llama.linear %x, %wv : tensor<1x4x8xf32>, tensor<4x8xf32>
    %q4 = llama.split_dim %q dim 2 into [2, 4] : tensor<1x4x8xf32>
    %k4 = llama.split_dim %k dim 2 into [1, 4] : tensor<1x4x4xf32>
    %v4 = llama.split_dim %v dim 2 into [1, 4] : tensor<1x4x4xf32>
    %qr = llama.rope %q4 theta 1.0e+04 : tensor<1x4x2x4xf32>
    %kr = llama.rope %k4 theta 1.0e+04 : tensor<1x4x1x4xf32>
    %o = llama.attention %qr, %kr, %v4 causal : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>
    return %o : tensor<1x4x2x4xf32>
  }
  func.func @thetas(%x: tensor<1x4x8xf32>, %wq: tensor<8x8xf32>, %wk: tensor<4x8xf32>, %wv: tensor<4x8xf32>) -> tensor<1x4x2x4xf32> {
    %q = llama.linear %x, %wq : tensor<1x4x8xf32>, tensor<8x8xf32>
    %k = llama.linear %x, %wk : tensor<1x4x8xf32>, tensor<4x8xf32>
    %v = llama.linear %x, %wv : tensor<1x4x8xf32>, tensor<4x8xf32>
    %q4 = llama.split_dim %q dim 2 into [2, 4] : tensor<1x4x8xf32>
    %k4 = llama.split_dim %k dim 2 into [1, 4] : tensor<1x4x4xf32>
    %v4 = llama.split_dim %v dim 2 into [1, 4] : tensor<1x4x4xf32>
    %qr = llama.rope %q4 theta 1.0e+04 : tensor<1x4x2x4xf32>
    %kr = llama.rope %k4 theta 5.0e+05 : tensor<1x4x1x4xf32>
    %o = llama.attention %qr, %kr, %v4 causal : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>
    return %o : tensor<1x4x2x4xf32>
  }
  func.func @q_needed(%x: tensor<1x4x8xf32>, %wq: tensor<8x8xf32>, %wk: tensor<4x8xf32>, %wv: tensor<4x8xf32>) -> (tensor<1x4x2x4xf32>, tensor<1x4x8xf32>) {
    %q = llama.linear %x, %wq : tensor<1x4x8xf32>, tensor<8x8xf32>
    %k = llama.linear %x, %wk : tensor<1x4x8xf32>, tensor<4x8xf32>
    %v = llama.linear %x, %wv : tensor<1x4x8xf32>, tensor<4x8xf32>
    %q4 = llama.split_dim %q dim 2 into [2, 4] : tensor<1x4x8xf32>
    %k4 = llama.split_dim %k dim 2 into [1, 4] : tensor<1x4x4xf32>
    %v4 = llama.split_dim %v dim 2 into [1, 4] : tensor<1x4x4xf32>
    %qr = llama.rope %q4 theta 1.0e+04 : tensor<1x4x2x4xf32>
    %kr = llama.rope %k4 theta 1.0e+04 : tensor<1x4x1x4xf32>
    %o = llama.attention %qr, %kr, %v4 causal : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>
    return %o, %q : tensor<1x4x2x4xf32>, tensor<1x4x8xf32>
  }
}
