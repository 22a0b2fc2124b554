# SPDX-License-Identifier: MIT
# Dom0-side helpers of the real-Xen tests (busybox sh): the DomUs, talking to
# them through XenStore, Mosquitto, the PV channels, and the checks that make
# up a scenario's verdict.
#
# A scenario's dom0 function calls xt_check/xt_expect/xt_fail for what it
# asserts (each failure is recorded in $XT_RUN/failed), and returns 0, or 77
# through xt_skip/xt_need when a program it needs is not built.

XT_DOMUS="alpha beta"
XT_DOMU_MEM=${XT_DOMU_MEM:-128}
XT_STEP_TIMEOUT=${XT_STEP_TIMEOUT:-60}
XT_MQ_CONF=/run/xenmq/mosquitto.conf
# Background programs that outlive a scenario.
XT_KEEP="mosquitto"

# ---- verdicts -------------------------------------------------------------

xt_ok() { echo "  ok   $*"; }

xt_fail() {
	echo "  FAIL $*"
	echo "$*" >> $XT_RUN/failed
	return 1
}

# xt_check DESC CMD...: CMD must succeed.
xt_check() {
	local d=$1
	shift
	if "$@"; then
		xt_ok "$d"
	else
		xt_fail "$d"
	fi
}

# xt_expect DESC GOT WANT
xt_expect() {
	if [ "$2" = "$3" ]; then
		xt_ok "$1"
	else
		xt_fail "$1: got '$2', want '$3'"
	fi
}

xt_skip() {
	echo "$*" > $XT_RUN/skip
	echo "  SKIP $*"
	return 77
}

# xt_need PROGRAM...: skips the scenario unless every PROGRAM was built.
xt_need() {
	local p miss=
	for p in "$@"; do
		xt_have "$p" || miss="$miss $p"
	done
	[ -z "$miss" ] && return 0
	xt_skip "not built:$miss"
}

# xt_measure KEY VALUE UNIT [NOTE...]: a number for the report, not asserted.
xt_measure() { echo "XMQ-MEASURE $*"; }

# xt_rate BYTES SECONDS: bytes per second, as an integer (10 ms at least:
# /proc/uptime's resolution).
xt_rate() {
	awk -v n="$1" -v t="$2" 'BEGIN { if (t < 0.01) t = 0.01; printf "%.0f", n / t }'
}

# ---- DomUs ----------------------------------------------------------------

xt_chan_sock() { echo "/run/xen/xenmq-$1.sock"; }

# The xl configuration of DomU $1 (conf/xl-domu-4.17.cfg.example explains the
# dummy channel).
xt_domu_cfg() {
	cat > $XT_RUN/$1.cfg <<EOF
name      = "$1"
type      = "pv"
kernel    = "/boot/vmlinuz"
ramdisk   = "$XT_RUN/domu.cpio"
extra     = "console=hvc0 quiet"
memory    = $XT_DOMU_MEM
vcpus     = 1
on_reboot = "restart"
channel   = [ "name=org.xenmq.dummy, connection=socket, path=/run/xen/xenmq-$1-dummy.sock",
              "name=$XT_CHAN_NAME, connection=socket, path=$(xt_chan_sock $1)" ]
EOF
}

xt_domu_id() { cat $XT_RUN/$1.id 2>/dev/null; }

# Lets domain id $2 (and only it) read /xenmq-test/$1/; nodes written there
# later inherit the permissions.
xt_domu_grant() {
	xenstore-exists /xenmq-test/$1/boot || xenstore-write /xenmq-test/$1/boot ""
	xenstore-chmod -r /xenmq-test/$1 n0 r$2
	echo "$2" > $XT_RUN/$1.id
}

# xt_domu_boot_steps NAME "STEP ARGS;STEP ARGS": what NAME runs at each boot.
xt_domu_boot_steps() { xenstore-write /xenmq-test/$1/boot "$2"; }

# Streams the DomU's console (xenconsoled's log, kept across reboots) to ours,
# in a process group of its own that xt_console_unfollow stops: it holds
# dom0's output pipe, which /init waits on.
xt_console_follow() {
	[ -f $XT_RUN/follow.$1 ] && return 0
	touch /var/log/xen/guest-$1.log
	setsid sh -c 'tail -n +1 -F "$1" 2>/dev/null | awk -v p="$2" "$3"' follow \
		/var/log/xen/guest-$1.log "[$1] " '{ sub(/\r$/, ""); print p $0; fflush() }' &
	echo $! > $XT_RUN/follow.$1
}

xt_console_unfollow() {
	local f
	for f in $XT_RUN/follow.*; do
		[ -f "$f" ] || continue
		kill -s TERM -"$(cat "$f")" 2>/dev/null
		rm -f "$f"
	done
}

xt__ready() { xenstore-read /local/domain/$(xt_domu_id $1)/data/xt/ready >/dev/null 2>&1; }

