# SPDX-License-Identifier: MIT
# Images for the real-Xen tests, sourced by tests/xen/run.sh (bash).
#
# Xen, the Debian kernel, the Xen userland, busybox and the device model that
# backs PV channels (qemu-system-xen) are downloaded as .debs and unpacked with
# dpkg -x into the cache; nothing Xen-related is installed on the host. Host
# tools (QEMU for x86, cpio, socat, Mosquitto) are installed with apt-get when
# missing, and Mosquitto's binaries are copied from the host into the guests.
#
# Three layers of initramfs, each rebuilt only when its inputs change:
#   base     Xen toolstack, kernel modules, busybox, socat, Mosquitto (keyed by the
#            package list, the package versions on the host and this file);
#   payload  the test scripts and the project's binaries with their libraries
#            (keyed by the content of every file that goes in);
#   run      a few variables for this run only (deadline, scenario filter).
# The dom0 initramfs is gzip; the DomU one stays plain cpio, because
# libxenguest gunzips a ramdisk itself and fails on concatenated gzip members.

XEN_VER=4.17
HOST_PKGS="qemu-system-x86 qemu-system-data cpio socat mosquitto mosquitto-clients"
# The host binaries copied into the guests come from these packages: a new
# version of any of them rebuilds the base images.
HOST_COPY_PKGS="libc6 socat mosquitto mosquitto-clients libmosquitto1 qemu-system-data"
XEN_PKGS="xen-hypervisor-$XEN_VER-amd64 xen-utils-$XEN_VER xen-utils-common xenstore-utils
  libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenmisc$XEN_VER libxenstore4
  libxentoollog1 libxendevicemodel1 libxentoolcore1 libxenhypfs1 libyajl2
  qemu-system-xen busybox-static socat"
# The project's programs the scenarios use; each one not built is skipped
# (the optional ones only feed a measurement).
XENMQ_PROGS="xenmqd xenmq-agent xenmq-pub xenmq-sub"
XENMQ_OPT_PROGS="xenmq-rr"

ROOT=$CACHE/root
IMG=$CACHE/img

# Installs missing host tools; "apt-get update" first, since a fresh container
# often has no package lists.
img_host_tools() {
	local p missing=""
	for p in $HOST_PKGS; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "apt-get install$missing"
	apt-get update -qq || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
		>/dev/null || return 1
}

kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}

# Downloads the Xen .debs and the kernel and unpacks them into $ROOT, once:
# the stamp holds the package list, so the cache is refreshed only when the
# list changes (or after "rm -rf $CACHE").
img_fetch() {
	local kpkg want d
	img_host_tools || { err "cannot install host tools: $HOST_PKGS"; return 1; }
	kpkg=$(kernel_pkg)
	if [ -z "$kpkg" ]; then
		apt-get update -qq || true
		kpkg=$(kernel_pkg)
	fi
	[ -n "$kpkg" ] || { err "apt cannot resolve linux-image-amd64"; return 1; }
	want=$(echo $XEN_PKGS "$kpkg" | tr ' ' '\n' | sort | tr '\n' ' ')
	if [ -f "$CACHE/fetch.stamp" ] && [ "$(cat "$CACHE/fetch.stamp")" = "$want" ] &&
	   [ -d "$ROOT/boot" ]; then
		return 0
	fi
	log "apt-get download: $kpkg and the Xen $XEN_VER packages"
	rm -rf "$CACHE/debs" "$ROOT" "$CACHE/fetch.stamp"
	mkdir -p "$CACHE/debs" "$ROOT"
	# apt-get download runs as _apt unless told otherwise, which cannot write here
	if ! (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root $XEN_PKGS "$kpkg" \
	      >/dev/null); then
		apt-get update -qq || true
		(cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root $XEN_PKGS "$kpkg" \
		 >/dev/null) || { err "apt-get download failed"; return 1; }
	fi
	for d in "$CACHE"/debs/*.deb; do
		dpkg -x "$d" "$ROOT" || { err "dpkg -x $d failed"; return 1; }
	done
	# Only the Xen drivers are loaded as modules; the rest of the tree is ~400 MB.
	find "$ROOT"/lib/modules/*/kernel -name '*.ko' ! -path '*/drivers/xen/*' -delete
	rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man" "$ROOT/usr/share/locale"
	echo "$want" > "$CACHE/fetch.stamp"
}

kver() { basename "$(ls -d "$ROOT"/lib/modules/*)"; }

