# SPDX-License-Identifier: MIT
# Helpers of the real-Xen scenarios that drive the project's programs
# (busybox sh), sourced in dom0 and in the DomUs: xenmqd and its files in
# dom0; in a DomU, the steps "xenmq.*" (agent, xenmq-sub and xenmq-pub).
#
# A subscriber in a DomU prints "topic payload user-properties" lines
# (xenmq-sub -F '%t %p %P', as dom0's mosquitto_sub does). It is known to be
# subscribed once a retained message that dom0 left on a topic its filter
# matches (the filter with "+" and "#" replaced by "xt-sync"), with payload
# xt-sync, has arrived; those lines are never counted.

XT_XENMQD_CONF=/run/xenmq/xenmqd.conf
XT_ACL=/run/xenmq/acl

# ---- dom0 -----------------------------------------------------------------

# The ACL and xenmqd.conf of the tests (syntax: broker/conf.h, topics/acl.h;
# no tabs: the ACL parser refuses them).
xt_xenmqd_conf() {
	cat > $XT_ACL <<EOF
# every domain owns its subtree
pattern readwrite xen/%u/#
# alpha talks to beta on bus/alpha-to-beta/
user alpha
topic write bus/alpha-to-beta/#
user beta
topic read bus/alpha-to-beta/#
EOF
	cat > $XT_XENMQD_CONF <<EOF
mosquitto $XT_MQ_SOCK
acl_file $XT_ACL
log_level debug
# counters under xenmq/broker/, which the scenarios read
status_interval 1
# the scenarios publish in bursts; rate limits are not what they test
max_message_rate 0
max_byte_rate 0
EOF
	for d in $XT_DOMUS; do
		printf 'domain %s\nchannel %s\n' $d "$(xt_chan_sock $d)" >> $XT_XENMQD_CONF
	done
}

xt__all_connected() {
	local d
	for d in $XT_DOMUS; do
		xl domid $d >/dev/null 2>&1 || continue
		xt_chan_connected $d || return 1
	done
}

# Starts xenmqd and waits until it holds the channel of every running DomU.
xt_xenmqd_start() {
	xt_xenmqd_conf
	xt_bg xenmqd xenmqd -c $XT_XENMQD_CONF -v
	if ! xt_wait_for 30 xt__all_connected; then
		echo "xenmqd has not connected to every channel after 30 s"
		xt_log_tail xenmqd
		return 1
	fi
}

# xt_xenmqd_stop [SIGNAL]
xt_xenmqd_stop() { xt_kill xenmqd ${1:-TERM}; }

xt__status_is() {
	local p
	p=$(mosquitto_sub --unix $XT_MQ_SOCK -t xen/$1/status -C 1 -W 2 2>/dev/null)
	case $p in
	*offline*) [ "$2" = offline ];;
	*online*) [ "$2" = online ];;
	*) return 1;;
	esac
}

# xt_status_wait DOM online|offline [TIMEOUT]: xen/DOM/status (retained, set
# by xenmqd) says so.
xt_status_wait() { xt_wait_for ${3:-60} xt__status_is $1 $2; }

xt_sync_topic() { echo "$1" | sed 's/#/xt-sync/; s/+/xt-sync/g'; }

# xt_domu_sub_start DOM NAME FILTER [XENMQ-SUB OPTIONS...]: a xenmq-sub in DOM,
# subscribed when this returns.
xt_domu_sub_start() {
	local d=$1 n=$2 f=$3 s rc
	shift 3
	s=$(xt_sync_topic "$f")
	xt_pub -r -q 1 -t "$s" -m xt-sync
	xt_domu_run $d xenmq.sub_start $n "$f" "$@"
	rc=$?
	xt_pub -r -t "$s" -n
	return $rc
}

# xt_domu_sub_count DOM NAME ERE: lines of DOM's subscriber NAME matching ERE.
xt_domu_sub_count() {
	xt_domu_run $1 xenmq.sub_count $2 "$3" >/dev/null
	xt_domu_get $1 count-$2
}

# xt_domu_sub_wait DOM NAME ERE COUNT [TIMEOUT]
xt_domu_sub_wait() {
	xt_domu_run_t $(( ${5:-30} + 10 )) $1 xenmq.sub_wait $2 "$3" $4 ${5:-30}
}

