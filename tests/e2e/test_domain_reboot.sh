#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_domain_reboot.sh - a DomU reboots, as Xen does it; the bus follows, and the other
# domains do not notice.
#
# The reboot of alpha: its programs end without a word (the agent and the application are
# killed with SIGKILL, as when the domain's memory goes away), then its channel gives xenmqd
# EOF and its socket disappears for 2 s (chanemu's `vanish 2`, what `xl reboot` does to the
# QEMU socket); when it is back, the tty is a fresh hvc (tty-reset: cooked) and the DomU
# starts its agent and applications again.
#
# - `xen/alpha/status` goes `offline` then `online`, as a mosquitto_sub subscribed throughout
#   sees it;
# - the last will of alpha's application is published when the domain goes away (xenmqd
#   learns it from the channel's EOF: nothing in the DomU said goodbye);
# - alpha's agent and applications work again once it is back, both ways;
# - a QoS 1 message for an application with a persistent session (`xenmq-sub -c -i sub -x
#   600 -q 1`) is delivered once it is back, whether it was published after the DomU went
#   silent but before its channel closed (xenmqd had sent it into the dead channel: kept for
#   the session at the link's end) or while the channel was gone (kept by Mosquitto);
# - beta's QoS 1 stream (`xenmq-pub -l -q 1`, seen by a Dom0 mosquitto_sub) runs throughout:
#   every message arrives exactly once, and beta's link never goes down.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

lines_at_least() {
	[ "$(wc -l < "$1")" -ge "$2" ]
}

# last_line_is FILE TEXT: the last line of FILE is TEXT.
last_line_is() {
	[ "$(tail -n 1 "$1")" = "$2" ]
}

# down_grew N: alpha's channel has carried more than N bytes toward the DomU.
down_grew() {
	[ "$(chan_counter alpha down)" -gt "$1" ]
}

# alpha_sub FILE: alpha's persistent subscriber, with a will; output in FILE.
alpha_sub() {
	"$B/xenmq-sub" -L "$(url_agent alpha)" -c -i sub -x 600 -q 1 -v -t 'xen/alpha/down/#' \
		--will-topic xen/alpha/service/sub --will-payload offline --will-qos 1 \
		> "$1" 2> "$1.err" &
	SUB_APP=$!
	_track $SUB_APP
}

# kill9 PID...: SIGKILL, and reaps them (without the shell's "Killed" notice).
kill9() {
	{ kill -KILL "$@"; wait "$@"; } 2> /dev/null || true
}

start_mosquitto
start_channel alpha
start_channel beta
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf
start_xenmqd
start_agent alpha
start_agent beta
wait_status alpha online
wait_status beta online

sub_bg "$T/status.out" -t xen/alpha/status
sub_bg "$T/will.out" -t 'xen/alpha/service/#' -v
sub_bg "$T/beta.out" -c -i obs -q 1 -t xen/beta/up -F '%p'
pub -r -q 1 -t xen/alpha/down/sync -m sync
alpha_sub "$T/sub1.out"
wait_for 20 grep -qs '^xen/alpha/down/sync sync' "$T/sub1.out"

feed beta | "$B/xenmq-pub" -L "$(url_agent beta)" -i pub -l -q 1 -t xen/beta/up \
	> "$T/beta-pub.out" 2> "$T/beta-pub.err" &
BETA_PUB=$!
_track $BETA_PUB
wait_for 20 lines_at_least "$T/beta.out" 20

# ---- alpha goes away ----------------------------------------------------------------------
# The agent first: an application dying before it would make it close the session itself.
kill9 "${_AGENT_PID[alpha]}"
_AGENT_PID[alpha]=
kill9 "$SUB_APP"
down=$(chan_counter alpha down)
pub -q 1 -t xen/alpha/down/x -m before-vanish
# xenmqd sends it into the channel, where nobody reads it any more.
wait_for 20 down_grew "$down"
chan_ctl alpha vanish 2
wait_for 20 last_line_is "$T/status.out" offline
wait_for 20 grep -qs '^xen/alpha/service/sub offline' "$T/will.out"
assert_file_contains "$T/xenmqd.log" 'domain "alpha": offline: the channel closed'
[ ! -e "$T/chan-alpha.sock" ] || fail "the channel's socket is still there"
pub -q 1 -t xen/alpha/down/x -m during-vanish

# ---- alpha is back ----------------------------------------------------------------------------
wait_for 20 grep -qs 'socket back after vanish: ok' "$T/chan-alpha.log"
chan_ctl alpha tty-reset
# xenmqd reconnects by itself.
wait_for 20 count_at_least "$T/chan-alpha.log" 2 "chanemu: client connected"
start_agent alpha
wait_for 20 last_line_is "$T/status.out" online
alpha_sub "$T/sub2.out"
wait_for 20 grep -qs '^xen/alpha/down/x before-vanish' "$T/sub2.out"
wait_for 20 grep -qs '^xen/alpha/down/x during-vanish' "$T/sub2.out"
pub -q 1 -t xen/alpha/down/x -m after-reboot
wait_for 20 grep -qs '^xen/alpha/down/x after-reboot' "$T/sub2.out"
sub_bg "$T/alpha-up.out" -t xen/alpha/up -F '%p'
"$B/xenmq-pub" -L "$(url_agent alpha)" -i pub -q 1 -t xen/alpha/up -m hello-after-reboot
wait_for 20 grep -qsx hello-after-reboot "$T/alpha-up.out"

# The status went offline then online, once each (the first line is the retained one).
assert_eq "$(tr '\n' ' ' < "$T/status.out")" "online offline online " "xen/alpha/status"
assert_count "$T/will.out" 1

# ---- beta did not notice ----------------------------------------------------------------------
n=$(wc -l < "$T/beta.out")
wait_for 20 lines_at_least "$T/beta.out" $((n + 20))
: > "$T/stop"
rc=0
wait_for 30 _dead "$BETA_PUB"
wait "$BETA_PUB" || rc=$?
assert_eq "$rc" 0 "beta's xenmq-pub exit status ($(cat "$T/beta-pub.err"))"
N=$(sent beta)
wait_for 20 all_received "$T/beta.out" "$N"
assert_count "$T/beta.out" "$N"
echo "beta: $N messages during alpha's reboot, each once"
assert_count "$T/agent-beta.log" 1 "channel up"
assert_file_lacks "$T/agent-beta.log" "channel down"
assert_file_lacks "$T/xenmqd.log" 'domain "beta": offline'

_terminate "$SUB_APP"
stop_all_checked
