#!/usr/bin/env bash
# Two nodes on this host, each with its own podman network (chaining
# sluice-cni), cgroup parent, agent and node proxy: a client container
# enrolled on node 1 reaches a server container enrolled on node 2 over
# HBONE (the server is PeerAuthentication STRICT, so the connection is
# captured to node 1's proxy); both proxies report the client's and the
# server's SPIFFE identities, and plaintext from the host is refused at
# the server's veth.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cni_lib.sh"

cni_init
cp_start_local
# node 2: its own network, cgroup parent, pin root and socket
N2=${T}b NET2=${T}b CGP2=/sluice-${T}b PIN2=/sys/fs/bpf/sluice-e2e-${T}b
RUN2=/run/sluice/sluice-e2e-${T}b SUBNET2=10.$(( 160 + $$ % 30 )).$(( (RANDOM % 250 + 1 + 128) % 250 + 1 )).0/24
[ "$SUBNET2" != "$SUBNET" ] || SUBNET2=10.$(( 191 + $$ % 30 )).1.0/24
CNI_NODES+=("$N2") CNI_PINS+=("$PIN2") CNI_CGPS+=("$CGP2")
mkdir -p "$CG2$CGP2"
cni_network "$NET2" "$SUBNET2" "$RUN2/cni.sock"
GW1=${SUBNET%.0/24}.1
PORTS=$(( 30000 + ($$ * 13 + RANDOM) % 20000 ))
cat >"$TMP/mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: client, namespace: default}
spec:
  template: {serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: server, namespace: default}
spec:
  template: {serviceAccount: server}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: server-strict, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: server-from-client, namespace: default}
spec:
  selector: {matchLabels: {app: server}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]
EOF
"$BIN/sluicectl" apply -f "$TMP/mesh.yaml" >"$TMP/apply.log" 2>&1 || fail "apply: $(cat "$TMP/apply.log")"
[ -x "$BIN/sluice-proxy" ] || fail "$BIN/sluice-proxy missing: run make first"
cni_agent "$T" "$CGP" "$PIN" "$SOCK" agent1 --hbone-addr "127.0.0.1:$PORTS" \
	--outbound-addr "0.0.0.0:$((PORTS + 1))" --capture-addr "$GW1" --metrics-addr "127.0.0.1:$((PORTS + 2))"
cni_agent "$N2" "$CGP2" "$PIN2" "$RUN2/cni.sock" agent2 --hbone-addr "127.0.0.1:$((PORTS + 3))" \
	--outbound-addr "0.0.0.0:$((PORTS + 4))" --metrics-addr "127.0.0.1:$((PORTS + 5))"
connect_knows_client || skip "capture needs SO_NETNS_COOKIE (5.14+): connect() does not know the client here"

CTR_NET=$NET2 CTR_CGP=$CGP2 run_ctr server server app=server >/dev/null || fail "podman run server (node 2) failed"
run_ctr client client app=client >/dev/null || fail "podman run client (node 1) failed"
SRV=$(ctr_ip server)
"$BIN/sluicectl" get workloadentries -o json | jq -e --arg n1 "$T" --arg n2 "$N2" '
	[.[] | {sa: .spec.serviceAccount, node: .metadata.annotations["sluice.io/node"]}] |
	(index({sa: "client", node: $n1}) != null) and (index({sa: "server", node: $n2}) != null)' >/dev/null \
	|| fail "the containers are not registered on their own nodes: $("$BIN/sluicectl" get workloadentries)"

note "client (node 1) -> server (node 2) at $SRV:8080, captured and carried over HBONE"
out=
for i in $(seq $((100 * SCALE))); do
	# the proxies need their workload certificates first
	out=$(ctr_exec client /busybox nc -w 3 "$SRV" 8080 </dev/null 2>&1) && [ "$out" = server ] && break
	sleep 0.1
done
[ "$out" = server ] || fail "client -> server across the nodes: $out"
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v re="$2" '$0 ~ re {s += $NF} END {print s + 0}'; }
ids='source_principal="spiffe://cluster.local/ns/default/sa/client".*destination_principal="spiffe://cluster.local/ns/default/sa/server".*connection_security_policy="mutual_tls"'
for i in $(seq 50); do
	[ "$(metric $((PORTS + 5)) "^istio_tcp_connections_opened_total\\{reporter=\"destination\".*$ids")" -ge 1 ] &&
		[ "$(metric $((PORTS + 2)) "^istio_tcp_connections_opened_total\\{reporter=\"source\".*$ids")" -ge 1 ] && break
	sleep 0.1
done
[ "$(metric $((PORTS + 5)) "^istio_tcp_connections_opened_total\\{reporter=\"destination\".*$ids")" -ge 1 ] ||
	fail "node 2's proxy does not report client -> server as mutual TLS"
[ "$(metric $((PORTS + 2)) "^istio_tcp_connections_opened_total\\{reporter=\"source\".*$ids")" -ge 1 ] ||
	fail "node 1's proxy does not report client -> server as mutual TLS"
grep -q '"path":"hbone"' "$RUN2/flows.jsonl" || fail "node 2's flow log has no hbone event"

note "STRICT: plaintext from the host to the server is refused at its veth"
if out=$(timeout 5 busybox nc -w 2 "$SRV" 8080 </dev/null 2>&1) && [ "$out" = server ]; then
	fail "plaintext from outside the mesh reached the STRICT server"
fi
echo "PASS"
