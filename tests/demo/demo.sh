#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - make demo: a Dom0 and two DomUs on this machine, with the real programs.
#
#   tests/demo/demo.sh [BUILD_DIR]        (DEMO_SECONDS=N: stop by itself after N seconds)
#
# Dom0: a real Mosquitto on a Unix socket, and xenmqd. Two DomUs, "sys-input" and "gui", each
# with a PV channel emulated as Xen presents it (a listening Unix socket on the Dom0 side, a
# pseudo-terminal on the DomU side: tests/tools/chanemu) and an xenmq-agent on it. Their
# applications are xenmq-pub and xenmq-sub:
#
#   sys-input  publishes pointer events and its service state (with a last will);
#   gui        subscribes to every domain's input and publishes its CPU load;
#
# and along the way the demo shows what the design promises: a forged publish refused by the
# ACL, a domain that reboots (its status goes offline and online, its service's will is
# published), and xenmqd's counters. Ctrl-C stops everything and leaves nothing running.

. "$(dirname "$0")/../e2e/lib.sh" "${1:-build}"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || { echo "demo: $B/$p is not built: run make" >&2; exit 1; }
done

say() {
	printf '\n\033[1m[demo %3ds]\033[0m %s\n' "$SECONDS" "$*"
}

# ---- Dom0 ------------------------------------------------------------------------------------
start_mosquitto
start_channel sys-input
start_channel gui
write_acl <<'EOF'
# Each domain writes under its own name, but not its status: xenmqd sets it.
pattern write xen/%u/#
pattern deny xen/%u/status

# The GUI reads every domain's input events and states.
user gui
topic read xen/+/input/#
topic read xen/+/service/#
topic read xen/+/status
EOF
write_xenmqd_conf "status_interval 5"
start_xenmqd

# ---- the DomUs -------------------------------------------------------------------------------
start_agent sys-input
start_agent gui
wait_status sys-input online
wait_status gui online

# feed NAME GENERATOR XENMQ-PUB-ARGS...: GENERATOR's lines, each a message of one long-lived
# xenmq-pub session. Both are direct children, joined by a FIFO, so that stopping them is exact.
feed() {
	local name=$1 gen=$2
	shift 2
	mkfifo "$T/$name.fifo"
	"$gen" > "$T/$name.fifo" &
	_track $!
	"$B/xenmq-pub" -l "$@" < "$T/$name.fifo" 2> "$T/$name.log" &
	_track $!
}

# sys-input: its service state, retained, with a last will that says "stopped" if it dies.
service_state() {
	echo '{"state":"running"}'
	exec sleep infinity
}
feed input-service service_state -L "$(url_agent sys-input)" -i input-service -q 1 -r \
	-t xen/sys-input/service/input \
	--will-topic xen/sys-input/service/input --will-payload '{"state":"stopped"}' \
	--will-qos 1 --will-retain

# sys-input: pointer events, one every half second.
pointer_events() {
	local i=0
	while :; do
		printf '{"x":%d,"y":%d,"buttons":%d}\n' $((i * 37 % 1280)) $((i * 53 % 800)) $((i % 7 == 0))
		i=$((i + 1))
		sleep 0.5
	done
}
feed pointer pointer_events -L "$(url_agent sys-input)" -i pointer -t xen/sys-input/input/pointer

# gui: what it receives, printed with the domain that sent it.
: > "$T/gui-received.log"
"$B/xenmq-sub" -L "$(url_agent gui)" -i ui -q 1 -t 'xen/+/input/#' -t 'xen/+/service/#' \
	-F '%t %p (from %P)' > "$T/gui-received.log" 2> "$T/gui-ui.err" &
_track $!

# gui: its CPU load, retained, every 5 seconds.
cpu_load() {
	local a b c d e f g h idle1 total1 idle2 total2
	while :; do
		read -r _ a b c d e f g h _ < /proc/stat
		idle1=$d; total1=$((a + b + c + d + e + f + g + h))
		sleep 5
		read -r _ a b c d e f g h _ < /proc/stat
		idle2=$d; total2=$((a + b + c + d + e + f + g + h))
		printf '{"busy_pct":%d}\n' $(((100 * (total2 - total1 - idle2 + idle1)) / (total2 - total1 + 1)))
	done
}
feed sysmon cpu_load -L "$(url_agent gui)" -i sysmon -r -t xen/gui/sys/cpu

cat <<EOF

  xenmq demo: Mosquitto and xenmqd in "Dom0", DomUs "sys-input" and "gui" on emulated PV channels.

  Watch everything, as an operator in Dom0 would:

    mosquitto_sub --unix $MQ_SOCK -V mqttv5 -t '#' -v -F '%t %p  %P'

  Logs: $T/xenmqd.log, $T/agent-*.log, $T/gui-received.log
  Ctrl-C stops everything.
EOF

stop=0
trap 'stop=1' INT TERM
end=$((SECONDS + ${DEMO_SECONDS:-1000000000}))

# Shows what gui received since the last call.
shown=0
show_received() {
	local n
	n=$(wc -l < "$T/gui-received.log")
	if [ "$n" -gt "$shown" ]; then
		sed -n "$((shown + 1)),${n}p" "$T/gui-received.log" | tail -4 | sed 's/^/    gui got: /'
		shown=$n
	fi
}

# Runs until Ctrl-C (or DEMO_SECONDS), narrating a few events on the way.
step=0
while [ $stop = 0 ] && [ $SECONDS -lt $end ]; do
	case $step in
	0) say "gui receives sys-input's events, stamped by xenmqd with the domain they came from:" ;;
	3)
		say "gui tries to publish a pointer event in sys-input's name: the ACL refuses it (0x87)."
		"$B/xenmq-pub" -L "$(url_agent gui)" -i forger -q 1 -t xen/sys-input/input/pointer \
			-m '{"x":0,"y":0,"buttons":1}' 2>&1 | sed 's/^/    /' || true
		grep 'denied by the ACL' "$T/xenmqd.log" | tail -1 | sed 's/^/    xenmqd: /'
		;;
	6)
		say "sys-input reboots: its channel vanishes for 3 s, as when xl reboots a domain."
		stop_agent sys-input
		chan_ctl sys-input vanish 3
		chan_ctl sys-input tty-reset
		wait_status sys-input offline
		echo "    xen/sys-input/status: offline; the input service's will:" \
			"$(mosquitto_sub --unix "$MQ_SOCK" -t xen/sys-input/service/input -C 1 -W 2)"
		wait_for 20 test -S "$T/chan-sys-input.sock"
		start_agent sys-input
		wait_status sys-input online
		echo "    xen/sys-input/status: online again; pointer events resume by themselves."
		;;
	9)
		say "xenmqd's counters for sys-input (retained JSON on xenmq/broker/domain/sys-input):"
		mosquitto_sub --unix "$MQ_SOCK" -t xenmq/broker/domain/sys-input -C 1 -W 10 | sed 's/^/    /'
		;;
	esac
	show_received
	step=$((step + 1))
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ $stop = 0 ] && [ $SECONDS -lt $end ] && sleep 0.5
	done
done

say "stopping everything"
trap 'exit 130' INT
_terminate "${_PIDS[@]}"
stop_all_checked
echo "    done: nothing left running."
