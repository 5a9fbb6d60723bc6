#!/usr/bin/env bash
# HTTP/2 floods against the real control plane (15012) and a real node
# proxy's HBONE port (node2's 15008), from node1's network namespace: rapid reset,
# CONTINUATION flood, SETTINGS and PING floods that never read the ACKs, a
# window that never opens, and 10,000 connections that never finish the
# TLS handshake. During each, a legitimate client (sluicectl status as the
# admin; a CONNECT with a workload certificate through HBONE) must get its
# answer within LEGIT_MS (LEGIT_HALF_MS for the half-open burst); after each, the daemons (control
# plane, node2's agent and proxy) must be alive and their
# peak RSS (VmHWM) under the bounds below (docs/operations.md, "Limits
# under hostile peers").
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/control_lib.sh"
source "$(dirname "$0")/hbone_lib.sh"
command -v openssl >/dev/null || skip "openssl missing"
command -v python3 >/dev/null || skip "python3 missing"
PROBE=$(cd "$(dirname "$0")" && pwd)/hbone_probe.py

CP_RSS_MB=128 AGENT_RSS_MB=128 PROXY_RSS_MB=128   # peak resident memory, MiB
# a legitimate request during a frame flood
LEGIT_MS=$((2000 * SCALE))
# and during the burst of half-open connections: its SYN may meet a full
# accept queue (TCP tries again after 1 s), and up to 4,096 connections
# queued ahead of it are accepted (and evicted) first
LEGIT_HALF_MS=$((5000 * SCALE))
SECS=3                           # each flood
HALF=10000                       # connections that never finish a handshake
# emulated machines: still past both daemons' 1,024 handshakes
[ "$SCALE" -gt 1 ] && HALF=2000
[ "$(ulimit -Hn)" -ge $((HALF + 2000)) ] || skip "the hard open-file limit ($(ulimit -Hn)) is below $((HALF + 2000))"
ulimit -n "$(ulimit -Hn)"

# the default handshake limit (10 s), not hb_setup's 2 s: half-open
# connections stay until evicted
HB_AGENT2="--hbone-handshake-timeout 10000"
hb_setup
SRV=$(pod_ip node2.pod1)
HB=192.168.77.2
serve node2.pod1 srv --tcp 8080
AGENT2=$(cat "$TMP/agent.node2.pid")
PROXY2=$(wait_serving node2)

# a workload certificate of the mesh CA for the legitimate HBONE client
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/good.key" \
	-subj /CN=good -out "$TMP/good.csr" 2>>"$TMP/openssl.log" || fail "CSR"
