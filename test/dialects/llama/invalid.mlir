// RUN: llamac-opt %s -split-input-file -verify-diagnostics

// One case per diagnostic of the llama dialect: the #llama.config verifier
// (LlamaDialect.cpp), the op verifiers and the shape rules (LlamaOps.cpp), plus a few
// ODS constraints and parse errors. Shape rules run while parsing, so their errors carry
// no 'op' prefix. Compute ops are checked outside a model: their rules do not need one.

// Config: non-positive dim.
// expected-error @+1 {{config dim must be positive, got 0}}
llama.model @m config <dim = 0, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive n_layers.
// expected-error @+1 {{config n_layers must be positive, got 0}}
llama.model @m config <dim = 64, n_layers = 0, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive n_heads.
// expected-error @+1 {{config n_heads must be positive, got 0}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 0, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive n_kv_heads.
// expected-error @+1 {{config n_kv_heads must be positive, got -2}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = -2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive ffn_dim.
// expected-error @+1 {{config ffn_dim must be positive, got 0}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 0, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive vocab_size.
// expected-error @+1 {{config vocab_size must be positive, got -1}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = -1, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: non-positive max_seq_len.
// expected-error @+1 {{config max_seq_len must be positive, got 0}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 0, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: the width is not divisible by the heads.
// expected-error @+1 {{config dim (64) is not divisible by n_heads (6)}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 6, n_kv_heads = 6,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: odd head dim.
// expected-error @+1 {{config head dim (dim 60 / n_heads 4 = 15) must be even for rotary embeddings}}
llama.model @m config <dim = 60, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: query heads not divisible by KV heads.
// expected-error @+1 {{config n_heads (32) is not divisible by n_kv_heads (6)}}
llama.model @m config <dim = 4096, n_layers = 2, n_heads = 32, n_kv_heads = 6,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Config: norm_eps zero (the config may span several lines: the error is at its '<').
// expected-error @+1 {{config norm_eps must be positive}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 0.0,
    rope_theta = 1.0e+04> {
}

// -----

// Config: negative rope_theta.
// expected-error @+1 {{config rope_theta must be positive}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = -1.0e+04> {
}

// -----

// Config: negative sliding window.
// expected-error @+1 {{config sliding_window must be 0 (none) or positive, got -4}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04, sliding_window = -4> {
}

// -----

// Config: unknown key (parse error, at the key).
// expected-error @+3 {{duplicate or unknown struct parameter name: window}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04, window = 4> {
}

// -----

// Config: missing key (parse error, at the closing '>').
// expected-error @+3 {{struct is missing required parameter: max_seq_len}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
}

// -----

// Model: n_layers does not match the layer's repeats.
// expected-error @+1 {{'llama.model' op config n_layers (2) does not match the layers declared (3 repetitions)}}
llama.model @m config <dim = 64, n_layers = 2, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 3 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Model: n_layers does not match the sum of several layers' repeats.
// expected-error @+1 {{config n_layers (4) does not match the layers declared (5 repetitions)}}
llama.model @m config <dim = 64, n_layers = 4, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 3 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  llama.layer @more repeat 2 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Param: dynamic shape.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.param' op parameter @w must have a static shape, dimension 1 is dynamic}}
  llama.param @w : tensor<64x?xf32> init zeros
}

// -----

// Param: normal without std.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{normal initialiser of @w needs a positive finite std, e.g. 'init normal(0.02)'}}
  llama.param @w : tensor<64xf32> init normal
}

// -----

// Param: normal with a non-positive std.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{normal initialiser of @w needs a positive finite std}}
  llama.param @w : tensor<64xf32> init normal(-2.0e-02)
}

// -----

// Param: normal with an infinite std.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{normal initialiser of @w needs a positive finite std}}
  llama.param @w : tensor<64xf32> init normal(0x7FF0000000000000)
}

// -----

// Param: zeros with std.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.param' op zeros initialiser of @b takes no std}}
  llama.param @b : tensor<64xf32> init zeros(2.0e-02)
}

// -----

// Param: ones with std.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.param' op ones initialiser of @g takes no std}}
  llama.param @g : tensor<64xf32> init ones(1.0)
}

// -----

// Param: unknown initialiser (parse error).
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'init' [normal, zeros, ones]}}
  llama.param @w : tensor<64xf32> init uniform(2.0e-02)
}

// -----

// Param: integer element type (ODS constraint).
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.param' op attribute 'type' failed to satisfy constraint}}
  llama.param @w : tensor<64xi32> init zeros
}

// -----

// Param: outside a model or layer.
// expected-error @+1 {{'llama.param' op must be declared in a llama.model or a llama.layer}}
llama.param @w : tensor<64xf32> init zeros

// -----

// Layer: two functions.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.layer' op layer @layers declares more than one function (@block and @other)}}
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
    func.func @other(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Layer: no function.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.layer' op layer @layers declares no function}}
  llama.layer @layers repeat 1 {
    llama.param @w : tensor<64xf32> init ones
  }
}

// -----

// Layer: a foreign op in the body.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.layer' op layer body may hold only llama.param and one func.func, found 'arith.constant'}}
  llama.layer @layers repeat 1 {
    %c = arith.constant 0 : index
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Layer: a nested layer is a foreign op too.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{layer body may hold only llama.param and one func.func, found 'llama.layer'}}
  llama.layer @layers repeat 1 {
    llama.layer @inner repeat 1 {
      func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
        return %x : tensor<?x?x64xf32>
      }
    }
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Layer: the function changes the stream's type.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.layer' op layer function @block must map its first argument to one result of the same type, got '(tensor<?x?x64xf32>) -> tensor<?x?x32xf32>'}}
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x32xf32> {
      %y = llama.slice %x dim 2 [0, 32] : tensor<?x?x64xf32>
      return %y : tensor<?x?x32xf32>
    }
  }
}

// -----

// Layer: the function has two results.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{layer function @block must map its first argument to one result of the same type, got '(tensor<?x?x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>)'}}
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
      return %x, %x : tensor<?x?x64xf32>, tensor<?x?x64xf32>
    }
  }
}

// -----

// Layer: the function has no argument.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{layer function @block must map its first argument to one result of the same type, got '() -> tensor<64xf32>'}}
  llama.layer @layers repeat 1 {
    llama.param @w : tensor<64xf32> init ones
    func.func @block() -> tensor<64xf32> {
      %w = llama.get_param @w : tensor<64xf32>
      return %w : tensor<64xf32>
    }
  }
}

// -----

// Layer: repeat 0 (ODS constraint). The model's verifier runs first and sums the repeats,
// so the repeats must add up to n_layers for the layer's own error to show.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  // expected-error @+1 {{'llama.layer' op attribute 'repeat' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  llama.layer @empty repeat 0 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

