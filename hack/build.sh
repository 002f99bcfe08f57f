#!/usr/bin/env bash
# Configures and builds into build/ (binaries in build/bin/). Arguments name targets (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${JOBS:-$(nproc)}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
if [ ! -f build/build.ninja ]; then
  echo "build: configuring (${build_type})"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${build_type}" >/dev/null
fi
echo "build: compiling with -j${jobs}"
# Plain arguments name targets: ./hack/build.sh gasoline-kv assign_test
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"${jobs}" "${targets[@]}"
echo "build: binaries in build/bin/"
