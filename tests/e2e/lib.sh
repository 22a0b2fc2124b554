# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# lib.sh - the harness of the end-to-end tests. Every tests/e2e/test_*.sh sources it first:
#
#   . "$(dirname "$0")/lib.sh" "$@"
#
# It gives each test a temporary directory $T for sockets, configuration and logs, starts the
# real parts (mosquitto, the channel emulator, xenmqd, xenmq-agent) with their logs in $T,
# and on exit stops every process the test started, looks for sanitizer reports in the logs,
# and keeps $T only when the test failed (or E2E_KEEP=1). The binaries come from $B: the
# test's first argument, else $B from the environment, else "build".
#
# Rules for tests: wait for conditions with wait_for, never with a bare sleep; assert what a
# user would see (mosquitto_sub output, files); end with stop_all_checked so that a daemon
# that crashes or leaks at exit fails the test. Exit 77 (skip MSG) when the test cannot run
# here; run.sh reports it as skipped.

set -eEu -o pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E_DIR/../.." && pwd)
B=${1:-${B:-build}}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${E2E_TMPDIR:-${TMPDIR:-/tmp}}/xenmq-$TEST_NAME.XXXXXX")
export B T

# Sanitizer reports go to the logs, where check_sanitizers finds them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

_PIDS=()                      # every background process the test started
declare -A _AGENT_PID=() _CHAN_PID=() _SUB_PID=() _SUB_FILTER=() _RAW_PID=() _RAW_HOLD=()
_CHANNELS=()                  # domain names given to start_channel, in order
XENMQD_PID=
MQ_PID=
# mawk reads whole blocks from a pipe unless told to read lines as they come.
case $(awk -W version 2>&1) in *mawk*) _AWK=(awk -W interactive) ;; *) _AWK=(awk) ;; esac

# Remembers a PID so that the exit handler stops it.
_track() {
	_PIDS+=("$1")
}

# True while PID is a live (not zombie) child of this shell: a recycled PID is never signalled.
_alive() {
	local stat
	[[ ${1:-} =~ ^[1-9][0-9]*$ ]] || return 1
	if [ -r "/proc/$1/stat" ]; then
		stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
		stat=${stat##*) }
		set -- "$1" $stat
		[ "$2" != Z ] && [ "$3" = "$$" ]
	else
		kill -0 "$1" 2>/dev/null
	fi
}

# Sends SIGTERM to the given PIDs, waits up to 10 s, then SIGKILLs what is left.
_terminate() {
	local p i left
	for p in "$@"; do _alive "$p" && kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 100; i++)); do
		left=0
		for p in "$@"; do _alive "$p" && left=1; done
		[ $left = 0 ] && return 0
		sleep 0.1
	done
	for p in "$@"; do
		_alive "$p" && { echo "lib.sh: PID $p ignored SIGTERM, killing it" >&2; kill -KILL "$p"; }
	done
	return 0
}

# Prints where the failure happened, for the ERR trap (set -e) and fail.
_where() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		case ${BASH_SOURCE[$i]} in */lib.sh) continue ;; esac
		echo "${BASH_SOURCE[$i]##*/}:${BASH_LINENO[$((i - 1))]}"
		return
	done
}

_on_err() {
	echo "FAIL: $TEST_NAME: command failed (status $1) at $(_where): $2" >&2
	: > "$T/.failed"
}

