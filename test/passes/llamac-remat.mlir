// The activation bytes the backward keeps, per policy, for one layer at batch 1, seq 4
// (f32, 16 bytes per channel): `none` keeps every forward value the backward reads (the
// norm output, RoPE'd q and k, v, the attention output, h, the FFN norm output, w1 and w3
// outputs, SiLU, the product, the layer output: 1920 bytes); `selective` keeps the
// projections, attention and the layer output and recomputes norms, RoPE, SiLU and the
// product (1152); `full` keeps only what crosses the layer boundary: the layer's output
// (128; its input, the embedding, is counted outside). Outside: embedding output, final
// norm output, logits (512).
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-autodiff --llamac-remat="policy=none report=1" -o /dev/null | FileCheck %s --check-prefix=NONE
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-autodiff --llamac-remat="policy=selective report=1" -o /dev/null | FileCheck %s --check-prefix=SELECTIVE
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-autodiff --llamac-remat="policy=full report=1" -o /dev/null | FileCheck %s --check-prefix=FULL
// RUN: llamac-opt %S/llamac-autodiff.mlir --llamac-frontend="batch=1 seq=4" --inline --llamac-autodiff --llamac-remat="policy=full" | FileCheck %s --check-prefix=IR
// RUN: not llamac-opt %S/llamac-autodiff.mlir --llamac-remat="policy=some" 2>&1 | FileCheck %s --check-prefix=BAD

// NONE: remat policy none, @loss_grad: activation bytes kept for the backward
// NONE-NEXT: (outside) 512
// NONE-NEXT: layers.0 1920
// NONE-NEXT: total 2432
// SELECTIVE: remat policy selective, @loss_grad
// SELECTIVE-NEXT: (outside) 512
// SELECTIVE-NEXT: layers.0 1152
// SELECTIVE-NEXT: total 1664
// FULL: remat policy full, @loss_grad
// FULL-NEXT: (outside) 512
// FULL-NEXT: layers.0 128
// FULL-NEXT: total 640

// Under `full` the backward recomputes the layer from its input: the first norm and the
// projections appear again, tagged as backward, before the layer's gradients.
// IR-LABEL: func.func @loss_grad
// IR: llama.cross_entropy_grad
// IR: llama.rms_norm %{{.*}}, %{{.*}} eps {{.*}} {llama.backward}
// IR: llama.linear %{{.*}}, %{{.*}} {llama.backward}
// IR: llama.attention_grad
// BAD: llamac-remat: unknown policy 'some' (none, selective or full)
