# SPDX-License-Identifier: MIT
# Scenario "bench": xenmq's own numbers on the real channel, for the report
# (never asserted; compare with raw.* of the same run):
#   bench.up.64, bench.up.4k      payload bytes/s, alpha's xenmq-pub -l (QoS 1)
#                                 to dom0's mosquitto_sub, 64-byte and 4 KiB
#                                 messages
#   bench.down.64, bench.down.4k  the same from dom0's mosquitto_pub -l to a
#                                 xenmq-sub in alpha
#   bench.rr                      request round trip (hook: needs xenmq-rr)
# Timed from the first message received to the last, so program start-up
# is left out.

XT_BENCH_SMALL=${XT_BENCH_SMALL:-500}
XT_BENCH_LARGE=${XT_BENCH_LARGE:-100}

xt__lines_ge() { [ "$(wc -l < $XT_RUN/log/sub-$1.log)" -ge "$2" ]; }

# bench_up LABEL SIZE COUNT
bench_up() {
	local n=up$1 seq t0 dt= got
	xt_sub_start $n "xen/alpha/bench/$1" || { echo "bench.up.$1: n/a (mosquitto_sub)"; return; }
	seq=$(xt_domu_send alpha xenmq.bench_pub xen/alpha/bench/$1 $2 $3 1)
	# the two sync lines (xt_sub_start) come first
	if xt_wait_for 120 xt__lines_ge $n 3; then
		t0=$(xt_now)
		xt_wait_for 120 xt__lines_ge $n $(( $3 + 2 ))
		dt=$(xt_since $t0)
	fi
	xt_domu_wait alpha $seq 60
	got=$(xt_sub_count $n "^xen/alpha/bench/$1 ")
	xt_sub_stop $n
	if [ -z "$dt" ] || [ "$got" -lt 2 ]; then
		echo "bench.up.$1: n/a ($got of $3 messages arrived)"
		return
	fi
	xt_measure bench.up.$1 \
		"$(xt_rate $(( (got - 1) * $2 )) $dt)" B/s \
		"alpha->dom0, $got of $3 messages of $2 bytes in ${dt}s, QoS 1"
}

# bench_down LABEL SIZE COUNT
bench_down() {
	local n=down$1 t i seq
	if ! xt_domu_sub_start alpha $n "xen/alpha/bdown/$1/#"; then
		echo "bench.down.$1: n/a (xenmq-sub)"
		return
	fi
	head -c $2 /dev/zero | tr '\0' y > $XT_RUN/tmp/line
	echo >> $XT_RUN/tmp/line
	: > $XT_RUN/tmp/bench.txt
	i=0
	while [ $i -lt $3 ]; do
		cat $XT_RUN/tmp/line
		i=$((i + 1))
	done > $XT_RUN/tmp/bench.txt
	seq=$(xt_domu_send alpha xenmq.bench_recv $n "^xen/alpha/bdown/$1/m " $3 300)
	xt_pub -q 1 -t xen/alpha/bdown/$1/m -l < $XT_RUN/tmp/bench.txt
	if xt_domu_wait alpha $seq 320; then
		t=$(xt_domu_get alpha time-$n)
		xt_measure bench.down.$1 \
			"$(xt_rate $(( ($3 - 1) * $2 )) $t)" B/s \
			"dom0->alpha, $3 messages of $2 bytes in ${t}s, QoS 1"
	else
		echo "bench.down.$1: n/a (not every message arrived)"
	fi
	xt_domu_run alpha xenmq.sub_stop $n
}

bench_dom0() {
	xt_need xenmqd xenmq-agent xenmq-pub xenmq-sub || return
	xt_xenmqd_start || { xt_fail "xenmqd connects to the channels"; return; }
	xt_agents_start alpha || return
	bench_up 64 64 $XT_BENCH_SMALL
	bench_up 4k 4096 $XT_BENCH_LARGE
	bench_down 64 64 $XT_BENCH_SMALL
	bench_down 4k 4096 $XT_BENCH_LARGE
	# TODO: request round trip once xenmq-rr exists (mosquitto_rr's flags
	# plus -L): a responder in dom0 (mosquitto_sub piped to mosquitto_pub
	# on the response topic) and N requests from alpha, timed in alpha.
	if xt_have xenmq-rr; then
		echo "bench.rr: n/a (xenmq-rr is built; the measurement is still to be written)"
	else
		echo "bench.rr: n/a (xenmq-rr not built)"
	fi
}

bench_domu() {
	return 127
}
