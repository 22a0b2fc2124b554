# SPDX-License-Identifier: MIT
# Scenario "restart": xenmqd is killed (SIGKILL) and started again while
# alpha publishes QoS 1 messages at a steady rate (10 a second, 150 in all).
# Every message must reach dom0's subscriber: the agent keeps what it could
# not deliver, replays its sessions after the new HELLO, and resends what was
# not acknowledged. Duplicates are allowed at QoS 1 and reported.

XT_RESTART_N=${XT_RESTART_N:-150}

restart_dom0() {
	local last
	xt_need xenmqd xenmq-agent xenmq-pub || return
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_agents_start alpha || return
	xt_sub_start q1 'xen/alpha/q1' || { xt_fail "mosquitto_sub q1"; return; }
	xt_domu_run alpha xenmq.pub_paced q1 xen/alpha/q1 0.1 1 $XT_RESTART_N
	xt_check "alpha publishes" xt_sub_wait q1 '^xen/alpha/q1 ' 30 60
	echo "killing xenmqd after $(xt_sub_count q1 '^xen/alpha/q1 ') messages"
	xt_xenmqd_stop KILL
	xt_check "xenmqd is gone from the channel" xt_wait_for 10 xt_chan_free alpha
	# a few seconds without a broker, so that messages pile up in the agent
	sleep 3
	xt_xenmqd_start || { xt_fail "xenmqd starts again"; return; }
	xt_ok "xenmqd starts again"
	echo "restarted with $(xt_sub_count q1 '^xen/alpha/q1 ') messages in"
	xt_check "alpha's publisher ends" xt_domu_run_t 120 alpha xenmq.pub_wait q1 100
	last=$(xt_domu_get alpha last-q1)
	echo "alpha published ids 1..$last (xenmq-pub status $(xt_domu_get alpha status-q1))"
	xt_sub_wait q1 '^xen/alpha/q1 ' "${last:-1}" 60
	xt_ids_check q1 xen/alpha/q1 "${last:-0}" restart
}

restart_domu() {
	return 127
}
