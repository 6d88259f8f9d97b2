#!/bin/bash
# cli_test — the `cesium` command-line tool end to end: data commands in
# text and hex and across namespaces, dump of each file kind, check on a
# healthy and on corrupted databases (one report per injected problem), and
# usage errors.
# Usage: cli_test.sh <build root> [source root]
set -u
build="${1:?usage: cli_test.sh <build root> [source root]}"
src="${2:-}"
cesium="$build/tools/cesium"
if [ ! -x "$cesium" ]; then
	echo "FAIL: $cesium not built"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cesium-cli-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
db="$tmp/db"
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_rc WANT CMD...: runs CMD, output in $out, checks the exit code.
expect_rc() {
	local want=$1; shift
	out=$("$@" 2>&1)
	local rc=$?
	if [ "$rc" -eq "$want" ]; then ok; else bad "exit $rc, wanted $want: $* -> $out"; fi
}
expect_out() {
	local want=$1; shift
	out=$("$@" 2>/dev/null)
	local rc=$?
	if [ "$rc" -eq 0 ] && [ "$out" = "$want" ]; then ok; else
		bad "wanted '$want' (exit 0), got '$out' (exit $rc): $*"
	fi
}

# Data commands, text.
expect_rc 0 "$cesium" put "$db" apple red
expect_rc 0 "$cesium" put "$db" banana yellow
expect_rc 0 "$cesium" put "$db" cherry dark
expect_out red "$cesium" get "$db" apple
expect_rc 1 "$cesium" get "$db" durian
expect_rc 0 "$cesium" delete "$db" banana
expect_rc 1 "$cesium" get "$db" banana
expect_out $'apple\tred\ncherry\tdark' "$cesium" scan "$db"
# Ranges: --from inclusive, --to exclusive, --limit.
expect_rc 0 "$cesium" put "$db" date brown
expect_out $'cherry\tdark' "$cesium" scan "$db" --from=b --to=date
expect_out $'apple\tred\ncherry\tdark' "$cesium" scan "$db" --limit=2
# Hex, and escaping of non-printable bytes in text output.
expect_rc 0 "$cesium" put --hex "$db" 00ff01 0a5c41
expect_out 0a5c41 "$cesium" get --hex "$db" 00ff01
expect_rc 0 "$cesium" put "$db" bin $'\x01ab\\'
expect_out '\x01ab\\' "$cesium" get "$db" bin
# Namespaces are separate.
expect_rc 0 "$cesium" put --ns=7 "$db" apple green
expect_out green "$cesium" get --ns=7 "$db" apple
expect_out red "$cesium" get "$db" apple
expect_out $'apple\tgreen' "$cesium" scan --ns=7 "$db"
expect_out $'6170706c65\t677265656e' "$cesium" scan --ns=7 --hex "$db"

# stats and compact.
expect_rc 0 "$cesium" stats "$db"
[ -n "$out" ] && ok || bad "stats printed nothing"
expect_rc 0 "$cesium" compact "$db"
expect_out red "$cesium" get "$db" apple

# check on a healthy database.
expect_rc 0 "$cesium" check "$db"

