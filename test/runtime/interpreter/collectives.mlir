// `llamac run --ranks N` runs a program with collectives on N simulated ranks.
// (Rank-dependent values, checked by hand: test/runtime/interpreter/SimulatedRanksTest.cpp.)
// RUN: llamac run %s --function f --ranks 2 | FileCheck %s
// RUN: not llamac run %s --function f 2>&1 | FileCheck %s --check-prefix=ONE
// RUN: not llamac run %s --function f --ranks 3 2>&1 | FileCheck %s --check-prefix=THREE
// RUN: not llamac run %s --function f --ranks 0 2>&1 | FileCheck %s --check-prefix=ZERO

// Every rank holds 2s: their sum over 2 ranks is 4; the gather stacks both ranks' rows;
// each rank knows its index.
// CHECK: rank 0 result0: f32[2x2] = [4, 4, 4, 4]
// CHECK-NEXT: rank 0 result1: f32[4x2] = [2, 2, 2, 2, 2, 2, 2, 2]
// CHECK-NEXT: rank 0 result2: i64[scalar] = [0]
// CHECK-NEXT: rank 1 result0: f32[2x2] = [4, 4, 4, 4]
// CHECK-NEXT: rank 1 result1: f32[4x2] = [2, 2, 2, 2, 2, 2, 2, 2]
// CHECK-NEXT: rank 1 result2: i64[scalar] = [1]
// ONE: llamac: error: 'shard.all_reduce' at {{.*}}: grid @ring has 2 processes but the interpreter runs 1 rank(s)
// THREE: llamac: error: rank 0: {{.*}}grid @ring has 2 processes but the interpreter runs 3 rank(s)
// ZERO: llamac: error: --ranks must be between 1 and 1024, got 0

llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 2, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  shard.grid @ring(shape = 2)
  llama.param @ones : tensor<2x2xf32> init ones
  func.func @f(%unused: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<4x2xf32>, index) {
    %one = llama.get_param @ones : tensor<2x2xf32>
    %x = llama.add %one, %one : tensor<2x2xf32>
    %s = shard.all_reduce %x on @ring grid_axes = [0] reduction = sum : tensor<2x2xf32> -> tensor<2x2xf32>
    %g = shard.all_gather %x on @ring grid_axes = [0] gather_axis = 0 : tensor<2x2xf32> -> tensor<4x2xf32>
    %i = shard.process_linear_index on @ring : index
    return %s, %g, %i : tensor<2x2xf32>, tensor<4x2xf32>, index
  }
}
