# SPDX-License-Identifier: MIT
# Scenario "stress" (only when asked: XENMQ_XEN_ONLY=stress): the test bed
# itself under load. dom0 and both DomUs hash a file and run small pipelines
# over and over for XT_STRESS_SECONDS; every result must be the same each
# time. It exists because emulated CPU features that do not survive Xen's
# context switches (QEMU 7.2 TCG and AVX) showed up as random crashes of
# ordinary programs in the guests; run it after changing the QEMU -cpu.

XT_STRESS_SECONDS=${XT_STRESS_SECONDS:-60}
XT_OPTIN="${XT_OPTIN:-} stress"

# stress_loop SECONDS: prints "rounds bad".
stress_loop() {
	local f=$XT_RUN/tmp/stress.bin ref end n=0 bad=0 h x
	dd if=/dev/urandom of=$f bs=65536 count=16 2>/dev/null
	ref=$(sha256sum $f)
	end=$(( $(date +%s) + $1 ))
	while [ "$(date +%s)" -lt $end ]; do
		h=$(sha256sum $f)
		[ "$h" = "$ref" ] || bad=$((bad + 1))
		x=$(echo hello | sed 's/h/j/' | tr a-z A-Z | awk '{ print $1 "!" }')
		[ "$x" = 'JELLO!' ] || bad=$((bad + 1))
		n=$((n + 1))
	done
	rm -f $f
	echo "$n $bad"
}

stress_dom0() {
	local d seq r
	for d in $XT_DOMUS; do
		echo "$(xt_domu_send $d stress.run $XT_STRESS_SECONDS)" > $XT_RUN/tmp/stress.$d
	done
	r=$(stress_loop $XT_STRESS_SECONDS)
	echo "dom0: ${r% *} rounds, ${r#* } bad"
	xt_expect "dom0: every round gave the same results" "${r#* }" 0
	for d in $XT_DOMUS; do
		seq=$(cat $XT_RUN/tmp/stress.$d)
		xt_domu_wait $d $seq $((XT_STRESS_SECONDS + 60))
		r=$(xt_domu_get $d stress)
		echo "$d: ${r% *} rounds, ${r#* } bad"
		xt_expect "$d: every round gave the same results" "${r#* }" 0
	done
}

stress_domu() {
	case $1 in
	run) xt_put stress "$(stress_loop $2)";;
	*) return 127;;
	esac
}
