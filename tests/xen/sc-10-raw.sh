# SPDX-License-Identifier: MIT
# Scenario "raw": the bare channel of alpha, with no xenmq program. Asserts
# that random data crosses it byte-exact each way, and measures (for the
# report, never asserted):
#   raw.up      DomU -> dom0 bytes/s, dd into /dev/hvcN, socat into a file
#   raw.down    dom0 -> DomU bytes/s, socat from a FIFO, dd and head -c in the DomU
#               (timed in the DomU from its first byte to its last)
#   raw.rtt     1-byte round trip, dom0 shell loop <-> cat in the DomU
# Timing comes from /proc/uptime (10 ms) over transfers of a few seconds.

XT_RAW_UP=${XT_RAW_UP:-4194304}
XT_RAW_DOWN=${XT_RAW_DOWN:-1048576}
XT_RAW_RTT=${XT_RAW_RTT:-300}

xt__size_ge() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

raw_up() {
	local d=$1 out=$XT_RUN/tmp/up.bin sock pid seq t0 dt sha
	sock=$(xt_chan_sock $d)
	xt_domu_run $d raw.prep $XT_RAW_UP || { xt_fail "$d: random data ready"; return; }
	rm -f $out
	socat -u UNIX-CONNECT:$sock CREATE:$out &
	pid=$!
	seq=$(xt_domu_send $d raw.send)
	xt_wait_for 30 xt__size_ge $out 1
	t0=$(xt_now)
	xt_wait_for 120 xt__size_ge $out $XT_RAW_UP
	dt=$(xt_since $t0)
	xt_domu_wait $d $seq 60
	xt_domu_run $d raw.send_stop
	kill $pid 2>/dev/null
	sha=$(sha256sum $out | cut -d' ' -f1)
	xt_expect "$d -> dom0: $XT_RAW_UP random bytes, byte-exact" \
		"$(stat -c %s $out) $sha" "$XT_RAW_UP $(xt_domu_get $d sha)"
	xt_measure raw.up "$(xt_rate $XT_RAW_UP $dt)" B/s \
		"DomU->dom0, $XT_RAW_UP bytes in ${dt}s (dd | hvc, socat)"
	rm -f $out
}

raw_down() {
	local d=$1 in=$XT_RUN/tmp/down.bin fifo=$XT_RUN/tmp/down.fifo sock pid t
	sock=$(xt_chan_sock $d)
	dd if=/dev/urandom of=$in bs=65536 count=$((XT_RAW_DOWN / 65536)) 2>/dev/null
	xt_domu_run $d raw.recv_start $XT_RAW_DOWN || { xt_fail "$d: receiver ready"; return; }
	rm -f $fifo
	mkfifo $fifo
	socat -u - UNIX-CONNECT:$sock < $fifo &
	pid=$!
	exec 7> $fifo
	# the connection stays open until the DomU has read everything: QEMU
	# drops what is still on its way when the client closes
	dd if=$in bs=65536 2>/dev/null >&7
	xt_domu_run_t 120 $d raw.recv_wait
	exec 7>&-
	xt_wait_for 5 xt__gone $pid || kill $pid 2>/dev/null
	xt_expect "dom0 -> $d: $XT_RAW_DOWN random bytes, byte-exact" \
		"$(xt_domu_get $d sha)" "$(sha256sum $in | cut -d' ' -f1)"
	t=$(xt_domu_get $d time)
	[ -n "$t" ] && xt_measure raw.down \
		"$(xt_rate $((XT_RAW_DOWN - 1)) $t)" B/s \
		"dom0->DomU, $XT_RAW_DOWN bytes in ${t}s (socat | hvc, head -c)"
	rm -f $in $fifo
}

