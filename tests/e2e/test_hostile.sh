#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_hostile.sh - DomUs that break the channel protocol's rules get the MQTT v5 reason code
# an MQTT server would give, xenmqd logs it with the domain's name, and goes on serving the
# others. The hostile DomUs are tests/tools/rawframe (a hand-driven initiator that checks
# nothing) on the emulated hvc, one domain per misdeed, since xenmqd logs a domain's protocol
# errors at most once per 10 s; frames rawframe cannot make are built here (wire_hex).
#
# - a PUBLISH larger than the domain's max_frame_size: QoS 1 gets PUBACK 0x95, QoS 0 is
#   dropped; through the library (xenmq-pub on hvc: and through an agent) the application
#   gets a clear "too large" error; nothing of it reaches Mosquitto;
# - a QoS 2 PUBLISH gets PUBACK 0x9B; a topic with a wildcard gets PUBACK 0x90;
# - a PUBLISH on a stream before its OPEN_ACK, or on a stream never opened, is dropped: no
#   answer, nothing reaches Mosquitto, counted in the domain's "refused" counter;
# - a frame type that only travels down (OPEN_ACK, SUBACK) sent up ends the session with
#   CLOSE 0x82;
# - more QoS 1 PUBLISH unacknowledged than the receive maximum in OPEN_ACK: CLOSE 0x93;
# - more sessions than max_sessions: OPEN_ACK 0x97; more subscriptions than
#   max_subscriptions: SUBACK 0x97 for the filters over the limit;
# - meanwhile and afterwards, a well-behaved domain's messages go both ways, and xenmqd exits
#   with status 0 on SIGTERM with no sanitizer report.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu tests/rawframe; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

# ---- frames made by hand ------------------------------------------------------------------------

