# SPDX-License-Identifier: MIT
# Scenario "reboot": "xl reboot beta" while alpha keeps publishing.
#
# - xen/beta/status goes offline, then online again once the rebooted beta's
#   agent (started by its boot steps, as a service would be) is back;
# - the last will of beta's app is published when beta goes away;
# - beta's apps work again, both ways;
# - alpha's QoS 1 messages, one every 0.2 s during the whole reboot, all
#   reach dom0 (every id 1..N; duplicates are reported).

reboot_dom0() {
	local last t0
	xt_need xenmqd xenmq-agent xenmq-pub xenmq-sub || return
	xt_domu_boot_steps alpha "xenmq.agent_start"
	xt_domu_boot_steps beta "xenmq.agent_start"
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_agents_start $XT_DOMUS || return

	xt_sub_start status 'xen/beta/status' || { xt_fail "mosquitto_sub status"; return; }
	xt_sub_start tick 'xen/alpha/tick' 'xen/beta/test/#' || { xt_fail "mosquitto_sub tick"; return; }
	xt_domu_run alpha xenmq.pub_paced tick xen/alpha/tick 0.2 1
	xt_check "alpha publishes" xt_sub_wait tick '^xen/alpha/tick ' 5 30
	xt_sub_start will 'xen/beta/service/#' || { xt_fail "mosquitto_sub will"; return; }
	xt_domu_sub_start beta keeper 'xen/beta/keep/#' --will-topic xen/beta/service/keeper \
		--will-payload gone --will-qos 1 || xt_fail "beta: an app with a last will"

	t0=$(xt_now)
	if ! xt_domu_reboot beta; then
		xt_fail "beta reboots and comes back"
	else
		echo "beta back after $(xt_since $t0) s"
		xt_check "xen/beta/status: offline during the reboot" \
			xt_sub_wait status '^xen/beta/status .*offline' 1 60
		xt_check "the last will of beta's app, published when beta went away" \
			xt_sub_wait will '^xen/beta/service/keeper gone xen-domain:beta$' 1 60
		xt_check "xen/beta/status: online again" xt_status_wait beta online 60
		# retained "online" first, then offline, then online
		echo "xen/beta/status went: $(xt_sub_lines status | cut -d' ' -f2 | tr '\n' ' ')"
		xt_check "beta's agent is back" xt_domu_run beta xenmq.agent_start
		if xt_domu_sub_start beta in 'xen/beta/in/#'; then
			xt_pub -q 1 -t xen/beta/in/cmd -m after-reboot
			xt_check "dom0 -> beta after the reboot" \
				xt_domu_sub_wait beta in '^xen/beta/in/cmd after-reboot( |$)' 1 30
		else
			xt_fail "beta: xenmq-sub subscribes after the reboot"
		fi
		xt_domu_run beta xenmq.pub xen/beta/test/back back -q 1
		xt_check "beta -> dom0 after the reboot, stamped xen-domain=beta" \
			xt_sub_wait tick '^xen/beta/test/back back xen-domain:beta$' 1 30
	fi

	xt_domu_run_t 60 alpha xenmq.pub_stop tick 50
	last=$(xt_domu_get alpha last-tick)
	echo "alpha published ids 1..$last (xenmq-pub status $(xt_domu_get alpha status-tick))"
	xt_sub_wait tick '^xen/alpha/tick ' "${last:-1}" 60
	xt_ids_check tick xen/alpha/tick "${last:-0}" reboot
}

reboot_domu() {
	return 127
}
