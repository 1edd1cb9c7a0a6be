// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-attention="report=1 block-q=2 block-k=3" --llamac-autodiff | FileCheck %s
// RUN: not llamac-opt %S/llamac-autodiff.mlir --llamac-fuse-attention="block-q=0" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-fuse-attention{block-q=2 block-k=3}' --batch 1 --seq 4 --tol 1e-12 | FileCheck %s --check-prefix=SAME

// CHECK: llamac-fuse-attention: fused 2
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[O:.*]], %[[LSE:.*]] = llama.flash_attention %[[Q:.*]], %[[K:.*]], %[[V:.*]] causal block_q 2 block_k 3 : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>
// The backward takes the saved output and row log-sum-exp instead of recomputing them.
// CHECK: llama.flash_attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %{{.*}} causal block_q 2 block_k 3 {llama.backward} : tensor<1x4x2x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x1x4xf32>, tensor<1x4x2xf32>
// CHECK-NOT: llama.attention_grad
// BAD: llamac-fuse-attention: tiles must be positive, got 0 x 64
// SAME: @forward result0 {{.*}} ok
// SAME: @loss result0 {{.*}} ok
