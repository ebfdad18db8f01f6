#!/usr/bin/env bash
# The Debian packages, end to end (cmake/shmring_packaging.cmake):
#  1. `cpack -G DEB` in a built tree (timed; sizes printed);
#  2. lintian: no errors on any package (warnings are listed);
#  3. in a throw-away copy of this machine (an overlay over / in a private mount namespace, so the
#     real system is never touched and the check below sees every file the packages leave):
#     `apt-get install ./*.deb`; the CLI, its man page, completion and timer; the Python package
#     from dist-packages; a C and a C++ program built against the packages with CMake and with
#     pkg-config (shared and static), the docs' examples linked against the shared library, and
#     Python's ctypes loading it by its SONAME; then `apt-get purge` and a check that nothing of
#     the packages is left (only dpkg's and apt's own records change).
# Usage: packages_test.sh SOURCE_DIR BUILD_DIR (a built tree; any install prefix: the packages
# install under /usr). Needs root (apt, mount); exit 77 (skipped) otherwise.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "packages test: needs root (apt-get, mount); skipped"
  exit 77
fi
for tool in cpack lintian dpkg-deb dpkg-shlibdeps apt-get; do
  command -v "$tool" > /dev/null || { echo "packages test: $tool is missing (tools/install_deps.sh)"; exit 1; }
done
test_start=$SECONDS
work=$build/package-test
rm -rf "$build/packages" "$work"
mkdir -p "$work"

