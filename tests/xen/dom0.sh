#!/bin/sh
# SPDX-License-Identifier: MIT
# Orchestrator of the real-Xen tests, run by /init in dom0 (busybox sh).
#
# Creates the DomUs alpha and beta, then runs every scenario tests/xen/sc-*.sh
# in the order of their names, each in its own shell under a time limit, and
# prints for the host one line per scenario:
#   XMQ-BEGIN NAME
#   XMQ-RESULT NAME PASS|FAIL|SKIP SECONDS [REASON]
# plus XMQ-MEASURE lines for the numbers. Between two scenarios everything
# they started is stopped (Mosquitto and the DomUs stay up). The exit status,
# 0 when nothing failed, goes to /run/xt/rc for /init.
#
#   dom0.sh                     the whole run
#   dom0.sh --scenario NAME     one scenario's dom0 part (used by the run)
#
# Variables from /xt/run.conf (written by tests/xen/run.sh):
#   XT_DEADLINE    dom0 uptime (s) by which everything must have ended
#   XT_ONLY        scenarios to run ("+"-separated names; smoke always runs)
#   XT_SC_TIMEOUT  limit for one scenario, seconds (default 300)
cd /xt || exit 1
. ./lib-common.sh
. ./lib-dom0.sh
. ./lib-xenmq.sh
for f in ./sc-*.sh; do
	. "$f"
done
[ -f /xt/run.conf ] && . /xt/run.conf
# a write to a FIFO or socket whose reader died must fail, not kill the run
trap '' PIPE

if [ "${1:-}" = --scenario ]; then
	"${2}_dom0"
	exit $?
fi

XT_DEADLINE=${XT_DEADLINE:-840}
XT_SC_TIMEOUT=${XT_SC_TIMEOUT:-300}
RC=0

scenarios() {
	local f n
	for f in ./sc-*.sh; do
		n=${f#./sc-??-}
		echo "${n%.sh}"
	done
}

# smoke always; the others unless XT_ONLY names some; the opt-in ones
# (XT_OPTIN, set by their files) only when XT_ONLY names them.
wanted() {
	[ "$1" = smoke ] && return 0
	case "+${XT_ONLY:-}+" in *"+$1+"*) return 0;; esac
	case " ${XT_OPTIN:-} " in *" $1 "*) return 1;; esac
	[ -z "${XT_ONLY:-}" ]
}

# result NAME VERDICT T0 [REASON]
result() {
	echo "XMQ-RESULT $1 $2 $(xt_since $3) ${4:-}"
	[ "$2" = FAIL ] && RC=1
	return 0
}

run_scenario() {
	local n=$1 t0 lim rc verdict reason=
	t0=$(xt_now)
	echo "XMQ-BEGIN $n"
	lim=$(awk -v d="$XT_DEADLINE" -v n="$t0" -v m="$XT_SC_TIMEOUT" \
		'BEGIN { l = int(d - n - 20); print (l < m ? l : m) }')
	if [ "$lim" -lt 10 ]; then
		result $n FAIL $t0 "not run: the run is out of time"
		return
	fi
	timeout $lim sh /xt/dom0.sh --scenario $n
	rc=$?
	if [ -s $XT_RUN/failed ]; then
		verdict=FAIL
		reason=$(head -n 1 $XT_RUN/failed)
	elif [ $rc = 0 ]; then
		verdict=PASS
	elif [ $rc = 77 ]; then
		verdict=SKIP
		reason=$(cat $XT_RUN/skip 2>/dev/null)
	elif [ $rc = 143 ] || [ $rc = 124 ]; then
		verdict=FAIL
		reason="timed out after $lim s"
	else
		verdict=FAIL
		reason="exit status $rc"
	fi
	result $n $verdict $t0 "$reason"
	[ $verdict = FAIL ] && xt_dump_logs
	xt_reset
}

setup() {
	local t0 d
	t0=$(xt_now)
	echo "XMQ-BEGIN setup"
	for d in $XT_DOMUS; do
		if ! xt_domu_create $d; then
			result setup FAIL $t0 "xl create $d failed"
			return 1
		fi
	done
	for d in $XT_DOMUS; do
		if ! xt_domu_wait_ready $d 180; then
			result setup FAIL $t0 "$d did not boot"
			return 1
		fi
		echo "$d: domid $(xt_domu_id $d), ready"
	done
	xl list
	if ! xt_mosquitto_start; then
		xt_log_tail mosquitto
		result setup FAIL $t0 "mosquitto did not start"
		return 1
	fi
	echo "programs: $(ls /xt/bin | tr '\n' ' ')"
	result setup PASS $t0
}

teardown() {
	local d seq
	for d in $XT_DOMUS; do
		xl domid $d >/dev/null 2>&1 || continue
		seq=$(xt_domu_send $d quit)
		# the domain may be gone before its answer is read
		xt_domu_wait $d $seq 10 >/dev/null 2>&1
	done
	for d in $XT_DOMUS; do
		xt_wait_for 10 xt__domu_gone $d || xl destroy $d 2>/dev/null
	done
	xt_kill_all
	# let the last console lines through, then stop following
	sleep 1
	xt_console_unfollow
}

xt__domu_gone() { ! xl domid $1 >/dev/null 2>&1; }

if setup; then
	for n in $(scenarios); do
		wanted $n && run_scenario $n
	done
else
	RC=1
	xt_dump_logs
fi
teardown
echo $RC > $XT_RUN/rc
exit $RC
