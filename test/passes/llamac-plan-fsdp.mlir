// llamac-plan-fsdp on the tiny model's training program, 2 ranks: the units, the schedule of
// gathers and reduce-scatters, the sharded update, the report; and its errors.
// RUN: llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=2 report=1" 2> %t.report | FileCheck %s
// RUN: FileCheck %s --check-prefix=REPORT < %t.report
// The whole training pipeline under mixed precision: concatenated weights back to back, and
// units gathered in bf16:
// RUN: llamac-opt %models/tiny.mlir --llamac-training="batch=2 seq=8 fsdp=2 precision=bf16" | FileCheck %s --check-prefix=BF16
// RUN: llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=3 reshard-after-forward=false" | FileCheck %s --check-prefix=KEEP
// RUN: llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=2" | FileCheck %s --check-prefix=PF1
// RUN: llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=2 prefetch=0" | FileCheck %s --check-prefix=PF0
// RUN: llamac-opt %models/tiny.mlir --llamac-training="batch=2 seq=8 fsdp=2 fsdp-prefetch=0" --llamac-memory-plan="report=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=MEM0
// RUN: llamac-opt %models/tiny.mlir --llamac-training="batch=2 seq=8 fsdp=2 fsdp-prefetch=1" --llamac-memory-plan="report=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=MEM1
// RUN: llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=4 replicas=2 report=1" 2> %t.hybrid | FileCheck %s --check-prefix=HYBRID
// RUN: FileCheck %s --check-prefix=HYBRID-REPORT < %t.hybrid
// RUN: not llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=4 replicas=3" 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --llamac-plan-fsdp="ranks=2" 2>&1 | FileCheck %s --check-prefix=NOSTEP
// RUN: not llamac-opt %models/tiny.mlir --llamac-frontend="batch=2 seq=8" --inline --llamac-autodiff --llamac-train-step --llamac-plan-fsdp="ranks=0" 2>&1 | FileCheck %s --check-prefix=ZERO

// The grid, then four shards per unit (weights, gradient, moments), each with its layout.
// CHECK: shard.grid @fsdp(shape = 2)
// CHECK: llama.param @fsdp.tok_embeddings : tensor<16384xf32> init zeros {llama.fsdp = {flat = 32768 : i64, inits = ["normal"], members = ["tok_embeddings"], offsets = array<i64: 0>, padded = 32768 : i64, ranks = 2 : i64, replicas = 1 : i64, shapes = [array<i64: 512, 64>], stds = array<f64: 2.000000e-02>}}
// CHECK: llama.param @fsdp.grad.tok_embeddings : tensor<16384xf32> init zeros state
// The norm gains (not weight-decayed) are one unit of their own.
// CHECK: llama.param @fsdp.norms : tensor<160xf32> init zeros {llama.fsdp = {flat = 320 : i64, inits = ["ones", "ones", "ones", "ones", "ones"], members = ["norm", "layers.0.attention_norm", "layers.0.ffn_norm", "layers.1.attention_norm", "layers.1.ffn_norm"], offsets = array<i64: 0, 64, 128, 192, 256>
// CHECK: llama.param @fsdp.layers.0 : tensor<23040xf32> init zeros {llama.fsdp = {flat = 46080 : i64, inits = {{.*}}, members = ["layers.0.attention.wq", "layers.0.attention.wk", "layers.0.attention.wv", "layers.0.attention.wo", "layers.0.feed_forward.w1", "layers.0.feed_forward.w2", "layers.0.feed_forward.w3"], offsets = array<i64: 0, 4096, 6144, 8192, 12288, 23552, 34816>
// CHECK-NOT: llama.param @layers.0.attention.wq
// CHECK-NOT: llama.param @grad.

