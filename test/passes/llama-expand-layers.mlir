// RUN: llamac-opt %s --llama-expand-layers | FileCheck %s
// RUN: llamac-opt %models/tiny.mlir --llama-expand-layers | FileCheck %s --check-prefix=TINY

// A layer of two parameters, repeated 3 times, whose function takes an extra argument (the
// position offset) that every repetition receives unchanged.

// CHECK-LABEL: llama.model @small
// The per-repetition parameters replace the layer, in its place, repetition by repetition.
// CHECK-NEXT:   llama.param @tok_embeddings : tensor<16x32xf32> init normal(2.000000e-02)
// CHECK-NEXT:   llama.param @layers.0.norm : tensor<32xf32> init ones
// CHECK-NEXT:   llama.param @layers.0.mix.w : tensor<32x32xf32> init normal(2.000000e-02)
// CHECK-NEXT:   llama.param @layers.1.norm : tensor<32xf32> init ones
// CHECK-NEXT:   llama.param @layers.1.mix.w : tensor<32x32xf32> init normal(2.000000e-02)
// CHECK-NEXT:   llama.param @layers.2.norm : tensor<32xf32> init ones
// CHECK-NEXT:   llama.param @layers.2.mix.w : tensor<32x32xf32> init normal(2.000000e-02)
// CHECK-NEXT:   llama.param @output : tensor<16x32xf32> init normal(2.000000e-02)
// CHECK-NOT:    llama.layer
// CHECK-NOT:    func.func @block
// CHECK-NEXT:   func.func @forward(%[[TOK:.*]]: tensor<?x?xi32>, %[[POS:.*]]: index) -> tensor<?x?x16xf32> {
// CHECK-NEXT:     %[[EMB:.*]] = llama.get_param @tok_embeddings : tensor<16x32xf32>
// CHECK-NEXT:     %[[H0:.*]] = llama.embedding %[[EMB]][%[[TOK]]] : tensor<16x32xf32>, tensor<?x?xi32>
// Repetition 0 reads the stack's first operand and its own parameters.
// CHECK-NEXT:     %[[G0:.*]] = llama.get_param @layers.0.norm : tensor<32xf32>
// CHECK-NEXT:     %[[N0:.*]] = llama.rms_norm %[[H0]], %[[G0]] eps 1.000000e-05 : tensor<?x?x32xf32>, tensor<32xf32>
// CHECK-NEXT:     %[[W0:.*]] = llama.get_param @layers.0.mix.w : tensor<32x32xf32>
// CHECK-NEXT:     %[[Y0:.*]] = llama.linear %[[N0]], %[[W0]] : tensor<?x?x32xf32>, tensor<32x32xf32>
// CHECK-NEXT:     %[[S0:.*]] = llama.split_dim %[[Y0]] dim 2 into [2, 16] : tensor<?x?x32xf32>
// CHECK-NEXT:     %[[R0:.*]] = llama.rope %[[S0]] theta 1.000000e+04 offset %[[POS]] : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[M0:.*]] = llama.merge_dims %[[R0]] dim 2 : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[H1:.*]] = llama.add %[[H0]], %[[M0]] : tensor<?x?x32xf32>
// Repetition 1 reads repetition 0's result.
// CHECK-NEXT:     %[[G1:.*]] = llama.get_param @layers.1.norm : tensor<32xf32>
// CHECK-NEXT:     %[[N1:.*]] = llama.rms_norm %[[H1]], %[[G1]] eps 1.000000e-05 : tensor<?x?x32xf32>, tensor<32xf32>
// CHECK-NEXT:     %[[W1:.*]] = llama.get_param @layers.1.mix.w : tensor<32x32xf32>
// CHECK-NEXT:     %[[Y1:.*]] = llama.linear %[[N1]], %[[W1]] : tensor<?x?x32xf32>, tensor<32x32xf32>
// CHECK-NEXT:     %[[S1:.*]] = llama.split_dim %[[Y1]] dim 2 into [2, 16] : tensor<?x?x32xf32>
// CHECK-NEXT:     %[[R1:.*]] = llama.rope %[[S1]] theta 1.000000e+04 offset %[[POS]] : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[M1:.*]] = llama.merge_dims %[[R1]] dim 2 : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[H2:.*]] = llama.add %[[H1]], %[[M1]] : tensor<?x?x32xf32>
// Repetition 2.
// CHECK-NEXT:     %[[G2:.*]] = llama.get_param @layers.2.norm : tensor<32xf32>
// CHECK-NEXT:     %[[N2:.*]] = llama.rms_norm %[[H2]], %[[G2]] eps 1.000000e-05 : tensor<?x?x32xf32>, tensor<32xf32>
// CHECK-NEXT:     %[[W2:.*]] = llama.get_param @layers.2.mix.w : tensor<32x32xf32>
// CHECK-NEXT:     %[[Y2:.*]] = llama.linear %[[N2]], %[[W2]] : tensor<?x?x32xf32>, tensor<32x32xf32>
// CHECK-NEXT:     %[[S2:.*]] = llama.split_dim %[[Y2]] dim 2 into [2, 16] : tensor<?x?x32xf32>
// CHECK-NEXT:     %[[R2:.*]] = llama.rope %[[S2]] theta 1.000000e+04 offset %[[POS]] : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[M2:.*]] = llama.merge_dims %[[R2]] dim 2 : tensor<?x?x2x16xf32>
// CHECK-NEXT:     %[[H3:.*]] = llama.add %[[H2]], %[[M2]] : tensor<?x?x32xf32>
// The stack's result is the last repetition's.
// CHECK-NEXT:     %[[OW:.*]] = llama.get_param @output : tensor<16x32xf32>
// CHECK-NEXT:     %[[L:.*]] = llama.linear %[[H3]], %[[OW]] : tensor<?x?x32xf32>, tensor<16x32xf32>
// CHECK-NEXT:     return %[[L]] : tensor<?x?x16xf32>
// CHECK-NEXT:   }
// CHECK-NEXT: }
llama.model @small config <dim = 32, n_layers = 3, n_heads = 2, n_kv_heads = 2,
    ffn_dim = 64, vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<16x32xf32> init normal(2.0e-02)
  llama.layer @layers repeat 3 {
    llama.param @norm : tensor<32xf32> init ones
    llama.param @mix.w : tensor<32x32xf32> init normal(2.0e-02)
    func.func @block(%x: tensor<?x?x32xf32>, %pos: index) -> tensor<?x?x32xf32> {
      %g = llama.get_param @norm : tensor<32xf32>
      %n = llama.rms_norm %x, %g eps 1.0e-05 : tensor<?x?x32xf32>, tensor<32xf32>
      %w = llama.get_param @mix.w : tensor<32x32xf32>
      %y = llama.linear %n, %w : tensor<?x?x32xf32>, tensor<32x32xf32>
      %y4 = llama.split_dim %y dim 2 into [2, 16] : tensor<?x?x32xf32>
      %r4 = llama.rope %y4 theta 1.0e+04 offset %pos : tensor<?x?x2x16xf32>
      %r = llama.merge_dims %r4 dim 2 : tensor<?x?x2x16xf32>
      %out = llama.add %x, %r : tensor<?x?x32xf32>
      return %out : tensor<?x?x32xf32>
    }
  }
  llama.param @output : tensor<16x32xf32> init normal(2.0e-02)

  func.func @forward(%tokens: tensor<?x?xi32>, %pos: index) -> tensor<?x?x16xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<16x32xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<16x32xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0, %pos) : (tensor<?x?x32xf32>, index) -> tensor<?x?x32xf32>
    %ow = llama.get_param @output : tensor<16x32xf32>
    %logits = llama.linear %h, %ow : tensor<?x?x32xf32>, tensor<16x32xf32>
    return %logits : tensor<?x?x16xf32>
  }
}