// Layer: outside a model (ODS HasParent).
// expected-error @+1 {{'llama.layer' op expects parent op 'llama.model'}}
llama.layer @layers repeat 1 {
  func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
    return %x : tensor<?x?x64xf32>
  }
}

// -----

// get_param: unknown name.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @w : tensor<64xf32> init ones
  func.func @f() -> tensor<64xf32> {
    // expected-error @+1 {{'llama.get_param' op @v does not name a parameter of llama.model @m}}
    %w = llama.get_param @v : tensor<64xf32>
    return %w : tensor<64xf32>
  }
}

// -----

// get_param: a symbol that is not a parameter.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  func.func @f() -> tensor<64xf32> {
    // expected-error @+1 {{@f does not name a parameter of llama.model @m}}
    %w = llama.get_param @f : tensor<64xf32>
    return %w : tensor<64xf32>
  }
}

// -----

// get_param: inside a layer, only the layer's parameters are visible.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @norm : tensor<64xf32> init ones
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      // expected-error @+1 {{@norm does not name a parameter of llama.layer @layers}}
      %g = llama.get_param @norm : tensor<64xf32>
      %y = llama.rms_norm %x, %g eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
      return %y : tensor<?x?x64xf32>
    }
  }
}

// -----

// get_param: wrong type.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @w : tensor<64x32xf32> init normal(2.0e-02)
  func.func @f() -> tensor<32x64xf32> {
    // expected-error @+1 {{'llama.get_param' op result type 'tensor<32x64xf32>' does not match parameter @w of type 'tensor<64x32xf32>'}}
    %w = llama.get_param @w : tensor<32x64xf32>
    return %w : tensor<32x64xf32>
  }
}

// -----

// get_param: wrong element type.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @w : tensor<64xf32> init ones
  func.func @f() -> tensor<64xbf16> {
    // expected-error @+1 {{result type 'tensor<64xbf16>' does not match parameter @w of type 'tensor<64xf32>'}}
    %w = llama.get_param @w : tensor<64xbf16>
    return %w : tensor<64xbf16>
  }
}

// -----

// get_param: outside a model.
func.func @f() -> tensor<64xf32> {
  // expected-error @+1 {{'llama.get_param' op must be nested in a llama.model or a llama.layer}}
  %w = llama.get_param @w : tensor<64xf32>
  return %w : tensor<64xf32>
}

// -----

// stack: unknown layer.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
    // expected-error @+1 {{'llama.stack' op @blocks does not name a layer of model @m}}
    %0 = llama.stack @blocks(%h, %pos) : (tensor<?x?x64xf32>, index) -> tensor<?x?x64xf32>
    return %0 : tensor<?x?x64xf32>
  }
}

// -----

// stack: a symbol that is not a layer.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
    // expected-error @+1 {{@f does not name a layer of model @m}}
    %0 = llama.stack @f(%h, %pos) : (tensor<?x?x64xf32>, index) -> tensor<?x?x64xf32>
    return %0 : tensor<?x?x64xf32>
  }
}

// -----

// stack: wrong number of inputs.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
    // expected-error @+1 {{'llama.stack' op layer @layers takes 2 inputs, got 1}}
    %0 = llama.stack @layers(%h) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    return %0 : tensor<?x?x64xf32>
  }
}

// -----

// stack: wrong stream type.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<2x8x64xf32>, %pos: index) -> tensor<2x8x64xf32> {
    // expected-error @+1 {{'llama.stack' op input 0 has type 'tensor<2x8x64xf32>' but layer @layers expects 'tensor<?x?x64xf32>'}}
    %0 = llama.stack @layers(%h, %pos) : (tensor<2x8x64xf32>, index) -> tensor<2x8x64xf32>
    return %0 : tensor<2x8x64xf32>
  }
}

// -----

// stack: wrong type of an extra input.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<?x?x64xf32>, %pos: i64) -> tensor<?x?x64xf32> {
    // expected-error @+1 {{input 1 has type 'i64' but layer @layers expects 'index'}}
    %0 = llama.stack @layers(%h, %pos) : (tensor<?x?x64xf32>, i64) -> tensor<?x?x64xf32>
    return %0 : tensor<?x?x64xf32>
  }
}

// -----

// stack: wrong result type.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      return %x : tensor<?x?x64xf32>
    }
  }
  func.func @f(%h: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xbf16> {
    // expected-error @+1 {{'llama.stack' op result type 'tensor<?x?x64xbf16>' does not match layer @layers result}}
    %0 = llama.stack @layers(%h, %pos) : (tensor<?x?x64xf32>, index) -> tensor<?x?x64xbf16>
    return %0 : tensor<?x?x64xbf16>
  }
}

// -----

// stack: outside a model.
func.func @f(%h: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  // expected-error @+1 {{'llama.stack' op must be nested in a llama.model}}
  %0 = llama.stack @layers(%h) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return %0 : tensor<?x?x64xf32>
}

// -----

// llama.embedding shape rules and constraints.
func.func @f(%t: tensor<256xf32>, %i: tensor<2x8xi32>) {
  // expected-error @+1 {{embedding table must have rank 2 ([vocab, dim]), got rank 1}}
  %0 = llama.embedding %t[%i] : tensor<256xf32>, tensor<2x8xi32>
  return
}

// -----

func.func @f(%t: tensor<256x64xf32>, %i: tensor<2x8xf32>) {
  // expected-error @+1 {{'llama.embedding' op operand #1 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values, but got 'tensor<2x8xf32>'}}
  %0 = llama.embedding %t[%i] : tensor<256x64xf32>, tensor<2x8xf32>
  return
}

// -----

// llama.linear shape rules and constraints.
func.func @f(%x: tensor<f32>, %w: tensor<4x1xf32>) {
  // expected-error @+1 {{linear input must have rank >= 1, got a scalar}}
  %0 = llama.linear %x, %w : tensor<f32>, tensor<4x1xf32>
  return
}

// -----

func.func @f(%x: tensor<2x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{linear weight must have rank 2 ([out_features, in_features]), got rank 1}}
  %0 = llama.linear %x, %w : tensor<2x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x64xf32>, %w: tensor<128x64xbf16>) {
  // expected-error @+1 {{input element type 'f32' differs from weight element type 'bf16'}}
  %0 = llama.linear %x, %w : tensor<2x64xf32>, tensor<128x64xbf16>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<64x128xf32>) {
  // expected-error @+1 {{input features (last dim) (64) does not match weight in_features (dim 1) (128)}}
  %0 = llama.linear %x, %w : tensor<?x?x64xf32>, tensor<64x128xf32>
  return
}

