#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - `make bench`: xenmq's throughput, latency and memory, each against Mosquitto alone,
# measured back to back in the same run. Prints a table and writes it to $T/results.txt.
#
#   tests/bench/run.sh [B]          B: the build directory (default "build")
#
# Knobs (environment):
#   BENCH_COUNT0=20000              QoS 0 throughput: messages per measurement
#   BENCH_COUNT1=10000              QoS 1 throughput: messages per measurement
#   BENCH_LAT_COUNT=2000            latency: messages, one at a time
#   BENCH_WARMUP=1000               messages before each measurement (a fifth for latency)
#   BENCH_WINDOW=1000               QoS 0: most messages between send and arrival
#   BENCH_ROUNDS=3                  each measurement this many times, paths alternating;
#                                   the table shows the median
#   BENCH_SIZE=64                   payload bytes
#   BENCH_DOMAINS=32                domains of the memory measurement
#   BENCH_RATE_UP=4000000           the Xen-like channel: bytes/s DomU -> Dom0 ...
#   BENCH_RATE_DOWN=1000000         ... and Dom0 -> DomU (Xen 4.17 in the lab, docs/testing.md)
#   BENCH_PHASES="free xen memory"  which parts to run
#   BENCH_KEEP=1                    0: remove $T (results, logs) at exit when all went well
#
# Every figure is printed, never asserted: the run fails only when something broke (a
# process died, a client could not connect, a QoS 1 stream stalled). It uses the end-to-end
# harness (tests/e2e/lib.sh), which stops every process started here when the script ends.

export E2E_KEEP=${BENCH_KEEP:-1}
. "$(dirname "$0")/../e2e/lib.sh" "$@"