_on_exit() {
	local rc=$? p
	set +eE
	trap - ERR
	[ -e "$T/.failed" ] && [ $rc = 0 ] && rc=1
	[ ${#_PIDS[@]} -gt 0 ] && _terminate "${_PIDS[@]}"
	for p in "${_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ $rc = 0 ] || [ $rc = 77 ]; then
		check_sanitizers || rc=1
	fi
	if [ $rc != 0 ] && [ $rc != 77 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "logs kept in $T" >&2
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap '_on_err $? "$BASH_COMMAND"' ERR
trap _on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---- verdicts ---------------------------------------------------------------------------

# Fails the test with a message (also from a subshell: the exit handler sees the mark).
fail() {
	echo "FAIL: $TEST_NAME: $* (at $(_where))" >&2
	: > "$T/.failed"
	trap - ERR
	exit 1
}

# Ends the test as skipped: it cannot run here (run.sh counts it apart).
skip() {
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

# assert_eq ACTUAL EXPECTED [WHAT]: the two strings are equal.
assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

# assert_file_contains FILE STRING: FILE contains STRING (a fixed string, not a pattern).
assert_file_contains() {
	[ -e "$1" ] || fail "$1 does not exist"
	grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2'; it holds: $(head -c 2000 "$1")"
}

# assert_file_lacks FILE STRING: FILE (if it exists) does not contain STRING.
assert_file_lacks() {
	[ -e "$1" ] || return 0
	! grep -qF -- "$2" "$1" || fail "$(basename "$1") contains '$2': $(grep -F -- "$2" "$1" | head -5)"
}

# assert_count FILE N [STRING]: FILE has N lines (N lines containing STRING, if given).
assert_count() {
	local n
	if [ $# -ge 3 ]; then
		n=$(grep -cF -- "$3" "$1" || true)
	else
		n=$(wc -l < "$1")
	fi
	[ "$n" -eq "$2" ] || fail "$(basename "$1"): expected $2 lines${3:+ with '$3'}, got $n: $(head -c 2000 "$1")"
}

# wait_for TIMEOUT CMD...: runs CMD every 0.1 s until it succeeds; fails after TIMEOUT seconds.
wait_for() {
	local end=$((SECONDS + $1 + 1))	# SECONDS counts whole seconds: never cut a wait short
	shift
	until "$@"; do
		((SECONDS < end)) || fail "timed out waiting for: $*"
		sleep 0.1
	done
}

# file_size FILE: its size in bytes, 0 when it does not exist.
file_size() {
	if [ -e "$1" ]; then wc -c < "$1"; else echo 0; fi
}

# size_is FILE N: true when FILE holds exactly N bytes (for wait_for).
size_is() {
	[ "$(file_size "$1")" -eq "$2" ]
}

# size_at_least FILE N: true when FILE holds N bytes or more (for wait_for).
size_at_least() {
	[ "$(file_size "$1")" -ge "$2" ]
}

# count_at_least FILE N STRING: true when N or more lines of FILE contain STRING (for wait_for).
count_at_least() {
	[ "$(grep -cF -- "$3" "$1" 2>/dev/null || true)" -ge "$2" ]
}

# check_sanitizers: fails if a log in $T holds an ASan, LSan, UBSan or TSan report. Runs at exit.
check_sanitizers() {
	local hits
	hits=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|runtime error:|SUMMARY: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer' \
		"$T"/*.log "$T"/*.err 2>/dev/null || true)
	[ -z "$hits" ] && return 0
	echo "FAIL: $TEST_NAME: sanitizer report in: $hits" >&2
	grep -hE -A 20 'ERROR: |runtime error:' $hits | head -60 >&2 || true
	: > "$T/.failed"
	return 1
}

# _stop_checked PID WHAT: SIGTERM, wait; fails unless it exits with status 0 within 10 s.
_stop_checked() {
	local pid=$1 what=$2 rc=0
	[ -n "$pid" ] || return 0
	_terminate "$pid"
	wait "$pid" 2>/dev/null || rc=$?
	case $rc in
	0) ;;
	127) ;; # already waited for: nothing left to learn
	*)
		((rc > 128)) && fail "$what was killed by signal $((rc - 128)) when stopped"
		fail "$what exited with status $rc when stopped"
		;;
	esac
}

# ---- mosquitto ---------------------------------------------------------------------------

# start_mosquitto [persist]: a real mosquitto on $T/mosquitto.sock (exported as MQ_SOCK), log
# $T/mosquitto.log; "persist" keeps retained messages and sessions in $T/mosquitto-db/ across
# stop_mosquitto/start_mosquitto. Returns once a client can connect.
start_mosquitto() {
	MQ_SOCK=$T/mosquitto.sock
	export MQ_SOCK
	{
		echo "listener 0 $MQ_SOCK"
		echo "allow_anonymous true"
		[ "$(id -u)" = 0 ] && echo "user root"
		if [ "${1:-}" = persist ]; then
			mkdir -p "$T/mosquitto-db"
			echo "persistence true"
			echo "persistence_location $T/mosquitto-db/"
		fi
		echo "log_dest stderr"
		echo "log_type all"
	} > "$T/mosquitto.conf"
	rm -f "$MQ_SOCK"
	mosquitto -c "$T/mosquitto.conf" >> "$T/mosquitto.log" 2>&1 &
	MQ_PID=$!
	_track $MQ_PID
	wait_for 10 _mosquitto_up
}

_mosquitto_up() {
	_alive "$MQ_PID" || fail "mosquitto exited: $(tail -5 "$T/mosquitto.log")"
	[ -S "$MQ_SOCK" ] && mosquitto_pub --unix "$MQ_SOCK" -t xenmq-test/probe -n 2>/dev/null
}

# stop_mosquitto: stops it (saving its database when persistent); MQ_SOCK stays for a restart.
stop_mosquitto() {
	_stop_checked "$MQ_PID" mosquitto
	MQ_PID=
}

# pub ARGS...: mosquitto_pub on the test's mosquitto.
pub() {
	mosquitto_pub --unix "$MQ_SOCK" "$@"
}

# sub_bg FILE ARGS...: mosquitto_sub ARGS in the background, its messages in FILE (its stderr in
# FILE.err); returns once it is subscribed. SUB_PID is its PID; see sub_wait.
sub_bg() {
	local file=$1
	shift
	rm -f "$file" "$file.ready" "$file.fifo"
	mkfifo "$file.fifo"
	# -d tells when the SUBACK came; the filter drops the debug lines and marks readiness.
	"${_AWK[@]}" -v ready="$file.ready" '
		/^Subscribed \(mid: [0-9]+\): / { printf "" > ready; close(ready); next }
		/^Client .* (sending|received) [A-Z]+/ { next }
		{ print; fflush() }' < "$file.fifo" > "$file" &
	_SUB_FILTER[$file]=$!
	_track $!
	stdbuf -oL mosquitto_sub --unix "$MQ_SOCK" -d "$@" > "$file.fifo" 2> "$file.err" &
	SUB_PID=$!
	_SUB_PID[$file]=$!
	_track $!
	wait_for 10 _sub_ready "$file"
}

_sub_ready() {
	[ -e "$1.ready" ] && return 0
	_alive "${_SUB_PID[$1]}" && return 1
	# It may have ended already (-C 1 and a retained message): let the filter finish reading.
	wait "${_SUB_FILTER[$1]}" 2>/dev/null || true
	[ -e "$1.ready" ] || fail "mosquitto_sub for $(basename "$1") exited: $(cat "$1.err")"
}

# sub_wait FILE [TIMEOUT]: waits until sub_bg's mosquitto_sub ends (-C/-W) and FILE is complete;
# returns its exit status.
sub_wait() {
	local file=$1 rc=0
	wait_for "${2:-20}" _dead "${_SUB_PID[$file]}"
	wait "${_SUB_PID[$file]}" || rc=$?
	wait "${_SUB_FILTER[$file]}" || true
	return $rc
}

_dead() {
	! _alive "$1"
}

# wait_status NAME online|offline: waits (20 s) until retained xen/NAME/status says so (the
# payload is the word itself, or JSON holding it as a string).
wait_status() {
	wait_for 20 _status_is "$1" "$2"
}

_status_is() {
	local v
	v=$(mosquitto_sub --unix "$MQ_SOCK" -t "xen/$1/status" -C 1 -W 1 2>/dev/null || true)
	[ "$v" = "$2" ] || [[ $v == *\"$2\"* ]]
}

# ---- the channel emulator ---------------------------------------------------------------

# start_channel NAME [CHANEMU OPTIONS...]: an emulated PV channel for domain NAME: the Dom0
# socket $T/chan-NAME.sock, the DomU tty $T/hvc-NAME, the control FIFO $T/ctl-NAME, the log
# $T/chan-NAME.log. Returns once it listens.
start_channel() {
	local name=$1
	shift
	rm -f "$T/chan-$name.ready"
	"$B/tests/chanemu" --socket "$T/chan-$name.sock" --pty "$T/hvc-$name" \
		--control "$T/ctl-$name" --ready-file "$T/chan-$name.ready" "$@" \
		>> "$T/chan-$name.log" 2>&1 &
	_CHAN_PID[$name]=$!
	_track $!
	[[ " ${_CHANNELS[*]} " == *" $name "* ]] || _CHANNELS+=("$name")
	wait_for 10 _chan_ready "$name"
}

_chan_ready() {
	[ -s "$T/chan-$1.ready" ] && return 0
	_alive "${_CHAN_PID[$1]}" || fail "chanemu $1 exited: $(tail -3 "$T/chan-$1.log")"
	return 1
}

# chan_ctl NAME COMMAND...: runs a control command (garbage-up N, garbage-down N, drop,
# vanish SECONDS, destroy, create, tty-reset) and returns once the emulator has done it.
chan_ctl() {
	local r
	r=$(chan_ctl_result "$@")
	[ "$r" = ok ] || fail "channel $1: '${*:2}': $r"
}

# chan_ctl_result NAME COMMAND...: runs the command like chan_ctl; prints "ok" or the error.
chan_ctl_result() {
	local name=$1 log=$T/chan-$1.log n line
	shift
	n=$(grep -c '^chanemu: ctl #' "$log" || true)
	timeout 5 bash -c 'echo "$1" > "$2"' _ "$*" "$T/ctl-$name" ||
		fail "cannot write to the control FIFO of channel $name"
	wait_for 10 grep -q "^chanemu: ctl #$((n + 1)) " "$log"
	line=$(grep "^chanemu: ctl #$((n + 1)) " "$log")
	echo "${line#*"$*: "}"
}

# chan_counters NAME: prints the emulator's counters line ("up N down N up-dropped N ...").
chan_counters() {
	local log=$T/chan-$1.log n
	n=$(grep -c '^chanemu: up ' "$log" || true)
	kill -USR1 "${_CHAN_PID[$1]}"
	wait_for 10 count_at_least "$log" $((n + 1)) "chanemu: up "
	grep '^chanemu: up ' "$log" | tail -1 | sed 's/^chanemu: //'
}

# chan_counter NAME KEY: one counter (up, down, up-dropped, down-dropped, clients, backlog).
chan_counter() {
	chan_counters "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'
}

# domain_counter DOMAIN KEY: one of xenmqd's counters for DOMAIN, from its retained JSON on
# xenmq/broker/domain/DOMAIN (every second in these tests); empty while there is none.
domain_counter() {
	mosquitto_sub --unix "$MQ_SOCK" -t "xenmq/broker/domain/$1" -C 1 -W 2 2>/dev/null |
		sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}

# domain_counter_is, domain_counter_over, domain_counter_at_least DOMAIN KEY N: the counter
# is N, over N, N or more (for wait_for).
domain_counter_is() {
	[ "$(domain_counter "$1" "$2")" = "$3" ]
}

domain_counter_over() {
	local v
	v=$(domain_counter "$1" "$2")
	[ -n "$v" ] && [ "$v" -gt "$3" ]
}

domain_counter_at_least() {
	local v
	v=$(domain_counter "$1" "$2")
	[ -n "$v" ] && [ "$v" -ge "$3" ]
}

# stop_channel NAME: stops the emulator; fails unless it exits cleanly.
stop_channel() {
	_stop_checked "${_CHAN_PID[$1]:-}" "chanemu $1"
	_CHAN_PID[$1]=
}

# raw_connect ID SOCKET [SOCAT_OPTION...]: a raw Dom0-side client (socat) on SOCKET. What it
# receives goes to $T/raw-ID.out; raw_send writes to it; it stays connected until raw_close.
raw_connect() {
	local id=$1 sock=$2
	shift 2
	rm -f "$T/raw-$id.in" "$T/raw-$id.out" "$T/raw-$id.err"
	mkfifo "$T/raw-$id.in"
	socat -d -d "$@" UNIX-CONNECT:"$sock" STDIO < "$T/raw-$id.in" > "$T/raw-$id.out" \
		2> "$T/raw-$id.err" &
	_RAW_PID[$id]=$!
	_track $!
	# socat's input must not end between two raw_send: a child of ours holds the FIFO open
	# (the shell itself must not, or every later child would inherit the descriptor).
	sleep infinity > "$T/raw-$id.in" &
	_RAW_HOLD[$id]=$!
	_track $!
	wait_for 10 _raw_connected "$id"
}

_raw_connected() {
	grep -qs 'starting data transfer loop' "$T/raw-$1.err" && return 0
	_alive "${_RAW_PID[$1]}" || fail "raw client $1 could not connect: $(cat "$T/raw-$1.err")"
	return 1
}

# raw_send ID FILE: sends FILE's bytes on raw client ID, which must still be connected.
raw_send() {
	_alive "${_RAW_PID[$1]}" || fail "raw client $1 is gone: $(tail -3 "$T/raw-$1.err")"
	# Opened read-write, the FIFO cannot block us even if socat just left.
	cat "$2" 1<> "$T/raw-$1.in" || fail "raw client $1: cannot send $2"
}

# raw_shutdown ID: ends raw client ID's input: socat half-closes the connection (SHUT_WR).
raw_shutdown() {
	_terminate "${_RAW_HOLD[$1]}"
	wait "${_RAW_HOLD[$1]}" 2>/dev/null || true
}

# raw_close ID: raw_shutdown, then waits until socat has ended (the channel drops a client
# that half-closes, as QEMU does).
raw_close() {
	raw_shutdown "$1"
	wait_for 10 _dead "${_RAW_PID[$1]}"
	wait "${_RAW_PID[$1]}" 2>/dev/null || true
}

# raw_wait_gone ID: waits until raw client ID has ended by itself (the channel closed it).
raw_wait_gone() {
	wait_for 10 _dead "${_RAW_PID[$1]}"
	_terminate "${_RAW_HOLD[$1]}"
}

# ---- xenmqd and the agent -----------------------------------------------------------------

# write_acl: the ACL file $T/acl (Mosquitto acl_file syntax) from stdin.
write_acl() {
	cat > "$T/acl"
}

# write_xenmqd_conf [LINE...]: $T/xenmqd.conf for mosquitto, the ACL $T/acl and every channel
# started so far; LINEs go before the domain blocks, except "@NAME LINE", which goes into
# domain NAME's block.
write_xenmqd_conf() {
	local name line
	[ -e "$T/acl" ] || : > "$T/acl"
	{
		echo "mosquitto ${MQ_SOCK:-$T/mosquitto.sock}"
		echo "acl_file $T/acl"
		for line in "$@"; do [[ $line == @* ]] || echo "$line"; done
		for name in "${_CHANNELS[@]}"; do
			echo
			echo "domain $name"
			echo "channel $T/chan-$name.sock"
			for line in "$@"; do
				[[ $line == "@$name "* ]] && echo "${line#"@$name "}"
			done
		done
		true
	} > "$T/xenmqd.conf"
}

# start_xenmqd [-v] [ARGS...]: xenmqd -c $T/xenmqd.conf (written first if missing), log
# $T/xenmqd.log, PID in XENMQD_PID. Returns once it is connected to every channel whose
# socket exists (XENMQD_NOWAIT=1: at once).
start_xenmqd() {
	local name
	declare -A before=()
	[ -e "$T/xenmqd.conf" ] || write_xenmqd_conf
	for name in "${_CHANNELS[@]}"; do
		before[$name]=$(grep -c '^chanemu: client connected' "$T/chan-$name.log" || true)
	done
	"$B/xenmqd" -c "$T/xenmqd.conf" "$@" >> "$T/xenmqd.log" 2>&1 &
	XENMQD_PID=$!
	export XENMQD_PID
	_track $!
	[ "${XENMQD_NOWAIT:-0}" = 1 ] && return 0
	for name in "${_CHANNELS[@]}"; do
		[ -S "$T/chan-$name.sock" ] || continue
		wait_for 20 _xenmqd_on "$T/chan-$name.log" $((before[$name] + 1))
	done
}

_xenmqd_on() {
	count_at_least "$1" "$2" "chanemu: client connected" && return 0
	_alive "$XENMQD_PID" || fail "xenmqd exited: $(tail -5 "$T/xenmqd.log")"
	return 1
}

# stop_xenmqd: SIGTERM; fails unless xenmqd exits with status 0.
stop_xenmqd() {
	_stop_checked "$XENMQD_PID" xenmqd
	XENMQD_PID=
}

# reload_xenmqd: SIGHUP (re-reads xenmqd.conf and the ACL).
reload_xenmqd() {
	kill -HUP "$XENMQD_PID"
}

# start_agent NAME [ARGS...]: xenmq-agent on $T/hvc-NAME serving $T/agent-NAME.sock, log
# $T/agent-NAME.log. Returns once its socket exists.
start_agent() {
	local name=$1
	shift
	# A socket left by an earlier agent of NAME would make the wait below meaningless.
	_alive "${_AGENT_PID[$name]:-}" || rm -f "$T/agent-$name.sock"
	"$B/xenmq-agent" --hvc "$T/hvc-$name" --socket "$T/agent-$name.sock" "$@" \
		>> "$T/agent-$name.log" 2>&1 &
	_AGENT_PID[$name]=$!
	_track $!
	wait_for 10 _agent_up "$name"
}

_agent_up() {
	[ -S "$T/agent-$1.sock" ] && return 0
	_alive "${_AGENT_PID[$1]}" || fail "xenmq-agent $1 exited: $(tail -5 "$T/agent-$1.log")"
	return 1
}

# stop_agent NAME: SIGTERM; fails unless the agent exits with status 0.
stop_agent() {
	_stop_checked "${_AGENT_PID[$1]:-}" "xenmq-agent $1"
	_AGENT_PID[$1]=
}

# url_agent NAME: the libxenmq URL of NAME's agent.
url_agent() {
	echo "agent:$T/agent-$1.sock"
}

# ---- numbered streams ---------------------------------------------------------------------------
# Tests that restart a part under traffic send ids 1, 2, 3... and check what arrived.

# feed NAME: writes 1, 2, 3... one a line, one every 20 ms, until $T/stop exists; the last id
# written is in $T/NAME.sent.
feed() {
	local i=0
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		echo "$i"
		echo "$i" > "$T/$1.sent.tmp"
		mv -f "$T/$1.sent.tmp" "$T/$1.sent"
		sleep 0.02
	done
}

# sent NAME: how many ids the feeder NAME has written so far.
sent() {
	local n
	n=$(cat "$T/$1.sent" 2>/dev/null || true)
	echo "${n:-0}"
}

# sent_at_least NAME N: for wait_for.
sent_at_least() {
	[ "$(sent "$1")" -ge "$2" ]
}

# ids FILE: the ids in FILE, one a line: lines "ID" or "TOPIC ID" (mosquitto_sub -v) give ID.
ids() {
	sed -e 's/^[^ ]* //' -e '/^[0-9][0-9]*$/!d' "$1"
}

# received_at_least FILE N: FILE holds N or more id lines.
received_at_least() {
	[ "$(ids "$1" | wc -l)" -ge "$2" ]
}

# all_received FILE N: every id 1..N is in FILE.
all_received() {
	[ "$(ids "$1" | awk -v n="$2" '$1 >= 1 && $1 <= n && !s[$1]++ { c++ } END { print c + 0 }')" \
		-eq "$2" ]
}

# check_ids FILE N WHAT [WINDOWS [LIMIT]]: the id lines of FILE are exactly 1..N, each at least
# once, with at most WINDOWS (1) times $INFLIGHT duplicates, a window per restart; every other
# line matches $OTHER (an extended regex of whole lines). LIMIT: up to this many missing ids
# are a known limit, reported as "LIMIT" rather than failed.
check_ids() {
	local file=$1 n=$2 what=$3 windows=${4:-1} known=${5:-0} r missing dups bad
	r=$(grep -vxE "${OTHER:-^$}" "$file" | sed 's/^[^ ]* //' | awk -v n="$n" '
		/^[0-9]+$/ && $1 >= 1 && $1 <= n { if (s[$1]++) d++; next }
		{ b++ }
		END { for (i = 1; i <= n; i++) if (!(i in s)) m++; print m + 0, d + 0, b + 0 }')
	read -r missing dups bad <<< "$r"
	echo "$what: $n messages, $missing missing, $dups duplicates, $bad malformed"
	[ "$bad" = 0 ] || fail "$what: lines of $(basename "$file") that are not ids 1..$n"
	[ "$dups" -le $((windows * ${INFLIGHT:?})) ] ||
		fail "$what: $dups duplicates, more than $windows window(s) of $INFLIGHT"
	[ "$missing" = 0 ] && return 0
	if [ "$missing" -le "$known" ]; then
		echo "LIMIT: $what: $missing messages in flight at a restart were lost"
		return 0
	fi
	fail "$what: $missing of $n messages lost"
}

# ---- rawframe as a DomU -------------------------------------------------------------------------
# tests/tools/rawframe speaks the channel protocol by hand on NAME's emulated hvc: a DomU that
# sends what it is told, acknowledges only when told, and prints every frame it receives.
declare -A RF_PID=() RF_HOLD=()

# rf_start NAME: rawframe on NAME's hvc; commands go in with rf, what it receives is in
# $T/rf-NAME.out. Returns once its link is up.
rf_start() {
	local n=$1
	rm -f "$T/rf-$n.in"
	mkfifo "$T/rf-$n.in"
	"$B/tests/rawframe" --hvc "$T/hvc-$n" --timeout 100 < "$T/rf-$n.in" \
		> "$T/rf-$n.out" 2> "$T/rf-$n.err" &
	RF_PID[$n]=$!
	_track $!
	sleep infinity > "$T/rf-$n.in" &	# rawframe's input stays open between commands
	RF_HOLD[$n]=$!
	_track $!
	wait_for 20 _rf_has "$n" '^UP$'
}

_rf_has() {
	grep -qE -- "$2" "$T/rf-$1.out" 2>/dev/null && return 0
	_alive "${RF_PID[$1]}" || fail "rawframe $1 exited: $(cat "$T/rf-$1.err" "$T/rf-$1.out")"
	return 1
}

# rf NAME COMMAND...: one rawframe command (see tests/tools/rawframe.c).
rf() {
	local n=$1
	shift
	printf '%s\n' "$*" 1<> "$T/rf-$n.in"
}

# rf_expect NAME REGEX: waits until rawframe NAME received a frame matching REGEX (a whole line).
rf_expect() {
	wait_for 10 _rf_has "$1" "^$2\$"
}

# rf_quit NAME: rawframe NAME ends, with status 0.
rf_quit() {
	rf "$1" quit
	wait_for 10 _dead "${RF_PID[$1]}"
	wait "${RF_PID[$1]}" || fail "rawframe $1 failed: $(cat "$T/rf-$1.err")"
	_terminate "${RF_HOLD[$1]}"
}

# stop_all_checked: stops the agents, xenmqd, the channels and mosquitto with SIGTERM; fails
# if any of them exits non-zero or crashes (so sanitizer reports at exit are caught too).
stop_all_checked() {
	local name
	for name in "${!_AGENT_PID[@]}"; do stop_agent "$name"; done
	stop_xenmqd
	for name in "${!_CHAN_PID[@]}"; do stop_channel "$name"; done
	[ -z "$MQ_PID" ] || stop_mosquitto
	check_sanitizers || fail "sanitizer reports (see above)"
}