openssl x509 -req -in "$TMP/good.csr" -CA "$CP_DIR/ca.crt" -CAkey "$CP_DIR/ca.key" -CAcreateserial \
	-days 1 -out "$TMP/good.crt" -extfile <(printf 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/client\nextendedKeyUsage=clientAuth,serverAuth\n') \
	>>"$TMP/openssl.log" 2>&1 || fail "signing: $(tail -3 "$TMP/openssl.log")"
ADMIN=(--cert "$CP_DIR/admin.crt" --key "$CP_DIR/admin.key")

probe() { in_node node1 python3 "$PROBE" "$@" --ca "$CP_DIR/ca.crt"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
hwm_mb() { awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$1/status"; }

# legit: one request to each daemon, each within LEGIT_MS; WORST keeps the
# slowest of the run
WORST_CP=0 WORST_HB=0
legit() {
	local t0 t out
	t0=$(ms)
	out=$(in_node node1 timeout 10 "$BIN/sluicectl" status --control -o json 2>&1 </dev/null) ||
		fail "$1: sluicectl status during the flood: $out"
	t=$(($(ms) - t0))
	[ "$t" -le "$LEGIT_MS" ] || fail "$1: sluicectl status took $t ms (bound $LEGIT_MS)"
	[ "$t" -gt "$WORST_CP" ] && WORST_CP=$t
	t0=$(ms)
	out=$(probe "$HB" 15008 connect --cert "$TMP/good.crt" --key "$TMP/good.key" \
		--authority "$SRV:8080" --timeout 10 --status-only)
	jq -e '.status == 200' <<<"$out" >/dev/null || fail "$1: a CONNECT during the flood: $out"
	# from the TCP connect to the answer (python's own start-up is not the server's)
	t=$(jq '.seconds * 1000 | floor' <<<"$out")
	echo "$1 CONNECT $t ms: $out" >>"$TMP/legit.log"
	[ "$t" -le "$LEGIT_MS" ] || fail "$1: a CONNECT took $t ms (bound $LEGIT_MS)"
	[ "$t" -gt "$WORST_HB" ] && WORST_HB=$t
	return 0
}

alive() {
	kill -0 "$CP_PID" 2>/dev/null || fail "$1: sluice-control died"
	kill -0 "$AGENT2" 2>/dev/null || fail "$1: node2's agent died"
	kill -0 "$PROXY2" 2>/dev/null || fail "$1: node2's proxy died"
	local c a p
	c=$(hwm_mb "$CP_PID") a=$(hwm_mb "$AGENT2") p=$(hwm_mb "$PROXY2")
	[ "$c" -le "$CP_RSS_MB" ] || fail "$1: sluice-control's peak RSS is $c MiB (bound $CP_RSS_MB)"
	[ "$a" -le "$AGENT_RSS_MB" ] || fail "$1: node2's agent's peak RSS is $a MiB (bound $AGENT_RSS_MB)"
	[ "$p" -le "$PROXY_RSS_MB" ] || fail "$1: node2's proxy's peak RSS is $p MiB (bound $PROXY_RSS_MB)"
	note "$1: peak RSS control $c MiB, agent $a MiB, proxy $p MiB; slowest legit request so far: status $WORST_CP ms, CONNECT $WORST_HB ms"
}

# flood MODE EXPECT_JQ [probe args] : the mode against both daemons at
# once, legitimate requests while it runs, then how each server ended it
flood() {
	local mode=$1 expect=$2 p1 p2 LEGIT_MS=$LEGIT_MS
	[ "$mode" = halfopen ] && LEGIT_MS=$LEGIT_HALF_MS
	shift 2
	probe "${CP_ADDR%:*}" "${CP_ADDR##*:}" "$mode" --seconds "$SECS" --path /v1/status "$@" \
		>"$TMP/$mode.cp.json" 2>&1 &
	p1=$!
	probe "$HB" 15008 "$mode" --seconds "$SECS" --authority "$SRV:8080" \
		--cert "$TMP/good.crt" --key "$TMP/good.key" "$@" >"$TMP/$mode.hb.json" 2>&1 &
	p2=$!
	E2E_PIDS+=("$p1" "$p2")
	sleep 0.5
	legit "$mode"
	sleep 1
	legit "$mode"
	wait "$p1" "$p2" || true
	echo "$mode: $(cat "$TMP/$mode.cp.json") $(cat "$TMP/$mode.hb.json")" >>"$TMP/legit.log"
	for t in cp hb; do
		jq -e "$expect" "$TMP/$mode.$t.json" >/dev/null ||
			fail "$mode against $t: $(cat "$TMP/$mode.$t.json")"
	done
	note "$mode: control $(cat "$TMP/$mode.cp.json"), HBONE $(cat "$TMP/$mode.hb.json")"
	alive "$mode"
}

legit baseline
note "before: peak RSS control $(hwm_mb "$CP_PID") MiB, agent $(hwm_mb "$AGENT2") MiB, proxy $(hwm_mb "$PROXY2") MiB; status $WORST_CP ms, CONNECT $WORST_HB ms"

opens() { grep -c '"type":"open"' "$(run_dir node2)/flows.jsonl" || true; }
n0=$(opens)
flood rapid-reset '.outcome == "goaway" or .outcome == "eof" or .outcome == "reset"'
# each CONNECT is a connect() to the server; the connection is cut off
# within the TLS record that passes the limit (100), not a read batch later
n=$(($(opens) - n0))
[ "$n" -le 600 ] || fail "rapid reset: node2 opened $n tunnels before cutting the flood off"
note "rapid reset: node2 opened $n tunnels before cutting it off"
flood continuation '.outcome == "goaway" or .outcome == "eof" or .outcome == "reset"'
flood settings '.outcome == "eof" or .outcome == "reset"'
flood ping '.outcome == "eof" or .outcome == "reset"'
flood window0 '.outcome == "lasted" or .outcome == "eof"' --streams 32
flood halfopen '.open >= 1000' --conns "$HALF"
echo PASS
