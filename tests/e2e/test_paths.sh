#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_paths.sh - every way a message travels, with two emulated domains (alpha and beta, one
# xenmq-agent each), xenmq-pub/xenmq-sub as their applications and mosquitto_pub/mosquitto_sub
# (MQTT v5) as the operator in Dom0:
#
# - DomU -> operator: what alpha publishes (QoS 0 and 1, retained and not) reaches a Dom0
#   mosquitto_sub with the QoS and retain flag it was published with, stamped with the user
#   property xen-domain:alpha; the MQTT v5 properties the application set (content type,
#   response topic, correlation data, payload format, message expiry, user properties) arrive
#   intact;
# - a forged xen-domain property (one or two of them, naming beta) is removed and replaced:
#   the message carries exactly one xen-domain property, alpha's;
# - operator -> DomU: mosquitto_pub in Dom0 reaches xenmq-sub in beta at QoS 0 and 1, with
#   its properties intact;
# - DomU -> DomU: what alpha publishes reaches beta's application, stamped alpha;
# - retained: a message alpha published retained reaches a beta subscriber started later,
#   flagged retained;
# - xen/alpha/status is "online", retained, while alpha's agent is up.
#
# A DomU subscriber is known to be subscribed once xenmq-sub -d says so (its SUBACK came).

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

# domu_sub DOMAIN NAME ARGS...: xenmq-sub in DOMAIN (application NAME), output in $T/NAME.out;
# returns once every subscription was acknowledged.
domu_sub() {
	local dom=$1 name=$2
	shift 2
	"$B/xenmq-sub" -L "$(url_agent "$dom")" -i "$name" -d "$@" \
		> "$T/$name.out" 2> "$T/$name.err" &
	_track $!
	DOMU_SUB_PID=$!
	wait_for 20 _domu_subscribed "$name" "$DOMU_SUB_PID"
}

_domu_subscribed() {
	grep -qs 'subscribed to' "$T/$1.err" && return 0
	_alive "$2" || fail "xenmq-sub $1 exited: $(cat "$T/$1.err")"
	return 1
}

# domu_pub DOMAIN ARGS...: xenmq-pub in DOMAIN; fails the test if it fails.
domu_pub() {
	local dom=$1
	shift
	"$B/xenmq-pub" -L "$(url_agent "$dom")" "$@" 2>> "$T/domu-pub.err" ||
		fail "xenmq-pub in $dom $* failed: $(tail -3 "$T/domu-pub.err")"
}

# line_of FILE TOPIC: the one line of FILE for TOPIC (fields separated by |, topic first).
line_of() {
	local n
	n=$(grep -c "^$2|" "$1" || true)
	[ "$n" = 1 ] || fail "$(basename "$1"): expected one message on $2, got $n: $(cat "$1")"
	grep "^$2|" "$1"
}

# _retained_in_mosquitto TOPIC "1 PAYLOAD": a new operator subscription gets it, retained.
_retained_in_mosquitto() {
	[ "$(mosquitto_sub --unix "$MQ_SOCK" -t "$1" -C 1 -W 1 -F '%r %p' 2>/dev/null)" = "$2" ]
}

start_mosquitto
start_channel alpha
start_channel beta
write_acl <<'EOF'
# Each domain owns xen/<itself>/..., and every domain reads what the others share.
pattern readwrite xen/%u/#
pattern read xen/+/pub/#
EOF
write_xenmqd_conf
start_xenmqd
start_agent alpha
start_agent beta
wait_status alpha online
wait_status beta online

# ---- the status topic ---------------------------------------------------------------------------
assert_eq "$(mosquitto_sub --unix "$MQ_SOCK" -t xen/alpha/status -C 1 -W 5 -F '%r %p')" \
	"1 online" "retained xen/alpha/status"

# ---- DomU -> operator ---------------------------------------------------------------------------
# Fields: topic | payload | retain | qos | user properties | content type | response topic |
# correlation data | expiry | payload format.
FMT='%t|%p|%r|%q|%P|%C|%R|%D|%E|%F'
sub_bg "$T/dom0.out" -V mqttv5 -q 1 --retain-as-published -t 'xen/alpha/up/#' -F "$FMT"
domu_pub alpha -i up-q0 -q 0 -t xen/alpha/up/q0 -m m-q0
domu_pub alpha -i up-q1 -q 1 -t xen/alpha/up/q1 -m m-q1
domu_pub alpha -i up-q0r -q 0 -r -t xen/alpha/up/q0r -m m-q0r
domu_pub alpha -i up-q1r -q 1 -r -t xen/alpha/up/q1r -m m-q1r
domu_pub alpha -i up-props -q 1 -t xen/alpha/up/props -m '{"cmd":"x"}' \
	-D publish content-type application/json \
	-D publish response-topic xen/alpha/reply/42 \
	-D publish correlation-data corr-7 \
	-D publish payload-format-indicator 1 \
	-D publish message-expiry-interval 3600 \
	-D publish user-property trace t-1 \
	-D publish user-property trace t-2