// -----

// llama.matmul shape rules and constraints.
func.func @f(%a: tensor<8xf32>, %b: tensor<8x4xf32>) {
  // expected-error @+1 {{matmul operands must have rank >= 2, got 1 and 2}}
  %0 = llama.matmul %a, %b : tensor<8xf32>, tensor<8x4xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4x8x16xf32>, %b: tensor<4x16x8xf32>) {
  // expected-error @+1 {{matmul rhs must be a matrix or have the lhs rank (4), got rank 3}}
  %0 = llama.matmul %a, %b : tensor<2x4x8x16xf32>, tensor<4x16x8xf32>
  return
}

// -----

func.func @f(%a: tensor<8x16xf32>, %b: tensor<2x16x8xf32>) {
  // expected-error @+1 {{matmul rhs must be a matrix or have the lhs rank (2), got rank 3}}
  %0 = llama.matmul %a, %b : tensor<8x16xf32>, tensor<2x16x8xf32>
  return
}

// -----

func.func @f(%a: tensor<8x16xf16>, %b: tensor<16x8xf32>) {
  // expected-error @+1 {{lhs element type 'f16' differs from rhs element type 'f32'}}
  %0 = llama.matmul %a, %b : tensor<8x16xf16>, tensor<16x8xf32>
  return
}

// -----

func.func @f(%a: tensor<2x8x16xf32>, %b: tensor<2x8x16xf32>) {
  // expected-error @+1 {{lhs contraction dim (16) does not match rhs contraction dim (8)}}
  %0 = llama.matmul %a, %b : tensor<2x8x16xf32>, tensor<2x8x16xf32>
  return
}

// -----

func.func @f(%a: tensor<2x8x16xf32>, %b: tensor<2x16x8xf32>) {
  // expected-error @+1 {{lhs contraction dim (16) does not match rhs contraction dim (8)}}
  %0 = llama.matmul %a, %b transpose_rhs : tensor<2x8x16xf32>, tensor<2x16x8xf32>
  return
}

// -----

// Shared rhs, transposed: the contraction is its dim 1.
func.func @f(%a: tensor<?x8x16xf32>, %b: tensor<32x8xf32>) {
  // expected-error @+1 {{lhs contraction dim (16) does not match rhs contraction dim (8)}}
  %0 = llama.matmul %a, %b transpose_rhs : tensor<?x8x16xf32>, tensor<32x8xf32>
  return
}

// -----

func.func @f(%a: tensor<2x4x8x16xf32>, %b: tensor<2x2x16x8xf32>) {
  // expected-error @+1 {{matmul batch dim 1: lhs (4) does not match rhs (2)}}
  %0 = llama.matmul %a, %b : tensor<2x4x8x16xf32>, tensor<2x2x16x8xf32>
  return
}

// -----

// llama.rms_norm shape rules and constraints.
func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{rms_norm input must have rank >= 1, got a scalar}}
  %0 = llama.rms_norm %x, %w eps 1.0e-05 : tensor<f32>, tensor<1xf32>
  return
}

// -----

func.func @f(%x: tensor<2x64xf32>, %w: tensor<1x64xf32>) {
  // expected-error @+1 {{rms_norm weight must have rank 1 ([dim]), got rank 2}}
  %0 = llama.rms_norm %x, %w eps 1.0e-05 : tensor<2x64xf32>, tensor<1x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x64xbf16>, %w: tensor<64xf32>) {
  // expected-error @+1 {{input element type 'bf16' differs from weight element type 'f32'}}
  %0 = llama.rms_norm %x, %w eps 1.0e-05 : tensor<2x64xbf16>, tensor<64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{input dim (last) (64) does not match weight dim (32)}}
  %0 = llama.rms_norm %x, %w eps 1.0e-05 : tensor<?x?x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{rms_norm eps must be positive}}
  %0 = llama.rms_norm %x, %w eps 0.0 : tensor<2x64xf32>, tensor<64xf32>
  return
}

// -----

// rms_norm: unknown keyword (parse error).
func.func @f(%x: tensor<2x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{custom op 'llama.rms_norm' expected 'eps'}}
  %0 = llama.rms_norm %x, %w epsilon 1.0e-05 : tensor<2x64xf32>, tensor<64xf32>
  return
}

// -----

// llama.rope shape rules and constraints.
func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{rope input must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %0 = llama.rope %x theta 1.0e+04 : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x4x15xf32>) {
  // expected-error @+1 {{rope head_dim (dim 3) must be even, got 15}}
  %0 = llama.rope %x theta 1.0e+04 : tensor<?x?x4x15xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{rope theta must be positive}}
  %0 = llama.rope %x theta -1.0e+04 : tensor<?x?x4x16xf32>
  return
}

// -----

// rope: the offset is an index.
// expected-note @+1 {{prior use here}}
func.func @f(%x: tensor<?x?x4x16xf32>, %pos: i64) {
  // expected-error @+1 {{use of value '%pos' expects different type than prior uses: 'index' vs 'i64'}}
  %0 = llama.rope %x theta 1.0e+04 offset %pos : tensor<?x?x4x16xf32>
  return
}

// -----

