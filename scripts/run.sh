#!/usr/bin/env bash
# The main job on its embedded default: set up, build, then compile every model in models/
# through the pipeline and print its summary and its `llamac info` report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"

for model in "$root"/models/*.mlir; do
  echo "== $(basename "$model")"
  "$build/bin/llamac" compile "$model" --batch 1 --seq 256
  "$build/bin/llamac" info "$model" --batch 1 --seq 256 | sed 's/^/  /'
done
