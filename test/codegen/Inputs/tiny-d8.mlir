// The tiny model with head dimension 8 (8 heads, 4 KV heads): too small for the CUDA
// attention kernels (test/codegen/cuda-emit.test checks the refusal).
// A tiny test model: grouped-query attention (4 heads, 2 KV heads), two layers.
// Hyper-parameters: llamac's own test configuration.
// The transformer layer is declared once; llama-expand-layers instantiates it per layer.

llama.model @tiny_d8 config <dim = 64, n_layers = 2, n_heads = 8, n_kv_heads = 4,
    ffn_dim = 176, vocab_size = 512, max_seq_len = 64, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<512x64xf32> init normal(2.0e-02)
  llama.param @norm : tensor<64xf32> init ones
  llama.param @output : tensor<512x64xf32> init normal(2.0e-02)

  llama.layer @layers repeat 2 {
    llama.param @attention_norm : tensor<64xf32> init ones
    llama.param @attention.wq : tensor<64x64xf32> init normal(2.0e-02)
    llama.param @attention.wk : tensor<32x64xf32> init normal(2.0e-02)
    llama.param @attention.wv : tensor<32x64xf32> init normal(2.0e-02)
    llama.param @attention.wo : tensor<64x64xf32> init normal(2.0e-02)
    llama.param @ffn_norm : tensor<64xf32> init ones
    llama.param @feed_forward.w1 : tensor<176x64xf32> init normal(2.0e-02)
    llama.param @feed_forward.w2 : tensor<64x176xf32> init normal(2.0e-02)
    llama.param @feed_forward.w3 : tensor<176x64xf32> init normal(2.0e-02)

    func.func @block(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
      // h = x + attention(attention_norm(x))
      %an = llama.get_param @attention_norm : tensor<64xf32>
      %xn = llama.rms_norm %x, %an eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
      %wq = llama.get_param @attention.wq : tensor<64x64xf32>
      %wk = llama.get_param @attention.wk : tensor<32x64xf32>
      %wv = llama.get_param @attention.wv : tensor<32x64xf32>
      %q = llama.linear %xn, %wq : tensor<?x?x64xf32>, tensor<64x64xf32>
      %k = llama.linear %xn, %wk : tensor<?x?x64xf32>, tensor<32x64xf32>
      %v = llama.linear %xn, %wv : tensor<?x?x64xf32>, tensor<32x64xf32>
      %q4 = llama.split_dim %q dim 2 into [8, 8] : tensor<?x?x64xf32>
      %k4 = llama.split_dim %k dim 2 into [4, 8] : tensor<?x?x32xf32>
      %v4 = llama.split_dim %v dim 2 into [4, 8] : tensor<?x?x32xf32>
      %qr = llama.rope %q4 theta 1.0e+04 : tensor<?x?x8x8xf32>
      %kr = llama.rope %k4 theta 1.0e+04 : tensor<?x?x4x8xf32>
      %a4 = llama.attention %qr, %kr, %v4 causal : tensor<?x?x8x8xf32>, tensor<?x?x4x8xf32>, tensor<?x?x4x8xf32>
      %a = llama.merge_dims %a4 dim 2 : tensor<?x?x8x8xf32>
      %wo = llama.get_param @attention.wo : tensor<64x64xf32>
      %ao = llama.linear %a, %wo : tensor<?x?x64xf32>, tensor<64x64xf32>
      %h = llama.add %x, %ao : tensor<?x?x64xf32>
      // out = h + feed_forward(ffn_norm(h)), SwiGLU: w2(silu(w1 h) * w3 h)
      %fnw = llama.get_param @ffn_norm : tensor<64xf32>
      %hn = llama.rms_norm %h, %fnw eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
      %w1 = llama.get_param @feed_forward.w1 : tensor<176x64xf32>
      %w3 = llama.get_param @feed_forward.w3 : tensor<176x64xf32>
      %w2 = llama.get_param @feed_forward.w2 : tensor<64x176xf32>
      %g = llama.linear %hn, %w1 : tensor<?x?x64xf32>, tensor<176x64xf32>
      %u = llama.linear %hn, %w3 : tensor<?x?x64xf32>, tensor<176x64xf32>
      %gs = llama.silu %g : tensor<?x?x176xf32>
      %gu = llama.mul %gs, %u : tensor<?x?x176xf32>
      %f = llama.linear %gu, %w2 : tensor<?x?x176xf32>, tensor<64x176xf32>
      %out = llama.add %h, %f : tensor<?x?x64xf32>
      return %out : tensor<?x?x64xf32>
    }
  }

  // logits = output(norm(layers(tok_embeddings[tokens])))
  func.func @forward(%tokens: tensor<?x?xi32>) -> tensor<?x?x512xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<512x64xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<512x64xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0) : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %nw = llama.get_param @norm : tensor<64xf32>
    %hn = llama.rms_norm %h, %nw eps 1.0e-05 : tensor<?x?x64xf32>, tensor<64xf32>
    %wout = llama.get_param @output : tensor<512x64xf32>
    %logits = llama.linear %hn, %wout : tensor<?x?x64xf32>, tensor<512x64xf32>
    return %logits : tensor<?x?x512xf32>
  }

  // Mean next-token cross-entropy; targets equal to -1 are ignored.
  func.func @loss(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>) -> tensor<f32> {
    %logits = func.call @forward(%tokens) : (tensor<?x?xi32>) -> tensor<?x?x512xf32>
    %l = llama.cross_entropy %logits, %targets : tensor<?x?x512xf32>, tensor<?x?xi32>
    return %l : tensor<f32>
  }
}
