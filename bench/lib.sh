# shellcheck shell=bash
# Shared pieces of the benchmarks: clusters with a server pod (sltest serve
# on 8080, sockperf on 11111) and client pods, the two measurements, and
# the recording of samples (bench/record.sh). A script sets CLUSTERS and
# AGENT_PINS for cleanup.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
BIN=$BUILD/bin
SIM=$ROOT/tests/simcluster
SECS=${BENCH_SECONDS:-3}
PAR=${BENCH_PARALLEL:-4}
ROUNDS=${BENCH_ROUNDS:-5}
OUT=$BUILD/bench
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
. "$ROOT/bench/record.sh"
rec_param rounds "$ROUNDS"
rec_param seconds "$SECS"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf

TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PIDS=()
CLUSTERS=()
AGENT_PINS=()
bench_cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${AGENT_PINS[@]}"; do "$BIN/sluice-agent" --node x --pin-root "$p" --uninstall >/dev/null 2>&1; done
	for c in "${CLUSTERS[@]}"; do "$SIM" down "$c" >/dev/null 2>&1; done
	if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: kept $TMP (BENCH_KEEP)" >&2; else rm -rf "$TMP"; fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

pod_ip() { "$SIM" list "$1" --json | jq -r --arg p "$2" '.nodes[].pods[] | select(.name == $p) | .ipv4'; }

setup_cluster() { # name pods: pod1 is the server, the others are clients
	local c=$1 p
	CLUSTERS+=("$c")
	"$SIM" up --name "$c" --nodes 1 --pods-per-node "$2" >/dev/null
	for p in $(seq 2 "$2"); do
		# thousands of connections/s: reuse TIME_WAIT ports on the client
		nsenter --net="/run/netns/slc.$c.node1.pod$p" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
			net.ipv4.ip_local_port_range="1024 65000"
	done
	# pinned, as the clients are (crr below): see there
	"$SIM" exec "$c" node1.pod1 -- taskset -c 1 "$BIN/sltest" serve --name srv --tcp 8080 \
		--ready "$TMP/ready.$c" >/dev/null 2>&1 &
	PIDS+=("$!")
	"$SIM" exec "$c" node1.pod1 -- taskset -c 1 sockperf sr --tcp -p 11111 >/dev/null 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 100); do [ -e "$TMP/ready.$c" ] && break; sleep 0.05; done
}

# start_agent CLUSTER [agent flags]: the agent on the cluster's node, fed
# $TMP/snap.$CLUSTER.json; sets AGENT
start_agent() {
	local c=$1 pin=/sys/fs/bpf/sluice-bench-$1
	shift
	[ -f "$TMP/snap.$c.json" ] || echo '{"services": []}' >"$TMP/snap.$c.json"
	[[ " ${AGENT_PINS[*]} " = *" $pin "* ]] || AGENT_PINS+=("$pin")
	nsenter --net="/run/netns/slc.$c.node1" "$BIN/sluice-agent" --node node1 \
		--cgroup "$("$SIM" list "$c" --json | jq -r '.nodes[0].cgroup')" \
		--snapshot "$TMP/snap.$c.json" --pin-root "$pin" "$@" >>"$TMP/agent.$c.log" 2>&1 &
	AGENT=$!
	PIDS+=("$AGENT")
}
stop_agent() { kill "$AGENT"; wait "$AGENT" 2>/dev/null || true; }
uninstall_agent() { "$BIN/sluice-agent" --node node1 --pin-root "/sys/fs/bpf/sluice-bench-$1" --uninstall >/dev/null 2>&1 || true; }

# agent_apply CLUSTER FILE VERSION: install FILE (with "version": VERSION);
# fails (1), with the agent log's last lines on stderr, if the agent has
# not applied it after 30 s
agent_apply() {
	jq --argjson v "$3" '.version = $v' "$2" >"$TMP/snap.tmp"
	mv "$TMP/snap.tmp" "$TMP/snap.$1.json"
	for _ in $(seq 600); do
		grep -q "applied snapshot version=$3 " "$TMP/agent.$1.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: agent did not apply version $3" >&2; tail -n 5 "$TMP/agent.$1.log" >&2; return 1
}

