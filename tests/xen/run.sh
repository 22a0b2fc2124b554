#!/bin/bash
# SPDX-License-Identifier: MIT
# End-to-end scenarios on a real Xen: boots Debian's Xen 4.17 in QEMU (TCG)
# with a dom0 and two PV DomUs, alpha and beta, each with the PV channel
# org.xenmq, runs tests/xen/sc-*.sh in one boot, and prints a report.
#
#   tests/xen/run.sh BUILD_DIR      (make test-xen)
#   tests/xen/run.sh --shell BUILD_DIR   dom0 shell on this terminal, no scenario
#                                        ("sh /xt/dom0.sh" runs them; "poweroff -f")
#
# BUILD_DIR holds the project's programs (xenmqd, xenmq-agent, xenmq-pub,
# xenmq-sub, ...) and its test tools (BUILD_DIR/tests/); a scenario that needs
# a program that is not built is skipped. See tests/xen/README.md.
#
# Environment:
#   XENMQ_XEN_CACHE    cache directory (default /var/cache/xenmq-xen)
#   XENMQ_XEN_TIMEOUT  hard limit for the whole run, seconds (default 900)
#   XENMQ_XEN_ONLY     scenarios to run, space-separated (smoke always runs)
#   XENMQ_XEN_SC_TIMEOUT  limit for one scenario, seconds (default 300)
#   XENMQ_XEN_VERBOSE  0: progress and report; 1: every guest line; 2: the whole
#                      serial log (Xen, kernels)
#   XENMQ_XEN_DEBUG    1: verbose Xen and kernel logs, "set -x" in the guests
#   XENMQ_XEN_MEM      MiB of RAM for QEMU (default 1280; dom0 512, DomUs 128 each)
#   XENMQ_XEN_ACCEL    tcg | kvm | auto (default auto: KVM only with kvm_intel or
#                      kvm_amd loaded; a software KVM cannot run Xen)
#   XENMQ_XEN_CPU      QEMU -cpu (default for TCG: max without SMAP, XSAVE, AVX)
#
# Exit status: 0 nothing failed, 1 a scenario failed, 2 usage or setup error,
# 3 timeout or no result from the guests.
set -uo pipefail

XT_DIR=$(cd "$(dirname "$0")" && pwd)
CACHE=${XENMQ_XEN_CACHE:-/var/cache/xenmq-xen}
TIMEOUT=${XENMQ_XEN_TIMEOUT:-900}
ONLY=${XENMQ_XEN_ONLY:-}
VERBOSE=${XENMQ_XEN_VERBOSE:-0}
DEBUG=${XENMQ_XEN_DEBUG:-0}
MEM=${XENMQ_XEN_MEM:-1280}
ACCEL=${XENMQ_XEN_ACCEL:-auto}
DOM0_MEM=512
T0=${XT_T0:-$(date +%s.%N)}
export XT_T0=$T0
DEADLINE=$(( ${T0%.*} + TIMEOUT ))
SERIAL=$CACHE/last-serial.log
REPORT=$CACHE/last-report.txt
WORK=
QPID=
WPID=
TPID=

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[xen %6ss] %s\n' "$(elapsed)" "$*" >&2; }
warn() { log "warning: $*"; }
err() { log "error: $*"; }
die() { err "$*"; exit 2; }
remaining() { echo $(( DEADLINE - $(date +%s) )); }

cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	[ -n "$TPID" ] && kill "$TPID" 2>/dev/null
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SHELL_MODE=0
case ${1:-} in
-h|--help) sed -n '3,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
--shell) SHELL_MODE=1; shift;;
esac
[ $# = 1 ] || die "usage: $0 [--shell] BUILD_DIR"
if [ -d "$1" ]; then
	BUILD=$(cd "$1" && pwd)
else
	# still worth a run: the scenarios that need no xenmq program
	warn "no build directory $1 (make B=$1): no xenmq program"
	case $1 in /*) BUILD=$1;; *) BUILD=$(pwd)/$1;; esac
fi
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, $CACHE, QEMU)"

. "$XT_DIR/image.sh"

# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------
mkdir -p "$CACHE"
[ "${XT_IMAGES_ONLY:-0}" = 1 ] || exec 9> "$CACHE/.lock"
if [ "${XT_IMAGES_ONLY:-0}" != 1 ] && ! flock -n 9; then
	log "another run holds $CACHE; waiting for it"
	flock -w "$(remaining)" 9 || die "$CACHE still locked after ${TIMEOUT}s"
fi

# --images: the part that may need the network, run under the deadline
if [ "${XT_IMAGES_ONLY:-0}" = 1 ]; then
	img_fetch || { err "fetching the packages failed"; exit 2; }
	img_base || { err "building the base images failed"; exit 2; }
	img_payload "$BUILD" || { err "building the payload failed"; exit 2; }
	exit 0
fi
for p in $XENMQ_PROGS; do
	[ -x "$BUILD/$p" ] || warn "$p is not built in $BUILD: the scenarios that need it will SKIP"
done
t=$(date +%s)
XT_IMAGES_ONLY=1 XENMQ_XEN_TIMEOUT=$(remaining) timeout -k 5 "$(remaining)" "$0" "$BUILD" 9>&-
case $? in
0) ;;
124|137) err "timeout while fetching packages or building images"; exit 3;;
*) exit 2;;
esac
T_IMAGES=$(( $(date +%s) - t ))
PAYLOAD_BINS=$(payload_bins "$BUILD" | sed 's|.*/||' | tr '\n' ' ')

# The last layer: variables for this run only.
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
mkdir -p "$WORK/r/xt"
# dom0's deadline on its own clock: it boots about 10 s after QEMU starts
cat > "$WORK/r/xt/run.conf" <<EOF
XT_DEADLINE=$(( $(remaining) - 30 ))
XT_ONLY='$(echo $ONLY | tr ' ' '+')'
XT_DEBUG=$DEBUG
XT_SC_TIMEOUT=${XENMQ_XEN_SC_TIMEOUT:-300}
EOF
mkcpio "$WORK/r" "$WORK/run.cpio.gz"
cat "$IMG/dom0-base.cpio.gz" "$IMG/dom0-payload.cpio.gz" "$WORK/run.cpio.gz" > "$WORK/dom0.cpio.gz"

# ---------------------------------------------------------------------------
# Boot
# ---------------------------------------------------------------------------
if [ "$ACCEL" = auto ]; then
	ACCEL=tcg
	if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
		ACCEL=kvm
	fi
fi
# TCG: SMAP makes dom0 fault at once in create_bounce_frame.
# KVM: QEMU cannot set MSR 0x10a (arch-capabilities) there.
# TCG, XSAVE: with it (and AVX) programs in the guests crash at random once
# three domains share the vCPUs (segfaults, glibc "corrupted double-linked
# list", even in xl): register state does not survive Xen's context switches
# under QEMU 7.2's emulation. Without XSAVE, Xen and the guests use FXSAVE,
# and the "stress" scenario runs clean.
CPU=max,-smap,-xsave,-avx,-avx2,-fma,-f16c,-vaes,-vpclmulqdq
[ "$ACCEL" = kvm ] && CPU=host,-arch-capabilities
CPU=${XENMQ_XEN_CPU:-$CPU}
XENLOG=warning
KLOG=3
KEXTRA=
[ "$DEBUG" = 1 ] && { XENLOG=all; KLOG=7; }
[ "$SHELL_MODE" = 1 ] && KEXTRA=" xt.shell"
# Xen drives COM1 by polling (IRQ 0): with its interrupt, the emulated UART
# stopped transmitting for good after some minutes of busy output, silencing
# dom0 and the DomUs.
# Multiboot: -kernel is Xen, each -initrd module is "file cmdline" and the
# modules are comma-separated (a comma inside a command line would be doubled).
XEN_CMDLINE="console=com1 com1=115200,8n1,0x3f8,0 dom0_mem=${DOM0_MEM}M,max:${DOM0_MEM}M"
XEN_CMDLINE="$XEN_CMDLINE dom0_max_vcpus=1 loglvl=$XENLOG guest_loglvl=$XENLOG noreboot"
QEMU=(qemu-system-x86_64 -accel "$ACCEL" -cpu "$CPU" -smp 2 -m "$MEM"
	-display none -vga none -monitor none -no-reboot -nodefaults
	-kernel "$IMG/xen" -append "$XEN_CMDLINE"
	-initrd "$IMG/vmlinuz console=hvc0 loglevel=$KLOG$KEXTRA,$WORK/dom0.cpio.gz")

if [ "$SHELL_MODE" = 1 ]; then
	log "booting Xen ($ACCEL); dom0 shell on this terminal, 'poweroff -f' to leave"
	timeout --foreground "$(remaining)" "${QEMU[@]}" -serial stdio
	exit 0
fi

: > "$SERIAL"
log "booting Xen $XEN_VER in QEMU ($ACCEL, ${MEM} MiB), programs: ${PAYLOAD_BINS:-none}"
T_BOOT=$(date +%s)
timeout -k 5 "$(remaining)" "${QEMU[@]}" -serial "file:$SERIAL" &
QPID=$!

# Progress while it runs. Xen may halt instead of powering off: once the
# result is in, QEMU gets 15 s to leave by itself.
filter='^(XMQ-|XT:)'
[ "$VERBOSE" = 1 ] && filter='^(\[(dom0|alpha|beta)\]|XMQ-|XT)'
[ "$VERBOSE" = 2 ] && filter=''
( while kill -0 $QPID 2>/dev/null; do
	if grep -q '^XMQ-EXIT=' "$SERIAL"; then
		i=0
		while [ $i -lt 15 ] && kill -0 $QPID 2>/dev/null; do sleep 1; i=$((i + 1)); done
		kill $QPID 2>/dev/null
		break
	fi
	sleep 1
done ) &
WPID=$!
tail -n +1 -F --pid=$QPID "$SERIAL" 2>/dev/null | while IFS= read -r line; do
	line=${line%$'\r'}
	m=${line#\[dom0\] }
	case $m in
	XMQ-DOM0-READY*) log "dom0 up";;
	XMQ-BEGIN\ *) [ "$VERBOSE" = 0 ] && log "${m#XMQ-BEGIN } ...";;
	XMQ-RESULT\ *) set -- ${m#XMQ-RESULT }; log "$1: $2 ($3 s) ${*:4}";;
	XMQ-MEASURE\ *) set -- ${m#XMQ-MEASURE }; log "  measure $1 = $2 $3";;
	XMQ-EXIT=*) log "guests done (${m#XMQ-EXIT=})";;
	esac
	if [ "$VERBOSE" != 0 ] && [[ $line =~ $filter ]]; then
		printf '%s\n' "$line"
	fi