// llama.attention shape rules and constraints.
func.func @f(%q: tensor<2x8x64xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{query must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x64xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x32xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{key must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x32xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x8x2xf32>) {
  // expected-error @+1 {{value must have rank 4 ([batch, seq, heads, head_dim]), got rank 5}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x8x2xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xbf16>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{query element type 'f32' differs from key element type 'bf16'}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xbf16>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf16>) {
  // expected-error @+1 {{query element type 'f32' differs from value element type 'f16'}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf16>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<1x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{query batch (dim 0) (2) does not match key batch (dim 0) (1)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<1x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x32xf32>, %v: tensor<2x8x2x32xf32>) {
  // expected-error @+1 {{query head_dim (dim 3) (16) does not match key head_dim (dim 3) (32)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x32xf32>, tensor<2x8x2x32xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<3x8x2x16xf32>) {
  // expected-error @+1 {{key batch (dim 0) (2) does not match value batch (dim 0) (3)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<3x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x12x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{key seq (dim 1) (12) does not match value seq (dim 1) (8)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x12x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{key heads (dim 2) (2) does not match value heads (dim 2) (4)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x8xf32>) {
  // expected-error @+1 {{query head_dim (dim 3) (16) does not match value head_dim (dim 3) (8)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x8xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x32x128xf32>, %k: tensor<2x8x6x128xf32>, %v: tensor<2x8x6x128xf32>) {
  // expected-error @+1 {{query heads (32) is not divisible by key/value heads (6)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x32x128xf32>, tensor<2x8x6x128xf32>, tensor<2x8x6x128xf32>
  return
}

// -----

// Zero KV heads.
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x0x16xf32>, %v: tensor<2x8x0x16xf32>) {
  // expected-error @+1 {{query heads (4) is not divisible by key/value heads (0)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x0x16xf32>, tensor<2x8x0x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention scale must be positive}}
  %0 = llama.attention %q, %k, %v causal scale 0.0 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

// window 0 (ODS constraint).
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{'llama.attention' op attribute 'window' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0 = llama.attention %q, %k, %v causal window 0 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

// llama.softmax shape rules and constraints.
func.func @f(%x: tensor<2x8xi32>) {
  // expected-error @+1 {{'llama.softmax' op operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<2x8xi32>'}}
  %0 = llama.softmax %x : tensor<2x8xi32>
  return
}

// -----

// llama.cross_entropy shape rules and constraints.
func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<16xi32>) {
  // expected-error @+1 {{cross_entropy targets must have rank 2 (the logits without the vocab dim), got rank 1}}
  %0 = llama.cross_entropy %l, %t : tensor<2x8x256xf32>, tensor<16xi32>
  return
}

// -----

// Scalar logits.
func.func @f(%l: tensor<f32>, %t: tensor<i32>) {
  // expected-error @+1 {{cross_entropy logits must have rank >= 1 (vocab last), got a scalar}}
  %0 = llama.cross_entropy %l, %t : tensor<f32>, tensor<i32>
  return
}

// -----

func.func @f(%l: tensor<?x8x256xf32>, %t: tensor<2x4xi32>) {
  // expected-error @+1 {{cross_entropy dim 1: logits (8) does not match targets (4)}}
  %0 = llama.cross_entropy %l, %t ignore_index -100 : tensor<?x8x256xf32>, tensor<2x4xi32>
  return
}

// -----

// llama.cast shape rules and constraints.
// A static size against a dynamic one: only the op's own verifier sees the change.
func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{'llama.cast' op cast changes the shape from 'tensor<?x64xf32>' to 'tensor<4x64xbf16>'}}
  %0 = llama.cast %x : tensor<?x64xf32> to tensor<4x64xbf16>
  return
}

// -----

// Static sizes that differ: the Elementwise trait reports it before the op's verifier.
func.func @f(%x: tensor<4x64xf32>) {
  // expected-error @+1 {{'llama.cast' op all non-scalar operands/results must have the same shape and base type}}
  %0 = llama.cast %x : tensor<4x64xf32> to tensor<64x4xbf16>
  return
}

// -----

func.func @f(%x: tensor<4x64xf32>) {
  // expected-error @+1 {{'llama.cast' op result #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<4x64xi32>'}}
  %0 = llama.cast %x : tensor<4x64xf32> to tensor<4x64xi32>
  return
}

// -----

// llama.split_dim shape rules and constraints.
func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{dim 3 is out of range for rank 3}}
  %0 = llama.split_dim %x dim 3 into [4, 16] : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{dim -1 is out of range for rank 3}}
  %0 = llama.split_dim %x dim -1 into [4, 16] : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{split_dim needs at least two sizes, got 1}}
  %0 = llama.split_dim %x dim 2 into [64] : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{split_dim sizes must be positive, got 0}}
  %0 = llama.split_dim %x dim 1 into [4, 0] : tensor<?x?x64xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{split_dim: dim 2 (64) does not equal the product of the sizes (60)}}
  %0 = llama.split_dim %x dim 2 into [6, 10] : tensor<?x?x64xf32>
  return
}

// -----

// llama.merge_dims shape rules and constraints.
// merge_dims merges `dim` with `dim + 1`.
func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{merge_dims needs dims 3 and 4, out of range for rank 4}}
  %0 = llama.merge_dims %x dim 3 : tensor<?x?x4x16xf32>
  return
}

// -----

func.func @f(%x: tensor<64xf32>) {
  // expected-error @+1 {{merge_dims needs dims 0 and 1, out of range for rank 1}}
  %0 = llama.merge_dims %x dim 0 : tensor<64xf32>
  return
}

// -----

// llama.transpose shape rules and constraints.
func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{transpose permutation has 3 entries but the input has rank 4}}
  %0 = llama.transpose %x [0, 2, 1] : tensor<?x?x4x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{transpose permutation is not a permutation of 0..3}}
  %0 = llama.transpose %x [0, 2, 2, 3] : tensor<?x?x4x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{transpose permutation is not a permutation of 0..3}}
  %0 = llama.transpose %x [0, 1, 2, 4] : tensor<?x?x4x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{transpose permutation is not a permutation of 0..3}}
  %0 = llama.transpose %x [0, -1, 2, 3] : tensor<?x?x4x16xf32>
  return
}

// -----

// concat: no input (generic form; the custom form cannot spell it).
func.func @f() {
  // expected-error @+2 {{concat needs at least one input}}
  // expected-error @+1 {{'llama.concat' op failed to infer returned types}}
  %0 = "llama.concat"() <{dim = 0 : i64}> : () -> tensor<4xf32>
  return
}

// -----

// llama.concat shape rules and constraints.
func.func @f(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) {
  // expected-error @+1 {{dim 2 is out of range for rank 2}}
  %0 = llama.concat %a, %b dim 2 : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @f(%a: tensor<4x8xf32>, %b: tensor<4x8x1xf32>) {
  // expected-error @+1 {{concat input 1 has rank 3, input 0 has rank 2}}
  %0 = llama.concat %a, %b dim 0 : tensor<4x8xf32>, tensor<4x8x1xf32>
  return
}

// -----

func.func @f(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>, %c: tensor<4x8xbf16>) {
  // expected-error @+1 {{input 0 element type 'f32' differs from input 2 element type 'bf16'}}
  %0 = llama.concat %a, %b, %c dim 0 : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xbf16>
  return
}

// -----

func.func @f(%a: tensor<4x8xf32>, %b: tensor<4x6xf32>) {
  // expected-error @+1 {{concat dim 1: input 1 (6) does not match input 0 (8)}}
  %0 = llama.concat %a, %b dim 0 : tensor<4x8xf32>, tensor<4x6xf32>
  return
}

// -----

func.func @f(%a: tensor<?x8xf32>, %b: tensor<4x8xf32>, %c: tensor<5x8xf32>) {
  // expected-error @+1 {{concat dim 0: input 2 (5) does not match input 0 (4)}}
  %0 = llama.concat %a, %b, %c dim 1 : tensor<?x8xf32>, tensor<4x8xf32>, tensor<5x8xf32>
  return
}

// -----

// llama.slice shape rules and constraints.
func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{dim 2 is out of range for rank 2}}
  %0 = llama.slice %x dim 2 [0, 4] : tensor<8x64xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{slice needs offset >= 0 and size > 0, got offset -1 and size 4}}
  %0 = llama.slice %x dim 0 [-1, 4] : tensor<8x64xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{slice needs offset >= 0 and size > 0, got offset 2 and size 0}}
  %0 = llama.slice %x dim 0 [2, 0] : tensor<8x64xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{slice at offset 4 of size 8 exceeds dim 0 (8)}}
  %0 = llama.slice %x dim 0 [4, 8] : tensor<8x64xf32>
  return
}