# Prints the libraries ELF file $1 needs, one path a line, resolved against the
# unpacked Xen libraries first, then the host. Fails when one is missing.
elf_libs() {
	local out
	out=$(LD_LIBRARY_PATH=$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu \
	      ldd "$1" 2>&1) || return 1
	if grep -q 'not found' <<< "$out"; then
		grep 'not found' <<< "$out" >&2
		return 1
	fi
	awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<< "$out"
}

# copy_elf TREE SRC [DEST]: copies an executable and every library it needs into
# TREE. SRC is looked up in the unpacked packages first, then on the host (or
# used as is when it is a path to an existing file outside both).
copy_elf() {
	local tree=$1 src=$2 dest=${3:-$2} f lib base dir
	f=$ROOT$src
	[ -e "$f" ] || f=$src
	[ -e "$f" ] || { err "no such program: $src"; return 1; }
	mkdir -p "$tree$(dirname "$dest")"
	rm -f "$tree$dest"
	cp -L "$f" "$tree$dest"
	elf_libs "$f" > "$tree.libs" || { err "a library of $src is missing"; return 1; }
	while read -r lib; do
		base=${lib##*/}
		# the program interpreter lives at /lib64; everything else in the
		# canonical multiarch directory (the host's /lib is a usrmerge link)
		dir=/lib/x86_64-linux-gnu
		[ "$base" = ld-linux-x86-64.so.2 ] && dir=/lib64
		# a payload tree leaves out what the base image already has
		if [ ! -e "$tree$dir/$base" ] && ! grep -qx ".$dir/$base" "$tree.skip" 2>/dev/null; then
			mkdir -p "$tree$dir"
			cp -L "$lib" "$tree$dir/$base"
		fi
	done < "$tree.libs"
	rm -f "$tree.libs"
}

# Tree shared by dom0 and the DomUs: busybox, the Xen drivers, the XenStore
# tools, socat, and reboot/poweroff that really reboot.
base_tree() {
	local t=$1 k app m
	k=$(kver)
	rm -rf "$t"
	mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,lib/modules,lib/x86_64-linux-gnu,lib64,etc,proc,sys}
	mkdir -p "$t"/{dev,run,tmp,root,var/log,xt/bin}
	ln -s ../run "$t/var/run"
	ln -s ../run/lock "$t/var/lock"
	cp "$ROOT/bin/busybox" "$t/bin/busybox"
	for app in $("$ROOT/bin/busybox" --list-full); do
		[ -e "$t/$app" ] || [ -L "$t/$app" ] || ln -s /bin/busybox "$t/$app"
	done
	for m in xen-evtchn xen-privcmd xenfs/xenfs xen-gntdev xen-gntalloc; do
		cp "$ROOT/lib/modules/$k/kernel/drivers/xen/$m.ko" "$t/lib/modules/"
	done
	copy_elf "$t" /usr/bin/xenstore || return 1
	for app in read write ls list rm chmod exists watch control; do
		ln -sf xenstore "$t/usr/bin/xenstore-$app"
	done
	copy_elf "$t" /usr/bin/socat || return 1
	copy_elf "$t" /usr/bin/mosquitto_sub || return 1
	copy_elf "$t" /usr/bin/mosquitto_pub || return 1
	# "xl reboot" makes the kernel run /sbin/reboot, and busybox's reboot only
	# signals init (ours ignores it). Replace the applet links, never write
	# through them.
	rm -f "$t/sbin/reboot" "$t/sbin/poweroff"
	printf '#!/bin/sh\nsync; exec /bin/busybox reboot -f\n' > "$t/sbin/reboot"
	printf '#!/bin/sh\nsync; exec /bin/busybox poweroff -f\n' > "$t/sbin/poweroff"
	chmod 755 "$t/sbin/reboot" "$t/sbin/poweroff"
	printf 'root:x:0:0:root:/root:/bin/sh\n' > "$t/etc/passwd"
	printf 'root:x:0:\n' > "$t/etc/group"
}

