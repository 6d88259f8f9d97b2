#!/usr/bin/env bash
# settleloop.sh — kill cesium-stress while the tree settles, and check the
# durability contract after every kill.
#
#   tests/settleloop.sh BUILD_DIR [SECONDS] [DBDIR]
#
# Each cycle runs a write phase (no manual compaction, 1 MiB memtables, so
# that the tree gathers runs) killed after 0.1–0.9 s, verifies, then runs a
# read-only phase (gets, multi-gets, iterators) killed after 1–3.9 s: with
# writes stopped, the scheduler folds L0 or settles the whole tree into one
# run a tick or two after the open, so many kills land in those merges. It
# verifies again (`cesium-stress --verify-only`: acknowledged writes
# present, interrupted batches whole or absent). Any failure stops the
# loop and keeps the database.
set -u
build=${1:?usage: $0 BUILD_DIR [SECONDS] [DBDIR]}
limit=${2:-60}
dir=${3:-$(mktemp -d "${TMPDIR:-/tmp}/cesium-settleloop.XXXXXX")}
stress="$build/tools/cesium-stress"
db="$dir/db"
opt="--opt=memtable_size=1MiB"
mkdir -p "$dir" || exit 2
"$stress" --db="$db" --duration=4 --keys=100000 --ns=2 $opt >"$dir/seed.out" 2>&1 ||
	{ echo "settleloop: the seeding run failed" >&2; exit 1; }

# Runs `stress ARGS...` in the background and kills it after `delay` s.
killed_run() {
	local delay=$1 pid
	shift
	"$stress" --db="$db" "$@" >"$dir/run.out" 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

verify() {
	"$stress" --db="$db" --verify-only >"$dir/verify.out" 2>&1 && return 0
	echo "settleloop: FAILED: verify after the $1 phase of cycle $cycles; database kept in $dir" >&2
	tail -n 20 "$dir/verify.out" >&2
	exit 1
}

cycles=0
end=$((SECONDS + limit))
while [ "$SECONDS" -lt "$end" ]; do
	cycles=$((cycles + 1))
	killed_run "0.$((RANDOM % 9 + 1))" --duration=5 --compact=0 $opt
	verify write
	killed_run "$((RANDOM % 3 + 1)).$((RANDOM % 10))" --duration=8 $opt --put=0 --delete=0 \
		--batch=0 --flush=0 --compact=0 --get=10 --iter=1 --mget=1
	verify read
done
echo "settleloop: cycles=$cycles $(grep '^verify:' "$dir/verify.out")"
