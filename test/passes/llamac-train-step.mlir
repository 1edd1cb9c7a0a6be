// RUN: llamac-opt %s --llamac-autodiff --llamac-train-step="warmup=10 floor=0.2 max-grad-norm=0.5" | FileCheck %s

// The training step around the gradient of a two-parameter model: a norm gain (rank 1,
// not decayed) and a projection (decayed).

// State, declared after the parameters: accumulators and both AdamW moments.
// CHECK: llama.param @g : tensor<4xf32> init ones
// CHECK-NEXT: llama.param @w : tensor<4x4xf32> init normal
// CHECK-NEXT: llama.param @grad.g : tensor<4xf32> init zeros state
// CHECK-NEXT: llama.param @grad.w : tensor<4x4xf32> init zeros state
// CHECK-NEXT: llama.param @adamw.m.g : tensor<4xf32> init zeros state
// CHECK-NEXT: llama.param @adamw.m.w : tensor<4x4xf32> init zeros state
// CHECK-NEXT: llama.param @adamw.v.g : tensor<4xf32> init zeros state
// CHECK-NEXT: llama.param @adamw.v.w : tensor<4x4xf32> init zeros state

// One micro-batch: the loss, and its gradients added to the accumulators.
// CHECK-LABEL: func.func @train_grad(%{{.*}}: tensor<2x4xf32>, %{{.*}}: tensor<2xi32>) -> tensor<f32>
// CHECK: %[[OLDG:.*]] = llama.get_param @grad.g
// CHECK-NEXT: %[[SUMG:.*]] = llama.add %[[OLDG]], %{{.*}} : tensor<4xf32>
// CHECK-NEXT: llama.set_param @grad.g = %[[SUMG]]
// CHECK-NEXT: %[[OLDW:.*]] = llama.get_param @grad.w
// CHECK-NEXT: %[[SUMW:.*]] = llama.add %[[OLDW]], %{{.*}} : tensor<4x4xf32>
// CHECK-NEXT: llama.set_param @grad.w = %[[SUMW]]
// CHECK-NEXT: return

// One optimizer step: clip, schedule, AdamW per parameter, clear the accumulators.
// CHECK: func.func @train_update(%[[STEP:.*]]: tensor<i64>, %[[LR:.*]]: tensor<f32>, %[[TOTAL:.*]]: tensor<i64>, %[[COUNT:.*]]: tensor<f32>) -> (tensor<f32>, tensor<f32>)
// CHECK: %[[COEF:.*]], %[[NORM:.*]] = llama.grad_clip %{{.*}}, %{{.*}} count %[[COUNT]] max_norm 5.000000e-01
// CHECK-NEXT: %[[LRT:.*]] = llama.lr_schedule %[[STEP]], %[[LR]], %[[TOTAL]] warmup 10 floor 2.000000e-01
// CHECK: llama.adamw {{.*}} lr %[[LRT]] step %[[STEP]] grad_scale %[[COEF]] beta1 9.000000e-01 beta2 0.94999999999999996 eps 1.000000e-05 weight_decay 0.000000e+00 : tensor<4xf32>
// CHECK: llama.set_param @g =
// CHECK-NEXT: llama.set_param @adamw.m.g =
// CHECK-NEXT: llama.set_param @adamw.v.g =
// CHECK-NEXT: %[[Z:.*]] = arith.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK-NEXT: llama.set_param @grad.g = %[[Z]]
// CHECK: llama.adamw {{.*}} weight_decay 1.000000e-01 : tensor<4x4xf32>
// CHECK: llama.set_param @w =
// CHECK: return %[[LRT]], %[[NORM]] : tensor<f32>, tensor<f32>

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @g : tensor<4xf32> init ones
  llama.param @w : tensor<4x4xf32> init normal(1.0)
  func.func @loss(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    %g = llama.get_param @g : tensor<4xf32>
    %w = llama.get_param @w : tensor<4x4xf32>
    %n = llama.rms_norm %x, %g eps 1.0e-05 : tensor<2x4xf32>, tensor<4xf32>
    %y = llama.linear %n, %w : tensor<2x4xf32>, tensor<4x4xf32>
    %l = llama.cross_entropy %y, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}

