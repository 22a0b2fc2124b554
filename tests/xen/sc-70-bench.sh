# SPDX-License-Identifier: MIT
# Scenario "bench": what xenmq carries over the real channel against what the
# bare channel carries, in one boot, for the report (figures are printed,
# never compared with a threshold; compare them only with each other).
#
# Every figure comes from xmqbench (tests/tools/xmqbench/), one process on
# each side of the channel, timed by one of them on its own clock (the
# domains share none):
#   bench.raw.up, .down    bytes/s of the bare channel, no xenmq program
#                          running: xmqbench raw-send and raw-recv on alpha's
#                          tty and the channel's socket in dom0; the receiver
#                          sends "go", the sender answers with the data, and
#                          the receiver times from its go to the last byte;
#                          the connection stays open until the receiver's ack
#                          is in (QEMU drops unread bytes at a close)
#   bench.raw.rtt.p50, .p99  1-byte round trip: xmqbench raw-ping in alpha,
#                          raw-echo on the socket in dom0, 200 rounds
#   bench.up.64, .4k, .16k    payload bytes/s, QoS 1, alpha's xmqbench send
#                          (through its agent) to xmqbench recv on dom0's
#                          Mosquitto; 64-byte, 4 KiB and the largest messages
#                          a 16 KiB frame (max_frame_size) holds
#   bench.down.64, .4k, .16k  the same from dom0's Mosquitto to alpha
#   bench.rr.p50, .p99     request round trip: xmqbench request in alpha
#                          (through its agent, MQTT v5 response topic and
#                          correlation data) answered by xmqbench respond on
#                          dom0's Mosquitto, one at a time, 200 rounds
# A receiver counts what arrived and times from its go (which precedes the
# first send by one trip) to the last arrival. Each xenmq figure says what
# share of the raw figure of the same direction it is, and the share of a CPU
# each process of the path used meanwhile (xmqbench --watch): in alpha the
# application ("app") and the agent, in dom0 xenmqd, Mosquitto and QEMU (the
# device model that serves alpha's channel).
#
# It fails only when a measurement could not be made: a program that did not
# answer, raw bytes that differ, a QoS 1 message that never arrived.

XT_BENCH_RAW_UP=${XT_BENCH_RAW_UP:-2097152}
XT_BENCH_RAW_DOWN=${XT_BENCH_RAW_DOWN:-1048576}
XT_BENCH_RTT=${XT_BENCH_RTT:-200}
# "label size count": counts for a few seconds each under TCG
XT_BENCH_SIZES=${XT_BENCH_SIZES:-"64 64 600;4k 4096 300;16k max 100"}
XT_BENCH_TOPIC=xen/alpha/bench

# bench__kv LINE KEY: the value of KEY=VALUE in an xmqbench result line.
bench__kv() {
	echo "$1" | awk -v k="$2" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1)
		{ print substr($i, length(k) + 2); exit } }'
}

# bench__ratio A B: A / B to three significant digits, or "?".
bench__ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "?";
		else printf "%.3g", a / b }'
}

# bench__ms US: microseconds as milliseconds, two decimals.
bench__ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# bench__cpu RESULT SELF: "SELF 40%, agent 35%" from the cpu_NAME_pct words
# of a result line, "self" named SELF.
bench__cpu() {
	echo "$1" | awk -v me="$2" '{ s = ""
		for (i = 1; i <= NF; i++) if ($i ~ /^cpu_.*_pct=/) {
			n = substr($i, 5); v = n; sub(/_pct=.*/, "", n); sub(/.*=/, "", v)
			if (n == "self") n = me
			s = s (s == "" ? "" : ", ") n " " v "%" }
		print s }'
}

