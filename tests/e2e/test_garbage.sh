#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_garbage.sh - random bytes on a PV channel, from either side, while QoS 1 messages flow
# both ways, cost at most the frames they hit: xenmqd, xenmq-agent and libxenmq drop what
# fails its CRC, resynchronise at the next frame, and send again what got no answer.
#
# - domain alpha: 500 numbered QoS 1 messages up (xenmq-pub -l in the DomU, through its agent)
#   and 500 down (mosquitto_pub -l in Dom0 to xenmq-sub -q 1 in the DomU), with garbage every
#   25 messages each way: chanemu garbage-up (as if the DomU wrote it), garbage-down (as if
#   Dom0 did), and a second writer on the hvc itself. Every message arrives (duplicates are
#   allowed, and counted), no received line is anything but an expected message, the link
#   stays up, xenmqd counts the garbage (bad_frames) and the agent logs what it dropped;
# - domain slow, on a paced channel where a 9 KB frame takes half a second to cross, so that
#   garbage injected while it crosses certainly lands inside it: a QoS 1 PUBLISH destroyed on
#   its way down is sent again by xenmqd; a QoS 1 PUBLISH, an OPEN (made large by its will)
#   and a SUBSCRIBE (made large by its filter) destroyed on their way up are sent again by
#   libxenmq: the message arrives, the session opens, the subscription is granted.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

N=500
EVERY=25
FILL=abcdefghijklmnopqrstuvwxyz0123456789

# counter DOMAIN KEY: one of xenmqd's counters for DOMAIN (retained JSON, every second here).
counter() {
	mosquitto_sub --unix "$MQ_SOCK" -t "xenmq/broker/domain/$1" -C 1 -W 2 2>/dev/null |
		sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}

# _counter_over DOMAIN KEY N: xenmqd's counter KEY of DOMAIN is over N.
_counter_over() {
	local v
	v=$(counter "$1" "$2")
	[ -n "$v" ] && [ "$v" -gt "$3" ]
}

# chan_beyond NAME KEY N: the emulator's counter KEY (up, down) is over N.
chan_beyond() {
	[ "$(chan_counter "$1" "$2")" -gt "$3" ]
}

# unique_count FILE PREFIX: how many different messages PREFIX-#### FILE holds.
unique_count() {
	grep -c . < <(sort -u "$1") || true
}

_all_arrived() {
	[ "$(unique_count "$1")" -ge $N ]
}

# check_lines FILE PREFIX: every line of FILE is PREFIX-NNNN-$FILL with 1 <= NNNN <= N; all N
# arrived. Prints how many duplicates there were.
check_lines() {
	local bad dups
	bad=$(grep -vxE "$2-[0-9]{4}-$FILL" "$1" | head -5 || true)
	[ -z "$bad" ] || fail "$(basename "$1") holds lines that are no message: $bad"
	bad=$(sed -E "s/^$2-0*([0-9]+)-.*/\1/" "$1" | awk -v n=$N '$1 < 1 || $1 > n' | head -3)
	[ -z "$bad" ] || fail "$(basename "$1") holds numbers out of 1..$N: $bad"
	assert_eq "$(unique_count "$1")" $N "different messages in $(basename "$1")"
	dups=$(($(wc -l < "$1") - N))
	echo "$(basename "$1"): $N messages, $dups duplicates"
}

# garbage_up: garbage towards xenmqd, from the emulator and from a second writer on the hvc.
# garbage_down: towards the DomU. Both generators below use the one control FIFO: in turn.
garbage_up() {
	(
		flock 9
		chan_ctl alpha garbage-up 256
	) 9> "$T/ctl.lock"
	head -c 512 /dev/urandom > "$T/hvc-alpha"
}

garbage_down() {
	(
		flock 9
		chan_ctl alpha garbage-down 256
	) 9> "$T/ctl.lock"
}

start_mosquitto
start_channel alpha --seed 1
# 16000 B/s: a 9000-byte frame takes more than half a second, far more than it takes to
# inject garbage once the emulator's counters show that the frame has started.
start_channel slow --rate-up 16000 --rate-down 16000 --seed 2
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf "status_interval 1" "max_message_rate 0" "max_byte_rate 0"
start_xenmqd
start_agent alpha -v
start_agent slow -v
wait_status alpha online
wait_status slow online

# ---- random garbage both ways while QoS 1 flows both ways --------------------------------------
sub_bg "$T/up.out" -q 1 -t xen/alpha/up -F '%p'
"$B/xenmq-sub" -L "$(url_agent alpha)" -i down -q 1 -t xen/alpha/down -F '%p' -d \
	> "$T/down.out" 2> "$T/down.err" &
DOWN_SUB=$!
_track $DOWN_SUB
wait_for 20 grep -qs 'subscribed to' "$T/down.err"
bad_before=$(counter alpha bad_frames)
[ -n "$bad_before" ] || fail "no counters for alpha"
# The generators write a line at a time, and inject garbage every $EVERY lines: the garbage
# lands among messages in flight, in every run.
for ((i = 1; i <= N; i++)); do
	printf 'up-%04d-%s\n' $i $FILL
	((i % EVERY)) || garbage_up
done | "$B/xenmq-pub" -L "$(url_agent alpha)" -i up -l -q 1 -t xen/alpha/up 2> "$T/up-pub.err" &
UP_PUB=$!
_track $UP_PUB
for ((i = 1; i <= N; i++)); do
	printf 'down-%04d-%s\n' $i $FILL
	((i % EVERY)) || garbage_down
