#!/bin/bash
# exports_test — the shared library exports only the public API: every
# defined dynamic symbol, function or data, starts with cesium_, and every
# function the public header declares is exported.
# Usage: exports_test.sh <libcesium.so> [include/cesium.h]
set -u
lib="${1:?usage: exports_test.sh <libcesium.so> [cesium.h]}"
header="${2:-}"

if ! command -v nm >/dev/null 2>&1; then
	echo "nm not found: skipping"
	exit 77
fi

# Function types: T/t text, W/w weak, i indirect (ifunc). Data types: D/d
# initialised data, B/b bss, R/r read-only, V/v weak objects, G/g and S/s
# small data, u unique global. Version suffixes (@...) dropped. The version
# nodes (type A, absolute) are not symbols of the code and are left out.
defined=$(nm -D --defined-only "$lib")
funcs=$(printf '%s\n' "$defined" | awk '$2 ~ /^[TtWwi]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
data=$(printf '%s\n' "$defined" | awk '$2 ~ /^[DdBbRrVvGgSsu]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
if [ -z "$funcs" ]; then
	echo "FAIL: no exported functions found in $lib"
	exit 1
fi

status=0
stray=$(printf '%s\n' "$funcs" | grep -v '^cesium_' || true)
if [ -n "$stray" ]; then
	echo "FAIL: $lib exports functions outside the cesium_ prefix:"
	printf '  %s\n' $stray
	status=1
fi
stray_data=$(printf '%s\n' "$data" | grep -v '^cesium_' | grep -v '^$' || true)
if [ -n "$stray_data" ]; then
	echo "FAIL: $lib exports data symbols outside the cesium_ prefix:"
	printf '  %s\n' $stray_data
	status=1
fi

if [ -n "$header" ]; then
	declared=$(grep -oE '\bcesium_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
	for f in $declared; do
		if ! printf '%s\n' "$funcs" | grep -qx "$f"; then
			echo "FAIL: $f is declared in $(basename "$header") but not exported"
			status=1
		fi
	done
fi

count=$(printf '%s\n' "$funcs" | wc -l)
ndata=$(printf '%s\n' "$data" | grep -c . || true)
[ $status -eq 0 ] && echo "ok: $count exported functions and $ndata data symbols, all cesium_*"
exit $status
