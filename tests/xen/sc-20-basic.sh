# SPDX-License-Identifier: MIT
# Scenario "basic": xenmqd in dom0, xenmq-agent in both DomUs.
#
# - a DomU app's message reaches dom0's mosquitto_sub, stamped with the MQTT
#   v5 user property xen-domain=alpha (mosquitto_sub -F '%t %p %P' prints it
#   as "xen-domain:alpha"), also when the app claimed xen-domain=beta;
# - dom0's mosquitto_pub reaches a DomU app;
# - alpha reaches beta through a topic the ACL opens between them, and beta's
#   app sees alpha's stamp;
# - the ACL denies alpha a publish into beta's subtree: the app sees the
#   error, and nothing reaches dom0's subscriber; a subscription to beta's
#   subtree is refused too (xenmq-sub -E exits 1 when every filter is).

basic_dom0() {
	local st out
	xt_need xenmqd xenmq-agent xenmq-pub xenmq-sub || return
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_ok "xenmqd connects to the channels"
	xt_agents_start $XT_DOMUS || return

	# 1. DomU app -> dom0, stamped
	xt_sub_start up 'xen/alpha/test/#' 'xen/beta/#' || { xt_fail "mosquitto_sub up"; return; }
	xt_domu_run alpha xenmq.pub xen/alpha/test/hello hi-from-alpha -q 1
	xt_expect "alpha: xenmq-pub exit status" "$(xt_domu_get alpha pub-status)" 0
	xt_sub_wait up '^xen/alpha/test/hello ' 1 30
	xt_expect "alpha -> dom0, stamped xen-domain=alpha" \
		"$(xt_sub_lines up | grep '^xen/alpha/test/hello ')" \
		"xen/alpha/test/hello hi-from-alpha xen-domain:alpha"
	xt_domu_run alpha xenmq.pub xen/alpha/test/forged hi -q 1 \
		-D publish user-property xen-domain beta
	xt_sub_wait up '^xen/alpha/test/forged ' 1 30
	xt_expect "alpha's forged xen-domain=beta replaced by the stamp" \
		"$(xt_sub_lines up | grep '^xen/alpha/test/forged ')" \
		"xen/alpha/test/forged hi xen-domain:alpha"

	# 2. dom0 -> DomU app
	if xt_domu_sub_start alpha in 'xen/alpha/in/#'; then
		xt_pub -q 1 -t xen/alpha/in/cmd -m hello-alpha
		xt_check "dom0 -> alpha's xenmq-sub" \
			xt_domu_sub_wait alpha in '^xen/alpha/in/cmd hello-alpha( |$)' 1 30
	else
		xt_fail "alpha: xenmq-sub subscribes to xen/alpha/in/#"
	fi

	# 3. alpha -> beta, through bus/alpha-to-beta/ (ACL: alpha writes, beta reads)
	if xt_domu_sub_start beta ab 'bus/alpha-to-beta/#'; then
		xt_domu_run alpha xenmq.pub bus/alpha-to-beta/msg hi-beta -q 1
		xt_check "alpha -> beta through bus/alpha-to-beta/msg, stamped xen-domain=alpha" \
			xt_domu_sub_wait beta ab '^bus/alpha-to-beta/msg hi-beta xen-domain:alpha$' 1 30
	else
		xt_fail "beta: xenmq-sub subscribes to bus/alpha-to-beta/#"
	fi

	# 4. ACL denial, seen by the app. xenmq-pub -q 1 gets the PUBACK's
	# reason code (not authorized) and must exit non-zero.
	xt_domu_run alpha xenmq.pub xen/beta/test/forged forged -q 1
	st=$(xt_domu_get alpha pub-status)
	out=$(xt_domu_get alpha pub-output)
	echo "alpha, publish to xen/beta/test/forged: status $st, said: $out"
	xt_check "alpha: publish into beta's subtree fails in the app" [ "$st" != 0 ]
	# a barrier: alpha's next message, sent after the denied one was answered
	xt_domu_run alpha xenmq.pub xen/alpha/test/barrier after-denied -q 1
	xt_sub_wait up '^xen/alpha/test/barrier ' 1 30
	xt_check "the denied message did not reach dom0" \
		[ "$(xt_sub_count up '^xen/beta/test/forged ')" = 0 ]
	xt_domu_run_t 70 alpha xenmq.sub_ack deny 'xen/beta/#'
	st=$(xt_domu_get alpha once-deny)
	echo "alpha, subscribe to xen/beta/#: status $st, said: $(xt_domu_get alpha once-deny-output)"
	xt_expect "alpha: subscription to beta's subtree refused (xenmq-sub -E status)" "$st" 1
	xt_sub_stop up
}

basic_domu() {
	return 127
}
