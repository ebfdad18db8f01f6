#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the dependencies, then builds and runs ctest in three
# configurations (plain, ASan+UBSan, TSan), then kill storms (tests/soak/chaos.sh, 4 x 15 s) and a
# short libFuzzer run (4 targets x 20 s). Prints each ctest summary and
# a closing "N passed, N failed" line. Build trees go to build/{plain,asan,tsan} (reused if present).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/install_deps.sh || exit 1

jobs=${SHMRING_JOBS:-$(nproc)}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp}
# The bridge's two-host tests must use network namespaces here, not fall back to loopback.
[ "$(id -u)" -eq 0 ] && export SHMRING_BRIDGE_REQUIRE_NETNS=1

passed=0
failed=0
failed_configs=()

run_config() {
  local name=$1; shift
  local dir="build/$name"
  echo "=== [$name] configure and build"
  local start=$SECONDS
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMRING_WERROR=ON "${launcher[@]}" "$@" \
       > "$dir.configure.log" 2>&1; then
    mkdir -p build; cat "$dir.configure.log"; failed=$((failed + 1)); failed_configs+=("$name"); return
  fi
  if ! cmake --build "$dir" -j "$jobs" > "$dir.build.log" 2>&1; then
    grep -E "error|Error" "$dir.build.log" | head -40
    failed=$((failed + 1)); failed_configs+=("$name"); return
  fi
  echo "=== [$name] built in $((SECONDS - start)) s; running ctest"
  start=$SECONDS
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900) 2>&1 | tee "$dir.ctest.log" |
    grep -E "tests passed|tests failed|Failed|\*\*\*|The following tests|^\s+[0-9]+ - " || true
  local summary
  summary=$(grep -E "tests passed, [0-9]+ tests failed out of" "$dir.ctest.log" | tail -1)
  local total=0 bad=0
  if [[ $summary =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    bad=${BASH_REMATCH[1]}; total=${BASH_REMATCH[2]}
  else
    bad=1
  fi
  passed=$((passed + total - bad)); failed=$((failed + bad))
  [ "$bad" -eq 0 ] || failed_configs+=("$name")
  echo "=== [$name] ctest took $((SECONDS - start)) s"
}

mkdir -p build
run_config plain
run_config asan -DSHMRING_SANITIZE="address;undefined" -DSHMRING_BUILD_BENCHMARKS=OFF
run_config tsan -DSHMRING_SANITIZE=thread -DSHMRING_BUILD_BENCHMARKS=OFF

echo "=== [chaos] kill storms, ${SHMRING_CHAOS_SECONDS:-15} s per pattern (plain build)"
if tests/soak/chaos.sh build/plain "${SHMRING_CHAOS_SECONDS:-15}" > build/chaos.log 2>&1; then
  cat build/chaos.log
  passed=$((passed + 1))
else
  cat build/chaos.log
  failed=$((failed + 1)); failed_configs+=("chaos")
fi

if [ -x tests/fuzz/run_fuzzers.sh ]; then
  echo "=== [fuzz] short libFuzzer run (log: build/fuzz.log)"
  if tests/fuzz/run_fuzzers.sh "${SHMRING_FUZZ_SECONDS:-20}" > build/fuzz.log 2>&1; then
    grep -E "^Done [0-9]+ runs" build/fuzz.log || true
    passed=$((passed + 1))
  else
    tail -40 build/fuzz.log
    failed=$((failed + 1)); failed_configs+=("fuzz")
  fi
fi

# Last of all: nothing any of it created may be left (segments, companion files, lock sets).
echo "=== [leaks] after everything"
if tests/leak_check.sh --final; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); failed_configs+=("leaks")
fi

echo
if [ ${#failed_configs[@]} -gt 0 ]; then
  echo "failing: ${failed_configs[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
