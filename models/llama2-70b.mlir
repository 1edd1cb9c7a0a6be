// LLaMA-2 70B, grouped-query attention with 8 KV heads.
// Hyper-parameters: Touvron et al. 2023b and the model card: 4k context, 8 KV heads, FFN 28672, norm_eps 1e-5.
// Published parameter count: 69.0B (checked by test/models/info.test).
// The transformer layer is declared once; llama-expand-layers instantiates it per layer.

llama.model @llama2_70b config <dim = 8192, n_layers = 80, n_heads = 64, n_kv_heads = 8,
    ffn_dim = 28672, vocab_size = 32000, max_seq_len = 4096, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<32000x8192xf32> init normal(2.0e-02)
  llama.param @norm : tensor<8192xf32> init ones
  llama.param @output : tensor<32000x8192xf32> init normal(2.0e-02)

  llama.layer @layers repeat 80 {
    llama.param @attention_norm : tensor<8192xf32> init ones
    llama.param @attention.wq : tensor<8192x8192xf32> init normal(2.0e-02)
    llama.param @attention.wk : tensor<1024x8192xf32> init normal(2.0e-02)
    llama.param @attention.wv : tensor<1024x8192xf32> init normal(2.0e-02)
    llama.param @attention.wo : tensor<8192x8192xf32> init normal(2.0e-02)
    llama.param @ffn_norm : tensor<8192xf32> init ones
    llama.param @feed_forward.w1 : tensor<28672x8192xf32> init normal(2.0e-02)
    llama.param @feed_forward.w2 : tensor<8192x28672xf32> init normal(2.0e-02)
    llama.param @feed_forward.w3 : tensor<28672x8192xf32> init normal(2.0e-02)

    func.func @block(%x: tensor<?x?x8192xf32>) -> tensor<?x?x8192xf32> {
      // h = x + attention(attention_norm(x))
      %an = llama.get_param @attention_norm : tensor<8192xf32>
      %xn = llama.rms_norm %x, %an eps 1.0e-05 : tensor<?x?x8192xf32>, tensor<8192xf32>
      %wq = llama.get_param @attention.wq : tensor<8192x8192xf32>
      %wk = llama.get_param @attention.wk : tensor<1024x8192xf32>
      %wv = llama.get_param @attention.wv : tensor<1024x8192xf32>
      %q = llama.linear %xn, %wq : tensor<?x?x8192xf32>, tensor<8192x8192xf32>
      %k = llama.linear %xn, %wk : tensor<?x?x8192xf32>, tensor<1024x8192xf32>
      %v = llama.linear %xn, %wv : tensor<?x?x8192xf32>, tensor<1024x8192xf32>
      %q4 = llama.split_dim %q dim 2 into [64, 128] : tensor<?x?x8192xf32>
      %k4 = llama.split_dim %k dim 2 into [8, 128] : tensor<?x?x1024xf32>
      %v4 = llama.split_dim %v dim 2 into [8, 128] : tensor<?x?x1024xf32>
      %qr = llama.rope %q4 theta 1.0e+04 : tensor<?x?x64x128xf32>
      %kr = llama.rope %k4 theta 1.0e+04 : tensor<?x?x8x128xf32>
      %a4 = llama.attention %qr, %kr, %v4 causal : tensor<?x?x64x128xf32>, tensor<?x?x8x128xf32>, tensor<?x?x8x128xf32>
      %a = llama.merge_dims %a4 dim 2 : tensor<?x?x64x128xf32>
      %wo = llama.get_param @attention.wo : tensor<8192x8192xf32>
      %ao = llama.linear %a, %wo : tensor<?x?x8192xf32>, tensor<8192x8192xf32>
      %h = llama.add %x, %ao : tensor<?x?x8192xf32>
      // out = h + feed_forward(ffn_norm(h)), SwiGLU: w2(silu(w1 h) * w3 h)
      %fnw = llama.get_param @ffn_norm : tensor<8192xf32>
      %hn = llama.rms_norm %h, %fnw eps 1.0e-05 : tensor<?x?x8192xf32>, tensor<8192xf32>
      %w1 = llama.get_param @feed_forward.w1 : tensor<28672x8192xf32>
      %w3 = llama.get_param @feed_forward.w3 : tensor<28672x8192xf32>
      %w2 = llama.get_param @feed_forward.w2 : tensor<8192x28672xf32>
      %g = llama.linear %hn, %w1 : tensor<?x?x8192xf32>, tensor<28672x8192xf32>
      %u = llama.linear %hn, %w3 : tensor<?x?x8192xf32>, tensor<28672x8192xf32>
      %gs = llama.silu %g : tensor<?x?x28672xf32>
      %gu = llama.mul %gs, %u : tensor<?x?x28672xf32>
      %f = llama.linear %gu, %w2 : tensor<?x?x28672xf32>, tensor<8192x28672xf32>
      %out = llama.add %h, %f : tensor<?x?x8192xf32>
      return %out : tensor<?x?x8192xf32>
    }
  }

  // logits = output(norm(layers(tok_embeddings[tokens])))
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x32000xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<32000x8192xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<32000x8192xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0) : (tensor<?x?x8192xf32>) -> tensor<?x?x8192xf32>
    %nw = llama.get_param @norm : tensor<8192xf32>
    %hn = llama.rms_norm %h, %nw eps 1.0e-05 : tensor<?x?x8192xf32>, tensor<8192xf32>
    %wout = llama.get_param @output : tensor<32000x8192xf32>
    %logits = llama.linear %hn, %wout : tensor<?x?x8192xf32>, tensor<32000x8192xf32>
    return %logits : tensor<?x?x32000xf32>
  }

  // Mean next-token cross-entropy; targets equal to -1 are ignored.
  func.func @loss(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?x?xi32>) -> tensor<?x?x32000xf32>
    %l = llama.cross_entropy %logits, %targets : tensor<?x?x32000xf32>, tensor<?x?xi32>
    return %l : tensor<f32>
  }
}
