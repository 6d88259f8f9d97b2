#!/usr/bin/env bash
# stress_test.sh BUILD_ROOT SOURCE_ROOT — an 8-second cesium-stress run with
# 4 threads checked against its oracle (every op kind, multi-get included,
# must run; then a --verify-only of the result); the oracle's edge cases
# (missing, set-up cut short by a kill, junk, without its database); forced
# mismatches and their reports; then a 30-second crash loop
# (tests/crashloop.sh) on a fresh database. Exits 77 (skipped) when io_uring
# is unavailable here.
set -u
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_ROOT SOURCE_ROOT" >&2
	exit 2
fi
build=$1
src=$2
stress="$build/tools/cesium-stress"
[ -x "$stress" ] || { echo "stress_test: $stress not built" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/cesium-stress-test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

out=$("$stress" --db="$dir/db" --duration=8 --threads=4 --quiet 2>&1)
rc=$?
echo "$out"
if [ $rc -ne 0 ] && grep -q 'CESIUM_ENOTSUP' <<<"$out"; then
	echo "stress_test: io_uring unavailable, skipping"
	exit 77
fi
[ $rc -eq 0 ] || { echo "stress_test: stress run failed (exit $rc)" >&2; exit 1; }
grep -q 'mismatches=0 errors=0' <<<"$out" || { echo "stress_test: no clean summary" >&2; exit 1; }
# Every op kind of the default mix ran, multi-get included.
for k in put delete batch get mget iter; do
	n=$(sed -n "s/^stress: ops by kind:.* $k=\([0-9]*\).*/\1/p" <<<"$out")
	[ "${n:-0}" -gt 0 ] || { echo "stress_test: no $k ops counted" >&2; exit 1; }
done

"$stress" --db="$dir/db" --verify-only || { echo "stress_test: verify after the run failed" >&2; exit 1; }

fails=0
check() { # check DESCRIPTION COMMAND...: the command must succeed
	local what=$1; shift
	if ! "$@"; then echo "stress_test: FAILED: $what" >&2; fails=$((fails + 1)); fi
}

# --verify-only needs an oracle and creates nothing where there is none.
out=$("$stress" --db="$dir/missing" --verify-only 2>&1); rc=$?
echo "$out"
check "verify-only on a missing path exits non-zero" test $rc -ne 0
check "verify-only on a missing path says why" grep -q 'no oracle at' <<<"$out"
check "verify-only on a missing path creates nothing" \
	test ! -e "$dir/missing" -a ! -e "$dir/missing.oracle"

# An oracle whose set-up a kill cut short (ftruncate done, magic not yet
# stored; also with the shape fields stored) is a fresh one: --verify-only
# accepts it without touching it or creating a database, and a run
# continues from it.
for shape in none stored; do
	z="$dir/zero-$shape"
	truncate -s 8192 "$z.oracle"
	[ $shape = stored ] && printf '\001\000\000\000\002\000\000\000\310\000\000\000' |
		dd of="$z.oracle" bs=1 seek=8 conv=notrunc 2>/dev/null
	out=$("$stress" --db="$z" --verify-only 2>&1); rc=$?
	echo "$out"
	check "zeroed oracle ($shape) accepted by --verify-only" test $rc -eq 0
	check "zeroed oracle ($shape): verify-only created no database" test ! -e "$z"
	check "zeroed oracle ($shape) left as it was" test "$(stat -c %s "$z.oracle")" = 8192
	check "zeroed oracle ($shape): a run continues from it" \
		"$stress" --db="$z" --ops=3000 --threads=2 --keys=200 --ns=2 --quiet
	check "zeroed oracle ($shape): verify after the run" "$stress" --db="$z" --verify-only
done
# A file that holds data but no magic is refused, without a stray errno text.
printf 'not an oracle' >"$dir/junk.oracle"
out=$("$stress" --db="$dir/junk" --verify-only 2>&1); rc=$?
echo "$out"
check "junk oracle refused" test $rc -ne 0
check "junk oracle: clear message" grep -q 'is not a valid oracle file' <<<"$out"
check "junk oracle: no errno text" eval '! grep -q Success <<<"$out"'
check "junk oracle: no database created" test ! -e "$dir/junk"

# A lost database is not an empty one: an oracle that records writes and no
# database beside it fails verification.
cp "$dir/db.oracle" "$dir/lone.oracle"
out=$("$stress" --db="$dir/lone" --verify-only 2>&1); rc=$?
echo "$out"
check "oracle without its database refused" test $rc -ne 0
check "oracle without its database: says so" grep -q 'no database at' <<<"$out"
check "oracle without its database: none created" test ! -e "$dir/lone"

# Forced mismatches: overwrite five keys behind the oracle's back with the
# `cesium` tool; every report shows expected and actual values in hex, at
# most --max-reports of them are printed, and the total is always given.
cesium="$build/tools/cesium"
if [ -x "$cesium" ]; then
	mm="$dir/mm"
	check "small run for the mismatch test" \
		"$stress" --db="$mm" --ops=2000 --threads=1 --keys=40 --ns=1 --quiet
	for k in 1 2 3 4 5; do
		"$cesium" put "$mm" "k0000000$k" garbage >/dev/null ||
			{ echo "stress_test: cesium put failed" >&2; fails=$((fails + 1)); }
	done
	out=$("$stress" --db="$mm" --verify-only --max-reports=2 2>&1); rc=$?
	echo "$out"
	check "forced mismatch fails verification" test $rc -ne 0
	check "forced mismatch: --max-reports=2 prints two" \
		test "$(grep -c '^MISMATCH' <<<"$out")" -eq 2
	check "forced mismatch: the actual value in hex" \
		grep -q 'actual value   garbage: 7 bytes 67617262616765$' <<<"$out"
	check "forced mismatch: the expected value" grep -q '^  expected value ' <<<"$out"
	check "forced mismatch: the total" grep -q '5 mismatches in total, 2 printed' <<<"$out"
	check "forced mismatch: the verify line" grep -q 'mismatches=5 ' <<<"$out"
	out=$("$stress" --db="$mm" --verify-only --max-reports=0 2>&1)
	check "forced mismatch: --max-reports=0 prints all" \
		test "$(grep -c '^MISMATCH' <<<"$out")" -eq 5
else
	echo "stress_test: FAILED: $cesium not built" >&2
	fails=$((fails + 1))
fi
[ $fails -eq 0 ] || { echo "stress_test: $fails checks failed" >&2; exit 1; }

bash "$src/tests/crashloop.sh" "$build" 30 "$dir/crash" || { echo "stress_test: crash loop failed" >&2; exit 1; }
echo "stress_test: passed"
