#!/usr/bin/env bash
# BLIS against llamac's own f32 GEMM (runtime/cpu/Gemm.cpp) on every distinct GEMM shape a
# model's programs launch: the training step (batch x seq) and f32 inference's decode (M = 1)
# and prefill, both implementations timed alternately in one run (llamac-bench-gemm --shapes).
#
#   bench/bench-gemm.sh <build dir> [model.mlir] [batch] [seq]
# Defaults: models/stories15m.mlir, batch 8, seq 256. Environment: BENCH_REPEATS (default 10)
# runs per median, OMP_NUM_THREADS as the programs would run.
set -euo pipefail
build="$(cd "${1:?usage: bench-gemm.sh <build dir> [model.mlir] [batch] [seq]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${2:-$root/models/stories15m.mlir}"
batch="${3:-8}"
seq="${4:-256}"
bin="$build/bin"
shapes="$(mktemp)"
trap 'rm -f "$shapes"' EXIT

# "gemm_xx(...) -> (...) {M = m, N = n, K = k, accumulate = a...}" -> "gemm_xx m n k a".
extract() {
  grep -oE '(gemm_n[nt]|gemm_tn)\(.*\{M = [0-9]+, N = [0-9]+, K = [0-9]+, accumulate = [01]' |
    sed -E 's/^(gemm_[a-z]+)\(.*\{M = ([0-9]+), N = ([0-9]+), K = ([0-9]+), accumulate = ([01])/\1 \2 \3 \4 \5/'
}
{
  echo "# training step, batch $batch x seq $seq"
  "$bin/llamac" compile "$model" --mode train --batch "$batch" --seq "$seq" --emit kernels | extract | sort -u
  echo "# f32 inference (prefill and decode)"
  "$bin/llamac" compile "$model" --mode infer --emit kernels | extract | sort -u
} > "$shapes"
grep -v '^#' "$shapes" | sort -u | "$bin/llamac-bench-gemm" --shapes - "${BENCH_REPEATS:-10}"
