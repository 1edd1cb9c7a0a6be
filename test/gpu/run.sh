#!/usr/bin/env bash
# Every GPU check and the CUDA benchmark, for a machine with an NVIDIA GPU (sm_80 or newer),
# in one go (under five minutes on an H100 once the dependencies are installed):
#   1. builds llamac with the CUDA backend (scripts/build.sh, in $BUILD_DIR or build-gpu/)
#   2. compares every CUDA kernel with the CPU's (ctest -L gpu: GEMMs in each precision,
#      every kernel of runtime/cuda/CudaKernels.h, flash attention and the KV cache)
#   3. runs the lit tests that need a GPU (REQUIRES: cuda): the tiny model's compiled
#      gradients and logits against the interpreter, its loss curve against the CPU's, and
#      KV-cache decoding against recomputation
#   4. prints the benchmark table of bench/bench-cuda.sh
# Everything it prints belongs in docs/PERFORMANCE.md with the GPU's name.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export BUILD_DIR="${BUILD_DIR:-$root/build-gpu}"
start=$(date +%s)
stage() { echo "== [$(($(date +%s) - start)) s] $*"; }

stage "GPU"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader

stage "1. build"
bash "$root/scripts/build.sh" > "$BUILD_DIR.log" 2>&1 || { tail -40 "$BUILD_DIR.log"; exit 1; }
grep -m1 'CUDA toolkit' "$BUILD_DIR.log" || true

stage "2. kernels against the CPU (ctest -L gpu)"
ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure -j 4 | tail -15

stage "3. end to end on the GPU (lit, REQUIRES: cuda)"
lit="$(grep -m1 'LLVM_EXTERNAL_LIT:' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)"
"$lit" -sv "$BUILD_DIR/test/gpu" "$BUILD_DIR/test/codegen/cuda-compile.test"

stage "4. benchmark"
bash "$root/bench/bench-cuda.sh" "$BUILD_DIR"
stage "done"
