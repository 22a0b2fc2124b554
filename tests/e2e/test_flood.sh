#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_flood.sh - a domain that publishes as fast as it can is held to its max_message_rate
# and does not stop another domain's messages.
#
# - alpha floods, for as long as the test needs, with two applications through its agent:
#   QoS 0 (yes | xenmq-pub -l -q 0) and numbered QoS 1 (xenmq-pub -l -q 1); meanwhile beta
#   publishes 100 numbered QoS 1 messages and receives 100 QoS 1 messages from Dom0: every
#   one of them arrives (checked while alpha still floods), and beta is never rate-limited;
# - alpha is held to its max_message_rate (100/s): what xenmqd let through stays within the
#   rate (a second's burst plus the rate for each second the test ran, and a second of
#   margin); QoS 0 over the rate is dropped and counted (rate_limited), QoS 1 over the rate
#   is held and paced (paced), never refused while it fits in max_queued_bytes: the QoS 1
#   flood reaches Mosquitto whole and in order, 1, 2, 3, ... as far as it got;
# - xenmqd says so in its log with the domain, the application and the rate, but at most one
#   line per 10 s: the log stays small however many messages were dropped.
#
. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

RATE=100
N=100

_flooding() {
	_alive "$FLOOD0" || fail "alpha's QoS 0 flood stopped: $(tail -3 "$T/flood0.err")"
	_alive "$FLOOD1" || fail "alpha's QoS 1 flood stopped: $(tail -3 "$T/flood1.err")"
}

_all_of() {
	_flooding
	[ "$(sort -u "$1" | grep -c "^$2-")" -ge $N ]
}

start_mosquitto
start_channel alpha
start_channel beta
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf "status_interval 1" "@alpha max_message_rate $RATE"
begin=$SECONDS
start_xenmqd
start_agent alpha
start_agent beta
wait_status alpha online
wait_status beta online

sub_bg "$T/beta-up.out" -q 1 -t xen/beta/up -F '%p'
"$B/xenmq-sub" -L "$(url_agent beta)" -i down -q 1 -t xen/beta/down -F '%p' -d \
	> "$T/beta-down.out" 2> "$T/beta-down.err" &
BETA_SUB=$!
_track $BETA_SUB
wait_for 20 grep -qs 'subscribed to' "$T/beta-down.err"

# ---- alpha floods -------------------------------------------------------------------------------
sub_bg "$T/flood1.out" -q 1 -t xen/alpha/flood1 -F '%p'
yes flood-flood-flood | "$B/xenmq-pub" -L "$(url_agent alpha)" -i flooder0 -l -q 0 \
	-t xen/alpha/flood0 2> "$T/flood0.err" &
FLOOD0=$!
_track $FLOOD0
seq 1 1000000 | "$B/xenmq-pub" -L "$(url_agent alpha)" -i flooder1 -l -q 1 \
	-t xen/alpha/flood1 2> "$T/flood1.err" &
FLOOD1=$!
_track $FLOOD1
wait_for 20 domain_counter_over alpha rate_limited 1000
wait_for 20 domain_counter_over alpha paced 100

# ---- beta's messages all go through, both ways, while alpha floods ------------------------------
seq -f 'up-%g' 1 $N | "$B/xenmq-pub" -L "$(url_agent beta)" -i talker -l -q 1 -t xen/beta/up \
	2> "$T/beta-pub.err" &
BETA_PUB=$!
_track $BETA_PUB
seq -f 'down-%g' 1 $N | pub -l -q 1 -t xen/beta/down
wait_for 30 _all_of "$T/beta-up.out" up
wait_for 30 _all_of "$T/beta-down.out" down
wait_for 10 _dead $BETA_PUB
wait $BETA_PUB || fail "beta's xenmq-pub failed: $(cat "$T/beta-pub.err")"
_flooding
assert_eq "$(domain_counter beta rate_limited)" 0 "beta's rate_limited"

# ---- alpha was held to its rate, and the log says so, briefly -----------------------------------
_terminate $FLOOD0 $FLOOD1
wait $FLOOD0 $FLOOD1 2>/dev/null || true
# Their last frames came before their CLOSE: a report without their sessions counts them all.
wait_for 10 domain_counter_is alpha sessions 0
elapsed=$((SECONDS - begin))
published=$(domain_counter alpha published)
limited=$(domain_counter alpha rate_limited)
paced=$(domain_counter alpha paced)
echo "alpha: $published published, $limited dropped and $paced paced over its rate, in ${elapsed}s"
[ "$published" -le $((RATE * (elapsed + 2))) ] ||
	fail "alpha published $published messages in ${elapsed}s, over $RATE/s"
# The QoS 1 flood: nothing lost, nothing out of order, nothing refused.
k=$(wc -l < "$T/flood1.out")
[ "$k" -gt 0 ] || fail "nothing of alpha's QoS 1 flood reached Mosquitto"
assert_eq "$(cat "$T/flood1.out")" "$(seq 1 "$k")" "alpha's QoS 1 flood as Mosquitto got it"
assert_file_lacks "$T/flood1.err" refused
assert_file_lacks "$T/xenmqd.log" '(0x96)'
# One line about alpha's rate per 10 s at most.
lines=$(grep -cF 'over max_message_rate' "$T/xenmqd.log" || true)
grep -qF 'domain "alpha": app "flooder0": QoS 0 messages over max_message_rate 100/s' \
	"$T/xenmqd.log" || fail "xenmqd did not log alpha's rate: $(tail -5 "$T/xenmqd.log")"
[ "$lines" -le $((elapsed / 10 + 1)) ] ||
	fail "$lines log lines about alpha's rate in ${elapsed}s:" \
		"$(grep -F 'over max_' "$T/xenmqd.log" | head -5)"
[ "$(wc -l < "$T/xenmqd.log")" -lt 60 ] ||
	fail "xenmqd's log grew to $(wc -l < "$T/xenmqd.log") lines"
assert_file_lacks "$T/xenmqd.log" 'domain "beta": app "talker": '"QoS 0 messages over"

_terminate $BETA_SUB
stop_all_checked
