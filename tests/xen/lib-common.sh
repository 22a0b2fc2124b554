# SPDX-License-Identifier: MIT
# Helpers shared by dom0 and the DomUs in the real-Xen tests (busybox sh).
#
# Background programs are started with xt_bg so that a scenario, or the reset
# between two scenarios, can stop them by name: each runs in its own process
# group (setsid), its pid is kept in /run/xt/pids/NAME and its output goes to
# /run/xt/log/NAME.log.

XT_RUN=/run/xt
XT_MQ_SOCK=/run/xenmq/mosquitto.sock
XT_AGENT_SOCK=/run/xenmq/agent.sock
XT_AGENT_URL=agent:$XT_AGENT_SOCK
XT_CHAN_NAME=org.xenmq

# Seconds since boot, with two decimals (busybox date has no %N).
xt_now() {
	local up rest
	read -r up rest < /proc/uptime
	echo "$up"
}

# xt_since T0: seconds elapsed since xt_now printed T0.
xt_since() {
	awk -v a="$1" -v b="$(xt_now)" 'BEGIN { printf "%.2f", b - a }'
}

# xt_wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails
# (status 1) when SECONDS have passed first.
xt_wait_for() {
	local lim=$1 t0
	shift
	t0=$(xt_now)
	while ! "$@"; do
		if awk -v a="$t0" -v b="$(xt_now)" -v l="$lim" 'BEGIN { exit !(b - a > l) }'; then
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# xt_bg NAME CMD...: starts CMD in the background, in its own process group.
xt_bg() {
	local name=$1
	shift
	mkdir -p $XT_RUN/pids $XT_RUN/log
	setsid "$@" >> $XT_RUN/log/$name.log 2>&1 < /dev/null &
	echo $! > $XT_RUN/pids/$name
}

xt_pid() { cat $XT_RUN/pids/$1 2>/dev/null; }

xt_running() {
	local p
	p=$(xt_pid "$1")
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

# xt_kill NAME [SIGNAL]: signals NAME's process group and waits (at most 5 s)
# until its leader is gone.
xt_kill() {
	local p sig=${2:-TERM}
	p=$(xt_pid "$1")
	[ -n "$p" ] || return 0
	kill -s "$sig" -"$p" 2>/dev/null || kill -s "$sig" "$p" 2>/dev/null
	xt_wait_for 5 xt__gone "$p" || kill -s KILL -"$p" 2>/dev/null
	rm -f $XT_RUN/pids/$1
}

xt__gone() { ! kill -0 "$1" 2>/dev/null; }

xt_kill_all() {
	local f
	for f in $XT_RUN/pids/*; do
		[ -f "$f" ] && xt_kill "${f##*/}"
	done
	return 0
}

# xt_log_tail NAME [LINES]: the end of a background program's output.
xt_log_tail() {
	[ -s $XT_RUN/log/$1.log ] || return 0
	echo "--- last lines of $1.log:"
	tail -n "${2:-20}" $XT_RUN/log/$1.log | cut -c 1-200 | sed 's/^/  | /'
}

xt_have() { [ -x "/xt/bin/$1" ]; }
