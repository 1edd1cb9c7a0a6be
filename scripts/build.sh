#!/usr/bin/env bash
# Installs the dependencies (scripts/install-deps.sh), configures with Ninja and builds.
# BUILD_DIR (default: build) and BUILD_TYPE (default: Release) may be set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

bash "$root/scripts/install-deps.sh"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
fi
cmake --build "$build"
