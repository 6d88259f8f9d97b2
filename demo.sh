#!/usr/bin/env bash
# The main job: installs what cesium needs (Debian 12, as root or with
# sudo), builds it, and runs the demo: a database in ./demo-db is written,
# read back, scanned, closed and reopened, with what happened and how fast.
set -euo pipefail
cd "$(dirname "$0")"
./tests/setup.sh
[ -d build ] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build >/dev/null
rm -rf demo-db
exec build/bench/cesium-bench --demo --db=demo-db "$@"
