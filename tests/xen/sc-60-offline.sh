# SPDX-License-Identifier: MIT
# Scenario "offline": QoS 1 messages sent to a DomU app while its channel is
# down are delivered once it is back.
#
# alpha's app holds a persistent session (clean start off, a client id of its
# own, a session expiry) subscribed to xen/alpha/inbox/#. alpha is rebooted;
# while xen/alpha/status says offline, dom0 publishes 5 QoS 1 messages; the
# app, started again after the reboot with the same session, receives them.
#
# The session: xenmq-sub -c -i keeper (client id alpha/keeper; -c keeps the
# session, with an expiry of 3600 s unless -x says otherwise).

XT_PERSIST=${XT_PERSIST:--c -i keeper}

offline_dom0() {
	local i
	xt_need xenmqd xenmq-agent xenmq-sub || return
	xt_domu_boot_steps alpha "xenmq.agent_start"
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_agents_start alpha || return
	if ! xt_domu_sub_start alpha keeper 'xen/alpha/inbox/#' $XT_PERSIST; then
		xt_fail "alpha: persistent xenmq-sub subscribes"
		return
	fi
	xt_ok "alpha: persistent xenmq-sub subscribes"
	xenstore-rm /xenmq-test/alpha/cmd
	xl reboot alpha || { xt_fail "xl reboot alpha"; return; }
	xt_check "xen/alpha/status offline" xt_status_wait alpha offline 60
	i=1
	while [ $i -le 5 ]; do
		xt_pub -q 1 -t xen/alpha/inbox/m$i -m "queued-$i"
		i=$((i + 1))
	done
	echo "published 5 messages while alpha was down"
	# xt_domu_reboot without the "xl reboot": wait for the new domain
	if ! xt_wait_for 60 xt__new_domid alpha "$(xt_domu_id alpha)"; then
		xt_fail "alpha comes back"
		return
	fi
	xt_domu_grant alpha "$(xl domid alpha)"
	xt_domu_wait_ready alpha 120 || { xt_fail "alpha comes back"; return; }
	xt_check "xen/alpha/status online" xt_status_wait alpha online 60
	xt_domu_run alpha xenmq.sub_start_nosync keeper 'xen/alpha/inbox/#' $XT_PERSIST
	xt_check "the 5 queued messages reach alpha's app" \
		xt_domu_sub_wait alpha keeper '^xen/alpha/inbox/m[1-5] queued-[1-5]( |$)' 5 60
	xt_domu_sub_count alpha keeper '^xen/alpha/inbox/m[1-5] queued-[1-5]( |$)' >/dev/null
	xt_measure offline.delivered "$(xt_domu_get alpha count-keeper)" msgs \
		"of 5 queued while alpha was down"
}

offline_domu() {
	return 127
}
