// RUN: llamac-opt %s --llama-specialize="batch=2 seq=8" | FileCheck %s --implicit-check-not='?'
// RUN: llamac-opt %s --llama-specialize="batch=3" | FileCheck %s --check-prefix=MAXSEQ --implicit-check-not='?'

// Dynamic dimensions at index 0 (batch) and 1 (sequence) of every function argument become
// static, and every result type follows: compute ops, llama.stack, func.call and the
// functions' own result types. Without `seq` the sequence is the config's max_seq_len (12).
// No '?' is left anywhere in the output (--implicit-check-not).

// CHECK-LABEL: llama.model @spec
// CHECK:       llama.layer @layers repeat 2 {
// CHECK:         func.func @block(%[[X:.*]]: tensor<2x8x32xf32>, %[[POS:.*]]: index) -> tensor<2x8x32xf32> {
// CHECK-NEXT:      %[[WQ:.*]] = llama.get_param @wq : tensor<32x32xf32>
// CHECK-NEXT:      %[[WKV:.*]] = llama.get_param @wkv : tensor<32x32xf32>
// CHECK-NEXT:      %[[Q:.*]] = llama.linear %[[X]], %[[WQ]] : tensor<2x8x32xf32>, tensor<32x32xf32>
// CHECK-NEXT:      %[[KV:.*]] = llama.linear %[[X]], %[[WKV]] : tensor<2x8x32xf32>, tensor<32x32xf32>
// CHECK-NEXT:      %[[K:.*]] = llama.slice %[[KV]] dim 2 [0, 16] : tensor<2x8x32xf32>
// CHECK-NEXT:      %[[V:.*]] = llama.slice %[[KV]] dim 2 [16, 16] : tensor<2x8x32xf32>
// CHECK-NEXT:      %[[Q4:.*]] = llama.split_dim %[[Q]] dim 2 into [2, 16] : tensor<2x8x32xf32>
// CHECK-NEXT:      %[[K4:.*]] = llama.split_dim %[[K]] dim 2 into [1, 16] : tensor<2x8x16xf32>
// CHECK-NEXT:      %[[V4:.*]] = llama.split_dim %[[V]] dim 2 into [1, 16] : tensor<2x8x16xf32>
// CHECK-NEXT:      %[[QR:.*]] = llama.rope %[[Q4]] theta 1.000000e+04 offset %[[POS]] : tensor<2x8x2x16xf32>
// CHECK-NEXT:      %[[KR:.*]] = llama.rope %[[K4]] theta 1.000000e+04 offset %[[POS]] : tensor<2x8x1x16xf32>
// CHECK-NEXT:      %[[A:.*]] = llama.attention %[[QR]], %[[KR]], %[[V4]] causal : tensor<2x8x2x16xf32>, tensor<2x8x1x16xf32>, tensor<2x8x1x16xf32>
// CHECK-NEXT:      %[[M:.*]] = llama.merge_dims %[[A]] dim 2 : tensor<2x8x2x16xf32>
// CHECK-NEXT:      %[[OUT:.*]] = llama.add %[[X]], %[[M]] : tensor<2x8x32xf32>
// CHECK-NEXT:      return %[[OUT]] : tensor<2x8x32xf32>

