// RUN: llamac-opt %s | llamac-opt | FileCheck %s

// Round trip of every op of the llama dialect. Compute ops infer their result types, so the
// assembly shows only operand types: each inferred type is checked through a later use (an
// operand type or the `return`), and the functions' declared result types make the
// verifier compare them with the inferred ones on both parses.

//===----------------------------------------------------------------------------------===//
// Structure: model, config, params with each initialiser, layer, get_param, stack.
//===----------------------------------------------------------------------------------===//

// CHECK-LABEL: llama.model @structure
// CHECK-SAME: config <dim = 64, n_layers = 3, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
// CHECK-SAME: vocab_size = 256, max_seq_len = 32, norm_eps = 1.000000e-05,
// CHECK-SAME: rope_theta = 5.000000e+05, sliding_window = 16> {
// CHECK-NEXT:   llama.param @tok_embeddings : tensor<256x64xf32> init normal(2.000000e-02)
// CHECK-NEXT:   llama.param @bias_bf16 : tensor<64xbf16> init zeros
// CHECK-NEXT:   llama.param @norm_f16 : tensor<64xf16> init ones
// CHECK-NEXT:   llama.param @norm : tensor<64xf32> init ones
// CHECK-NEXT:   llama.layer @first repeat 1 {
// CHECK-NEXT:     llama.param @w : tensor<64x64xf32> init normal(1.000000e-02)
// CHECK-NEXT:     func.func @block(%[[X:.*]]: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
// CHECK-NEXT:       %[[W:.*]] = llama.get_param @w : tensor<64x64xf32>
// CHECK-NEXT:       %[[Y:.*]] = llama.linear %[[X]], %[[W]] : tensor<?x?x64xf32>, tensor<64x64xf32>
// CHECK-NEXT:       return %[[Y]] : tensor<?x?x64xf32>
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT:   llama.layer @rest repeat 2 {
// CHECK-NEXT:     llama.param @attention_norm : tensor<64xf32> init ones
// CHECK-NEXT:     llama.param @attention.wq : tensor<64x64xf32> init normal(2.000000e-02)
// CHECK-NEXT:     llama.param @attention.bias : tensor<64xf32> init zeros
// CHECK-NEXT:     func.func @block(%[[X:.*]]: tensor<?x?x64xf32>, %[[POS:.*]]: index) -> tensor<?x?x64xf32> {
// CHECK-NEXT:       %[[G:.*]] = llama.get_param @attention_norm : tensor<64xf32>
// CHECK-NEXT:       %[[N:.*]] = llama.rms_norm %[[X]], %[[G]] eps 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
// CHECK-NEXT:       %[[WQ:.*]] = llama.get_param @attention.wq : tensor<64x64xf32>
// CHECK-NEXT:       %[[Q:.*]] = llama.linear %[[N]], %[[WQ]] : tensor<?x?x64xf32>, tensor<64x64xf32>
// CHECK-NEXT:       %[[Q4:.*]] = llama.split_dim %[[Q]] dim 2 into [4, 16] : tensor<?x?x64xf32>
// CHECK-NEXT:       %[[QR:.*]] = llama.rope %[[Q4]] theta 5.000000e+05 offset %[[POS]] : tensor<?x?x4x16xf32>
// CHECK-NEXT:       %[[M:.*]] = llama.merge_dims %[[QR]] dim 2 : tensor<?x?x4x16xf32>
// CHECK-NEXT:       %[[R:.*]] = llama.add %[[X]], %[[M]] : tensor<?x?x64xf32>
// CHECK-NEXT:       return %[[R]] : tensor<?x?x64xf32>
// CHECK-NEXT:     }
// CHECK-NEXT:   }
llama.model @structure config <dim = 64, n_layers = 3, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 5.0e+05, sliding_window = 16> {
  llama.param @tok_embeddings : tensor<256x64xf32> init normal(2.0e-02)
  llama.param @bias_bf16 : tensor<64xbf16> init zeros
  llama.param @norm_f16 : tensor<64xf16> init ones
  llama.param @norm : tensor<64xf32> init ones

  // Two layers whose repeats add up to n_layers.
  llama.layer @first repeat 1 {
    llama.param @w : tensor<64x64xf32> init normal(1.0e-02)
    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      %w = llama.get_param @w : tensor<64x64xf32>
      %y = llama.linear %x, %w : tensor<?x?x64xf32>, tensor<64x64xf32>
      return %y : tensor<?x?x64xf32>
    }
  }

  // A layer with an extra, non-stream argument (the position offset).
  llama.layer @rest repeat 2 {
    llama.param @attention_norm : tensor<64xf32> init ones
    llama.param @attention.wq : tensor<64x64xf32> init normal(2.0e-02)
    llama.param @attention.bias : tensor<64xf32> init zeros
    func.func @block(%x: tensor<?x?x64xf32>, %pos: index) -> tensor<?x?x64xf32> {
      %g = llama.get_param @attention_norm : tensor<64xf32>
      %n = llama.rms_norm %x, %g eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
      %wq = llama.get_param @attention.wq : tensor<64x64xf32>
      %q = llama.linear %n, %wq : tensor<?x?x64xf32>, tensor<64x64xf32>
      %q4 = llama.split_dim %q dim 2 into [4, 16] : tensor<?x?x64xf32>
      %qr = llama.rope %q4 theta 5.0e+05 offset %pos : tensor<?x?x4x16xf32>
      %m = llama.merge_dims %qr dim 2 : tensor<?x?x4x16xf32>
      %r = llama.add %x, %m : tensor<?x?x64xf32>
      return %r : tensor<?x?x64xf32>
    }
  }

  // CHECK-LABEL: func.func @forward
  // CHECK-SAME: (%[[TOK:.*]]: tensor<?x?xi32>, %[[POS:.*]]: index) -> tensor<?x?x64xf32>
  // CHECK-NEXT: %[[E:.*]] = llama.get_param @tok_embeddings : tensor<256x64xf32>
  // CHECK-NEXT: %[[H0:.*]] = llama.embedding %[[E]][%[[TOK]]] : tensor<256x64xf32>, tensor<?x?xi32>
  // CHECK-NEXT: %[[H1:.*]] = llama.stack @first(%[[H0]]) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  // CHECK-NEXT: %[[H2:.*]] = llama.stack @rest(%[[H1]], %[[POS]]) : (tensor<?x?x64xf32>, index) -> tensor<?x?x64xf32>
  // CHECK-NEXT: %[[NW:.*]] = llama.get_param @norm : tensor<64xf32>
  // CHECK-NEXT: %[[HN:.*]] = llama.rms_norm %[[H2]], %[[NW]] eps 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
  // CHECK-NEXT: return %[[HN]] : tensor<?x?x64xf32>
  func.func @forward(%tokens: tensor<?x?xi32>, %pos: index) -> tensor<?x?x64xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<256x64xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<256x64xf32>, tensor<?x?xi32>
    %h1 = llama.stack @first(%h0) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %h2 = llama.stack @rest(%h1, %pos) : (tensor<?x?x64xf32>, index) -> tensor<?x?x64xf32>
    %nw = llama.get_param @norm : tensor<64xf32>
    %hn = llama.rms_norm %h2, %nw eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    return %hn : tensor<?x?x64xf32>
  }

  // Model-level parameters of each element type.
  // CHECK-LABEL: func.func @params
  // CHECK-NEXT: llama.get_param @bias_bf16 : tensor<64xbf16>
  // CHECK-NEXT: llama.get_param @norm_f16 : tensor<64xf16>
  func.func @params() -> (tensor<64xbf16>, tensor<64xf16>) {
    %b = llama.get_param @bias_bf16 : tensor<64xbf16>
    %n = llama.get_param @norm_f16 : tensor<64xf16>
    return %b, %n : tensor<64xbf16>, tensor<64xf16>
  }
}

// A model without layers: n_layers is not checked against anything; default window.
// CHECK-LABEL: llama.model @no_layers
// CHECK-SAME: config <dim = 32, n_layers = 1, n_heads = 2, n_kv_heads = 2, ffn_dim = 64,
// CHECK-SAME: vocab_size = 16, max_seq_len = 8, norm_eps = 2.500000e-06,
// CHECK-SAME: rope_theta = 1.000000e+04> {
// CHECK-NEXT: llama.param @w : tensor<16x32xbf16> init normal(5.000000e-01)
llama.model @no_layers config <dim = 32, n_layers = 1, n_heads = 2, n_kv_heads = 2,
    ffn_dim = 64, vocab_size = 16, max_seq_len = 8, norm_eps = 2.5e-06,
    rope_theta = 1.0e+04> {
  llama.param @w : tensor<16x32xbf16> init normal(5.0e-01)
}

//===----------------------------------------------------------------------------------===//
// Compute ops.
//===----------------------------------------------------------------------------------===//

