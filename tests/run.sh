#!/usr/bin/env bash
# Runs the whole test suite (installing what it needs first): a release
# build with warnings as errors, an ASan+UBSan debug build, a TSan build
# of the concurrency tests, and each fuzzer for a bounded time. Prints meson's log for failures and ends with
# "N passed, N failed" summed over both builds.
set -uo pipefail
cd "$(dirname "$0")/.."
./tests/setup.sh
jobs=$(nproc)
passed=0
failed=0

run_build() { # name, meson args...
	local dir="build-ci-$1"
	shift
	rm -rf "$dir"
	if ! meson setup "$dir" -Dwerror=true "$@" >"$dir.setup.log" 2>&1; then
		cat "$dir.setup.log"
		failed=$((failed + 1))
		return
	fi
	if ! ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
		tail -n 60 "$dir.build.log"
		failed=$((failed + 1))
		return
	fi
	meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "${MESON_TEST_ARGS[@]}" | tee "$dir.test.log"
	local ok fail
	ok=$(grep -E '^Ok:' "$dir.test.log" | awk '{print $2}')
	fail=$(grep -E '^(Fail|Unexpected Pass|Timeout):' "$dir.test.log" | awk '{s+=$2} END {print s+0}')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0}))
}

MESON_TEST_ARGS=()
run_build release -Dbuildtype=release
run_build asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
# ThreadSanitizer on the tests where threads meet: lock-free memtable and
# mailbox, epochs, futex parking, the reactor, the cache, the prefault actor,
# the db under concurrent use, and background compaction (scheduler,
# compactors, stalls).
MESON_TEST_ARGS=(epoch park memtable arena mailbox reactor waiter cache cleanup prefault db multiget flush scheduler compactor api compaction)
export TSAN_OPTIONS="halt_on_error=1"
run_build tsan -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false
# Each libFuzzer target for a bounded time over its corpus and the kept
# regressions (clang).
if rm -rf build-ci-fuzz && CC=clang meson setup build-ci-fuzz -Dfuzz=true -Dtests=false \
	>build-ci-fuzz.setup.log 2>&1 && ninja -C build-ci-fuzz >build-ci-fuzz.build.log 2>&1; then
	./tests/fuzz_smoke.sh build-ci-fuzz "${CESIUM_FUZZ_SECONDS:-20}" | tee build-ci-fuzz.log
	line=$(tail -n 1 build-ci-fuzz.log)
	passed=$((passed + $(echo "$line" | awk '{print $1}')))
	failed=$((failed + $(echo "$line" | awk '{print $3}')))
else
	tail -n 40 build-ci-fuzz.setup.log build-ci-fuzz.build.log 2>/dev/null
	failed=$((failed + 1))
fi

echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
