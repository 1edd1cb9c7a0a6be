// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-add-rms-norm="report=1" --llamac-autodiff | FileCheck %s
// RUN: llamac-opt %s --llamac-fuse-add-rms-norm="report=1" | FileCheck %s --check-prefix=NEG
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-fuse-add-rms-norm' --batch 1 --seq 4 --tol 1e-12 | FileCheck %s --check-prefix=SAME

// Two per function: the FFN norm after the attention residual, and the final norm after
// the last layer's residual (the first norm follows the embedding, no add).
// CHECK: llamac-fuse-add-rms-norm: fused 4
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[H:.*]], %[[HN:.*]] = llama.add_rms_norm %[[EMB:.*]], %{{.*}}, %{{.*}} eps 1.000000e-05 : tensor<1x4x8xf32>, tensor<8xf32>
// The residual stream (the sum) keeps its other user.
// CHECK: %[[OUT:.*]], %[[FINAL:.*]] = llama.add_rms_norm %[[H]], %{{.*}}, %{{.*}} eps
// Backward: one op gives the gradient of both addends and the gain.
// CHECK: %[[DX:.*]], %[[DW:.*]] = llama.add_rms_norm_grad %[[OUT]], %{{.*}}, %{{.*}}, %[[ZERO:.*]] eps 1.000000e-05 {llama.backward}
// CHECK: llama.add_rms_norm_grad %[[H]], %{{.*}}, %{{.*}}, %{{.*}} eps 1.000000e-05 {llama.backward}
// CHECK-NOT: llama.rms_norm_grad %[[H]]

// NEG: llamac-fuse-add-rms-norm: fused 1
// NEG-LABEL: func.func @no_add
// NEG: llama.rms_norm
// NEG-LABEL: func.func @sum_also_used
// NEG: %[[S:.*]], %[[N:.*]] = llama.add_rms_norm
// NEG: return %[[N]], %[[S]]

// SAME: @forward result0 {{.*}} ok
// SAME: @loss result0 {{.*}} ok

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @no_add(%x: tensor<2x8xf32>, %w: tensor<8xf32>) -> tensor<2x8xf32> {
    %n = llama.rms_norm %x, %w eps 1.0e-05 : tensor<2x8xf32>, tensor<8xf32>
    return %n : tensor<2x8xf32>
  }
  func.func @sum_also_used(%x: tensor<2x8xf32>, %r: tensor<2x8xf32>, %w: tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
    %s = llama.add %x, %r : tensor<2x8xf32>
    %n = llama.rms_norm %s, %w eps 1.0e-05 : tensor<2x8xf32>, tensor<8xf32>
    return %n, %s : tensor<2x8xf32>, tensor<2x8xf32>
  }
}
