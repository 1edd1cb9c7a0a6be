// RUN: llamac-opt %s --llamac-memory-plan | FileCheck %s
// RUN: llamac-opt %s --llamac-memory-plan="report=1" -o /dev/null | FileCheck %s --check-prefix=REPORT
// RUN: llamac-opt %s --llamac-memory-plan --llamac-memory-plan | FileCheck %s

// @plan, by hand. Ops are numbered from 0 in the block; every buffer is 8x16 f32 (512 bytes),
// so they are placed in definition order. Intervals (inclusive):
//   a [1,2]; r [2,8] (returned: to the end); b [3,7] (its own last reader is the split_dim
//   at 4, but the view is merged at 6 and that is read at 7); c [5,7]; d [7,8] (returned).
//   a -> 0; r overlaps a -> 512; b: a is dead, r is not -> 0 (a's memory, reused);
//   c: b and r live -> 1024; d: r, b (kept by its view) and c live -> 1536.
// Arena 2048 bytes; five buffers, 2560 bytes without reuse. The parameter read and the two
// views take no storage and get no offsets.
// CHECK-LABEL: func.func @plan
// CHECK-SAME: attributes {llama.arena_bytes = 2048 : i64, llama.buffers_bytes = 2560 : i64}
// CHECK-NEXT: %[[W:.*]] = llama.get_param @w : tensor<8x16xf32>{{$}}
// CHECK-NEXT: %[[A:.*]] = llama.exp %arg0 {llama.offsets = [0]}
// CHECK-NEXT: %[[R:.*]] = llama.neg %[[A]] {llama.offsets = [512]}
// CHECK-NEXT: %[[B:.*]] = llama.sigmoid %arg0 {llama.offsets = [0]}
// CHECK-NEXT: %[[V:.*]] = llama.split_dim %[[B]] dim 1 into [4, 4] : tensor<8x16xf32>{{$}}
// CHECK-NEXT: %[[C:.*]] = llama.add %arg0, %[[W]] {llama.offsets = [1024]}
// CHECK-NEXT: %[[M:.*]] = llama.merge_dims %[[V]] dim 1 : tensor<8x4x4xf32>{{$}}
// CHECK-NEXT: %[[D:.*]] = llama.mul %[[C]], %[[M]] {llama.offsets = [1536]}
// CHECK-NEXT: return %[[R]], %[[D]]

// @pair: e [1,2] -> 0; f [2,3] (returned) overlaps e and goes to the next 64-byte boundary:
// an arena of 76 bytes for 24 bytes of buffers. The i64 constant is not a tensor.
// CHECK-LABEL: func.func private @pair
// CHECK-SAME: attributes {llama.arena_bytes = 76 : i64, llama.buffers_bytes = 24 : i64}
// CHECK-NEXT: arith.constant 3 : i64{{$}}
// CHECK-NEXT: llama.exp %arg0 {llama.offsets = [0]}
// CHECK-NEXT: llama.neg %{{.*}} {llama.offsets = [64]}

// @mixed: largest first. big (512 bytes, [5,6]) -> 0 although defined last; then the
// 256-byte buffers in definition order: k [1,2] -> 0 (never live with big); s [2,4] -> 256;
// sum and normed [4,5], live with big and s -> 512 and 768; then e (12 bytes, [3,6]), live
// with all but k -> 1024. The call's i64 result has no buffer (-1); the scalar ops of the
// fused body get nothing. Arena 1036; 1548 bytes without reuse.
// @concat_views: a concatenation of windows lying back to back in one buffer (elements
// [0, 16) and [16, 32) of %u) is a view of it, like the slices and reshapes it is made of:
// no buffer, and %u lives until the view's reader. Windows with a gap between them ([0, 16)
// and [48, 64)), or out of order ([16, 32) then [0, 16)), are copied into a buffer of their
// own, and so are windows of a function argument (its storage is the caller's).
// CHECK-LABEL: func.func @concat_views
// CHECK-NEXT: %[[U:.*]] = llama.exp %arg0 {llama.offsets = [0]}
// CHECK: %[[AB:.*]] = llama.concat %{{.*}}, %{{.*}} dim 0 : tensor<2x8xf32>, tensor<2x8xf32>{{$}}
// CHECK-NEXT: llama.concat %{{.*}}, %{{.*}} dim 0 {llama.offsets = [{{[0-9]+}}]}
// CHECK-NEXT: llama.concat %{{.*}}, %{{.*}} dim 0 {llama.offsets = [{{[0-9]+}}]}
// CHECK: llama.concat %{{.*}}, %{{.*}} dim 0 {llama.offsets = [{{[0-9]+}}]}
// CHECK-NEXT: llama.neg %[[AB]] {llama.offsets = [{{[0-9]+}}]}