// Two layers (1 + 2 repetitions) and the second one stacked in two functions: each stack is
// expanded where it stands, with its own layer's parameters.

// CHECK-LABEL: llama.model @two_layers
// CHECK-NEXT:   llama.param @first.0.w : tensor<8x8xbf16> init zeros
// CHECK-NEXT:   llama.param @rest.0.w : tensor<8x8xbf16> init normal(1.000000e-02)
// CHECK-NEXT:   llama.param @rest.0.g : tensor<8xbf16> init ones
// CHECK-NEXT:   llama.param @rest.1.w : tensor<8x8xbf16> init normal(1.000000e-02)
// CHECK-NEXT:   llama.param @rest.1.g : tensor<8xbf16> init ones
// CHECK-NEXT:   func.func @forward(%[[X:.*]]: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
// CHECK-NEXT:     %[[F0:.*]] = llama.get_param @first.0.w : tensor<8x8xbf16>
// CHECK-NEXT:     %[[A:.*]] = llama.linear %[[X]], %[[F0]] : tensor<2x3x8xbf16>, tensor<8x8xbf16>
// CHECK-NEXT:     %[[W0:.*]] = llama.get_param @rest.0.w : tensor<8x8xbf16>
// CHECK-NEXT:     %[[B:.*]] = llama.linear %[[A]], %[[W0]] : tensor<2x3x8xbf16>, tensor<8x8xbf16>
// CHECK-NEXT:     %[[G0:.*]] = llama.get_param @rest.0.g : tensor<8xbf16>
// CHECK-NEXT:     %[[C:.*]] = llama.rms_norm %[[B]], %[[G0]] eps 1.000000e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
// CHECK-NEXT:     %[[W1:.*]] = llama.get_param @rest.1.w : tensor<8x8xbf16>
// CHECK-NEXT:     %[[D:.*]] = llama.linear %[[C]], %[[W1]] : tensor<2x3x8xbf16>, tensor<8x8xbf16>
// CHECK-NEXT:     %[[G1:.*]] = llama.get_param @rest.1.g : tensor<8xbf16>
// CHECK-NEXT:     %[[E:.*]] = llama.rms_norm %[[D]], %[[G1]] eps 1.000000e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
// CHECK-NEXT:     return %[[E]] : tensor<2x3x8xbf16>
// CHECK-NEXT:   }
// CHECK-NEXT:   func.func @rest_only(%[[X:.*]]: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
// CHECK-NEXT:     %[[W0:.*]] = llama.get_param @rest.0.w : tensor<8x8xbf16>
// CHECK-NEXT:     %[[B:.*]] = llama.linear %[[X]], %[[W0]] : tensor<2x3x8xbf16>, tensor<8x8xbf16>
// CHECK-NEXT:     %[[G0:.*]] = llama.get_param @rest.0.g : tensor<8xbf16>
// CHECK-NEXT:     %[[C:.*]] = llama.rms_norm %[[B]], %[[G0]] eps 1.000000e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
// CHECK-NEXT:     %[[W1:.*]] = llama.get_param @rest.1.w : tensor<8x8xbf16>
// CHECK-NEXT:     %[[D:.*]] = llama.linear %[[C]], %[[W1]] : tensor<2x3x8xbf16>, tensor<8x8xbf16>
// CHECK-NEXT:     %[[G1:.*]] = llama.get_param @rest.1.g : tensor<8xbf16>
// CHECK-NEXT:     %[[E:.*]] = llama.rms_norm %[[D]], %[[G1]] eps 1.000000e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
// CHECK-NEXT:     return %[[E]] : tensor<2x3x8xbf16>
// CHECK-NEXT:   }
// CHECK-NEXT: }
// CHECK-NOT: llama.stack
// CHECK-NOT: llama.layer
llama.model @two_layers config <dim = 8, n_layers = 3, n_heads = 2, n_kv_heads = 1,
    ffn_dim = 16, vocab_size = 4, max_seq_len = 3, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.layer @first repeat 1 {
    llama.param @w : tensor<8x8xbf16> init zeros
    func.func @block(%x: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
      %w = llama.get_param @w : tensor<8x8xbf16>
      %y = llama.linear %x, %w : tensor<2x3x8xbf16>, tensor<8x8xbf16>
      return %y : tensor<2x3x8xbf16>
    }
  }
  llama.layer @rest repeat 2 {
    llama.param @w : tensor<8x8xbf16> init normal(1.0e-02)
    llama.param @g : tensor<8xbf16> init ones
    func.func @block(%x: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
      %w = llama.get_param @w : tensor<8x8xbf16>
      %y = llama.linear %x, %w : tensor<2x3x8xbf16>, tensor<8x8xbf16>
      %g = llama.get_param @g : tensor<8xbf16>
      %n = llama.rms_norm %y, %g eps 1.0e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
      return %n : tensor<2x3x8xbf16>
    }
  }
  func.func @forward(%x: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
    %a = llama.stack @first(%x) : (tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16>
    %b = llama.stack @rest(%a) : (tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16>
    return %b : tensor<2x3x8xbf16>
  }
  func.func @rest_only(%x: tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16> {
    %b = llama.stack @rest(%x) : (tensor<2x3x8xbf16>) -> tensor<2x3x8xbf16>
    return %b : tensor<2x3x8xbf16>
  }
}

// The example model: every layer parameter exists once per layer, and no stack is left.
// TINY-LABEL: llama.model @tiny
// TINY:       llama.param @layers.0.feed_forward.w3 : tensor<176x64xf32> init normal(2.000000e-02)
// TINY:       llama.param @layers.1.attention_norm : tensor<64xf32> init ones
// TINY:       llama.param @layers.1.feed_forward.w3 : tensor<176x64xf32> init normal(2.000000e-02)
// TINY-NOT:   llama.layer
// TINY-LABEL: func.func @forward
// TINY-NOT:   llama.stack
// TINY:       llama.get_param @layers.0.attention_norm
// TINY-NOT:   llama.stack
// TINY:       llama.get_param @layers.1.feed_forward.w3
// TINY-NOT:   llama.stack
// TINY-LABEL: func.func @loss
// TINY-NOT:   llama.stack
// TINY-NOT:   llama.layer
