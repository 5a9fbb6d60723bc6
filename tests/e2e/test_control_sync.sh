#!/bin/bash
# The control plane drives a 2-node cluster: Istio YAML applied with
# sluicectl reaches both agents' maps and traffic follows; a weight and a
# policy change apply; a refused apply (bad field, L7 rule) changes nothing
# anywhere; a rule applied ahead of its target waits, inert; get and delete
# work.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
e2e_init 2 3
cp_init
cp_start
agent_start_cp node1
agent_start_cp node2
wait_log "$TMP/agent.node1.log" 'joined as spiffe://cluster.local/sluice/node/node1' 1
wait_converged node1 node2

# pods: node1.pod1-2 are clients, node1.pod3 is not allowed, node2.pod1-2 serve
mesh() { # WEIGHT_OF_B2 EXTRA_PRINCIPAL
	workloads "{\"node1.pod1\": {\"app\": \"client\"}, \"node1.pod2\": {\"app\": \"client\"},
		\"node1.pod3\": {\"app\": \"other\"}, \"node2.pod1\": {\"app\": \"web\"},
		\"node2.pod2\": {\"app\": \"web\", \"weight\": $1}}"
	cat <<EOF2
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: 10.96.0.10
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-allow
  namespace: default
spec:
  selector:
    matchLabels:
      app: web
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/client"$2]
    to:
    - operation:
        ports: ["8080"]
EOF2
}
mesh 1 "" >"$TMP/mesh.yaml"
ctl apply -f "$TMP/mesh.yaml" || fail "apply refused"
wait_converged node1 node2
for n in node1 node2; do
	w=$(services_json $n | jq -c '[.[] | select(.vip == "10.96.0.10") | .backends[].weight]')
	[ "$w" = "[1,1]" ] || fail "$n: service weights $w, want [1,1]: $(services_json $n)"
done
note "both nodes hold 10.96.0.10:80 with 2 backends"

serve node2.pod1 b1 --tcp 8080
serve node2.pod2 b2 --tcp 8080
out=$(in_pod node1.pod1 "$BIN/sltest" spread --to 10.96.0.10:80 -n 200)
note "client: $out"
[ "$(jq .ok <<<"$out")" -eq 200 ] || fail "allowed client failed: $out"
[ "$(jq '.backends.b1 // 0' <<<"$out")" -gt 0 ] && [ "$(jq '.backends.b2 // 0' <<<"$out")" -gt 0 ] \
	|| fail "traffic did not reach both backends: $out"
out=$(in_pod node1.pod3 "$BIN/sltest" connect --to 10.96.0.10:80 --timeout 1000) && fail "unauthorized client got through: $out"
# refused at connect() on the client's node (its snapshot holds the entries
# for its own clients), or by tc at the destination before 5.14
[ "$(jq -r .error <<<"$out")" = "$(denied_errno)" ] || fail "denied client saw $out, want $(denied_errno)"
note "unauthorized client: $out"

# change a weight (b2: 3) and the policy (allow sa other as well)
v0=$(cp_status | jq .config_version)
mesh 3 ', "cluster.local/ns/default/sa/other"' >"$TMP/mesh.yaml"
ctl apply -f "$TMP/mesh.yaml" || fail "second apply refused"
wait_converged node1 node2
[ "$(cp_status | jq .config_version)" -eq $((v0 + 1)) ] || fail "config version did not move by one"
for n in node1 node2; do
	w=$(services_json $n | jq -c '[.[] | select(.vip == "10.96.0.10") | .backends[].weight] | sort')
	[ "$w" = "[1,3]" ] || fail "$n: weights $w after the change, want [1,3]"
done
out=$(in_pod node1.pod3 "$BIN/sltest" connect --to 10.96.0.10:80 --timeout 1000) || fail "newly allowed client refused: $out"
out=$(in_pod node1.pod1 "$BIN/sltest" spread --to 10.96.0.10:80 -n 400)
[ "$(jq '.backends.b2 // 0' <<<"$out")" -gt "$(jq '.backends.b1 // 0' <<<"$out")" ] || fail "weight 1:3 not followed: $out"
note "after the change: $out"

# refused applies change nothing anywhere: a bad field, an L7 rule
before1=$(services_json node1) before2=$(services_json node2) st0=$(cp_status)
mesh 3 "" | sed 's/targetPort: 8080/targetPort: 0/' >"$TMP/bad.yaml"
err=$(ctl apply -f "$TMP/bad.yaml" 2>&1) && fail "an invalid apply was accepted"
note "refused: $err"
grep -Eq "bad.yaml:[0-9]+:[0-9]+: Service default/web: spec.ports\[0\].targetPort" <<<"$err" \
	|| fail "the refusal does not name file:line:column and the field: $err"
