#!/bin/sh
# SPDX-License-Identifier: MIT
# DomU side of the real-Xen tests (busybox sh), started by /init at every boot.
#
# 1. Says it booted (data/xt/booted), waits until dom0 has let it read
#    /xenmq-test/<dom>/, and runs the steps listed in /xenmq-test/<dom>/boot
#    (";"-separated, e.g. "xenmq.agent_start"): they play the part of the
#    services a real DomU starts at boot, so that a scenario resumes after
#    "xl reboot" of this domain.
# 2. Says it is ready (data/xt/ready), then serves the steps dom0 writes to
#    /xenmq-test/<dom>/cmd, one at a time, each in its own process group so
#    that a step dom0 gave up on can be stopped when the next one arrives.
#
#   domu.sh              the loop above
#   domu.sh --step SEQ STEP ARGS...   one step (used by the loop)
cd /xt || exit 1
. ./lib-common.sh
. ./lib-xenmq.sh
. ./lib-domu.sh
for f in ./sc-*.sh; do
	. "$f"
done

if [ "${1:-}" = --step ]; then
	shift
	xt_step "$@"
	exit 0
fi

xt_ctl_readable() { xenstore-read "$XT_CTL/boot" >/dev/null 2>&1; }

echo "XT: $XT_DOM up, domid $XT_DOMID, uptime $(xt_now)"
mkdir -p $XT_RUN/tmp
xenstore-write data/xt/booted "$(xt_now)"
if xt_wait_for 60 xt_ctl_readable; then
	IFS=';'
	for s in $(xt_ctl boot); do
		IFS=' '
		set -f
		set -- $s
		set +f
		[ $# -gt 0 ] || continue
		echo "XT: boot step: $*"
		xt_step boot "$@"
	done
	IFS=' '
else
	echo "XT: $XT_CTL not readable after 60 s: no boot steps"
fi
xenstore-write data/xt/ready "$(xt_now)"

last=
cur=
while :; do
	cmd=$(xt_ctl cmd)
	if [ -z "$cmd" ] || [ "$cmd" = "$last" ]; then
		sleep 0.2
		continue
	fi
	last=$cmd
	set -f	# arguments may be topic filters: no globbing
	set -- $cmd
	set +f
	if [ -n "$cur" ] && kill -0 "$cur" 2>/dev/null; then
		echo "XT: stopping the previous step, dom0 has moved on"
		kill -s TERM -"$cur" 2>/dev/null
	fi
	if [ "${2:-}" = quit ]; then
		xt_kill_all
		xenstore-write data/xt/ack "$1 0"
		echo "XT: $XT_DOM done"
		exit 0
	fi
	setsid sh /xt/domu.sh --step "$@" &
	cur=$!
done
