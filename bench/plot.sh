#!/usr/bin/env bash
# Turns cesium-bench output into PNG charts with gnuplot (Debian: gnuplot-nox).
#
#   bench/plot.sh throughput OUT.png LABEL=PREFIX_bw.N.log ...
#       ops or KiB/s per second from write_bw_log files, one line per label
#       (e.g. cesium=/tmp/c_bw.2.log rocksdb=/tmp/r_bw.2.log)
#   bench/plot.sh latency OUT.png LABEL=PREFIX_lat.N.log ...
#       mean latency per second from write_lat_log files
#   bench/plot.sh cdf OUT.png LABEL=RESULT.json:JOB:DIR ...
#       latency CDF of job JOB, direction DIR (read|write|trim), from the
#       clat percentiles of --output-format=json (or json+) results
set -euo pipefail
kind=$1 out=$2
shift 2
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plots=()
i=0
for spec in "$@"; do
	label=${spec%%=*} src=${spec#*=}
	i=$((i + 1))
	case $kind in
	throughput | latency)
		# fio log lines: msec, value, direction, 0, 0; keep direction apart.
		for d in 0 1 2; do
			awk -F', *' -v d=$d '$3 == d { print $1 / 1000, $2 }' "$src" >"$tmp/$i.$d"
			[ -s "$tmp/$i.$d" ] || continue
			name=$label
			[ $d -eq 0 ] && name="$label read"
			[ $d -eq 1 ] && name="$label write"
			[ $d -eq 2 ] && name="$label delete"
			plots+=("'$tmp/$i.$d' using 1:2 with linespoints title '$name'")
		done
		;;
	cdf)
		IFS=: read -r file job dir <<<"$src"
		python3 - "$file" "$job" "$dir" >"$tmp/$i" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
job = next(j for j in doc["jobs"] if j["jobname"] == sys.argv[2])
pct = job[sys.argv[3]]["clat_ns"]["percentile"]
for p, v in sorted(pct.items(), key=lambda kv: float(kv[0])):
    print(max(v, 1) / 1000.0, float(p))
PY
		plots+=("'$tmp/$i' using 1:2 with linespoints title '$label'")
		;;
	*)
		echo "plot.sh: unknown chart '$kind' (throughput|latency|cdf)" >&2
		exit 2
		;;
	esac
done
[ ${#plots[@]} -gt 0 ] || { echo "plot.sh: nothing to plot" >&2; exit 2; }
{
	echo "set terminal pngcairo size 1000,600 noenhanced 2>/dev/null"
	echo "set output '$out'"
	echo "set grid"
	echo "set key outside right"
	case $kind in
	throughput) echo "set xlabel 'seconds'; set ylabel 'KiB/s'; set title 'throughput per second'" ;;
	latency) echo "set xlabel 'seconds'; set ylabel 'mean latency (ns)'; set title 'latency per second'" ;;
	cdf) echo "set logscale x; set xlabel 'latency (us)'; set ylabel 'percentile'; set yrange [0:100]; set title 'latency CDF'" ;;
	esac
	printf 'plot '
	(IFS=,; echo "${plots[*]}")
} >"$tmp/plot.gp"
sed -i 's/ 2>\/dev\/null//' "$tmp/plot.gp"
gnuplot "$tmp/plot.gp" 2>"$tmp/err" || { sed -i 's/pngcairo/png/' "$tmp/plot.gp"; gnuplot "$tmp/plot.gp"; }
echo "wrote $out"
