// TinyLlama-1.1B: the ~1B LLaMA-2-architecture configuration the CUDA benchmark trains.
// Hyper-parameters: Zhang et al. 2024, "TinyLlama: An Open-Source Small Language Model": dim 2048, 22 layers, 32 heads, 4 KV heads (grouped-query), FFN 5632, vocab 32000, context 2048.
// Published parameter count: 1.1B.
// The transformer layer is declared once; llama-expand-layers instantiates it per layer.

llama.model @tinyllama_1b config <dim = 2048, n_layers = 22, n_heads = 32, n_kv_heads = 4,
    ffn_dim = 5632, vocab_size = 32000, max_seq_len = 2048, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<32000x2048xf32> init normal(2.0e-02)
  llama.param @norm : tensor<2048xf32> init ones
  llama.param @output : tensor<32000x2048xf32> init normal(2.0e-02)

  llama.layer @layers repeat 22 {
    llama.param @attention_norm : tensor<2048xf32> init ones
    llama.param @attention.wq : tensor<2048x2048xf32> init normal(2.0e-02)
    llama.param @attention.wk : tensor<256x2048xf32> init normal(2.0e-02)
    llama.param @attention.wv : tensor<256x2048xf32> init normal(2.0e-02)
    llama.param @attention.wo : tensor<2048x2048xf32> init normal(2.0e-02)
    llama.param @ffn_norm : tensor<2048xf32> init ones
    llama.param @feed_forward.w1 : tensor<5632x2048xf32> init normal(2.0e-02)
    llama.param @feed_forward.w2 : tensor<2048x5632xf32> init normal(2.0e-02)
    llama.param @feed_forward.w3 : tensor<5632x2048xf32> init normal(2.0e-02)

    func.func @block(%x: tensor<?x?x2048xf32>) -> tensor<?x?x2048xf32> {
      // h = x + attention(attention_norm(x))
      %an = llama.get_param @attention_norm : tensor<2048xf32>
      %xn = llama.rms_norm %x, %an eps 1.0e-05 : tensor<?x?x2048xf32>, tensor<2048xf32>
      %wq = llama.get_param @attention.wq : tensor<2048x2048xf32>
      %wk = llama.get_param @attention.wk : tensor<256x2048xf32>
      %wv = llama.get_param @attention.wv : tensor<256x2048xf32>
      %q = llama.linear %xn, %wq : tensor<?x?x2048xf32>, tensor<2048x2048xf32>
      %k = llama.linear %xn, %wk : tensor<?x?x2048xf32>, tensor<256x2048xf32>
      %v = llama.linear %xn, %wv : tensor<?x?x2048xf32>, tensor<256x2048xf32>
      %q4 = llama.split_dim %q dim 2 into [32, 64] : tensor<?x?x2048xf32>
      %k4 = llama.split_dim %k dim 2 into [4, 64] : tensor<?x?x256xf32>
      %v4 = llama.split_dim %v dim 2 into [4, 64] : tensor<?x?x256xf32>
      %qr = llama.rope %q4 theta 1.0e+04 : tensor<?x?x32x64xf32>
      %kr = llama.rope %k4 theta 1.0e+04 : tensor<?x?x4x64xf32>
      %a4 = llama.attention %qr, %kr, %v4 causal : tensor<?x?x32x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>
      %a = llama.merge_dims %a4 dim 2 : tensor<?x?x32x64xf32>
      %wo = llama.get_param @attention.wo : tensor<2048x2048xf32>
      %ao = llama.linear %a, %wo : tensor<?x?x2048xf32>, tensor<2048x2048xf32>
      %h = llama.add %x, %ao : tensor<?x?x2048xf32>
      // out = h + feed_forward(ffn_norm(h)), SwiGLU: w2(silu(w1 h) * w3 h)
      %fnw = llama.get_param @ffn_norm : tensor<2048xf32>
      %hn = llama.rms_norm %h, %fnw eps 1.0e-05 : tensor<?x?x2048xf32>, tensor<2048xf32>
      %w1 = llama.get_param @feed_forward.w1 : tensor<5632x2048xf32>
      %w3 = llama.get_param @feed_forward.w3 : tensor<5632x2048xf32>
      %w2 = llama.get_param @feed_forward.w2 : tensor<2048x5632xf32>
      %g = llama.linear %hn, %w1 : tensor<?x?x2048xf32>, tensor<5632x2048xf32>
      %u = llama.linear %hn, %w3 : tensor<?x?x2048xf32>, tensor<5632x2048xf32>
      %gs = llama.silu %g : tensor<?x?x5632xf32>
      %gu = llama.mul %gs, %u : tensor<?x?x5632xf32>
      %f = llama.linear %gu, %w2 : tensor<?x?x5632xf32>, tensor<2048x5632xf32>
      %out = llama.add %h, %f : tensor<?x?x2048xf32>
      return %out : tensor<?x?x2048xf32>
    }
  }

  // logits = output(norm(layers(tok_embeddings[tokens])))
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x32000xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<32000x2048xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<32000x2048xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0) : (tensor<?x?x2048xf32>) -> tensor<?x?x2048xf32>
    %nw = llama.get_param @norm : tensor<2048xf32>
    %hn = llama.rms_norm %h, %nw eps 1.0e-05 : tensor<?x?x2048xf32>, tensor<2048xf32>
    %wout = llama.get_param @output : tensor<32000x2048xf32>
    %logits = llama.linear %hn, %wout : tensor<?x?x2048xf32>, tensor<32000x2048xf32>
    return %logits : tensor<?x?x32000xf32>
  }

  // Mean next-token cross-entropy; targets equal to -1 are ignored.
  func.func @loss(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?x?xi32>) -> tensor<?x?x32000xf32>
    %l = llama.cross_entropy %logits, %targets : tensor<?x?x32000xf32>, tensor<?x?xi32>
    return %l : tensor<f32>
  }
}
