#!/usr/bin/env bash
# HBONE through both node proxies (outbound on node1 fed by sl_origdst,
# HBONE to node2's 15008): secure naming (a node proxy that answers for
# the server without hosting it, node1's own reached through a DNAT, is
# refused by the client: log line and counter); request/response with
# both principals in both nodes' metrics and flow logs; an identity the
# policy denies is refused after authentication and counted; a node
# asking for a certificate of a workload it does not run is refused (403).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/control_lib.sh"
source "$(dirname "$0")/hbone_lib.sh"

hb_setup
SRV=$(pod_ip node2.pod1)
# bulk sizes: 1 GiB and 500 connections; 1/64 and 50 on emulated machines
BULK=$((1 << 30)) CONC=500
[ "$SCALE" -gt 1 ] && BULK=$((1 << 24)) CONC=50
serve node2.pod1 srv --tcp 8080

origdst_fill node1.pod1 "$SRV" 8080 client
SRV_ID=spiffe://cluster.local/ns/default/sa/server CLI_ID=spiffe://cluster.local/ns/default/sa/client
if in_node node1 iptables -t nat -A OUTPUT -p tcp -d 192.168.77.2 --dport 15008 \
	-j DNAT --to-destination 192.168.77.1:15008 2>"$TMP/iptables.err"; then
	note "secure naming: node1's own proxy answers at node2's HBONE address, the client refuses it"
	out=$(in_pod node1.pod1 "$BIN/sltest" connect --to "$HB_OUT" --timeout 3000 || true)
	jq -e '.ok == false' <<<"$out" >/dev/null || fail "a node that does not host the server got the connection: $out"
	wait_log "$TMP/agent.node1.log" "refused: not the destination's identity: the server presented spiffe://cluster.local/sluice/node/node1, expected $SRV_ID" 1
	[ "$(metric node1 '^sluice_hbone_identity_mismatch_total ')" -ge 1 ] || fail "no sluice_hbone_identity_mismatch_total on node1"
	jq -e -s 'map(select(.path == "hbone" and .type == "deny" and .reason == "identity_mismatch")) | length >= 1' \
		"$(run_dir node1)/flows.jsonl" >/dev/null || fail "no identity_mismatch deny event on node1"
	in_node node1 iptables -t nat -D OUTPUT -p tcp -d 192.168.77.2 --dport 15008 \
		-j DNAT --to-destination 192.168.77.1:15008
else
	note "no iptables nat here ($(head -c 200 "$TMP/iptables.err")): the impostor node was not tried"
fi

note "request/response through both proxies: node2 presents the server's certificate"
out=$(in_pod node1.pod1 "$BIN/sltest" connect --to "$HB_OUT" --timeout 5000 || true)
jq -e ".ok and .backend == \"srv\" and .echo" <<<"$out" >/dev/null || { tail -5 "$(run_dir node2)/flows.jsonl"; tail -5 "$(run_dir node1)/flows.jsonl"; fail "through the proxies: $out"; }
sleep 0.3
n=$(metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*source_principal="spiffe://cluster.local/ns/default/sa/client".*destination_principal="spiffe://cluster.local/ns/default/sa/server".*connection_security_policy="mutual_tls"')
[ "$n" -ge 1 ] || fail "node2 counted no proxied connection from the client's principal"
n=$(metric node1 '^istio_tcp_connections_closed_total\{reporter="source".*source_principal="spiffe://cluster.local/ns/default/sa/client".*destination_principal="spiffe://cluster.local/ns/default/sa/server"')
[ "$n" -ge 1 ] || fail "node1 counted no closed proxied connection as the source"
grep -q '"path":"hbone"' "$(run_dir node2)/flows.jsonl" || fail "node2's flow log has no hbone event"
for node in node1 node2; do
	jq -e -s --arg c "$CLI_ID" --arg s "$SRV_ID" 'map(select(.path == "hbone" and .type == "close" and
		.source.principal == $c and .destination.principal == $s and .bytes_received > 0)) | length >= 1' \
		"$(run_dir $node)/flows.jsonl" >/dev/null || fail "no close event with both principals and bytes on $node"
done

