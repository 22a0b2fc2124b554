#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_reload.sh - SIGHUP: xenmqd takes a new configuration and ACL without dropping anything
# that stays, and refuses a broken one.
#
# - A changed ACL applies at once: alpha's QoS 1 publish to shared/a, denied before (xenmq-pub
#   exits 1, xenmqd logs the denial, the Dom0 subscriber gets nothing), is allowed after, and
#   its publish to shared/b, allowed before, is denied after.
# - Healthy channels stay: alpha's agent keeps its link (one "channel up", one epoch in
#   xenmqd's log, through every reload) and its running xenmq-sub keeps receiving.
# - A domain added to the configuration (beta) gets its channel connected, its agent comes up
#   and its applications work; a domain removed from it (gamma) goes offline (retained
#   xen/gamma/status) and its channel is let go.
# - A configuration file with an error, then an ACL file with an error, is refused: xenmqd
#   logs a line naming FILE:LINE, and the running configuration and ACL keep working.
# - Changed limits apply: bursts of 20 QoS 1 and 20 QoS 0 messages pass max_message_rate 200
#   untouched (counters paced and rate_limited stay 0); once it is lowered to 1, QoS 1 messages
#   are held and paced (all arrive, xenmq-pub exits 0, paced grows) and QoS 0 ones over the
#   rate are dropped (rate_limited grows, xenmqd logs it).

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done
command -v jq > /dev/null || skip "jq is not installed"

# conf RATE DOMAIN...: $T/xenmqd.conf with max_message_rate RATE and the given domains.
conf() {
	local rate=$1 name
	shift
	{
		echo "mosquitto $MQ_SOCK"
		echo "acl_file $T/acl"
		echo "status_interval 1"
		echo "max_message_rate $rate"
		for name in "$@"; do
			echo
			echo "domain $name"
			echo "channel $T/chan-$name.sock"
		done
	} > "$T/xenmqd.conf.new"
	mv -f "$T/xenmqd.conf.new" "$T/xenmqd.conf"
}

# acl SHARED: alpha may write shared/SHARED; beta and gamma their own topics.
acl() {
	write_acl <<EOF
user alpha
topic readwrite xen/alpha/#
topic write shared/$1

user beta
topic readwrite xen/beta/#

user gamma
topic readwrite xen/gamma/#
EOF
}

# reload: SIGHUP, then waits until xenmqd has said what it made of it.
reload() {
	local n
	n=$(grep -cE 'configuration reloaded|reload refused' "$T/xenmqd.log" || true)
	reload_xenmqd
	wait_for 20 count_at_least_re "$T/xenmqd.log" $((n + 1)) 'configuration reloaded|reload refused'
}

# count_at_least_re FILE N REGEX: N or more lines of FILE match REGEX.
count_at_least_re() {
	[ "$(grep -cE -- "$3" "$1" 2>/dev/null || true)" -ge "$2" ]
}

# domu_pub NAME ARGS...: xenmq-pub in domain NAME; returns its status.
domu_pub() {
	local name=$1
	shift
	"$B/xenmq-pub" -L "$(url_agent "$name")" "$@" 2>> "$T/domu-pub.err"
}

# publish_is TOPIC STATUS: alpha's QoS 1 publish of TOPIC exits with STATUS.
publish_is() {
	local rc=0
	domu_pub alpha -i p -q 1 -t "$1" -m "$1" || rc=$?
	assert_eq "$rc" "$2" "xenmq-pub to $1 ($(tail -n 1 "$T/domu-pub.err"))"
}

# stat_of DOMAIN KEY: a counter from xenmqd's retained report on DOMAIN.
stat_of() {
	mosquitto_sub --unix "$MQ_SOCK" -t "xenmq/broker/domain/$1" -C 1 -W 2 2>/dev/null |
		jq -r ".$2"
}

