#!/bin/bash
# Build the VM's initramfs in two parts; the kernel unpacks concatenated
# gzip'd cpio archives in order, so the common part is built once and each
# kernel only adds its modules.
#
#   vmtests/mkinitramfs.sh common BUILD OUT.cpio.gz
#       busybox (static), the host tools the suites run (bash, ip, nsenter,
#       jq, bpftool, coreutils...) and the project's test binaries from BUILD,
#       each with every shared library ldd reports, at their host paths; the
#       test scripts under /sluice; /init (vmtests/vm-init.sh).
#   vmtests/mkinitramfs.sh modules KDIR OUT.cpio.gz
#       the modules the suites need from KDIR/modules (an unpacked
#       lib/modules/<release>), decompressed, with /etc/sluice/modules listing
#       them in load order (dependencies first, from each module's .modinfo
#       "depends=", since a kernel package ships no modules.dep) and
#       /etc/sluice/modules-absent naming those the kernel does not have;
#       KDIR/bpftool, if there, replaces the host's (see fetch-kernel.sh).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

# Modules the suites need: veth and bridge (simcluster; bridge pulls stp,
# llc), sch_ingress and cls_bpf (clsact/tc programs), tls where the kernel
# has it. No netfilter: nothing in the suites uses it.
WANT_MODULES="veth bridge sch_ingress cls_bpf tls"

# Host tools the BPF and end-to-end suites, tests/run.sh and simcluster use.
# Busybox covers everything else (and the init script itself).
HOST_TOOLS="
/usr/bin/bash /usr/bin/ip /usr/bin/nsenter /usr/bin/unshare /usr/bin/jq /usr/sbin/bpftool
/usr/bin/flock /usr/bin/taskset /usr/bin/timeout /usr/bin/mount /usr/bin/umount
/usr/bin/stat /usr/bin/find /usr/bin/xargs /usr/bin/mktemp /usr/bin/seq /usr/bin/grep
/usr/bin/sed /usr/bin/mawk /usr/bin/sort /usr/bin/cut /usr/bin/tail /usr/bin/head
/usr/bin/wc /usr/bin/tr /usr/bin/date /usr/bin/sleep /usr/bin/cat /usr/bin/rm /usr/bin/mv
/usr/bin/cp /usr/bin/mkdir /usr/bin/rmdir /usr/bin/touch /usr/bin/chmod /usr/bin/ln
/usr/bin/ls /usr/bin/id /usr/bin/basename /usr/bin/dirname /usr/bin/readlink /usr/bin/env
/usr/bin/tee /usr/bin/uname /usr/bin/kill /usr/bin/printf /usr/bin/true /usr/bin/false
/usr/bin/expr /usr/bin/sysctl /usr/sbin/sysctl /usr/bin/gzip /usr/bin/tar /usr/bin/base64
/usr/bin/setsid /usr/bin/nproc /usr/bin/sha256sum
/usr/bin/curl /usr/bin/promtool /usr/sbin/tc /usr/bin/ping /usr/bin/od /usr/bin/dd
/usr/bin/openssl /usr/bin/tcpdump
"
# Debian's python3 (test_accounting.sh's bulk client) with its standard
# library less what no test imports (tests, build config, GUI, docs)
PY_EXCLUDE="config-* test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data distutils
site-packages dist-packages"

die() { echo "mkinitramfs: $*" >&2; exit 1; }

