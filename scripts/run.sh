#!/usr/bin/env bash
# The main job on its embedded default: set up, build, then compile every model in models/
# through the pipeline and print its summary and its `llamac info` report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
bash "$root/scripts/main-job.sh" "$build/bin"