# The QEMU that serves alpha's channel (xl starts one per domain). busybox
# grep stops at the first NUL of a cmdline: it can only match argv[0].
bench__qemu_pid() {
	local id f
	id=$(xt_domu_id alpha)
	for f in $(grep -l qemu /proc/[0-9]*/cmdline 2>/dev/null); do
		if tr '\0' ' ' < $f | grep -q -- "-xen-domid $id "; then
			f=${f#/proc/}
			echo ${f%/cmdline}
			return 0
		fi
	done
	return 1
}

# --watch options for the dom0 processes of the path ($BENCH_QEMU: QEMU's).
bench__watch0() {
	local p
	[ -n "$BENCH_QEMU" ] && echo "--watch qemu=$BENCH_QEMU"
	for p in xenmqd mosquitto; do
		[ "$1" = raw ] && break
		xt_running $p && echo "--watch $p=$(xt_pid $p)"
	done
}

# ---- both sides: xmqbench in the background --------------------------------

bench__ready() {
	grep -qs '^ready' $XT_RUN/log/bench-$1.log || [ -f $XT_RUN/tmp/bench-$1.rc ]
}

# bench_bg NAME ARGS...: xmqbench ARGS in the background, until it says
# "ready"; its exit status goes to $XT_RUN/tmp/bench-NAME.rc.
bench_bg() {
	local n=$1
	shift
	mkdir -p $XT_RUN/tmp
	rm -f $XT_RUN/tmp/bench-$n.rc $XT_RUN/log/bench-$n.log
	xt_bg bench-$n sh -c 'xmqbench "$@"; echo $? > '$XT_RUN/tmp/bench-$n.rc xmqbench "$@"
	xt_wait_for 30 bench__ready $n
	if ! grep -qs '^ready' $XT_RUN/log/bench-$n.log; then
		echo "xmqbench $1 ($n) did not get ready"
		xt_log_tail bench-$n
		return 1
	fi
}

# bench_wait NAME TIMEOUT: until NAME has exited; prints its result line.
bench_wait() {
	if ! xt_wait_for $2 test -f $XT_RUN/tmp/bench-$1.rc; then
		echo "xmqbench $1: still running after $2 s" >&2
		xt_kill bench-$1
	fi
	sed 's/^/  | /' $XT_RUN/log/bench-$1.log >&2
	grep '^result' $XT_RUN/log/bench-$1.log | tail -n 1
}

bench__has_result() { grep -qs '^result' $XT_RUN/log/bench-$1.log; }

# bench_stop NAME: stops NAME (SIGTERM); prints its result line.
bench_stop() {
	xt_kill bench-$1
	xt_wait_for 5 bench__has_result $1
	sed 's/^/  | /' $XT_RUN/log/bench-$1.log >&2
	grep '^result' $XT_RUN/log/bench-$1.log | tail -n 1
}

# bench_fg NAME TIMEOUT ARGS...: xmqbench ARGS now; prints its result line.
bench_fg() {
	local n=$1 t=$2 out=$XT_RUN/tmp/bench-$1.out
	shift 2
	mkdir -p $XT_RUN/tmp
	timeout $t xmqbench "$@" > $out 2>&1
	echo "xmqbench $1 ($n): exit status $?" >&2
	sed 's/^/  | /' $out >&2
	grep '^result' $out | tail -n 1
}

# bench_domu_run TIMEOUT DOM STEP ARGS...: xt_domu_run_t, but waiting on a
# XenStore watch of DOM's ack rather than polling it ten times a second: the
# measurement runs meanwhile, and dom0's one vCPU also runs QEMU, which moves
# the channel's bytes (a polling loop there cost the bare channel up to half
# its speed). The watch fires once at once, then on the DomU's ack; the 5 s
# limit covers an ack written before the watch was set.
bench_domu_run() {
	local lim=$1 d=$2 seq path t0 ack
	shift
	seq=$(xt_domu_send "$@")
	path=/local/domain/$(xt_domu_id $d)/data/xt/ack
	t0=$(xt_now)
	while ! bench__acked $path $seq; do
		if awk -v a="$t0" -v b="$(xt_now)" -v l="$lim" 'BEGIN { exit !(b - a > l) }'; then
			echo "$d: step $seq not finished after $lim s"
			return 124
		fi
		timeout 5 xenstore-watch -n 2 $path >/dev/null 2>&1
	done
	ack=$(xenstore-read $path 2>/dev/null)
	return ${ack#* }
}

bench__acked() {
	case "$(xenstore-read $1 2>/dev/null)" in
	"$2 "*) return 0;;
	esac
	return 1
}

# ---- the bare channel ------------------------------------------------------

# bench_raw_up: alpha sends, dom0 receives on the channel's socket.
bench_raw_up() {
	local r s
	xt_wait_for 10 xt_chan_free alpha || { xt_fail "alpha's channel socket is free"; return; }
	xt_domu_run alpha bench.bg rawup raw-send --chan @HVC --bytes $XT_BENCH_RAW_UP ||
		{ xt_fail "alpha: xmqbench raw-send ready"; return; }
	r=$(bench_fg rawup 150 raw-recv --chan "$(xt_chan_sock alpha)" --bytes $XT_BENCH_RAW_UP \
		$(bench__watch0 raw))
	xt_domu_run_t 80 alpha bench.wait rawup 60
	s=$(xt_domu_get alpha res-rawup)
	echo "alpha: $s"
	xt_expect "raw alpha -> dom0: $XT_BENCH_RAW_UP bytes, none different" \
		"$(bench__kv "$r" received)/$(bench__kv "$r" errors)" "$XT_BENCH_RAW_UP/0"
	RAW_UP=$(bench__kv "$r" rate)
	[ -n "$RAW_UP" ] && xt_measure bench.raw.up "$RAW_UP" B/s \
		"alpha->dom0, $XT_BENCH_RAW_UP bytes in $(bench__kv "$r" secs)s from the go" \
		"($(bench__kv "$r" first_rate) from the first byte); CPU alpha:" \
		"$(bench__cpu "$s" xmqbench); dom0: $(bench__cpu "$r" xmqbench)"
}

# bench_raw_down: dom0 sends on the channel's socket, alpha receives.
bench_raw_down() {
	local r s
	xt_wait_for 10 xt_chan_free alpha || { xt_fail "alpha's channel socket is free"; return; }
	bench_bg rawdown raw-send --chan "$(xt_chan_sock alpha)" --bytes $XT_BENCH_RAW_DOWN \
		$(bench__watch0 raw) ||
		{ xt_fail "dom0: xmqbench raw-send ready"; return; }
	bench_domu_run 170 alpha bench.fg rawdown 150 raw-recv --chan @HVC --bytes $XT_BENCH_RAW_DOWN
	r=$(xt_domu_get alpha res-rawdown)
	s=$(bench_wait rawdown 30)
	echo "dom0: $s"
	xt_expect "raw dom0 -> alpha: $XT_BENCH_RAW_DOWN bytes, none different" \
		"$(bench__kv "$r" received)/$(bench__kv "$r" errors)" "$XT_BENCH_RAW_DOWN/0"
	RAW_DOWN=$(bench__kv "$r" rate)
	[ -n "$RAW_DOWN" ] && xt_measure bench.raw.down "$RAW_DOWN" B/s \
		"dom0->alpha, $XT_BENCH_RAW_DOWN bytes in $(bench__kv "$r" secs)s from the go" \
		"($(bench__kv "$r" first_rate) from the first byte); CPU alpha:" \
		"$(bench__cpu "$r" xmqbench); dom0: $(bench__cpu "$s" xmqbench)"
}

# bench_raw_rtt: alpha pings, dom0 echoes on the channel's socket.
bench_raw_rtt() {
	local r
	xt_wait_for 10 xt_chan_free alpha || { xt_fail "alpha's channel socket is free"; return; }
	bench_bg rawecho raw-echo --chan "$(xt_chan_sock alpha)" ||
		{ xt_fail "dom0: xmqbench raw-echo ready"; return; }
	bench_domu_run 120 alpha bench.fg rawping 100 raw-ping --chan @HVC --count $XT_BENCH_RTT
	r=$(xt_domu_get alpha res-rawping)
	echo "dom0: $(bench_stop rawecho)"
	xt_expect "raw round trips: every one answered" "$(bench__kv "$r" received)" "$XT_BENCH_RTT"
	RAW_RTT50=$(bench__kv "$r" p50_us)
	RAW_RTT99=$(bench__kv "$r" p99_us)
	[ -n "$RAW_RTT50" ] || return
	xt_measure bench.raw.rtt.p50 "$(bench__ms $RAW_RTT50)" ms \
		"1 byte alpha->dom0->alpha, $XT_BENCH_RTT rounds (min $(bench__ms \
		"$(bench__kv "$r" min_us)"), mean $(bench__ms "$(bench__kv "$r" mean_us)"));" \
		"CPU alpha: $(bench__cpu "$r" xmqbench)"
	xt_measure bench.raw.rtt.p99 "$(bench__ms $RAW_RTT99)" ms \
		"max $(bench__ms "$(bench__kv "$r" max_us)")"
}

# ---- xenmq -----------------------------------------------------------------

# bench__stats: xenmqd's counters for alpha (frames, bytes, bad frames...),
# for the log: what crossed the channel during the measurements so far.
bench__stats() {
	echo "xenmqd, alpha: $(mosquitto_sub --unix $XT_MQ_SOCK -t xenmq/broker/domain/alpha \
		-C 1 -W 5 2>/dev/null)"
}

# bench__msg KEY RECV-RESULT SEND-RESULT COUNT RAW WHAT: the measure of a
# stream of messages.
bench__msg() {
	local r=$2 n
	n=$(bench__kv "$r" received)
	xt_expect "$1: every QoS 1 message arrived" "${n:-none}" "$4"
	bench__stats
	[ -n "$n" ] || return
	xt_measure $1 "$(bench__kv "$r" rate)" B/s \
		"$(bench__ratio "$(bench__kv "$r" rate)" "$5") of raw; $6, $n msgs of" \
		"$(bench__kv "$3" size) B in $(bench__kv "$r" secs)s, $(bench__kv "$r" msg_rate)" \
		"msg/s, QoS 1; CPU $7"
}

# bench_up LABEL SIZE COUNT: alpha's xmqbench send through its agent to
# xmqbench recv on dom0's Mosquitto.
bench_up() {
	local t=$XT_BENCH_TOPIC/up-$1 r s
	xt_domu_run alpha bench.bg up$1 send --url @AGENT --topic $t --size $2 --count $3 \
		--watch agent=@AGENTPID ||
		{ xt_fail "alpha: xmqbench send ready"; return; }
	r=$(bench_fg up$1 200 recv --url mqtt+unix:$XT_MQ_SOCK --topic $t --count $3 --timeout 60 \
		$(bench__watch0))
	xt_domu_run_t 80 alpha bench.wait up$1 60
	s=$(xt_domu_get alpha res-up$1)
	echo "alpha: $s"
	bench__msg bench.up.$1 "$r" "$s" $3 "$RAW_UP" "alpha->dom0" \
		"alpha: $(bench__cpu "$s" app); dom0: $(bench__cpu "$r" app)"
}

# bench_down LABEL SIZE COUNT: xmqbench send on dom0's Mosquitto to alpha's
# xmqbench recv through its agent. At most Mosquitto's max_queued_messages
# (1000): it queues for xenmqd what the channel has not taken yet.
bench_down() {
	local t=$XT_BENCH_TOPIC/down-$1 r s
	bench_bg down$1 send --url mqtt+unix:$XT_MQ_SOCK --topic $t --size $2 --count $3 \
		$(bench__watch0) ||
		{ xt_fail "dom0: xmqbench send ready"; return; }
	bench_domu_run 220 alpha bench.fg down$1 200 recv --url @AGENT --topic $t --count $3 \
		--timeout 60 --watch agent=@AGENTPID
	r=$(xt_domu_get alpha res-down$1)
	s=$(bench_wait down$1 60)
	echo "dom0: $s"
	bench__msg bench.down.$1 "$r" "$s" $3 "$RAW_DOWN" "dom0->alpha" \
		"alpha: $(bench__cpu "$r" app); dom0: $(bench__cpu "$s" app)"
}

# bench_rr: requests from alpha, answered in dom0.
bench_rr() {
	local r
	bench_bg respond respond --url mqtt+unix:$XT_MQ_SOCK --topic $XT_BENCH_TOPIC/rr/req ||
		{ xt_fail "dom0: xmqbench respond ready"; return; }
	bench_domu_run 200 alpha bench.fg request 180 request --url @AGENT \
		--topic $XT_BENCH_TOPIC/rr/req --reply xen/alpha/reply/bench --count $XT_BENCH_RTT \
		--watch agent=@AGENTPID
	r=$(xt_domu_get alpha res-request)
	echo "dom0: $(bench_stop respond)"
	xt_expect "requests: every one answered" "$(bench__kv "$r" received)" "$XT_BENCH_RTT"
	[ -n "$(bench__kv "$r" p50_us)" ] || return
	xt_measure bench.rr.p50 "$(bench__ms "$(bench__kv "$r" p50_us)")" ms \
		"$(bench__ratio "$(bench__kv "$r" p50_us)" "$RAW_RTT50")x raw; request" \
		"alpha->dom0->alpha, 64 B, QoS 1, $XT_BENCH_RTT rounds (min $(bench__ms \
		"$(bench__kv "$r" min_us)"), mean $(bench__ms "$(bench__kv "$r" mean_us)"));" \
		"CPU alpha: $(bench__cpu "$r" app)"
	xt_measure bench.rr.p99 "$(bench__ms "$(bench__kv "$r" p99_us)")" ms \
		"$(bench__ratio "$(bench__kv "$r" p99_us)" "$RAW_RTT99")x raw; max" \
		"$(bench__ms "$(bench__kv "$r" max_us)")"
}

bench_dom0() {
	local IFS0="$IFS" l
	RAW_UP= RAW_DOWN= RAW_RTT50= RAW_RTT99=
	xt_need xmqbench || return
	BENCH_QEMU=$(bench__qemu_pid)
	echo "alpha's QEMU: ${BENCH_QEMU:-not found}"
	# the bare channel first, with nothing else on it
	bench_raw_up
	bench_raw_down
	bench_raw_rtt
	xt_need xenmqd xenmq-agent || return
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_agents_start alpha || return
	IFS=';'
	for l in $XT_BENCH_SIZES; do
		IFS="$IFS0"
		bench_up $l
		bench_down $l
	done
	IFS="$IFS0"
	bench_rr
	bench__stats
	echo "xenmqd: $(grep -c -i 'congested' $XT_RUN/log/xenmqd.log) lines on congestion;" \
		"warnings:"
	grep -i -E 'warn|drop|bad|resen' $XT_RUN/log/xenmqd.log | tail -n 10 | cut -c 1-200
	xt_domu_run alpha bench.agentlog
}

# DomU steps. "@HVC" in the arguments stands for the channel's tty, "@AGENT"
# for the agent's URL, "agent=@AGENTPID" for the agent's --watch.
bench_domu() {
	local what=$1 n a c
	shift
	xt_chan_find || return 1
	n=$#
	while [ $n -gt 0 ]; do
		a=$1
		shift
		case $a in
		@HVC) a=$XT_HVC;;
		@AGENT) a=$XT_AGENT_URL;;
		agent=@AGENTPID) a=agent=$(xt_pid agent);;
		esac
		set -- "$@" "$a"
		n=$((n - 1))
	done
	case $what in
	bg)		# NAME ARGS...: xmqbench ARGS in the background, until "ready"
		bench_bg "$@"
		;;
	fg)		# NAME TIMEOUT ARGS...: xmqbench ARGS; its result as res-NAME
		c=$1
		xt_put res-$c "$(bench_fg "$@")"
		;;
	wait)		# NAME TIMEOUT: until NAME has exited; its result as res-NAME
		xt_put res-$1 "$(bench_wait "$@")"
		;;
	agentlog)	# what the agent found worth a warning
		echo "xenmq-agent: $(wc -l < $XT_RUN/log/agent.log) lines; warnings:"
		grep -i -E 'warn|drop|bad|resen' $XT_RUN/log/agent.log | tail -n 10 | cut -c 1-200
		;;
	*)	return 127;;
	esac
}
