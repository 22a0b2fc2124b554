#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the real-Xen test guests (busybox sh), the same file in dom0 and in
# the DomUs: /proc/xen/capabilities says which one we are.
#
# dom0 starts the Xen userland (xenstored, xen-init-dom0, xenconsoled), runs
# the orchestrator /xt/dom0.sh and powers the machine off with its result.
# A DomU runs /xt/domu.sh, which serves the steps dom0 asks for. After
# "xl reboot" the domain boots again from the same initramfs, so this /init
# runs again and so does domu.sh: scenarios resume from what dom0 has written
# in XenStore.
export PATH=/xt/bin:/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/xenstored /run/lock /run/xenmq /run/xt/log /run/xt/pids /run/xt/tmp \
	/var/log/xen /var/lib/xen /var/lib/xenstored
for m in xen-evtchn xen-privcmd xenfs xen-gntdev xen-gntalloc; do
	insmod /lib/modules/$m.ko 2>/dev/null
done
mount -t xenfs xenfs /proc/xen
[ -f /xt/run.conf ] && . /xt/run.conf
[ "${XT_DEBUG:-0}" = 1 ] && set -x

halt_now() {
	sync
	poweroff -f
	sleep 5
	echo o > /proc/sysrq-trigger
}

if ! grep -q control_d /proc/xen/capabilities 2>/dev/null; then
	# DomU. domu.sh exits 0 when dom0 says "quit"; anything else is a crash
	# of the script, which is restarted so that dom0 can still reach us.
	while :; do
		sh /xt/domu.sh </dev/null 2>&1
		rc=$?
		[ $rc = 0 ] && break
		echo "XT: domu.sh exited with status $rc, restarting it"
		sleep 1
	done
	halt_now
fi

xenstored --pid-file /run/xen/xenstored.pid || echo "XT: xenstored failed"
xen-init-dom0 >/dev/null
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest --log-dir=/var/log/xen
echo "XMQ-DOM0-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
# The DomU ramdisk: plain cpio, base then payload (see tests/xen/image.sh).
cat /xt/domu-base.cpio /xt/domu-payload.cpio > /run/xt/domu.cpio
if grep -q xt.shell /proc/cmdline; then
	setsid cttyhack sh
else
	# Prefixed by awk, which flushes each line (busybox sed holds them back).
	# A FIFO rather than a pipe, so that a stray background program still
	# holding the output cannot keep us from powering off.
	mkfifo /run/xt/out
	awk '{ print "[dom0] " $0; fflush() }' < /run/xt/out &
	apid=$!
	(cd /xt && sh ./dom0.sh) < /dev/null > /run/xt/out 2>&1
	sleep 1
	kill $apid 2>/dev/null
fi
echo "XMQ-EXIT=$(cat /run/xt/rc 2>/dev/null || echo 1)"
halt_now
