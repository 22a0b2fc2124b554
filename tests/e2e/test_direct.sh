#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_direct.sh - the same application, run once straight on Mosquitto (mqtt+unix:, as a
# developer runs it on a laptop without Xen) and once through a DomU's agent, xenmqd and an
# emulated PV channel (agent:), behaves the same: only the URL (-L) differs between the two
# runs of each xenmq-pub/xenmq-sub command.
#
# Both ways:
# - Dom0 -> application: QoS 0 and QoS 1 messages with MQTT v5 properties (user property,
#   content type, response topic, correlation data) arrive with the same fields;
# - application -> Dom0: QoS 0, QoS 1 and retained messages with properties arrive with the
#   same QoS, retain flag and properties, except for the expected difference below;
# - a retained message reaches a subscriber started later, flagged retained;
# - an application killed with SIGKILL gets its last will published;
# - a running subscriber gets its subscription back after Mosquitto restarts (without
#   persistence, so that Mosquitto forgot every session) and receives what follows.
#
# Expected differences, asserted as such:
# - xen-domain stamping: through the agent every message the application publishes carries
#   the user property xen-domain=alpha (the domain of the channel); straight on Mosquitto
#   nothing adds it;
# - ACL: through the agent xenmqd applies the domain's ACL (here alpha may only use
#   xen/alpha/#), so a publish to xen/beta/... is refused (Not authorized); straight on
#   Mosquitto (which runs here without an acl_file) it is accepted;
# - client id: through the agent the MQTT session is "alpha/<app>", straight it is "<app>".

. "$(dirname "$0")/lib.sh" "$@"

for p in xenmqd xenmq-agent xenmq-pub xenmq-sub tests/chanemu; do
	[ -x "$B/$p" ] || skip "$B/$p is not built (make B=$B)"
done

FMT='%t|%p|%q|%r|%P|%C|%R|%D'
declare -A URL SUB_PID

# app_sub HOW NAME ARGS...: xenmq-sub (application HOW-NAME) on HOW's URL, output in
# $T/HOW-NAME.out; returns once it says it is subscribed.
app_sub() {
	local how=$1 name=$2
	shift 2
	"$B/xenmq-sub" -L "${URL[$how]}" -i "$how-$name" -d "$@" \
		> "$T/$how-$name.out" 2> "$T/$how-$name.err" &
	_track $!
	SUB_PID[$how-$name]=$!
	wait_for 20 _app_ready "$how-$name"
}

_app_ready() {
	grep -qs 'subscribed to' "$T/$1.err" && return 0
	_alive "${SUB_PID[$1]}" || fail "xenmq-sub $1 exited: $(cat "$T/$1.err")"
	return 1
}

# app_pub HOW NAME ARGS...: xenmq-pub (application HOW-NAME) on HOW's URL; fails the test if
# it fails.
app_pub() {
	local how=$1 name=$2
	shift 2
	"$B/xenmq-pub" -L "${URL[$how]}" -i "$how-$name" "$@" 2> "$T/$how-$name.err" ||
		fail "xenmq-pub $how-$name failed: $(cat "$T/$how-$name.err")"
}

# exercise HOW: one run of the application's scenario, its topics under xen/alpha/HOW/.
exercise() {
	local how=$1 top=xen/alpha/$1
	# Dom0 -> application.
	app_sub "$how" in -q 1 -t "$top/in/#" -F "$FMT"
	pub -V mqttv5 -q 0 -t "$top/in/q0" -m in-q0 -D publish user-property k v0
	pub -V mqttv5 -q 1 -t "$top/in/q1" -m in-q1 -D publish user-property k v1 \
		-D publish content-type text/plain -D publish response-topic "$top/reply/1" \
		-D publish correlation-data corr-1
	wait_for 10 count_at_least "$T/$how-in.out" 2 "|"

	# Application -> Dom0.
	sub_bg "$T/$how-obs.out" -V mqttv5 -q 1 --retain-as-published -t "$top/out/#" -F "$FMT"
	app_pub "$how" out0 -q 0 -t "$top/out/q0" -m out-q0 -D publish user-property k w0
	app_pub "$how" out1 -q 1 -t "$top/out/q1" -m out-q1 -D publish user-property k w1 \
		-D publish content-type application/json -D publish response-topic "$top/reply/2" \
		-D publish correlation-data corr-2
	app_pub "$how" outr -q 1 -r -t "$top/out/kept" -m out-kept
	wait_for 10 count_at_least "$T/$how-obs.out" 3 "|"

	# Retained, for a subscriber that comes later.
	"$B/xenmq-sub" -L "${URL[$how]}" -i "$how-late" -q 1 -t "$top/out/kept" -C 1 -W 20 \
		-F '%r|%t|%p' > "$T/$how-late.out" 2> "$T/$how-late.err" ||
		fail "the late subscriber ($how) got nothing: $(cat "$T/$how-late.err")"

	# A last will, for an application that dies.
	sub_bg "$T/$how-will.out" -q 1 -t "$top/will" -F '%t|%p|%q'
	app_sub "$how" victim -q 1 -t "$top/nothing" --will-topic "$top/will" \
		--will-payload gone --will-qos 1
	kill -KILL "${SUB_PID[$how-victim]}"
	wait "${SUB_PID[$how-victim]}" 2>/dev/null || true
	wait_for 20 grep -q "^$top/will|gone|1\$" "$T/$how-will.out"
}

