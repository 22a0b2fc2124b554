#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_resend.sh - xenmqd sends a QoS 1 message to a DomU again only when the channel looks
# lost, not when the DomU is merely slow (docs/protocol.md, section 6). The DomU is
# tests/tools/rawframe, which acknowledges only when told:
#
# - it receives three QoS 1 messages and acknowledges one every 3 s, so the last waits 9 s
#   for its PUBACK, past the 5 s timer, while the DomU keeps answering: no copy comes;
# - a fourth message it never acknowledges comes again, marked dup, with the same packet id,
#   once the DomU has answered nothing for 5 s; its PUBACK ends it, and no further copy comes.
#
# And the other way, what xenmqd does with a copy the DomU sends again because a PUBACK got
# lost: the DomU publishes a whole window (max_inflight, 64) of QoS 1 messages, has every
# PUBACK, then sends each of them again marked dup, as after a reconnection: every copy is
# answered with a PUBACK, and none reaches Mosquitto a second time.
#
# The library's side of the same rule (DomU to Dom0) is test_client_agent_slow_peer_no_resend.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd tests/chanemu tests/rawframe; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

start_mosquitto
start_channel slow
stty -F "$T/hvc-slow" raw -echo
write_acl <<'ACL'
pattern readwrite xen/%u/#
ACL
write_xenmqd_conf
start_xenmqd -v
rf_start slow
rf slow open app
rf_expect slow 'OPEN_ACK 1 0x00 0 [0-9]+'
rf slow sub 1 'xen/slow/in/#'
rf_expect slow 'SUBACK [0-9]+ 0x01'
# The DomU says where it is in its commands on xen/slow/out.
sub_bg "$T/out.out" -t 'xen/slow/out' -v

# publishes N: the PUBLISH frames rawframe received so far.
publishes() {
	grep -c '^PUBLISH ' "$T/rf-slow.out" || true
}

# id_of PAYLOAD: the packet id of the first PUBLISH that carried PAYLOAD.
id_of() {
	awk -v p="$1" '$1 == "PUBLISH" && $5 == p { print $3; exit }' "$T/rf-slow.out"
}

# ---- slow, but answering ------------------------------------------------------------------------
for i in 1 2 3; do
	pub -q 1 -t xen/slow/in/x -m "m$i"
done
for i in 1 2 3; do
	rf_expect slow "PUBLISH 1 [0-9]+ xen/slow/in/x m$i"
done
ids=()
for i in 1 2 3; do
	ids+=("$(id_of "m$i")")
done
# rawframe runs its commands in turn: one PUBACK every 3 s, on its own clock.
rf slow sleep 3000
rf slow puback "${ids[0]}"
rf slow sleep 3000
rf slow puback "${ids[1]}"
rf slow sleep 3000
rf slow puback "${ids[2]}"
rf slow pub 0 xen/slow/out acked-all
wait_for 20 grep -q '^xen/slow/out acked-all$' "$T/out.out"
assert_eq "$(publishes)" 3 "PUBLISH frames while the DomU acknowledged slowly"
assert_file_lacks "$T/rf-slow.out" ' dup'

# ---- silent: a copy after 5 s -------------------------------------------------------------------
pub -q 1 -t xen/slow/in/x -m m4
rf_expect slow 'PUBLISH 1 [0-9]+ xen/slow/in/x m4'
id4=$(id_of m4)
wait_for 15 grep -qE "^PUBLISH 1 $id4 xen/slow/in/x m4( .*)? dup\$" "$T/rf-slow.out"
rf slow puback "$id4"
rf slow pub 0 xen/slow/out acked-m4
wait_for 20 grep -q '^xen/slow/out acked-m4$' "$T/out.out"
n=$(grep -c ' m4 ' "$T/rf-slow.out")
# Nothing more after the PUBACK: the next tick would have found the copy due 5 s later.
rf slow sleep 6500
rf slow pub 0 xen/slow/out quiet
wait_for 20 grep -q '^xen/slow/out quiet$' "$T/out.out"
assert_eq "$(grep -c ' m4 ' "$T/rf-slow.out")" "$n" "copies of m4 after its PUBACK"

# ---- copies from the DomU: answered, not published twice ------------------------------------
W=64
sub_bg "$T/up.out" -t 'xen/slow/up/#' -v
for ((k = 1; k <= W; k++)); do
	rf slow pub 1 "xen/slow/up/$k" "u$k"
done
wait_for 20 count_at_least "$T/rf-slow.out" $W 'PUBACK '
# rawframe numbers its packets one after the other: the k-th message has the k-th id.
mapfile -t up_ids < <(awk '$1 == "PUBACK" { print $2 }' "$T/rf-slow.out" | sort -n | uniq)
assert_eq "${#up_ids[@]}" $W "PUBACKs for the window"
for ((k = 1; k <= W; k++)); do
	rf slow again "${up_ids[k - 1]}" "xen/slow/up/$k" "u$k"
done
wait_for 20 count_at_least "$T/rf-slow.out" $((2 * W)) 'PUBACK '
assert_eq "$(grep -cE '^PUBACK [0-9]+ 0x00$' "$T/rf-slow.out")" $((2 * W)) \
	"successful PUBACKs for $W messages and their copies"
rf slow pub 0 xen/slow/up/end end
wait_for 20 grep -q '^xen/slow/up/end end$' "$T/up.out"
assert_eq "$(grep -c '^xen/slow/up/[0-9]* u[0-9]*$' "$T/up.out")" $W \
	"messages published for $W sent and $W copies"
assert_eq "$(grep '^xen/slow/up/[0-9]' "$T/up.out" | sort -u | wc -l)" $W "different messages"

rf_quit slow
stop_all_checked