note "$((BULK >> 20)) MiB each way, SHA-256 checked on both ends, then $CONC concurrent"
in_pod node2.pod1 "$BIN/sltest" xfer-serve --tcp 9000 --ready "$TMP/ready.xfer" --max-seconds 600 \
	>>"$TMP/xfer-serve.log" 2>&1 &
E2E_PIDS+=("$!")
for i in $(seq 100); do [ -e "$TMP/ready.xfer" ] && break; sleep 0.05; done
origdst_fill node1.pod1 "$SRV" 9000 client
t0=$(date +%s.%N)
out=$(in_pod node1.pod1 "$BIN/sltest" xfer --to "$HB_OUT" --up $BULK --down $BULK \
	--timeout-s 240 || true)
t1=$(date +%s.%N)
jq -e '.ok' <<<"$out" >/dev/null 2>&1 || fail "$((BULK >> 20)) MiB each way: $out"
note "$(awk -v a="$t0" -v b="$t1" -v m=$((BULK >> 20)) 'BEGIN {printf "2 x %d MiB through both proxies in %.1f s (%.2f Gbit/s each way)", m, b - a, m * 8 / 1024 / (b - a)}')"
out=$(in_pod node1.pod1 "$BIN/sltest" xfer --to "$HB_OUT" --up 65536 --down 65536 --msg 0 \
	--parallel $CONC --timeout-s 120 || true)
jq -e '.ok' <<<"$out" >/dev/null 2>&1 || fail "$CONC concurrent: $out"
origdst_fill node1.pod1 "$SRV" 8080 client

note "an identity the policy denies is refused after authentication"
origdst_fill node1.pod2 "$SRV" 8080 intruder
before=$(metric node2 '^sluice_proxy_refused_total\{reason="policy"\}')
out=$(in_pod node1.pod2 "$BIN/sltest" connect --to "$HB_OUT" --timeout 3000 || true)
jq -e '.ok == false' <<<"$out" >/dev/null || fail "the intruder got through: $out"
sleep 0.3
after=$(metric node2 '^sluice_proxy_refused_total\{reason="policy"\}')
[ "$after" -gt "$before" ] || fail "node2 did not count the policy refusal ($before -> $after)"
jq -e -s 'map(select(.path == "hbone" and .type == "deny" and .reason == "policy" and
	.source.principal == "spiffe://cluster.local/ns/default/sa/intruder")) | length >= 1' \
	"$(run_dir node2)/flows.jsonl" >/dev/null || fail "no deny event naming the intruder on node2"

note "sluicectl proxy certs"
"$BIN/sluicectl" --pin-root "$(pin_root node1)" proxy certs | grep -q 'sa/client' || fail "proxy certs table"
"$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json proxy certs |
	jq -e 'length == 2 and all(.[]; .serial != "" and .not_after > now)' >/dev/null || fail "proxy certs -o json"

command -v openssl >/dev/null || { echo "PASS (no openssl here: the certificate refusal was not tried)"; exit 0; }
note "a node asking for another node's workload certificate is refused"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/w.key" \
	-subj /CN=x -addext "subjectAltName=URI:spiffe://cluster.local/ns/default/sa/server" \
	-out "$TMP/w.csr" 2>/dev/null
jq -n --rawfile csr "$TMP/w.csr" '{csr: $csr}' >"$TMP/csr.json"
code=$(in_node node1 curl -sk --http2 -o "$TMP/certs.out" -w '%{http_code}' \
	--cert "$TMP/agent-state.node1/node.crt" --key "$TMP/agent-state.node1/node.key" \
	-H 'content-type: application/json' --data-binary @"$TMP/csr.json" "$CP_URL/v1/certs")
[ "$code" = 403 ] || fail "node1 asking for server's certificate: HTTP $code $(cat "$TMP/certs.out")"
grep -q 'runs no workload with identity' "$TMP/certs.out" || fail "unclear refusal: $(cat "$TMP/certs.out")"
# and node2 gets it
code=$(in_node node1 curl -sk --http2 -o "$TMP/certs.out" -w '%{http_code}' \
	--cert "$TMP/agent-state.node2/node.crt" --key "$TMP/agent-state.node2/node.key" \
	-H 'content-type: application/json' --data-binary @"$TMP/csr.json" "$CP_URL/v1/certs")
[ "$code" = 200 ] || fail "node2 asking for its own workload's certificate: HTTP $code $(cat "$TMP/certs.out")"
echo PASS