// MAXSEQ-LABEL: llama.model @spec
// MAXSEQ:       func.func @block(%{{.*}}: tensor<3x12x32xf32>, %{{.*}}: index) -> tensor<3x12x32xf32> {
// MAXSEQ:         llama.attention {{.*}} : tensor<3x12x2x16xf32>, tensor<3x12x1x16xf32>, tensor<3x12x1x16xf32>
llama.model @spec config <dim = 32, n_layers = 2, n_heads = 2, n_kv_heads = 1,
    ffn_dim = 64, vocab_size = 16, max_seq_len = 12, norm_eps = 1.0e-05,
    rope_theta = 1.0e+04> {
  llama.param @tok_embeddings : tensor<16x32xf32> init normal(2.0e-02)
  llama.param @output : tensor<16x32xf32> init normal(2.0e-02)
  llama.layer @layers repeat 2 {
    llama.param @wq : tensor<32x32xf32> init normal(2.0e-02)
    llama.param @wkv : tensor<32x32xf32> init normal(2.0e-02)
    func.func @block(%x: tensor<?x?x32xf32>, %pos: index) -> tensor<?x?x32xf32> {
      %wq = llama.get_param @wq : tensor<32x32xf32>
      %wkv = llama.get_param @wkv : tensor<32x32xf32>
      %q = llama.linear %x, %wq : tensor<?x?x32xf32>, tensor<32x32xf32>
      %kv = llama.linear %x, %wkv : tensor<?x?x32xf32>, tensor<32x32xf32>
      %k = llama.slice %kv dim 2 [0, 16] : tensor<?x?x32xf32>
      %v = llama.slice %kv dim 2 [16, 16] : tensor<?x?x32xf32>
      %q4 = llama.split_dim %q dim 2 into [2, 16] : tensor<?x?x32xf32>
      %k4 = llama.split_dim %k dim 2 into [1, 16] : tensor<?x?x16xf32>
      %v4 = llama.split_dim %v dim 2 into [1, 16] : tensor<?x?x16xf32>
      %qr = llama.rope %q4 theta 1.0e+04 offset %pos : tensor<?x?x2x16xf32>
      %kr = llama.rope %k4 theta 1.0e+04 offset %pos : tensor<?x?x1x16xf32>
      %a = llama.attention %qr, %kr, %v4 causal
          : tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>
      %m = llama.merge_dims %a dim 2 : tensor<?x?x2x16xf32>
      %out = llama.add %x, %m : tensor<?x?x32xf32>
      return %out : tensor<?x?x32xf32>
    }
  }

  // A caller before its callee: the call's result type follows the callee's new signature.
  // CHECK-LABEL: func.func @loss
  // CHECK-SAME:    (%[[TOK:.*]]: tensor<2x8xi32>, %[[TGT:.*]]: tensor<2x8xi64>, %[[POS:.*]]: index) -> tensor<f32> {
  // CHECK-NEXT:    %[[L:.*]] = call @forward(%[[TOK]], %[[POS]]) : (tensor<2x8xi32>, index) -> tensor<2x8x16xf32>
  // CHECK-NEXT:    %[[CE:.*]] = llama.cross_entropy %[[L]], %[[TGT]] ignore_index -100 : tensor<2x8x16xf32>, tensor<2x8xi64>
  // CHECK-NEXT:    return %[[CE]] : tensor<f32>
  // MAXSEQ-LABEL: func.func @loss
  // MAXSEQ-SAME:    (%{{.*}}: tensor<3x12xi32>, %{{.*}}: tensor<3x12xi64>, %{{.*}}: index) -> tensor<f32> {
  // MAXSEQ-NEXT:    call @forward(%{{.*}}, %{{.*}}) : (tensor<3x12xi32>, index) -> tensor<3x12x16xf32>
  func.func @loss(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi64>, %pos: index)
      -> tensor<f32> {
    %logits = func.call @forward(%tokens, %pos)
        : (tensor<?x?xi32>, index) -> tensor<?x?x16xf32>
    %l = llama.cross_entropy %logits, %targets ignore_index -100
        : tensor<?x?x16xf32>, tensor<?x?xi64>
    return %l : tensor<f32>
  }

  // CHECK-LABEL: func.func @forward
  // CHECK-SAME:    (%[[TOK:.*]]: tensor<2x8xi32>, %[[POS:.*]]: index) -> tensor<2x8x16xf32> {
  // CHECK-NEXT:    %[[E:.*]] = llama.get_param @tok_embeddings : tensor<16x32xf32>
  // CHECK-NEXT:    %[[H0:.*]] = llama.embedding %[[E]][%[[TOK]]] : tensor<16x32xf32>, tensor<2x8xi32>
  // CHECK-NEXT:    %[[H:.*]] = llama.stack @layers(%[[H0]], %[[POS]]) : (tensor<2x8x32xf32>, index) -> tensor<2x8x32xf32>
  // CHECK-NEXT:    %[[W:.*]] = llama.get_param @output : tensor<16x32xf32>
  // CHECK-NEXT:    %[[LG:.*]] = llama.linear %[[H]], %[[W]] : tensor<2x8x32xf32>, tensor<16x32xf32>
  // CHECK-NEXT:    return %[[LG]] : tensor<2x8x16xf32>
  // MAXSEQ-LABEL: func.func @forward
  // MAXSEQ-SAME:    (%{{.*}}: tensor<3x12xi32>, %{{.*}}: index) -> tensor<3x12x16xf32> {
  // MAXSEQ:         llama.stack @layers(%{{.*}}, %{{.*}}) : (tensor<3x12x32xf32>, index) -> tensor<3x12x32xf32>
  // MAXSEQ:         return %{{.*}} : tensor<3x12x16xf32>
  func.func @forward(%tokens: tensor<?x?xi32>, %pos: index) -> tensor<?x?x16xf32> {
    %emb = llama.get_param @tok_embeddings : tensor<16x32xf32>
    %h0 = llama.embedding %emb[%tokens] : tensor<16x32xf32>, tensor<?x?xi32>
    %h = llama.stack @layers(%h0, %pos) : (tensor<?x?x32xf32>, index) -> tensor<?x?x32xf32>
    %w = llama.get_param @output : tensor<16x32xf32>
    %logits = llama.linear %h, %w : tensor<?x?x32xf32>, tensor<16x32xf32>
    return %logits : tensor<?x?x16xf32>
  }

  // The other kinds of op: shape ops, matmul, elementwise ops and a cast. A rank-1 argument's
  // dynamic dimension is the batch; static and non-tensor arguments are kept.
  // CHECK-LABEL: func.func @misc
  // CHECK-SAME:    (%[[X:.*]]: tensor<2x8x32xbf16>, %[[IDS:.*]]: tensor<2xi32>, %[[S:.*]]: tensor<4x32xbf16>, %[[W:.*]]: tensor<32x32xbf16>)
  // CHECK-SAME:    -> (tensor<2x8x8xbf16>, tensor<2x8x32xf32>, tensor<20x32xbf16>, tensor<2xi32>) {
  // CHECK-NEXT:    %[[T:.*]] = llama.transpose %[[X]] [1, 0, 2] : tensor<2x8x32xbf16>
  // CHECK-NEXT:    %[[TT:.*]] = llama.transpose %[[T]] [1, 0, 2] : tensor<8x2x32xbf16>
  // CHECK-NEXT:    %[[SC:.*]] = llama.matmul %[[TT]], %[[X]] transpose_rhs : tensor<2x8x32xbf16>, tensor<2x8x32xbf16>
  // CHECK-NEXT:    %[[P:.*]] = llama.softmax %[[SC]] : tensor<2x8x8xbf16>
  // CHECK-NEXT:    %[[Y:.*]] = llama.matmul %[[X]], %[[W]] : tensor<2x8x32xbf16>, tensor<32x32xbf16>
  // CHECK-NEXT:    %[[Z:.*]] = llama.scale %[[Y]] by 5.000000e-01 : tensor<2x8x32xbf16>
  // CHECK-NEXT:    %[[EX:.*]] = llama.exp %[[Z]] : tensor<2x8x32xbf16>
  // CHECK-NEXT:    %[[F:.*]] = llama.cast %[[EX]] : tensor<2x8x32xbf16> to tensor<2x8x32xf32>
  // CHECK-NEXT:    %[[FL:.*]] = llama.merge_dims %[[X]] dim 0 : tensor<2x8x32xbf16>
  // CHECK-NEXT:    %[[C:.*]] = llama.concat %[[FL]], %[[S]] dim 0 : tensor<16x32xbf16>, tensor<4x32xbf16>
  // CHECK-NEXT:    return %[[P]], %[[F]], %[[C]], %[[IDS]] : tensor<2x8x8xbf16>, tensor<2x8x32xf32>, tensor<20x32xbf16>, tensor<2xi32>
  // MAXSEQ-LABEL: func.func @misc
  // MAXSEQ-SAME:    -> (tensor<3x12x12xbf16>, tensor<3x12x32xf32>, tensor<40x32xbf16>, tensor<3xi32>) {
  func.func @misc(%x: tensor<?x?x32xbf16>, %ids: tensor<?xi32>, %s: tensor<4x32xbf16>,
                  %w: tensor<32x32xbf16>)
      -> (tensor<?x?x?xbf16>, tensor<?x?x32xf32>, tensor<?x32xbf16>, tensor<?xi32>) {
    %t = llama.transpose %x [1, 0, 2] : tensor<?x?x32xbf16>
    %tt = llama.transpose %t [1, 0, 2] : tensor<?x?x32xbf16>
    %sc = llama.matmul %tt, %x transpose_rhs : tensor<?x?x32xbf16>, tensor<?x?x32xbf16>
    %p = llama.softmax %sc : tensor<?x?x?xbf16>
    %y = llama.matmul %x, %w : tensor<?x?x32xbf16>, tensor<32x32xbf16>
    %z = llama.scale %y by 5.0e-01 : tensor<?x?x32xbf16>
    %e = llama.exp %z : tensor<?x?x32xbf16>
    %f = llama.cast %e : tensor<?x?x32xbf16> to tensor<?x?x32xf32>
    %flat = llama.merge_dims %x dim 0 : tensor<?x?x32xbf16>
    %c = llama.concat %flat, %s dim 0 : tensor<?x32xbf16>, tensor<4x32xbf16>
    return %p, %f, %c, %ids
        : tensor<?x?x?xbf16>, tensor<?x?x32xf32>, tensor<?x32xbf16>, tensor<?xi32>
  }
}

// -----
// A declaration (no body) gets its whole signature specialised.
// RUN: llamac-opt %s -split-input-file --llama-specialize="batch=2 seq=8" | FileCheck %s --check-prefix=DECL
// DECL-LABEL: llama.model @decl
// DECL: func.func private @ext(tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
llama.model @decl config <dim = 64, n_layers = 1, n_heads = 4, n_kv_heads = 2, ffn_dim = 128,
    vocab_size = 256, max_seq_len = 32, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func private @ext(tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
}
