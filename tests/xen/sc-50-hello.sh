# SPDX-License-Identifier: MIT
# Scenario "hello": the handshake, whichever side starts first.
#
# A. xenmqd first, while the DomU's tty is still cooked with echo on (held
#    open that way, as a fresh tty is): xenmqd's HELLO probe comes straight
#    back to it as an echo, and must not be taken for the agent's. Then the
#    agent starts (it makes the tty raw) and the link comes up.
# B. The agent first, with no xenmqd: its HELLOs pile up in QEMU and reach
#    xenmqd as a stale backlog when it connects. The link comes up all the
#    same.
# Each time, one message from alpha reaches dom0 exactly once.
# TODO: once xenmqd publishes its counters under xenmq/broker/, check that
# the echoed frames of A were counted as dropped.

# hello_roundtrip TAG: alpha publishes once; dom0 receives it once.
hello_roundtrip() {
	xt_sub_start $1 "xen/alpha/hello/#" || { xt_fail "mosquitto_sub $1"; return; }
	xt_domu_run alpha xenmq.pub xen/alpha/hello/$1 "$1" -q 1
	xt_check "$1: alpha -> dom0" xt_sub_wait $1 "^xen/alpha/hello/$1 " 1 30
	# a barrier after it, so that a late duplicate would be seen
	xt_domu_run alpha xenmq.pub xen/alpha/hello/barrier "$1" -q 1
	xt_sub_wait $1 '^xen/alpha/hello/barrier ' 1 30
	xt_expect "$1: the message arrived once" "$(xt_sub_count $1 "^xen/alpha/hello/$1 ")" 1
	xt_sub_stop $1
}

hello_dom0() {
	xt_need xenmqd xenmq-agent xenmq-pub || return

	echo "A: xenmqd first, tty cooked with echo"
	if ! xt_domu_run alpha xenmq.tty_hold_cooked; then
		xt_fail "A: alpha's channel tty held open, cooked, echo on"
		return
	fi
	xt_xenmqd_start || { xt_fail "A: xenmqd connects"; return; }
	# xenmqd's probe goes out on connecting; the echo is back well within
	# this while the tty is cooked
	sleep 2
	xt_agents_start alpha || return
	xt_domu_run alpha xenmq.tty_release
	hello_roundtrip first-xenmqd
	xt_xenmqd_stop
	xt_domu_run alpha xenmq.agent_stop

	echo "B: agent first, xenmqd later"
	xt_domu_run alpha xenmq.agent_start || { xt_fail "B: agent starts"; return; }
	# the agent's HELLOs (one a second) queue up meanwhile
	sleep 3
	xt_xenmqd_start || { xt_fail "B: xenmqd connects"; return; }
	xt_check "B: xen/alpha/status online" xt_status_wait alpha online 60
	hello_roundtrip first-agent
}

hello_domu() {
	return 127
}
