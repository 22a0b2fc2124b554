#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_restart_mosquitto.sh - Mosquitto restarts under xenmqd: nothing lost, nothing forgotten.
#
# With persistence (Mosquitto keeps its sessions across the restart):
# - two steady streams of numbered QoS 1 messages, DomU -> Dom0 (`xenmq-pub -l -q 1` in
#   alpha, seen by a Dom0 `mosquitto_sub -c -i obs -q 1`) and Dom0 -> DomU (`mosquitto_pub -l
#   -q 1`, received by `xenmq-sub -c -i down -x 600 -q 1` in alpha), lose nothing while
#   Mosquitto is stopped and started again; xenmq-pub exits 0 once all were acknowledged;
# - xenmqd reconnects by itself (its log says so again), and the DomU side never notices: the
#   agent's link to xenmqd stays up.
#
# Without persistence (Mosquitto forgets every session and retained message):
# - xenmqd publishes again, retained, `xenmq/broker/status online` and `xen/alpha/status
#   online`;
# - the DomU's xenmq-sub gets its subscription back without doing anything: a message
#   published after the restart reaches it;
# - a DomU app publishes again (a new Dom0 subscriber sees its message).
#
# Duplicates are allowed at QoS 1; their number is printed.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

INFLIGHT=16	# xenmqd's max_inflight (set below): the most a restart may repeat

# retained_is TOPIC VALUE: the retained message on TOPIC is VALUE (for wait_for).
retained_is() {
	[ "$(mosquitto_sub --unix "$MQ_SOCK" -t "$1" -C 1 -W 1 2>/dev/null || true)" = "$2" ]
}

start_mosquitto persist
start_channel alpha
write_acl <<'EOF'
user alpha
topic readwrite xen/alpha/#
EOF
write_xenmqd_conf "max_inflight $INFLIGHT"
start_xenmqd
start_agent alpha
wait_status alpha online
wait_for 20 retained_is xenmq/broker/status online

# ---- with persistence: QoS 1 streams both ways through a restart ---------------------------
sub_bg "$T/obs.out" -c -i obs -q 1 -t xen/alpha/up -F '%p'
OBS_PID=$SUB_PID

pub -r -q 1 -t xen/alpha/down/sync -m sync
"$B/xenmq-sub" -L "$(url_agent alpha)" -c -i down -x 600 -q 1 -v -t 'xen/alpha/down/#' \
	> "$T/down.out" 2> "$T/down.err" &
DOWN_PID=$!
_track $DOWN_PID
wait_for 20 grep -qs '^xen/alpha/down/sync sync' "$T/down.out"

feed up | "$B/xenmq-pub" -L "$(url_agent alpha)" -i up -l -q 1 -t xen/alpha/up \
	> "$T/up-pub.out" 2> "$T/up-pub.err" &
UP_PID=$!
_track $UP_PID
feed down | mosquitto_pub --unix "$MQ_SOCK" -i dom0pub -l -q 1 -t xen/alpha/down/n \
	> "$T/down-pub.out" 2> "$T/down-pub.err" &
DOWNPUB_PID=$!
_track $DOWNPUB_PID

wait_for 20 received_at_least "$T/obs.out" 30
wait_for 20 received_at_least "$T/down.out" 30

stop_mosquitto
n=$(sent up)
wait_for 20 sent_at_least up $((n + 20))
n=$(sent down)
wait_for 20 sent_at_least down $((n + 20))
start_mosquitto persist
wait_for 30 count_at_least "$T/xenmqd.log" 2 "connected to Mosquitto"
n=$(ids "$T/obs.out" | wc -l)
wait_for 30 received_at_least "$T/obs.out" $((n + 20))
n=$(ids "$T/down.out" | wc -l)
wait_for 30 received_at_least "$T/down.out" $((n + 20))

: > "$T/stop"
rc=0
wait_for 30 _dead "$UP_PID"
wait "$UP_PID" || rc=$?
assert_eq "$rc" 0 "xenmq-pub's exit status ($(cat "$T/up-pub.err"))"
rc=0
wait_for 30 _dead "$DOWNPUB_PID"
wait "$DOWNPUB_PID" || rc=$?
assert_eq "$rc" 0 "mosquitto_pub's exit status ($(cat "$T/down-pub.err"))"

N_UP=$(sent up)
N_DOWN=$(sent down)
wait_for 30 all_received "$T/obs.out" "$N_UP"
wait_for 30 all_received "$T/down.out" "$N_DOWN"
check_ids "$T/obs.out" "$N_UP" "DomU -> Dom0"
OTHER='xen/alpha/down/sync sync' check_ids "$T/down.out" "$N_DOWN" "Dom0 -> DomU"
assert_file_contains "$T/xenmqd.log" "lost Mosquitto at $MQ_SOCK"
# The channel never noticed: one handshake, the first.
assert_count "$T/agent-alpha.log" 1 "channel up"
assert_file_lacks "$T/agent-alpha.log" "channel down"
_terminate "$OBS_PID"

# ---- without persistence: reports and subscriptions come back ---------------------------------
stop_mosquitto
start_mosquitto
wait_for 30 count_at_least "$T/xenmqd.log" 3 "connected to Mosquitto"
wait_for 20 retained_is xenmq/broker/status online
wait_status alpha online

# A retained message reaches the DomU subscriber once its subscription is back (on a fresh
# Mosquitto nothing else could deliver it); then a live one must follow.
pub -r -q 1 -t xen/alpha/down/sync2 -m after-restart
wait_for 30 grep -qs '^xen/alpha/down/sync2 after-restart' "$T/down.out"
pub -q 1 -t xen/alpha/down/live -m live-after-restart
wait_for 20 grep -qs '^xen/alpha/down/live live-after-restart' "$T/down.out"
_alive "$DOWN_PID" || fail "xenmq-sub exited: $(cat "$T/down.err")"

sub_bg "$T/new.out" -t xen/alpha/up -F '%p'
"$B/xenmq-pub" -L "$(url_agent alpha)" -i up2 -q 1 -t xen/alpha/up -m up-after-restart
wait_for 20 grep -qsx 'up-after-restart' "$T/new.out"
assert_count "$T/agent-alpha.log" 1 "channel up"

_terminate "$DOWN_PID"
stop_all_checked
