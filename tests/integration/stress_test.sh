#!/usr/bin/env bash
# stress_test.sh BUILD_ROOT SOURCE_ROOT — a 10-second cesium-stress run with
# 4 threads checked against its oracle (and then a --verify-only of the
# result), followed by a 30-second crash loop (tests/crashloop.sh) on a
# fresh database. Exits 77 (skipped) when io_uring is unavailable here.
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

out=$("$stress" --db="$dir/db" --duration=10 --threads=4 --quiet 2>&1)
rc=$?
echo "$out"
if [ $rc -ne 0 ] && grep -q 'CESIUM_ENOTSUP' <<<"$out"; then
	echo "stress_test: io_uring unavailable, skipping"
	exit 77
fi
[ $rc -eq 0 ] || { echo "stress_test: stress run failed (exit $rc)" >&2; exit 1; }
grep -q 'mismatches=0 errors=0' <<<"$out" || { echo "stress_test: no clean summary" >&2; exit 1; }

"$stress" --db="$dir/db" --verify-only || { echo "stress_test: verify after the run failed" >&2; exit 1; }

bash "$src/tests/crashloop.sh" "$build" 30 "$dir/crash" || { echo "stress_test: crash loop failed" >&2; exit 1; }
echo "stress_test: passed"
