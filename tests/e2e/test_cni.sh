#!/usr/bin/env bash
# Real podman containers join the mesh through sluice-cni, with no
# WorkloadEntry written by hand: identities from podman's record of the
# containers (labels), WorkloadGroups authorizing them; a client reaches a
# Service spread over its server containers through the VIP; an
# AuthorizationPolicy allows one client's service account and denies
# another's; a container claiming a service account no WorkloadGroup
# allows is refused at ADD with the reason; CHECK sees drift; the agent is
# killed (-9) and restarted under a connection loop with no failed
# connection; `podman rm -f` leaves no registration, map entry or record.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cni_lib.sh"

cni_init
cp_start_local
VIP=10.96.$(( RANDOM % 250 + 1 )).10
cat >"$TMP/mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: ledger, namespace: default}
spec:
  metadata: {labels: {tier: backend}}
  template: {serviceAccount: ledger}
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: client, namespace: default}
spec:
  template: {serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: other, namespace: default}
spec:
  template: {serviceAccount: other}
---
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: default}
spec:
  clusterIP: $VIP
  selector: {app: ledger}
  ports: [{port: 8080, targetPort: 8080}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ledger-clients, namespace: default}
spec:
  selector: {matchLabels: {app: ledger}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]
EOF
"$BIN/sluicectl" apply -f "$TMP/mesh.yaml" >"$TMP/apply.log" 2>&1 || fail "apply: $(cat "$TMP/apply.log")"
cni_agent_start

note "servers and clients start with podman run; ADD returns once each is enrolled"
for c in s1 s2; do run_ctr "$c" ledger app=ledger >/dev/null || fail "podman run $c failed"; done
run_ctr client client app=client >/dev/null || fail "podman run client failed"
run_ctr other other app=other >/dev/null || fail "podman run other failed"
n=$("$BIN/sluicectl" get workloadentries -o json | jq '[.[] | select(.metadata.annotations["sluice.io/node"] == "'"$T"'")] | length')
[ "$n" = 4 ] || fail "expected 4 registered WorkloadEntries, got $n"
"$BIN/sluicectl" get workloadentries -o json | jq -e --arg n "$T" '[.[] | select(.spec.serviceAccount == "ledger")
	| select(.spec.labels.app == "ledger" and .spec.labels.tier == "backend" and .metadata.annotations["sluice.io/node"] == $n)] | length == 2' \
	>/dev/null || fail "the servers' entries lack the group's and the container's labels"

note "the client reaches the Service's VIP, spread over both servers"
declare -A seen=()
for i in $(seq 30); do
	out=$(ctr_exec client /busybox nc -w 2 "$VIP" 8080 </dev/null) || fail "client -> $VIP:8080 failed (try $i)"
	seen[$out]=1
done
[ -n "${seen[s1]:-}" ] && [ -n "${seen[s2]:-}" ] || fail "30 connections did not reach both servers: ${!seen[*]}"

note "the policy denies service account other"
if out=$(ctr_exec other /busybox nc -w 2 "$VIP" 8080 </dev/null 2>&1); then
	fail "service account other reached the ledger service: $out"
fi
# EACCES from connect(); EPERM on kernels without bpf_set_retval
grep -Eq "Permission denied|Operation not permitted" <<<"$out" || fail "other was not denied by policy: $out"

note "a container claiming a service account no WorkloadGroup allows is refused at ADD"
if out=$(run_ctr intruder ledger-admin app=ledger 2>&1); then
	fail "the intruder started: $out"
fi
grep -q "no WorkloadGroup in namespace default allows service account ledger-admin" <<<"$out" \
	|| fail "the refusal does not say why: $out"
podman ps --format '{{.Names}}' | grep -q "^$T-intruder$" && fail "the intruder runs"
"$BIN/sluicectl" get workloadentries -o json | jq -e '[.[] | select(.spec.serviceAccount == "ledger-admin")] | length == 0' \
	>/dev/null || fail "the intruder was registered"

