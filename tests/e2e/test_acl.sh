#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_acl.sh - xenmqd enforces the ACL file (Mosquitto acl_file syntax, default deny) on what
# DomU applications publish and subscribe to, as their users see it: xenmq-pub and xenmq-sub
# in four emulated domains (alpha, beta, delta, gamma, one agent each), mosquitto_sub in Dom0.
#
# - publish denied: xenmq-pub -q 1 to a topic the domain may not write exits non-zero saying
#   "Not authorized"; xenmqd logs a line naming the domain, the application, the topic and
#   0x87; a Dom0 subscriber to '#' never sees the message, at QoS 0 or 1 (checked once a later,
#   allowed message has arrived, so that the absence means something);
# - pattern lines with %u: alpha may write xen/alpha/# but not xen/beta/#;
# - subscribe denied: xenmq-sub reports each refused filter as "Not authorized", keeps the
#   filters that were granted, and receives nothing that Dom0 publishes under the refused ones;
#   xenmqd logs the refusal with the domain, the application, the filter and 0x87; a filter that
#   a deny rule covers completely is refused even though an allow rule covers it too;
# - a filter partly covered by a deny rule (read xen/# with deny xen/secret/#) is granted, and
#   delivers retained and live messages outside the denied part, never one inside it; xenmqd
#   counts each message it held back (the domain's "denied" counter);
# - a publish naming a response topic the domain cannot read is refused (0x87) and logged; one
#   it can read passes;
# - default deny: once the ACL file (reloaded with SIGHUP) has no rule for gamma, everything
#   gamma tries is refused, even what the previous file allowed it.
#
# xenmqd logs a domain's ACL refusals at most once per 10 s, so each log line asserted here is
# the first ACL refusal of its domain.

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

# domu_sub DOMAIN NAME ARGS...: xenmq-sub in DOMAIN (application NAME), output in $T/NAME.out,
# messages in $T/NAME.err; returns once every filter was answered (granted or refused).
domu_sub() {
	local dom=$1 name=$2 n=0 a
	shift 2
	for a in "$@"; do [ "$a" = -t ] && n=$((n + 1)); done
	"$B/xenmq-sub" -L "$(url_agent "$dom")" -i "$name" -d "$@" \
		> "$T/$name.out" 2> "$T/$name.err" &
	_track $!
	DOMU_SUB_PID=$!
	wait_for 20 _domu_answered "$name" "$DOMU_SUB_PID" "$n"
}

_domu_answered() {
	local n
	n=$(grep -cE 'subscribed to|subscription to .* refused' "$T/$1.err" 2>/dev/null || true)
	[ "$n" -ge "$3" ] && return 0
	_alive "$2" || fail "xenmq-sub $1 exited: $(cat "$T/$1.err")"
	return 1
}

