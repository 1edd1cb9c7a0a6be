// RUN: llamac-opt %s --llamac-frontend="batch=1 seq=4" --inline --llamac-autodiff | FileCheck %s

// The derived backward of one LLaMA layer (grouped-query attention with 2 query heads and
// 1 KV head, SwiGLU), in reverse order of the forward.

// CHECK-LABEL: func.func @loss_grad(
// CHECK-SAME: -> (tensor<f32>, tensor<16x8xf32>, tensor<8xf32>, tensor<16x8xf32>, tensor<8xf32>, tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<16x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>)
// CHECK-SAME: llama.grads = [@tok_embeddings, @norm, @output, @layers.0.attention_norm, @layers.0.attention.wq, @layers.0.attention.wk, @layers.0.attention.wv, @layers.0.attention.wo, @layers.0.ffn_norm, @layers.0.feed_forward.w1, @layers.0.feed_forward.w2, @layers.0.feed_forward.w3]
// The forward is unchanged and untagged.
// CHECK: %[[EMB:.*]] = llama.embedding
// CHECK-NOT: llama.backward
// CHECK: %[[WOUT:.*]] = llama.get_param @output
// CHECK-NEXT: %[[LOGITS:.*]] = llama.linear %[[HN:.*]], %[[WOUT]] :
// CHECK-NEXT: %[[LOSS:.*]] = llama.cross_entropy %[[LOGITS]], %[[TARGETS:.*]] :
// The seed dL/dL = 1, then the head: cross-entropy, output projection, final norm.
// CHECK-NEXT: %[[ONE:.*]] = arith.constant {llama.backward} dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT: %[[DLOGITS:.*]] = llama.cross_entropy_grad %[[LOGITS]], %[[TARGETS]], %[[ONE]] {llama.backward}
// CHECK-NEXT: %[[DHN:.*]] = llama.matmul %[[DLOGITS]], %[[WOUT]] {llama.backward}
// CHECK-NEXT: %[[DWOUT:.*]] = llama.linear_weight_grad %[[DLOGITS]], %[[HN]] {llama.backward}
// CHECK-NEXT: %[[DH:.*]], %[[DNORM:.*]] = llama.rms_norm_grad %{{.*}}, %{{.*}}, %[[DHN]] eps
// SwiGLU: w2, then the product, SiLU, and the two input projections summed.
// CHECK-NEXT: %[[DGU:.*]] = llama.matmul %[[DH]], %{{.*}} {llama.backward} : tensor<1x4x8xf32>, tensor<8x16xf32>
// CHECK-NEXT: %[[DW2:.*]] = llama.linear_weight_grad %[[DH]],
// CHECK-NEXT: %[[DGS:.*]] = llama.mul %[[DGU]], %{{.*}} {llama.backward}
// CHECK-NEXT: %[[DU:.*]] = llama.mul %[[DGU]], %{{.*}} {llama.backward}
// CHECK-NEXT: %[[DG:.*]] = llama.silu_grad %{{.*}}, %[[DGS]] {llama.backward}
// CHECK: %[[DHN2:.*]] = llama.add %{{.*}}, %{{.*}} {llama.backward} : tensor<1x4x8xf32>
// CHECK-NEXT: %[[DH1:.*]], %[[DFFNNORM:.*]] = llama.rms_norm_grad %{{.*}}, %{{.*}}, %[[DHN2]]
// The residual stream accumulates its two cotangents.
// CHECK-NEXT: %[[DRES:.*]] = llama.add %[[DH]], %[[DH1]] {llama.backward}
// Attention: wo, then one fused gradient for q, k and v, RoPE undone by the inverse rotation.
// CHECK-NEXT: %[[DA:.*]] = llama.matmul %[[DRES]], %{{.*}} {llama.backward}
// CHECK-NEXT: %[[DWO:.*]] = llama.linear_weight_grad %[[DRES]],
// CHECK-NEXT: %[[DA4:.*]] = llama.split_dim %[[DA]] dim 2 into [2, 4] {llama.backward}
// CHECK-NEXT: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = llama.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[DA4]] causal {llama.backward} : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x2x4xf32>
// CHECK-DAG: llama.rope %[[DK]] theta 1.000000e+04 inverse {llama.backward}
// CHECK-DAG: llama.rope %[[DQ]] theta 1.000000e+04 inverse {llama.backward}
// CHECK: %[[DX0:.*]], %[[DATTNNORM:.*]] = llama.rms_norm_grad %[[EMB]],
// CHECK-NEXT: %[[DEMB:.*]] = llama.add %[[DRES]], %[[DX0]] {llama.backward}
// CHECK-NEXT: %[[DTOK:.*]] = llama.embedding_grad %{{.*}}, %[[DEMB]] vocab 16 {llama.backward}
// CHECK-NEXT: return %[[LOSS]], %[[DTOK]], %[[DNORM]], %[[DWOUT]], %[[DATTNNORM]], {{.*}}, %[[DWO]], %[[DFFNNORM]], {{.*}}, %[[DW2]],

