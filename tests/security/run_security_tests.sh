#!/usr/bin/env bash
# The security suite (issue 21, docs/security.md): other local users attack shmring. As root it
#  1. creates two real users for the run (shmring_t_alice, shmring_t_bob) and a group they share,
#  2. runs the gtest binary in a private mount + IPC namespace with its own /dev/shm (a fresh
#     tmpfs, sticky and world-writable like the real one), so the host's /dev/shm and System V
#     semaphores are never touched,
#  3. removes the users and the group, whatever happened.
# Without root it exits 77 (ctest: skipped).
#   run_security_tests.sh SECURITY_TEST_BINARY SHMRING_CLI [gtest args...]
set -uo pipefail
binary=$1
cli=$2
shift 2
if [ "$(id -u)" -ne 0 ]; then
  echo "security tests need root (they create users and namespaces): skipped"
  exit 77
fi
for tool in useradd userdel groupadd groupdel unshare setpriv; do
  command -v "$tool" > /dev/null || { echo "missing $tool"; exit 1; }
done
suffix=$$
group="shmring_t_g$suffix"
alice="shmring_t_a$suffix"
bob="shmring_t_b$suffix"
cleanup() {
  userdel "$alice" 2> /dev/null
  userdel "$bob" 2> /dev/null
  groupdel "$group" 2> /dev/null
}
trap cleanup EXIT
groupadd --system "$group" || exit 1
useradd --system --no-create-home --shell /usr/sbin/nologin -G "$group" "$alice" || exit 1
useradd --system --no-create-home --shell /usr/sbin/nologin "$bob" || exit 1
# The CLI, where the users can run it (the build tree may be under a directory only root enters).
bindir=$(mktemp -d /tmp/shmring_security.XXXXXX) || exit 1
trap 'cleanup; rm -rf "$bindir"' EXIT
chmod 755 "$bindir"
cp "$cli" "$bindir/shmring" && chmod 755 "$bindir/shmring" || exit 1
export SHMRING_SECURITY_ALICE="$alice" SHMRING_SECURITY_BOB="$bob" SHMRING_SECURITY_GROUP="$group"
export SHMRING_CLI="$bindir/shmring"
unshare --mount --ipc --propagation private bash -c '
  mount -t tmpfs -o mode=1777,size=1g tmpfs /dev/shm || exit 1
  exec "$@"' run "$binary" "$@"