done &
TPID=$!
QRC=0
wait $QPID || QRC=$?
QPID=
kill $WPID 2>/dev/null
wait $WPID $TPID 2>/dev/null
T_RUN=$(( $(date +%s) - T_BOOT ))

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# The serial log without CRs, made once; read from the file (grep -q at the
# end of a pipe would make its writer fail, and the pipe too, under pipefail).
S=$WORK/serial.txt
tr -d '\r' < "$SERIAL" > "$S"

# The guest lines of scenario $1, from its XMQ-BEGIN to its XMQ-RESULT.
scenario_lines() {
	awk -v n="$1" '
		$0 == "[dom0] XMQ-BEGIN " n { on = 1 }
		on && /^\[(dom0|alpha|beta)\] / { print }
		on && index($0, "[dom0] XMQ-RESULT " n " ") == 1 { exit }' "$S" | cut -c 1-300
}

report() {
	local n v t rest fails=0 missing=0 rc
	echo
	echo "== xenmq on Xen $XEN_VER (QEMU $ACCEL): $(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '   %-10s %-5s %8s  %s\n' scenario result seconds note
	while read -r n v t rest; do
		printf '   %-10s %-5s %8s  %s\n' "$n" "$v" "$t" "$rest"
		[ "$v" = FAIL ] && fails=$((fails + 1))
	done < <(sed -n 's/^\[dom0\] XMQ-RESULT //p' "$S")
	# a scenario that began and never ended: the run was cut short
	for n in $(sed -n 's/^\[dom0\] XMQ-BEGIN //p' "$S"); do
		grep -q "^\[dom0\] XMQ-RESULT $n " "$S" && continue
		printf '   %-10s %-5s %8s  %s\n' "$n" NONE - "no result: the run ended (timeout?) during it"
		missing=$((missing + 1))
	done
	if grep -q '^\[dom0\] XMQ-MEASURE ' "$S"; then
		echo "   measurements (TCG, for comparison between runs only):"
		sed -n 's/^\[dom0\] XMQ-MEASURE //p' "$S" |
			while read -r n v t rest; do
				printf '     %-22s %12s %-5s %s\n' "$n" "$v" "$t" "$rest"
			done
	fi
	for n in $(sed -n 's/^\[dom0\] XMQ-RESULT \([^ ]*\) FAIL.*/\1/p' "$S"); do
		echo
		echo "-- $n failed; its guest lines (last 80):"
		scenario_lines "$n" | tail -n 80
	done
	for n in $(sed -n 's/^\[dom0\] XMQ-BEGIN //p' "$S"); do
		grep -q "^\[dom0\] XMQ-RESULT $n " "$S" && continue
		echo
		echo "-- $n did not finish; its last guest lines:"
		scenario_lines "$n" | tail -n 60
	done
	rc=$(sed -n 's/^XMQ-EXIT=\([0-9]*\).*/\1/p' "$S" | tail -n 1)
	echo
	if [ -z "$rc" ]; then
		if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
			echo "TIMEOUT: the run took more than ${TIMEOUT}s (XENMQ_XEN_TIMEOUT); last serial lines:"
		else
			echo "QEMU exited ($QRC) without a result; last serial lines:"
		fi
		tail -n 40 "$S"
		RESULT=3
	elif [ "$fails" -gt 0 ] || [ "$missing" -gt 0 ] || [ "$rc" != 0 ]; then
		RESULT=1
	elif ! grep -q '^\[dom0\] XMQ-RESULT smoke PASS' "$S"; then
		echo "the smoke scenario did not pass"
		RESULT=1
	else
		RESULT=0
	fi
	echo "time: ${T_IMAGES}s images, ${T_RUN}s boot and scenarios, $(elapsed)s in all"
	echo "serial log: $SERIAL"
	echo "result: $([ $RESULT = 0 ] && echo PASS || echo FAIL)"
}

RESULT=3
report > "$REPORT.tmp"
cat "$REPORT.tmp"
mv "$REPORT.tmp" "$REPORT"
exit $RESULT