# paired_start CLUSTER VARIANT ROUND SERVER-IP FILE [AGENT FLAGS]: the
# paired design of the lb and policy benches (bench/README.md). With no
# sluice programs attached, direct's connection rate from pod2 to the
# server (the sample paired with VARIANT); then a fresh agent started on
# FILE (its version one more than the last, in V). 0 once the agent
# applied it: the caller measures VARIANT; else 1, with VARIANT recorded
# as failed for the round. Either way the caller then calls stop_agent.
V=0
paired_start() {
	local c=$1 var=$2 r=$3 ip=$4 f=$5
	shift 5
	uninstall_agent "$c"
	rec_sample conn/s direct "$r" "$(crr "$c" node1.pod2 "$ip" 8080)" "$var"
	V=$((V + 1))
	jq --argjson v "$V" '.version = $v' "$f" >"$TMP/snap.$c.json"
	start_agent "$c" "$@"
	agent_apply "$c" "$f" "$V" && return 0
	rec_failed "$var" "round $r: the agent did not apply $(basename "$f")"
	return 1
}

# The measurements print a number, or "fail:REASON" (rec_sample records it
# as the sample's error).
# crr: the client threads on CPU 0, the server (setup_cluster) on CPU 1.
# Left to the scheduler, where the five threads land moved one 3 s sample
# by up to 20% against the next on this 2-CPU VM, and a third of the time
# went idle in cross-CPU wakeups; pinned, samples of one variant agree
# within about 5%, and what a connection costs in CPU is what shows.
crr() { # cluster client-pod ip port: new connections per second
	local out
	out=$(timeout $((SECS + 30)) "$SIM" exec "$1" "$2" -- taskset -c 0 "$BIN/sltest" crr --to "$3:$4" \
		--duration "$SECS" --parallel "$PAR" 2>&1) || { echo "fail:sltest crr to $3:$4: $out"; return; }
	jq -r '.rate // "fail:no rate in sltest output"' <<<"$out" 2>/dev/null || echo "fail:sltest crr output: $out"
}
rtt() { # cluster client-pod ip: sockperf p50 round trip in microseconds
	local out
	out=$(timeout $((SECS + 30)) "$SIM" exec "$1" "$2" -- taskset -c 0 sockperf pp --tcp -i "$3" \
		-p 11111 -m 64 -t "$SECS" 2>&1) || { echo "fail:sockperf to $3: $(tail -n 3 <<<"$out")"; return; }
	awk '/percentile 50.000 =/ { p = $NF } END { print p == "" ? "fail:no p50 in sockperf output" : p }' <<<"$out"
}
# policy_snapshot CLUSTER SERVICES_JSON PORTS_JSON: every pod an identity,
# 1,000 unrelated compiled policy entries, and the server (pod1)
# default-deny with an ALLOW for every other pod on each of PORTS
policy_snapshot() {
	"$SIM" list "$1" --json | jq --argjson svc "$2" --argjson ports "$3" '
	{services: $svc,
	 identities: ([range(0; 1000) | {id: (1000 + .), spiffe: "spiffe://cluster.local/ns/bench/sa/x\(.)"}] +
		      [.nodes[0].pods[] | {id: (256 + (.name | split(".pod")[1] | tonumber)),
					    spiffe: "spiffe://cluster.local/ns/bench/sa/\(.name | gsub("\\."; "-"))"}]),
	 workloads: [.nodes[0].pods[] | {name: .name, namespace: "bench",
		identity: (256 + (.name | split(".pod")[1] | tonumber)), ipv4: .ipv4, ipv6: .ipv6,
		netns: "/run/netns/\(.netns)", interface: "p\(.name | split(".pod")[1])"}],
	 policies: ([range(0; 1000) | {action: (if . % 7 == 0 then "DENY" else "ALLOW" end),
				      source: (1000 + .), destination: (1000 + ((. * 13) % 1000)),
				      protocol: "TCP", port: (1000 + .)}] +
		    [.nodes[0].pods[1:][] | (256 + (.name | split(".pod")[1] | tonumber)) as $src |
		     $ports[] | {action: "ALLOW", source: $src, destination: 257, protocol: "TCP", port: .}])}'
}
