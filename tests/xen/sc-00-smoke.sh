# SPDX-License-Identifier: MIT
# Scenario "smoke": the test bed itself, with no xenmq program.
#
# - Mosquitto runs in dom0 on its Unix socket; mosquitto_pub/mosquitto_sub
#   work there, retained and live, and a v5 user property shows up in
#   mosquitto_sub -F '%t %p %P' as "key:value" (the form the xenmq scenarios
#   use to check the xen-domain stamp).
# - In each DomU the channel is found by name in XenStore
#   (device/console/N/name == org.xenmq), /dev/hvcN is put in raw mode with
#   echo off, and a line sent by dom0 through the channel's socket comes back
#   as the DomU's answer, not as an echo.

smoke_dom0() {
	local got d n dev token

	xt_check "mosquitto listens on $XT_MQ_SOCK" test -S $XT_MQ_SOCK
	xt_pub -r -t xt/smoke/retained -m kept
	got=$(mosquitto_sub --unix $XT_MQ_SOCK -t xt/smoke/retained -C 1 -W 10)
	xt_expect "mosquitto: a retained message is read back" "$got" kept
	xt_pub -r -t xt/smoke/retained -n

	if xt_sub_start smoke 'xt/smoke/live'; then
		xt_pub -t xt/smoke/live -m hello -D publish user-property xen-domain dom0
		xt_sub_wait smoke '^xt/smoke/live ' 1 10
		xt_expect "mosquitto: live message with its user property" \
			"$(xt_sub_lines smoke)" "xt/smoke/live hello xen-domain:dom0"
		xt_sub_stop smoke
	else
		xt_fail "mosquitto_sub subscribes"
	fi

	for d in $XT_DOMUS; do
		if ! xt_domu_run $d smoke.find; then
			xt_fail "$d: no console named $XT_CHAN_NAME in its XenStore"
			continue
		fi
		n=$(xt_domu_get $d hvc_n)
		dev=$(xt_domu_get $d hvc)
		echo "$d: channel $XT_CHAN_NAME is device/console/$n, $dev"
		xt_check "$d: the channel is not the console (N != 0)" [ -n "$n" -a "$n" != 0 ]
		if ! xt_domu_run $d smoke.listen; then
			xt_fail "$d: $dev opened, raw, echo off"
			continue
		fi
		xt_ok "$d: $dev opened, raw, echo off"
		xt_check "$d: QEMU listens on $(xt_chan_sock $d)" test -S "$(xt_chan_sock $d)"
		token="$d-$(xt_now)"
		got=$(xt_chan_ping $d "ping $token" 30)
		xt_expect "$d: ping/pong through the channel" "$got" "pong $token"
		xt_domu_run $d smoke.close
	done
}

smoke_domu() {
	case $1 in
	find)
		echo "consoles: $(xenstore-list device/console 2>/dev/null | tr '\n' ' ')"
		xt_chan_find || return 1
		echo "channel $XT_CHAN_NAME: device/console/$XT_HVC_N -> $XT_HVC"
		xt_put hvc_n "$XT_HVC_N"
		xt_put hvc "$XT_HVC"
		;;
	listen)
		# Keeps the hvc open (termios go back to cooked on the last close),
		# answers one line, then waits to be stopped.
		xt_chan_find || return 1
		rm -f $XT_RUN/tmp/pong.ready
		xt_bg pong sh -c 'exec 3<>"$1" || exit 1
			stty -F "$1" raw -echo || exit 1
			touch '$XT_RUN'/tmp/pong.ready
			read -r line <&3
			echo "pong ${line#ping }" >&3
			echo "pong: got \"$line\""
			exec sleep 3600' pong "$XT_HVC"
		if ! xt_wait_for 30 test -f $XT_RUN/tmp/pong.ready; then
			echo "pong: $XT_HVC not ready after 30 s"
			xt_log_tail pong
			return 1
		fi
		if ! xt_tty_is_raw $XT_HVC; then
			echo "$XT_HVC is not raw:"
			stty -F $XT_HVC -a
			return 1
		fi
		;;
	close)
		xt_log_tail pong
		xt_kill pong
		;;
	*)	return 127;;
	esac
}