# stat_at_least DOMAIN KEY N: for wait_for.
stat_at_least() {
	local v
	v=$(stat_of "$1" "$2" || true)
	[[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ]
}

stat_positive() {
	local v
	v=$(stat_of "$1" "$2" || true)
	[[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ]
}

# alpha_steady: alpha's link is the one made at the start.
alpha_steady() {
	assert_count "$T/agent-alpha.log" 1 "channel up"
	assert_file_lacks "$T/agent-alpha.log" "channel down"
	assert_count "$T/xenmqd.log" 1 'domain "alpha": online (link epoch'
	_alive "$SUB_APP" || fail "alpha's xenmq-sub exited: $(cat "$T/sub.err")"
}

# alpha_receives TEXT: a Dom0 message reaches alpha's running xenmq-sub.
alpha_receives() {
	pub -q 1 -t xen/alpha/down/x -m "$1"
	wait_for 20 grep -qs "^xen/alpha/down/x $1\$" "$T/sub.out"
}

start_mosquitto
start_channel alpha
start_channel gamma
acl b
conf 200 alpha gamma
start_xenmqd
start_agent alpha
start_agent gamma
wait_status alpha online
wait_status gamma online

sub_bg "$T/shared.out" -t 'shared/#' -v
pub -r -q 1 -t xen/alpha/down/sync -m sync
"$B/xenmq-sub" -L "$(url_agent alpha)" -i sub -q 1 -v -t 'xen/alpha/down/#' \
	> "$T/sub.out" 2> "$T/sub.err" &
SUB_APP=$!
_track $SUB_APP
wait_for 20 grep -qs '^xen/alpha/down/sync sync' "$T/sub.out"

# ---- the ACL before ---------------------------------------------------------------------------
publish_is shared/a 1
publish_is shared/b 0
wait_for 20 grep -qs '^shared/b shared/b$' "$T/shared.out"
assert_file_contains "$T/xenmqd.log" 'publish to "shared/a" denied by the ACL (0x87)'

# ---- a new ACL, a domain added, one removed -------------------------------------------------
start_channel beta
acl a
conf 200 alpha beta
reload
assert_file_contains "$T/xenmqd.log" "configuration reloaded: 2 domains"
publish_is shared/a 0
publish_is shared/b 1
wait_for 20 grep -qs '^shared/a shared/a$' "$T/shared.out"
assert_count "$T/shared.out" 2
alpha_receives after-reload-1
alpha_steady

wait_for 20 grep -qs "chanemu: client connected" "$T/chan-beta.log"
start_agent beta
wait_status beta online
sub_bg "$T/beta.out" -t xen/beta/up -F '%p'
domu_pub beta -i p -q 1 -t xen/beta/up -m from-beta
wait_for 20 grep -qsx from-beta "$T/beta.out"

wait_status gamma offline
wait_for 20 grep -qs "chanemu: client gone" "$T/chan-gamma.log"
assert_file_contains "$T/xenmqd.log" 'domain "gamma": removed by the new configuration'

# ---- a broken configuration, then a broken ACL --------------------------------------------------
cp "$T/xenmqd.conf" "$T/xenmqd.conf.good"
sed -i 's/^status_interval 1$/status_intervall 1/' "$T/xenmqd.conf"
line=$(grep -n '^status_intervall' "$T/xenmqd.conf" | cut -d: -f1)
reload
assert_file_contains "$T/xenmqd.log" \
	"reload refused, keeping the running configuration: $T/xenmqd.conf:$line: unknown key 'status_intervall'"
mv -f "$T/xenmqd.conf.good" "$T/xenmqd.conf"

cp "$T/acl" "$T/acl.good"
acl b
sed -i 's/^topic write shared\/b$/topic WRITE shared\/b/' "$T/acl"
line=$(grep -n '^topic WRITE' "$T/acl" | cut -d: -f1)
reload
assert_file_contains "$T/xenmqd.log" \
	"reload refused, keeping the running configuration: $T/acl:$line: "
assert_count "$T/xenmqd.log" 1 "configuration reloaded"
# The running configuration and ACL are those of before.
publish_is shared/a 0
publish_is shared/b 1
wait_status beta online
wait_status gamma offline
alpha_receives after-refusals
alpha_steady
mv -f "$T/acl.good" "$T/acl"

# ---- limits -------------------------------------------------------------------------------------
# Over max_message_rate, QoS 1 messages are held and paced (counted as paced), QoS 0 ones
# dropped (counted as rate_limited). A burst of 20 of each passes max_message_rate 200 whole.
sub_bg "$T/burst.out" -t 'xen/alpha/burst/#' -v
published=$(stat_of alpha published)
domu_pub alpha -i burst -q 1 -t xen/alpha/burst/1 -m x --repeat 20 ||
	fail "a QoS 1 burst of 20 under max_message_rate 200 failed: $(tail -n 3 "$T/domu-pub.err")"
domu_pub alpha -i burst -q 0 -t xen/alpha/burst/0 -m x --repeat 20
wait_for 20 count_at_least "$T/burst.out" 20 "xen/alpha/burst/1 x"
wait_for 20 count_at_least "$T/burst.out" 20 "xen/alpha/burst/0 x"
wait_for 20 stat_at_least alpha published $((published + 40))
assert_eq "$(stat_of alpha paced)/$(stat_of alpha rate_limited)" 0/0 \
	"paced/rate_limited under max_message_rate 200"

conf 1 alpha beta
reload
assert_count "$T/xenmqd.log" 2 "configuration reloaded"
domu_pub alpha -i burst -q 1 -t xen/alpha/burst/1 -m y --repeat 3 ||
	fail "a QoS 1 burst of 3 over max_message_rate 1 failed: $(tail -n 3 "$T/domu-pub.err")"
wait_for 20 count_at_least "$T/burst.out" 3 "xen/alpha/burst/1 y"
wait_for 20 stat_positive alpha paced
domu_pub alpha -i burst -q 0 -t xen/alpha/burst/0 -m z --repeat 20
wait_for 20 stat_positive alpha rate_limited
assert_file_contains "$T/xenmqd.log" 'max_message_rate 1/s'
alpha_receives after-limits
alpha_steady

_terminate "$SUB_APP"
stop_all_checked
