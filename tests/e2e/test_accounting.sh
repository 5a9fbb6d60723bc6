#!/bin/bash
# Exact accounting: N connections through a VIP, each sending exactly 5
# bytes and receiving exactly 10 (the client closes first), plus B bulk
# connections from the same client sending 1 MiB, half-closing, and reading the
# 1 MiB + 5 byte answer to EOF (so the FINs cross the other way); the counters (both reporters), the Prometheus metrics and
# the close events report exactly those bytes and N opens and closes, with
# Istio's labels. A denied connection is counted and reported. /metrics
# passes promtool.
. "$(dirname "$0")/lib.sh"
e2e_init 1 3
command -v promtool >/dev/null || skip "promtool missing (Debian package prometheus)"

N=40
IDS='{"node1.pod1": 256, "node1.pod2": 257, "node1.pod3": 258}'
POL='[{"action": "DENY", "source": 258, "destination": 257, "protocol": "TCP"}]'
SVC='[{"name": "default/web", "vip": "10.96.0.10", "port": 80, "backends": [{"address": "'$(pod_ip node1.pod2)'", "port": 8080}]}]'
mesh_snapshot node1 1 "$IDS" "$POL" "$SVC"
PORT=$((19000 + $$ % 1000))
agent_start node1 --metrics-addr "127.0.0.1:$PORT" --flow-log "$TMP/flows.jsonl"
wait_applied node1 1
serve node1.pod2 acct --tcp 8080   # name line "acct\n": 5 bytes, echo of "ping\n": 5

for i in $(seq $N); do
	out=$(in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80) || fail "connect $i: $out"
done
# observe, started before the traffic it must see
"$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json observe --flow-log "$TMP/flows.jsonl" \
	--pod node1.pod3 --verdict denied --count 1 --timeout 20 >"$TMP/observe.json" &
obs=$!
E2E_PIDS+=("$obs")
sleep 0.3
out=$(in_pod node1.pod3 "$BIN/sltest" connect --to 10.96.0.10:80) && fail "denied pair connected: $out"
wait "$obs" || fail "sluicectl observe did not see the denial"
# denied at connect(), or (kernels before 5.14) by tc at the destination,
# which does not know the VIP the client used
if connect_knows_client; then
	DREASON=policy_connect DREP=source DSVC=default/web
else
	DREASON=policy_ingress DREP=destination DSVC=unknown
fi
[ "$(jq -r '.reason + " " + .source.workload + " " + .service' "$TMP/observe.json")" = "$DREASON node1.pod3 $DSVC" ] ||
	fail "observe: $(cat "$TMP/observe.json")"
note "observe -o json: $(cat "$TMP/observe.json")"
B=5
for i in $(seq $B); do
	# read while sending: the backend echoes, and a client that only
	# writes can fill both socket buffers and stall
	in_pod node1.pod1 python3 -c '
import socket, sys, threading
s = socket.create_connection(("10.96.0.10", 80), timeout=30)
got = [0]
def reader():
    while True:
        b = s.recv(65536)
        if not b:
            return
        got[0] += len(b)
t = threading.Thread(target=reader)
t.start()
s.sendall(b"x" * 1048576)
s.shutdown(socket.SHUT_WR)
t.join()
sys.exit(0 if got[0] == 1048576 + 5 else 1)' || fail "bulk connection $i"
done
sleep 0.5

metrics() { nsenter --net="/run/netns/slc.$CL.node1" curl -sf "http://127.0.0.1:$PORT/metrics"; }
metrics >"$TMP/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool check metrics failed"
grep -v '^#' "$TMP/metrics.txt" | grep -E 'istio_tcp|denied' | sed 's/^/   /'

val() { # metric reporter [extra label match]
	grep "^$1{reporter=\"$2\"" "$TMP/metrics.txt" | grep -- "${3:-}" | awk '{ s += $NF } END { print s + 0 }'
}
check() { [ "$(val "$1" "$2" "${4:-}")" = "$3" ] || fail "$1 reporter=$2: $(val "$1" "$2" "${4:-}"), want $3"; }
for r in source destination; do
	check istio_tcp_connections_opened_total $r $((N + B)) 'source_workload="node1.pod1"'
	check istio_tcp_connections_closed_total $r $((N + B)) 'source_workload="node1.pod1"'
	check istio_tcp_received_bytes_total $r $((5 * N + 1048576 * B)) 'source_workload="node1.pod1"'
	check istio_tcp_sent_bytes_total $r $((10 * N + 1048581 * B)) 'source_workload="node1.pod1"'
done
grep -q 'istio_tcp_connections_opened_total{reporter="source",source_workload="node1.pod1",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/node1-pod1",destination_service="default/web",destination_workload="node1.pod2",destination_workload_namespace="default",destination_principal="spiffe://cluster.local/ns/default/sa/node1-pod2",destination_port="8080",request_protocol="tcp"}' \
	"$TMP/metrics.txt" || fail "labels are not Istio's"
# one denial at connect(); tc sees the SYN and its retransmission
d=$(val sluice_connections_denied_total $DREP 'source_workload="node1.pod3"')
[ "$d" -ge 1 ] && { [ $DREP = destination ] || [ "$d" -eq 1 ]; } || fail "denied counter: $d"
grep -qE "sluice_drops_total\{reason=\"$DREASON\"\} [1-9]" "$TMP/metrics.txt" || fail "$DREASON drop not counted"

# the close events carry the same bytes
F=$TMP/flows.jsonl
c=$(jq -s '[.[] | select(.type == "close" and .reporter == "source")] | length' "$F")
[ "$c" -eq $((N + B)) ] || fail "close events (source): $c, want $((N + B))"
b=$(jq -s '[.[] | select(.type == "close" and .reporter == "source") | .bytes_sent] | add' "$F")
[ "$b" -eq $((5 * N + 1048576 * B)) ] || fail "close events bytes_sent: $b, want $((5 * N + 1048576 * B))"
b=$(jq -s '[.[] | select(.type == "close" and .reporter == "destination") | .bytes_received] | add' "$F")
[ "$b" -eq $((10 * N + 1048581 * B)) ] || fail "close events (destination) bytes_received: $b, want $((10 * N + 1048581 * B))"
d=$(jq -s --arg r $DREASON '[.[] | select(.type == "deny" and .reason == $r and .source.workload == "node1.pod3")] | length' "$F")
[ "$d" -ge 1 ] || fail "deny events: $d, want at least 1"
# each end named by its identity: workload, namespace and principal
w=$(jq -sc '[.[] | select(.type == "close" and .reporter == "source")][0] |
	[.source.workload, .source.namespace, .source.principal, .destination.workload, .destination.principal]' "$F")
[ "$w" = '["node1.pod1","default","spiffe://cluster.local/ns/default/sa/node1-pod1","node1.pod2","spiffe://cluster.local/ns/default/sa/node1-pod2"]' ] ||
	fail "close event names: $w"
note "flow log: $(wc -l <"$F") events; a close event: $(grep -m1 '"close"' "$F")"
t=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" observe --flow-log "$F" --since-start --type close \
	--service default/web --count 3 --timeout 5) || fail "observe table"
[ "$(wc -l <<<"$t")" -eq 3 ] || fail "observe --count 3 printed: $t"
note "observe: $(head -n1 <<<"$t")"