// A one-layer model small enough to read its derived backward.
// Hyper-parameters: test.
// The transformer layer is declared once; llama-expand-layers instantiates it per layer.

llama.model @one_layer config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1,
    ffn_dim = 16, vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<16x8xf32> init normal(2.0e-02)
  llama.param @norm : tensor<8xf32> init ones
  llama.param @output : tensor<16x8xf32> init normal(2.0e-02)

  llama.layer @layers repeat 1 {
    llama.param @attention_norm : tensor<8xf32> init ones
    llama.param @attention.wq : tensor<8x8xf32> init normal(2.0e-02)
    llama.param @attention.wk : tensor<4x8xf32> init normal(2.0e-02)
    llama.param @attention.wv : tensor<4x8xf32> init normal(2.0e-02)
    llama.param @attention.wo : tensor<8x8xf32> init normal(2.0e-02)
    llama.param @ffn_norm : tensor<8xf32> init ones
    llama.param @feed_forward.w1 : tensor<16x8xf32> init normal(2.0e-02)
    llama.param @feed_forward.w2 : tensor<8x16xf32> init normal(2.0e-02)
    llama.param @feed_forward.w3 : tensor<16x8xf32> init normal(2.0e-02)

    func.func @block(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
      // h = x + attention(attention_norm(x))
      %an = llama.get_param @attention_norm : tensor<8xf32>
      %xn = llama.rms_norm %x, %an eps 1.0e-05 : tensor<?x?x8xf32>, tensor<8xf32>
      %wq = llama.get_param @attention.wq : tensor<8x8xf32>
      %wk = llama.get_param @attention.wk : tensor<4x8xf32>
      %wv = llama.get_param @attention.wv : tensor<4x8xf32>
      %q = llama.linear %xn, %wq : tensor<?x?x8xf32>, tensor<8x8xf32>
      %k = llama.linear %xn, %wk : tensor<?x?x8xf32>, tensor<4x8xf32>
      %v = llama.linear %xn, %wv : tensor<?x?x8xf32>, tensor<4x8xf32>
      %q4 = llama.split_dim %q dim 2 into [2, 4] : tensor<?x?x8xf32>
      %k4 = llama.split_dim %k dim 2 into [1, 4] : tensor<?x?x4xf32>
      %v4 = llama.split_dim %v dim 2 into [1, 4] : tensor<?x?x4xf32>
      %qr = llama.rope %q4 theta 1.0e+04 : tensor<?x?x2x4xf32>
      %kr = llama.rope %k4 theta 1.0e+04 : tensor<?x?x1x4xf32>
      %a4 = llama.attention %qr, %kr, %v4 causal : tensor<?x?x2x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>
      %a = llama.merge_dims %a4 dim 2 : tensor<?x?x2x4xf32>
      %wo = llama.get_param @attention.wo : tensor<8x8xf32>
      %ao = llama.linear %a, %wo : tensor<?x?x8xf32>, tensor<8x8xf32>
      %h = llama.add %x, %ao : tensor<?x?x8xf32>
      // out = h + feed_forward(ffn_norm(h)), SwiGLU: w2(silu(w1 h) * w3 h)
      %fnw = llama.get_param @ffn_norm : tensor<8xf32>
      %hn = llama.rms_norm %h, %fnw eps 1.0e-05 : tensor<?x?x8xf32>, tensor<8xf32>
      %w1 = llama.get_param @feed_forward.w1 : tensor<16x8xf32>
      %w3 = llama.get_param @feed_forward.w3 : tensor<16x8xf32>
      %w2 = llama.get_param @feed_forward.w2 : tensor<8x16xf32>
      %g = llama.linear %hn, %w1 : tensor<?x?x8xf32>, tensor<16x8xf32>
      %u = llama.linear %hn, %w3 : tensor<?x?x8xf32>, tensor<16x8xf32>
      %gs = llama.silu %g : tensor<?x?x16xf32>
      %gu = llama.mul %gs, %u : tensor<?x?x16xf32>
      %f = llama.linear %gu, %w2 : tensor<?x?x16xf32>, tensor<8x16xf32>
      %out = llama.add %h, %f : tensor<?x?x8xf32>
      return %out : tensor<?x?x8xf32>
    }
  }

  // logits = output(norm(layers(tok_embeddings[tokens])))
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x16xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<16x8xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<16x8xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0) : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    %nw = llama.get_param @norm : tensor<8xf32>
    %hn = llama.rms_norm %h, %nw eps 1.0e-05 : tensor<?x?x8xf32>, tensor<8xf32>
    %wout = llama.get_param @output : tensor<16x8xf32>
    %logits = llama.linear %hn, %wout : tensor<?x?x8xf32>, tensor<16x8xf32>
    return %logits : tensor<?x?x16xf32>
  }

  // Mean next-token cross-entropy; targets equal to -1 are ignored.
  func.func @loss(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?x?xi32>) -> tensor<?x?x16xf32>
    %l = llama.cross_entropy %logits, %targets : tensor<?x?x16xf32>, tensor<?x?xi32>
    return %l : tensor<f32>
  }
}