xt_domu_create() {
	local d=$1 id
	xt_domu_cfg $d
	xenstore-rm /xenmq-test/$d/cmd 2>/dev/null
	xt_console_follow $d
	if ! xl create $XT_RUN/$d.cfg > $XT_RUN/log/xl-create-$d.log 2>&1; then
		echo "xl create $d failed:"
		sed 's/^/  | /' $XT_RUN/log/xl-create-$d.log
		return 1
	fi
	id=$(xl domid $d) || return 1
	xt_domu_grant $d $id
}

# xt_domu_wait_ready NAME [TIMEOUT]: the DomU has run its boot steps.
xt_domu_wait_ready() {
	if ! xt_wait_for ${2:-120} xt__ready $1; then
		echo "$1 (domid $(xt_domu_id $1)) not ready after ${2:-120} s"
		return 1
	fi
}

xt__new_domid() {
	local id
	id=$(xl domid $1 2>/dev/null) && [ -n "$id" ] && [ "$id" != "$2" ]
}

# xt_domu_reboot NAME: "xl reboot", then waits until the new domain is ready.
# The pending command is removed first, so that the rebooted domain does not
# run it again.
xt_domu_reboot() {
	local d=$1 old id
	old=$(xt_domu_id $d)
	xenstore-rm /xenmq-test/$d/cmd 2>/dev/null
	xl reboot $d || return 1
	if ! xt_wait_for 60 xt__new_domid $d $old; then
		echo "$d: no new domain 60 s after xl reboot"
		return 1
	fi
	id=$(xl domid $d)
	xt_domu_grant $d $id
	echo "$d rebooted: domid $old -> $id"
	xt_domu_wait_ready $d 120
}

# Recreates DomU $1 if it is gone (a scenario may have left it dead).
xt_domu_ensure() {
	xl domid $1 >/dev/null 2>&1 && xt__ready $1 && return 0
	echo "$1 is not running: creating it again"
	xl destroy $1 2>/dev/null
	xt_domu_create $1 && xt_domu_wait_ready $1
}

# xt_domu_send NAME STEP ARGS...: asks NAME to run a step; prints its number.
# The words travel space-separated: "%" and spaces inside an argument are
# sent as %25 and %20 (lib-domu.sh decodes them).
xt_domu_send() {
	local d=$1 seq a cmd=
	shift
	seq=$(( $(cat $XT_RUN/$d.seq 2>/dev/null || echo 0) + 1 ))
	echo $seq > $XT_RUN/$d.seq
	for a in "$@"; do
		case $a in
		*[%\ ]*) a=$(printf '%s' "$a" | sed 's/%/%25/g; s/ /%20/g');;
		esac
		cmd="$cmd $a"
	done
	xenstore-write /xenmq-test/$d/cmd "$seq$cmd"
	echo $seq
}

xt__acked() {
	case "$(xenstore-read /local/domain/$(xt_domu_id $1)/data/xt/ack 2>/dev/null)" in
	"$2 "*) return 0;;
	esac
	return 1
}

