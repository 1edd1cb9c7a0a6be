// RUN: llamac-opt %s --llamac-autodiff | FileCheck %s

// Only parameters the loss depends on get a gradient: @unused feeds a value the loss never
// reads, and @frozen is state. The integer targets get none. Nothing computed only for
// @unused survives.

// CHECK-LABEL: func.func @loss_grad(
// CHECK-SAME: -> (tensor<f32>, tensor<4x4xf32>, tensor<4x4xf32>)
// CHECK-SAME: llama.grads = [@w, @shared]
// CHECK-NOT: @unused
// CHECK: llama.cross_entropy_grad
// A parameter read twice accumulates its two contributions.
// CHECK: %[[G1:.*]] = llama.linear_weight_grad
// CHECK: %[[G2:.*]] = llama.linear_weight_grad
// CHECK: llama.add
// CHECK: return
llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @w : tensor<4x4xf32> init normal(1.0)
  llama.param @unused : tensor<4x4xf32> init normal(1.0)
  llama.param @shared : tensor<4x4xf32> init normal(1.0)
  llama.param @frozen : tensor<4x4xf32> init zeros state
  func.func @loss(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    %w = llama.get_param @w : tensor<4x4xf32>
    %u = llama.get_param @unused : tensor<4x4xf32>
    %s = llama.get_param @shared : tensor<4x4xf32>
    %f = llama.get_param @frozen : tensor<4x4xf32>
    %y = llama.linear %x, %w : tensor<2x4xf32>, tensor<4x4xf32>
    %dead = llama.linear %x, %u : tensor<2x4xf32>, tensor<4x4xf32>
    %a = llama.linear %y, %s : tensor<2x4xf32>, tensor<4x4xf32>
    %b = llama.linear %a, %s : tensor<2x4xf32>, tensor<4x4xf32>
    %c = llama.linear %b, %f : tensor<2x4xf32>, tensor<4x4xf32>
    %l = llama.cross_entropy %c, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}