// -----

// offset + size would overflow int64.
func.func @f(%x: tensor<8xf32>) {
  // expected-error @+1 {{slice at offset 9223372036854775807 of size 1 exceeds dim 0 (8)}}
  %0 = llama.slice %x dim 0 [9223372036854775807, 1] : tensor<8xf32>
  return
}

// -----

// Query and value batches are compared even when the key's is dynamic.
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<?x8x2x16xf32>, %v: tensor<3x8x2x16xf32>) {
  // expected-error @+1 {{query batch (dim 0) (2) does not match value batch (dim 0) (3)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<?x8x2x16xf32>, tensor<3x8x2x16xf32>
  return
}

// -----

// The value's head count counts when the key's is dynamic.
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x?x16xf32>, %v: tensor<2x8x3x16xf32>) {
  // expected-error @+1 {{query heads (4) is not divisible by key/value heads (3)}}
  %0 = llama.attention %q, %k, %v causal : tensor<2x8x4x16xf32>, tensor<2x8x?x16xf32>, tensor<2x8x3x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention window 4 needs causal attention}}
  %0 = llama.attention %q, %k, %k window 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x?xf32>, %k: tensor<2x8x2x?xf32>) {
  // expected-error @+1 {{attention head_dim (dim 3) must be static}}
  %0 = llama.attention %q, %k, %k causal : tensor<2x8x4x?xf32>, tensor<2x8x2x?xf32>, tensor<2x8x2x?xf32>
  return
}

// -----

// A layer cannot apply a layer stack (itself or another).
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
    vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      // expected-error @+1 {{cannot apply a layer stack inside a layer}}
      %y = llama.stack @layers(%x) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
      return %y : tensor<?x?x64xf32>
    }
  }
}

// -----

func.func @f(%t: tensor<2xi32>, %g: tensor<2x8xf32>) {
  // expected-error @+1 {{embedding_grad vocab must be positive, got -3}}
  %0 = llama.embedding_grad %t, %g vocab -3 : tensor<2xi32>, tensor<2x8xf32>
  return
}

// -----

func.func @f(%s: tensor<i64>, %lr: tensor<f32>) {
  // expected-error @+1 {{warmup must be non-negative, got -5}}
  %0 = llama.lr_schedule %s, %lr, %s warmup -5 floor 0.1
  return
}

// -----

// llama.pad shape rules.
func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{pad sizes must be in [0, 2^40], got -1 and 0}}
  %0 = llama.pad %x dim 0 [-1, 0] : tensor<8x64xf32>
  return
}

// -----

// The upper bound keeps the padded size from overflowing.
func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{pad sizes must be in [0, 2^40], got 0 and 1099511627777}}
  %0 = llama.pad %x dim 1 [0, 1099511627777] : tensor<8x64xf32>
  return
}

// -----

func.func @f(%x: tensor<8x64xf32>) {
  // expected-error @+1 {{dim 2 is out of range for rank 2}}
  %0 = llama.pad %x dim 2 [0, 1] : tensor<8x64xf32>
  return
}

// -----

// llama.embedding_grad shape rules.
func.func @f(%t: tensor<2x8xi32>, %g: tensor<2x8xf32>) {
  // expected-error @+1 {{embedding_grad grad must have rank 3 (the tokens' and dim), got 2}}
  %0 = llama.embedding_grad %t, %g vocab 16 : tensor<2x8xi32>, tensor<2x8xf32>
  return
}

// -----

func.func @f(%t: tensor<2x8xi32>, %g: tensor<2x7x64xf32>) {
  // expected-error @+1 {{tokens dim (8) does not match grad dim (7)}}
  %0 = llama.embedding_grad %t, %g vocab 16 : tensor<2x8xi32>, tensor<2x7x64xf32>
  return
}

// -----

// llama.linear_weight_grad shape rules.
func.func @f(%a: tensor<2x8x128xf32>, %b: tensor<16x64xf32>) {
  // expected-error @+1 {{linear_weight_grad operands must have one rank >= 1, got 3 and 2}}
  %0 = llama.linear_weight_grad %a, %b : tensor<2x8x128xf32>, tensor<16x64xf32>
  return
}

// -----

func.func @f(%a: tensor<f32>) {
  // expected-error @+1 {{linear_weight_grad operands must have one rank >= 1, got 0 and 0}}
  %0 = llama.linear_weight_grad %a, %a : tensor<f32>, tensor<f32>
  return
}

// -----

func.func @f(%a: tensor<2x8x128xf32>, %b: tensor<2x4x64xf32>) {
  // expected-error @+1 {{grad dim (8) does not match input dim (4)}}
  %0 = llama.linear_weight_grad %a, %b : tensor<2x8x128xf32>, tensor<2x4x64xf32>
  return
}

// -----

func.func @f(%a: tensor<2x8x128xf32>, %b: tensor<2x8x64xbf16>) {
  // expected-error @+1 {{grad element type 'f32' differs from input element type 'bf16'}}
  %0 = llama.linear_weight_grad %a, %b : tensor<2x8x128xf32>, tensor<2x8x64xbf16>
  return
}

// -----

// llama.rms_norm_grad: its own rule, then the forward op's.
func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>, %d: tensor<2x4x64xf32>) {
  // expected-error @+1 {{rms_norm_grad grad type 'tensor<2x4x64xf32>' differs from input type 'tensor<2x8x64xf32>'}}
  %0:2 = llama.rms_norm_grad %x, %g, %d eps 1.0e-05 : tensor<2x8x64xf32>, tensor<64xf32>, tensor<2x4x64xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{input dim (last) (64) does not match weight dim (32)}}
  %0:2 = llama.rms_norm_grad %x, %g, %x eps 1.0e-05 : tensor<2x8x64xf32>, tensor<32xf32>, tensor<2x8x64xf32>
  return
}

// -----

// llama.attention_grad: the gradient has the attention output's type (the query's).
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %d: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention_grad grad type 'tensor<2x8x2x16xf32>' differs from the attention output type 'tensor<2x8x4x16xf32>'}}
  %0:3 = llama.attention_grad %q, %k, %k, %d causal : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

