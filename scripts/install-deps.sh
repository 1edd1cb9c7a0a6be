#!/usr/bin/env bash
# Installs every Debian 12 package llamac needs. Idempotent: packages already present are
# skipped, and apt-get is not called at all when nothing is missing. Run as root.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ pkg-config python3
  # IR, passes, tools, lit and FileCheck
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime: CPU GEMM (BLIS's OpenMP build, not the serial one), tokenizer, schemas,
  # multi-process
  libblis-dev libblis-openmp-dev libsentencepiece-dev sentencepiece libprotobuf-dev
  protobuf-compiler libopenmpi-dev openmpi-bin
  # the default corpus
  bible-kjv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