done | mosquitto_pub --unix "$MQ_SOCK" -l -q 1 -t xen/alpha/down 2> "$T/down-pub.err" &
DOWN_PUB=$!
_track $DOWN_PUB
wait_for 60 _dead $UP_PUB
wait $UP_PUB || fail "xenmq-pub -l failed: $(tail -5 "$T/up-pub.err")"
wait_for 60 _dead $DOWN_PUB
wait $DOWN_PUB || fail "mosquitto_pub -l failed: $(tail -5 "$T/down-pub.err")"
wait_for 30 _all_arrived "$T/up.out" up
wait_for 30 _all_arrived "$T/down.out" down
check_lines "$T/up.out" up
check_lines "$T/down.out" down

# The garbage was seen and counted, and cost no link.
wait_for 10 _counter_over alpha bad_frames "$bad_before"
echo "alpha: bad_frames $bad_before -> $(counter alpha bad_frames), links_up $(counter alpha links_up)"
assert_eq "$(counter alpha links_up)" 1 "alpha's links_up"
wait_status alpha online
grep -q 'channel: dropped a frame' "$T/agent-alpha.log" ||
	fail "the agent of alpha logged no dropped frame after $((N / EVERY)) rounds of garbage-down"
assert_file_lacks "$T/agent-alpha.log" "channel down"
_alive $DOWN_SUB || fail "alpha's subscriber exited: $(cat "$T/down.err")"

# ---- a frame destroyed for sure, each way ---------------------------------------------------------
BIG=9000
slow_bad=$(counter slow bad_frames)
sub_bg "$T/slow.out" -q 1 -t 'xen/slow/#' -F '%t %l %p'

# hit_next NAME DIR BASE: once a large frame has started to cross (the emulator's counter DIR
# passed BASE by 500), garbage inside it.
hit_next() {
	wait_for 20 chan_beyond "$1" "$2" $(($3 + 500))
	chan_ctl "$1" "garbage-$2" 64
}

# Down: xenmqd sends it again when the DomU does not acknowledge it.
"$B/xenmq-sub" -L "$(url_agent slow)" -i sdown -q 1 -t xen/slow/down -F '%l %p' -d \
	> "$T/sdown.out" 2> "$T/sdown.err" &
_track $!
wait_for 20 grep -qs 'subscribed to' "$T/sdown.err"
base=$(chan_counter slow down)
pub -q 1 -t xen/slow/down -m "$(head -c $BIG /dev/zero | tr '\0' d)"
hit_next slow down "$base"

# Up: a QoS 1 PUBLISH; libxenmq sends it again when xenmqd does not acknowledge it.
wait_for 30 chan_beyond slow down $((base + BIG))
base=$(chan_counter slow up)
"$B/xenmq-pub" -L "$(url_agent slow)" -i sup -q 1 -t xen/slow/up \
	-m "$(head -c $BIG /dev/zero | tr '\0' u)" 2> "$T/sup.err" &
SUP=$!
_track $SUP
hit_next slow up "$base"

# Up: an OPEN (its will makes it large); the session opens all the same.
wait_for 30 chan_beyond slow up $((base + BIG))
base=$(chan_counter slow up)
"$B/xenmq-sub" -L "$(url_agent slow)" -i swill -q 1 -t xen/slow/willsub -d \
	--will-topic xen/slow/will --will-payload "$(head -c $BIG /dev/zero | tr '\0' w)" \
	> "$T/swill.out" 2> "$T/swill.err" &
SWILL=$!
_track $SWILL
hit_next slow up "$base"

# Up: a SUBSCRIBE (its filter makes it large); it is granted all the same.
wait_for 30 chan_beyond slow up $((base + BIG))
base=$(chan_counter slow up)
filter=xen/slow/$(head -c $BIG /dev/zero | tr '\0' f)
"$B/xenmq-sub" -L "$(url_agent slow)" -i sfilter -q 1 -t "$filter" -d \
	> "$T/sfilter.out" 2> "$T/sfilter.err" &
SFILTER=$!
_track $SFILTER
wait_for 20 grep -qs 'connected to' "$T/sfilter.err"
hit_next slow up "$base"

# Each was destroyed: the agent dropped the one going down, xenmqd counted those going up.
wait_for 20 count_at_least "$T/agent-slow.log" 1 'channel: dropped a frame'
wait_for 20 _counter_over slow bad_frames $((slow_bad + 2))
# And each got through in the end (each side sends again after 5 s).
wait_for 30 grep -q "^$BIG d\{$BIG\}\$" "$T/sdown.out"
wait_for 30 grep -q "^xen/slow/up $BIG u\{$BIG\}\$" "$T/slow.out"
wait_for 20 _dead $SUP
wait $SUP || fail "xenmq-pub of the large message failed: $(cat "$T/sup.err")"
wait_for 30 grep -q 'connected to' "$T/swill.err"
wait_for 30 grep -q 'subscribed to "xen/slow/willsub"' "$T/swill.err"
wait_for 30 grep -q 'subscribed to "xen/slow/fff' "$T/sfilter.err"
pub -q 1 -t "$filter" -m through-the-long-filter
wait_for 10 grep -qx through-the-long-filter "$T/sfilter.out"
# The will that crossed is the one the session has: it goes out when the session is lost.
kill -KILL $SWILL
wait $SWILL 2>/dev/null || true
wait_for 20 grep -q "^xen/slow/will $BIG w\{$BIG\}\$" "$T/slow.out"
echo "slow: the large message down arrived $(wc -l < "$T/sdown.out") time(s)"
echo "slow: bad_frames $(counter slow bad_frames), links_up $(counter slow links_up)"
assert_eq "$(counter slow links_up)" 1 "slow's links_up"

_terminate $SFILTER $DOWN_SUB
stop_all_checked
