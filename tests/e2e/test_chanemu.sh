#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_chanemu.sh - the channel emulator behaves like the PV channel measured on Xen 4.17
# (shared xen-lab README, docs/testing.md). The other end-to-end tests rely on each fact
# checked here: a cooked tty echoes, a raw one is byte-exact, the backlog waits for the
# guest's next write, one client at a time, bytes toward the DomU die with their client,
# the socket vanishes and comes back, garbage can be injected.
#
# The Dom0 side is socat (raw_connect); the DomU side is this shell holding the tty open
# on a file descriptor, as the lab's domU script does with `exec 3<>/dev/hvc1`.

. "$(dirname "$0")/lib.sh" "$@"

command -v socat > /dev/null || skip "socat is not installed (apt-get install socat)"
[ -x "$B/tests/chanemu" ] || fail "$B/tests/chanemu is missing: make B=$B $B/tests/chanemu"

# domu_read FD N FILE: the DomU reads N bytes from the tty on FD into FILE (in the background).
domu_read() {
	head -c "$2" <&"$1" > "$3" &
	_track $!
	DOMU_READER=$!
}

# bytes STRING: a file in $T holding printf's rendering of STRING; prints its path.
bytes() {
	local f
	f=$(mktemp "$T/bytes.XXXXXX")
	printf "$1" > "$f"
	echo "$f"
}

# assert_bytes FILE STRING: FILE holds exactly printf's rendering of STRING.
assert_bytes() {
	local want
	want=$(bytes "$2")
	cmp -s "$1" "$want" ||
		fail "$(basename "$1"): expected $(od -An -c "$want" | tr -s ' '), got $(od -An -c "$1" | tr -s ' ')"
}

# tty_has FLAG: `stty -a` on the DomU tty lists FLAG (e.g. icanon, or -icanon when it is off).
tty_has() {
	local s
	s=$(stty -F "$HVC" -a)
	s=" ${s//[$'\n';]/ } "
	[[ $s == *" $1 "* ]]
}

backlog_is() {
	[ "$(chan_counter "$1" backlog)" -eq "$2" ]
}

clients_connected() {
	count_at_least "$T/chan-$1.log" "$2" "chanemu: client connected"
}

clients_gone() {
	count_at_least "$T/chan-$1.log" "$2" "chanemu: client gone"
}

HVC=$T/hvc-a
SOCK=$T/chan-a.sock
start_channel a
[ -S "$SOCK" ] || fail "no socket at $SOCK"
[ -L "$HVC" ] && [ -c "$HVC" ] || fail "$HVC is not a symlink to a tty"

echo "-- a fresh tty is cooked: Dom0's bytes come back as echo, CR/LF are translated"
raw_connect e "$SOCK"
raw_send e "$(bytes 'hello\n')"
wait_for 10 size_is "$T/raw-e.out" 7
assert_bytes "$T/raw-e.out" 'hello\r\n'
raw_send e "$(bytes 'a\rb\n')"
wait_for 10 size_is "$T/raw-e.out" 13
assert_bytes "$T/raw-e.out" 'hello\r\na\r\nb\r\n'
# The DomU opens its tty only now: the line discipline kept the lines, with CR made LF.
exec 3<> "$HVC"
domu_read 3 10 "$T/domu-cooked.bin"
wait "$DOMU_READER"
assert_bytes "$T/domu-cooked.bin" 'hello\na\nb\n'
printf 'x\n' >&3
wait_for 10 size_is "$T/raw-e.out" 16
assert_bytes "$T/raw-e.out" 'hello\r\na\r\nb\r\nx\r\n'

echo "-- raw with echo off: all 256 byte values, byte-exact both ways"
stty -F "$HVC" raw -echo
fmt=
for i in {0..255}; do printf -v oct '\\%03o' "$i"; fmt+=$oct; done
for r in 1 2 3 4; do printf "$fmt"; done > "$T/special.bin"
for r in {1..64}; do printf '\000\n\r\021\023\r\n\000\003\004\032\177\377'; done >> "$T/special.bin"
assert_eq "$(file_size "$T/special.bin")" 1856 "test data size"
domu_read 3 1856 "$T/domu-in.bin"
raw_send e "$T/special.bin"
wait "$DOMU_READER"
cmp "$T/domu-in.bin" "$T/special.bin" || fail "Dom0 -> DomU was not byte-exact"
cat "$T/special.bin" >&3
wait_for 10 size_is "$T/raw-e.out" $((16 + 1856))
tail -c 1856 "$T/raw-e.out" > "$T/dom0-in.bin"
cmp "$T/dom0-in.bin" "$T/special.bin" || fail "DomU -> Dom0 was not byte-exact (or echo came back)"
raw_close e
wait_for 10 clients_gone a 1

