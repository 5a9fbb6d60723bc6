#!/bin/bash
# make demo: the whole mesh in under two minutes.
#
#   sluicectl install --set profile=demo -y     control plane, agents, a simulated
#                                               two-node cluster with sample workloads
#   a workload mix                              same-node and cross-node calls, a weighted
#                                               split, a pair denied by policy, HBONE mTLS
#   sluicectl top                               the live table, refreshed each second
#   sluicectl verify-install                    every check, and a live probe
#   sluicectl uninstall -y --purge              nothing left
#
# The demo's services and workloads: docs/install.md. DEMO_SECONDS sets how
# long the traffic runs (default 6).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
CTL=$BUILD/bin/sluicectl
SECS=${DEMO_SECONDS:-6}
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (BPF, cgroups, network namespaces)" >&2; exit 1; }

if [ -e /etc/sluice/install.json ]; then
	echo "demo: sluice is installed on this machine already (/etc/sluice); the demo installs" \
		"and removes its own: run it where sluice is not installed" >&2
	exit 1
fi
CLUSTER=$("$CTL" profile dump demo -o json | jq -r .demo.cluster)
LIB=/usr/local/lib/sluice
PIDS=()
TMP=$(mktemp -d /tmp/sluice-demo.XXXXXX)
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	step "sluicectl uninstall -y --purge"
	"$CTL" uninstall -y --purge
	rm -rf "$TMP"
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "sluicectl install --set profile=demo -y"
trap cleanup EXIT
trap 'exit 130' INT TERM
"$CTL" install --set profile=demo -y

in_pod() { local p=$1; shift; "$LIB/sluice-simcluster" exec "$CLUSTER" "$p" -- "$@"; }
step "traffic for $SECS s: sleep -> web (80% v1 same node, 20% v2 over HBONE), web -> ledger (HBONE), sleep -> ledger (denied)"
in_pod node1.pod1 "$LIB/sltest" loop --to 10.96.0.10:80 --duration "$SECS" >"$TMP/web.json" &
PIDS+=("$!")
in_pod node1.pod2 "$LIB/sltest" loop --to 10.96.0.20:90 --duration "$SECS" >"$TMP/ledger.json" &
PIDS+=("$!")
(for _ in $(seq $((SECS * 3))); do
	in_pod node1.pod1 "$LIB/sltest" connect --to 10.96.0.20:90 --timeout 500 >/dev/null || true
	sleep 0.3
done) &
PIDS+=("$!")
"$CTL" top --count "$SECS"
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
jq -r '"   sleep -> web:    \(.ok) connections, \(.failed) failed, per backend \(.backends)"' "$TMP/web.json"
jq -r '"   web -> ledger:   \(.ok) connections, \(.failed) failed"' "$TMP/ledger.json"

step "sluicectl verify-install"
"$CTL" verify-install