raw_rtt() {
	local d=$1 sock in=$XT_RUN/tmp/rtt.in out=$XT_RUN/tmp/rtt.out pid i c t0 dt
	sock=$(xt_chan_sock $d)
	xt_domu_run $d raw.echo_start || { xt_fail "$d: echo loop ready"; return; }
	rm -f $in $out
	mkfifo $in $out
	socat UNIX-CONNECT:$sock - < $in > $out &
	pid=$!
	exec 7> $in
	exec 8< $out
	i=0
	while [ $i -lt 10 ]; do		# warm up
		printf x >&7
		c=
		read -r -n 1 -t 10 -u 8 c
		[ "$c" = x ] || break
		i=$((i + 1))
	done
	i=0
	t0=$(xt_now)
	while [ $i -lt $XT_RAW_RTT ]; do
		printf y >&7
		c=
		read -r -n 1 -t 10 -u 8 c
		[ "$c" = y ] || break
		i=$((i + 1))
	done
	dt=$(xt_since $t0)
	exec 7>&- 8<&-
	xt_wait_for 5 xt__gone $pid || kill $pid 2>/dev/null
	xt_domu_run $d raw.echo_stop
	xt_expect "$d: $XT_RAW_RTT bytes echoed back one by one" "$i" "$XT_RAW_RTT"
	[ "$i" -gt 0 ] && xt_measure raw.rtt \
		"$(awk -v n=$i -v t=$dt 'BEGIN { printf "%.3f", t / n * 1000 }')" \
		ms "1-byte round trip, average of $i (shell loop in dom0, cat in the DomU)"
	rm -f $in $out
}

raw_dom0() {
	mkdir -p $XT_RUN/tmp
	raw_up alpha
	raw_down alpha
	raw_rtt alpha
}

raw_domu() {
	case $1 in
	prep)		# SIZE: random data to send, its SHA-256 as a result
		dd if=/dev/urandom of=$XT_RUN/tmp/up.bin bs=65536 count=$(($2 / 65536)) 2>/dev/null
		xt_put sha "$(sha256sum $XT_RUN/tmp/up.bin | cut -d' ' -f1)"
		;;
	send)		# writes the data prepared, keeps the tty open until send_stop
		# (bytes still in the tty's buffer at the last close may be lost)
		xt_chan_find || return 1
		rm -f $XT_RUN/tmp/send.done
		xt_bg send sh -c '. /xt/lib-common.sh
			exec 3<>"$1" || exit 1
			stty -F "$1" raw -echo || exit 1
			t0=$(xt_now)
			dd if='$XT_RUN'/tmp/up.bin bs=65536 2>/dev/null >&3
			echo "dd wrote $(stat -c %s '$XT_RUN'/tmp/up.bin) bytes in $(xt_since $t0)s"
			touch '$XT_RUN'/tmp/send.done
			exec sleep 3600' send "$XT_HVC"
		xt_wait_for 110 test -f $XT_RUN/tmp/send.done
		;;
	send_stop)
		xt_log_tail send 5
		xt_kill send
		rm -f $XT_RUN/tmp/up.bin $XT_RUN/tmp/send.done
		;;
	recv_start)	# SIZE: a reader in the background; timed from its first byte
		xt_chan_find || return 1
		rm -f $XT_RUN/tmp/recv.*
		xt_bg recv sh -c '. /xt/lib-common.sh
			exec 3<>"$1" || exit 1
			stty -F "$1" raw -echo || exit 1
			touch '$XT_RUN'/tmp/recv.ready
			dd bs=1 count=1 <&3 > '$XT_RUN'/tmp/recv.bin 2>/dev/null
			t0=$(xt_now)
			head -c $(($2 - 1)) <&3 >> '$XT_RUN'/tmp/recv.bin
			xt_since $t0 > '$XT_RUN'/tmp/recv.time
			exec sleep 3600' recv "$XT_HVC" "$2"
		xt_wait_for 10 test -f $XT_RUN/tmp/recv.ready
		;;
	recv_wait)
		xt_wait_for 110 test -s $XT_RUN/tmp/recv.time
		echo "raw.recv: $(stat -c %s $XT_RUN/tmp/recv.bin) bytes in $(cat $XT_RUN/tmp/recv.time)s"
		xt_put sha "$(sha256sum $XT_RUN/tmp/recv.bin | cut -d' ' -f1)"
		xt_put time "$(cat $XT_RUN/tmp/recv.time 2>/dev/null)"
		xt_kill recv
		rm -f $XT_RUN/tmp/recv.*
		;;
	echo_start)
		xt_chan_find || return 1
		rm -f $XT_RUN/tmp/echo.ready
		xt_bg echo sh -c 'exec 3<>"$1" || exit 1
			stty -F "$1" raw -echo || exit 1
			touch '$XT_RUN'/tmp/echo.ready
			exec cat <&3 >&3' echo "$XT_HVC"
		xt_wait_for 10 test -f $XT_RUN/tmp/echo.ready
		;;
	echo_stop)
		xt_kill echo
		;;
	*)	return 127;;
	esac
}
