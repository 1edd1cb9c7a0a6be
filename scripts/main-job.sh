#!/usr/bin/env bash
# The main job on its embedded default, given the directory of the built tools: compile
# every model in models/ through the pipeline and print its summary and `llamac info`
# report (batch 1, at each model's own context length). scripts/run.sh calls it after
# set-up; test/tools/main-job.test runs it in the suite so that the README's first command
# stays true.
set -euo pipefail
bin="${1:?usage: main-job.sh <bin dir>}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for model in "$root"/models/*.mlir; do
  echo "== $(basename "$model")"
  "$bin/llamac" compile "$model" --batch 1
  "$bin/llamac" info "$model" --batch 1 | sed 's/^/  /'
done