# Starts the agent in each DomU given, and waits until xenmqd says it is online.
xt_agents_start() {
	local d rc=0
	for d in "$@"; do
		xt_domu_run $d xenmq.agent_start || { xt_fail "$d: xenmq-agent starts"; rc=1; }
	done
	for d in "$@"; do
		xt_status_wait $d online 60 || { xt_fail "$d: xen/$d/status online"; rc=1; }
	done
	return $rc
}

# xt_ids_check SUB TOPIC N LABEL: dom0's subscriber SUB got every id 1..N
# published on TOPIC (as payloads); duplicates, allowed at QoS 1, are
# reported as a measure named LABEL.dup.
xt_ids_check() {
	local f=$XT_RUN/tmp/ids-$1 got dup miss
	xt_sub_lines $1 | awk -v t="$2" '$1 == t { print $2 }' | sort -n > $f
	got=$(uniq $f | wc -l)
	dup=$(( $(wc -l < $f) - got ))
	miss=$(uniq $f | awk -v n="$3" '
		{ while (++i < $1) m = m " " i; i = $1 }
		END { while (++i <= n) m = m " " i; print substr(m, 1, 200) }')
	echo "$2: $got distinct ids of 1..$3, $dup duplicates${miss:+, missing:$miss}"
	xt_expect "$4: every id 1..$3 arrived" "$got/${miss:-none}" "$3/none"
	xt_measure $4.dup "$dup" msgs "QoS 1 duplicates on $2"
}

# ---- DomU -----------------------------------------------------------------

XT_SUB_FMT='%t %p %P'

# The lines of DomU subscriber $1, without the sync messages.
xt__dsub_lines() {
	grep -v -E '^[^ ]*/xt-sync |^[^ ]* xt-sync( |$)' $XT_RUN/log/sub-$1.log 2>/dev/null
}

xt__dsub_has() { [ "$(xt__dsub_lines $1 | grep -c -E "$2")" -ge "$3" ]; }

xenmq_domu() {
	local what=$1 n c
	shift
	case $what in
	agent_start)
		xt_running agent && return 0
		rm -f $XT_AGENT_SOCK
		xt_bg agent xenmq-agent --channel $XT_CHAN_NAME --socket $XT_AGENT_SOCK -v
		if ! xt_wait_for 30 test -S $XT_AGENT_SOCK; then
			xt_log_tail agent
			return 1
		fi
		;;
	agent_stop)		# [SIGNAL]
		xt_kill agent ${1:-TERM}
		;;
	sub_start)		# NAME FILTER [OPTIONS...]
		n=$1
		c=$2
		shift 2
		xt_bg sub-$n xenmq-sub -L $XT_AGENT_URL -q 1 -F "$XT_SUB_FMT" -t "$c" "$@"
		if ! xt_wait_for 30 grep -q -E '^[^ ]* xt-sync( |$)' $XT_RUN/log/sub-$n.log; then
			echo "xenmq-sub $n: not subscribed to '$c' after 30 s"
			xt_log_tail sub-$n
			return 1
		fi
		;;
	sub_start_nosync)	# NAME FILTER [OPTIONS...]: no sync message (a resumed session)
		n=$1
		c=$2
		shift 2
		xt_bg sub-$n xenmq-sub -L $XT_AGENT_URL -q 1 -F "$XT_SUB_FMT" -t "$c" "$@"
		;;
	sub_count)		# NAME ERE
		xt_put count-$1 "$(xt__dsub_lines $1 | grep -c -E "$2")"
		;;
	sub_wait)		# NAME ERE COUNT TIMEOUT
		xt_wait_for $4 xt__dsub_has $1 "$2" $3 && return 0
		xt_log_tail sub-$1
		return 1
		;;
	sub_stop)		# NAME
		xt_kill sub-$1
		;;
	pub)			# TOPIC MESSAGE [OPTIONS...]: status and stderr as results
		c=$1
		n=$2
		shift 2
		xenmq-pub -L $XT_AGENT_URL -t "$c" -m "$n" "$@" > $XT_RUN/tmp/pub.out 2>&1
		c=$?
		sed 's/^/xenmq-pub: /' $XT_RUN/tmp/pub.out
		xt_put pub-status $c
		xt_put pub-output "$(head -c 500 $XT_RUN/tmp/pub.out)"
		return 0
		;;
	sub_ack)		# NAME FILTER: xenmq-sub -E (exits once SUBACK came); status and output
		timeout 60 xenmq-sub -L $XT_AGENT_URL -t "$2" -E > $XT_RUN/tmp/once-$1.out 2>&1
		c=$?
		sed 's/^/xenmq-sub: /' $XT_RUN/tmp/once-$1.out
		xt_put once-$1 $c
		xt_put once-$1-output "$(head -c 500 $XT_RUN/tmp/once-$1.out)"
		return 0
		;;
	pub_paced)		# NAME TOPIC PERIOD QOS [MAX]: one message every PERIOD s, ids 1, 2...
		# One xenmq-pub reads the ids as lines (-l), so it is one session;
		# pub_stop makes the loop end, and xenmq-pub then sees EOF.
		rm -f $XT_RUN/tmp/$1.stop $XT_RUN/tmp/$1.last $XT_RUN/tmp/$1.done
		xt_bg pub-$1 sh -c 'i=0
			while [ ! -f "$1.stop" ] && [ "$i" -lt "$5" ]; do
				i=$((i + 1)); echo "$i"; echo "$i" > "$1.last"; sleep "$3"
			done | xenmq-pub -L '$XT_AGENT_URL' -t "$2" -l -q "$4"
			echo $? > "$1.done"' pace $XT_RUN/tmp/$1 "$2" "$3" "$4" "${5:-1000000}"
		;;
	pub_stop)		# NAME: ends a pub_paced and waits for xenmq-pub to exit
		touch $XT_RUN/tmp/$1.stop
		xenmq_domu pub_wait "$@"
		;;
	pub_wait)		# NAME [TIMEOUT]: waits for pub_paced to end by itself
		if ! xt_wait_for ${2:-120} test -f $XT_RUN/tmp/$1.done; then
			xt_log_tail pub-$1
			return 1
		fi
		xt_put last-$1 "$(cat $XT_RUN/tmp/$1.last 2>/dev/null)"
		xt_put status-$1 "$(cat $XT_RUN/tmp/$1.done)"
		xt_log_tail pub-$1 5
		;;
	tty_hold)		# echo|fresh: holds the channel's tty open, not raw
		# echo: raw but echoing, every byte back as it came; fresh: the
		# settings a tty starts with (cooked, echo, ^X for control bytes)
		xt_chan_find || return 1
		rm -f $XT_RUN/tmp/hold.ready
		if [ "$1" = echo ]; then c="raw echo -echoctl"; else c=sane; fi
		xt_bg hold sh -c 'exec 3<>"$1" || exit 1
			stty -F "$1" $2
			stty -F "$1" -a 2>/dev/null
			touch '$XT_RUN'/tmp/hold.ready
			exec sleep 3600' hold "$XT_HVC" "$c"
		xt_wait_for 10 test -f $XT_RUN/tmp/hold.ready || return 1
		! xt_tty_is_raw $XT_HVC
		;;
	tty_release)
		xt_kill hold
		;;
	bench_pub)		# TOPIC SIZE COUNT QOS: COUNT messages of SIZE bytes, -l
		c=$(head -c "$2" /dev/zero | tr '\0' x)
		n=0
		while [ $n -lt "$3" ]; do
			echo "$c"
			n=$((n + 1))
		done > $XT_RUN/tmp/bench.txt
		xenmq-pub -L $XT_AGENT_URL -t "$1" -l -q "$4" < $XT_RUN/tmp/bench.txt
		;;
	bench_recv)		# NAME ERE COUNT TIMEOUT: time from the first matching line to the COUNTth
		xt_wait_for $4 xt__dsub_has $1 "$2" 1 || return 1
		c=$(xt_now)
		xt_wait_for $4 xt__dsub_has $1 "$2" $3 || return 1
		xt_put time-$1 "$(xt_since $c)"
		;;
	*)	return 127;;
	esac
}