# domu_pub DOMAIN ARGS...: xenmq-pub in DOMAIN, its messages in $T/pub.err; returns its status.
domu_pub() {
	local dom=$1
	shift
	"$B/xenmq-pub" -L "$(url_agent "$dom")" "$@" 2> "$T/pub.err"
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

assert_log() {
	log_has "$@" ||
		fail "xenmqd.log has no line with all of: $*; it ends: $(tail -5 "$T/xenmqd.log")"
}

start_mosquitto
start_channel alpha
start_channel beta
start_channel delta
start_channel gamma
write_acl <<'EOF'
# Every domain owns xen/<itself>/... and reads the status of all.
pattern readwrite xen/%u/#
pattern read xen/+/status

# beta reads all of xen/ except the secrets.
user beta
topic read xen/#
topic deny xen/secret/#
EOF
write_xenmqd_conf "status_interval 1"
start_xenmqd
for d in alpha beta delta gamma; do start_agent "$d"; done
for d in alpha beta delta gamma; do wait_status "$d" online; done
sub_bg "$T/all.out" -V mqttv5 -t '#' -F '%t %p %P'

# ---- publish denied (and %u) --------------------------------------------------------------------
rc=0
domu_pub alpha -i intruder -q 1 -t xen/beta/stolen -m leak-q1 || rc=$?
[ $rc != 0 ] || fail "a QoS 1 publish to xen/beta/stolen by alpha succeeded"
assert_file_contains "$T/pub.err" 'publish to "xen/beta/stolen" refused: Not authorized'
wait_for 10 log_has 'domain "alpha"' '"intruder"' '"xen/beta/stolen"' 0x87
domu_pub alpha -i intruder0 -q 0 -t xen/beta/stolen0 -m leak-q0 ||
	fail "xenmq-pub -q 0 failed: $(cat "$T/pub.err")"
domu_pub alpha -i owner -q 1 -t xen/alpha/mine -m allowed ||
	fail "alpha could not publish to xen/alpha/mine: $(cat "$T/pub.err")"
wait_for 10 grep -q '^xen/alpha/mine allowed xen-domain:alpha$' "$T/all.out"
assert_file_lacks "$T/all.out" leak-q
assert_file_lacks "$T/all.out" xen/beta/stolen

# ---- subscribe denied ---------------------------------------------------------------------------
domu_sub beta refused -q 1 -t xen/beta/ok/# -t usb/cmd/# -t 'xen/secret/#' -v
assert_file_contains "$T/refused.err" 'subscription to "usb/cmd/#" refused: Not authorized'
assert_file_contains "$T/refused.err" 'subscription to "xen/secret/#" refused: Not authorized'
assert_file_contains "$T/refused.err" 'subscribed to "xen/beta/ok/#"'
wait_for 10 log_has 'domain "beta"' '"refused"' '"usb/cmd/#"' 0x87
pub -q 1 -t usb/cmd/list -m not-for-beta-1
pub -q 1 -t xen/secret/x -m not-for-beta-2
pub -q 1 -t xen/beta/ok/last -m for-beta
wait_for 10 grep -q '^xen/beta/ok/last for-beta$' "$T/refused.out"
assert_count "$T/refused.out" 1

# ---- a filter partly covered by a deny rule -----------------------------------------------------
pub -r -q 1 -t xen/secret/kept -m secret-retained
pub -r -q 1 -t xen/public/kept -m public-retained
wait_for 10 grep -q '^xen/public/kept public-retained' "$T/all.out"
domu_sub beta partial -q 1 -t 'xen/#' -v
pub -q 1 -t xen/secret/a -m secret-live-1
pub -q 1 -t xen/secret/deep/b -m secret-live-2
pub -q 1 -t xen/public/c -m public-live
pub -q 1 -t xen/public/last -m public-last
wait_for 10 grep -q '^xen/public/last public-last$' "$T/partial.out"
assert_file_contains "$T/partial.out" "xen/public/kept public-retained"
assert_file_contains "$T/partial.out" "xen/public/c public-live"
assert_file_lacks "$T/partial.out" secret
# Held back: the retained secret and the two live ones, plus the two refused filters above.
wait_for 10 domain_counter_is beta denied 5

# ---- response topics ----------------------------------------------------------------------------
rc=0
domu_pub delta -i asker -q 1 -t xen/delta/req -m aimed-at-beta \
	-D publish response-topic xen/beta/reply/1 || rc=$?
[ $rc != 0 ] || fail "a publish with a response topic delta cannot read succeeded"
assert_file_contains "$T/pub.err" 'publish to "xen/delta/req" refused: Not authorized'
wait_for 10 log_has 'domain "delta"' '"asker"' '"xen/beta/reply/1"' 0x87
domu_pub delta -i asker -q 1 -t xen/delta/req -m own-reply \
	-D publish response-topic xen/delta/reply/1 ||
	fail "a publish with delta's own response topic was refused: $(cat "$T/pub.err")"
wait_for 10 grep -q '^xen/delta/req own-reply xen-domain:delta$' "$T/all.out"
assert_file_lacks "$T/all.out" aimed-at-beta

# ---- default deny -------------------------------------------------------------------------------
# The pattern lets gamma use xen/gamma/# ...
domu_pub gamma -i before -q 1 -t xen/gamma/x -m gamma-before ||
	fail "gamma could not publish before the reload: $(cat "$T/pub.err")"
wait_for 10 grep -q '^xen/gamma/x gamma-before xen-domain:gamma$' "$T/all.out"
# ... until an ACL file without patterns, where gamma has no rule at all, is loaded.
write_acl <<'EOF'
user alpha
topic readwrite xen/alpha/#
EOF
n=$(grep -c 'configuration reloaded' "$T/xenmqd.log" || true)
reload_xenmqd
wait_for 10 count_at_least "$T/xenmqd.log" $((n + 1)) 'configuration reloaded'
for topic in xen/gamma/x gamma xen/alpha/x dom0/cmd/reboot; do
	rc=0
	domu_pub gamma -i after -q 1 -t "$topic" -m gamma-after || rc=$?
	[ $rc != 0 ] || fail "gamma, without any rule, could publish to $topic"
	assert_file_contains "$T/pub.err" "publish to \"$topic\" refused: Not authorized"
done
wait_for 10 log_has 'domain "gamma"' '"after"' '"xen/gamma/x"' 0x87
rc=0
"$B/xenmq-sub" -L "$(url_agent gamma)" -i gsub -t xen/gamma/# -t '#' -t xen/+/status -W 10 \
	> "$T/gsub.out" 2> "$T/gsub.err" || rc=$?
assert_eq "$rc" 1 "xenmq-sub status when every subscription is refused"
for f in 'xen/gamma/#' '#' 'xen/+/status'; do
	assert_file_contains "$T/gsub.err" "subscription to \"$f\" refused: Not authorized"
done
assert_file_contains "$T/gsub.err" "every subscription was refused"
# alpha keeps what its own block gives it.
domu_pub alpha -i owner -q 1 -t xen/alpha/mine -m still-allowed ||
	fail "alpha lost xen/alpha/mine at the reload: $(cat "$T/pub.err")"
wait_for 10 grep -q '^xen/alpha/mine still-allowed xen-domain:alpha$' "$T/all.out"
assert_file_lacks "$T/all.out" gamma-after

stop_all_checked
