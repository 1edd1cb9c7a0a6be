// RUN: split-file %s %t
// RUN: llamac-opt %t/dims.mlir -split-input-file --llama-specialize="batch=2 seq=8" -verify-diagnostics
// RUN: llamac-opt %t/batch.mlir --llama-specialize="batch=0 seq=8" -verify-diagnostics
// RUN: llamac-opt %t/seq.mlir --llama-specialize="batch=2 seq=-1" -verify-diagnostics

// The sizes are pass options, so each kind of error has its own input (split-file).

//--- dims.mlir

// A dynamic dimension that is neither the batch nor the sequence. The error is at the
// function.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{dynamic dimension 2 of 'tensor<?x?x?xf32>' is neither batch (0) nor sequence (1)}}
  func.func @f(%x: tensor<?x?x?xf32>) -> tensor<?x?x?xf32> {
    %y = llama.exp %x : tensor<?x?x?xf32>
    return %y : tensor<?x?x?xf32>
  }
}

// -----

// The same in a layer's function, in a later argument.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    // expected-error @+1 {{dynamic dimension 3 of 'tensor<2x?x4x?xf32>' is neither batch (0) nor sequence (1)}}
    func.func @block(%x: tensor<?x?x64xf32>, %cache: tensor<2x?x4x?xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// A shape rule that held for dynamic sizes fails for the fixed ones: its error is reported
// at the op.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  func.func @f(%x: tensor<?x?x64xf32>) -> tensor<?x4x64xf32> {
    // expected-error @+1 {{slice at offset 6 of size 4 exceeds dim 1 (8)}}
    %y = llama.slice %x dim 1 [6, 4] : tensor<?x?x64xf32>
    return %y : tensor<?x4x64xf32>
  }
}

//--- batch.mlir

// A batch of 0. The error is at the module.
// expected-error @+1 {{llama-specialize needs batch > 0 and seq >= 0, got batch 0 and seq 8}}
module {
  llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
      ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
      rope_theta = 1.0e+04> {
  }
}

//--- seq.mlir

// A negative sequence length.
// expected-error @+1 {{llama-specialize needs batch > 0 and seq >= 0, got batch 2 and seq -1}}
module {
  llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
      ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
      rope_theta = 1.0e+04> {
  }
}