echo "-- the DomU closing and reopening its tty does not hang the channel up"
exec 3>&-
exec 3<> "$HVC"
raw_connect r "$SOCK"
printf 'reopened\n' >&3
wait_for 10 size_is "$T/raw-r.out" 9
assert_bytes "$T/raw-r.out" 'reopened\n'
raw_close r
wait_for 10 clients_gone a 2

echo "-- the backlog is kept, but delivered only when the guest writes again"
printf 'early1\n' >&3
wait_for 10 backlog_is a 7
up0=$(chan_counter a up)
raw_connect x "$SOCK"
wait_for 10 clients_connected a 3
assert_file_contains "$T/chan-a.log" "client connected (7 bytes of backlog held)"
assert_eq "$(chan_counter a up)" "$up0" "bytes delivered while the backlog is held"
raw_close x
assert_eq "$(file_size "$T/raw-x.out")" 0 "bytes client x got"
wait_for 10 clients_gone a 3
printf 'early2\n' >&3
wait_for 10 backlog_is a 14
raw_connect y "$SOCK"
wait_for 10 clients_connected a 4
assert_eq "$(chan_counter a up)" "$up0" "bytes delivered while the backlog is held"
printf 'live\n' >&3
wait_for 10 size_is "$T/raw-y.out" 19
assert_bytes "$T/raw-y.out" 'early1\nearly2\nlive\n'
raw_close y
wait_for 10 clients_gone a 4

echo "-- one client at a time; the next one gets only what is written after the first left"
raw_connect A "$SOCK"
wait_for 10 clients_connected a 5
raw_connect B "$SOCK"		# connect() succeeds: B waits in the listen queue
printf 'msg1\n' >&3
wait_for 10 size_is "$T/raw-A.out" 5
assert_eq "$(chan_counter a clients)" 5 "clients accepted"
raw_close A
wait_for 10 clients_connected a 6
printf 'msg2\n' >&3
wait_for 10 size_is "$T/raw-B.out" 5
assert_bytes "$T/raw-A.out" 'msg1\n'
assert_bytes "$T/raw-B.out" 'msg2\n'
raw_close B
wait_for 10 clients_gone a 6

echo "-- bytes toward the DomU are lost when the client closes before the guest read them"
down0=$(chan_counter a down)
raw_connect l "$SOCK"
raw_send l "$(bytes 'lost-bytes\n')"
wait_for 10 eval '[ "$(chan_counter a down)" -eq $((down0 + 11)) ]'
raw_close l
wait_for 10 clients_gone a 7
stty -F "$HVC" min 0 time 0	# reads return at once: look at what is queued
assert_eq "$(head -c 100 <&3 | wc -c)" 0 "bytes left for the DomU"
stty -F "$HVC" min 1 time 0
raw_connect m "$SOCK"
domu_read 3 6 "$T/domu-after.bin"
raw_send m "$(bytes 'after\n')"
wait "$DOMU_READER"
assert_bytes "$T/domu-after.bin" 'after\n'
raw_close m
wait_for 10 clients_gone a 8

echo "-- drop: the client sees EOF, the next one is served"
raw_connect d "$SOCK"
chan_ctl a drop
raw_wait_gone d
raw_connect d2 "$SOCK"
printf 'next\n' >&3
wait_for 10 size_is "$T/raw-d2.out" 5
raw_close d2
wait_for 10 clients_gone a 10

echo "-- a half-close ends the connection: the reply never reaches the client"
raw_connect h "$SOCK" -t 30	# socat would wait 30 s for the reply after its half-close
domu_read 3 5 "$T/domu-ping.bin"
raw_send h "$(bytes 'ping\n')"
wait "$DOMU_READER"
assert_bytes "$T/domu-ping.bin" 'ping\n'
raw_shutdown h
wait_for 10 clients_gone a 11
printf 'pong\n' >&3		# becomes backlog: discarded by the vanish below
raw_wait_gone h
assert_eq "$(file_size "$T/raw-h.out")" 0 "bytes the half-closed client got"

