#!/bin/sh
# SPDX-License-Identifier: MIT
# deps.sh - install from Debian/Ubuntu packages what building, testing and
# running the demo of xenmq need; with --fuzz, clang and libFuzzer too.
# Installs only what is missing (apt-get update first). Run as root, or
# with sudo available.
set -eu

PKGS="build-essential pkg-config libuv1-dev libmosquitto-dev libjansson-dev
      zlib1g-dev libxen-dev libudev-dev libcmocka-dev mosquitto
      mosquitto-clients socat procps"
for arg in "$@"; do
	case $arg in
	--fuzz) PKGS="$PKGS clang libclang-rt-dev" ;;
	*) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
	esac
done

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: no apt-get here; install the equivalents of:" $PKGS >&2
	echo "deps.sh: (macOS: brew install libuv mosquitto jansson cmocka pkg-config;" \
	     "then make WITH_XEN=no WITH_UDEV=no)" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: missing packages:$missing (run as root or install sudo)" >&2
		exit 1
	}
	SUDO=sudo
fi
echo "deps.sh: installing$missing"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