# dump: a segment, the MANIFEST, a WAL.
seg=$(ls "$db"/*.seg | head -1)
man=$(ls "$db"/MANIFEST-* | head -1)
expect_rc 0 "$cesium" dump "$seg"
echo "$out" | grep -q '^footer at offset' && echo "$out" | grep -q '^props:' &&
	echo "$out" | grep -q '^index 0:' && echo "$out" | grep -q 'entry: ns=0 key="apple"' &&
	ok || bad "segment dump lacks footer/props/index/entries: $out"
expect_rc 0 "$cesium" dump "$man"
echo "$out" | grep -q 'added L' && ok || bad "manifest dump lacks an added file: $out"
wal=$(ls "$db"/*.wal | head -1)
expect_rc 0 "$cesium" dump "$wal"
echo "$out" | grep -q 'records' && ok || bad "wal dump: $out"
if [ -n "$src" ] && [ -f "$src/fuzz/corpus/wal_replay/four-records" ]; then
	cp "$src/fuzz/corpus/wal_replay/four-records" "$tmp/000001.wal"
	expect_rc 0 "$cesium" dump "$tmp/000001.wal"
	echo "$out" | grep -q 'seq=1 kind=put ns=0 key="k0" vsize=0' && ok ||
		bad "wal dump lacks batch entries: $out"
fi

# check after flipping a byte inside the first data block of a segment.
cp -r "$db" "$tmp/bad"
bseg="$tmp/bad/$(basename "$seg")"
byte=$(od -An -tu1 -j5 -N1 "$bseg" | tr -d ' ')
printf "$(printf '\\%03o' $(( (byte ^ 0x55) & 255 )))" |
	dd of="$bseg" bs=1 seek=5 count=1 conv=notrunc 2>/dev/null
expect_rc 1 "$cesium" check "$tmp/bad"
echo "$out" | grep -q "PROBLEM $bseg: .*offset [0-9]" && ok ||
	bad "check did not name the file and an offset: $out"
# One injected problem, one report (the engine's reader and check's own
# parse must not both report it).
[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] && grep -q '^1 problem found' <<<"$out" && ok ||
	bad "one flipped segment byte, not exactly one problem: $out"
# A MANIFEST record corrupted in the middle of the log (a valid record
# follows it, so it is no torn tail): one problem, with file and offset.
# The second open flushes the first one's log, so its MANIFEST holds the
# snapshot and a flush edit.
cp -r "$db" "$tmp/badman"
"$cesium" put "$tmp/badman" m1 v1 >/dev/null 2>&1
"$cesium" put "$tmp/badman" m2 v2 >/dev/null 2>&1
bman=$(ls "$tmp"/badman/MANIFEST-* | head -1)
mrecs=$("$cesium" dump "$bman" 2>/dev/null | grep -c '^record ')
if [ "$mrecs" -ge 2 ]; then
	byte=$(od -An -tu1 -j20 -N1 "$bman" | tr -d ' ')
	printf "$(printf '\\%03o' $(( (byte ^ 0x55) & 255 )))" |
		dd of="$bman" bs=1 seek=20 count=1 conv=notrunc 2>/dev/null
	expect_rc 1 "$cesium" check "$tmp/badman"
	[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] &&
		grep -q "^PROBLEM $bman: .*offset [0-9]" <<<"$out" && ok ||
		bad "one corrupt MANIFEST record, not exactly one problem naming file and offset: $out"
else
	bad "MANIFEST has $mrecs records, the corruption test needs 2"
fi
# An orphan segment is a problem too.
cp -r "$db" "$tmp/orphan"
cp "$seg" "$tmp/orphan/999999.seg"
expect_rc 1 "$cesium" check "$tmp/orphan"
echo "$out" | grep -q "999999.seg.*orphan" && ok || bad "orphan not reported: $out"
[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] && ok || bad "orphan reported more than once: $out"
# A segment the MANIFEST lists but the directory lacks: one problem.
cp -r "$db" "$tmp/noseg"
rm "$tmp/noseg/$(basename "$seg")"
expect_rc 1 "$cesium" check "$tmp/noseg"
[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] && grep -q "PROBLEM $tmp/noseg/$(basename "$seg")" <<<"$out" &&
	ok || bad "missing segment, not exactly one problem naming it: $out"

# Segments of format version 3: a flush in a running process leaves values
# of at least log_value_min_size in the WAL they were written to, and the
# segment refers to them there. cesium-stress writes them through the
# public API (its values are under 1 KiB, hence the lower minimum), with
# small memtables and no L0 compaction, which would copy the values out.
stress="$build/tools/cesium-stress"
v2="$tmp/v2"
if [ ! -x "$stress" ]; then
	bad "$stress not built (needed for the version 3 segment tests)"
elif ! "$stress" --db="$v2" --ops=3000 --threads=1 --seed=7 --put=3 --delete=1 --batch=0 \
	--get=0 --mget=0 --iter=0 --flush=0 --compact=0 --quiet --opt=memtable_size=64KiB \
	--opt=log_value_min_size=512 --opt=l0_compaction_trigger=1024 \
	--opt=l0_slowdown_trigger=1024 --opt=l0_stop_trigger=1024 >"$tmp/stress.out" 2>&1; then
	bad "cesium-stress could not write the version 3 database: $(cat "$tmp/stress.out")"
else
	# The footer's version (u32 LE), 20 bytes before the end, read apart
	# from the tool under test.
	v2seg=
	for f in "$v2"/*.seg; do
		ver=$(od -An -tu4 --endian=little -j$(($(stat -c %s "$f") - 20)) -N4 "$f" | tr -d ' ')
		if [ "$ver" = 3 ]; then
			v2seg=$f
			break
		fi
	done
	if [ -z "$v2seg" ]; then
		bad "no version 3 segment in $v2: $(ls "$v2")"
	else
		# check accepts it: every value it refers to reads back, and its
		# log is kept, not an orphan.
		expect_rc 0 "$cesium" check "$v2"
		grep -q '^ok$' <<<"$out" && grep -q 'kept for the values of segments' <<<"$out" &&
			ok || bad "version 3 database not checked clean, or its logs not kept: $out"
		# dump: the value log in the props, references instead of values.
		expect_rc 0 "$cesium" dump "$v2seg"
		vlog=$(sed -n 's/^props: .* value_log=\([0-9]*\)$/\1/p' <<<"$out")
		ref=$(grep -m1 -o 'log_value offset=[0-9]* len=[0-9]*' <<<"$out")
		roff=$(sed -n 's/.*offset=\([0-9]*\).*/\1/p' <<<"$ref")
		rlen=$(sed -n 's/.*len=\([0-9]*\)/\1/p' <<<"$ref")
		if [ -n "$vlog" ] && [ -n "$roff" ] && [ -n "$rlen" ] && [ "$rlen" -gt 0 ]; then
			ok
		else
			bad "version 3 segment dump lacks value_log or a log_value entry: $out"
		fi
		expect_rc 0 "$cesium" dump "$(ls "$v2"/MANIFEST-* | head -1)"
		grep -q "added L0 $(basename "$v2seg") .* value_log=$vlog\$" <<<"$out" && ok ||
			bad "manifest dump lacks the value log of $(basename "$v2seg"): $out"
		# One flipped byte inside a referred value of the kept log: one
		# problem, naming the log, the value's offset and the segment.
		if [ -n "$roff" ] && [ -n "$rlen" ] && [ -n "$vlog" ]; then
			cp -r "$v2" "$tmp/v2bad"
			blog="$tmp/v2bad/$(printf '%06d' "$vlog").wal"
			at=$((roff + rlen / 2))
			byte=$(od -An -tu1 -j"$at" -N1 "$blog" | tr -d ' ')
			printf "$(printf '\\%03o' $(( (byte ^ 0x55) & 255 )))" |
				dd of="$blog" bs=1 seek="$at" count=1 conv=notrunc 2>/dev/null
			expect_rc 1 "$cesium" check "$tmp/v2bad"
			[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] &&
				grep -q "^PROBLEM $blog: offset $roff: .*$(basename "$v2seg").*checksum mismatch" \
					<<<"$out" && ok ||
				bad "one corrupt value in a kept log, not exactly one problem naming it: $out"
			# A kept log that is gone: one problem naming it and the segment.
			cp -r "$v2" "$tmp/v2nolog"
			rm "$tmp/v2nolog/$(basename "$blog")"
			expect_rc 1 "$cesium" check "$tmp/v2nolog"
			[ "$(grep -c '^PROBLEM' <<<"$out")" -eq 1 ] &&
				grep -q "^PROBLEM $tmp/v2nolog/$(basename "$blog"): .*$(basename "$v2seg")" \
					<<<"$out" && ok ||
				bad "missing kept log, not exactly one problem naming it: $out"
		fi
	fi
fi

# Usage errors exit 2; help exits 0.
expect_rc 2 "$cesium"
expect_rc 2 "$cesium" frobnicate "$db"
expect_rc 2 "$cesium" get "$db"
expect_rc 2 "$cesium" put "$db" k
expect_rc 2 "$cesium" get --hex "$db" zz
expect_rc 2 "$cesium" scan "$db" --limit=abc
expect_rc 2 "$cesium" get "$db" k --bogus
expect_rc 2 "$cesium" check "$db" --from=a
expect_rc 0 "$cesium" help
expect_rc 0 "$cesium" --help
for c in get put delete scan dump check stats compact; do
	expect_rc 0 "$cesium" "$c" --help
	echo "$out" | grep -q "usage: cesium $c" && ok || bad "$c --help: $out"
done
# Engine errors exit 3: a database that does not exist (get does not create).
expect_rc 3 "$cesium" get "$tmp/missing" k

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
