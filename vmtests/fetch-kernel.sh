#!/bin/bash
# Fetch one of Debian's cloud kernels (vmlinuz + modules) through apt, with a
# private apt configuration under OUTDIR/apt/<suite> (Dir::Etc, Dir::State,
# Dir::Cache): the machine's own sources, state and cache are never touched.
#
#   vmtests/fetch-kernel.sh KERNEL OUTDIR      KERNEL: 5.10 | 6.1 | 6.12
#
# 5.10 comes from bullseye, 6.1 from bookworm, 6.12 from trixie, all from the
# mirror the machine's own apt sources use (VMTEST_MIRROR overrides it);
# the suite's current cloud kernel, or the package VMTEST_KERNEL_PKG names.
# Result: OUTDIR/<KERNEL>/kernel/{vmlinuz,config,release,package,modules/}
# where modules/ is the unpacked lib/modules/<release> tree of the package.
#
# For 5.10 also bullseye's own bpftool (OUTDIR/5.10/kernel/bpftool): the
# host's bpftool 7.x asks BPF_PROG_QUERY for per-program attach flags, which
# kernels before 6.0 refuse with EINVAL, so its `cgroup show` lists nothing
# and exits 255 there. Bullseye's (5.10) needs only libc, libelf, zlib and
# libcap, which the host has.
set -euo pipefail

K=${1:?usage: fetch-kernel.sh KERNEL OUTDIR}
OUT=${2:?usage: fetch-kernel.sh KERNEL OUTDIR}
case $K in
5.10) SUITE=bullseye ;;
6.1) SUITE=bookworm ;;
6.12) SUITE=trixie ;;
*) echo "fetch-kernel: unknown kernel '$K' (5.10, 6.1 or 6.12; KERNEL_IMAGE=path for others)" >&2; exit 2 ;;
esac
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
KDIR=$OUT/$K/kernel
BPFTOOL_FROM_SUITE=0
[ "$K" = 5.10 ] && BPFTOOL_FROM_SUITE=1

# The Debian mirror of the machine's own sources (one-line or deb822).
mirror() {
	[ -n "${VMTEST_MIRROR:-}" ] && { echo "$VMTEST_MIRROR"; return; }
	local f u
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		u=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f" |
			grep -v -- '-security' | head -n1 || true)
		[ -n "$u" ] && { echo "${u%/}"; return; }
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		u=$(awk 'tolower($1) == "uris:" { print $2 }' "$f" | grep -E '/debian/?$' | head -n1 || true)
		[ -n "$u" ] && { echo "${u%/}"; return; }
	done
	echo "fetch-kernel: no Debian mirror found in /etc/apt/sources.list*; set VMTEST_MIRROR" >&2
	return 1
}

if [ -f "$KDIR/vmlinuz" ] && [ -d "$KDIR/modules" ] && [ -f "$KDIR/release" ] &&
	{ [ "$BPFTOOL_FROM_SUITE" = 0 ] || [ -x "$KDIR/bpftool" ]; }; then
	echo "fetch-kernel: $K: have $(cat "$KDIR/package") ($(cat "$KDIR/release"))"
	exit 0
fi

MIRROR=$(mirror)
A=$OUT/apt/$SUITE
mkdir -p "$A/etc/apt.conf.d" "$A/etc/preferences.d" "$A/etc/sources.list.d" \
	"$A/state/lists/partial" "$A/cache/archives/partial"
: >"$A/state/status"
cat >"$A/etc/sources.list" <<EOT
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main
EOT
APTOPTS=(
	-o "Dir::Etc=$A/etc" -o "Dir::Etc::sourcelist=$A/etc/sources.list"
	-o "Dir::Etc::sourceparts=$A/etc/sources.list.d" -o "Dir::Etc::parts=$A/etc/apt.conf.d"
	-o "Dir::Etc::preferencesparts=$A/etc/preferences.d"
	-o "Dir::State=$A/state" -o "Dir::State::status=$A/state/status"
	-o "Dir::Cache=$A/cache" -o "APT::Architecture=amd64"
	-o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
	-o "Debug::NoLocking=1"
)
echo "fetch-kernel: $K: apt update ($MIRROR $SUITE, private config in $A)"
apt-get "${APTOPTS[@]}" -qq update

# linux-image-cloud-amd64 depends on the current versioned package
# (linux-image-5.10.0-NN-cloud-amd64, linux-image-6.12.NN+debN-cloud-amd64...).
# VMTEST_KERNEL_PKG names another one of the suite (an older ABI, to tell
# a kernel's regression from ours).
PKG=${VMTEST_KERNEL_PKG:-$(apt-cache "${APTOPTS[@]}" depends linux-image-cloud-amd64 |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !n++ { print $2 }')}
[ -n "$PKG" ] || { echo "fetch-kernel: no linux-image-*-cloud-amd64 dependency of linux-image-cloud-amd64 in $SUITE" >&2; exit 1; }
VER=$(apt-cache "${APTOPTS[@]}" show "$PKG" | awk '$1 == "Version:" && !n++ { print $2 }')
echo "fetch-kernel: $K: $PKG $VER"

DL=$A/debs
rm -rf "$DL"
mkdir -p "$DL"
(cd "$DL" && apt-get "${APTOPTS[@]}" -qq download "$PKG")
DEB=$(ls "$DL"/"${PKG}"_*.deb | head -n1)
if [ "$BPFTOOL_FROM_SUITE" = 1 ]; then
	(cd "$DL" && apt-get "${APTOPTS[@]}" -qq download bpftool)
fi

rm -rf "$KDIR.tmp"
mkdir -p "$KDIR.tmp/x"
dpkg -x "$DEB" "$KDIR.tmp/x"
REL=${PKG#linux-image-}
[ -f "$KDIR.tmp/x/boot/vmlinuz-$REL" ] || REL=$(ls "$KDIR.tmp/x/boot" | sed -n 's/^vmlinuz-//p' | head -n1)
mv "$KDIR.tmp/x/boot/vmlinuz-$REL" "$KDIR.tmp/vmlinuz"
[ -f "$KDIR.tmp/x/boot/config-$REL" ] && mv "$KDIR.tmp/x/boot/config-$REL" "$KDIR.tmp/config"
if [ -d "$KDIR.tmp/x/lib/modules/$REL" ]; then
	mv "$KDIR.tmp/x/lib/modules/$REL" "$KDIR.tmp/modules"
else
	mv "$KDIR.tmp/x/usr/lib/modules/$REL" "$KDIR.tmp/modules"
fi
rm -rf "$KDIR.tmp/x"
if [ "$BPFTOOL_FROM_SUITE" = 1 ]; then
	mkdir -p "$KDIR.tmp/x"
	dpkg -x "$(ls "$DL"/bpftool_*.deb | head -n1)" "$KDIR.tmp/x"
	mv "$KDIR.tmp/x/usr/sbin/bpftool" "$KDIR.tmp/bpftool"
	rm -rf "$KDIR.tmp/x"
	"$KDIR.tmp/bpftool" version 2>&1 | sed -n "1s/^/fetch-kernel: $K: $SUITE's /p"
fi
echo "$REL" >"$KDIR.tmp/release"
echo "$PKG $VER" >"$KDIR.tmp/package"
rm -rf "$KDIR"
mkdir -p "$(dirname "$KDIR")"
mv "$KDIR.tmp" "$KDIR"
echo "fetch-kernel: $K: $(cat "$KDIR/package") -> $KDIR"