domu_pub alpha -i forger -q 1 -t xen/alpha/up/forged -m forged \
	-D publish user-property xen-domain beta -D publish user-property before b
domu_pub alpha -i forger2 -q 1 -t xen/alpha/up/forged2 -m forged2 \
	-D publish user-property xen-domain beta -D publish user-property xen-domain alpha \
	-D publish user-property xen-domain beta
wait_for 10 count_at_least "$T/dom0.out" 7 "|"
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/q0)" \
	"xen/alpha/up/q0|m-q0|0|0|xen-domain:alpha|||||"
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/q1)" \
	"xen/alpha/up/q1|m-q1|0|1|xen-domain:alpha|||||"
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/q0r)" \
	"xen/alpha/up/q0r|m-q0r|1|0|xen-domain:alpha|||||"
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/q1r)" \
	"xen/alpha/up/q1r|m-q1r|1|1|xen-domain:alpha|||||"
# Mosquitto hands out the expiry left, in whole seconds: 3600, or 3599 across a second.
line=$(line_of "$T/dom0.out" xen/alpha/up/props)
want='xen/alpha/up/props|{"cmd":"x"}|0|1|trace:t-1 trace:t-2 xen-domain:alpha'
want+='|application/json|xen/alpha/reply/42|corr-7'
[ "$line" = "$want|3600|1" ] || [ "$line" = "$want|3599|1" ] ||
	fail "the properties alpha set did not arrive intact: $line"
# The forged properties are gone; exactly one xen-domain remains, and it is alpha's.
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/forged)" \
	"xen/alpha/up/forged|forged|0|1|before:b xen-domain:alpha|||||"
assert_eq "$(line_of "$T/dom0.out" xen/alpha/up/forged2)" \
	"xen/alpha/up/forged2|forged2|0|1|xen-domain:alpha|||||"
assert_count "$T/dom0.out" 7

# ---- operator -> DomU ---------------------------------------------------------------------------
domu_sub beta in -q 1 -t 'xen/beta/in/#' -F '%t|%p|%q|%P|%C|%R|%D'
pub -V mqttv5 -q 0 -t xen/beta/in/q0 -m d-q0 -D publish user-property trace d0
pub -V mqttv5 -q 1 -t xen/beta/in/q1 -m d-q1 -D publish user-property trace d1 \
	-D publish content-type text/plain -D publish response-topic xen/beta/reply/1 \
	-D publish correlation-data c-9
wait_for 10 count_at_least "$T/in.out" 2 "|"
assert_eq "$(line_of "$T/in.out" xen/beta/in/q0)" "xen/beta/in/q0|d-q0|0|trace:d0|||"
assert_eq "$(line_of "$T/in.out" xen/beta/in/q1)" \
	"xen/beta/in/q1|d-q1|1|trace:d1|text/plain|xen/beta/reply/1|c-9"

# ---- DomU -> DomU -------------------------------------------------------------------------------
domu_sub beta shared -q 1 -t 'xen/+/pub/#' -F '%t|%p|%q|%r|%P'
domu_pub alpha -i a2b -q 1 -t xen/alpha/pub/hello -m from-alpha
domu_pub alpha -i a2b0 -q 0 -t xen/alpha/pub/hello0 -m from-alpha-q0
wait_for 10 count_at_least "$T/shared.out" 2 "|"
assert_eq "$(line_of "$T/shared.out" xen/alpha/pub/hello)" \
	"xen/alpha/pub/hello|from-alpha|1|0|xen-domain:alpha"
assert_eq "$(line_of "$T/shared.out" xen/alpha/pub/hello0)" \
	"xen/alpha/pub/hello0|from-alpha-q0|0|0|xen-domain:alpha"

# ---- retained, for a subscriber that comes later ------------------------------------------------
domu_pub alpha -i keeper -q 1 -r -t xen/alpha/pub/kept -m kept-value
wait_for 10 _retained_in_mosquitto xen/alpha/pub/kept "1 kept-value"
"$B/xenmq-sub" -L "$(url_agent beta)" -i late -q 1 -t xen/alpha/pub/kept -C 1 -W 20 \
	-F '%r|%t|%p|%P' > "$T/late.out" 2> "$T/late.err" ||
	fail "the late subscriber in beta got nothing: $(cat "$T/late.err")"
assert_eq "$(cat "$T/late.out")" "1|xen/alpha/pub/kept|kept-value|xen-domain:alpha"
# And the subscriber that was there all along saw it live, not retained.
wait_for 10 grep -q '^xen/alpha/pub/kept|kept-value|1|0|xen-domain:alpha$' "$T/shared.out"


# ---- the status stayed online, and nothing leaked between the paths -----------------------------
assert_eq "$(mosquitto_sub --unix "$MQ_SOCK" -t xen/alpha/status -C 1 -W 5 -F '%r %p')" \
	"1 online" "retained xen/alpha/status"
assert_count "$T/in.out" 2
assert_count "$T/dom0.out" 7
[ ! -s "$T/domu-pub.err" ] || fail "xenmq-pub complained: $(cat "$T/domu-pub.err")"
stop_all_checked
