# SPDX-License-Identifier: MIT
# DomU-side helpers of the real-Xen tests (busybox sh).
#
# dom0 drives a DomU through XenStore: it writes "SEQ STEP ARGS..." to
# /xenmq-test/<dom>/cmd (readable by that domain only) and the DomU answers
# "SEQ STATUS" in its own data/xt/ack, with results under data/xt/res/.
# A step "scenario.what" is served by the function scenario_domu, called with
# "what" and the arguments.

XT_DOM=$(xenstore-read name 2>/dev/null)
XT_DOMID=$(xenstore-read domid 2>/dev/null)
XT_CTL=/xenmq-test/$XT_DOM

# xt_ctl KEY: what dom0 wrote under /xenmq-test/<this domain>/.
xt_ctl() { xenstore-read "$XT_CTL/$1" 2>/dev/null; }

# xt_put KEY VALUE: a result for dom0 (data/xt/res/KEY).
xt_put() { xenstore-write "data/xt/res/$1" "$2"; }

# xt_chan_find [NAME]: finds the console whose XenStore name is NAME (default
# org.xenmq) and sets XT_HVC_N and XT_HVC (/dev/hvcN). hvc0..hvc7 always
# exist, so only XenStore tells which one is the channel.
xt_chan_find() {
	local want=${1:-$XT_CHAN_NAME} n
	XT_HVC_N=
	XT_HVC=
	for n in $(xenstore-list device/console 2>/dev/null); do
		if [ "$(xenstore-read device/console/$n/name 2>/dev/null)" = "$want" ]; then
			XT_HVC_N=$n
			XT_HVC=/dev/hvc$n
			return 0
		fi
	done
	return 1
}

# xt_tty_is_raw DEV: the line discipline passes bytes untouched and echoes
# nothing (what "stty raw -echo" sets).
xt_tty_is_raw() {
	local s
	s=" $(stty -F "$1" -a 2>&1 | tr '\n' ' ') "
	case $s in *" -echo "*) ;; *) return 1;; esac
	case $s in *" -icanon "*) ;; *) return 1;; esac
	case $s in *" -opost "*) ;; *) return 1;; esac
	return 0
}

# xt_step SEQ STEP ARGS...: runs one step (in its own process, see domu.sh)
# and acknowledges it with its exit status.
xt_step() {
	local seq=$1 step=$2 sc sub rc n a
	shift 2
	# decode the arguments (see xt_domu_send in lib-dom0.sh)
	n=$#
	while [ $n -gt 0 ]; do
		a=$1
		shift
		case $a in
		*%*) a=$(printf '%s' "$a" | sed 's/%20/ /g; s/%25/%/g');;
		esac
		set -- "$@" "$a"
		n=$((n - 1))
	done
	sc=${step%%.*}
	sub=${step#*.}
	if type "${sc}_domu" >/dev/null 2>&1; then
		"${sc}_domu" "$sub" "$@"
		rc=$?
	else
		echo "XT: no handler for step '$step'"
		rc=127
	fi
	[ $rc = 0 ] || echo "XT: step $step exited with status $rc"
	xenstore-write data/xt/ack "$seq $rc"
}

# Steps every scenario may use.
common_domu() {
	local f
	case $1 in
	reset)	# stop what earlier steps started, forget their files
		xt_kill_all
		rm -rf $XT_RUN/log/* $XT_RUN/tmp
		xenstore-rm data/xt/res 2>/dev/null
		mkdir -p $XT_RUN/tmp
		;;
	logs)	# show the end of every background program's output
		for f in $XT_RUN/log/*.log; do
			[ -f "$f" ] || continue
			f=${f##*/}
			xt_log_tail "${f%.log}" "${2:-30}"
		done
		;;
	uptime)
		xt_put uptime "$(xt_now)"
		;;
	*)	return 127;;
	esac
}
