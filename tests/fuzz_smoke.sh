#!/bin/bash
# fuzz_smoke — runs every libFuzzer target for a bounded time over its seed
# corpus (fuzz/corpus/<target>) and its kept crash inputs
# (fuzz/regressions/<target>); exits non-zero if any target crashes, leaks,
# times out or fails to replay a regression.
#
#   CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false
#   ninja -C build-fuzz
#   tests/fuzz_smoke.sh build-fuzz [SECONDS per target, default 20]
#
# The checked-in corpus is never modified: new inputs go to a scratch copy.
# Crashing inputs are saved under fuzz/crashes/<target>/ for triage; once
# fixed, move them to fuzz/regressions/<target>/.
set -u
build="${1:?usage: fuzz_smoke.sh <build dir configured with -Dfuzz=true> [seconds]}"
secs="${2:-20}"
src="$(cd "$(dirname "$0")/.." && pwd)"
targets="segment_reader wal_replay manifest_replay batch_decode options_parse"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/cesium-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for t in $targets; do
	bin="$build/fuzz/$t"
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: $bin not built (configure with CC=clang -Dfuzz=true)"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$scratch/$t" "$src/fuzz/crashes/$t"
	reg="$src/fuzz/regressions/$t"
	ok=1
	# Regressions first, each replayed once: a fixed crash must stay fixed.
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
		if ! "$bin" -runs=1 "$reg"/* >"$scratch/$t.reg.log" 2>&1; then
			echo "FAIL $t: a regression input crashes again:"
			tail -40 "$scratch/$t.reg.log"
			ok=0
		fi
	fi
	dirs=("$scratch/$t" "$src/fuzz/corpus/$t")
	[ -d "$reg" ] && dirs+=("$reg")
	if [ $ok = 1 ] && ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$src/fuzz/crashes/$t/" "${dirs[@]}" \
		>"$scratch/$t.log" 2>&1; then
		echo "FAIL $t: crash (input saved under fuzz/crashes/$t/):"
		grep -E 'ERROR|SUMMARY|Test unit written' "$scratch/$t.log" | head -5
		tail -40 "$scratch/$t.log"
		ok=0
	fi
	if [ $ok = 1 ]; then
		runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$scratch/$t.log" | grep -oE '[0-9]+$')
		echo "ok   $t: ${runs:-?} runs in ${secs}s"
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
