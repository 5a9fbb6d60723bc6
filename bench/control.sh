#!/bin/bash
# The control plane at scale: time from `sluicectl apply` to every agent's
# ACK for one change, with 1,000 and 10,000 services of 10 endpoints each
# (ServiceEntry, STATIC endpoints), the size of a node's snapshot, and the
# resident memory of the control plane and an agent.
#
#   bench/control.sh BUILD_DIR     (BENCH_CONTROL_SIZES="1000 10000",
#                                   BENCH_ROUNDS=5)
#
# Two simulated nodes, each with a real agent joined to sluice-control
# (which runs in node1's network namespace). The config is loaded in
# chunks of 2,000 services (a request is at most 4 MiB); then ROUNDS times
# one ServiceEntry's endpoint changes and the time from launching sluicectl
# to the last ACK is read from the control plane's log (one clock). Only
# addresses in namespaces this script creates are used; no traffic is sent.
. "$(dirname "$0")/lib.sh"
SIZES=${BENCH_CONTROL_SIZES:-1000 10000}
C=bc$(( $$ % 100000 ))
CLUSTERS+=("$C")
"$SIM" up --name "$C" --nodes 2 --pods-per-node 1 >/dev/null
CP=$TMP/control
ADDR=192.168.77.1:15012
export SLUICE_CONTROL=https://$ADDR SLUICE_CREDENTIALS=$CP
ctl() { nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluicectl" "$@"; }
ms() { date -d "$1" +%s%3N; }
now_ms() { date +%s%3N; }

nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluice-control" --state-dir "$CP" --listen "$ADDR" \
	>"$TMP/control.log" 2>&1 &
CPID=$!
PIDS+=("$CPID")
for _ in $(seq 100); do grep -q 'listening on' "$TMP/control.log" && break; sleep 0.05; done
declare -A APID
for n in node1 node2; do
	pin=/sys/fs/bpf/sluice-bench-$C-$n
	AGENT_PINS+=("$pin")
	nsenter --net="/run/netns/slc.$C.$n" "$BIN/sluice-agent" --node "$n" \
		--cgroup "$("$SIM" list "$C" --json | jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .cgroup')" \
		--pin-root "$pin" --control "https://$ADDR" --ca-file "$CP/ca.crt" --state-dir "$TMP/agent.$n" \
		--join-token "$("$BIN/sluice-control" token create --state-dir "$CP" --node "$n")" \
		--flow-log none >"$TMP/agent.$n.log" 2>&1 &
	APID[$n]=$!
	PIDS+=("$!")
done

# wait_acked VERSION : both agents ACKed VERSION (120 s at most)
wait_acked() {
	for _ in $(seq 2400); do
		[ "$(grep -c "ACK version $1\$" "$TMP/control.log")" -ge 2 ] && return 0
		grep -q "NACK version $1:" "$TMP/control.log" && { echo "bench: NACK: $(grep NACK "$TMP/control.log" | tail -1)" >&2; exit 1; }
		sleep 0.05
	done
	echo "bench: version $1 not ACKed by both agents" >&2; tail -5 "$TMP"/*.log >&2; exit 1
}
# services FROM TO [CHANGED]: ServiceEntries FROM..TO-1; endpoint j of
# service i is 10.200.x.y from a pool of 10,000 addresses (at most 10,000
# distinct backends); CHANGED moves service FROM's first endpoint.
services() {
	awk -v from="$1" -v to="$2" -v changed="${3:-0}" 'BEGIN {
		for (i = from; i < to; i++) {
			printf "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
			printf "  name: s%d\n  namespace: bench\nspec:\n  hosts: [s%d.bench.svc.cluster.local]\n", i, i
			printf "  addresses: [10.%d.%d.%d]\n", 96 + int(i / 65536), int(i / 256) % 256, i % 256
			printf "  ports:\n  - {number: 80, name: tcp, protocol: TCP, targetPort: 8080}\n"
			printf "  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints:\n"
			for (j = 0; j < 10; j++) {
				a = (i * 10 + j) % 10000
				if (j == 0 && i == from && changed) a = 10000 + changed % 50000
				printf "  - {address: 10.%d.%d.%d}\n", 200 + int(a / 65536), int(a / 256) % 256, a % 256
			}
		}
	}'
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf '%-9s %-12s %-12s %-14s %-14s %-12s %-12s\n' SERVICES LOAD_S APPLY_ACK_MS SNAPSHOT_BYTES CONTROL_RSS_KB AGENT1_RSS_KB AGENT2_RSS_KB
loaded=0 change=0
for n in $SIZES; do
	t0=$(now_ms)
	for from in $(seq "$loaded" 2000 $((n - 1))); do
		to=$((from + 2000 > n ? n : from + 2000))
		services "$from" "$to" >"$TMP/chunk.yaml"
		out=$(ctl -o json apply -f "$TMP/chunk.yaml") || { echo "bench: apply refused" >&2; exit 1; }
		v=$(jq .version <<<"$out")
	done
	loaded=$n
	wait_acked "$v"
	load_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN {printf "%.1f", (b - a) / 1000}')
	for r in $(seq "$ROUNDS"); do
		change=$((change + 1))
		services 0 1 "$change" >"$TMP/one.yaml"
		t0=$(now_ms)
		out=$(ctl -o json apply -f "$TMP/one.yaml") || { echo "bench: apply refused" >&2; exit 1; }
		v=$(jq .version <<<"$out")
		wait_acked "$v"
		last=$(grep "ACK version $v\$" "$TMP/control.log" | awk '{print $1}' | sort | tail -1)
		echo $(( $(ms "$last") - t0 ))
	done >"$TMP/ack.$n"
	printf '%-9s %-12s %-12s %-14s %-14s %-12s %-12s\n' "$n" "$load_s" "$(median <"$TMP/ack.$n")" \
		"$(stat -c %s "$TMP/agent.node1/snapshot.json")" "$(rss "$CPID")" "$(rss "${APID[node1]}")" \
		"$(rss "${APID[node2]}")"
	echo "   apply->ACK ms per round: $(tr '\n' ' ' <"$TMP/ack.$n")" >&2
done