// The forward gathers each unit before its first use, in layer order; each weight is a
// slice (and split_dim) of the gathered buffer.
// CHECK-LABEL: func.func @train_grad
// CHECK: %[[E:.*]] = llama.get_param @fsdp.tok_embeddings : tensor<16384xf32>
// CHECK-NEXT: %[[EG:.*]] = shard.all_gather %[[E]] on @fsdp grid_axes = [0] gather_axis = 0 : tensor<16384xf32> -> tensor<32768xf32>
// CHECK-NEXT: %[[EF:.*]] = llama.slice %[[EG]] dim 0 [0, 32768] : tensor<32768xf32>
// CHECK-NEXT: llama.split_dim %[[EF]] dim 0 into [512, 64]
// CHECK: %[[L0:.*]] = llama.get_param @fsdp.layers.0 : tensor<23040xf32>
// CHECK-NEXT: shard.all_gather %[[L0]] on @fsdp {{.*}} : tensor<23040xf32> -> tensor<46080xf32>
// CHECK: %[[L1:.*]] = llama.get_param @fsdp.layers.1 : tensor<23040xf32>
// CHECK-NEXT: shard.all_gather %[[L1]] on @fsdp {{.*}} : tensor<23040xf32> -> tensor<46080xf32>
// CHECK: llama.get_param @fsdp.output
// CHECK: llama.cross_entropy
// Reshard after forward: the backward gathers again, in reverse layer order.
// CHECK: shard.all_gather {{.*}} {llama.backward} : tensor<16384xf32> -> tensor<32768xf32>
// CHECK: %[[B1:.*]] = llama.get_param @fsdp.layers.1 : tensor<23040xf32>
// CHECK-NEXT: shard.all_gather %[[B1]] on @fsdp {{.*}} {llama.backward} : tensor<23040xf32> -> tensor<46080xf32>
// CHECK: %[[B0:.*]] = llama.get_param @fsdp.layers.0 : tensor<23040xf32>
// CHECK-NEXT: shard.all_gather %[[B0]] on @fsdp {{.*}} {llama.backward} : tensor<23040xf32> -> tensor<46080xf32>
// Gradients: flattened, concatenated, reduce-scattered into the rank's shard.
// CHECK: %[[RS:.*]] = shard.reduce_scatter %{{.*}} on @fsdp grid_axes = [0] scatter_axis = 0 : tensor<32768xf32> -> tensor<16384xf32>
// CHECK: %[[OLD:.*]] = llama.get_param @fsdp.grad.tok_embeddings
// CHECK-NEXT: %[[SUM:.*]] = llama.add %[[OLD]], %[[RS]] : tensor<16384xf32>
// CHECK-NEXT: llama.set_param @fsdp.grad.tok_embeddings = %[[SUM]]
// CHECK: llama.concat {{.*}} dim 0 : tensor<4096xf32>, tensor<2048xf32>, tensor<2048xf32>, tensor<4096xf32>, tensor<11264xf32>, tensor<11264xf32>, tensor<11264xf32>
// CHECK: shard.reduce_scatter {{.*}} : tensor<46080xf32> -> tensor<23040xf32>
// The loss, summed over the ranks' micro-batches.
// CHECK: %[[LOSS:.*]] = shard.all_reduce %{{.*}} on @fsdp grid_axes = [0] : tensor<f32> -> tensor<f32>
// CHECK-NEXT: return %[[LOSS]]

// The update: the global norm from the ranks' sums of squares, AdamW on the shards only.
// CHECK-LABEL: func.func @train_update
// CHECK: %[[C:.*]], %[[N:.*]] = llama.grad_clip
// CHECK: %[[SS:.*]] = llama.mul %[[N]], %arg3
// CHECK: %[[SS2:.*]] = llama.mul %[[SS]], %[[SS]]
// CHECK: shard.all_reduce %[[SS2]] on @fsdp grid_axes = [0] : tensor<f32> -> tensor<f32>
// CHECK: llama.adamw {{.*}} weight_decay 1.000000e-01 : tensor<16384xf32>
// CHECK: llama.adamw {{.*}} weight_decay 0.000000e+00 : tensor<160xf32>
// CHECK-NOT: @loss_grad

// REPORT: llamac-plan-fsdp: 2 ranks, 5 units; parameters, gradients and AdamW state per rank 1.21 MiB of 2.41 MiB unsharded (0.500 = 1/2.00); largest gathered unit 0.18 MiB
// REPORT: unit layers.1: 7 tensors, 46080 elements, padded 46080, 23040 per rank

// Three ranks pad each unit to a multiple of 3; without resharding, one gather serves both
// passes.
// KEEP: llama.param @fsdp.tok_embeddings : tensor<10923xf32>
// KEEP: llama.param @fsdp.norms : tensor<107xf32>
// KEEP-LABEL: func.func @train_grad
// KEEP-NOT: shard.all_gather {{.*}} {llama.backward}
// KEEP: llama.pad {{.*}} dim 0 [0, 1] : tensor<32768xf32>
// KEEP-LABEL: func.func @train_update

// NOSTEP: error: llamac-plan-fsdp needs @train_grad and @train_update (run it after llamac-train-step)
// ZERO: error: llamac-plan-fsdp: ranks must be at least 1, a multiple of replicas (at least 1), and prefetch at least 0

// Prefetch (default 1): layer 1's gather is issued before layer 0 computes anything, so
// that it can overlap layer 0; with prefetch=0 it waits for its own first use.
// PF1-LABEL: func.func @train_grad
// PF1: shard.all_gather {{.*}} : tensor<23040xf32> -> tensor<46080xf32>
// PF1-NOT: llama.linear
// PF1: shard.all_gather {{.*}} : tensor<23040xf32> -> tensor<46080xf32>
// PF1: llama.linear
// PF0-LABEL: func.func @train_grad
// PF0: shard.all_gather {{.*}} : tensor<23040xf32> -> tensor<46080xf32>
// PF0: llama.linear
// PF0: shard.all_gather {{.*}} : tensor<23040xf32> -> tensor<46080xf32>

