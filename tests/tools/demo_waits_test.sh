#!/usr/bin/env bash
# The fan-out demo (tools/demo.sh runs it) with every way of waiting, one second each: it must say
# what it chose and finish with every message received or counted lost. With one usable core
# (taskset), `auto` must choose futex parking, never spinning.
set -euo pipefail
demo=$1
status=0
check() {
  local expect=$1; shift
  local out
  if ! out=$("$@" 2>&1); then
    echo "FAILED (exit status): $*"; echo "$out"; status=1; return
  fi
  if ! grep -q "^waits: $expect" <<< "$out" || ! grep -q "^OK$" <<< "$out"; then
    echo "FAILED (want 'waits: $expect' and OK): $*"; echo "$out"; status=1; return
  fi
  echo "ok: $* -> $(grep '^waits:' <<< "$out")"
}
for wait in spin hybrid park fd; do
  check "$wait (as asked" "$demo" --seconds 1 --rate 50000 --wait "$wait"
done
check "park (more processes than cores)" taskset -c 0 "$demo" --seconds 1 --rate 20000
if "$demo" --wait sometimes > /dev/null 2>&1; then echo "FAILED: --wait sometimes accepted"; status=1; fi
exit $status
