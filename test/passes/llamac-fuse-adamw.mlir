// RUN: llamac-opt %S/llamac-train-step.mlir --llamac-autodiff --llamac-train-step --llamac-fuse-adamw="report=1" | FileCheck %s
// RUN: llamac-opt %s --llamac-fuse-adamw="report=1" | FileCheck %s --check-prefix=NEG

// CHECK: llamac-fuse-adamw: fused 2
// CHECK-LABEL: func.func @train_update
// Every read the update needs comes first, then one update, then the writes.
// CHECK: %[[G:.*]] = llama.get_param @g :
// CHECK: %[[W:.*]] = llama.get_param @w :
// CHECK: %[[R:.*]]:6 = llama.multi_adamw params [%[[G]], %[[W]]] grads [{{.*}}] m [{{.*}}] v [{{.*}}] lr %{{.*}} step %{{.*}} grad_scale %{{.*}} beta1 9.000000e-01 beta2 0.94999999999999996 eps 1.000000e-05 weight_decays [0.000000e+00, 1.000000e-01]
// CHECK-NEXT: llama.set_param @g = %[[R]]#0
// CHECK-NEXT: llama.set_param @adamw.m.g = %[[R]]#2
// CHECK-NEXT: llama.set_param @adamw.v.g = %[[R]]#4
// CHECK: llama.set_param @w = %[[R]]#1
// CHECK-NOT: llama.adamw

// Different learning rates: not one update.
// NEG: llamac-fuse-adamw: fused 0
// NEG-COUNT-2: llama.adamw
llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @two_rates(%p: tensor<4xf32>, %lr1: tensor<f32>, %lr2: tensor<f32>, %s: tensor<i64>, %c: tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>) {
    %a:3 = llama.adamw %p, %p, %p, %p lr %lr1 step %s grad_scale %c beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decay 0.0 : tensor<4xf32>
    %b:3 = llama.adamw %p, %p, %p, %p lr %lr2 step %s grad_scale %c beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decay 0.0 : tensor<4xf32>
    return %a#0, %b#0 : tensor<4xf32>, tensor<4xf32>
  }
}