// The memory plan holds the gathered units where they live: prefetching one unit ahead
// keeps two layers' gathered weights in the forward's arena at once.
// (Each weight is a view of its unit's gathered buffer, which therefore lives until the
// weight's last use.)
// Under mixed precision the layers' matrices and the output head are read only as bf16
// (llamac-mixed-precision), so their units are gathered in bf16, half the bytes: the f32
// shard narrowed, then gathered. [W1; W3] are placed back to back (the fused feed-forward
// concatenates them), and the concatenations read the bf16 gathered views with no cast in
// between. The embedding table and the norms' gains are read in f32, and so gathered.
// Gradients stay f32 (reduce-scattered in f32).
// BF16: llama.param @fsdp.layers.0 : tensor<23040xf32> {{.*}}members = ["layers.0.attention.wq", "layers.0.attention.wk", "layers.0.attention.wv", "layers.0.attention.wo", "layers.0.feed_forward.w1", "layers.0.feed_forward.w3", "layers.0.feed_forward.w2"]
// BF16-LABEL: func.func @train_grad
// BF16: %[[N:.*]] = llama.get_param @fsdp.norms : tensor<160xf32>
// BF16-NEXT: shard.all_gather %[[N]] on @fsdp grid_axes = [0] gather_axis = 0 : tensor<160xf32> -> tensor<320xf32>
// BF16: %[[S:.*]] = llama.get_param @fsdp.layers.0 : tensor<23040xf32>
// BF16-NEXT: %[[SB:.*]] = llama.cast %[[S]] : tensor<23040xf32> to tensor<23040xbf16>
// BF16-NEXT: shard.all_gather %[[SB]] on @fsdp grid_axes = [0] gather_axis = 0 : tensor<23040xbf16> -> tensor<46080xbf16>
// BF16: %[[QKV:.*]] = llama.concat %{{.*}}, %{{.*}}, %{{.*}} dim 0 : tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>
// BF16-NEXT: %[[X:.*]] = llama.cast %{{.*}} : tensor<2x8x64xf32> to tensor<2x8x64xbf16>
// BF16-NEXT: llama.linear %[[X]], %[[QKV]] : tensor<2x8x64xbf16>, tensor<128x64xbf16>
// BF16: llama.concat %{{.*}}, %{{.*}} dim 0 : tensor<176x64xbf16>, tensor<176x64xbf16>
// BF16: %[[O:.*]] = llama.get_param @fsdp.output : tensor<16384xf32>
// BF16-NEXT: %[[OB:.*]] = llama.cast %[[O]] : tensor<16384xf32> to tensor<16384xbf16>
// BF16-NEXT: shard.all_gather %[[OB]] {{.*}} : tensor<16384xbf16> -> tensor<32768xbf16>
// BF16: shard.reduce_scatter %{{.*}} : tensor<46080xf32> -> tensor<23040xf32>
// BF16-NOT: shard.all_gather {{.*}} : tensor<23040xf32>

// The concatenations [Wq; Wk; Wv] and [W1; W3] are views of the gathered unit too: their
// members lie back to back in it (collectUnits), so no layer copies its weights.
// MEM0: memory plan @forward: 36 buffers, 831232 bytes without reuse, arena 223488 bytes
// MEM1: memory plan @forward: 36 buffers, 831232 bytes without reuse, arena 407808 bytes

// Hybrid sharding, 4 ranks as 2 replicas of 2: a 2-D grid; units sharded along axis 1 over
// the 2 ranks of a group; each reduced gradient shard summed over the replicas (axis 0); the
// norm summed within the group only.
// HYBRID: shard.grid @fsdp(shape = 2x2)
// HYBRID: llama.param @fsdp.tok_embeddings : tensor<16384xf32> {{.*}}ranks = 2 : i64, replicas = 2 : i64
// HYBRID-LABEL: func.func @train_grad
// HYBRID: shard.all_gather %{{.*}} on @fsdp grid_axes = [1] gather_axis = 0 : tensor<16384xf32> -> tensor<32768xf32>
// HYBRID: %[[RS:.*]] = shard.reduce_scatter %{{.*}} on @fsdp grid_axes = [1] scatter_axis = 0 : tensor<32768xf32> -> tensor<16384xf32>
// HYBRID-NEXT: %[[AR:.*]] = shard.all_reduce %[[RS]] on @fsdp grid_axes = [0] : tensor<16384xf32> -> tensor<16384xf32>
// HYBRID: llama.add %{{.*}}, %[[AR]] : tensor<16384xf32>
// HYBRID: %[[L1:.*]] = shard.all_reduce %{{.*}} on @fsdp grid_axes = [0] : tensor<f32> -> tensor<f32>
// HYBRID-NEXT: %[[L2:.*]] = shard.all_reduce %[[L1]] on @fsdp grid_axes = [1] : tensor<f32> -> tensor<f32>
// HYBRID-NEXT: return %[[L2]]
// HYBRID-LABEL: func.func @train_update
// HYBRID: shard.all_reduce %{{.*}} on @fsdp grid_axes = [1] : tensor<f32> -> tensor<f32>
// HYBRID-REPORT: llamac-plan-fsdp: 4 ranks (2 replicas of 2), 5 units; parameters, gradients and AdamW state per rank 1.21 MiB of 2.41 MiB unsharded (0.500 = 1/2.00)
