#!/bin/bash
# Restarts around the control plane, under a steady connection loop:
# control plane killed (SIGKILL) and restarted: the data plane keeps
# working, the agents reconnect and converge, nothing stored is lost; an
# agent killed and restarted while the config changes adopts its pinned
# state and catches up; an agent started while the control plane is down
# applies its last good snapshot. No connection of the loop may fail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
e2e_init 2 3
cp_init
cp_start
agent_start_cp node1 --metrics-addr 127.0.0.1:9464
agent_start_cp node2 --metrics-addr 127.0.0.1:9464
probe() { in_node "$1" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:9464/$2" || true; }

svc() { # WEIGHT_OF_B2
	workloads "{\"node1.pod1\": {\"app\": \"client\"}, \"node2.pod1\": {\"app\": \"web\"},
		\"node2.pod2\": {\"app\": \"web\", \"weight\": $1}}"
	cat <<EOF2
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.10
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
EOF2
}
weights() { services_json "$1" | jq -c '[.[] | select(.vip == "10.96.0.10") | .backends[].weight] | sort'; }

svc 1 >"$TMP/svc.yaml"
ctl apply -f "$TMP/svc.yaml" || fail "apply refused"
wait_converged node1 node2
serve node2.pod1 b1 --tcp 8080
serve node2.pod2 b2 --tcp 8080
in_pod node1.pod1 "$BIN/sltest" loop --to 10.96.0.10:80 --until "$TMP/stop" --max-seconds 120 \
	>"$TMP/loop.out" 2>&1 &
loop=$!
E2E_PIDS+=("$loop")
sleep 0.5

# -- the control plane dies
v1=$(cp_status | jq .config_version)
ids() { jq -c '[.identities[] | [.spiffe, .id]] | sort' "$TMP/agent-state.node1/snapshot.json"; }
ids0=$(ids)
[ "$(jq length <<<"$ids0")" -ge 2 ] || fail "no identities in node1's snapshot: $ids0"
kill -KILL "$CP_PID"
note "control plane killed (pid $CP_PID)"
wait_log "$TMP/agent.node1.log" 'control plane .*retrying' 1
ctl apply -f "$TMP/svc.yaml" 2>/dev/null && fail "apply succeeded with the control plane down"
sleep 1
[ "$(weights node1)" = "[1,1]" ] || fail "node1's maps changed while the control plane was down"
cp_start
wait_converged node1 node2
[ "$(cp_status | jq .config_version)" -eq "$v1" ] || fail "config version changed across the restart"
[ "$(ctl get we | tail -n +2 | wc -l)" -eq 3 ] || fail "resources lost across the restart: $(ctl get we)"
grep -c 'watching https' "$TMP/agent.node2.log" | xargs -I{} echo "-- node2 watch streams so far: {}"
svc 3 >"$TMP/svc.yaml"
ctl apply -f "$TMP/svc.yaml" || fail "apply after the restart refused"
wait_converged node1 node2
[ "$(weights node1)" = "[1,3]" ] && [ "$(weights node2)" = "[1,3]" ] || fail "change after restart not applied"
# node1's snapshot now comes from the restarted control plane
for _ in $(seq $((100 * SCALE))); do   # saved once changes pause
	[ "$(jq .version "$TMP/agent-state.node1/snapshot.json")" -eq $((v1 + 1)) ] && break
	sleep 0.05
done
[ "$(jq .version "$TMP/agent-state.node1/snapshot.json")" -eq $((v1 + 1)) ] || fail "node1 saved no new snapshot"
[ "$(ids)" = "$ids0" ] || fail "identities changed across the restart: $ids0 -> $(ids)"
note "control plane restarted, agents reconnected, change applied"

# -- an agent dies; the config changes meanwhile; it comes back
kill -KILL "$(cat "$TMP/agent.node1.pid")"
note "node1's agent killed"
svc 5 >"$TMP/svc.yaml"
ctl apply -f "$TMP/svc.yaml" || fail "apply refused"
wait_converged node2
[ "$(weights node1)" = "[1,3]" ] || fail "node1's maps changed without an agent"
agent_start_cp node1 --metrics-addr 127.0.0.1:9464
wait_converged node1 node2
grep -q '0 programs attached, 10 adopted' "$TMP/agent.node1.log" || fail "restarted agent did not adopt the pinned links"
grep -q "applied the last good snapshot" "$TMP/agent.node1.log" || fail "restarted agent did not start from its last good snapshot"
[ "$(weights node1)" = "[1,5]" ] || fail "restarted agent did not catch up: $(weights node1)"
note "agent restarted: adopted, caught up"

# -- an agent starts while the control plane is down
kill -KILL "$CP_PID"
kill -KILL "$(cat "$TMP/agent.node2.pid")"
n0=$(grep -c 'applied the last good snapshot' "$TMP/agent.node2.log" || true)
agent_start_cp node2 --metrics-addr 127.0.0.1:9464
wait_log "$TMP/agent.node2.log" 'applied the last good snapshot' $((n0 + 1))
[ "$(weights node2)" = "[1,5]" ] || fail "node2 did not keep its last good state"
[ "$(probe node2 readyz)" = 200 ] || fail "node2 not ready on its last good snapshot"
# without a last good snapshot an agent is alive but not ready
kill -KILL "$(cat "$TMP/agent.node1.pid")"
rm "$TMP/agent-state.node1/snapshot.json"
agent_start_cp node1 --metrics-addr 127.0.0.1:9464
for i in $(seq 50); do [ "$(probe node1 healthz)" = 200 ] && break; sleep 0.05; done
[ "$(probe node1 healthz)" = 200 ] || fail "node1 /healthz: $(probe node1 healthz)"
[ "$(probe node1 readyz)" = 503 ] || fail "node1 ready without any snapshot: $(probe node1 readyz)"
cp_start
wait_converged node1 node2
[ "$(probe node1 readyz)" = 200 ] || fail "node1 not ready after converging"
note "agents started without a control plane: last good snapshot (ready) or none (not ready), then converged"

touch "$TMP/stop"
wait "$loop" || fail "connections failed across the restarts: $(cat "$TMP/loop.out")"
out=$(cat "$TMP/loop.out")
note "loop: $out"
[ "$(jq .ok <<<"$out")" -gt 100 ] || fail "too few connections: $out"
[ "$(jq .failed <<<"$out")" -eq 0 ] || fail "connections failed: $out"
