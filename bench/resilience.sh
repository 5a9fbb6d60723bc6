#!/bin/bash
# Outlier detection and traffic policies in the kernel (bench "resilience"),
# side by side in the same run, every sample recorded (bench/record.sh).
#
#   bench/resilience.sh BUILD_DIR        (make bench)
#
# One node; pods 1-3 are backends (sltest serve), the others clients.
#
# During a backend failure: four client threads make connections one after
# another for BENCH_FAIL_SECONDS (default 10; connect timeout 2 s) through a VIP of
# the three backends; one second in, backend 1 fails: blackholed (an
# iptables DROP of its SYNs in its pod: every connect to it times out) or
# killed (its process gone: RST to the SYN). The same failure script for
# each variant:
#   no-od      sluice load balancing, no outlierDetection
#   od         sluice with outlierDetection (3 consecutive failures,
#              baseEjectionTime 60 s, maxEjectionPercent 50)
#   iptables   a kube-proxy-style DNAT VIP (KUBE-SVC statistic rules to
#              three KUBE-SEP chains) in the node's netns, no sluice
# Metrics: failed and successful connections in the window, and the p99
# connect() time in ms (a failed attempt counts with the time it took).
# With a blackholed backend each failure holds a thread for the 2 s
# timeout, so failures cannot exceed 4 threads x 9 s / 2 s (about 20):
# the successes show what the failures cost; the p99 reaches the timeout
# only while fewer than 100 connections succeed per failure.
# Each round uses fresh services, so no ejection carries over.
#
# With policies on vs off: new connections per second (sltest crr) through
# a VIP with LEAST_REQUEST, maxConnections (never reached) and
# outlierDetection, against a plain VIP of the same backends: goal on/off
# >= 0.95.
BENCH=resilience
. "$(dirname "$0")/lib.sh"
FAILSECS=${BENCH_FAIL_SECONDS:-10}
rec_param fail_seconds "$FAILSECS"
for m in blackhole kill; do
	rec_metric "failed-$m" conn lower "connections failed in $FAILSECS s, backend 1 of 3 $m at 1 s"
	rec_metric "ok-$m" conn higher "connections that succeeded in those $FAILSECS s"
	rec_metric "p99-$m" ms lower "p99 connect() time in those $FAILSECS s"
	rec_compare "failed-$m" od no-od
	rec_compare "failed-$m" od iptables
	rec_compare "ok-$m" od no-od
	rec_compare "ok-$m" od iptables
	rec_compare "p99-$m" od no-od
	rec_compare "p99-$m" od iptables
done
rec_metric conn/s conn/s higher "new TCP connections per second, 64 B request/response (sltest crr, $PAR threads)"
rec_compare conn/s policy-on policy-off '>=' 0.95
command -v python3 >/dev/null || { rec_failed '*' "python3 missing (bench/connloop.py)"; rec_done; exit 1; }
command -v iptables >/dev/null || { rec_failed '*' "iptables missing"; rec_done; exit 1; }

C=br$(( $$ % 100000 ))
CLUSTERS+=("$C")
"$SIM" up --name "$C" --nodes 1 --pods-per-node 6 >/dev/null
for p in 4 5 6; do
	nsenter --net="/run/netns/slc.$C.node1.pod$p" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65000"
done
declare -A SRV=()
serve() { # pod number
	rm -f "$TMP/ready.b$1"
	"$SIM" exec "$C" "node1.pod$1" -- taskset -c 1 "$BIN/sltest" serve --name "b$1" --tcp 8080 \
		--ready "$TMP/ready.b$1" >/dev/null 2>&1 &
	SRV[$1]=$!
	PIDS+=("$!")
	for _ in $(seq 100); do [ -e "$TMP/ready.b$1" ] && return 0; sleep 0.05; done
	echo "bench: backend b$1 did not start" >&2
	return 1
}
for p in 1 2 3; do serve "$p"; done
B=()
for p in 1 2 3; do B+=("$(pod_ip "$C" "node1.pod$p")"); done
bes='[{"address": "'${B[0]}'", "port": 8080}, {"address": "'${B[1]}'", "port": 8080}, {"address": "'${B[2]}'", "port": 8080}]'
od='{"outlier": {"consecutive_errors": 3, "base_ejection_ms": 60000, "max_ejection_percent": 50}}'
pol='{"lb": "LEAST_REQUEST", "max_connections": 1000000, "outlier": {"consecutive_errors": 5}}'
# per round and failure mode its own no-od and od VIP ports (2r, 2r+1 for
# blackhole and kill), so that an ejection never carries over
jq -n --argjson bes "$bes" --argjson od "$od" --argjson pol "$pol" --argjson rounds "$ROUNDS" '
	{services: ([range(0; $rounds * 2) | {name: "bench/noop\(.)", vip: "10.96.8.1", port: (1000 + .), backends: $bes},
		     {name: "bench/od\(.)", vip: "10.96.8.2", port: (1000 + .), backends: $bes, traffic: $od}] +
		    [{name: "bench/off", vip: "10.96.8.3", port: 80, backends: $bes},
		     {name: "bench/on", vip: "10.96.8.4", port: 80, backends: $bes, traffic: $pol}])}' >"$TMP/snap.json"