# same HOW FILE: FILE of the direct run and of HOW's run hold the same, once each run's own
# topic level is named alike and the expected difference (xen-domain) is taken away.
same() {
	local a b
	a=$(sed "s|xen/alpha/direct/|xen/alpha/X/|g" "$T/direct-$2" | sort)
	b=$(sed -E "s|xen/alpha/$1/|xen/alpha/X/|g; s/ ?xen-domain:alpha//" "$T/$1-$2" | sort)
	[ "$a" = "$b" ] || fail "$2 differs between direct and $1:
--- direct:
$a
--- $1:
$b"
}

start_mosquitto
start_channel alpha
write_acl <<'EOF'
pattern readwrite xen/%u/#
EOF
write_xenmqd_conf
start_xenmqd
start_agent alpha
wait_status alpha online
URL[direct]=mqtt+unix:$MQ_SOCK
URL[agent]=$(url_agent alpha)

exercise direct
exercise agent
for f in in.out obs.out late.out will.out; do same agent "$f"; done
# What each got, to be sure that "the same" is not "both empty".
assert_count "$T/direct-in.out" 2
assert_eq "$(grep '/in/q1|' "$T/direct-in.out")" \
	"xen/alpha/direct/in/q1|in-q1|1|0|k:v1|text/plain|xen/alpha/direct/reply/1|corr-1"
assert_count "$T/direct-obs.out" 3
assert_eq "$(grep '/out/q1|' "$T/direct-obs.out")" \
	"xen/alpha/direct/out/q1|out-q1|1|0|k:w1|application/json|xen/alpha/direct/reply/2|corr-2"
assert_eq "$(grep '/out/kept|' "$T/direct-obs.out")" "xen/alpha/direct/out/kept|out-kept|1|1||||"
assert_eq "$(cat "$T/direct-late.out")" "1|xen/alpha/direct/out/kept|out-kept"

# ---- the expected differences -------------------------------------------------------------------
# Stamping: every message the application published through the agent, and only those.
assert_count "$T/agent-obs.out" 3 "xen-domain:alpha"
assert_file_lacks "$T/direct-obs.out" "xen-domain"
# ACL: only xenmqd applies one.
app_pub direct intruder -q 1 -t xen/beta/x -m direct-to-beta
rc=0
"$B/xenmq-pub" -L "${URL[agent]}" -i agent-intruder -q 1 -t xen/beta/x -m agent-to-beta \
	2> "$T/agent-intruder.err" || rc=$?
[ $rc != 0 ] || fail "through the agent, alpha could publish to xen/beta/x"
assert_file_contains "$T/agent-intruder.err" "Not authorized"
# Client ids.
assert_file_contains "$T/mosquitto.log" "as direct-out1"
assert_file_contains "$T/mosquitto.log" "as alpha/agent-out1"

# ---- Mosquitto restarts: both subscribers get their subscription back ---------------------------
n_direct=$(grep -c "Sending SUBACK to direct-in" "$T/mosquitto.log" || true)
n_agent=$(grep -c "Sending SUBACK to alpha/agent-in" "$T/mosquitto.log" || true)
stop_mosquitto
start_mosquitto
wait_for 30 count_at_least "$T/mosquitto.log" $((n_direct + 1)) "Sending SUBACK to direct-in"
wait_for 30 count_at_least "$T/mosquitto.log" $((n_agent + 1)) "Sending SUBACK to alpha/agent-in"
for how in direct agent; do
	pub -q 1 -t "xen/alpha/$how/in/after" -m after-restart
done
for how in direct agent; do
	wait_for 10 grep -q "^xen/alpha/$how/in/after|after-restart|1|" "$T/$how-in.out"
	_alive "${SUB_PID[$how-in]}" || fail "the $how subscriber exited: $(cat "$T/$how-in.err")"
done

_terminate "${SUB_PID[direct-in]}" "${SUB_PID[agent-in]}"
stop_all_checked