// CHECK-LABEL: func.func @mixed
// CHECK-SAME: attributes {llama.arena_bytes = 1036 : i64, llama.buffers_bytes = 1548 : i64}
// CHECK-NEXT: llama.get_param @g : tensor<16xf32>{{$}}
// CHECK-NEXT: arith.constant {llama.offsets = [0]} dense<1.000000e+00> : tensor<4x16xf32>
// CHECK-NEXT: llama.fused_elementwise %arg1, %{{.*}} {llama.offsets = [256]}
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.addf %{{.*}}, %{{.*}} : f32{{$}}
// CHECK-NEXT: llama.yield
// CHECK-NEXT: }
// CHECK-NEXT: call @pair(%arg0) {llama.offsets = [1024, -1]}
// CHECK-NEXT: llama.add_rms_norm {{.*}} {llama.offsets = [512, 768]}
// CHECK-NEXT: llama.concat {{.*}} {llama.offsets = [0]}

// REPORT: memory plan @plan: 5 buffers, 2560 bytes without reuse, arena 2048 bytes, reuse 1.25x
// REPORT-NEXT: memory plan @pair: 2 buffers, 24 bytes without reuse, arena 76 bytes, reuse 0.32x
// REPORT-NEXT: memory plan @concat_views: 7 buffers, 1024 bytes without reuse, arena 768 bytes, reuse 1.33x
// REPORT-NEXT: memory plan @mixed: 6 buffers, 1548 bytes without reuse, arena 1036 bytes, reuse 1.49x

llama.model @m config <dim = 16, n_layers = 1, n_heads = 2, n_kv_heads = 1, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  llama.param @w : tensor<8x16xf32> init zeros
  llama.param @g : tensor<16xf32> init ones

  func.func @plan(%x: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
    %w = llama.get_param @w : tensor<8x16xf32>
    %a = llama.exp %x : tensor<8x16xf32>
    %r = llama.neg %a : tensor<8x16xf32>
    %b = llama.sigmoid %x : tensor<8x16xf32>
    %v = llama.split_dim %b dim 1 into [4, 4] : tensor<8x16xf32>
    %c = llama.add %x, %w : tensor<8x16xf32>
    %m = llama.merge_dims %v dim 1 : tensor<8x4x4xf32>
    %d = llama.mul %c, %m : tensor<8x16xf32>
    return %r, %d : tensor<8x16xf32>, tensor<8x16xf32>
  }

  func.func private @pair(%x: tensor<3xf32>) -> (tensor<3xf32>, i64) {
    %n = arith.constant 3 : i64
    %e = llama.exp %x : tensor<3xf32>
    %f = llama.neg %e : tensor<3xf32>
    return %f, %n : tensor<3xf32>, i64
  }

  func.func @concat_views(%x: tensor<64xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<32xf32>) {
    %u = llama.exp %x : tensor<64xf32>
    %a = llama.slice %u dim 0 [0, 16] : tensor<64xf32>
    %a2 = llama.split_dim %a dim 0 into [2, 8] : tensor<16xf32>
    %b = llama.slice %u dim 0 [16, 16] : tensor<64xf32>
    %b2 = llama.split_dim %b dim 0 into [2, 8] : tensor<16xf32>
    %c = llama.slice %u dim 0 [48, 16] : tensor<64xf32>
    %c2 = llama.split_dim %c dim 0 into [2, 8] : tensor<16xf32>
    %ab = llama.concat %a2, %b2 dim 0 : tensor<2x8xf32>, tensor<2x8xf32>
    %ac = llama.concat %a2, %c2 dim 0 : tensor<2x8xf32>, tensor<2x8xf32>
    %ba = llama.concat %b2, %a2 dim 0 : tensor<2x8xf32>, tensor<2x8xf32>
    %xa = llama.slice %x dim 0 [0, 16] : tensor<64xf32>
    %xb = llama.slice %x dim 0 [16, 16] : tensor<64xf32>
    %xab = llama.concat %xa, %xb dim 0 : tensor<16xf32>, tensor<16xf32>
    %y = llama.neg %ab : tensor<4x8xf32>
    %z = llama.add %ac, %ba : tensor<4x8xf32>
    %w = llama.exp %xab : tensor<32xf32>
    return %y, %z, %w : tensor<4x8xf32>, tensor<4x8xf32>, tensor<32xf32>
  }

  func.func @mixed(%x: tensor<3xf32>, %y: tensor<4x16xf32>) -> (tensor<3xf32>, tensor<4x32xf32>) {
    %g = llama.get_param @g : tensor<16xf32>
    %k = arith.constant dense<1.0> : tensor<4x16xf32>
    %s = llama.fused_elementwise %y, %k : tensor<4x16xf32>, tensor<4x16xf32> -> tensor<4x16xf32> {
    ^bb0(%p: f32, %q: f32):
      %t = arith.addf %p, %q : f32
      llama.yield %t : f32
    }
    %e, %n = func.call @pair(%x) : (tensor<3xf32>) -> (tensor<3xf32>, i64)
    %sum, %normed = llama.add_rms_norm %s, %y, %g eps 1.0e-05 : tensor<4x16xf32>, tensor<16xf32>
    %big = llama.concat %sum, %normed dim 1 : tensor<4x16xf32>, tensor<4x16xf32>
    return %e, %big : tensor<3xf32>, tensor<4x32xf32>
  }
}