cat >"$TMP/l7.yaml" <<EOF2
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-get-only
spec:
  selector:
    matchLabels:
      app: web
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
EOF2
err=$(ctl apply -f "$TMP/mesh.yaml" -f "$TMP/l7.yaml" 2>&1) && fail "an L7 policy was accepted"
grep -q "l7.yaml:13:[0-9]*: .*methods" <<<"$err" || fail "the L7 refusal does not name the field: $err"
note "refused: $err"
sleep 0.5
[ "$(services_json node1)" = "$before1" ] && [ "$(services_json node2)" = "$before2" ] \
	|| fail "a refused apply changed a node's maps"
[ "$(cp_status | jq -c '[.config_version, .resources, [.agents[] | .acked]]')" = \
  "$(jq -c '[.config_version, .resources, [.agents[] | .acked]]' <<<"$st0")" ] \
	|| fail "a refused apply changed the control plane: $(cp_status)"
ctl get ap web-get-only >/dev/null 2>&1 && fail "the refused policy is stored"

# a snapshot one agent cannot apply (a workload whose netns does not exist
# on node2): node2 NACKs with the reason and stays on its last good version,
# node1 ACKs; fixing the config converges both
cat >"$TMP/nack.yaml" <<EOF2
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ghost
  annotations:
    sluice.io/node: node2
    sluice.io/netns: /run/netns/no-such-netns-$CL
    sluice.io/interface: p3
spec:
  address: 10.244.2.99
  serviceAccount: ghost
  labels:
    app: ghost
---
apiVersion: v1
kind: Service
metadata:
  name: extra
spec:
  clusterIP: 10.96.0.20
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
EOF2
ids_before=$("$BIN/sluicectl" --pin-root "$(pin_root node2)" -o json inspect identities)
pol_before=$("$BIN/sluicectl" --pin-root "$(pin_root node2)" -o json inspect policy)
ctl apply -f "$TMP/nack.yaml" || fail "apply refused"
v=$(cp_status | jq .config_version)
wait_converged node1
for i in $(seq $((200 * SCALE))); do
	[ "$(cp_status | jq --argjson v "$v" '.agents[] | select(.node == "node2") | .nacked == $v')" = true ] && break
	sleep 0.05
done
st=$(cp_status | jq -c '.agents[] | select(.node == "node2")')
jq -e --argjson v "$v" '.nacked == $v and (.nack_reason | test("no-such-netns")) and .in_sync == false' <<<"$st" >/dev/null \
	|| fail "node2 did not NACK version $v with the reason: $st"
note "node2: $st"
ctl status --control | grep -q "no-such-netns" || fail "status --control does not show the NACK reason"
[ "$(services_json node2 | jq 'map(select(.vip == "10.96.0.20")) | length')" -eq 0 ] || fail "node2 applied part of a NACKed snapshot"
[ "$("$BIN/sluicectl" --pin-root "$(pin_root node2)" -o json inspect identities)" = "$ids_before" ] &&
	[ "$("$BIN/sluicectl" --pin-root "$(pin_root node2)" -o json inspect policy)" = "$pol_before" ] ||
	fail "node2's identity or policy maps changed for a NACKed snapshot"
[ "$(services_json node1 | jq 'map(select(.vip == "10.96.0.20")) | length')" -eq 1 ] || fail "node1 lacks the new service"
ctl delete workloadentry ghost || fail "delete refused"
wait_converged node1 node2
[ "$(services_json node2 | jq 'map(select(.vip == "10.96.0.20")) | length')" -eq 1 ] || fail "node2 did not catch up after the fix"
# delete -f: all named resources or none (ghost is gone already: 404, extra stays)
v=$(cp_status | jq .config_version)
err=$(ctl delete -f "$TMP/nack.yaml" 2>&1) && fail "delete -f with a missing resource succeeded"
grep -q "not found: WorkloadEntry default/ghost" <<<"$err" || fail "delete -f: $err"
[ "$(cp_status | jq .config_version)" -eq "$v" ] && ctl get svc extra >/dev/null || fail "a refused delete changed the config"
sed -n '/^---$/,$p' "$TMP/nack.yaml" | tail -n +2 >"$TMP/extra.yaml"
ctl delete -f "$TMP/extra.yaml" || fail "delete -f refused"
wait_converged node1 node2
[ "$(services_json node2 | jq 'map(select(.vip == "10.96.0.20")) | length')" -eq 0 ] || fail "delete -f did not reach node2"

