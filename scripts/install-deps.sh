#!/bin/sh
# Install every Debian package sluice needs to build, test, benchmark and
# run its VM tests. Idempotent: packages already installed are skipped, and
# apt is not touched at all when nothing is missing.
#
#   scripts/install-deps.sh          install what is missing
#   scripts/install-deps.sh --check  exit 1 (and list them) if any are missing
set -eu

PKGS="
build-essential pkg-config make
clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
libssl-dev openssl libnghttp2-dev libjansson-dev libfyaml-dev libcurl4-openssl-dev
libcriterion-dev libclang-rt-14-dev
iproute2 iptables procps util-linux jq python3 groff-base
iperf3 sockperf wrk nginx-light libnginx-mod-stream prometheus curl tcpdump gnuplot-nox
qemu-system-x86 busybox-static cpio xz-utils zstd binutils
podman runc containernetworking-plugins
etcd-server etcd-client
"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	[ "${1:-}" = "--check" ] || echo "install-deps: all packages present"
	exit 0
fi

if [ "${1:-}" = "--check" ]; then
	echo "install-deps: missing:$missing"
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
