#!/usr/bin/env bash
# Installs what shmring needs to build, test and benchmark, from Debian 12 packages. Idempotent:
# does nothing (not even apt-get update) when everything is already there. Run as root.
set -euo pipefail

packages=(
  build-essential cmake g++ pkg-config ccache   # toolchain
  libabsl-dev libboost-dev                      # library dependencies
  libcli11-dev                                  # the command line's parser (header only)
  libgtest-dev libgmock-dev libbenchmark-dev    # tests and micro-benchmarks
  clang libclang-rt-14-dev                      # libFuzzer targets
  libzmq3-dev iceoryx libiceoryx-posh-dev       # the bridge; peers in the cross-process benchmark
  libgrpc++-dev                                 # gRPC over a Unix socket: a peer of the services
  gnuplot-nox python3                           # bench/run_all.sh: plots and tables
  python3-dev pybind11-dev python3-pybind11     # the Python package (transport/python)
  python3-numpy python3-pytest python3-zmq      # its tests and bench/python
  python3-venv python3-setuptools python3-wheel # `pip install .` into a venv (pyproject.toml)
  python3-build mypy                            # the wheel and the typed example's check
  tmux                                          # drives `shmring top` in its test
  strace                                        # counts system calls per message in a test
  iproute2                                      # the bridge tests' network namespaces (ip netns)
  libzstd-dev python3-zstandard                 # shmring record (zstd chunks; the Python reader)
  dpkg-dev lintian file man-db groff-base       # the Debian packages (cpack, lintian, man pages)
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
