#!/usr/bin/env bash
# End-to-end checks of the cesium-bench binary: a job file on every engine
# built in, JSON output that parses, logs, compare mode, errors naming
# file/line/option, and the old --benchmarks and --demo modes.
#   e2e.sh CESIUM_BENCH JOBS_DIR
set -uo pipefail
bin=$1
jobs=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-e2e-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Skip (77) where cesium cannot run at all (no io_uring here).
if ! "$bin" --name=probe --nrkeys=10 >/dev/null 2>"$tmp/probe"; then
	if grep -q ENOTSUP "$tmp/probe"; then
		echo "skipped: $(cat "$tmp/probe")"
		exit 77
	fi
fi

engines=$("$bin" --help | sed -n 's/^engines built in: //p' | tr , ' ')
[ -n "$engines" ] || fail "no engine list in --help"

cat >"$tmp/small.fio" <<'JOB'
[global]
nrkeys=5000
verify=1
write_bw_log=LOGDIR/small
write_lat_log=LOGDIR/small

[load]
rw=write
numjobs=2

[get]
stonewall
rw=randread
random_distribution=zipf:0.9

[scan]
stonewall
rw=scan
scan_length=20
number_ios=200
JOB
sed -i "s|LOGDIR|$tmp|" "$tmp/small.fio"

for e in $engines; do
	out="$tmp/$e.json"
	if ! "$bin" --engine="$e" --output-format=json "$tmp/small.fio" >"$out" 2>"$tmp/err"; then
		fail "$e: exit status $? ($(cat "$tmp/err"))"
		continue
	fi
	python3 - "$out" "$e" <<'PY' || fail "$e: JSON shape"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["engine"] == sys.argv[2]
names = [j["jobname"] for j in doc["jobs"]]
assert names == ["load", "get", "scan"], names
load, get, scan = doc["jobs"]
assert load["write"]["total_ios"] == 5000
assert get["read"]["total_ios"] == 5000 and get["not_found"] == 0
assert get["verify_errors"] == 0 and get["error"] == 0
assert scan["read"]["total_ios"] == 200
for d in ("read", "write", "trim"):
    assert set(get[d]["clat_ns"]["percentile"]) >= {"50.000000", "99.000000", "99.990000"}
assert get["read"]["clat_ns"]["percentile"]["99.000000"] >= get["read"]["clat_ns"]["percentile"]["50.000000"] > 0
assert doc["engine_stats"]["disk_usage_bytes"] > 0
PY
	[ -s "$tmp/small_bw.1.log" ] && [ -s "$tmp/small_lat.2.log" ] || fail "$e: no logs"
	grep -qE '^[0-9]+, [0-9]+, 1, 0, 0$' "$tmp/small_bw.1.log" || fail "$e: bw log format"
	rm -f "$tmp"/small_*.log
done

# iodepth=8 cold reads through the binary on every engine: exact counts,
# every value right; engines without a multi-get say they loop.
for e in $engines; do
	"$bin" --output-format=json --engine="$e" --nrkeys=3000 --verify=1 --name=l --rw=write \
		--name=r --stonewall --rw=randread --iodepth=8 --invalidate=1 --number_ios=2001 \
		>"$tmp/qd.json" 2>"$tmp/qd.err" || fail "$e iodepth: exit status ($(cat "$tmp/qd.err"))"
	python3 - "$tmp/qd.json" <<'PY' || fail "$e iodepth: counts"
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][1]
assert r["read"]["total_ios"] == 2001, r["read"]["total_ios"]
assert r["not_found"] == 0 and r["verify_errors"] == 0 and r["error"] == 0
PY
	case $e in
	leveldb | lmdb) grep -q "no multi-get: iodepth 8 runs as a loop" "$tmp/qd.err" ||
		fail "$e iodepth: no loop note" ;;
	*) grep -q "no multi-get" "$tmp/qd.err" && fail "$e iodepth: loop note on a multi-get engine" ;;
	esac
done
"$bin" --name=w --rw=randwrite --nrkeys=100 --iodepth=4 >/dev/null 2>"$tmp/qd.err"
grep -q "iodepth 4 applies to randread only" "$tmp/qd.err" || fail "iodepth note for writes"

# normal output names the percentiles and the engine figures.
"$bin" --name=w --rw=randwrite --nrkeys=2000 >"$tmp/normal.txt" || fail "normal run"
grep -q '99.99th=\[' "$tmp/normal.txt" || fail "normal: no percentiles"
grep -q 'write amp=' "$tmp/normal.txt" || fail "normal: no engine figures"

# json+ has bins.
"$bin" --output-format=json+ --name=w --rw=write --nrkeys=1000 >"$tmp/plus.json" || fail "json+"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["jobs"][0]["write"]["clat_ns"]["bins"]' \
	"$tmp/plus.json" || fail "json+: no bins"

# compare mode prints a ratio table for every engine.
list=$(echo $engines | tr ' ' ,)
"$bin" --compare="$list" --nrkeys=2000 --name=w --rw=randwrite --name=r --stonewall \
	--rw=randread >"$tmp/cmp.txt" || fail "compare exit status"
grep -q '^Comparison' "$tmp/cmp.txt" || fail "compare: no table"
grep -q '^r  *read IOPS' "$tmp/cmp.txt" || fail "compare: no read row"

# compare with JSON: one array of documents, the table on stderr.
"$bin" --compare="$list" --output-format=json --nrkeys=1000 --name=w --rw=write \
	>"$tmp/cmp.json" 2>"$tmp/cmp.err" || fail "compare json exit status"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d) == int(sys.argv[2])' \
	"$tmp/cmp.json" "$(echo $engines | wc -w)" || fail "compare json: not an array per engine"
grep -q '^Comparison' "$tmp/cmp.err" || fail "compare json: no table on stderr"

# Errors name the file, line and option, and exit 2.
printf '[global]\nnrkeys=10\n[j]\nrw=write\nvalue_size=lots\n' >"$tmp/bad.fio"
"$bin" "$tmp/bad.fio" 2>"$tmp/err" >/dev/null
[ $? -eq 2 ] || fail "bad job file: exit status"
grep -q "bad.fio:5: option 'value_size': bad value 'lots'" "$tmp/err" || fail "bad job file: $(cat "$tmp/err")"
"$bin" --rw=sideways 2>"$tmp/err" >/dev/null
[ $? -eq 2 ] || fail "bad option: exit status"
grep -q "option 'rw'" "$tmp/err" || fail "bad option message"

# The old modes keep working.
"$bin" --benchmarks=fillseq,readrandom --num=2000 >"$tmp/old.txt" || fail "--benchmarks"
grep -q '^readrandom   :.*ops/s.*(2000 of 2000 found)' "$tmp/old.txt" || fail "--benchmarks output"
"$bin" --demo --num=2000 >"$tmp/demo.txt" || fail "--demo exit status"
grep -q '^demo: all checks passed' "$tmp/demo.txt" || fail "--demo output"

# Every shipped job file runs (tiny sizes).
for f in "$jobs"/*.fio; do
	"$bin" --nrkeys=500 --runtime=200ms --number_ios=300 --output-format=json "$f" \
		>"$tmp/job.json" 2>"$tmp/err" || fail "$(basename "$f"): $(cat "$tmp/err")"
done

[ $fails -eq 0 ] && echo "all e2e checks passed"
exit $((fails > 0))
