#!/usr/bin/env bash
# Issue 8's CPU benchmark: the stories15M-class training step on 2 MPI ranks, plain data
# parallel (every rank holds all weights, gradients summed on the host after the backward)
# against FSDP (`llamac compile --fsdp 2`: each rank holds half of the weights, gradients and
# AdamW state; units gathered before use and gradients reduce-scattered inside the step),
# with one process on the same two cores as the reference. Same global batch everywhere
# (2 x 4 micro-batches of 4 x 256 tokens per step), measured alternately in one run.
#
#   bench/bench-fsdp.sh <build dir> [work dir]
# Environment: BENCH_STEPS (default 10) steps per measurement, BENCH_ROUNDS (default 3)
# alternating rounds; the best round of each configuration is reported.
set -euo pipefail
build="$(cd "${1:?usage: bench-fsdp.sh <build dir> [work dir]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$build/bench-fsdp}"
steps="${BENCH_STEPS:-10}"
rounds="${BENCH_ROUNDS:-3}"
bin="$build/bin"
model="$root/models/stories15m.mlir"
mkdir -p "$work"

. "$root/bench/corpus.sh"
kjv_corpus "$work" "$bin"

echo "== build"
"$bin/llamac" compile "$model" --mode train --batch 4 --seq 256 -o "$work/train" > /dev/null
"$bin/llamac" compile "$model" --mode train --batch 4 --seq 256 --fsdp 2 -o "$work/train_fsdp2" |
  grep "per rank"

common=(--data "$work/kjv.txt" --tokenizer "$work/kjv8k.model" --steps "$steps" --lr 1e-3
        --valid-every 0 --progress never)
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)

declare -A best=([one]=0 [dp]=0 [fsdp]=0)
for round in $(seq "$rounds"); do
  "$work/train" "${common[@]}" --grad-accum 8 --threads 2 > "$work/one.log" 2>&1
  "${mpi[@]}" "$work/train" "${common[@]}" --grad-accum 4 --threads 1 > "$work/dp.log" 2>&1
  "${mpi[@]}" "$work/train_fsdp2" "${common[@]}" --grad-accum 4 --threads 1 > "$work/fsdp.log" 2>&1
  line="round $round:"
  for c in one dp fsdp; do
    r="$(rate "$work/$c.log")"
    line="$line $c $r"
    best[$c]="$(awk -v a="$r" -v b="${best[$c]}" 'BEGIN { print (a > b ? a : b) }')"
  done
  echo "$line (tokens/s)"
done
grep "rank 0 of 2 (FSDP)" "$work/fsdp.log"
awk -v one="${best[one]}" -v dp="${best[dp]}" -v fsdp="${best[fsdp]}" 'BEGIN {
  printf "best: one process %.0f, data parallel %.0f, FSDP %.0f tokens/s; FSDP / data parallel = %.2f\n",
         one, dp, fsdp, fsdp / dp }'