# copy FILE into the staging root at the same path (symlinks resolved), and
# every library ldd names for it
STAGE=
declare -A COPIED=()
copy_file() {
	local f=$1 dst
	[ -n "${COPIED[$f]:-}" ] && return 0
	COPIED[$f]=1
	# usr-merged: /lib/x/y and /usr/lib/x/y are one file
	dst=$f
	case $dst in /lib/* | /lib64/* | /bin/* | /sbin/*) dst=/usr$dst ;; esac
	mkdir -p "$STAGE$(dirname "$dst")"
	cp -L "$f" "$STAGE$dst"
}
copy_with_libs() {
	copy_file "$1"
	copy_libs "$1"
}
copy_libs() {
	local f=$1 lib
	while read -r lib; do
		[ -n "$lib" ] && copy_file "$lib"
	done < <(ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }')
}

cpio_gz() { # dir out
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -4 >"$2.tmp"
	mv "$2.tmp" "$2"
}

cmd_common() {
	local build=$1 out=$2 t f
	[ -x "$build/tests/bpf" ] || die "$build/tests/bpf missing: run make first"
	STAGE=$(mktemp -d "${out%/*}/stage.XXXXXX")
	trap 'rm -rf "$STAGE"' EXIT
	mkdir -p "$STAGE"/{usr/bin,usr/sbin,usr/lib,usr/lib64,busybox/bin,proc,sys,dev,tmp,run,etc/sluice,root,var/tmp,mnt}
	ln -s usr/bin "$STAGE/bin"
	ln -s usr/sbin "$STAGE/sbin"
	ln -s usr/lib "$STAGE/lib"
	ln -s usr/lib64 "$STAGE/lib64"
	chmod 1777 "$STAGE/tmp" "$STAGE/var/tmp"

	cp /usr/bin/busybox "$STAGE/busybox/bin/busybox"
	for t in $("$STAGE/busybox/bin/busybox" --list); do
		[ "$t" = busybox ] || ln -s busybox "$STAGE/busybox/bin/$t"
	done
	for t in $HOST_TOOLS; do
		[ -e "$t" ] || continue
		copy_with_libs "$t"
	done
	ln -sf mawk "$STAGE/usr/bin/awk"
	local py
	py=$(readlink -f /usr/bin/python3 2>/dev/null || true)
	if [ -x "$py" ] && [ -d "/usr/lib/${py##*/}" ]; then
		copy_with_libs "$py"
		ln -sf "${py##*/}" "$STAGE/usr/bin/python3"
		local ex=()
		for t in $PY_EXCLUDE; do ex+=(--exclude="./$t"); done
		mkdir -p "$STAGE/usr/lib/${py##*/}"
		tar -C "/usr/lib/${py##*/}" "${ex[@]}" -cf - . | tar -C "$STAGE/usr/lib/${py##*/}" -xf -
		for f in "$STAGE/usr/lib/${py##*/}"/lib-dynload/*.so; do copy_libs "$f"; done
	fi
	ln -sf bash "$STAGE/usr/bin/sh"
	# openssl's default configuration (the HBONE and control tests make
	# certificates with `openssl req` and `openssl ca`)
	if [ -f /etc/ssl/openssl.cnf ]; then
		mkdir -p "$STAGE/etc/ssl" "$STAGE/usr/lib/ssl"
		cp /etc/ssl/openssl.cnf "$STAGE/etc/ssl/openssl.cnf"
		ln -sf /etc/ssl/openssl.cnf "$STAGE/usr/lib/ssl/openssl.cnf"
	fi
	: >"$STAGE/etc/fstab"
	echo "root:x:0:0:root:/root:/bin/bash" >"$STAGE/etc/passwd"
	echo "root:x:0:" >"$STAGE/etc/group"

	# the project: binaries from BUILD, scripts from the tree
	local P=$STAGE/sluice
	mkdir -p "$P/build/bin" "$P/build/tests" "$P/build/bpf" "$P/build/vmtests" "$P/tests" "$P/vmtests"
	for f in "$build"/bin/* "$build/tests/bpf" "$build/vmtests/verifier-stats"; do
		[ -x "$f" ] || die "$f missing: run make first"
		cp "$f" "$P/build/${f#"$build"/}"
		copy_libs "$f"
	done
	cp "$build"/bpf/*.bpf.o "$P/build/bpf/"
	cp -r "$ROOT/tests/e2e" "$P/tests/e2e"
	cp "$ROOT/tests/simcluster" "$ROOT/tests/run.sh" "$P/tests/"
	cp "$HERE/vm-init.sh" "$STAGE/init"
	chmod 755 "$STAGE/init"
	cpio_gz "$STAGE" "$out"
}

# the file of module NAME in KDIR/modules (- and _ are the same), or nothing
module_file() {
	local kdir=$1 name=${2//-/_} p
	while read -r p; do
		local b=${p##*/}
		b=${b%%.ko*}
		if [ "${b//-/_}" = "$name" ]; then
			# modules.order names foo.ko even when the file is foo.ko.xz
			for p in "$kdir/modules/$p"{,.xz,.zst,.gz} "$kdir/modules/${p%.ko*}.ko"{,.xz,.zst,.gz}; do
				[ -f "$p" ] && { echo "$p"; return 0; }
			done
		fi
	done <"$kdir/modules/modules.order"
	return 0
}

