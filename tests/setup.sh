#!/usr/bin/env bash
# Installs the Debian 12 packages cesium builds and tests with (as root, or
# with sudo when not root). Quiet when everything is already there.
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config cmake liburing-dev libmimalloc-dev
      libzstd-dev libxxhash-dev libcmocka-dev clang libclang-rt-14-dev binutils
      librocksdb-dev libleveldb-dev liblmdb-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
