// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-fuse-cross-entropy="report=1 chunk=5" --llamac-autodiff | FileCheck %s
// RUN: not llamac-opt %S/llamac-autodiff.mlir --llamac-fuse-cross-entropy="chunk=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: llamac check %S/llamac-autodiff.mlir --pipeline 'llamac-frontend{batch=1 seq=4},inline,llamac-fuse-cross-entropy{chunk=5}' --batch 1 --seq 4 --tol 1e-12 | FileCheck %s --check-prefix=SAME

// CHECK: llamac-fuse-cross-entropy: fused 1
// CHECK-LABEL: func.func @loss_grad
// CHECK: %[[LOSS:.*]], %[[LSE:.*]] = llama.fused_cross_entropy %[[LOGITS:.*]], %[[T:.*]] chunk 5 : tensor<1x4x16xf32>, tensor<1x4xi32>
// CHECK: llama.fused_cross_entropy_grad %[[LOGITS]], %[[T]], %[[LSE]], %{{.*}} chunk 5 {llama.backward} : tensor<1x4x16xf32>, tensor<1x4xi32>, tensor<1x4xf32>
// CHECK-NOT: llama.cross_entropy_grad
// BAD: llamac-fuse-cross-entropy: chunk must be positive, got -1
// SAME: @loss result0 {{.*}} ok