echo "-- vanish: EOF, the socket disappears and comes back; pending bytes are discarded"
raw_connect v "$SOCK"
chan_ctl a vanish 1
[ ! -e "$SOCK" ] || fail "the socket still exists during vanish"
raw_wait_gone v
if socat -u UNIX-CONNECT:"$SOCK" - > /dev/null 2> "$T/vanish-connect.err"; then
	fail "connect succeeded while the domain was gone"
fi
assert_file_contains "$T/vanish-connect.err" "No such file or directory"
wait_for 10 test -S "$SOCK"
printf 'stale\n' >&3
wait_for 10 backlog_is a 6
chan_ctl a vanish 0.2
wait_for 10 test -S "$SOCK"
raw_connect w "$SOCK"
printf 'fresh\n' >&3
wait_for 10 size_is "$T/raw-w.out" 6
assert_bytes "$T/raw-w.out" 'fresh\n'
raw_close w

echo "-- destroy and create"
chan_ctl a destroy
[ ! -e "$SOCK" ] || fail "the socket still exists after destroy"
chan_ctl a destroy
chan_ctl a create
[ -S "$SOCK" ] || fail "no socket after create"
raw_connect c "$SOCK"
printf 'created\n' >&3
wait_for 10 size_is "$T/raw-c.out" 8
assert_bytes "$T/raw-c.out" 'created\n'

echo "-- garbage both ways"
chan_ctl a garbage-up 1000
wait_for 10 size_is "$T/raw-c.out" 1008
domu_read 3 500 "$T/garbage-down.bin"
chan_ctl a garbage-down 500
wait "$DOMU_READER"
distinct=$(tail -c 1000 "$T/raw-c.out" | od -An -v -tu1 | tr -s ' ' '\n' | sort -u | wc -l)
[ "$distinct" -gt 200 ] || fail "garbage-up is not random: $distinct distinct byte values"
r=$(chan_ctl_result a garbage-up lots)
[[ $r == usage:* ]] || fail "garbage-up lots: expected a usage message, got '$r'"
raw_close c

echo "-- tty-reset gives the tty its fresh, cooked settings back"
tty_has -icanon || fail "the tty should be raw here"
chan_ctl a tty-reset
tty_has icanon || fail "tty-reset left the tty raw"
tty_has echo || fail "tty-reset left echo off"

echo "-- --backlog drop: what the DomU writes with no client connected is discarded"
start_channel b --backlog drop
exec 4<> "$T/hvc-b"
stty -F "$T/hvc-b" raw -echo
printf 'old\n' >&4
wait_for 10 eval '[ "$(chan_counter b up-dropped)" -eq 4 ]'
raw_connect n "$T/chan-b.sock"
printf 'new\n' >&4
wait_for 10 size_is "$T/raw-n.out" 4
assert_bytes "$T/raw-n.out" 'new\n'
raw_close n

echo "-- rate limits keep the data exact"
start_channel c --rate-up 400000 --rate-down 400000 --backlog-max 1000
exec 5<> "$T/hvc-c"
stty -F "$T/hvc-c" raw -echo
head -c 65536 /dev/urandom > "$T/random.bin"
raw_connect rc "$T/chan-c.sock"
domu_read 5 65536 "$T/rate-down.bin"
raw_send rc "$T/random.bin"
wait "$DOMU_READER"
cmp "$T/rate-down.bin" "$T/random.bin" || fail "rate-limited Dom0 -> DomU was not exact"
cat "$T/random.bin" >&5 &
_track $!
wait_for 20 size_is "$T/raw-rc.out" 65536
cmp "$T/raw-rc.out" "$T/random.bin" || fail "rate-limited DomU -> Dom0 was not exact"
raw_close rc

echo "-- SIGTERM: clean exit, the socket, the tty link and the FIFO are removed"
exec 3>&- 4>&- 5>&-
stop_channel a
[ ! -e "$SOCK" ] && [ ! -L "$HVC" ] && [ ! -e "$T/ctl-a" ] || fail "chanemu left files behind"
stop_all_checked
echo "ok"
