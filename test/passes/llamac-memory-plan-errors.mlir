// RUN: llamac-opt %s --llamac-memory-plan -split-input-file -verify-diagnostics

// Before llama-specialize the batch and sequence are dynamic: the sizes are unknown.
llama.model @m config <dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  // expected-error @+1 {{llamac-memory-plan needs static shapes; run llamac-frontend first (argument 0 is 'tensor<?x16xf32>')}}
  func.func @f(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
    %e = llama.exp %x : tensor<?x16xf32>
    return %e : tensor<?x16xf32>
  }
}

// -----

// A dynamic result with static operands: the error names the op that defines it.
llama.model @m config <dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func private @h(tensor<4xf32>) -> tensor<?xf32>
  func.func @f(%x: tensor<4xf32>) -> tensor<?xf32> {
    // expected-error @+1 {{llamac-memory-plan needs static shapes; run llamac-frontend first (result 0 is 'tensor<?xf32>')}}
    %y = func.call @h(%x) : (tensor<4xf32>) -> tensor<?xf32>
    return %y : tensor<?xf32>
  }
}
