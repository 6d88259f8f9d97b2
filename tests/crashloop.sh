#!/usr/bin/env bash
# crashloop.sh — kill cesium-stress with SIGKILL at random moments and check
# the durability contract after every kill.
#
#   tests/crashloop.sh BUILD_DIR [SECONDS] [DBDIR]
#
# Each cycle starts cesium-stress on the same database with a random
# duration and seed, kills it with SIGKILL after a random 10..1500 ms (so
# kills land in flushes, compactions and MANIFEST writes as well as in
# writes), then runs `cesium-stress --verify-only`, which checks every key
# against the oracle (acknowledged writes present, in-flight writes either
# way, interrupted batches whole or absent) and resolves the in-flight ones.
# The next cycle continues from the recovered database. Any verify failure,
# or a stress run that exits non-zero on its own, fails the loop; the
# database and the logs are then kept for inspection.
#
# CRASHLOOP_ARGS adds options to every stress run (e.g. "--keys=500 --ns=2
# --compact=50"; --keys and --ns only matter when the oracle is created).
# The body is one function, read whole before it runs, so that editing this
# file while a loop is running cannot derail it.
#
# CRASHLOOP_SEED makes the cycle choices (durations, delays, seeds)
# repeatable; the engine's timing still varies from run to run.
set -u

main() {

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	echo "usage: $0 BUILD_DIR [SECONDS] [DBDIR]" >&2
	exit 2
fi
build=$1
limit=${2:-60}
stress="$build/tools/cesium-stress"
if [ ! -x "$stress" ]; then
	echo "crashloop: $stress not found (build it first)" >&2
	exit 2
fi

own_dir=0
if [ $# -ge 3 ]; then
	dbdir=$3
	mkdir -p "$dbdir" || exit 2
else
	dbdir=$(mktemp -d "${TMPDIR:-/tmp}/cesium-crashloop.XXXXXX") || exit 2
	own_dir=1
fi
db="$dbdir/db"
logdir="$dbdir/logs"
mkdir -p "$logdir" || exit 2

seed=${CRASHLOOP_SEED:-$(( (RANDOM << 15) | RANDOM ))}
RANDOM=$seed
echo "crashloop: db=$db seconds=$limit seed=$seed"

# Prints the value of `name=` in a verify line.
field() {
	sed -n "s/.*[ ]$1=\([0-9]*\).*/\1/p" <<<"$2" | head -n 1
}

verify() {
	local out rc
	out=$("$stress" --db="$db" --verify-only 2>"$logdir/verify.err")
	rc=$?
	echo "$out" >"$logdir/verify.out"
	vline=$(grep '^verify:' <<<"$out")
	return $rc
}

fail() {
	[ -n "$vline" ] && mm=$(field mismatches "$vline")
	echo "crashloop: FAILED: $*" >&2
	for f in "$logdir"/stress.out "$logdir"/stress.err "$logdir"/verify.out "$logdir"/verify.err; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
	done
	echo "crashloop: cycles=$cycles kills=$kills operations=$((ops_now - ops_start)) mismatches=${mm:-?}" >&2
	echo "crashloop: database kept in $dbdir; replay cycle choices with CRASHLOOP_SEED=$seed" >&2
	exit 1
}

cycles=0
kills=0
clean_exits=0
ops_start=0
ops_now=0
mm=0
vline=""

# A database left by an earlier loop must verify before we add to it.
if [ -e "$db.oracle" ]; then
	verify || fail "initial verify of the existing database"
	ops_start=$(field total_ops "$vline")
	ops_now=$ops_start
fi

start=$SECONDS
while [ $((SECONDS - start)) -lt "$limit" ]; do
	cycles=$((cycles + 1))
	dur=$((1 + RANDOM % 5))
	delay_ms=$((10 + RANDOM % 1491))
	threads=$((1 + RANDOM % 6))
	sseed=$(( (RANDOM << 30) | (RANDOM << 15) | RANDOM ))

	"$stress" --db="$db" --duration="$dur" --threads="$threads" --seed="$sseed" --quiet \
		${CRASHLOOP_ARGS:-} \
		>"$logdir/stress.out" 2>"$logdir/stress.err" &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	if kill -KILL "$pid" 2>/dev/null; then
		kills=$((kills + 1))
		wait "$pid" 2>/dev/null
	else
		wait "$pid"
		rc=$?
		[ $rc -eq 0 ] || fail "cycle $cycles: cesium-stress exited $rc (threads=$threads seed=$sseed)"
		clean_exits=$((clean_exits + 1))
	fi

	# A kill before cesium-stress created the oracle: it had not opened the
	# database either (the oracle comes first), so there is nothing to
	# verify, and --verify-only would rightly refuse a missing oracle.
	if [ ! -e "$db.oracle" ]; then
		[ ! -e "$db" ] || fail "cycle $cycles: a database but no oracle after kill at ${delay_ms}ms"
		continue
	fi
	if ! verify; then
		mm=$(field mismatches "$vline")
		fail "cycle $cycles: verify after kill at ${delay_ms}ms (threads=$threads seed=$sseed)"
	fi
	mm=$(field mismatches "$vline")
	ops_now=$(field total_ops "$vline")
	[ "${mm:-1}" = 0 ] || fail "cycle $cycles: verify printed mismatches=$mm"
done

echo "crashloop: cycles=$cycles kills=$kills clean_exits=$clean_exits" \
	"operations=$((ops_now - ops_start)) verified_keys_per_cycle=$(field checked "$vline")" \
	"mismatches=0 seconds=$((SECONDS - start)) seed=$seed"
if [ $own_dir -eq 1 ]; then
	rm -rf "$dbdir"
fi
}

main "$@"
exit $?
