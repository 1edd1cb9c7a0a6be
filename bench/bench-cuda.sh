#!/usr/bin/env bash
# CUDA benchmarks of issue 7, all in one run on one GPU so that the ratios compare like with
# like (test/gpu/run.sh calls it after the GPU tests):
#   1. the GPU's bf16 dense peak (cuBLASLt bf16 GEMM at 8192^3), llamac's GEMMs and flash
#      attention (forward and backward at the ~1B shape) against it: llamac-bench-cuda
#   2. training TinyLlama-1.1B (models/tinyllama-1b.mlir), micro-batch 4 x 2048 tokens, bf16
#      products: step time, tokens/s and MFU = model FLOPs per token (6N + attention, as
#      --info reports) x tokens/s / the peak of (1); then the same with CUDA graphs
#   3. inference of the same model, batch 1: prefill of a 1-token prompt and 255 decode steps
#
#   bench/bench-cuda.sh <build dir> [work dir]
# Environment: BENCH_STEPS (default 12) training steps, the first 2 not counted.
set -euo pipefail
build="$(cd "${1:?usage: bench-cuda.sh <build dir> [work dir]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$build/bench-cuda}"
steps="${BENCH_STEPS:-12}"
mkdir -p "$work"
bin="$build/bin"

echo "== 1. GPU peak and kernels"
"$bin/llamac-bench-cuda" 8192 20 | tee "$work/peak.txt"
peak=$(sed -n 's/^bf16 peak: .*: \([0-9.]*\) TFLOP\/s/\1/p' "$work/peak.txt")

if [ ! -s "$work/kjv.txt" ]; then
  bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$work/kjv.txt"
fi
tokenizer="$root/../shared/data/llama-tokenizer.model"
if [ ! -f "$tokenizer" ]; then
  tokenizer="$work/kjv-8k.model"
  [ -s "$tokenizer" ] || "$bin/llamac" tokenizer train "$work/kjv.txt" --vocab 8000 -o "$tokenizer" > /dev/null
fi

echo "== 2. training TinyLlama-1.1B, 4 x 2048 tokens per micro-batch, bf16 products"
"$bin/llamac" compile "$root/models/tinyllama-1b.mlir" --target cuda --mode train --batch 4 \
  --seq 2048 -o "$work/train_1b"
"$work/train_1b" --info > "$work/info.txt"
flops=$(sed -n 's/^flops *\([0-9.eE+]*\)\([kMGTP]\?\) per trained token.*/\1 \2/p' "$work/info.txt")
run_training() { # $1: label, then environment assignments
  local label="$1"; shift
  rm -rf "$work/logs-$label"
  env "$@" "$work/train_1b" --data "$work/kjv.txt" --tokenizer "$tokenizer" --steps "$steps" \
    --valid-every 0 --log-dir "$work/logs-$label" --log-every 1 --progress never \
    > "$work/train-$label.log" 2>&1
  python3 - "$work/logs-$label/metrics.csv" "$peak" $flops "$label" <<'PY'
import csv, sys
path, peak, value = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
unit = sys.argv[4] if len(sys.argv) > 5 else ''
label = sys.argv[-1]
scale = {'': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15}[unit]
rows = list(csv.DictReader(open(path)))[2:]
tps = sum(float(r['tokens_per_s']) for r in rows) / len(rows)
step = 8192 / tps
mfu = value * scale * tps / (peak * 1e12)
print('%-10s step %.3f s, %.0f tokens/s, model %.1f TFLOP/s, MFU %.3f of the bf16 peak '
      '(last loss %s)' % (label, step, tps, value * scale * tps / 1e12, mfu, rows[-1]['loss']))
PY
}
run_training direct LLAMAC_CUDA_GRAPHS=0
run_training graphs LLAMAC_CUDA_GRAPHS=1
echo "-- one profiled step (kernels synchronised one by one: shares, not speed)"
"$work/train_1b" --data "$work/kjv.txt" --tokenizer "$tokenizer" --steps 1 --valid-every 0 \
  --progress never --profile 2>&1 | sed -n '/^kernel /,/^total /p' | head -20

echo "== 3. inference TinyLlama-1.1B, batch 1"
"$bin/llamac" compile "$root/models/tinyllama-1b.mlir" --target cuda --mode infer --seq 64 \
  -o "$work/infer_1b" > /dev/null
"$work/infer_1b" --prompt-ids 1 --max-tokens 255 --greedy --no-stream 2>&1 | tail -2
