#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run.sh DIR SECONDS - run each libFuzzer target DIR/fuzz_NAME for SECONDS.
#
# A target keeps what it finds in DIR/corpus/NAME, starts from the seeds
# committed in tests/fuzz/corpus/NAME/ when there are any, and leaves a
# crashing input in DIR/artifacts/NAME/ and its output in DIR/NAME.log.
# Prints the executions each target did (from libFuzzer's final stats) and
# exits non-zero if any target crashed or could not run. Extra libFuzzer
# flags may be given in FUZZ_ARGS (e.g. FUZZ_ARGS=-max_len=70000).

usage() {
	echo "usage: $0 DIR SECONDS" >&2
	exit 2
}

[ $# -eq 2 ] || usage
dir=$1
secs=$2
case $secs in ''|*[!0-9]*) usage ;; esac
seeds_root=$(cd "$(dirname "$0")" && pwd)/corpus
status=0
found=0

for bin in "$dir"/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=1
	name=${bin##*/fuzz_}
	corpus=$dir/corpus/$name
	artifacts=$dir/artifacts/$name
	log=$dir/$name.log
	mkdir -p "$corpus" "$artifacts"
	seeds=
	[ -d "$seeds_root/$name" ] && seeds=$seeds_root/$name
	# New inputs go to the first directory; the seeds are only read.
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" $seeds >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "fuzz_$name: ${execs} execs in ${secs} s, corpus $(ls "$corpus" | wc -l) inputs"
	else
		echo "fuzz_$name: FAILED (exit $rc, ${execs:-?} execs); see $log" >&2
		grep -m 5 -E 'ERROR|SUMMARY|Test unit written' "$log" >&2
		status=1
	fi
done

if [ "$found" -eq 0 ]; then
	echo "$0: no fuzz_* targets in $dir" >&2
	exit 1
fi
exit $status
