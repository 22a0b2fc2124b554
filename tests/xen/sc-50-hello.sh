# SPDX-License-Identifier: MIT
# Scenario "hello": the handshake, whichever side starts first.
#
# A. xenmqd first, while alpha's tty is not raw yet:
#    A1 held open in raw mode but with echo on, so that xenmqd's HELLO probe
#       comes straight back to it, byte for byte: xenmqd must drop it as its
#       own echo (counted in echoed_frames, xenmq/broker/domain/alpha), not
#       take it for the agent's;
#    A2 held open as a fresh tty is (cooked, echo with ^X for control bytes,
#       CR/LF mapping): the echo comes back mangled and fails its check.
#    Then the agent starts (it makes the tty raw) and the link comes up.
# B. The agent first, with no xenmqd: its HELLOs pile up in QEMU and reach
#    xenmqd as a stale backlog when it connects. The link comes up all the
#    same.
# Each time, one message from alpha reaches dom0 exactly once.

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

# xenmqd's counter $2 for domain $1 (retained JSON under xenmq/broker/domain/).
hello_counter() {
	mosquitto_sub --unix $XT_MQ_SOCK -t xenmq/broker/domain/$1 -C 1 -W 3 2>/dev/null |
		sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}

hello__counter_positive() { [ "$(hello_counter $1 $2)" -gt 0 ] 2>/dev/null; }

# hello_tty_first TAG MODE: xenmqd meets alpha's tty held in MODE (echo|fresh).
hello_tty_first() {
	echo "$1: xenmqd first, alpha's tty $2"
	if ! xt_domu_run alpha xenmq.tty_hold $2; then
		xt_fail "$1: alpha's channel tty held open ($2)"
		return 1
	fi
	xt_xenmqd_start || { xt_fail "$1: xenmqd connects"; return 1; }
	if [ $2 = echo ]; then
		xt_check "$1: xenmqd dropped its own HELLO, echoed back (echoed_frames > 0)" \
			xt_wait_for 30 hello__counter_positive alpha echoed_frames
	else
		# nothing to wait for: the mangled echo has no counter of its
		# own (bad_frames counts every bad frame); let it come back
		# before the agent starts
		sleep 2
	fi
	xt_agents_start alpha || return 1
	xt_domu_run alpha xenmq.tty_release
	hello_roundtrip $1
	echo "$1: xenmqd's counters for alpha: $(mosquitto_sub --unix $XT_MQ_SOCK \
		-t xenmq/broker/domain/alpha -C 1 -W 3 2>/dev/null)"
	xt_xenmqd_stop
	xt_domu_run alpha xenmq.agent_stop
}

hello_dom0() {
	xt_need xenmqd xenmq-agent xenmq-pub || return
	hello_tty_first first-xenmqd-echo echo
	hello_tty_first first-xenmqd-fresh fresh

	echo "first-agent: the agent first, xenmqd later"
	xt_domu_run alpha xenmq.agent_start || { xt_fail "first-agent: agent starts"; return; }
	# the agent's HELLOs (one a second) queue up meanwhile
	sleep 3
	xt_xenmqd_start || { xt_fail "first-agent: xenmqd connects"; return; }
	xt_check "first-agent: xen/alpha/status online" xt_status_wait alpha online 60
	hello_roundtrip first-agent
}

hello_domu() {
	return 127
}
