#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_restart_agent.sh - the DomU's agent restarts; its applications carry on.
#
# - The echo of a tty not yet raw is harmless: xenmqd connects first and probes the channel
#   while its tty is still cooked; the tty echoes the probe back (bytes_in in
#   xenmq/broker/domain/alpha grows), xenmqd does not take it for a peer's HELLO (the domain
#   stays offline, links_up stays 0), and the agent started afterwards brings the link up.
#   A cooked tty echoes control characters as text (0x00 as "^@"), so the echo holds no frame
#   delimiter: it ends at the agent's first delimiter, and is dropped then as one bad frame
#   (bad_frames, or echoed_frames for a frame that came back intact, grows).
# - A `xenmq-sub -c -i sub -x 600 -q 1` and a `xenmq-pub -l -q 1` running in the DomU keep
#   working across an agent restart, SIGTERM and SIGKILL alike: neither exits, a Dom0
#   observer gets every id xenmq-pub was fed (those fed while the agent was down too, once it
#   is back), xenmq-pub exits 0 at the end, and a QoS 1 message Dom0 published while the
#   agent was down reaches xenmq-sub once it is back (its session is persistent).
# - Dom0 -> DomU QoS 1 messages in flight when the agent stops are not lost: a burst of 200
#   to xenmq-sub is under way (the channel toward the DomU is slowed to 4000 B/s, so that a
#   full window of them is always on its way) when the agent stops; every one arrives once
#   it is back. xenmqd had them acknowledged by Mosquitto already: it must keep them itself.
# - The agent started before xenmqd works as well as one started after it.
#
# Last wills. When the agent goes, its applications lose their way to the bus: for the rest
# of the bus they are gone, as if they had died, until the new agent lets them open their
# sessions again. docs/protocol.md section 6 says so for the channel ("after a new epoch
# every session of the previous epoch is gone for both sides"), and docs/agent.md for the
# agent: on SIGTERM it closes every session with CLOSE 0x04, "disconnect with will". After
# SIGKILL nothing is said, and xenmqd learns it from the new agent's HELLO (a new epoch ends
# the old sessions, with their wills). So an application's will is published once for each
# agent restart, clean or not, and not when xenmqd restarts (xenmqd ends sessions without
# wills: it is xenmqd that is gone, and it says so in xenmq/broker/status). A will is the
# only sign a Dom0 subscriber gets of an agent restart: xen/alpha/status does not change
# while the channel's link lasts.
#
# As on a real hvc, whose settings go back to cooked when its last user closes it, the tty is
# reset after every agent stop (chan_ctl alpha tty-reset).
#
# An application writing to its agent as the agent dies gets EPIPE, not SIGPIPE (the tools ignore
# it, as libuv programs must), and reconnects: the end of the test kills the agent under a QoS 0
# flood from xenmq-pub -l and checks that xenmq-pub reopens its session.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done
command -v jq > /dev/null || skip "jq is not installed"

# lines_at_least FILE N: FILE has N lines or more.
lines_at_least() {
	[ "$(wc -l < "$1")" -ge "$2" ]
}

# stat_of EXPR: jq's EXPR (e.g. .links_up) on domain alpha's counters, xenmqd's retained
# report.
stat_of() {
	mosquitto_sub --unix "$MQ_SOCK" -t xenmq/broker/domain/alpha -C 1 -W 2 2>/dev/null |
		jq -r "$1"
}

# stat_is EXPR VALUE: for wait_for.
stat_is() {
	[ "$(stat_of "$1" || true)" = "$2" ]
}

