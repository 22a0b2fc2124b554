#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - runs the end-to-end tests: every tests/e2e/test_*.sh, in name order, each under
# `timeout`, against the binaries in the build directory B.
#
#   tests/e2e/run.sh [B [FILTER]]     B defaults to "build"; FILTER (or $E2E_FILTER) keeps
#                                     the tests whose name contains it, e.g. "chanemu"
#   E2E_TIMEOUT=120                   seconds allowed to each test
#   E2E_KEEP=1                        keep every test's $T, not only the failed ones'
#
# Prints "PASS name (Xs)", "SKIP name: why" or "FAIL name" followed by the end of the test's
# output and of the logs it kept, then a summary. Exits 1 if any test failed.

set -u

DIR=$(cd "$(dirname "$0")" && pwd)
B=${1:-build}
FILTER=${2:-${E2E_FILTER:-}}
TIMEOUT=${E2E_TIMEOUT:-120}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/xenmq-e2e-run.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

pass=0 fail=0 skipped=0 failed=()
for t in "$DIR"/test_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	[[ -z $FILTER || $name == *"$FILTER"* ]] || continue
	start=$(date +%s.%N)
	rc=0
	timeout -k 10 "$TIMEOUT" "$t" "$B" < /dev/null > "$OUT/$name.out" 2>&1 || rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0)
		echo "PASS $name (${secs}s)"
		pass=$((pass + 1))
		;;
	77)
		echo "SKIP $name: $(grep -m1 '^SKIP: ' "$OUT/$name.out" | sed 's/^SKIP: [^:]*: //')"
		skipped=$((skipped + 1))
		;;
	*)
		[ $rc = 124 ] && why=" (timed out after ${TIMEOUT}s)" || why=" (status $rc, ${secs}s)"
		echo "FAIL $name$why"
		echo "---- last lines of its output:"
		tail -n 30 "$OUT/$name.out" | sed 's/^/  | /'
		kept=$(sed -n 's/^logs kept in //p' "$OUT/$name.out" | tail -1)
		if [ -n "$kept" ] && [ -d "$kept" ]; then
			for log in "$kept"/*.log; do
				[ -s "$log" ] || continue
				echo "---- $log:"
				tail -n 15 "$log" | sed 's/^/  | /'
			done
		fi
		fail=$((fail + 1))
		failed+=("$name")
		;;
	esac
done

echo "e2e: $pass passed, $fail failed, $skipped skipped${failed[*]:+ (failed: ${failed[*]})}"
[ $fail = 0 ] && [ $((pass + skipped)) -gt 0 ]
