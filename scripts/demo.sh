#!/bin/bash
# make demo: a simulated cluster (2 nodes, 2 pods each), a service with three
# backends, a client connecting through the VIP, and the per-backend spread.
# Everything it makes is removed on exit and on Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
BIN=$BUILD/bin
SIM=$ROOT/tests/simcluster
N=${DEMO_CONNECTIONS:-3000}
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (BPF, cgroups, network namespaces)" >&2; exit 1; }
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf

CL=demo$(( $$ % 100000 ))
TMP=$(mktemp -d /tmp/sluice-demo.XXXXXX)
PIN=/sys/fs/bpf/sluice-$CL-node1
PIDS=()
cleanup() {
	set +e
	echo
	echo "== cleaning up"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$BIN/sluice-agent" --node node1 --pin-root "$PIN" --uninstall 2>&1 | sed 's/^/   /'
	"$SIM" down "$CL" | sed 's/^/   /'
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
ip4() { "$SIM" list "$CL" --json | jq -r --arg p "$1" '.nodes[].pods[] | select(.name == $p) | .ipv4'; }

step "simulated cluster $CL: 2 nodes, 2 pods each"
"$SIM" up --name "$CL" --nodes 2 --pods-per-node 2

step "three backends: node1.pod2, node2.pod1, node2.pod2 (sltest serve, port 8080)"
for b in node1.pod2:web-a node2.pod1:web-b node2.pod2:web-c; do
	"$SIM" exec "$CL" "${b%%:*}" -- "$BIN/sltest" serve --name "${b#*:}" --tcp 8080 \
		--ready "$TMP/ready.${b#*:}" >/dev/null 2>&1 &
	PIDS+=("$!")
done
for b in web-a web-b web-c; do
	for _ in $(seq 100); do [ -e "$TMP/ready.$b" ] && break; sleep 0.05; done
done

snap() { # version weight-a weight-b weight-c
	cat >"$TMP/snap.tmp" <<EOF2
{"version": $1, "services": [{"name": "default/web", "vip": "10.96.0.10", "port": 80, "backends": [
  {"address": "$(ip4 node1.pod2)", "port": 8080, "weight": $2},
  {"address": "$(ip4 node2.pod1)", "port": 8080, "weight": $3},
  {"address": "$(ip4 node2.pod2)", "port": 8080, "weight": $4}]}]}
EOF2
	mv "$TMP/snap.tmp" "$TMP/snap.json"
	for _ in $(seq 200); do
		grep -q "applied snapshot version=$1 " "$TMP/agent.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "demo: the agent did not apply the snapshot:" >&2; cat "$TMP/agent.log" >&2; exit 1
}

step "sluice-agent on node1: service default/web, VIP 10.96.0.10:80"
echo '{"services": []}' >"$TMP/snap.json"
nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sluice-agent" --node node1 \
	--cgroup "$("$SIM" list "$CL" --json | jq -r '.nodes[0].cgroup')" \
	--snapshot "$TMP/snap.json" --pin-root "$PIN" >"$TMP/agent.log" 2>&1 &
PIDS+=("$!")
snap 1 1 1 1
sed 's/^/   /' "$TMP/agent.log"
echo
"$BIN/sluicectl" --pin-root "$PIN" inspect services

spread() {
	local out
	out=$("$SIM" exec "$CL" node1.pod1 -- "$BIN/sltest" spread --to 10.96.0.10:80 -n "$N")
	jq -r --argjson n "$N" '.backends | to_entries | sort_by(.key)[] |
		"   \(.key)  \(.value | tostring | (" " * (5 - length)) + .)  \(.value * 100 / $n | floor)%  " +
		("#" * (.value * 60 / $n | floor))' <<<"$out"
	jq -r '"   ok \(.ok) of \(.total)" + (if (.errors | length) > 0 then ", errors \(.errors)" else "" end)' <<<"$out"
}

step "client node1.pod1: $N new TCP connections to 10.96.0.10:80 (equal weights)"
spread
"$SIM" exec "$CL" node1.pod1 -- "$BIN/sltest" connect --to 10.96.0.10:80 |
	jq -r '"   getpeername() in the client: \(.peer) (the VIP; the kernel picked \(.backend))"'

step "weights changed to 1:2:5, applied as a diff with no restart"
snap 2 1 2 5
grep 'version=2' "$TMP/agent.log" | sed 's/^/   /'
spread

step "the maps, as bpftool sees them (BTF)"
bpftool map dump pinned "$PIN/sl_services" | head -n 30 | sed 's/^/   /'
