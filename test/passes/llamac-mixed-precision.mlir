// Mixed precision on one LLaMA layer, forward and derived backward:
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-swiglu --llamac-fuse-qkv-rope --llamac-mixed-precision --llamac-autodiff | FileCheck %s
// Products already in bf16 are left alone; matmul is converted like linear:
// RUN: llamac-opt %s --llamac-mixed-precision | FileCheck %s --check-prefix=OWN
// Only bf16 is a storage type with kernels behind it:
// RUN: not llamac-opt %s --llamac-mixed-precision="dtype=f16" 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: not llamac-opt %S/llamac-autodiff.mlir --llamac-training="batch=1 seq=4 precision=fp8" 2>&1 | FileCheck %s --check-prefix=PIPELINE
// The interpreter in f32 rounds every value to its declared type: the logits move by
// bf16's rounding (up to 2^-8 relative per value; 2.4e-3 here), so the pass is not a no-op
// (beyond 1e-5) and stays within 2e-2:
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-mixed-precision' --batch 1 --seq 4 --precision f32 --tol 2e-2 | FileCheck %s --check-prefix=CLOSE
// RUN: not llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-mixed-precision' --batch 1 --seq 4 --precision f32 --tol 1e-5 | FileCheck %s --check-prefix=ROUNDED

// The embedding table and the norms' gains are read in f32, as autocast leaves them; the
// concatenated [Wq; Wk; Wv] (a view of the parameters) is narrowed whole.
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[E:.*]] = llama.get_param @tok_embeddings
// CHECK-NEXT: llama.embedding %[[E]]
// CHECK-NEXT: %[[G:.*]] = llama.get_param @layers.0.attention_norm
// CHECK-NEXT: llama.rms_norm %{{.*}}, %[[G]]
// CHECK: %[[QKV:.*]] = llama.concat %{{.*}}, %{{.*}}, %{{.*}} dim 0 : tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
// CHECK-NEXT: llama.cast %{{.*}} : tensor<1x4x8xf32> to tensor<1x4x8xbf16>
// CHECK-NEXT: llama.cast %[[QKV]] : tensor<16x8xf32> to tensor<16x8xbf16>
// The output head: both operands narrowed, a bf16 product, the result widened for the loss.
// CHECK: %[[WOUT:.*]] = llama.get_param @output
// CHECK-NEXT: %[[XB:.*]] = llama.cast %{{.*}} : tensor<1x4x8xf32> to tensor<1x4x8xbf16>
// CHECK-NEXT: %[[WB:.*]] = llama.cast %[[WOUT]] : tensor<16x8xf32> to tensor<16x8xbf16>
// CHECK-NEXT: %[[LB:.*]] = llama.linear %[[XB]], %[[WB]] : tensor<1x4x8xbf16>, tensor<16x8xbf16>
// CHECK-NEXT: %[[L:.*]] = llama.cast %[[LB]] : tensor<1x4x16xbf16> to tensor<1x4x16xf32>
// CHECK-NEXT: llama.cross_entropy %[[L]]
// Its backward: the f32 gradient narrowed, both products in bf16 on the forward's bf16
// operands, both results widened (the weight gradient reaches the optimizer in f32).
// CHECK: %[[DB:.*]] = llama.cast %{{.*}} {llama.backward} : tensor<1x4x16xf32> to tensor<1x4x16xbf16>
// CHECK-NEXT: %[[DX:.*]] = llama.matmul %[[DB]], %[[WB]] {llama.backward} : tensor<1x4x16xbf16>, tensor<16x8xbf16>
// CHECK-NEXT: %[[DW:.*]] = llama.linear_weight_grad %[[DB]], %[[XB]] {llama.backward} : tensor<1x4x16xbf16>, tensor<1x4x8xbf16>
// CHECK-DAG: llama.cast %[[DX]] {llama.backward} : tensor<1x4x8xbf16> to tensor<1x4x8xf32>
// CHECK-DAG: llama.cast %[[DW]] {llama.backward} : tensor<16x8xbf16> to tensor<16x8xf32>
// CHECK: llama.rms_norm_grad
// Norms, attention, SwiGLU and the loss stay f32; no f32 product is left.
// CHECK-NOT: llama.linear {{.*}}xf32>, tensor<{{.*}}xf32>
// CHECK-NOT: llama.matmul {{.*}}xf32>, tensor<{{.*}}xf32>
// CHECK-NOT: llama.rms_norm {{.*}}xbf16>
// CHECK: return

// OWN-LABEL: func.func @mixed
// OWN-NEXT: %[[A:.*]] = llama.cast %arg0 : tensor<2x3x8xf32> to tensor<2x3x8xbf16>
// OWN-NEXT: %[[B:.*]] = llama.cast %arg1 : tensor<2x3x8xf32> to tensor<2x3x8xbf16>
// OWN-NEXT: %[[S:.*]] = llama.matmul %[[A]], %[[B]] transpose_rhs : tensor<2x3x8xbf16>, tensor<2x3x8xbf16>
// OWN-NEXT: %[[SW:.*]] = llama.cast %[[S]] : tensor<2x3x3xbf16> to tensor<2x3x3xf32>
// OWN-NEXT: %[[Y:.*]] = llama.linear %arg2, %arg3 : tensor<3x8xbf16>, tensor<4x8xbf16>
// OWN-NEXT: return %[[SW]], %[[Y]]

// DTYPE: error: llamac-mixed-precision: dtype must be bf16, not 'f16'
// PIPELINE: error: llamac-mixed-precision: dtype must be bf16, not 'fp8'

// CLOSE: @forward result0 {{.*}} ok
// CLOSE: @loss result0 {{.*}} ok
// ROUNDED: @forward result0 {{.*}} BEYOND TOLERANCE

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  func.func @mixed(%q: tensor<2x3x8xf32>, %k: tensor<2x3x8xf32>, %x: tensor<3x8xbf16>, %w: tensor<4x8xbf16>) -> (tensor<2x3x3xf32>, tensor<3x4xbf16>) {
    %s = llama.matmul %q, %k transpose_rhs : tensor<2x3x8xf32>, tensor<2x3x8xf32>
    %y = llama.linear %x, %w : tensor<3x8xbf16>, tensor<4x8xbf16>
    return %s, %y : tensor<2x3x3xf32>, tensor<3x4xbf16>
  }
}
