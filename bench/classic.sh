#!/usr/bin/env bash
# Runs bench/jobs/<workload>.fio on each engine, REPS times, fresh database
# each time, JSON results into OUT/<workload>.<engine>.<rep>.json; then
# bench/summarize.py OUT prints the median [min-max] table.
#   bench/classic.sh BENCH_BINARY OUT DBDIR "engines" "workloads" REPS [extra options]
set -euo pipefail
bin=$1 out=$2 db=$3 engines=$4 workloads=$5 reps=$6
shift 6
jobs=$(dirname "$0")/jobs
mkdir -p "$out"
for rep in $(seq 1 "$reps"); do
	for w in $workloads; do
		for e in $engines; do
			rm -rf "$db"
			"$bin" --engine="$e" --directory="$db" --output-format=json "$@" \
				"$jobs/$w.fio" >"$out/$w.$e.$rep.json"
			echo "$(date +%T) rep $rep $w $e done" >&2
		done
	done
done
rm -rf "$db"