# order-free apply: a VirtualService routing web to a host not applied yet
# is stored with a warning and inert (web keeps its own backends); beside
# it, an app's Deployment is skipped and its Namespace recorded. Applying
# the host makes the route take effect; deleting it again is allowed.
cat >"$TMP/route.yaml" <<EOF2
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: to-canary
spec:
  hosts: [web]
  tcp:
  - route:
    - destination: {host: web-canary, port: {number: 80}}
EOF2
cat >"$TMP/canary.yaml" <<EOF2
apiVersion: v1
kind: Service
metadata:
  name: web-canary
spec:
  clusterIP: 10.96.0.11
  selector:
    app: other
  ports:
  - port: 80
    targetPort: 8080
EOF2
backends() { services_json "$1" | jq -c '[.[] | select(.vip == "10.96.0.10") | .backends[].address] | sort'; }
web_before=$(backends node1)
"$BIN/sluicectl" analyze -f "$TMP/route.yaml" -f "$TMP/mesh.yaml" -f "$TMP/canary.yaml" \
	2>"$TMP/analyze.err" || fail "analyze of files naming each other failed: $(cat "$TMP/analyze.err")"
grep -q "IST0101" "$TMP/analyze.err" && fail "analyze warned with every file given: $(cat "$TMP/analyze.err")"
err=$(ctl apply -f "$TMP/route.yaml" 2>&1) || fail "a route to a host not applied yet was refused: $err"
note "applied ahead of its host: $err"
grep -q 'route.yaml:6:1: apps/v1 Deployment default/web: not a mesh kind, ignored' <<<"$err" \
	|| fail "no informational line for the Deployment: $err"
grep -q 'warning: .*route.yaml:[0-9]*:[0-9]*: VirtualService default/to-canary: .*\[IST0101\] referenced host not found: "web-canary"' \
	<<<"$err" || fail "no IST0101 warning naming file:line:column: $err"
ctl get namespace shop >/dev/null || fail "the Namespace was not recorded"
wait_converged node1 node2
[ "$(backends node1)" = "$web_before" ] || fail "an inert VirtualService changed web's backends: $(backends node1)"
ctl apply -f "$TMP/canary.yaml" || fail "apply of the host refused"
wait_converged node1 node2
pod3=$("$SIM" list "$CL" --json | jq -r '.nodes[].pods[] | select(.name == "node1.pod3") | .ipv4')
for n in node1 node2; do
	[ "$(backends $n)" = "[\"$pod3\"]" ] || fail "$n: web does not route to web-canary ($pod3): $(backends $n)"
done
err=$(ctl delete service web-canary 2>&1) || fail "deleting a routed service was refused: $err"
grep -q "IST0101" <<<"$err" || fail "deleting a routed service did not warn: $err"
wait_converged node1 node2
[ "$(backends node2)" = "$web_before" ] || fail "web did not return to its own backends: $(backends node2)"
note "inert, in force, inert again: $web_before -> [$pod3] -> $(backends node2)"
ctl delete -f "$TMP/route.yaml" || fail "delete -f of the route file refused"
# a directory, as kubectl apply -f DIR: its .yaml files in one change
mkdir "$TMP/app" && cp "$TMP/route.yaml" "$TMP/app/1-route.yaml" && cp "$TMP/canary.yaml" "$TMP/app/2-canary.yaml"
echo "not config" >"$TMP/app/README.md"
ctl apply -f "$TMP/app" || fail "apply -f DIR refused"
wait_converged node1 node2
[ "$(backends node1)" = "[\"$pod3\"]" ] || fail "apply -f DIR: web does not route to web-canary: $(backends node1)"
ctl delete -f "$TMP/app/1-route.yaml" && ctl delete -f "$TMP/app/2-canary.yaml" || fail "delete after apply -f DIR"

# get and delete
[ "$(ctl get svc web -o json | jq -r .spec.clusterIP)" = 10.96.0.10 ] || fail "get svc web -o json"
ctl get authorizationpolicies -o yaml | grep -q '^kind: AuthorizationPolicy' || fail "get -o yaml"
[ "$(ctl get workloadentry | tail -n +2 | wc -l)" -eq 5 ] || fail "get workloadentry: $(ctl get we)"
ctl delete service web || fail "delete refused"
wait_converged node1 node2
for n in node1 node2; do
	[ "$(services_json $n | jq 'map(select(.vip == "10.96.0.10")) | length')" -eq 0 ] || fail "$n kept the deleted service"
done
ctl delete service web 2>/dev/null && fail "deleting a missing service succeeded"
ctl status --control
true