start_agent "$C" --flow-log none
agent_apply "$C" "$TMP/snap.json" 1 || { rec_failed '*' "the agent did not apply the snapshot"; rec_done; exit 1; }

# kube-proxy-style: KUBE-SERVICES -> KUBE-SVC (random 1/3, 1/2, rest) -> KUBE-SEP DNAT
{
	echo "*nat"
	echo ":KUBE-SERVICES - [0:0]"; echo ":KUBE-SVC-BENCH - [0:0]"
	for i in 0 1 2; do echo ":KUBE-SEP-BENCH$i - [0:0]"; done
	echo "-A PREROUTING -j KUBE-SERVICES"
	echo "-A KUBE-SERVICES -d 10.96.8.5/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-BENCH"
	echo "-A KUBE-SVC-BENCH -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-BENCH0"
	echo "-A KUBE-SVC-BENCH -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-BENCH1"
	echo "-A KUBE-SVC-BENCH -j KUBE-SEP-BENCH2"
	for i in 0 1 2; do echo "-A KUBE-SEP-BENCH$i -p tcp -m tcp -j DNAT --to-destination ${B[$i]}:8080"; done
	echo "COMMIT"
} >"$TMP/ipt.rules"
nsenter --net="/run/netns/slc.$C.node1" iptables-restore --noflush <"$TMP/ipt.rules" ||
	{ rec_failed iptables "iptables-restore of the kube-proxy-style rules failed"; }

ns1=/run/netns/slc.$C.node1.pod1
fail_b1() { # blackhole|kill
	if [ "$1" = blackhole ]; then
		nsenter --net="$ns1" iptables -A INPUT -p tcp --dport 8080 --syn -j DROP
	else
		kill "${SRV[1]}"; wait "${SRV[1]}" 2>/dev/null || true
	fi
}
heal_b1() {
	if [ "$1" = blackhole ]; then
		nsenter --net="$ns1" iptables -D INPUT -p tcp --dport 8080 --syn -j DROP
	else
		serve 1
	fi
}
# one window: the client from pod CLIENT to IP PORT, the failure at 1 s
window() { # variant round mode client ip port
	local out
	( sleep 1; fail_b1 "$3" ) &
	local killer=$!
	out=$(timeout $((FAILSECS + 30)) "$SIM" exec "$C" "$4" -- python3 "$ROOT/bench/connloop.py" \
		"$5" "$6" "$FAILSECS" 2 4 2>&1) || out="fail:connloop: $out"
	wait "$killer"
	heal_b1 "$3"
	if [[ $out = fail:* ]] || ! jq -e . >/dev/null 2>&1 <<<"$out"; then
		rec_sample "failed-$3" "$1" "$2" "fail:${out#fail:}"
		rec_sample "p99-$3" "$1" "$2" "fail:${out#fail:}"
		rec_sample "ok-$3" "$1" "$2" "fail:${out#fail:}"
		return
	fi
	echo "bench: $1 $3 round $2: $out"
	rec_sample "failed-$3" "$1" "$2" "$(jq -r .failed <<<"$out")"
	rec_sample "p99-$3" "$1" "$2" "$(jq -r .p99_ms <<<"$out")"
	rec_sample "ok-$3" "$1" "$2" "$(jq -r '.attempts - .failed' <<<"$out")"
}
for r in $(seq "$ROUNDS"); do
	echo "bench: resilience round $r/$ROUNDS"
	i=0
	for mode in blackhole kill; do
		port=$((1000 + 2 * (r - 1) + i))
		window no-od "$r" "$mode" node1.pod4 10.96.8.1 "$port"
		window od "$r" "$mode" node1.pod5 10.96.8.2 "$port"
		window iptables "$r" "$mode" node1.pod6 10.96.8.5 80
		i=$((i + 1))
	done
	rec_sample conn/s policy-off "$r" "$(crr "$C" node1.pod4 10.96.8.3 80)"
	rec_sample conn/s policy-on "$r" "$(crr "$C" node1.pod5 10.96.8.4 80)"
done
stop_agent
rec_done
