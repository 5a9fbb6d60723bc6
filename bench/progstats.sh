#!/bin/bash
# What one connection costs in each BPF program: run counts and run time
# from the kernel's own accounting (kernel.bpf_stats_enabled), over the
# connections of an sltest crr run through a VIP on one node.
#
#   bench/progstats.sh BUILD_DIR [plain|policy] [SECONDS]
#
# plain: a VIP with one backend and no traffic policy; policy: the same
# VIP with LEAST_REQUEST, maxConnections and outlierDetection. Prints one
# line per program of the node's agent (found through its pinned links):
# runs per connection, ns per run, ns per connection; and a JSON line with
# the same. Use it on two builds to compare (before/after a change): the
# figures are per connection, so the machine's speed mostly cancels out,
# but not its noise: run it more than once.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/progstats.sh BUILD_DIR [plain|policy] [SECONDS]}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
MODE=${2:-plain}
SECS=${3:-5}
BIN=$BUILD/bin
SIM=$ROOT/tests/simcluster
[ "$(id -u)" -eq 0 ] || { echo "progstats: needs root" >&2; exit 1; }
command -v bpftool >/dev/null || { echo "progstats: bpftool missing" >&2; exit 1; }
C=bs$(( $$ % 100000 ))
PIN=/sys/fs/bpf/sluice-progstats-$C
TMP=$(mktemp -d /tmp/sluice-progstats.XXXXXX)
PIDS=()
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	set +e
	sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$BIN/sluice-agent" --node node1 --pin-root "$PIN" --uninstall >/dev/null 2>&1
	"$SIM" down "$C" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SIM" up --name "$C" --nodes 1 --pods-per-node 2 >/dev/null
nsenter --net="/run/netns/slc.$C.node1.pod2" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
	net.ipv4.ip_local_port_range="1024 65000"
"$SIM" exec "$C" node1.pod1 -- "$BIN/sltest" serve --name srv --tcp 8080 --ready "$TMP/ready" \
	>/dev/null 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/ready" ] && break; sleep 0.05; done
S=$("$SIM" list "$C" --json | jq -r '.nodes[0].pods[] | select(.name == "node1.pod1") | .ipv4')
traffic=
[ "$MODE" = policy ] && traffic=', "traffic": {"lb": "LEAST_REQUEST", "max_connections": 1000000, "outlier": {"consecutive_errors": 5}}'
echo '{"version": 1, "services": [{"name": "b/t", "vip": "10.96.7.7", "port": 80, "backends": [{"address": "'"$S"'", "port": 8080}]'"$traffic"'}]}' >"$TMP/snap.json"
nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluice-agent" --node node1 \
	--cgroup "$("$SIM" list "$C" --json | jq -r '.nodes[0].cgroup')" --snapshot "$TMP/snap.json" \
	--pin-root "$PIN" --flow-log none >"$TMP/agent.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 600); do grep -qs 'applied snapshot version=1 ' "$TMP/agent.log" && break; sleep 0.05; done
grep -q 'applied snapshot version=1 ' "$TMP/agent.log" || { echo "progstats: agent did not apply" >&2; exit 1; }

# the agent's programs: those of its pinned links
progs() {
	for l in "$PIN"/links/*; do
		bpftool -j link show pinned "$l" | jq -r '.prog_id'
	done | sort -u
}
stats() {
	for id in $(progs); do
		bpftool -j prog show id "$id" | jq -c '{name, run_cnt: (.run_cnt // 0), run_time_ns: (.run_time_ns // 0)}'
	done
}
sysctl -qw kernel.bpf_stats_enabled=1
stats >"$TMP/before"
out=$("$SIM" exec "$C" node1.pod2 -- "$BIN/sltest" crr --to 10.96.7.7:80 --duration "$SECS" --parallel 2)
stats >"$TMP/after"
sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
n=$(jq -r '.connections' <<<"$out")
[ "$n" -gt 0 ] || { echo "progstats: no connections: $out" >&2; exit 1; }
echo "progstats: $MODE, $n connections ($(jq -r .rate <<<"$out") conn/s), build $BUILD"
jq -s --argjson n "$n" --arg mode "$MODE" '
	(.[0:length/2] | map({(.name): .}) | add) as $a | (.[length/2:] | map({(.name): .}) | add) as $b |
	{mode: $mode, connections: $n, programs: [$b | keys[] as $k |
		($b[$k].run_cnt - $a[$k].run_cnt) as $runs | ($b[$k].run_time_ns - $a[$k].run_time_ns) as $ns |
		{program: $k, runs_per_conn: (($runs / $n) * 100 | round / 100),
		 ns_per_run: (if $runs > 0 then ($ns / $runs | round) else 0 end),
		 ns_per_conn: ($ns / $n | round)}]}' "$TMP/before" "$TMP/after" >"$TMP/result.json"
jq -r '.programs[] | "\(.program)\t\(.runs_per_conn) runs/conn\t\(.ns_per_run) ns/run\t\(.ns_per_conn) ns/conn"' \
	"$TMP/result.json" | column -t -s $'\t'
jq -c . "$TMP/result.json"