llama.model @compute config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {

  // CHECK-LABEL: func.func @embedding
  // CHECK-SAME: (%[[T32:.*]]: tensor<256x64xf32>, %[[TBF:.*]]: tensor<256x64xbf16>, %[[I32:.*]]: tensor<?x?xi32>, %[[I64:.*]]: tensor<2x8xi64>, %[[I1:.*]]: tensor<5xi32>)
  // CHECK-SAME: -> (tensor<?x?x64xf32>, tensor<2x8x64xbf16>, tensor<5x64xf32>)
  // CHECK-NEXT: %[[A:.*]] = llama.embedding %[[T32]][%[[I32]]] : tensor<256x64xf32>, tensor<?x?xi32>
  // CHECK-NEXT: %[[B:.*]] = llama.embedding %[[TBF]][%[[I64]]] : tensor<256x64xbf16>, tensor<2x8xi64>
  // CHECK-NEXT: %[[C:.*]] = llama.embedding %[[T32]][%[[I1]]] : tensor<256x64xf32>, tensor<5xi32>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]] : tensor<?x?x64xf32>, tensor<2x8x64xbf16>, tensor<5x64xf32>
  func.func @embedding(%t32: tensor<256x64xf32>, %tbf: tensor<256x64xbf16>,
                       %i32: tensor<?x?xi32>, %i64: tensor<2x8xi64>, %i1: tensor<5xi32>)
      -> (tensor<?x?x64xf32>, tensor<2x8x64xbf16>, tensor<5x64xf32>) {
    %a = llama.embedding %t32[%i32] : tensor<256x64xf32>, tensor<?x?xi32>
    %b = llama.embedding %tbf[%i64] : tensor<256x64xbf16>, tensor<2x8xi64>
    %c = llama.embedding %t32[%i1] : tensor<256x64xf32>, tensor<5xi32>
    return %a, %b, %c : tensor<?x?x64xf32>, tensor<2x8x64xbf16>, tensor<5x64xf32>
  }

  // CHECK-LABEL: func.func @linear
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[W:.*]]: tensor<128x64xf32>, %[[XB:.*]]: tensor<2x8x64xbf16>, %[[WB:.*]]: tensor<32x64xbf16>, %[[V:.*]]: tensor<64xf16>, %[[WH:.*]]: tensor<16x64xf16>, %[[XD:.*]]: tensor<4x?xf32>)
  // CHECK-NEXT: %[[A:.*]] = llama.linear %[[X]], %[[W]] : tensor<?x?x64xf32>, tensor<128x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.linear %[[XB]], %[[WB]] : tensor<2x8x64xbf16>, tensor<32x64xbf16>
  // CHECK-NEXT: %[[C:.*]] = llama.linear %[[V]], %[[WH]] : tensor<64xf16>, tensor<16x64xf16>
  // CHECK-NEXT: %[[D:.*]] = llama.linear %[[XD]], %[[W]] : tensor<4x?xf32>, tensor<128x64xf32>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]], %[[D]] : tensor<?x?x128xf32>, tensor<2x8x32xbf16>, tensor<16xf16>, tensor<4x128xf32>
  func.func @linear(%x: tensor<?x?x64xf32>, %w: tensor<128x64xf32>,
                    %xb: tensor<2x8x64xbf16>, %wb: tensor<32x64xbf16>,
                    %v: tensor<64xf16>, %wh: tensor<16x64xf16>, %xd: tensor<4x?xf32>)
      -> (tensor<?x?x128xf32>, tensor<2x8x32xbf16>, tensor<16xf16>, tensor<4x128xf32>) {
    %a = llama.linear %x, %w : tensor<?x?x64xf32>, tensor<128x64xf32>
    %b = llama.linear %xb, %wb : tensor<2x8x64xbf16>, tensor<32x64xbf16>
    %c = llama.linear %v, %wh : tensor<64xf16>, tensor<16x64xf16>
    // A dynamic feature dimension is accepted; the result takes out_features.
    %d = llama.linear %xd, %w : tensor<4x?xf32>, tensor<128x64xf32>
    return %a, %b, %c, %d
        : tensor<?x?x128xf32>, tensor<2x8x32xbf16>, tensor<16xf16>, tensor<4x128xf32>
  }

  // CHECK-LABEL: func.func @matmul
  // CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[M:.*]]: tensor<16x32xf32>, %[[MT:.*]]: tensor<32x16xf32>, %[[D:.*]]: tensor<?x4x8x16xbf16>, %[[E:.*]]: tensor<2x?x16x8xbf16>, %[[P:.*]]: tensor<8x16xf16>, %[[R:.*]]: tensor<16x?xf16>)
  // CHECK-NEXT: %[[S:.*]] = llama.matmul %[[Q]], %[[K]] transpose_rhs : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  // CHECK-NEXT: %[[A:.*]] = llama.matmul %[[S]], %[[Q]] : tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.matmul %[[A]], %[[M]] : tensor<2x4x8x16xf32>, tensor<16x32xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.matmul %[[A]], %[[MT]] transpose_rhs : tensor<2x4x8x16xf32>, tensor<32x16xf32>
  // CHECK-NEXT: %[[F:.*]] = llama.matmul %[[D]], %[[E]] : tensor<?x4x8x16xbf16>, tensor<2x?x16x8xbf16>
  // CHECK-NEXT: %[[G:.*]] = llama.matmul %[[P]], %[[R]] : tensor<8x16xf16>, tensor<16x?xf16>
  // CHECK-NEXT: return %[[B]], %[[C]], %[[F]], %[[G]] : tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>, tensor<2x4x8x8xbf16>, tensor<8x?xf16>
  func.func @matmul(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>,
                    %m: tensor<16x32xf32>, %mt: tensor<32x16xf32>,
                    %d: tensor<?x4x8x16xbf16>, %e: tensor<2x?x16x8xbf16>,
                    %p: tensor<8x16xf16>, %r: tensor<16x?xf16>)
      -> (tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>, tensor<2x4x8x8xbf16>, tensor<8x?xf16>) {
    // Batched, rhs transposed (scores = q k^T).
    %s = llama.matmul %q, %k transpose_rhs : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
    // Batched, rhs not transposed.
    %a = llama.matmul %s, %q : tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>
    // Shared rhs (a matrix), with and without transpose_rhs.
    %b = llama.matmul %a, %m : tensor<2x4x8x16xf32>, tensor<16x32xf32>
    %c = llama.matmul %a, %mt transpose_rhs : tensor<2x4x8x16xf32>, tensor<32x16xf32>
    // Dynamic batch dims meet the other side's static ones.
    %f = llama.matmul %d, %e : tensor<?x4x8x16xbf16>, tensor<2x?x16x8xbf16>
    // Plain matrices, dynamic n.
    %g = llama.matmul %p, %r : tensor<8x16xf16>, tensor<16x?xf16>
    return %b, %c, %f, %g
        : tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>, tensor<2x4x8x8xbf16>, tensor<8x?xf16>
  }

  // CHECK-LABEL: func.func @rms_norm
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[G:.*]]: tensor<64xf32>, %[[XB:.*]]: tensor<2x64xbf16>, %[[GB:.*]]: tensor<64xbf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.rms_norm %[[X]], %[[G]] eps 1.000000e-05 : tensor<?x?x64xf32>, tensor<64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.rms_norm %[[XB]], %[[GB]] eps 5.000000e-06 : tensor<2x64xbf16>, tensor<64xbf16>
  // CHECK-NEXT: return %[[A]], %[[B]] : tensor<?x?x64xf32>, tensor<2x64xbf16>
  func.func @rms_norm(%x: tensor<?x?x64xf32>, %g: tensor<64xf32>,
                      %xb: tensor<2x64xbf16>, %gb: tensor<64xbf16>)
      -> (tensor<?x?x64xf32>, tensor<2x64xbf16>) {
    %a = llama.rms_norm %x, %g eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %b = llama.rms_norm %xb, %gb eps 5.0e-06 : tensor<2x64xbf16>, tensor<64xbf16>
    return %a, %b : tensor<?x?x64xf32>, tensor<2x64xbf16>
  }

  // CHECK-LABEL: func.func @rope
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x4x16xf32>, %[[Y:.*]]: tensor<1x1x2x16xbf16>, %[[POS:.*]]: index)
  // CHECK-NEXT: %[[A:.*]] = llama.rope %[[X]] theta 1.000000e+04 : tensor<?x?x4x16xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.rope %[[Y]] theta 1.000000e+06 offset %[[POS]] : tensor<1x1x2x16xbf16>
  // CHECK-NEXT: return %[[A]], %[[B]] : tensor<?x?x4x16xf32>, tensor<1x1x2x16xbf16>
  func.func @rope(%x: tensor<?x?x4x16xf32>, %y: tensor<1x1x2x16xbf16>, %pos: index)
      -> (tensor<?x?x4x16xf32>, tensor<1x1x2x16xbf16>) {
    %a = llama.rope %x theta 1.0e+04 : tensor<?x?x4x16xf32>
    %b = llama.rope %y theta 1.0e+06 offset %pos : tensor<1x1x2x16xbf16>
    return %a, %b : tensor<?x?x4x16xf32>, tensor<1x1x2x16xbf16>
  }

  // CHECK-LABEL: func.func @attention
  // CHECK-SAME: (%[[Q:.*]]: tensor<?x?x4x16xf32>, %[[K:.*]]: tensor<?x?x2x16xf32>, %[[V:.*]]: tensor<?x?x2x16xf32>, %[[QS:.*]]: tensor<2x8x4x16xbf16>, %[[KS:.*]]: tensor<2x12x4x16xbf16>, %[[QH:.*]]: tensor<1x1x8x32xf16>, %[[KH:.*]]: tensor<1x?x1x32xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.attention %[[Q]], %[[K]], %[[V]] causal : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.attention %[[Q]], %[[K]], %[[V]] causal window 4 : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.attention %[[QS]], %[[KS]], %[[KS]] scale 1.250000e-01 : tensor<2x8x4x16xbf16>, tensor<2x12x4x16xbf16>, tensor<2x12x4x16xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.attention %[[QS]], %[[KS]], %[[KS]] causal window 8 scale 2.500000e-01 : tensor<2x8x4x16xbf16>, tensor<2x12x4x16xbf16>, tensor<2x12x4x16xbf16>
  // CHECK-NEXT: %[[E:.*]] = llama.attention %[[QH]], %[[KH]], %[[KH]] causal : tensor<1x1x8x32xf16>, tensor<1x?x1x32xf16>, tensor<1x?x1x32xf16>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]], %[[D]], %[[E]] : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<2x8x4x16xbf16>, tensor<2x8x4x16xbf16>, tensor<1x1x8x32xf16>
  func.func @attention(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>,
                       %v: tensor<?x?x2x16xf32>, %qs: tensor<2x8x4x16xbf16>,
                       %ks: tensor<2x12x4x16xbf16>, %qh: tensor<1x1x8x32xf16>,
                       %kh: tensor<1x?x1x32xf16>)
      -> (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<2x8x4x16xbf16>,
          tensor<2x8x4x16xbf16>, tensor<1x1x8x32xf16>) {
    // Causal, grouped-query (4 query heads, 2 KV heads).
    %a = llama.attention %q, %k, %v causal
        : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
    // Sliding window.
    %b = llama.attention %q, %k, %v causal window 4
        : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
    // Multi-head, not causal, explicit scale, longer keys than queries.
    %c = llama.attention %qs, %ks, %ks scale 1.25e-01
        : tensor<2x8x4x16xbf16>, tensor<2x12x4x16xbf16>, tensor<2x12x4x16xbf16>
    // Every option at once.
    %d = llama.attention %qs, %ks, %ks causal window 8 scale 2.5e-01
        : tensor<2x8x4x16xbf16>, tensor<2x12x4x16xbf16>, tensor<2x12x4x16xbf16>
    // Multi-query (one KV head), a decoding step against a dynamic cache.
    %e = llama.attention %qh, %kh, %kh causal
        : tensor<1x1x8x32xf16>, tensor<1x?x1x32xf16>, tensor<1x?x1x32xf16>
    return %a, %b, %c, %d, %e
        : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<2x8x4x16xbf16>,
          tensor<2x8x4x16xbf16>, tensor<1x1x8x32xf16>
  }

  // CHECK-LABEL: func.func @softmax
  // CHECK-NEXT: llama.softmax %{{.*}} : tensor<2x4x8x8xf32>
  // CHECK-NEXT: llama.softmax %{{.*}} : tensor<?x?xbf16>
  // CHECK-NEXT: llama.softmax %{{.*}} : tensor<3xf16>
  func.func @softmax(%a: tensor<2x4x8x8xf32>, %b: tensor<?x?xbf16>, %c: tensor<3xf16>)
      -> (tensor<2x4x8x8xf32>, tensor<?x?xbf16>, tensor<3xf16>) {
    %0 = llama.softmax %a : tensor<2x4x8x8xf32>
    %1 = llama.softmax %b : tensor<?x?xbf16>
    %2 = llama.softmax %c : tensor<3xf16>
    return %0, %1, %2 : tensor<2x4x8x8xf32>, tensor<?x?xbf16>, tensor<3xf16>
  }

  // CHECK-LABEL: func.func @cross_entropy
  // CHECK-SAME: (%[[L:.*]]: tensor<?x?x256xf32>, %[[T:.*]]: tensor<?x?xi32>, %[[LB:.*]]: tensor<8x256xbf16>, %[[TB:.*]]: tensor<8xi64>)
  // CHECK-NEXT: %[[A:.*]] = llama.cross_entropy %[[L]], %[[T]] : tensor<?x?x256xf32>, tensor<?x?xi32>
  // CHECK-NEXT: %[[B:.*]] = llama.cross_entropy %[[L]], %[[T]] ignore_index -100 : tensor<?x?x256xf32>, tensor<?x?xi32>
  // The default ignore_index (-1) is not printed.
  // CHECK-NEXT: %[[C:.*]] = llama.cross_entropy %[[LB]], %[[TB]] : tensor<8x256xbf16>, tensor<8xi64>
  // CHECK-NEXT: %[[D:.*]] = llama.cross_entropy %[[LB]], %[[TB]] ignore_index 0 : tensor<8x256xbf16>, tensor<8xi64>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]], %[[D]] : tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>
  func.func @cross_entropy(%l: tensor<?x?x256xf32>, %t: tensor<?x?xi32>,
                           %lb: tensor<8x256xbf16>, %tb: tensor<8xi64>)
      -> (tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>) {
    %a = llama.cross_entropy %l, %t : tensor<?x?x256xf32>, tensor<?x?xi32>
    %b = llama.cross_entropy %l, %t ignore_index -100 : tensor<?x?x256xf32>, tensor<?x?xi32>
    %c = llama.cross_entropy %lb, %tb ignore_index -1 : tensor<8x256xbf16>, tensor<8xi64>
    %d = llama.cross_entropy %lb, %tb ignore_index 0 : tensor<8x256xbf16>, tensor<8xi64>
    return %a, %b, %c, %d : tensor<f32>, tensor<f32>, tensor<f32>, tensor<f32>
  }

  // CHECK-LABEL: func.func @unary
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[Y:.*]]: tensor<2x8xbf16>, %[[Z:.*]]: tensor<4xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.silu %[[X]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.sigmoid %[[A]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.neg %[[B]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[D:.*]] = llama.exp %[[C]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[E:.*]] = llama.log %[[D]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[F:.*]] = llama.sqrt %[[E]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[G:.*]] = llama.rsqrt %[[F]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[H:.*]] = llama.silu %[[Y]] : tensor<2x8xbf16>
  // CHECK-NEXT: %[[I:.*]] = llama.rsqrt %[[Z]] : tensor<4xf16>
  // CHECK-NEXT: return %[[G]], %[[H]], %[[I]] : tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>
  func.func @unary(%x: tensor<?x?x64xf32>, %y: tensor<2x8xbf16>, %z: tensor<4xf16>)
      -> (tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>) {
    %a = llama.silu %x : tensor<?x?x64xf32>
    %b = llama.sigmoid %a : tensor<?x?x64xf32>
    %c = llama.neg %b : tensor<?x?x64xf32>
    %d = llama.exp %c : tensor<?x?x64xf32>
    %e = llama.log %d : tensor<?x?x64xf32>
    %f = llama.sqrt %e : tensor<?x?x64xf32>
    %g = llama.rsqrt %f : tensor<?x?x64xf32>
    %h = llama.silu %y : tensor<2x8xbf16>
    %i = llama.rsqrt %z : tensor<4xf16>
    return %g, %h, %i : tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>
  }

  // CHECK-LABEL: func.func @binary
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[Y:.*]]: tensor<?x?x64xf32>, %[[P:.*]]: tensor<2x8xbf16>, %[[Q:.*]]: tensor<4xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.add %[[X]], %[[Y]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.sub %[[A]], %[[Y]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.mul %[[B]], %[[X]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[D:.*]] = llama.div %[[C]], %[[Y]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[E:.*]] = llama.max %[[D]], %[[X]] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[F:.*]] = llama.mul %[[P]], %[[P]] : tensor<2x8xbf16>
  // CHECK-NEXT: %[[G:.*]] = llama.div %[[Q]], %[[Q]] : tensor<4xf16>
  // CHECK-NEXT: return %[[E]], %[[F]], %[[G]] : tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>
  func.func @binary(%x: tensor<?x?x64xf32>, %y: tensor<?x?x64xf32>, %p: tensor<2x8xbf16>,
                    %q: tensor<4xf16>)
      -> (tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>) {
    %a = llama.add %x, %y : tensor<?x?x64xf32>
    %b = llama.sub %a, %y : tensor<?x?x64xf32>
    %c = llama.mul %b, %x : tensor<?x?x64xf32>
    %d = llama.div %c, %y : tensor<?x?x64xf32>
    %e = llama.max %d, %x : tensor<?x?x64xf32>
    %f = llama.mul %p, %p : tensor<2x8xbf16>
    %g = llama.div %q, %q : tensor<4xf16>
    return %e, %f, %g : tensor<?x?x64xf32>, tensor<2x8xbf16>, tensor<4xf16>
  }

  // CHECK-LABEL: func.func @scale_and_cast
  // CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[Y:.*]]: tensor<2x8xf32>, %[[Z:.*]]: tensor<3xbf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.scale %[[X]] by 5.000000e-01 : tensor<?x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.scale %[[Y]] by -2.000000e+00 : tensor<2x8xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.cast %[[A]] : tensor<?x64xf32> to tensor<?x64xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.cast %[[B]] : tensor<2x8xf32> to tensor<2x8xf16>
  // CHECK-NEXT: %[[E:.*]] = llama.cast %[[Z]] : tensor<3xbf16> to tensor<3xf32>
  // CHECK-NEXT: %[[F:.*]] = llama.scale %[[D]] by 1.250000e-01 : tensor<2x8xf16>
  // CHECK-NEXT: return %[[C]], %[[F]], %[[E]] : tensor<?x64xbf16>, tensor<2x8xf16>, tensor<3xf32>
  func.func @scale_and_cast(%x: tensor<?x64xf32>, %y: tensor<2x8xf32>, %z: tensor<3xbf16>)
      -> (tensor<?x64xbf16>, tensor<2x8xf16>, tensor<3xf32>) {
    %a = llama.scale %x by 5.0e-01 : tensor<?x64xf32>
    %b = llama.scale %y by -2.0 : tensor<2x8xf32>
    %c = llama.cast %a : tensor<?x64xf32> to tensor<?x64xbf16>
    %d = llama.cast %b : tensor<2x8xf32> to tensor<2x8xf16>
    %e = llama.cast %z : tensor<3xbf16> to tensor<3xf32>
    %f = llama.scale %d by 0.125 : tensor<2x8xf16>
    return %c, %f, %e : tensor<?x64xbf16>, tensor<2x8xf16>, tensor<3xf32>
  }
}

//===----------------------------------------------------------------------------------===//
// Shape ops.
//===----------------------------------------------------------------------------------===//

llama.model @shapes config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 4,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {

  // CHECK-LABEL: func.func @split_merge
  // CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[Y:.*]]: tensor<2x?x24xbf16>, %[[Z:.*]]: tensor<6x?xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.split_dim %[[X]] dim 2 into [4, 16] : tensor<?x?x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.merge_dims %[[A]] dim 2 : tensor<?x?x4x16xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.split_dim %[[Y]] dim 2 into [2, 3, 4] : tensor<2x?x24xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.merge_dims %[[C]] dim 3 : tensor<2x?x2x3x4xbf16>
  // CHECK-NEXT: %[[E:.*]] = llama.merge_dims %[[C]] dim 0 : tensor<2x?x2x3x4xbf16>
  // CHECK-NEXT: %[[F:.*]] = llama.split_dim %[[Y]] dim 1 into [4, 8] : tensor<2x?x24xbf16>
  // CHECK-NEXT: %[[G:.*]] = llama.split_dim %[[Z]] dim 0 into [2, 3] : tensor<6x?xf16>
  // CHECK-NEXT: return %[[B]], %[[D]], %[[E]], %[[F]], %[[G]] : tensor<?x?x64xf32>, tensor<2x?x2x12xbf16>, tensor<?x2x3x4xbf16>, tensor<2x4x8x24xbf16>, tensor<2x3x?xf16>
  func.func @split_merge(%x: tensor<?x?x64xf32>, %y: tensor<2x?x24xbf16>, %z: tensor<6x?xf16>)
      -> (tensor<?x?x64xf32>, tensor<2x?x2x12xbf16>, tensor<?x2x3x4xbf16>,
          tensor<2x4x8x24xbf16>, tensor<2x3x?xf16>) {
    %a = llama.split_dim %x dim 2 into [4, 16] : tensor<?x?x64xf32>
    %b = llama.merge_dims %a dim 2 : tensor<?x?x4x16xf32>
    %c = llama.split_dim %y dim 2 into [2, 3, 4] : tensor<2x?x24xbf16>
    %d = llama.merge_dims %c dim 3 : tensor<2x?x2x3x4xbf16>
    // Merging with a dynamic dimension gives a dynamic one.
    %e = llama.merge_dims %c dim 0 : tensor<2x?x2x3x4xbf16>
    // Splitting a dynamic dimension gives the static sizes.
    %f = llama.split_dim %y dim 1 into [4, 8] : tensor<2x?x24xbf16>
    %g = llama.split_dim %z dim 0 into [2, 3] : tensor<6x?xf16>
    return %b, %d, %e, %f, %g
        : tensor<?x?x64xf32>, tensor<2x?x2x12xbf16>, tensor<?x2x3x4xbf16>,
          tensor<2x4x8x24xbf16>, tensor<2x3x?xf16>
  }

  // CHECK-LABEL: func.func @transpose
  // CHECK-SAME: (%[[X:.*]]: tensor<?x8x4x16xf32>, %[[Y:.*]]: tensor<3x5xbf16>, %[[Z:.*]]: tensor<7xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.transpose %[[X]] [0, 2, 1, 3] : tensor<?x8x4x16xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.transpose %[[A]] [3, 2, 1, 0] : tensor<?x4x8x16xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.transpose %[[Y]] [1, 0] : tensor<3x5xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.transpose %[[Z]] [0] : tensor<7xf16>
  // CHECK-NEXT: return %[[B]], %[[C]], %[[D]] : tensor<16x8x4x?xf32>, tensor<5x3xbf16>, tensor<7xf16>
  func.func @transpose(%x: tensor<?x8x4x16xf32>, %y: tensor<3x5xbf16>, %z: tensor<7xf16>)
      -> (tensor<16x8x4x?xf32>, tensor<5x3xbf16>, tensor<7xf16>) {
    %a = llama.transpose %x [0, 2, 1, 3] : tensor<?x8x4x16xf32>
    %b = llama.transpose %a [3, 2, 1, 0] : tensor<?x4x8x16xf32>
    %c = llama.transpose %y [1, 0] : tensor<3x5xbf16>
    %d = llama.transpose %z [0] : tensor<7xf16>
    return %b, %c, %d : tensor<16x8x4x?xf32>, tensor<5x3xbf16>, tensor<7xf16>
  }

  // CHECK-LABEL: func.func @concat
  // CHECK-SAME: (%[[A:.*]]: tensor<176x64xf32>, %[[B:.*]]: tensor<176x64xf32>, %[[C:.*]]: tensor<?x8xbf16>, %[[D:.*]]: tensor<2x?xbf16>, %[[E:.*]]: tensor<4xf16>)
  // CHECK-NEXT: %[[R0:.*]] = llama.concat %[[A]], %[[B]] dim 0 : tensor<176x64xf32>, tensor<176x64xf32>
  // CHECK-NEXT: %[[R1:.*]] = llama.concat %[[A]], %[[B]], %[[A]] dim 1 : tensor<176x64xf32>, tensor<176x64xf32>, tensor<176x64xf32>
  // CHECK-NEXT: %[[R2:.*]] = llama.concat %[[C]], %[[D]] dim 1 : tensor<?x8xbf16>, tensor<2x?xbf16>
  // CHECK-NEXT: %[[R3:.*]] = llama.concat %[[C]], %[[C]] dim 0 : tensor<?x8xbf16>, tensor<?x8xbf16>
  // CHECK-NEXT: %[[R4:.*]] = llama.concat %[[E]] dim 0 : tensor<4xf16>
  // CHECK-NEXT: return %[[R0]], %[[R1]], %[[R2]], %[[R3]], %[[R4]] : tensor<352x64xf32>, tensor<176x192xf32>, tensor<2x?xbf16>, tensor<?x8xbf16>, tensor<4xf16>
  func.func @concat(%a: tensor<176x64xf32>, %b: tensor<176x64xf32>, %c: tensor<?x8xbf16>,
                    %d: tensor<2x?xbf16>, %e: tensor<4xf16>)
      -> (tensor<352x64xf32>, tensor<176x192xf32>, tensor<2x?xbf16>, tensor<?x8xbf16>,
          tensor<4xf16>) {
    %r0 = llama.concat %a, %b dim 0 : tensor<176x64xf32>, tensor<176x64xf32>
    %r1 = llama.concat %a, %b, %a dim 1
        : tensor<176x64xf32>, tensor<176x64xf32>, tensor<176x64xf32>
    // Other dimensions meet (? and 2 give 2); a dynamic size on the axis stays dynamic.
    %r2 = llama.concat %c, %d dim 1 : tensor<?x8xbf16>, tensor<2x?xbf16>
    %r3 = llama.concat %c, %c dim 0 : tensor<?x8xbf16>, tensor<?x8xbf16>
    %r4 = llama.concat %e dim 0 : tensor<4xf16>
    return %r0, %r1, %r2, %r3, %r4
        : tensor<352x64xf32>, tensor<176x192xf32>, tensor<2x?xbf16>, tensor<?x8xbf16>,
          tensor<4xf16>
  }

  // CHECK-LABEL: func.func @slice
  // CHECK-SAME: (%[[X:.*]]: tensor<352x64xf32>, %[[Y:.*]]: tensor<?x?x64xbf16>, %[[Z:.*]]: tensor<4xf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.slice %[[X]] dim 0 [0, 176] : tensor<352x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.slice %[[X]] dim 0 [176, 176] : tensor<352x64xf32>
  // CHECK-NEXT: %[[C:.*]] = llama.slice %[[Y]] dim 1 [3, 5] : tensor<?x?x64xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.slice %[[Y]] dim 2 [32, 32] : tensor<?x?x64xbf16>
  // CHECK-NEXT: %[[E:.*]] = llama.slice %[[Z]] dim 0 [3, 1] : tensor<4xf16>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]], %[[D]], %[[E]] : tensor<176x64xf32>, tensor<176x64xf32>, tensor<?x5x64xbf16>, tensor<?x?x32xbf16>, tensor<1xf16>
  func.func @slice(%x: tensor<352x64xf32>, %y: tensor<?x?x64xbf16>, %z: tensor<4xf16>)
      -> (tensor<176x64xf32>, tensor<176x64xf32>, tensor<?x5x64xbf16>, tensor<?x?x32xbf16>,
          tensor<1xf16>) {
    %a = llama.slice %x dim 0 [0, 176] : tensor<352x64xf32>
    %b = llama.slice %x dim 0 [176, 176] : tensor<352x64xf32>
    // Slicing a dynamic dimension gives the static size.
    %c = llama.slice %y dim 1 [3, 5] : tensor<?x?x64xbf16>
    %d = llama.slice %y dim 2 [32, 32] : tensor<?x?x64xbf16>
    %e = llama.slice %z dim 0 [3, 1] : tensor<4xf16>
    return %a, %b, %c, %d, %e
        : tensor<176x64xf32>, tensor<176x64xf32>, tensor<?x5x64xbf16>, tensor<?x?x32xbf16>,
          tensor<1xf16>
  }

  // A function calling another, as @loss calls @forward.
  // CHECK-LABEL: func.func @caller
  // CHECK-NEXT: %[[R:[0-9]+]]:3 = call @transpose(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<?x8x4x16xf32>, tensor<3x5xbf16>, tensor<7xf16>) -> (tensor<16x8x4x?xf32>, tensor<5x3xbf16>, tensor<7xf16>)
  // CHECK-NEXT: %[[S:.*]] = llama.softmax %[[R]]#0 : tensor<16x8x4x?xf32>
  // CHECK-NEXT: return %[[S]] : tensor<16x8x4x?xf32>
  func.func @caller(%x: tensor<?x8x4x16xf32>, %y: tensor<3x5xbf16>, %z: tensor<7xf16>)
      -> tensor<16x8x4x?xf32> {
    %r:3 = func.call @transpose(%x, %y, %z)
        : (tensor<?x8x4x16xf32>, tensor<3x5xbf16>, tensor<7xf16>)
          -> (tensor<16x8x4x?xf32>, tensor<5x3xbf16>, tensor<7xf16>)
    %s = llama.softmax %r#0 : tensor<16x8x4x?xf32>
    return %s : tensor<16x8x4x?xf32>
  }
}

//===----------------------------------------------------------------------------------===//
// Backward, training and fused ops, and the `state` parameters the training step declares.
//===----------------------------------------------------------------------------------===//

// CHECK-LABEL: llama.model @training
// CHECK-SAME: config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
// CHECK-SAME: vocab_size = 256, max_seq_len = 32, norm_eps = 1.000000e-05,
// CHECK-SAME: rope_theta = 1.000000e+04> {
// Without the flag, `state` is not printed.
// CHECK-NEXT:   llama.param @norm : tensor<64xf32> init ones{{$}}
// CHECK-NEXT:   llama.param @output : tensor<256x64xf32> init normal(2.000000e-02){{$}}
// CHECK-NEXT:   llama.param @adamw.m.norm : tensor<64xf32> init zeros state
// CHECK-NEXT:   llama.param @adamw.v.norm : tensor<64xf32> init zeros state
// CHECK-NEXT:   llama.param @grad_acc.output : tensor<256x64xf32> init zeros state
// CHECK-NEXT:   llama.param @ema.norm : tensor<64xf32> init normal(1.000000e-02) state
llama.model @training config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2,
    ffn_dim = 128, vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @norm : tensor<64xf32> init ones
  llama.param @output : tensor<256x64xf32> init normal(2.0e-02)
  llama.param @adamw.m.norm : tensor<64xf32> init zeros state
  llama.param @adamw.v.norm : tensor<64xf32> init zeros state
  llama.param @grad_acc.output : tensor<256x64xf32> init zeros state
  llama.param @ema.norm : tensor<64xf32> init normal(1.0e-02) state

  // CHECK-LABEL: func.func @pad
  // CHECK-SAME: (%[[X:.*]]: tensor<176x64xf32>, %[[Y:.*]]: tensor<2x3x8xbf16>)
  // CHECK-NEXT: %[[A:.*]] = llama.pad %[[X]] dim 0 [176, 0] : tensor<176x64xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.pad %[[Y]] dim 2 [1, 2] : tensor<2x3x8xbf16>
  // CHECK-NEXT: %[[C:.*]] = llama.pad %[[Y]] dim 1 [0, 0] : tensor<2x3x8xbf16>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]] : tensor<352x64xf32>, tensor<2x3x11xbf16>, tensor<2x3x8xbf16>
  func.func @pad(%x: tensor<176x64xf32>, %y: tensor<2x3x8xbf16>)
      -> (tensor<352x64xf32>, tensor<2x3x11xbf16>, tensor<2x3x8xbf16>) {
    %a = llama.pad %x dim 0 [176, 0] : tensor<176x64xf32>
    %b = llama.pad %y dim 2 [1, 2] : tensor<2x3x8xbf16>
    // Padding by nothing is accepted.
    %c = llama.pad %y dim 1 [0, 0] : tensor<2x3x8xbf16>
    return %a, %b, %c : tensor<352x64xf32>, tensor<2x3x11xbf16>, tensor<2x3x8xbf16>
  }

  // CHECK-LABEL: func.func @rope_inverse
  // CHECK-SAME: (%[[X:.*]]: tensor<2x8x4x16xf32>, %[[POS:.*]]: index)
  // CHECK-NEXT: %[[A:.*]] = llama.rope %[[X]] theta 1.000000e+04 inverse : tensor<2x8x4x16xf32>
  // CHECK-NEXT: %[[B:.*]] = llama.rope %[[A]] theta 1.000000e+04 offset %[[POS]] inverse : tensor<2x8x4x16xf32>
  // CHECK-NEXT: return %[[B]] : tensor<2x8x4x16xf32>
  func.func @rope_inverse(%x: tensor<2x8x4x16xf32>, %pos: index) -> tensor<2x8x4x16xf32> {
    %a = llama.rope %x theta 1.0e+04 inverse : tensor<2x8x4x16xf32>
    %b = llama.rope %a theta 1.0e+04 offset %pos inverse : tensor<2x8x4x16xf32>
    return %b : tensor<2x8x4x16xf32>
  }

  // CHECK-LABEL: func.func @backward
  // CHECK-SAME: (%[[TOK:.*]]: tensor<2x8xi32>, %[[DH:.*]]: tensor<2x8x64xf32>, %[[X:.*]]: tensor<2x8x64xf32>, %[[DY:.*]]: tensor<2x8x128xf32>, %[[G:.*]]: tensor<64xf32>, %[[Q:.*]]: tensor<2x8x4x16xf32>, %[[K:.*]]: tensor<2x8x2x16xf32>, %[[DO:.*]]: tensor<2x8x4x16xf32>, %[[P:.*]]: tensor<2x4x8x8xf32>, %[[H:.*]]: tensor<2x8x128xbf16>, %[[L:.*]]: tensor<2x8x256xf32>, %[[DL:.*]]: tensor<f32>)
  // CHECK-NEXT: %[[DE:.*]] = llama.embedding_grad %[[TOK]], %[[DH]] vocab 256 : tensor<2x8xi32>, tensor<2x8x64xf32>
  // CHECK-NEXT: %[[DW:.*]] = llama.linear_weight_grad %[[DY]], %[[X]] : tensor<2x8x128xf32>, tensor<2x8x64xf32>
  // CHECK-NEXT: %[[DX:.*]], %[[DG:.*]] = llama.rms_norm_grad %[[X]], %[[G]], %[[DH]] eps 1.000000e-05 : tensor<2x8x64xf32>, tensor<64xf32>, tensor<2x8x64xf32>
  // CHECK-NEXT: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = llama.attention_grad %[[Q]], %[[K]], %[[K]], %[[DO]] causal window 4 scale 2.500000e-01 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4x16xf32>
  // CHECK-NEXT: %[[DS:.*]] = llama.softmax_grad %[[P]], %[[P]] : tensor<2x4x8x8xf32>
  // CHECK-NEXT: %[[DSI:.*]] = llama.silu_grad %[[H]], %[[H]] : tensor<2x8x128xbf16>
  // CHECK-NEXT: %[[DLG:.*]] = llama.cross_entropy_grad %[[L]], %[[TOK]], %[[DL]] ignore_index -100 : tensor<2x8x256xf32>, tensor<2x8xi32>
  // CHECK-NEXT: return %[[DE]], %[[DW]], %[[DX]], %[[DG]], %[[DQ]], %[[DK]], %[[DV]], %[[DS]], %[[DSI]], %[[DLG]] : tensor<256x64xf32>, tensor<128x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>, tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x4x8x8xf32>, tensor<2x8x128xbf16>, tensor<2x8x256xf32>
  func.func @backward(%tok: tensor<2x8xi32>, %dh: tensor<2x8x64xf32>, %x: tensor<2x8x64xf32>,
                      %dy: tensor<2x8x128xf32>, %g: tensor<64xf32>,
                      %q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>,
                      %do: tensor<2x8x4x16xf32>, %p: tensor<2x4x8x8xf32>,
                      %h: tensor<2x8x128xbf16>, %l: tensor<2x8x256xf32>, %dl: tensor<f32>)
      -> (tensor<256x64xf32>, tensor<128x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>,
          tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>,
          tensor<2x4x8x8xf32>, tensor<2x8x128xbf16>, tensor<2x8x256xf32>) {
    %de = llama.embedding_grad %tok, %dh vocab 256 : tensor<2x8xi32>, tensor<2x8x64xf32>
    %dw = llama.linear_weight_grad %dy, %x : tensor<2x8x128xf32>, tensor<2x8x64xf32>
    %dx, %dg = llama.rms_norm_grad %x, %g, %dh eps 1.0e-05
        : tensor<2x8x64xf32>, tensor<64xf32>, tensor<2x8x64xf32>
    %dq, %dk, %dv = llama.attention_grad %q, %k, %k, %do causal window 4 scale 2.5e-01
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>,
          tensor<2x8x4x16xf32>
    %ds = llama.softmax_grad %p, %p : tensor<2x4x8x8xf32>
    %dsi = llama.silu_grad %h, %h : tensor<2x8x128xbf16>
    %dlg = llama.cross_entropy_grad %l, %tok, %dl ignore_index -100
        : tensor<2x8x256xf32>, tensor<2x8xi32>
    return %de, %dw, %dx, %dg, %dq, %dk, %dv, %ds, %dsi, %dlg
        : tensor<256x64xf32>, tensor<128x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>,
          tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>,
          tensor<2x4x8x8xf32>, tensor<2x8x128xbf16>, tensor<2x8x256xf32>
  }

  // One optimizer step on @norm, with its moments in `state` parameters, and a gradient
  // accumulated into a `state` parameter.
  // CHECK-LABEL: func.func @step
  // CHECK-SAME: (%[[G:.*]]: tensor<64xf32>, %[[G2:.*]]: tensor<256x64xf32>, %[[N:.*]]: tensor<f32>, %[[S:.*]]: tensor<i64>, %[[LR:.*]]: tensor<f32>, %[[TOTAL:.*]]: tensor<i64>) -> (tensor<f32>, tensor<f32>)
  // CHECK-NEXT: %[[COEF:.*]], %[[NORM:.*]] = llama.grad_clip %[[G]], %[[G2]] count %[[N]] max_norm 1.000000e+00 : tensor<64xf32>, tensor<256x64xf32>
  // CHECK-NEXT: %[[LRT:.*]] = llama.lr_schedule %[[S]], %[[LR]], %[[TOTAL]] warmup 2000 floor 1.000000e-01
  // CHECK-NEXT: %[[P:.*]] = llama.get_param @norm : tensor<64xf32>
  // CHECK-NEXT: %[[M:.*]] = llama.get_param @adamw.m.norm : tensor<64xf32>
  // CHECK-NEXT: %[[V:.*]] = llama.get_param @adamw.v.norm : tensor<64xf32>
  // CHECK-NEXT: %[[P1:.*]], %[[M1:.*]], %[[V1:.*]] = llama.adamw %[[P]], %[[G]], %[[M]], %[[V]] lr %[[LRT]] step %[[S]] grad_scale %[[COEF]] beta1 9.000000e-01 beta2 0.94999999999999996 eps 1.000000e-05 weight_decay 1.000000e-01 : tensor<64xf32>
  // CHECK-NEXT: llama.set_param @norm = %[[P1]] : tensor<64xf32>
  // CHECK-NEXT: llama.set_param @adamw.m.norm = %[[M1]] : tensor<64xf32>
  // CHECK-NEXT: llama.set_param @adamw.v.norm = %[[V1]] : tensor<64xf32>
  // CHECK-NEXT: %[[ACC:.*]] = llama.get_param @grad_acc.output : tensor<256x64xf32>
  // CHECK-NEXT: %[[SUM:.*]] = llama.add %[[ACC]], %[[G2]] : tensor<256x64xf32>
  // CHECK-NEXT: llama.set_param @grad_acc.output = %[[SUM]] : tensor<256x64xf32>
  // CHECK-NEXT: return %[[NORM]], %[[LRT]] : tensor<f32>, tensor<f32>
  func.func @step(%g: tensor<64xf32>, %g2: tensor<256x64xf32>, %n: tensor<f32>,
                  %s: tensor<i64>, %lr: tensor<f32>, %total: tensor<i64>)
      -> (tensor<f32>, tensor<f32>) {
    %coef, %norm = llama.grad_clip %g, %g2 count %n max_norm 1.0
        : tensor<64xf32>, tensor<256x64xf32>
    %lrt = llama.lr_schedule %s, %lr, %total warmup 2000 floor 1.0e-01
    %p = llama.get_param @norm : tensor<64xf32>
    %m = llama.get_param @adamw.m.norm : tensor<64xf32>
    %v = llama.get_param @adamw.v.norm : tensor<64xf32>
    %p1, %m1, %v1 = llama.adamw %p, %g, %m, %v lr %lrt step %s grad_scale %coef
        beta1 0.9 beta2 0.95 eps 1.0e-05 weight_decay 0.1 : tensor<64xf32>
    llama.set_param @norm = %p1 : tensor<64xf32>
    llama.set_param @adamw.m.norm = %m1 : tensor<64xf32>
    llama.set_param @adamw.v.norm = %v1 : tensor<64xf32>
    %acc = llama.get_param @grad_acc.output : tensor<256x64xf32>
    %sum = llama.add %acc, %g2 : tensor<256x64xf32>
    llama.set_param @grad_acc.output = %sum : tensor<256x64xf32>
    return %norm, %lrt : tensor<f32>, tensor<f32>
  }

  // CHECK-LABEL: func.func @multi_adamw
  // CHECK-SAME: (%[[P0:.*]]: tensor<64xf32>, %[[P1:.*]]: tensor<256x64xf32>, %[[G0:.*]]: tensor<64xf32>, %[[G1:.*]]: tensor<256x64xf32>, %[[M0:.*]]: tensor<64xf32>, %[[M1:.*]]: tensor<256x64xf32>, %[[V0:.*]]: tensor<64xf32>, %[[V1:.*]]: tensor<256x64xf32>, %[[LR:.*]]: tensor<f32>, %[[S:.*]]: tensor<i64>, %[[C:.*]]: tensor<f32>)
  // CHECK-NEXT: %[[R:[0-9]+]]:6 = llama.multi_adamw params [%[[P0]], %[[P1]]] grads [%[[G0]], %[[G1]]] m [%[[M0]], %[[M1]]] v [%[[V0]], %[[V1]]] lr %[[LR]] step %[[S]] grad_scale %[[C]] beta1 9.000000e-01 beta2 0.94999999999999996 eps 1.000000e-05 weight_decays [0.000000e+00, 1.000000e-01] : (tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>)
  // CHECK-NEXT: return %[[R]]#0, %[[R]]#1, %[[R]]#2, %[[R]]#3, %[[R]]#4, %[[R]]#5 : tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>
  func.func @multi_adamw(%p0: tensor<64xf32>, %p1: tensor<256x64xf32>,
                         %g0: tensor<64xf32>, %g1: tensor<256x64xf32>,
                         %m0: tensor<64xf32>, %m1: tensor<256x64xf32>,
                         %v0: tensor<64xf32>, %v1: tensor<256x64xf32>,
                         %lr: tensor<f32>, %s: tensor<i64>, %c: tensor<f32>)
      -> (tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>,
          tensor<64xf32>, tensor<256x64xf32>) {
    %r:6 = llama.multi_adamw params [%p0, %p1] grads [%g0, %g1] m [%m0, %m1] v [%v0, %v1]
        lr %lr step %s grad_scale %c beta1 0.9 beta2 0.95 eps 1.0e-05
        weight_decays [0.0, 0.1]
        : (tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>,
           tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>,
           tensor<f32>, tensor<i64>, tensor<f32>)
          -> (tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>,
              tensor<64xf32>, tensor<256x64xf32>)
    return %r#0, %r#1, %r#2, %r#3, %r#4, %r#5
        : tensor<64xf32>, tensor<256x64xf32>, tensor<64xf32>, tensor<256x64xf32>,
          tensor<64xf32>, tensor<256x64xf32>
  }

  // CHECK-LABEL: func.func @swiglu
  // CHECK-SAME: (%[[GU:.*]]: tensor<2x8x256xf32>, %[[GUB:.*]]: tensor<4x6xbf16>)
  // CHECK-NEXT: %[[M:.*]] = llama.swiglu %[[GU]] : tensor<2x8x256xf32>
  // CHECK-NEXT: %[[DGU:.*]] = llama.swiglu_grad %[[GU]], %[[M]] : tensor<2x8x256xf32>, tensor<2x8x128xf32>
  // CHECK-NEXT: %[[MB:.*]] = llama.swiglu %[[GUB]] : tensor<4x6xbf16>
  // CHECK-NEXT: return %[[DGU]], %[[MB]] : tensor<2x8x256xf32>, tensor<4x3xbf16>
  func.func @swiglu(%gu: tensor<2x8x256xf32>, %gub: tensor<4x6xbf16>)
      -> (tensor<2x8x256xf32>, tensor<4x3xbf16>) {
    %m = llama.swiglu %gu : tensor<2x8x256xf32>
    %dgu = llama.swiglu_grad %gu, %m : tensor<2x8x256xf32>, tensor<2x8x128xf32>
    %mb = llama.swiglu %gub : tensor<4x6xbf16>
    return %dgu, %mb : tensor<2x8x256xf32>, tensor<4x3xbf16>
  }

  // CHECK-LABEL: func.func @qkv_rope
  // CHECK-SAME: (%[[QKV:.*]]: tensor<2x8x128xf32>, %[[POS:.*]]: index, %[[QKVB:.*]]: tensor<1x1x96xbf16>)
  // CHECK-NEXT: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = llama.qkv_rope %[[QKV]] heads 4 kv_heads 2 theta 1.000000e+04 : tensor<2x8x128xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>
  // CHECK-NEXT: %[[QO:.*]], %[[KO:.*]], %[[VO:.*]] = llama.qkv_rope %[[QKVB]] heads 4 kv_heads 4 theta 5.000000e+05 offset %[[POS]] : tensor<1x1x96xbf16> -> tensor<1x1x4x8xbf16>, tensor<1x1x4x8xbf16>
  // CHECK-NEXT: %[[D:.*]] = llama.qkv_rope_grad %[[Q]], %[[K]], %[[V]] theta 1.000000e+04 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32> -> tensor<2x8x128xf32>
  // CHECK-NEXT: %[[DO:.*]] = llama.qkv_rope_grad %[[QO]], %[[KO]], %[[VO]] theta 5.000000e+05 offset %[[POS]] : tensor<1x1x4x8xbf16>, tensor<1x1x4x8xbf16> -> tensor<1x1x96xbf16>
  // CHECK-NEXT: return %[[D]], %[[DO]] : tensor<2x8x128xf32>, tensor<1x1x96xbf16>
  func.func @qkv_rope(%qkv: tensor<2x8x128xf32>, %pos: index, %qkvb: tensor<1x1x96xbf16>)
      -> (tensor<2x8x128xf32>, tensor<1x1x96xbf16>) {
    %q, %k, %v = llama.qkv_rope %qkv heads 4 kv_heads 2 theta 1.0e+04
        : tensor<2x8x128xf32> -> tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>
    // Multi-head (kv_heads == heads), decoding at an offset.
    %qo, %ko, %vo = llama.qkv_rope %qkvb heads 4 kv_heads 4 theta 5.0e+05 offset %pos
        : tensor<1x1x96xbf16> -> tensor<1x1x4x8xbf16>, tensor<1x1x4x8xbf16>
    %d = llama.qkv_rope_grad %q, %k, %v theta 1.0e+04
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32> -> tensor<2x8x128xf32>
    %do = llama.qkv_rope_grad %qo, %ko, %vo theta 5.0e+05 offset %pos
        : tensor<1x1x4x8xbf16>, tensor<1x1x4x8xbf16> -> tensor<1x1x96xbf16>
    return %d, %do : tensor<2x8x128xf32>, tensor<1x1x96xbf16>
  }

  // CHECK-LABEL: func.func @add_rms_norm
  // CHECK-SAME: (%[[X:.*]]: tensor<2x8x64xf32>, %[[R:.*]]: tensor<2x8x64xf32>, %[[W:.*]]: tensor<64xf32>)
  // CHECK-NEXT: %[[H:.*]], %[[HN:.*]] = llama.add_rms_norm %[[X]], %[[R]], %[[W]] eps 1.000000e-05 : tensor<2x8x64xf32>, tensor<64xf32>
  // CHECK-NEXT: %[[DX:.*]], %[[DW:.*]] = llama.add_rms_norm_grad %[[H]], %[[W]], %[[HN]], %[[X]] eps 1.000000e-05 : tensor<2x8x64xf32>, tensor<64xf32>
  // CHECK-NEXT: return %[[H]], %[[HN]], %[[DX]], %[[DW]] : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>
  func.func @add_rms_norm(%x: tensor<2x8x64xf32>, %r: tensor<2x8x64xf32>, %w: tensor<64xf32>)
      -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>) {
    %h, %hn = llama.add_rms_norm %x, %r, %w eps 1.0e-05 : tensor<2x8x64xf32>, tensor<64xf32>
    %dx, %dw = llama.add_rms_norm_grad %h, %w, %hn, %x eps 1.0e-05
        : tensor<2x8x64xf32>, tensor<64xf32>
    return %h, %hn, %dx, %dw
        : tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<64xf32>
  }

  // CHECK-LABEL: func.func @flash_attention
  // CHECK-SAME: (%[[Q:.*]]: tensor<2x8x4x16xf32>, %[[K:.*]]: tensor<2x8x2x16xf32>, %[[DO:.*]]: tensor<2x8x4x16xf32>, %[[QB:.*]]: tensor<1x4x2x8xbf16>, %[[KB:.*]]: tensor<1x6x2x8xbf16>)
  // CHECK-NEXT: %[[O:.*]], %[[LSE:.*]] = llama.flash_attention %[[Q]], %[[K]], %[[K]] causal window 4 scale 2.500000e-01 block_q 4 block_k 8 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
  // CHECK-NEXT: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = llama.flash_attention_grad %[[Q]], %[[K]], %[[K]], %[[O]], %[[LSE]], %[[DO]] causal window 4 scale 2.500000e-01 block_q 4 block_k 8 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4xf32>
  // CHECK-NEXT: %[[L2:.*]] = llama.attention_lse %[[Q]], %[[K]] causal window 4 scale 2.500000e-01 : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32> -> tensor<2x8x4xf32>
  // CHECK-NEXT: %[[OB:.*]], %[[LSEB:.*]] = llama.flash_attention %[[QB]], %[[KB]], %[[KB]] block_q 2 block_k 3 : tensor<1x4x2x8xbf16>, tensor<1x6x2x8xbf16>, tensor<1x6x2x8xbf16>
  // CHECK-NEXT: %[[L3:.*]] = llama.attention_lse %[[QB]], %[[KB]] : tensor<1x4x2x8xbf16>, tensor<1x6x2x8xbf16> -> tensor<1x4x2xf32>
  // CHECK-NEXT: return %[[O]], %[[LSE]], %[[DQ]], %[[DK]], %[[DV]], %[[L2]], %[[OB]], %[[LSEB]], %[[L3]] : tensor<2x8x4x16xf32>, tensor<2x8x4xf32>, tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4xf32>, tensor<1x4x2x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xf32>
  func.func @flash_attention(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x2x16xf32>,
                             %do: tensor<2x8x4x16xf32>, %qb: tensor<1x4x2x8xbf16>,
                             %kb: tensor<1x6x2x8xbf16>)
      -> (tensor<2x8x4x16xf32>, tensor<2x8x4xf32>, tensor<2x8x4x16xf32>,
          tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4xf32>,
          tensor<1x4x2x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xf32>) {
    %o, %lse = llama.flash_attention %q, %k, %k causal window 4 scale 2.5e-01
        block_q 4 block_k 8
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>
    %dq, %dk, %dv = llama.flash_attention_grad %q, %k, %k, %o, %lse, %do causal window 4
        scale 2.5e-01 block_q 4 block_k 8
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>,
          tensor<2x8x4xf32>
    %l2 = llama.attention_lse %q, %k causal window 4 scale 2.5e-01
        : tensor<2x8x4x16xf32>, tensor<2x8x2x16xf32> -> tensor<2x8x4xf32>
    // Not causal, default scale; the log-sum-exp is f32 for bf16 operands.
    %ob, %lseb = llama.flash_attention %qb, %kb, %kb block_q 2 block_k 3
        : tensor<1x4x2x8xbf16>, tensor<1x6x2x8xbf16>, tensor<1x6x2x8xbf16>
    %l3 = llama.attention_lse %qb, %kb
        : tensor<1x4x2x8xbf16>, tensor<1x6x2x8xbf16> -> tensor<1x4x2xf32>
    return %o, %lse, %dq, %dk, %dv, %l2, %ob, %lseb, %l3
        : tensor<2x8x4x16xf32>, tensor<2x8x4xf32>, tensor<2x8x4x16xf32>,
          tensor<2x8x2x16xf32>, tensor<2x8x2x16xf32>, tensor<2x8x4xf32>,
          tensor<1x4x2x8xbf16>, tensor<1x4x2xf32>, tensor<1x4x2xf32>
  }

  // CHECK-LABEL: func.func @fused_cross_entropy
  // CHECK-SAME: (%[[L:.*]]: tensor<2x8x256xbf16>, %[[T:.*]]: tensor<2x8xi64>, %[[DL:.*]]: tensor<f32>, %[[L32:.*]]: tensor<8x256xf32>, %[[T32:.*]]: tensor<8xi32>)
  // CHECK-NEXT: %[[LSE0:.*]] = llama.logsumexp %[[L]] : tensor<2x8x256xbf16>
  // CHECK-NEXT: %[[LOSS:.*]], %[[LSE:.*]] = llama.fused_cross_entropy %[[L]], %[[T]] ignore_index -100 chunk 64 : tensor<2x8x256xbf16>, tensor<2x8xi64>
  // CHECK-NEXT: %[[G:.*]] = llama.fused_cross_entropy_grad %[[L]], %[[T]], %[[LSE]], %[[DL]] ignore_index -100 chunk 64 : tensor<2x8x256xbf16>, tensor<2x8xi64>, tensor<2x8xf32>
  // The default ignore_index (-1) is not printed.
  // CHECK-NEXT: %[[LOSS2:.*]], %[[LSE2:.*]] = llama.fused_cross_entropy %[[L32]], %[[T32]] chunk 100 : tensor<8x256xf32>, tensor<8xi32>
  // CHECK-NEXT: %[[G2:.*]] = llama.fused_cross_entropy_grad %[[L32]], %[[T32]], %[[LSE2]], %[[LOSS2]] chunk 100 : tensor<8x256xf32>, tensor<8xi32>, tensor<8xf32>
  // CHECK-NEXT: return %[[LSE0]], %[[LOSS]], %[[LSE]], %[[G]], %[[G2]] : tensor<2x8xbf16>, tensor<f32>, tensor<2x8xf32>, tensor<2x8x256xbf16>, tensor<8x256xf32>
  func.func @fused_cross_entropy(%l: tensor<2x8x256xbf16>, %t: tensor<2x8xi64>,
                                 %dl: tensor<f32>, %l32: tensor<8x256xf32>,
                                 %t32: tensor<8xi32>)
      -> (tensor<2x8xbf16>, tensor<f32>, tensor<2x8xf32>, tensor<2x8x256xbf16>,
          tensor<8x256xf32>) {
    %lse0 = llama.logsumexp %l : tensor<2x8x256xbf16>
    %loss, %lse = llama.fused_cross_entropy %l, %t ignore_index -100 chunk 64
        : tensor<2x8x256xbf16>, tensor<2x8xi64>
    %g = llama.fused_cross_entropy_grad %l, %t, %lse, %dl ignore_index -100 chunk 64
        : tensor<2x8x256xbf16>, tensor<2x8xi64>, tensor<2x8xf32>
    %loss2, %lse2 = llama.fused_cross_entropy %l32, %t32 ignore_index -1 chunk 100
        : tensor<8x256xf32>, tensor<8xi32>
    %g2 = llama.fused_cross_entropy_grad %l32, %t32, %lse2, %loss2 chunk 100
        : tensor<8x256xf32>, tensor<8xi32>, tensor<8xf32>
    return %lse0, %loss, %lse, %g, %g2
        : tensor<2x8xbf16>, tensor<f32>, tensor<2x8xf32>, tensor<2x8x256xbf16>,
          tensor<8x256xf32>
  }

  // Every op a fused_elementwise body may hold.
  // CHECK-LABEL: func.func @fused_elementwise
  // CHECK-SAME: (%[[A:.*]]: tensor<2x8xf32>, %[[B:.*]]: tensor<2x8xf32>, %[[C:.*]]: tensor<3xbf16>)
  // CHECK-NEXT: %[[R:.*]] = llama.fused_elementwise %[[A]], %[[B]] : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32> {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32):
  // CHECK-NEXT:   %[[CST:.*]] = arith.constant 2.000000e+00 : f32
  // CHECK-NEXT:   %[[E0:.*]] = arith.addf %[[X]], %[[Y]] : f32
  // CHECK-NEXT:   %[[E1:.*]] = arith.subf %[[E0]], %[[CST]] : f32
  // CHECK-NEXT:   %[[E2:.*]] = arith.mulf %[[E1]], %[[X]] : f32
  // CHECK-NEXT:   %[[E3:.*]] = arith.divf %[[E2]], %[[Y]] : f32
  // CHECK-NEXT:   %[[E4:.*]] = arith.negf %[[E3]] : f32
  // CHECK-NEXT:   %[[E5:.*]] = arith.maximumf %[[E4]], %[[X]] : f32
  // CHECK-NEXT:   %[[E6:.*]] = math.exp %[[E5]] : f32
  // CHECK-NEXT:   %[[E7:.*]] = math.log %[[E6]] : f32
  // CHECK-NEXT:   %[[E8:.*]] = math.sqrt %[[E7]] : f32
  // CHECK-NEXT:   %[[E9:.*]] = math.rsqrt %[[E8]] : f32
  // CHECK-NEXT:   llama.yield %[[E9]] : f32
  // CHECK-NEXT: }
  // CHECK-NEXT: %[[RB:.*]] = llama.fused_elementwise %[[C]] : tensor<3xbf16> -> tensor<3xbf16> {
  // CHECK-NEXT: ^bb0(%[[Z:.*]]: bf16):
  // CHECK-NEXT:   llama.yield %[[Z]] : bf16
  // CHECK-NEXT: }
  // CHECK-NEXT: return %[[R]], %[[RB]] : tensor<2x8xf32>, tensor<3xbf16>
  func.func @fused_elementwise(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>, %c: tensor<3xbf16>)
      -> (tensor<2x8xf32>, tensor<3xbf16>) {
    %r = llama.fused_elementwise %a, %b : tensor<2x8xf32>, tensor<2x8xf32> -> tensor<2x8xf32> {
    ^bb0(%x: f32, %y: f32):
      %cst = arith.constant 2.0 : f32
      %0 = arith.addf %x, %y : f32
      %1 = arith.subf %0, %cst : f32
      %2 = arith.mulf %1, %x : f32
      %3 = arith.divf %2, %y : f32
      %4 = arith.negf %3 : f32
      %5 = arith.maximumf %4, %x : f32
      %6 = math.exp %5 : f32
      %7 = math.log %6 : f32
      %8 = math.sqrt %7 : f32
      %9 = math.rsqrt %8 : f32
      llama.yield %9 : f32
    }
    // A body whose element type is the operands' (bf16).
    %rb = llama.fused_elementwise %c : tensor<3xbf16> -> tensor<3xbf16> {
    ^bb0(%z: bf16):
      llama.yield %z : bf16
    }
    return %r, %rb : tensor<2x8xf32>, tensor<3xbf16>
  }
}
