// RUN: llamac-opt %s --llamac-train-step -split-input-file -verify-diagnostics

// expected-error @+1 {{llamac-train-step needs @loss_grad (run llamac-autodiff first)}}
llama.model @n config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
}

// -----

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  // expected-error @+1 {{has no valid llama.grads attribute}}
  func.func @loss_grad(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    %l = llama.cross_entropy %x, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}
