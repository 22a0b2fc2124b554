#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_agent.sh - xenmq-agent with the real parts around it: mosquitto, the channel emulator,
# xenmqd, and xenmq-pub/xenmq-sub as the DomU's applications.
#
# - applications started before xenmqd wait, and work once it is there;
# - several applications share the one channel, each with its own session (client id
#   <domain>/<app>) and only its own messages; what they publish reaches Mosquitto stamped
#   with the domain;
# - an application killed with SIGKILL gets its last will published;
# - a restart of xenmqd is invisible to a running subscriber;
# - the agent stops cleanly on SIGTERM (status 0, no sanitizer report) and removes its socket.
#
# A DomU subscriber is known to be subscribed once a retained message left on a topic of its
# filter has reached it.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

# domu_sub NAME ARGS...: xenmq-sub through the agent of dom1, output in $T/NAME.out.
domu_sub() {
	local name=$1
	shift
	"$B/xenmq-sub" -L "$(url_agent dom1)" -i "$name" -v "$@" \
		> "$T/$name.out" 2> "$T/$name.err" &
	_track $!
	DOMU_SUB_PID=$!
}

# domu_pub ARGS...: xenmq-pub through the agent of dom1; returns its exit status.
domu_pub() {
	"$B/xenmq-pub" -L "$(url_agent dom1)" "$@" 2>> "$T/domu-pub.err"
}

start_mosquitto
start_channel dom1
write_acl <<'EOF'
user dom1
topic readwrite xen/dom1/#
EOF
write_xenmqd_conf

# ---- applications wait for the channel ------------------------------------------------------
start_agent dom1
pub -r -q 1 -t xen/dom1/a/sync -m sync
pub -r -q 1 -t xen/dom1/b/sync -m sync
domu_sub app-a -q 1 -t 'xen/dom1/a/#'
A_PID=$DOMU_SUB_PID
domu_sub app-b -q 1 -t 'xen/dom1/b/#'
B_PID=$DOMU_SUB_PID
wait_for 10 grep -q "client 2 connected" "$T/agent-dom1.log"
start_xenmqd
wait_for 20 grep -q "channel up" "$T/agent-dom1.log"
wait_for 20 grep -q "^xen/dom1/a/sync sync" "$T/app-a.out"
wait_for 20 grep -q "^xen/dom1/b/sync sync" "$T/app-b.out"

# ---- each application gets its own messages ---------------------------------------------------
pub -q 1 -t xen/dom1/a/x -m for-a
pub -q 1 -t xen/dom1/b/y -m for-b
wait_for 10 grep -q "^xen/dom1/a/x for-a" "$T/app-a.out"
wait_for 10 grep -q "^xen/dom1/b/y for-b" "$T/app-b.out"
assert_file_lacks "$T/app-a.out" for-b
assert_file_lacks "$T/app-b.out" for-a
assert_file_contains "$T/mosquitto.log" "as dom1/app-a"
assert_file_contains "$T/mosquitto.log" "as dom1/app-b"

# ---- what they publish reaches Mosquitto, stamped ---------------------------------------------
sub_bg "$T/dom0.out" -V mqttv5 -t 'xen/dom1/up/#' -F '%t %p %P'
domu_pub -i pub1 -q 1 -t xen/dom1/up/one -m hello1
domu_pub -i pub2 -q 0 -t xen/dom1/up/two -m hello2
wait_for 10 grep -q "^xen/dom1/up/one hello1 xen-domain:dom1" "$T/dom0.out"
wait_for 10 grep -q "^xen/dom1/up/two hello2 xen-domain:dom1" "$T/dom0.out"

# ---- an application that dies gets its will ---------------------------------------------------
sub_bg "$T/will.out" -t 'xen/dom1/service/#' -v
domu_sub victim -t 'xen/dom1/victim/#' --will-topic xen/dom1/service/victim \
	--will-payload offline --will-qos 1
VICTIM=$DOMU_SUB_PID
wait_for 10 grep -q '"victim".*session open' "$T/agent-dom1.log"
kill -KILL "$VICTIM"
wait "$VICTIM" 2>/dev/null || true
wait_for 10 grep -q "^xen/dom1/service/victim offline" "$T/will.out"
assert_file_contains "$T/agent-dom1.log" '"victim"'

# ---- a restart of xenmqd does not show --------------------------------------------------------
stop_xenmqd
start_xenmqd
wait_for 20 count_at_least "$T/agent-dom1.log" 2 "channel up"
# The sessions are back once Mosquitto has seen both subscribers subscribe again.
wait_for 20 count_at_least "$T/mosquitto.log" 2 "Sending SUBACK to dom1/app-a"
wait_for 20 count_at_least "$T/mosquitto.log" 2 "Sending SUBACK to dom1/app-b"
pub -q 1 -t xen/dom1/a/x -m after-restart
wait_for 10 grep -q "^xen/dom1/a/x after-restart" "$T/app-a.out"
_alive "$A_PID" || fail "app-a exited: $(cat "$T/app-a.err")"
_alive "$B_PID" || fail "app-b exited: $(cat "$T/app-b.err")"

# ---- clean stop ----------------------------------------------------------------------------
# The applications first: what they do when their agent goes away is libxenmq's business.
_terminate "$A_PID" "$B_PID"
wait_for 10 grep -q 'client 1 disconnected' "$T/agent-dom1.log"
wait_for 10 grep -q 'client 2 disconnected' "$T/agent-dom1.log"
stop_agent dom1
[ ! -e "$T/agent-dom1.sock" ] || fail "the agent left its socket behind"
assert_file_contains "$T/agent-dom1.log" "SIGTERM: shutting down"
stop_all_checked