note "CNI CHECK: clean, then drift once tc is taken off a server's veth"
S1=$(podman inspect -f '{{.Id}}' "$T-s1")
ent=$(jq -c --arg id "$S1" '.enrolled[$id]' "$RUN/cni.json")
check_s1() {
	jq -c --arg n "$NET" --arg s "$SOCK" --argjson e "$ent" -n '{cniVersion: "1.0.0", name: $n, type: "sluice-cni",
		agentSocket: $s, prevResult: {cniVersion: "1.0.0", interfaces: [{name: $e.interface}],
		ips: [{address: "\($e.address)/24"}]}}' |
		CNI_COMMAND=CHECK CNI_CONTAINERID=$S1 CNI_NETNS=$(jq -r .netns <<<"$ent") CNI_IFNAME=eth0 "$BIN/sluice-cni" 2>/dev/null
}
check_s1 >/dev/null || fail "CHECK of an enrolled container failed: $(check_s1)"
# by tcx (kernels 6.6 and later) or cls_bpf: both taken off
veth=$(jq -r .interface <<<"$ent")
tc qdisc del dev "$veth" clsact 2>/dev/null || true
"$ROOT/tests/e2e/tcx.py" detach "$veth" >/dev/null
out=$(check_s1) && fail "CHECK did not see the missing tc programs"
jq -e '.code == 101 and (.details | test("tc programs missing"))' <<<"$out" >/dev/null || fail "CHECK's drift: $out"
# the next snapshot puts tc back: restart the agent, which re-applies
note "the agent is killed (-9) and restarted under a connection loop"
# the loop runs until told to stop, after the new agent has applied its snapshot
ctr_exec client /busybox sh -c "i=0; f=0; while [ ! -e /stop ]; do /busybox nc -w 2 $VIP 8080 </dev/null >/dev/null || f=\$((f+1)); i=\$((i+1)); done; echo \$i \$f" \
	>"$TMP/loop.out" 2>"$TMP/loop.err" &
LOOP=$!
sleep 0.5
kill -9 "$AGENT_PID"
cni_agent_start
wait_log "$TMP/agent.log" "applied snapshot" 2
sleep 0.5
kill -0 "$LOOP" 2>/dev/null || fail "the connection loop ended before the agent was back: $(cat "$TMP/loop.err")"
ctr_exec client /busybox touch /stop
wait "$LOOP" || fail "the connection loop failed: $(cat "$TMP/loop.err")"
read -r tried failed <"$TMP/loop.out"
note "connection loop across the restart: $tried attempted, $failed failed"
[ "$tried" -ge 20 ] && [ "$failed" = 0 ] || fail "agent restart: $failed of $tried connections failed"
check_s1 >/dev/null || fail "after the restart, CHECK still sees drift: $(check_s1)"
ctr_exec client /busybox nc -w 2 "$VIP" 8080 </dev/null >/dev/null || fail "client -> VIP after the restart"

note "podman rm -f leaves no registration, endpoint entry or record behind"
for c in s1 s2 client other; do podman rm -f -t 0 "$T-$c" >/dev/null || fail "podman rm $c"; done
n=$("$BIN/sluicectl" get workloadentries -o json | jq '[.[] | select(.metadata.annotations["sluice.io/node"] == "'"$T"'")] | length')
[ "$n" = 0 ] || fail "$n WorkloadEntries left after podman rm"
[ "$(jq '.enrolled | length' "$RUN/cni.json")" = 0 ] || fail "cni.json still lists containers: $(cat "$RUN/cni.json")"
[ "$(jq '.deregister | length' "$RUN/cni.json")" = 0 ] || fail "deregistrations pending: $(cat "$RUN/cni.json")"
n=$(bpftool -j map dump pinned "$PIN/sl_endpoints" | jq length)
[ "$n" = 0 ] || fail "$n sl_endpoints entries left"
echo "PASS"