# xt_domu_wait NAME SEQ [TIMEOUT]: waits until step SEQ has finished; returns
# its exit status, or 124 on a timeout.
xt_domu_wait() {
	local d=$1 ack
	if ! xt_wait_for ${3:-$XT_STEP_TIMEOUT} xt__acked $d $2; then
		echo "$d: step $2 not finished after ${3:-$XT_STEP_TIMEOUT} s"
		return 124
	fi
	ack=$(xenstore-read /local/domain/$(xt_domu_id $d)/data/xt/ack 2>/dev/null)
	return ${ack#* }
}

# xt_domu_run NAME STEP ARGS...: send and wait (XT_STEP_TIMEOUT).
xt_domu_run() {
	local seq
	seq=$(xt_domu_send "$@")
	xt_domu_wait $1 $seq
}

# xt_domu_run_t TIMEOUT NAME STEP ARGS...
xt_domu_run_t() {
	local lim=$1 seq
	shift
	seq=$(xt_domu_send "$@")
	xt_domu_wait $1 $seq $lim
}

# xt_domu_get NAME KEY: a result the DomU stored with xt_put.
xt_domu_get() { xenstore-read /local/domain/$(xt_domu_id $1)/data/xt/res/$2 2>/dev/null; }

# ---- Mosquitto ------------------------------------------------------------

xt_mosquitto_start() {
	xt_running mosquitto && return 0
	cat > $XT_MQ_CONF <<EOF
listener 0 $XT_MQ_SOCK
allow_anonymous true
user root
persistence false
log_dest stderr
log_type all
EOF
	rm -f $XT_MQ_SOCK
	xt_bg mosquitto mosquitto -c $XT_MQ_CONF
	xt_wait_for 20 test -S $XT_MQ_SOCK
}

# xt_pub ARGS...: mosquitto_pub on the dom0 broker, MQTT v5.
xt_pub() { mosquitto_pub --unix $XT_MQ_SOCK -V 5 "$@"; }

# xt_sub_start NAME FILTER... : a mosquitto_sub in the background, printing
# "topic payload user-properties" a line (-F '%t %p %P', QoS 1). It returns
# once the subscription is in place: it also subscribes to xt/sync/NAME, on
# which a retained message waits, and that message has arrived. Extra
# mosquitto_sub options can be given in XT_SUB_OPTS.
xt_sub_start() {
	local n=$1 f args=
	shift
	for f in "$@"; do
		args="$args -t $f"
	done
	xt_pub -r -t xt/sync/$n -m sync
	set -f
	xt_bg sub-$n mosquitto_sub --unix $XT_MQ_SOCK -V 5 -q 1 -F '%t %p %P' $XT_SUB_OPTS \
		-t xt/sync/$n $args
	set +f
	xt_wait_for 20 grep -q "^xt/sync/$n " $XT_RUN/log/sub-$n.log
	local rc=$?
	xt_pub -r -t xt/sync/$n -n
	[ $rc = 0 ] || echo "mosquitto_sub $n: not subscribed after 20 s"
	return $rc
}

# xt_sub_lines NAME: what NAME received, without the sync line.
xt_sub_lines() { grep -v "^xt/sync/" $XT_RUN/log/sub-$1.log 2>/dev/null; }

# xt_sub_count NAME [ERE]: how many lines (matching ERE) NAME received.
xt_sub_count() { xt_sub_lines $1 | grep -c -E "${2:-.}"; }

xt__sub_has() { [ "$(xt_sub_count $1 "$2")" -ge "$3" ]; }

# xt_sub_wait NAME ERE COUNT [TIMEOUT]: until COUNT matching lines arrived.
xt_sub_wait() { xt_wait_for ${4:-30} xt__sub_has "$1" "$2" "$3"; }

xt_sub_stop() { xt_kill sub-$1; }

# ---- PV channels ----------------------------------------------------------

xt__has_line() { [ "$(wc -l < "$1")" -ge 1 ]; }

# xt_chan_ping NAME LINE [TIMEOUT]: sends LINE on NAME's channel and prints
# the first line that comes back. The connection stays open until then: QEMU
# drops what the DomU has not read yet when the client closes (socat closes
# at the end of its input, which is why the input is a FIFO kept open here).
xt_chan_ping() {
	local sock in=$XT_RUN/ping.in out=$XT_RUN/ping.out pid rc
	sock=$(xt_chan_sock $1)
	rm -f $in $out
	mkfifo $in
	: > $out
	socat UNIX-CONNECT:$sock - < $in > $out 2> $XT_RUN/ping.err &
	pid=$!
	exec 7> $in
	echo "$2" >&7
	xt_wait_for ${3:-20} xt__has_line $out
	rc=$?
	exec 7>&-
	xt_wait_for 5 xt__gone $pid || kill $pid 2>/dev/null
	[ -s $XT_RUN/ping.err ] && sed 's/^/  socat: /' $XT_RUN/ping.err
	head -n 1 $out
	return $rc
}

# xt_chan_connected NAME: some client holds NAME's channel socket (an
# accepted connection shows the path with state 03 in /proc/net/unix).
xt_chan_connected() {
	awk -v p="$(xt_chan_sock $1)" '$8 == p && $6 == "03" { f = 1 } END { exit !f }' /proc/net/unix
}

xt_chan_free() { ! xt_chan_connected $1; }

# ---- scenario bookkeeping -------------------------------------------------

# Stops every background program a scenario left behind, in dom0 and in the
# DomUs, but Mosquitto. Also removes retained messages of the test topics.
xt_reset() {
	local f n d
	for f in $XT_RUN/pids/*; do
		[ -f "$f" ] || continue
		n=${f##*/}
		case " $XT_KEEP " in *" $n "*) continue;; esac
		xt_kill "$n"
	done
	for d in $XT_DOMUS; do
		xt_domu_boot_steps $d ""
		xt_domu_ensure $d && xt_domu_run_t 20 $d common.reset
	done
	rm -f $XT_RUN/failed $XT_RUN/skip
	for f in $XT_RUN/log/*.log; do
		[ -f "$f" ] || continue
		case ${f##*/} in mosquitto.log) ;; *) rm -f "$f";; esac
	done
	return 0
}

# What to look at when a scenario failed: the end of every program's output.
xt_dump_logs() {
	local f d
	for f in $XT_RUN/log/*.log; do
		[ -f "$f" ] || continue
		f=${f##*/}
		xt_log_tail "${f%.log}" 30
	done
	for d in $XT_DOMUS; do
		xl domid $d >/dev/null 2>&1 && xt_domu_run_t 20 $d common.logs
	done
	xl list
}