// The forward rule applies to the attributes too.
func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention window 2 needs causal attention}}
  %0:3 = llama.attention_grad %q, %k, %k, %q window 2 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4x16xf32>
  return
}

// -----

// llama.cross_entropy_grad takes the forward op's rule.
func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<2x7xi32>, %d: tensor<f32>) {
  // expected-error @+1 {{cross_entropy dim 1: logits (8) does not match targets (7)}}
  %0 = llama.cross_entropy_grad %l, %t, %d : tensor<2x8x256xf32>, tensor<2x7xi32>
  return
}

// -----

// llama.set_param: the name must be a parameter of the enclosing model.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
    vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @norm : tensor<64xf32> init ones
  func.func @step(%x: tensor<64xf32>) {
    // expected-error @+1 {{@nope does not name a parameter of model @m}}
    llama.set_param @nope = %x : tensor<64xf32>
    return
  }
}

// -----

llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
    vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @m.norm : tensor<64xf32> init zeros state
  func.func @step(%x: tensor<32xf32>) {
    // expected-error @+1 {{value type 'tensor<32xf32>' does not match parameter @m.norm of type 'tensor<64xf32>'}}
    llama.set_param @m.norm = %x : tensor<32xf32>
    return
  }
}

// -----

// A layer's function may read its parameters but not write them.
llama.model @m config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
    vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.layer @layers repeat 1 {
    llama.param @w : tensor<64xf32> init ones
    func.func @block(%x: tensor<?x?x64xf32>, %w: tensor<64xf32>) -> tensor<?x?x64xf32> {
      // expected-error @+1 {{cannot write parameters inside a layer}}
      llama.set_param @w = %w : tensor<64xf32>
      return %x : tensor<?x?x64xf32>
    }
  }
}

// -----

func.func @f(%x: tensor<64xf32>) {
  // expected-error @+1 {{'llama.set_param' op must be nested in a llama.model}}
  llama.set_param @norm = %x : tensor<64xf32>
  return
}

// -----

// llama.grad_clip, llama.lr_schedule and llama.adamw attributes.
func.func @f(%g: tensor<64xf32>, %n: tensor<f32>) {
  // expected-error @+1 {{'llama.grad_clip' op max_norm must be positive}}
  %0:2 = llama.grad_clip %g count %n max_norm 0.0 : tensor<64xf32>
  return
}

// -----

func.func @f(%s: tensor<i64>, %lr: tensor<f32>) {
  // expected-error @+1 {{'llama.lr_schedule' op floor must be in [0, 1], got 1.500000e+00}}
  %0 = llama.lr_schedule %s, %lr, %s warmup 10 floor 1.5
  return
}

// -----

func.func @f(%p: tensor<64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.adamw' op betas must be in [0, 1), got 1.000000e+00 and 9.500000e-01}}
  %0:3 = llama.adamw %p, %p, %p, %p lr %lr step %s grad_scale %lr beta1 1.0 beta2 0.95 eps 1.0e-05 weight_decay 0.1 : tensor<64xf32>
  return
}

// -----

func.func @f(%p: tensor<64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{betas must be in [0, 1), got 9.000000e-01 and -5.000000e-01}}
  %0:3 = llama.adamw %p, %p, %p, %p lr %lr step %s grad_scale %lr beta1 0.9 beta2 -0.5 eps 1.0e-05 weight_decay 0.1 : tensor<64xf32>
  return
}

// -----

func.func @f(%p: tensor<64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.adamw' op eps must be positive}}
  %0:3 = llama.adamw %p, %p, %p, %p lr %lr step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 0.0 weight_decay 0.1 : tensor<64xf32>
  return
}

// -----

func.func @f(%p: tensor<64xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.adamw' op weight_decay must be non-negative}}
  %0:3 = llama.adamw %p, %p, %p, %p lr %lr step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-08 weight_decay -0.1 : tensor<64xf32>
  return
}

// -----

// llama.swiglu shape rules.
func.func @f(%x: tensor<f32>) {
  // expected-error @+1 {{swiglu input must have rank >= 1}}
  %0 = llama.swiglu %x : tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<2x7xf32>) {
  // expected-error @+1 {{swiglu last dim must be even (gate and up), got 7}}
  %0 = llama.swiglu %x : tensor<2x7xf32>
  return
}

// -----

// (The message prints the dynamic size's sentinel value, which is not checked here.)
func.func @f(%x: tensor<2x?xf32>) {
  // expected-error @+1 {{swiglu last dim must be static (gate and up)}}
  %0 = llama.swiglu %x : tensor<2x?xf32>
  return
}

// -----

// llama.qkv_rope verifier.
func.func @f(%x: tensor<8x128xf32>) {
  // expected-error @+1 {{'llama.qkv_rope' op input must be [batch, seq, (heads + 2 kv_heads) * head_dim], got rank 2}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 2 theta 1.0e+04 : tensor<8x128xf32> -> tensor<8x4x16xf32>, tensor<8x2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{heads (4) must be a positive multiple of kv_heads (3)}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 3 theta 1.0e+04 : tensor<2x8x128xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x3x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{heads (4) must be a positive multiple of kv_heads (-2)}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads -2 theta 1.0e+04 : tensor<2x8x128xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

// 120 = (4 + 2 x 2) x 15: the head_dim is odd.
func.func @f(%x: tensor<2x8x120xf32>) {
  // expected-error @+1 {{input width (120) must be (heads 4 + 2 x kv_heads 2) x an even head_dim}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 2 theta 1.0e+04 : tensor<2x8x120xf32> -> tensor<2x8x4x15xf32>, tensor<2x8x2x15xf32>
  return
}

// -----

// A dynamic width is rejected.
func.func @f(%x: tensor<2x8x?xf32>) {
  // expected-error @+1 {{input width (dim 2) must be static}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 2 theta 1.0e+04 : tensor<2x8x?xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{q must be 'tensor<2x8x4x16xf32>', got 'tensor<2x8x4x8xf32>'}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 2 theta 1.0e+04 : tensor<2x8x128xf32> -> tensor<2x8x4x8xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{k must be 'tensor<2x8x2x16xf32>', got 'tensor<2x8x2x16xbf16>'}}
  %q, %k, %v = llama.qkv_rope %x heads 4 kv_heads 2 theta 1.0e+04 : tensor<2x8x128xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x2x16xbf16>
  return
}

// -----

// v's type is k's: in the generic form, the ODS constraint rejects a different one first.
func.func @f(%x: tensor<2x8x128xf32>) {
  // expected-error @+1 {{'llama.qkv_rope' op failed to verify that all of {k, v} have same type}}
  %q, %k, %v = "llama.qkv_rope"(%x) <{heads = 4 : i64, kv_heads = 2 : i64, theta = 1.0e+04 : f64}> : (tensor<2x8x128xf32>) -> (tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x8xf32>)
  return
}

// -----

// llama.add_rms_norm: the input and the residual have one type. The custom form gives
// both the input's type...
// expected-note @+1 {{prior use here}}
func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<2x8x32xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{use of value '%r' expects different type than prior uses: 'tensor<2x8x64xf32>' vs 'tensor<2x8x32xf32>'}}
  %0:2 = llama.add_rms_norm %x, %r, %w eps 1.0e-05 : tensor<2x8x64xf32>, tensor<64xf32>
  return
}