echo "== cpack"
start=$SECONDS
(cd "$build" && cpack -G DEB) > "$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
mapfile -t debs < <(ls "$build"/packages/*.deb)
echo "packaged in $((SECONDS - start)) s:"
packages=()
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  packages+=("$name")
  printf "  %-16s %5s KiB .deb, %6s KiB installed; Depends: %s\n" "$name" \
    "$(( $(stat -c %s "$deb") / 1024 ))" "$(dpkg-deb -f "$deb" Installed-Size)" "$(dpkg-deb -f "$deb" Depends)"
done
for want in libshmring-dev shmring python3-shmring; do
  printf '%s\n' "${packages[@]}" | grep -qx "$want" || { echo "no $want package"; exit 1; }
done

echo "== lintian"
start=$SECONDS
if ! lintian --fail-on error --no-tag-display-limit "${debs[@]}" > "$work/lintian.log" 2>&1; then
  cat "$work/lintian.log"
  echo "lintian reports errors"
  exit 1
fi
echo "no errors; $(grep -c '^W:' "$work/lintian.log" || true) warning(s), $(grep -c '^I:' "$work/lintian.log" || true) info tag(s) ($((SECONDS - start)) s):"
grep -E '^(W|I):' "$work/lintian.log" | sed 's/^/  /' || true

echo "== install, use, purge (a throw-away overlay of this machine)"
# Everything below runs inside the overlay: / is the overlay, /tmp and /dev/shm fresh tmpfs.
cat > "$work/inside.sh" <<'INSIDE'
set -euo pipefail
trap 'echo "packages test: failed at line $LINENO: $BASH_COMMAND"' ERR
src=$1; shift
work=$1; shift
debs=("$@")
cd /tmp
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${debs[@]}" > /tmp/apt-install.log 2>&1 || { cat /tmp/apt-install.log; exit 1; }
echo "installed: $(dpkg-query -W -f='${Package} ${Version}, ' libshmring-dev shmring python3-shmring 'libshmring[0-9]*')"

# The command line, its man page, completion and timer.
[ "$(shmring --version)" = "shmring $(dpkg-query -W -f='${Version}' shmring)" ]
shmring ls > /dev/null
if shmring sub x --count > /dev/null 2>&1; then usage=0; else usage=$?; fi
[ "$usage" -eq 2 ]
(shmring sub pkg.cli --create --kind topic --count 2 --timeout 10 > /tmp/sub.out) &
for _ in $(seq 100); do shmring stat pkg.cli --interval 1 > /dev/null 2>&1 && break; sleep 0.05; done
printf 'one\ntwo\n' | shmring pub pkg.cli 2> /dev/null
wait
[ "$(cat /tmp/sub.out)" = "$(printf 'one\ntwo')" ]
[ "$(man -w shmring)" = /usr/share/man/man1/shmring.1.gz ]
page=$(man shmring 2> /dev/null)
grep -q "shmring bridge export" <<< "$page"
completion=$(bash -c 'source /usr/share/bash-completion/completions/shmring; COMP_WORDS=(shmring b); COMP_CWORD=1; _shmring; echo "${COMPREPLY[*]}"')
[ "$completion" = "bridge bench" ]
grep -q '^ExecStart=/usr/bin/shmring gc$' /lib/systemd/system/shmring-gc.service
[ -f /lib/systemd/system/shmring-gc.timer ]
if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify /lib/systemd/system/shmring-gc.service /lib/systemd/system/shmring-gc.timer 2>&1 |
    grep -v "^$" | grep -iv "ignoring\|failed to connect\|not running" || true
fi
echo "CLI: ok (version, usage status, pub/sub, man page, completion, timer units)"

# The Python package, from dist-packages.
python3 - <<'PY'
import shmring
import re
assert re.match(r"/usr/lib/python3/dist-packages/shmring/", shmring.__file__), shmring.__file__
print("Python:", shmring.__file__, "channels:", len(shmring.list_channels()))
PY

# Programs built against the packages: CMake (shared and static), pkg-config (C and C++).
cmake -S "$src/tests/packaging/consumer" -B /tmp/consumer > /tmp/consumer.log 2>&1 || { cat /tmp/consumer.log; exit 1; }
cmake --build /tmp/consumer -j 2 >> /tmp/consumer.log 2>&1 || { cat /tmp/consumer.log; exit 1; }
for program in c_consumer c_consumer_static cpp_consumer_shared cpp_consumer_static; do
  /tmp/consumer/$program
done
linked=$(ldd /tmp/consumer/c_consumer)
grep -Eq "libshmring\.so\.[0-9.]+ => /(usr/)?lib/" <<< "$linked"
cc -std=c11 -Wall -Werror "$src/tests/packaging/consumer/main.c" $(pkg-config --cflags --libs shmring) -o /tmp/c_pc
c++ -std=c++20 -Wall -Werror "$src/tests/packaging/consumer/main.cc" $(pkg-config --cflags --libs shmring) -o /tmp/cpp_pc
/tmp/c_pc
/tmp/cpp_pc
# Every public header's inline code links against the shared library's exports alone.
for example in "$src"/docs/examples/*.cc; do
  c++ -std=c++20 "$example" $(pkg-config --cflags --libs shmring) -o /tmp/example
done
echo "pkg-config: ok (C, C++, and $(ls "$src"/docs/examples/*.cc | wc -l) docs examples linked against libshmring.so)"
# Any language with a C FFI: Python's ctypes, loading the library by its SONAME.
soname=$(objdump -p "$(dpkg -L libshmring-dev | grep '/libshmring\.so$')" | awk '/SONAME/ {print $2}')
python3 "$src/transport/c/examples/ctypes_example.py" "$soname"

# Remove them all: nothing of theirs may be left.
names=$(for deb in "${debs[@]}"; do dpkg-deb -f "$deb" Package; done)
apt-get purge -y -q $names > /tmp/apt-purge.log 2>&1 || { cat /tmp/apt-purge.log; exit 1; }
for name in $names; do
  if dpkg-query -W -f='${Status}' "$name" 2> /dev/null | grep -q "installed\|config-files"; then
    echo "still installed: $name"; exit 1
  fi
done
left=0
for deb in "${debs[@]}"; do
  # Every file and link the package held is gone ...
  while read -r path; do
    if [ -e "$path" ] || [ -L "$path" ]; then echo "left behind: $path"; left=1; fi
  done < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}')
  # ... and so is every directory of its own (shared ones such as /usr/lib stay).
  while read -r dir; do
    if [ -e "$dir" ]; then echo "left behind: $dir/ ($(ls -A "$dir" | head -3 | tr '\n' ' '))"; left=1; fi
  done < <(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ {print substr($6, 2)}' | sed 's:/$::' |
           grep -E '/shmring$|/doc/[^/]+$|/python3/dist-packages/shmring/' || true)
done
[ "$left" -eq 0 ]
echo "purged: nothing of the packages is left"
INSIDE

sandbox=$(mktemp -d /tmp/shmring_packages.XXXXXX)
cleanup() { rmdir "$sandbox" 2> /dev/null || true; }
trap cleanup EXIT
start=$SECONDS
unshare --mount --ipc --propagation private bash -s "$sandbox" "$src" "$work" "${debs[@]}" <<'OUTSIDE'
set -euo pipefail
sandbox=$1; src=$2; work=$3; shift 3
mount -t tmpfs -o size=4g tmpfs "$sandbox"
mkdir "$sandbox/upper" "$sandbox/work" "$sandbox/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$sandbox/upper",workdir="$sandbox/work" "$sandbox/root"
for d in proc sys dev; do mount --rbind "/$d" "$sandbox/root/$d"; done
mount -t tmpfs -o size=1g tmpfs "$sandbox/root/dev/shm"
mount -t tmpfs -o size=2g tmpfs "$sandbox/root/tmp"
status=0
chroot "$sandbox/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  bash "$work/inside.sh" "$src" "$work" "$@" || status=$?
if [ "$status" -eq 0 ]; then
  # What the whole visit changed on the machine: only dpkg's, apt's and the caches' records.
  changed=$(cd "$sandbox/upper" && find . \( -type f -o -type l -o -type c \) | sed 's:^\.::' |
    grep -Ev '^/(var/lib/dpkg|var/lib/apt|var/cache|var/log|var/lib/systemd|var/lib/python|run/systemd|etc/ld\.so\.cache$|root/)' |
    grep -Ev '^/(tmp|dev/shm)/' || true)
  if [ -n "$changed" ]; then
    echo "files changed outside dpkg's records after the purge:"; echo "$changed" | head -30; status=1
  else
    echo "the machine's files are as before (only dpkg/apt records and caches changed)"
  fi
fi
exit $status
OUTSIDE
echo "install/use/purge: $((SECONDS - start)) s; whole test: $((SECONDS - test_start)) s"