mkcpio() {	# DIR OUT [plain]
	if [ -n "${3:-}" ]; then
		(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$2"
	else
		(cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$2"
	fi
}

base_key() {
	{
		cat "$CACHE/fetch.stamp" "$XT_DIR/image.sh"
		dpkg-query -W $HOST_COPY_PKGS 2>/dev/null
	} | sha256sum | cut -c1-16
}

# Xen (uncompressed: QEMU's multiboot loader wants the 32-bit ELF), the kernel,
# and the base trees of dom0 and of the DomUs.
img_base() {
	local key t k
	key=$(base_key)
	if [ -f "$IMG/base.key" ] && [ "$(cat "$IMG/base.key")" = "$key" ]; then
		return 0
	fi
	k=$(kver)
	log "building base images (Xen $XEN_VER, kernel $k)"
	rm -rf "$IMG"
	mkdir -p "$IMG"
	zcat "$ROOT/boot/xen-$XEN_VER-amd64.gz" > "$IMG/xen" || return 1
	cp "$ROOT/boot/vmlinuz-$k" "$IMG/vmlinuz"

	t=$CACHE/tree-domu
	base_tree "$t" || return 1
	(cd "$t" && find . | LC_ALL=C sort) > "$IMG/domu-base.files"
	mkcpio "$t" "$IMG/domu-base.cpio" plain

	t=$CACHE/tree-dom0
	base_tree "$t" || return 1
	for b in xl xenstored xenconsoled xen-init-dom0 xenconsole libxl-save-helper; do
		copy_elf "$t" /usr/lib/xen-$XEN_VER/bin/$b || return 1
	done
	# the device model serves the dom0 end of every PV channel
	copy_elf "$t" /usr/libexec/xen-qemu-system-i386 || return 1
	# without a keymap that QEMU dies at start ("-vnc none"), and libxl with it
	mkdir -p "$t/usr/share/qemu/keymaps" "$t/etc/xen" "$t/boot"
	cp /usr/share/qemu/keymaps/en-us "$t/usr/share/qemu/keymaps/"
	: > "$t/etc/xen/xl.conf"
	copy_elf "$t" /usr/sbin/mosquitto || return 1
	copy_elf "$t" /usr/bin/mosquitto_rr || return 1
	cp "$IMG/vmlinuz" "$t/boot/vmlinuz"
	cp "$IMG/domu-base.cpio" "$t/xt/domu-base.cpio"
	(cd "$t" && find . | LC_ALL=C sort) > "$IMG/dom0-base.files"
	mkcpio "$t" "$IMG/dom0-base.cpio.gz"
	rm -rf "$CACHE/tree-domu" "$t"
	echo "$key" > "$IMG/base.key"
	log "base images: $(du -sh "$IMG" | cut -f1)"
}

# Lists the project's programs found in $1 (the build directory) and its test
# tools ($1/tests/NAME, without the cmocka unit tests test_*), one path a line.
payload_bins() {
	local b=$1 p f
	for p in $XENMQ_PROGS $XENMQ_OPT_PROGS; do
		[ -x "$b/$p" ] && [ -f "$b/$p" ] && echo "$b/$p"
	done
	for f in "$b"/tests/*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		case ${f##*/} in test_*|*.d|*.o) continue;; esac
		head -c 4 "$f" | grep -q ELF && echo "$f"
	done
}

payload_tree() {	# TREE BASEFILES BIN...
	local t=$1 skip=$2 f
	shift 2
	rm -rf "$t"
	mkdir -p "$t/xt/bin"
	cp "$skip" "$t.skip"
	for f in "$XT_DIR"/*.sh; do
		case ${f##*/} in run.sh|image.sh) continue;; esac
		cp "$f" "$t/xt/"
	done
	cp "$XT_DIR/init.sh" "$t/init"
	chmod 755 "$t/init"
	for f in "$@"; do
		copy_elf "$t" "$f" "/xt/bin/${f##*/}" ||
			{ warn "${f##*/}: a library is missing on the host; left out"; rm -f "$t/xt/bin/${f##*/}"; }
	done
	rm -f "$t.skip"
}

# The test scripts and the project's binaries, with each library the base
# image lacks. Sets PAYLOAD_BINS to the names brought in.
img_payload() {
	local b=$1 key bins
	bins=$(payload_bins "$b")
	PAYLOAD_BINS=$(for f in $bins; do echo "${f##*/}"; done | tr '\n' ' ')
	key=$({
		cat "$IMG/base.key"
		sha256sum "$XT_DIR"/*.sh $bins
	} | sha256sum | cut -c1-16)
	if [ -f "$IMG/payload.key" ] && [ "$(cat "$IMG/payload.key")" = "$key" ]; then
		return 0
	fi
	log "building payload (${PAYLOAD_BINS:-no xenmq programs})"
	payload_tree "$CACHE/tree-pdomu" "$IMG/domu-base.files" $bins || return 1
	mkcpio "$CACHE/tree-pdomu" "$IMG/domu-payload.cpio" plain
	payload_tree "$CACHE/tree-pdom0" "$IMG/dom0-base.files" $bins || return 1
	cp "$IMG/domu-payload.cpio" "$CACHE/tree-pdom0/xt/domu-payload.cpio"
	mkcpio "$CACHE/tree-pdom0" "$IMG/dom0-payload.cpio.gz"
	rm -rf "$CACHE/tree-pdomu" "$CACHE/tree-pdom0"
	echo "$key" > "$IMG/payload.key"
}