// -----

// ... and in the generic form the ODS constraint rejects it.
func.func @f(%x: tensor<2x8x64xf32>, %r: tensor<2x8x32xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{'llama.add_rms_norm' op failed to verify that all of {input, residual, sum, normed} have same type}}
  %0:2 = "llama.add_rms_norm"(%x, %r, %w) <{eps = 1.0e-05 : f64}> : (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>)
  return
}

// -----

// The weight and eps follow llama.rms_norm's rule.
func.func @f(%x: tensor<2x8x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{input dim (last) (64) does not match weight dim (32)}}
  %0:2 = llama.add_rms_norm %x, %x, %w eps 1.0e-05 : tensor<2x8x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{rms_norm eps must be positive}}
  %0:2 = llama.add_rms_norm %x, %x, %w eps 0.0 : tensor<2x8x64xf32>, tensor<64xf32>
  return
}

// -----

// llama.flash_attention takes llama.attention's rule.
func.func @f(%q: tensor<2x8x64xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{query must have rank 4 ([batch, seq, heads, head_dim]), got rank 3}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 4 block_k 4 : tensor<2x8x64xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xbf16>) {
  // expected-error @+1 {{query element type 'f32' differs from key element type 'bf16'}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xbf16>, tensor<2x8x2x16xbf16>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x8xf32>) {
  // expected-error @+1 {{query head_dim (dim 3) (16) does not match key head_dim (dim 3) (8)}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x8xf32>, tensor<2x8x2x8xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>, %v: tensor<2x6x2x16xf32>) {
  // expected-error @+1 {{key seq (dim 1) (8) does not match value seq (dim 1) (6)}}
  %0:2 = llama.flash_attention %q, %k, %v causal block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x6x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x?xf32>, %k: tensor<2x8x2x?xf32>) {
  // expected-error @+1 {{attention head_dim (dim 3) must be static}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 4 block_k 4 : tensor<2x8x4x?xf32>, tensor<2x8x2x?xf32>, tensor<2x8x2x?xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention window 4 needs causal attention}}
  %0:2 = llama.flash_attention %q, %k, %k window 4 block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x3x16xf32>) {
  // expected-error @+1 {{query heads (4) is not divisible by key/value heads (3)}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x3x16xf32>, tensor<2x8x3x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attention scale must be positive}}
  %0:2 = llama.flash_attention %q, %k, %k causal scale -1.0 block_q 4 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>) {
  // expected-error @+1 {{attribute 'block_q' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0:2 = llama.flash_attention %q, %k, %k causal block_q 0 block_k 4 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  return
}

// -----

// llama.logsumexp and llama.fused_cross_entropy (llama.cross_entropy's rule).
func.func @f(%x: tensor<f32>) {
  // expected-error @+1 {{logsumexp input must have rank >= 1}}
  %0 = llama.logsumexp %x : tensor<f32>
  return
}

// -----

func.func @f(%l: tensor<f32>, %t: tensor<i32>) {
  // expected-error @+1 {{cross_entropy logits must have rank >= 1 (vocab last), got a scalar}}
  %0:2 = llama.fused_cross_entropy %l, %t chunk 64 : tensor<f32>, tensor<i32>
  return
}

// -----

func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<16xi32>) {
  // expected-error @+1 {{cross_entropy targets must have rank 2 (the logits without the vocab dim), got rank 1}}
  %0:2 = llama.fused_cross_entropy %l, %t chunk 64 : tensor<2x8x256xf32>, tensor<16xi32>
  return
}

// -----

func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<2x7xi32>) {
  // expected-error @+1 {{cross_entropy dim 1: logits (8) does not match targets (7)}}
  %0:2 = llama.fused_cross_entropy %l, %t ignore_index -100 chunk 64 : tensor<2x8x256xf32>, tensor<2x7xi32>
  return
}

// -----

func.func @f(%l: tensor<2x8x256xf32>, %t: tensor<2x8xi32>) {
  // expected-error @+1 {{attribute 'chunk' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0:2 = llama.fused_cross_entropy %l, %t chunk 0 : tensor<2x8x256xf32>, tensor<2x8xi32>
  return
}

// -----

// llama.multi_adamw verifier.
func.func @f(%a: tensor<64xf32>, %b: tensor<8x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.multi_adamw' op needs as many grads, ms and vs as params (2), got 1, 2, 2}}
  %r:6 = llama.multi_adamw params [%a, %b] grads [%a] m [%a, %b] v [%a, %b] lr %lr step %s
      grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.0, 0.1]
      : (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<8x8xf32>,
         tensor<64xf32>, tensor<8x8xf32>, tensor<f32>, tensor<i64>, tensor<f32>)
        -> (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
            tensor<8x8xf32>)
  return
}

// -----

func.func @f(%a: tensor<64xf32>, %b: tensor<8x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.multi_adamw' op needs one weight decay per param (2), got 1}}
  %r:6 = llama.multi_adamw params [%a, %b] grads [%a, %b] m [%a, %b] v [%a, %b] lr %lr
      step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.1]
      : (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
         tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<f32>, tensor<i64>,
         tensor<f32>)
        -> (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
            tensor<8x8xf32>)
  return
}

// -----

func.func @f(%a: tensor<64xf32>, %b: tensor<8x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.multi_adamw' op has 4 results for 2 params (expected 6)}}
  %r:4 = llama.multi_adamw params [%a, %b] grads [%a, %b] m [%a, %b] v [%a, %b] lr %lr
      step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.0, 0.1]
      : (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
         tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<f32>, tensor<i64>,
         tensor<f32>)
        -> (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>)
  return
}

// -----

// A gradient of the wrong type.
func.func @f(%a: tensor<64xf32>, %b: tensor<8x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{'llama.multi_adamw' op param 1 has type 'tensor<8x8xf32>' but a matching grad, moment or result has 'tensor<64xf32>'}}
  %r:6 = llama.multi_adamw params [%a, %b] grads [%a, %a] m [%a, %b] v [%a, %b] lr %lr
      step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.0, 0.1]
      : (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>,
         tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<f32>, tensor<i64>,
         tensor<f32>)
        -> (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
            tensor<8x8xf32>)
  return
}