COUNT0=${BENCH_COUNT0:-20000}
COUNT1=${BENCH_COUNT1:-10000}
LAT_COUNT=${BENCH_LAT_COUNT:-2000}
WARMUP=${BENCH_WARMUP:-1000}
WINDOW=${BENCH_WINDOW:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
SIZE=${BENCH_SIZE:-64}
DOMAINS=${BENCH_DOMAINS:-32}
RATE_UP=${BENCH_RATE_UP:-4000000}
RATE_DOWN=${BENCH_RATE_DOWN:-1000000}
PHASES=${BENCH_PHASES:-free xen memory}
RESULTS=$T/results.txt

XMQBENCH=$B/tests/xmqbench
[ -x "$XMQBENCH" ] || fail "$XMQBENCH is missing: run 'make bench' (or make B=... bench)"
[ -x "$B/xenmqd" ] && [ -x "$B/xenmq-agent" ] || fail "xenmqd or xenmq-agent missing in $B"

has_phase() {
	[[ " $PHASES " == *" $1 "* ]]
}

# Each domain costs xenmqd about 4 descriptors (its channel, and libmosquitto's socket and
# socket pair for the one session), Mosquitto 2 and the benchmark client 1; the soft limit
# is raised to the hard one when that is not enough.
need_fds=$((DOMAINS * 8 + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need_fds ]; then
	ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
	[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $need_fds ] ||
		echo "bench: ulimit -n is $(ulimit -n), less than the $need_fds wanted" >&2
fi

# ---- the parts ----------------------------------------------------------------------------

# Mosquitto as lib.sh starts it, but logging errors, warnings and notices only: "log_type all"
# would write several lines per message and make Mosquitto, common to every path, the
# bottleneck. Notices say when it drops messages for a slow client.
bench_start_mosquitto() {
	MQ_SOCK=$T/mosquitto.sock
	export MQ_SOCK
	{
		echo "listener 0 $MQ_SOCK"
		echo "allow_anonymous true"
		[ "$(id -u)" = 0 ] && echo "user root"
		echo "log_dest stderr"
		echo "log_type error"
		echo "log_type warning"
		echo "log_type notice"
	} > "$T/mosquitto.conf"
	rm -f "$MQ_SOCK"
	mosquitto -c "$T/mosquitto.conf" >> "$T/mosquitto.log" 2>&1 &
	MQ_PID=$!
	_track $MQ_PID
	wait_for 10 _mosquitto_up
}

# xenmqd.conf for the given domains. Rate limits are off for the throughput and latency
# phases (the defaults, 200 messages/s, would be what is measured), and max_inflight is
# Mosquitto's own receive maximum (20), so that every path has the same QoS 1 window.
bench_conf() {
	local limits=$1 name
	shift
	{
		echo "mosquitto $MQ_SOCK"
		echo "acl_file $T/acl"
		if [ "$limits" = open ]; then
			echo "max_message_rate 0"
			echo "max_byte_rate 0"
			echo "max_inflight 20"
		fi
		for name in "$@"; do
			echo
			echo "domain $name"
			echo "channel $T/chan-$name.sock"
		done
	} > "$T/xenmqd.conf"
}

# start_domains LIMITS NAME...: xenmqd and the agents for channels already started; returns
# once every domain is online.
start_domains() {
	local limits=$1 name names
	shift
	names=("$@")
	bench_conf "$limits" "${names[@]}"
	start_xenmqd
	for name in "${names[@]}"; do start_agent "$name"; done
	for name in "${names[@]}"; do wait_status "$name" online; done
}

stop_domains() {
	local name
	for name in "$@"; do stop_agent "$name"; done
	stop_xenmqd
	for name in "$@"; do stop_channel "$name"; done
}

# ---- throughput and latency ----------------------------------------------------------------

# The bytes on the channel for one message of the benchmark (a QoS 0 PUBLISH on xen/bench/b/N:
# 12 bytes of header and CRC, 22 of flags, topic and property length, the payload, 3 of
# framing), for the reference measurement of the emulator alone.
frame_bytes() {
	echo $((SIZE + 37))
}

# speed PHASE [CHANEMU OPTIONS]: xmqbench run on three paths (direct, xenmq through the agent,
# hvc: without it) into $T/speed-PHASE.out, and the emulator alone into $T/chan-PHASE.out.
speed() {
	local phase=$1
	shift
	echo "bench: $phase: throughput and latency, direct and through xenmq ($ROUNDS rounds)" >&2
	start_channel bench "$@"
	start_channel solo "$@"
	# The emulated channel alone, before xenmqd takes it: its share of the latency.
	"$XMQBENCH" chan --pty "$T/hvc-bench" --socket "$T/chan-bench.sock" \
		--lat-count "$LAT_COUNT" --warmup "$WARMUP" --size "$(frame_bytes)" \
		> "$T/chan-$phase.out" 2> "$T/chan-$phase.err" ||
		fail "xmqbench chan ($phase) failed: $(tail -5 "$T/chan-$phase.err")"
	# Domain "bench" has an agent; domain "solo" has none: its channel is the application's own
	# (hvc:), which shows what the agent's hop costs.
	bench_conf open bench solo
	start_xenmqd
	start_agent bench
	wait_status bench online
	local pids=("$MQ_PID" "$XENMQD_PID" "${_AGENT_PID[bench]}" "${_CHAN_PID[bench]}"
		"${_CHAN_PID[solo]}")
	local busy0 ours0
	busy0=$(machine_busy_ms)
	children_ms
	ours0=$((CHILDREN_MS + $(cpu_ms "${pids[@]}")))
	"$XMQBENCH" run --sub "mqtt+unix:$MQ_SOCK" --topic xen/bench/b \
		--path "direct=mqtt+unix:$MQ_SOCK" --path "xenmq=$(url_agent bench)" \
		--path "hvc=hvc:$T/hvc-solo" \
		--watch "mosquitto=$MQ_PID" --watch "xenmqd=$XENMQD_PID" \
		--watch "agent=${_AGENT_PID[bench]}" --watch "chanemu=${_CHAN_PID[bench]}" \
		--count0 "$COUNT0" --count1 "$COUNT1" --lat-count "$LAT_COUNT" --warmup "$WARMUP" \
		--window "$WINDOW" --rounds "$ROUNDS" --size "$SIZE" \
		> "$T/speed-$phase.out" 2> "$T/speed-$phase.err" ||
		fail "xmqbench ($phase) failed: $(tail -5 "$T/speed-$phase.err")"
	# What the rest of the machine used meanwhile: the figures are only as quiet as it was.
	children_ms
	echo "$(($(machine_busy_ms) - busy0)) $((CHILDREN_MS + $(cpu_ms "${pids[@]}") - ours0))" \
		> "$T/speed-$phase.cpu"
	grep '^result ' "$T/speed-$phase.out" | sed 's/^/  /' >&2
	stop_agent bench
	stop_xenmqd
	stop_channel bench
	stop_channel solo
}

# machine_busy_ms: CPU time the whole machine spent so far (user, nice, system, irq,
# softirq; not idle, iowait or steal), in milliseconds.
machine_busy_ms() {
	awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f", ($2 + $3 + $4 + $7 + $8) * 1000 / hz }' /proc/stat
}

# children_ms: sets CHILDREN_MS to the CPU time of this shell's children that have ended, in
# milliseconds. Not to be called in $(...): a subshell has children of its own.
children_ms() {
	times > "$T/.times"
	CHILDREN_MS=$(awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
		printf "%.0f", t * 1000 }' "$T/.times")
}

# cpu_ms PID...: CPU time those processes spent so far, in milliseconds.
cpu_ms() {
	local p ns=0 v
	for p in "$@"; do
		v=$(cut -d' ' -f1 "/proc/$p/schedstat" 2>/dev/null || echo 0)
		ns=$((ns + v))
	done
	echo $((ns / 1000000))
}

# others PHASE: the share of the machine's CPU time that other processes took during PHASE.
others() {
	local busy ours
	read -r busy ours < "$T/speed-$1.cpu" || return 0
	awk -v b="$busy" -v o="$ours" 'BEGIN {
		printf "%.0f%%", (b > 0 && b > o) ? 100 * (b - o) / b : 0 }'
}

# ---- memory ------------------------------------------------------------------------------

# proc_field PID KEY: a field of /proc/PID/status, in KiB.
proc_field() {
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

fd_count() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# memory N: N domains, each with one application session holding a subscription and some
# traffic through it; records xenmqd's figures in $T/memory-N.out.
memory() {
	local n=$1 names=() urls=() i name hold_pid
	for ((i = 1; i <= n; i++)); do
		name=$(printf 'm%02d' "$i")
		names+=("$name")
		urls+=("$name=$(url_agent "$name")")
	done
	echo "bench: memory: $n domain(s)" >&2
	for name in "${names[@]}"; do start_channel "$name"; done
	start_domains default "${names[@]}"
	{
		echo "links_rss_kib=$(proc_field "$XENMQD_PID" VmRSS)"
		echo "links_fds=$(fd_count "$XENMQD_PID")"
	} > "$T/memory-$n.out"
	"$XMQBENCH" hold --messages 50 --size "$SIZE" "${urls[@]}" \
		> "$T/hold-$n.out" 2> "$T/hold-$n.err" &
	hold_pid=$!
	_track $hold_pid
	wait_for 60 _hold_ready "$T/hold-$n.out" $hold_pid
	{
		echo "rss_kib=$(proc_field "$XENMQD_PID" VmRSS)"
		echo "anon_kib=$(proc_field "$XENMQD_PID" RssAnon)"
		echo "hwm_kib=$(proc_field "$XENMQD_PID" VmHWM)"
		echo "fds=$(fd_count "$XENMQD_PID")"
		echo "mosquitto_rss_kib=$(proc_field "$MQ_PID" VmRSS)"
		sed -n 's/^ready //p' "$T/hold-$n.out" | tr ' ' '\n'
	} >> "$T/memory-$n.out"
	_stop_checked $hold_pid xmqbench
	stop_domains "${names[@]}"
}

_hold_ready() {
	grep -qs "^ready" "$1" && return 0
	_alive "$2" || fail "xmqbench hold exited: $(tail -5 "${1%.out}.err")"
	return 1
}

# ---- the report -----------------------------------------------------------------------------

# summary FILE TEST PATH KEY: one figure of xmqbench's summary line.
summary() {
	awk -v t="$2" -v p="$3" -v k="$4" '
		$1 == "summary" {
			delete f
			for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			if (f["test"] == t && f["path"] == p) print f[k]
		}' "$1"
}

memval() {
	sed -n "s/^$2=//p" "$T/memory-$1.out" 2>/dev/null
}

# row METRIC DIRECT XENMQ TARGET: one line of the table. TARGET is ">=X" or "<=X" on the
# ratio xenmq/direct, "@<=X" on the xenmq figure itself, or "-" for context only.
row() {
	awk -v m="$1" -v d="$2" -v x="$3" -v t="$4" 'BEGIN {
		ratio = "-"; verdict = "-"
		if (d != "-" && d != "" && x != "-" && x != "" && d + 0 != 0 && m !~ / lost/)
			ratio = sprintf("%.2f", x / d)
		if (t ~ /^@/) {
			v = x + 0; lim = substr(t, 4) + 0
			verdict = (v <= lim) ? "pass" : "miss"
		} else if (t != "-" && ratio != "-") {
			lim = substr(t, 3) + 0
			if (t ~ /^>=/) verdict = (ratio + 0 >= lim) ? "pass" : "miss"
			else verdict = (ratio + 0 <= lim) ? "pass" : "miss"
		}
		if (d == "") d = "?"
		if (x == "") x = "?"
		printf "%-50s %10s %10s %6s %8s %7s\n", m, d, x, ratio, t, verdict
	}'
}

# cpu FILE TEST PATH NAME...: the CPU microseconds per message of the named processes, summed.
cpu() {
	local f=$1 t=$2 p=$3 n sum=0 v
	shift 3
	for n in "$@"; do
		v=$(summary "$f" "$t" "$p" "cpu_${n}_us")
		sum=$(awk -v a="$sum" -v b="${v:-0}" 'BEGIN { print a + b }')
	done
	echo "$sum"
}

# cpu_rows FILE TEST LABEL: where the CPU time of one message goes, process by process.
cpu_rows() {
	local f=$1 t=$2
	row "$3 CPU per message, all processes (us)" \
		"$(cpu "$f" "$t" direct self mosquitto)" \
		"$(cpu "$f" "$t" xenmq self mosquitto agent chanemu xenmqd)" -
	row "  app: publisher and subscriber" "$(cpu "$f" "$t" direct self)" \
		"$(cpu "$f" "$t" xenmq self)" -
	row "  mosquitto" "$(cpu "$f" "$t" direct mosquitto)" "$(cpu "$f" "$t" xenmq mosquitto)" -
	row "  xenmq-agent" - "$(cpu "$f" "$t" xenmq agent)" -
	row "  chanemu (the emulated channel)" - "$(cpu "$f" "$t" xenmq chanemu)" -
	row "  xenmqd" - "$(cpu "$f" "$t" xenmq xenmqd)" -
}

speed_table() {
	local f=$T/speed-$1.out c=$T/chan-$1.out t label
	[ -e "$f" ] || return 0
	for t in tput0 tput1; do
		label="QoS ${t#tput}"
		row "$label throughput (msg/s)" "$(summary "$f" "$t" direct rate)" \
			"$(summary "$f" "$t" xenmq rate)" "$2"
		row "$label lost (of $(summary "$f" "$t" xenmq sent) sent, all rounds)" \
			"$(summary "$f" "$t" direct lost)" "$(summary "$f" "$t" xenmq lost)" -
		cpu_rows "$f" "$t" "$label"
	done
	row "QoS 0 burst, no window (msg/s)" "$(summary "$f" burst0 direct rate)" \
		"$(summary "$f" burst0 xenmq rate)" -
	row "QoS 0 burst lost (of $(summary "$f" burst0 xenmq sent) sent, all rounds)" \
		"$(summary "$f" burst0 direct lost)" "$(summary "$f" burst0 xenmq lost)" -
	for t in lat0 lat1; do
		label="QoS ${t#lat}"
		row "$label latency p50 (us)" "$(summary "$f" "$t" direct p50_us)" \
			"$(summary "$f" "$t" xenmq p50_us)" "$3"
		row "$label latency p99 (us)" "$(summary "$f" "$t" direct p99_us)" \
			"$(summary "$f" "$t" xenmq p99_us)" "$4"
		row "$label latency max (us)" "$(summary "$f" "$t" direct max_us)" \
			"$(summary "$f" "$t" xenmq max_us)" -
		[ "$t" = lat0 ] && cpu_rows "$f" "$t" "$label latency:"
	done
	row "hvc: (no agent) QoS 0 throughput (msg/s)" "$(summary "$f" tput0 direct rate)" \
		"$(summary "$f" tput0 hvc rate)" -
	row "hvc: (no agent) QoS 1 throughput (msg/s)" "$(summary "$f" tput1 direct rate)" \
		"$(summary "$f" tput1 hvc rate)" -
	for t in lat0 lat1; do
		row "hvc: (no agent) QoS ${t#lat} latency p50 (us)" "$(summary "$f" "$t" direct p50_us)" \
			"$(summary "$f" "$t" hvc p50_us)" -
		row "hvc: (no agent) QoS ${t#lat} latency p99 (us)" "$(summary "$f" "$t" direct p99_us)" \
			"$(summary "$f" "$t" hvc p99_us)" -
	done
	if [ -e "$c" ]; then
		row "chanemu alone, $(frame_bytes) B pty->socket p50 (us)" - \
			"$(summary "$c" lat0 chanemu p50_us)" -
		row "chanemu alone, $(frame_bytes) B pty->socket p99 (us)" - \
			"$(summary "$c" lat0 chanemu p99_us)" -
		for t in lat0 lat1; do
			row "QoS ${t#lat} latency p50 less chanemu's p50 (us)" \
				"$(summary "$f" "$t" direct p50_us)" \
				"$(awk -v x="$(summary "$f" "$t" xenmq p50_us)" \
					-v e="$(summary "$c" lat0 chanemu p50_us)" 'BEGIN { print x - e }')" -
		done
	fi
}

report() {
	local r1 r32 per hwm fds
	echo "xenmq benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
		"$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);" \
		"load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "messages: $SIZE-byte payload; throughput $COUNT0 (QoS 0) / $COUNT1 (QoS 1)," \
		"latency $LAT_COUNT one at a time; median of $ROUNDS rounds"
	echo "direct: app -> Mosquitto (mqtt+unix:) -> subscriber"
	echo "xenmq:  app -> xenmq-agent (agent:) -> chanemu -> xenmqd -> Mosquitto -> subscriber"
	echo "xenmqd: max_message_rate 0, max_byte_rate 0, max_inflight 20 (Mosquitto's receive"
	echo "        maximum) for throughput and latency; default limits for memory"
	echo
	printf "%-50s %10s %10s %6s %8s %7s\n" metric direct xenmq ratio target verdict
	if [ -e "$T/speed-free.out" ]; then
		echo "-- channel unthrottled (xenmq's own cost); other processes took $(others free) of the"
		echo "   machine's busy CPU time meanwhile"
		speed_table free ">=0.8" "<=1.5" "<=2.0"
	fi
	if [ -e "$T/speed-xen.out" ]; then
		echo "-- channel at Xen's pace ($RATE_UP B/s up, $RATE_DOWN B/s down), for context; other"
		echo "   processes took $(others xen) of the machine's busy CPU time meanwhile"
		speed_table xen - - -
	fi
	if [ -e "$T/memory-$DOMAINS.out" ]; then
		echo "-- xenmqd memory, one app session with a subscription per domain, after traffic"
		r1=$(memval 1 rss_kib)
		r32=$(memval "$DOMAINS" rss_kib)
		row "xenmqd VmRSS, 1 domain (KiB)" - "$r1" -
		row "xenmqd VmRSS, $DOMAINS domains (KiB)" - "$r32" "@<=8192"
		row "xenmqd VmHWM, $DOMAINS domains (KiB)" - "$(memval "$DOMAINS" hwm_kib)" -
		if [ -n "$r1" ] && [ -n "$r32" ] && [ "$DOMAINS" -gt 1 ]; then
			per=$(awk -v a="$r1" -v b="$r32" -v n="$DOMAINS" 'BEGIN { printf "%.0f", (b - a) / (n - 1) }')
			row "xenmqd cost per domain (KiB)" - "$per" -
		fi
		row "xenmqd RssAnon (own heap), 1 domain (KiB)" - "$(memval 1 anon_kib)" -
		row "xenmqd RssAnon, $DOMAINS domains (KiB)" - "$(memval "$DOMAINS" anon_kib)" -
		row "xenmqd VmRSS, $DOMAINS links up, no session (KiB)" - \
			"$(memval "$DOMAINS" links_rss_kib)" -
		row "xenmqd open fds, 1 domain" - "$(memval 1 fds)" -
		row "xenmqd open fds, $DOMAINS domains" - "$(memval "$DOMAINS" fds)" -
		row "Mosquitto VmRSS, $DOMAINS sessions (KiB)" "$(memval "$DOMAINS" mosquitto_rss_kib)" - -
	fi
	echo
	echo "ratio: xenmq / direct. Targets: throughput >= 0.8, latency p50 <= 1.5, p99 <= 2.0,"
	echo "xenmqd <= 8 MiB with $DOMAINS domains. Figures, not assertions (docs/performance.md)."
}

# ---- the run -------------------------------------------------------------------------------

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_start_mosquitto
write_acl <<'EOF'
pattern readwrite xen/%u/#
user solo
topic readwrite xen/bench/#
EOF
has_phase free && speed free
has_phase xen && speed xen --rate-up "$RATE_UP" --rate-down "$RATE_DOWN"
if has_phase memory; then
	memory 1
	[ "$DOMAINS" -gt 1 ] && memory "$DOMAINS"
fi
report > "$RESULTS"
echo
cat "$RESULTS"
echo
echo "bench: results in $RESULTS$([ "$E2E_KEEP" = 1 ] || echo ' (removed at exit: BENCH_KEEP=1 keeps them)')"
stop_mosquitto
check_sanitizers
