#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_lifecycle.sh - xenmqd from start to stop: what it waits for, what it reports, how it
# ends, and how it refuses a bad command line.
#
# - Started before Mosquitto, xenmqd waits, and connects once Mosquitto appears: it then
#   reports xenmq/broker/status online (retained), and an application that published while
#   Mosquitto was away (QoS 1, retained) gets its message through and exits 0.
# - Started before a domain's channel socket exists, it waits for it (and says so), and
#   connects when it appears: the domain comes online.
# - Its counters are published under xenmq/broker/domain/NAME as JSON objects, and change with
#   traffic (published, delivered); xenmq/broker/stats counts the domains.
# - SIGTERM: it publishes offline for each domain and for itself (xen/NAME/status and
#   xenmq/broker/status, retained), and exits 0.
# - SIGKILL: its last will sets xenmq/broker/status to offline.
# - Bad command lines exit non-zero with one line naming the problem: a configuration that
#   does not exist (named), a configuration with an unknown key (FILE:LINE and the key), an
#   ACL with an error (FILE:LINE); `xenmqd -t -c FILE` checks a file and says OK.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

# json KEY: the value of KEY in the JSON object on stdin (jq, else python3).
json() {
	if command -v jq > /dev/null; then
		jq -r ".$1"
	else
		python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
	fi
}

# retained TOPIC: the retained message on TOPIC, or nothing.
retained() {
	mosquitto_sub --unix "$MQ_SOCK" -t "$1" -C 1 -W 1 2>/dev/null || true
}

retained_is() {
	[ "$(retained "$1")" = "$2" ]
}

# counter DOMAIN KEY: a counter of xenmq/broker/domain/DOMAIN.
counter() {
	retained "xenmq/broker/domain/$1" | json "$2"
}

