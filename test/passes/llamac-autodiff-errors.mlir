// RUN: llamac-opt %s -split-input-file --llamac-autodiff -verify-diagnostics

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @w : tensor<4x4xf32> init normal(1.0)
  func.func @loss(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    %w = llama.get_param @w : tensor<4x4xf32>
    %y = llama.linear %x, %w : tensor<2x4xf32>, tensor<4x4xf32>
    // expected-error @+1 {{'llama.max' op is on a gradient path of @loss but has no VJP rule}}
    %z = llama.max %y, %x : tensor<2x4xf32>
    %l = llama.cross_entropy %z, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}

// -----

// expected-error @+1 {{llamac-autodiff: model @m has no function @loss}}
llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
}

// -----

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @w : tensor<4x4xf32> init normal(1.0)
  // expected-error @+1 {{needs a function whose first result is the scalar loss (tensor<f32>)}}
  func.func @loss(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = llama.get_param @w : tensor<4x4xf32>
    %y = llama.linear %x, %w : tensor<2x4xf32>, tensor<4x4xf32>
    return %y : tensor<2x4xf32>
  }
}

// -----

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @w : tensor<4x4xf32> init normal(1.0)
  func.func @logits(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = llama.get_param @w : tensor<4x4xf32>
    %y = llama.linear %x, %w : tensor<2x4xf32>, tensor<4x4xf32>
    return %y : tensor<2x4xf32>
  }
  func.func @loss(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    // expected-error @+1 {{llamac-autodiff needs a flat function: run llamac-frontend and inline first}}
    %y = func.call @logits(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %l = llama.cross_entropy %y, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}

// -----

llama.model @m config <dim = 4, n_layers = 1, n_heads = 1, n_kv_heads = 1, ffn_dim = 4,
    vocab_size = 4, max_seq_len = 4, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  // expected-error @+1 {{the loss does not depend on any trainable parameter}}
  func.func @loss(%x: tensor<2x4xf32>, %t: tensor<2xi32>) -> tensor<f32> {
    %l = llama.cross_entropy %x, %t : tensor<2x4xf32>, tensor<2xi32>
    return %l : tensor<f32>
  }
}