# crc32_hex HEX: the CRC-32 (ISO-HDLC, as zlib's crc32()) of the bytes HEX, as 8 hex digits.
crc32_hex() {
	local hex=$1 crc=0xffffffff i k
	for ((i = 0; i < ${#hex}; i += 2)); do
		crc=$((crc ^ 16#${hex:i:2}))
		for ((k = 0; k < 8; k++)); do
			crc=$(((crc >> 1) ^ (crc & 1 ? 0xedb88320 : 0)))
		done
	done
	printf '%08x' $((crc ^ 0xffffffff))
}

# cobs_hex HEX: COBS of HEX, with the phantom zero's final code (docs/protocol.md, section 1).
cobs_hex() {
	local hex=$1 out="" block="" i b n=1
	for ((i = 0; i < ${#hex}; i += 2)); do
		b=${hex:i:2}
		if [ "$b" = 00 ]; then
			out+=$(printf '%02x' $n)$block
			block="" n=1
			continue
		fi
		block+=$b
		n=$((n + 1))
		if [ $n = 255 ]; then
			out+=ff$block
			block="" n=1
		fi
	done
	echo "$out$(printf '%02x' $n)$block"
}

# wire_hex TYPE STREAM EPOCH BODYHEX: an upward frame as it travels: 00 COBS(frame, CRC) 00.
wire_hex() {
	local frame
	frame=$(printf '00%02x%04x%08x' "$1" "$2" "0x$3")$4
	echo "00$(cobs_hex "$frame$(crc32_hex "$frame")")00"
}

# str_hex TEXT: a protocol str: u16 length, the bytes, a 0x00.
str_hex() {
	printf '%04x%s00' ${#1} "$(printf '%s' "$1" | od -An -tx1 | tr -d ' \n')"
}

# open_hex APP: an OPEN body: clean start, no expiry, receive maximum 16, no will.
open_hex() {
	echo "$(str_hex "$1")01000000000010"
}

# publish_hex FLAGS PACKET_ID TOPIC PAYLOAD: a PUBLISH body without properties (FLAGS 1 is
# QoS 1, 2 is QoS 2); rawframe's encoder would refuse what the tests below need to send.
publish_hex() {
	printf '%02x%04x%s0000%s' "$1" "$2" "$(str_hex "$3")" \
		"$(printf '%s' "$4" | od -An -tx1 | tr -d ' \n')"
}

# The codec checked against docs/protocol.md's PUBACK test vector.
assert_eq "$(wire_hex 0x21 1 5eed0001 010200)" 0001022104015eed040101020555ca2cfa00 "wire_hex"

# epoch NAME: the epoch of NAME's link, as xenmqd logged it.
epoch() {
	sed -n "s/.*domain \"$1\": online (link epoch \([0-9a-f]*\)).*/\1/p" "$T/xenmqd.log" |
		tail -1
}

# log_has WORD...: xenmqd.log has a line containing every WORD (fixed strings).
log_has() {
	local lines
	lines=$(grep -F -- "$1" "$T/xenmqd.log" || true)
	shift
	while [ $# -gt 0 ]; do
		lines=$(grep -F -- "$1" <<< "$lines" || true)
		shift
	done
	[ -n "$lines" ]
}

# ---- the domains --------------------------------------------------------------------------------
HOSTILE="hbig hqos2 htopic hpre hdown hwin hsess hsubs"
start_mosquitto
for d in $HOSTILE good; do
	start_channel "$d"
	# As a DomU program does first: no echo, so xenmqd's first HELLO is not sent back mangled.
	stty -F "$T/hvc-$d" raw -echo
done
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf "status_interval 1" "@hbig max_frame_size 1024" "@hwin max_inflight 2" \
	"@hsess max_sessions 2" "@hsubs max_subscriptions 2"
start_xenmqd -v
start_agent good
wait_status good online
sub_bg "$T/all.out" -t 'xen/#' -v
"$B/xenmq-sub" -L "$(url_agent good)" -i listener -q 1 -t xen/good/in/# -v -d \
	> "$T/good-sub.out" 2> "$T/good-sub.err" &
GOOD_SUB=$!
_track $GOOD_SUB
wait_for 20 grep -qs 'subscribed to' "$T/good-sub.err"

# good_traffic N: the well-behaved domain publishes and receives message N, QoS 1.
good_traffic() {
	"$B/xenmq-pub" -L "$(url_agent good)" -i talker -q 1 -t xen/good/out -m "up-$1" ||
		fail "good could not publish up-$1"
	wait_for 10 grep -q "^xen/good/out up-$1\$" "$T/all.out"
	pub -q 1 -t xen/good/in/x -m "down-$1"
	wait_for 10 grep -q "^xen/good/in/x down-$1\$" "$T/good-sub.out"
}
good_traffic 1

# ---- larger than max_frame_size -----------------------------------------------------------------
rf_start hbig
rf hbig open app
rf_expect hbig 'OPEN_ACK 1 0x00 0 [0-9]+'
rf hbig big 1 xen/hbig/big1 2000
rf_expect hbig 'PUBACK 1 0x95'
rf hbig big 0 xen/hbig/big0 2000
rf hbig pub 1 xen/hbig/small fits
rf_expect hbig 'PUBACK 2 0x00'
wait_for 10 grep -q '^xen/hbig/small fits$' "$T/all.out"
wait_for 10 log_has 'domain "hbig"' '"app"' 'over max_frame_size 1024 (0x95)'
rf_quit hbig
# Through the library, on the hvc itself and through an agent: refused before it is sent.
big=$(head -c 1500 /dev/zero | tr '\0' x)
rc=0
"$B/xenmq-pub" -L "hvc:$T/hvc-hbig" -i libbig -q 1 -t xen/hbig/lib -m "$big" \
	2> "$T/libbig.err" || rc=$?
[ $rc != 0 ] || fail "xenmq-pub on hvc: sent a message over max_frame_size"
assert_file_contains "$T/libbig.err" "too large"
start_agent hbig
rc=0
"$B/xenmq-pub" -L "$(url_agent hbig)" -i libbig -q 1 -t xen/hbig/lib -m "$big" \
	2> "$T/libbig2.err" || rc=$?
[ $rc != 0 ] || fail "xenmq-pub through the agent sent a message over max_frame_size"
assert_file_contains "$T/libbig2.err" "too large"
"$B/xenmq-pub" -L "$(url_agent hbig)" -i libsmall -q 1 -t xen/hbig/lib -m small-after ||
	fail "the agent of hbig does not carry a small message"
wait_for 10 grep -q '^xen/hbig/lib small-after$' "$T/all.out"
assert_file_lacks "$T/all.out" xen/hbig/big
assert_file_lacks "$T/all.out" xxxxxxxx
stop_agent hbig

# ---- QoS 2, and a wildcard in a topic name ------------------------------------------------------
rf_start hqos2
rf hqos2 open app
rf_expect hqos2 'OPEN_ACK 1 0x00 0 [0-9]+'
rf hqos2 hex "$(wire_hex 0x20 1 "$(epoch hqos2)" "$(publish_hex 2 1 xen/hqos2/q2 qos-two)")"
rf_expect hqos2 'PUBACK 1 0x9b'
wait_for 10 log_has 'domain "hqos2"' '"app"' 'PUBLISH refused' '(0x9b)'
rf_start htopic
rf htopic open app
rf_expect htopic 'OPEN_ACK 1 0x00 0 [0-9]+'
rf htopic hex "$(wire_hex 0x20 1 "$(epoch htopic)" "$(publish_hex 1 1 xen/htopic/+ wild)")"
rf_expect htopic 'PUBACK 1 0x90'
rf htopic hex "$(wire_hex 0x20 1 "$(epoch htopic)" "$(publish_hex 1 2 'xen/htopic/#' wild2)")"
rf_expect htopic 'PUBACK 2 0x90'
wait_for 10 log_has 'domain "htopic"' '"app"' 'PUBLISH refused' '(0x90)'
for d in hqos2 htopic; do
	rf $d pub 1 xen/$d/ok still-open
	wait_for 10 grep -q "^xen/$d/ok still-open\$" "$T/all.out"
	rf_quit $d
done
assert_file_lacks "$T/all.out" qos-two
assert_file_lacks "$T/all.out" wild

# ---- PUBLISH before OPEN_ACK, and on a stream never opened --------------------------------------
rf_start hpre
# OPEN and a PUBLISH on its stream in one write: xenmqd reads both before Mosquitto can
# have answered the session's CONNECT, so the PUBLISH certainly comes before OPEN_ACK.
rf hpre hex "$(wire_hex 0x10 1 "$(epoch hpre)" "$(open_hex app)")$(wire_hex 0x20 1 \
	"$(epoch hpre)" "$(publish_hex 1 77 xen/hpre/early too-early)")"
rf_expect hpre 'OPEN_ACK 1 0x00 0 [0-9]+'
rf hpre stream 9
rf hpre pub 1 xen/hpre/nostream never-opened
rf hpre stream 1
rf hpre pub 1 xen/hpre/ok after
rf_expect hpre 'PUBACK 2 0x00'
wait_for 10 grep -q '^xen/hpre/ok after$' "$T/all.out"
wait_for 10 log_has 'domain "hpre"' '"app"' 'PUBLISH before its OPEN_ACK: dropped'
# Frames for a session that just ended are expected: that one is logged only with -v.
wait_for 10 log_has 'domain "hpre"' 'PUBLISH on stream 9, which is not open: dropped'
wait_for 10 domain_counter_at_least hpre refused 2
rf_quit hpre
assert_file_lacks "$T/all.out" too-early
assert_file_lacks "$T/all.out" never-opened
assert_file_lacks "$T/rf-hpre.out" 'PUBACK 77'
assert_file_lacks "$T/rf-hpre.out" 'PUBACK 1 '

# ---- frames that only travel down, sent up ------------------------------------------------------
rf_start hdown
rf hdown open one 1
rf_expect hdown 'OPEN_ACK 1 0x00 0 [0-9]+'
rf hdown open two 2
rf_expect hdown 'OPEN_ACK 2 0x00 0 [0-9]+'
rf hdown hex "$(wire_hex 0x11 1 "$(epoch hdown)" 00000010)"
rf_expect hdown 'CLOSE 1 0x82'
rf hdown hex "$(wire_hex 0x31 2 "$(epoch hdown)" 000100)"
rf_expect hdown 'CLOSE 2 0x82'
wait_for 10 log_has 'domain "hdown"' '"one"' 'OPEN_ACK is not for the Dom0 side (0x82)'
rf_quit hdown

# ---- more QoS 1 in flight than the receive maximum ----------------------------------------------
rf_start hwin
rf hwin open app
rf_expect hwin 'OPEN_ACK 1 0x00 0 2'
# Five QoS 1 PUBLISH in one write, against a receive maximum of 2: Mosquitto cannot have
# acknowledged any of them before xenmqd read the third.
frames=
for i in 1 2 3 4 5; do
	frames+=$(wire_hex 0x20 1 "$(epoch hwin)" "$(publish_hex 1 $i xen/hwin/burst "burst-$i")")
done
rf hwin hex "$frames"
rf_expect hwin 'CLOSE 1 0x93'
wait_for 10 log_has 'domain "hwin"' '"app"' 'more than 2 QoS 1 messages unacknowledged (0x93)'
rf_quit hwin

# ---- more sessions than max_sessions ------------------------------------------------------------
rf_start hsess
rf hsess open a 1
rf hsess open b 2
rf hsess open c 3
rf_expect hsess 'OPEN_ACK 3 0x97 0 [0-9]+'
rf_expect hsess 'OPEN_ACK 1 0x00 0 [0-9]+'
rf_expect hsess 'OPEN_ACK 2 0x00 0 [0-9]+'
wait_for 10 log_has 'domain "hsess"' '"c"' 'max_sessions 2 reached (0x97)'
# A session that ends makes room.
rf hsess stream 1
rf hsess close 0
rf hsess open d 4
rf_expect hsess 'OPEN_ACK 4 0x00 0 [0-9]+'
rf_quit hsess

# ---- more subscriptions than max_subscriptions --------------------------------------------------
rf_start hsubs
rf hsubs open app
rf_expect hsubs 'OPEN_ACK 1 0x00 0 [0-9]+'
rf hsubs sub 1 xen/hsubs/a xen/hsubs/b xen/hsubs/c
rf_expect hsubs 'SUBACK 1 0x01 0x01 0x97'
rf hsubs sub 1 xen/hsubs/d
rf_expect hsubs 'SUBACK 2 0x97'
wait_for 10 log_has 'domain "hsubs"' '"app"' 'max_subscriptions 2 (0x97)'
rf hsubs unsub xen/hsubs/a
rf_expect hsubs 'UNSUBACK 3 0x00'
rf hsubs sub 1 xen/hsubs/e
rf_expect hsubs 'SUBACK 4 0x01'
rf_quit hsubs

# ---- the well-behaved domain did not notice -----------------------------------------------------
good_traffic 2
_alive "$GOOD_SUB" || fail "good's subscriber exited: $(cat "$T/good-sub.err")"
assert_count "$T/good-sub.out" 2
# Now that later messages arrived, the absence of the refused ones means something.
for gone in xen/hbig/big xxxxxxxx qos-two wild too-early never-opened burst-3 burst-4 burst-5; do
	assert_file_lacks "$T/all.out" "$gone"
done
_terminate "$GOOD_SUB"
stop_all_checked
