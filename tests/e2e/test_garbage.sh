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
# - four more domains, each on a paced channel where a 12 KB frame takes a second and a half
#   to cross, so that garbage injected while it crosses certainly lands inside it (the
#   emulator holds at most 4 KiB of it at a time): a QoS 1 PUBLISH destroyed on its way down
#   (domain gd) is sent again by xenmqd; a QoS 1 PUBLISH (gp), an OPEN made large by its will
#   (go) and a SUBSCRIBE made large by its filter (gs), destroyed on their way up, are sent
#   again by libxenmq: the message arrives, the session opens (and its will is the one that
#   goes out when it dies), the subscription is granted and delivers. That each frame crossed
#   twice is checked on the emulator's byte counters.
#
. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

N=500
EVERY=25
FILL=abcdefghijklmnopqrstuvwxyz0123456789

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
# 8000 B/s: a 12000-byte frame takes 1.5 s, and garbage lands inside it until some 7900 bytes
# of it have crossed (the emulator then holds the rest of what it read, at most 4096 bytes):
# a second after the counters show it started, far more than the injection takes.
SLOW="gd gp go gs"
for d in $SLOW; do
	start_channel "$d" --rate-up 8000 --rate-down 8000
done
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf "status_interval 1" "max_message_rate 0" "max_byte_rate 0"
start_xenmqd
start_agent alpha -v
for d in $SLOW; do start_agent "$d" -v; done
wait_status alpha online
for d in $SLOW; do wait_status "$d" online; done

# ---- random garbage both ways while QoS 1 flows both ways ---------------------------------------
sub_bg "$T/up.out" -q 1 -t xen/alpha/up -F '%p'
"$B/xenmq-sub" -L "$(url_agent alpha)" -i down -q 1 -t xen/alpha/down -F '%p' -d \
	> "$T/down.out" 2> "$T/down.err" &
DOWN_SUB=$!
_track $DOWN_SUB
wait_for 20 grep -qs 'subscribed to' "$T/down.err"
bad_before=$(domain_counter alpha bad_frames)
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
wait_for 10 domain_counter_over alpha bad_frames "$bad_before"
echo "alpha: bad_frames $bad_before -> $(domain_counter alpha bad_frames)," \
	"links_up $(domain_counter alpha links_up)"
assert_eq "$(domain_counter alpha links_up)" 1 "alpha's links_up"
wait_status alpha online
grep -q 'channel: dropped a frame' "$T/agent-alpha.log" ||
	fail "the agent of alpha logged no dropped frame after $((N / EVERY)) garbage-down"
assert_file_lacks "$T/agent-alpha.log" "channel down"
_alive $DOWN_SUB || fail "alpha's subscriber exited: $(cat "$T/down.err")"

# ---- a frame destroyed for sure, each way -------------------------------------------------------
BIG=12000
sub_bg "$T/slow.out" -q 1 -t 'xen/+/big/#' -F '%t %l %p'
declare -A BASE BAD
for d in $SLOW; do BAD[$d]=$(domain_counter "$d" bad_frames); done

# big_payload CHAR: BIG times CHAR.
big_payload() {
	head -c $BIG /dev/zero | tr '\0' "$1"
}

# hit_next NAME DIR: once a large frame has started to cross NAME's channel in direction DIR
# (its counter passed BASE[NAME] by 200 bytes, more than any small frame), garbage inside it.
hit_next() {
	wait_for 20 chan_beyond "$1" "$2" $((BASE[$1] + 200))
	chan_ctl "$1" "garbage-$2" 64
}

# Down: xenmqd sends it again when the DomU does not acknowledge it.
"$B/xenmq-sub" -L "$(url_agent gd)" -i sdown -q 1 -t xen/gd/big/down -F '%l %p' -d \
	> "$T/sdown.out" 2> "$T/sdown.err" &
SDOWN=$!
_track $SDOWN
wait_for 20 grep -qs 'subscribed to' "$T/sdown.err"
BASE[gd]=$(chan_counter gd down)
pub -q 1 -t xen/gd/big/down -m "$(big_payload d)"
hit_next gd down

# Up: a QoS 1 PUBLISH; libxenmq sends it again when xenmqd does not acknowledge it.
BASE[gp]=$(chan_counter gp up)
"$B/xenmq-pub" -L "$(url_agent gp)" -i sup -q 1 -t xen/gp/big/up -m "$(big_payload u)" \
	2> "$T/sup.err" &
SUP=$!
_track $SUP
hit_next gp up

# Up: an OPEN (its will makes it large).
BASE[go]=$(chan_counter go up)
"$B/xenmq-sub" -L "$(url_agent go)" -i swill -q 1 -t xen/go/willsub -d \
	--will-topic xen/go/big/will --will-payload "$(big_payload w)" \
	> "$T/swill.out" 2> "$T/swill.err" &
SWILL=$!
_track $SWILL
hit_next go up

# Up: a SUBSCRIBE (its filter makes it large), after a small OPEN.
BASE[gs]=$(chan_counter gs up)
filter=xen/gs/$(big_payload f)
"$B/xenmq-sub" -L "$(url_agent gs)" -i sfilter -q 1 -t "$filter" -d \
	> "$T/sfilter.out" 2> "$T/sfilter.err" &
SFILTER=$!
_track $SFILTER
hit_next gs up

# Each got through in the end.
wait_for 30 grep -q "^$BIG d\{$BIG\}\$" "$T/sdown.out"
wait_for 30 grep -q "^xen/gp/big/up $BIG u\{$BIG\}\$" "$T/slow.out"
wait_for 20 _dead $SUP
wait $SUP || fail "xenmq-pub of the large message failed: $(cat "$T/sup.err")"
wait_for 30 grep -q 'subscribed to "xen/go/willsub"' "$T/swill.err"
wait_for 30 grep -q 'subscribed to "xen/gs/fff' "$T/sfilter.err"
pub -q 1 -t "$filter" -m through-the-long-filter
wait_for 10 grep -qx through-the-long-filter "$T/sfilter.out"
# The will that crossed is the session's: it goes out when the application dies.
kill -KILL $SWILL
wait $SWILL 2>/dev/null || true
wait_for 20 grep -q "^xen/go/big/will $BIG w\{$BIG\}\$" "$T/slow.out"
# Each large frame crossed twice: the first time the garbage destroyed it (the agent of gd
# says so; xenmqd counted a bad frame on the others), then again.
grep -q 'channel: dropped a frame' "$T/agent-gd.log" ||
	fail "the agent of gd did not drop the large frame"
for d in gd:down gp:up go:up gs:up; do
	n=$(chan_counter "${d%:*}" "${d#*:}")
	[ $((n - BASE[${d%:*}])) -ge $((2 * BIG)) ] ||
		fail "the large frame crossed ${d%:*}'s channel once: $((n - BASE[${d%:*}])) bytes"
	[ "$(domain_counter "${d%:*}" links_up)" = 1 ] || fail "${d%:*}'s link went down"
done
for d in gp go gs; do
	domain_counter_over "$d" bad_frames "${BAD[$d]}" || fail "xenmqd counted no bad frame on $d"
done
echo "gd: the large message down arrived $(wc -l < "$T/sdown.out") time(s)"

_terminate $SFILTER $SDOWN $DOWN_SUB
stop_all_checked