# stat_positive EXPR: the value of EXPR is a number above 0 (for wait_for).
stat_positive() {
	local v
	v=$(stat_of "$1" || true)
	[[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ]
}

# apps_alive: neither DomU application exited.
apps_alive() {
	_alive "$SUB_APP" || fail "xenmq-sub exited: $(cat "$T/sub.err")"
	_alive "$PUB_APP" || fail "xenmq-pub exited: $(cat "$T/pub.err")"
}

# burst NAME: Dom0 publishes NAME-1 ... NAME-200 to xenmq-sub (QoS 1), and returns once 20
# of them arrived (the rest are on their way, or wait in xenmqd and Mosquitto).
burst() {
	seq 1 200 | sed "s/^/$1-/" | mosquitto_pub --unix "$MQ_SOCK" -l -q 1 -t xen/alpha/down/b
	wait_for 20 count_at_least "$T/sub.out" 20 "xen/alpha/down/b $1-"
}

# burst_complete NAME: every message of burst NAME reached xenmq-sub.
burst_complete() {
	[ "$(sed -n "s/^xen\/alpha\/down\/b $1-\([0-9]*\)\$/\1/p" "$T/sub.out" | sort -un |
		wc -l)" -eq 200 ]
}

# obs_grows N: waits until the observer has N more lines than now.
obs_grows() {
	local n
	n=$(wc -l < "$T/obs.out")
	wait_for 30 lines_at_least "$T/obs.out" $((n + $1))
}

# fed_while_down N: waits until the feeder wrote N more ids (the agent being down).
fed_while_down() {
	local n
	n=$(sent up)
	wait_for 20 sent_at_least up $((n + $1))
}

# flood_reopened_or_gone N: the flood app opened its session N times, or exited.
flood_reopened_or_gone() {
	! _alive "$FLOOD" || count_at_least "$T/agent-alpha.log" "$1" 'app "flood": session open'
}

# kill9 PID...: SIGKILL, and reaps them (without the shell's "Killed" notice).
kill9() {
	{ kill -KILL "$@"; wait "$@"; } 2> /dev/null || true
}

start_mosquitto
start_channel alpha --rate-down 4000
write_acl <<'EOF'
user alpha
topic readwrite xen/alpha/#
EOF
write_xenmqd_conf "status_interval 1"

# ---- xenmqd first: its probe meets a cooked tty ------------------------------------------
start_xenmqd
wait_for 20 stat_positive .bytes_in
wait_status alpha offline
assert_eq "$(stat_of .links_up)" 0 "links_up before the agent"
assert_file_lacks "$T/xenmqd.log" "online (link epoch"
start_agent alpha
wait_status alpha online
wait_for 20 stat_is .links_up 1
wait_for 20 stat_positive '.bad_frames + .echoed_frames'

# ---- the applications -------------------------------------------------------------------
sub_bg "$T/will.out" -t 'xen/alpha/service/#' -v
sub_bg "$T/obs.out" -c -i obs -q 1 -t xen/alpha/up -F '%p'
pub -r -q 1 -t xen/alpha/down/sync -m sync
"$B/xenmq-sub" -L "$(url_agent alpha)" -c -i sub -x 600 -q 1 -v -t 'xen/alpha/down/#' \
	--will-topic xen/alpha/service/sub --will-payload offline --will-qos 1 \
	> "$T/sub.out" 2> "$T/sub.err" &
SUB_APP=$!
_track $SUB_APP
wait_for 20 grep -qs '^xen/alpha/down/sync sync' "$T/sub.out"
feed up | "$B/xenmq-pub" -L "$(url_agent alpha)" -i pub -l -q 1 -t xen/alpha/up \
	> "$T/pub.out" 2> "$T/pub.err" &
PUB_APP=$!
_track $PUB_APP
wait_for 20 lines_at_least "$T/obs.out" 20

# ---- SIGTERM ------------------------------------------------------------------------------
burst term
stop_agent alpha
chan_ctl alpha tty-reset
wait_for 20 count_at_least "$T/will.out" 1 "xen/alpha/service/sub offline"
fed_while_down 20
pub -q 1 -t xen/alpha/down/x -m while-down-1
start_agent alpha
wait_for 20 count_at_least "$T/agent-alpha.log" 2 "channel up"
wait_for 20 grep -qs '^xen/alpha/down/x while-down-1' "$T/sub.out"
wait_for 30 burst_complete term
obs_grows 40
apps_alive

# ---- SIGKILL --------------------------------------------------------------------------------
burst kill
kill9 "${_AGENT_PID[alpha]}"
_AGENT_PID[alpha]=
chan_ctl alpha tty-reset
fed_while_down 20
pub -q 1 -t xen/alpha/down/x -m while-down-2
start_agent alpha
wait_for 20 count_at_least "$T/agent-alpha.log" 3 "channel up"
# xenmqd learns of the restart from the new agent's HELLO: the old sessions end, with wills.
wait_for 20 count_at_least "$T/will.out" 2 "xen/alpha/service/sub offline"
wait_for 20 grep -qs '^xen/alpha/down/x while-down-2' "$T/sub.out"
wait_for 30 burst_complete kill
obs_grows 40
apps_alive

# ---- the agent before xenmqd --------------------------------------------------------------
stop_xenmqd
stop_agent alpha
chan_ctl alpha tty-reset
start_agent alpha
wait_for 20 count_at_least "$T/agent-alpha.log" 4 "open: handshaking with xenmqd"
start_xenmqd
wait_for 20 count_at_least "$T/agent-alpha.log" 4 "channel up"
wait_status alpha online
pub -q 1 -t xen/alpha/down/x -m after-xenmqd
wait_for 20 grep -qs '^xen/alpha/down/x after-xenmqd' "$T/sub.out"
obs_grows 40
apps_alive

# ---- the end --------------------------------------------------------------------------------
: > "$T/stop"
rc=0
wait_for 30 _dead "$PUB_APP"
wait "$PUB_APP" || rc=$?
assert_eq "$rc" 0 "xenmq-pub's exit status ($(cat "$T/pub.err"))"
N=$(sent up)
wait_for 30 all_received "$T/obs.out" "$N"
dups=$(($(wc -l < "$T/obs.out") - N))
echo "DomU -> Dom0: $N messages, none lost, $dups duplicates"
bad=$(grep -cvxE '[0-9]+' "$T/obs.out" || true)
assert_eq "$bad" 0 "lines of the observer that are not ids"
# One will for each agent restart, none for the xenmqd restart.
assert_count "$T/will.out" 2
for m in while-down-1 while-down-2 after-xenmqd; do
	assert_count "$T/sub.out" 1 "xen/alpha/down/x $m"
done

_terminate "$SUB_APP"

# ---- an application writing to its agent when the agent dies -----------------------------------
yes 1 | "$B/xenmq-pub" -L "$(url_agent alpha)" -i flood -l -q 0 -t xen/alpha/flood \
	> "$T/flood.out" 2> "$T/flood.err" &
FLOOD=$!
_track $FLOOD
wait_for 20 grep -qs 'app "flood": session open' "$T/agent-alpha.log"
n=$(grep -c 'app "flood": session open' "$T/agent-alpha.log")
kill9 "${_AGENT_PID[alpha]}"
_AGENT_PID[alpha]=
chan_ctl alpha tty-reset
start_agent alpha
wait_for 20 flood_reopened_or_gone $((n + 1))
if ! _alive "$FLOOD"; then
	rc=0
	wait "$FLOOD" || rc=$?
	fail "xenmq-pub exited with status $rc when its agent died: $(cat "$T/flood.err")"
fi
_terminate "$FLOOD"
stop_all_checked