module_builtin() {
	local kdir=$1 name=${2//-/_}
	grep -qE "/${name//_/[-_]}\.ko$" "$kdir/modules/modules.builtin" 2>/dev/null
}

decompress() { # src dst
	case $1 in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -dcq "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*.ko) cp "$1" "$2" ;;
	*) die "unknown module format: $1" ;;
	esac
}

declare -A MOD_DONE=()
MOD_ORDER=()
ABSENT=()
add_module() { # kdir name stage
	local kdir=$1 name=${2//-/_} stage=$3 f deps d
	[ -n "${MOD_DONE[$name]:-}" ] && return 0
	MOD_DONE[$name]=1
	f=$(module_file "$kdir" "$name")
	if [ -z "$f" ]; then
		if module_builtin "$kdir" "$name"; then
			echo "mkinitramfs: $name: built into the kernel"
		else
			ABSENT+=("$name")
		fi
		return 0
	fi
	decompress "$f" "$stage/lib/modules/$name.ko"
	deps=$(objcopy -O binary --only-section=.modinfo "$stage/lib/modules/$name.ko" /dev/stdout |
		tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' ')
	for d in $deps; do add_module "$kdir" "$d" "$stage"; done
	MOD_ORDER+=("$name")
}

cmd_modules() {
	local kdir=$1 out=$2 m
	[ -f "$kdir/modules/modules.order" ] || die "$kdir/modules/modules.order missing"
	STAGE=$(mktemp -d "${out%/*}/stage.XXXXXX")
	trap 'rm -rf "$STAGE"' EXIT
	mkdir -p "$STAGE/lib/modules" "$STAGE/etc/sluice"
	for m in $WANT_MODULES; do add_module "$kdir" "$m" "$STAGE"; done
	printf '%s\n' "${MOD_ORDER[@]}" >"$STAGE/etc/sluice/modules"
	printf '%s\n' "${ABSENT[@]}" | sed '/^$/d' >"$STAGE/etc/sluice/modules-absent"
	echo "mkinitramfs: modules (load order): ${MOD_ORDER[*]}${ABSENT:+; absent: ${ABSENT[*]}}"
	# busybox insmod wants the files under the usr-merged /lib
	mkdir -p "$STAGE/usr"
	mv "$STAGE/lib" "$STAGE/usr/lib"
	if [ -x "$kdir/bpftool" ]; then
		mkdir -p "$STAGE/usr/sbin"
		cp "$kdir/bpftool" "$STAGE/usr/sbin/bpftool"
		echo "mkinitramfs: bpftool: $("$kdir/bpftool" version 2>&1 | sed -n 1p) (the kernel's suite's)"
	fi
	cpio_gz "$STAGE" "$out"
}

case ${1:-} in
common) [ $# -eq 3 ] || die "usage: mkinitramfs.sh common BUILD OUT.cpio.gz"; cmd_common "$2" "$3" ;;
modules) [ $# -eq 3 ] || die "usage: mkinitramfs.sh modules KDIR OUT.cpio.gz"; cmd_modules "$2" "$3" ;;
*) die "usage: mkinitramfs.sh common BUILD OUT | modules KDIR OUT" ;;
esac
