#!/usr/bin/env bash
# Compiles every model in models/ for --target cuda in both modes with nvcc (sm_80 and
# sm_90), as issue 7 asks beside the suite's tiny and 7B checks; prints one line per program
# and exits 1 if any fails. Needs a build with the CUDA toolkit (scripts/build.sh).
#   scripts/check-cuda-models.sh [build dir]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${BUILD_DIR:-$root/build}}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for model in "$root"/models/*.mlir; do
  name="$(basename "$model" .mlir)"
  for mode in train infer; do
    start=$(date +%s)
    if "$build/bin/llamac" compile "$model" --target cuda --mode "$mode" -o "$work/$name-$mode" \
        > "$work/log" 2>&1; then
      echo "ok    $name $mode ($(($(date +%s) - start)) s)"
    else
      echo "FAIL  $name $mode"; sed 's/^/      /' "$work/log" | tail -5
      failed=1
    fi
    rm -f "$work/$name-$mode"
  done
done
exit $failed
