#!/usr/bin/env bash
# Proves shmring can be consumed three ways:
#  1. installs the build tree at $1 into a scratch prefix, then configures, builds and runs a
#     separate project that finds it with find_package(shmring);
#  2. the same project finding the build tree itself (shmring_DIR=$1, nothing installed);
#  3. configures, builds and runs a project that pulls the sources in with add_subdirectory.
set -euo pipefail
build_dir=$1
here=$(cd "$(dirname "$0")" && pwd)
source_root=$(cd "$here/../.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

cmake --install "$build_dir" --prefix "$scratch/prefix" > "$scratch/install.log"
# The Python package, when it was built: importable from the installed dist-packages alone.
if [ -d "$build_dir/python/shmring" ]; then
  site=$(ls -d "$scratch"/prefix/lib/python3*/dist-packages 2>/dev/null | head -1)
  if [ -z "$site" ] || ! (cd "$scratch" && PYTHONPATH="$site" /usr/bin/python3 -c \
      "import shmring, sys; assert shmring.__file__.startswith(sys.argv[1]); print('python package:', shmring.__file__)" \
      "$site"); then
    echo "the installed Python package does not import (site: ${site:-none})"; exit 1
  fi
fi
cmake -S "$here" -B "$scratch/find_package" -DCMAKE_PREFIX_PATH="$scratch/prefix" "${launcher[@]}" \
  > "$scratch/configure.log"
cmake --build "$scratch/find_package" > "$scratch/build.log"
echo "find_package:"
"$scratch/find_package/consumer"

cmake -S "$here" -B "$scratch/build_tree" -Dshmring_DIR="$build_dir" "${launcher[@]}" \
  > "$scratch/configure_build_tree.log"
cmake --build "$scratch/build_tree" > "$scratch/build_build_tree.log"
echo "find_package from the build tree:"
"$scratch/build_tree/consumer"

cmake -S "$source_root/tests/subdirectory_consumer" -B "$scratch/subdirectory" \
  -DSHMRING_SOURCE_DIR="$source_root" "${launcher[@]}" > "$scratch/configure2.log"
cmake --build "$scratch/subdirectory" -j 2 > "$scratch/build2.log"
echo "add_subdirectory:"
"$scratch/subdirectory/consumer"