# counter_at_least DOMAIN KEY N: for wait_for.
counter_at_least() {
	local v
	v=$(counter "$1" "$2" 2>/dev/null || true)
	[[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ]
}

# one_line_error FILE WHAT...: FILE (a command's stderr) is one line containing each WHAT.
one_line_error() {
	local file=$1 what
	shift
	assert_count "$file" 1
	for what in "$@"; do
		assert_file_contains "$file" "$what"
	done
}

# kill9 PID...: SIGKILL, and reaps them (without the shell's "Killed" notice).
kill9() {
	{ kill -KILL "$@"; wait "$@"; } 2> /dev/null || true
}

start_channel alpha
write_xenmqd_conf "status_interval 1"
# beta's channel does not exist yet.
printf '\ndomain beta\nchannel %s\n' "$T/chan-beta.sock" >> "$T/xenmqd.conf"
{
	echo "pattern readwrite xen/%u/#"
} | write_acl

# ---- before Mosquitto ---------------------------------------------------------------------
start_xenmqd
start_agent alpha
wait_for 20 grep -qs "channel up" "$T/agent-alpha.log"
"$B/xenmq-pub" -L "$(url_agent alpha)" -i early -q 1 -r -t xen/alpha/early -m before-mosquitto \
	> "$T/early.out" 2> "$T/early.err" &
EARLY=$!
_track $EARLY
wait_for 20 grep -qs 'app "early" opens stream' "$T/agent-alpha.log"
_alive "$XENMQD_PID" || fail "xenmqd exited without Mosquitto: $(tail -3 "$T/xenmqd.log")"
assert_file_lacks "$T/xenmqd.log" "connected to Mosquitto"

start_mosquitto
wait_for 30 grep -qs "connected to Mosquitto at $MQ_SOCK" "$T/xenmqd.log"
wait_for 20 retained_is xenmq/broker/status online
wait_status alpha online
rc=0
wait_for 30 _dead "$EARLY"
wait "$EARLY" || rc=$?
assert_eq "$rc" 0 "the exit status of xenmq-pub started before Mosquitto ($(cat "$T/early.err"))"
assert_eq "$(retained xen/alpha/early)" before-mosquitto "retained xen/alpha/early"

# ---- before the channel -------------------------------------------------------------------
assert_file_contains "$T/xenmqd.log" "domain \"beta\": waiting for channel $T/chan-beta.sock"
wait_status beta offline
start_channel beta
wait_for 30 grep -qs "chanemu: client connected" "$T/chan-beta.log"
start_agent beta
wait_status beta online

# ---- counters -----------------------------------------------------------------------------
wait_for 20 counter_at_least alpha links_up 1
retained xenmq/broker/domain/alpha > "$T/alpha.json"
for key in status channel_connected sessions published delivered denied rate_limited dropped \
	refused frames_in frames_out bytes_in bytes_out bad_frames stale_frames echoed_frames \
	links_up queued_bytes; do
	[ "$(json "$key" < "$T/alpha.json")" != null ] || fail "no $key in $(cat "$T/alpha.json")"
done
assert_eq "$(json status < "$T/alpha.json")" online "alpha's status counter"
published=$(json published < "$T/alpha.json")
delivered=$(json delivered < "$T/alpha.json")
"$B/xenmq-sub" -L "$(url_agent alpha)" -i counted -q 1 -t xen/alpha/down -C 2 \
	> "$T/counted.out" 2> "$T/counted.err" &
COUNTED=$!
_track $COUNTED
"$B/xenmq-pub" -L "$(url_agent alpha)" -i counter -q 1 -t xen/alpha/up -m x --repeat 3
wait_for 20 counter_at_least alpha published $((published + 3))
# Once subscribed (the subscription is a session's), two messages for it.
wait_for 20 counter_at_least alpha subscriptions 1
pub -q 1 -t xen/alpha/down -m one
pub -q 1 -t xen/alpha/down -m two
wait_for 20 _dead "$COUNTED"
wait "$COUNTED" || fail "xenmq-sub -C 2 failed: $(cat "$T/counted.err")"
wait_for 20 counter_at_least alpha delivered $((delivered + 2))
stats=$(retained xenmq/broker/stats)
assert_eq "$(json domains <<< "$stats")" 2 "domains in xenmq/broker/stats"
assert_eq "$(json online <<< "$stats")" 2 "online domains in xenmq/broker/stats"

# ---- SIGTERM --------------------------------------------------------------------------------
sub_bg "$T/watch.out" -t 'xen/+/status' -t xenmq/broker/status -v
stop_xenmqd
assert_file_contains "$T/xenmqd.log" "stopping"
for t in xen/alpha/status xen/beta/status xenmq/broker/status; do
	wait_for 20 grep -qsx "$t offline" "$T/watch.out"
	assert_eq "$(retained "$t")" offline "retained $t after SIGTERM"
done

# ---- SIGKILL --------------------------------------------------------------------------------
start_xenmqd
wait_for 20 retained_is xenmq/broker/status online
wait_status alpha online
wait_status beta online
kill9 "$XENMQD_PID"
XENMQD_PID=
wait_for 20 retained_is xenmq/broker/status offline
assert_count "$T/watch.out" 2 "xenmq/broker/status offline"

# ---- bad command lines ------------------------------------------------------------------------
rc=0
"$B/xenmqd" -c "$T/nonexistent.conf" > "$T/cmd.out" 2> "$T/cmd.err" || rc=$?
[ "$rc" != 0 ] || fail "xenmqd -c $T/nonexistent.conf exited 0"
one_line_error "$T/cmd.err" "$T/nonexistent.conf" "No such file or directory"

sed 's/^status_interval 1$/status_interval 1\nbogus_key 1/' "$T/xenmqd.conf" > "$T/bad.conf"
line=$(grep -n '^bogus_key' "$T/bad.conf" | cut -d: -f1)
rc=0
"$B/xenmqd" -c "$T/bad.conf" > "$T/cmd.out" 2> "$T/cmd.err" || rc=$?
[ "$rc" != 0 ] || fail "xenmqd with an unknown key exited 0"
one_line_error "$T/cmd.err" "$T/bad.conf:$line: unknown key 'bogus_key'"

rc=0
"$B/xenmqd" -t -c "$T/bad.conf" > "$T/cmd.out" 2> "$T/cmd.err" || rc=$?
[ "$rc" != 0 ] || fail "xenmqd -t accepted an unknown key"
one_line_error "$T/cmd.err" "$T/bad.conf:$line: unknown key 'bogus_key'"

printf 'user alpha\ntopic readwrite xen/alpha/#\ntopic a/#/b\n' > "$T/bad.acl"
sed "s|^acl_file .*|acl_file $T/bad.acl|" "$T/xenmqd.conf" > "$T/bad-acl.conf"
rc=0
"$B/xenmqd" -t -c "$T/bad-acl.conf" > "$T/cmd.out" 2> "$T/cmd.err" || rc=$?
[ "$rc" != 0 ] || fail "xenmqd -t accepted a bad ACL"
one_line_error "$T/cmd.err" "$T/bad.acl:3: "

rc=0
"$B/xenmqd" -t -c "$T/xenmqd.conf" > "$T/cmd.out" 2> "$T/cmd.err" || rc=$?
assert_eq "$rc" 0 "xenmqd -t on a good configuration ($(cat "$T/cmd.err"))"
assert_file_contains "$T/cmd.out" "2 domains"
assert_file_contains "$T/cmd.out" "OK"
[ ! -s "$T/cmd.err" ] || fail "xenmqd -t wrote to stderr: $(cat "$T/cmd.err")"

stop_all_checked