// -----

// A result of the wrong type (the new first moment of param 1).
func.func @f(%a: tensor<64xf32>, %b: tensor<8x8xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{param 1 has type 'tensor<8x8xf32>' but a matching grad, moment or result has 'tensor<8x8xbf16>'}}
  %r:6 = llama.multi_adamw params [%a, %b] grads [%a, %b] m [%a, %b] v [%a, %b] lr %lr
      step %s grad_scale %lr beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decays [0.0, 0.1]
      : (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>,
         tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xf32>, tensor<f32>, tensor<i64>,
         tensor<f32>)
        -> (tensor<64xf32>, tensor<8x8xf32>, tensor<64xf32>, tensor<8x8xbf16>, tensor<64xf32>,
            tensor<8x8xf32>)
  return
}

// -----

// llama.fused_elementwise verifier.
func.func @f(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{'llama.fused_elementwise' op body takes 1 scalars for 2 inputs}}
  %r = llama.fused_elementwise %a, %a : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32> {
  ^bb0(%x: f32):
    llama.yield %x : f32
  }
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{'llama.fused_elementwise' op input 1 has shape 'tensor<2x4xf32>', the result 'tensor<2x8xf32>'}}
  %r = llama.fused_elementwise %a, %b : tensor<2x8xf32>, tensor<2x4xf32> -> tensor<2x8xf32> {
  ^bb0(%x: f32, %y: f32):
    llama.yield %x : f32
  }
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>, %b: tensor<2x8xbf16>) {
  // expected-error @+1 {{'llama.fused_elementwise' op body argument 1 must be 'bf16'}}
  %r = llama.fused_elementwise %a, %b : tensor<2x8xf32>, tensor<2x8xbf16> -> tensor<2x8xf32> {
  ^bb0(%x: f32, %y: f32):
    llama.yield %x : f32
  }
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{'llama.fused_elementwise' op body must end with llama.yield of 'bf16'}}
  %r = llama.fused_elementwise %a : tensor<2x8xf32> -> tensor<2x8xbf16> {
  ^bb0(%x: f32):
    llama.yield %x : f32
  }
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>) {
  %r = llama.fused_elementwise %a : tensor<2x8xf32> -> tensor<2x8xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{'math.tanh' op is not supported in a llama.fused_elementwise body}}
    %0 = math.tanh %x : f32
    llama.yield %0 : f32
  }
  return
}

// -----

// The gradient ops' shapes relate to each other (they once passed the verifier and aborted
// in llamac-decompose).
func.func @f(%x: tensor<2x8xf32>, %g: tensor<2x3xf32>) {
  // expected-error @+1 {{grad must be 'tensor<2x4xf32>' (half of the input's last dim), got 'tensor<2x3xf32>'}}
  %0 = llama.swiglu_grad %x, %g : tensor<2x8xf32>, tensor<2x3xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8x32xf32>) {
  // expected-error @+1 {{theta must be positive}}
  %q, %k, %v = llama.qkv_rope %x heads 2 kv_heads 1 theta -1.0 : tensor<2x8x32xf32> -> tensor<2x8x2x8xf32>, tensor<2x8x1x8xf32>
  return
}

// -----

func.func @f(%dq: tensor<1x3x4x4xf32>, %dk: tensor<1x3x2x4xf32>) {
  // expected-error @+1 {{result must be 'tensor<1x3x32xf32>', got 'tensor<1x3x7xf32>'}}
  %0 = llama.qkv_rope_grad %dq, %dk, %dk theta 1.0e+04 : tensor<1x3x4x4xf32>, tensor<1x3x2x4xf32> -> tensor<1x3x7xf32>
  return
}

// -----

func.func @f(%dq: tensor<1x3x4x4xf32>, %dk: tensor<1x5x2x4xf32>) {
  // expected-error @+1 {{must share batch, seq, a static head_dim and element type}}
  %0 = llama.qkv_rope_grad %dq, %dk, %dk theta 1.0e+04 : tensor<1x3x4x4xf32>, tensor<1x5x2x4xf32> -> tensor<1x3x32xf32>
  return
}

// -----

func.func @f(%s: tensor<2x6xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{input dim (last) (6) does not match weight dim (4)}}
  %dx, %dw = llama.add_rms_norm_grad %s, %w, %s, %s eps 1.0e-05 : tensor<2x6xf32>, tensor<4xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x1x8xf32>, %lse: tensor<9xf32>) {
  // expected-error @+1 {{lse must be 'tensor<1x4x2xf32>', got 'tensor<9xf32>'}}
  %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %k, %q, %lse, %q causal block_q 2 block_k 2 : tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<9xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x1x8xf32>, %lse: tensor<1x4x2xf32>) {
  // expected-error @+1 {{attention window 2 needs causal attention}}
  %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %k, %q, %lse, %q window 2 block_q 2 block_k 2 : tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x1x8xf32>, tensor<1x4x2xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x1x8xf32>) {
  // expected-error @+1 {{result must be 'tensor<1x4x2xf32>', got 'tensor<5x5xf32>'}}
  %0 = llama.attention_lse %q, %k causal : tensor<1x4x2x8xf32>, tensor<1x4x1x8xf32> -> tensor<5x5xf32>
  return
}

// -----

func.func @f(%l: tensor<3x5xf32>, %t: tensor<3xi32>, %lse: tensor<1xf32>, %g: tensor<f32>) {
  // expected-error @+1 {{lse must be 'tensor<3xf32>', got 'tensor<1xf32>'}}
  %0 = llama.fused_cross_entropy_grad %l, %t, %lse, %g chunk 2 : tensor<3x5xf32>, tensor<3xi32>, tensor<1xf32>
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>, %s: tensor<i64>) {
  // expected-error @+1 {{betas must be in [0, 1), got 1.5}}
  %r:3 = llama.multi_adamw params [%p] grads [%p] m [%p] v [%p] lr %lr step %s grad_scale %lr beta1 1.5 beta2 0.95 eps 1.0e-05 weight_decays [0.0] : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>, %y: f32) {
  %r = llama.fused_elementwise %a : tensor<2x8xf32> -> tensor<2x8xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{uses a value defined outside the llama.fused_elementwise body}}
    %s = arith.addf %x, %y : f32
    llama.yield %s : f32
  }
  return
}

// -----

func.func @f(%a: tensor<2x8xf32>) {
  %r = llama.fused_elementwise %a : tensor<2x8xf32> -> tensor<2x8xf32> {
  ^bb0(%x: f32):
    // expected-error @+1 {{must produce 'f32', got 'f64'}}
    %c = arith.constant 1.0 : f64
    llama.yield %x : f32
  }
  return
}
