#!/usr/bin/env bash
# Installs the build tree at $1 into a scratch prefix, then configures, builds and runs a separate
# project that finds it with find_package(shmring).
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" > "$scratch/install.log"
cmake -S "$source_dir" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" > "$scratch/configure.log"
cmake --build "$scratch/build" > "$scratch/build.log"
"$scratch/build/consumer"
