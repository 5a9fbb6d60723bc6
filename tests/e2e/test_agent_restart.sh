#!/bin/bash
# The agent killed with SIGKILL while a client opens new connections in a
# loop: zero failed connections; the restarted agent adopts the pinned state
# and applies a changed snapshot.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

serve node2.pod1 b1 --tcp 8080
serve node2.pod2 b2 --tcp 8080
snapshot node1 <<EOF2
{"version": 1, "services": [{"name": "default/web", "vip": "10.96.0.10", "port": 80,
  "backends": [{"address": "$(pod_ip node2.pod1)", "port": 8080}]}]}
EOF2
agent_start node1
wait_applied node1 1

in_pod node1.pod1 "$BIN/sltest" loop --to 10.96.0.10:80 --until "$TMP/stop" --max-seconds 60 \
	>"$TMP/loop.out" 2>&1 &
loop=$!
E2E_PIDS+=("$loop")
sleep 0.5
kill -KILL "$(cat "$TMP/agent.node1.pid")"
note "agent killed"
sleep 1
# state stays while no agent runs
[ -e "$(pin_root node1)/links/sl_connect4" ] || fail "pinned link gone after SIGKILL"

snapshot node1 <<EOF2
{"version": 2, "services": [{"name": "default/web", "vip": "10.96.0.10", "port": 80,
  "backends": [{"address": "$(pod_ip node2.pod1)", "port": 8080}, {"address": "$(pod_ip node2.pod2)", "port": 8080}]}]}
EOF2
agent_start node1
wait_applied node1 2
grep -q '0 programs attached, 10 adopted' "$TMP/agent.node1.log" || fail "restarted agent did not adopt the pinned links"
sleep 1
kill -KILL "$AGENT_PID"
agent_start node1   # restart on an unchanged snapshot: nothing to write
wait_log "$TMP/agent.node1.log" 'added 0, updated 0, removed 0, unchanged 1' 1
sleep 0.5
touch "$TMP/stop"
wait "$loop" || fail "connections failed across agent restarts: $(cat "$TMP/loop.out")"
out=$(cat "$TMP/loop.out")
note "loop: $out"
[ "$(jq .ok <<<"$out")" -gt 100 ] || fail "too few connections: $out"
[ "$(jq '.backends.b2 // 0' <<<"$out")" -gt 0 ] || fail "changed snapshot not applied (b2 unused): $out"

# one agent per node: a second one for node1 (same node, same pin root)
# refuses to start, naming the running one, and changes nothing
first=$AGENT_PID
if nsenter --net="/run/netns/slc.$CL.node1" timeout 20 "$BIN/sluice-agent" --node node1 \
	--cgroup "$(node_cgroup node1)" --snapshot "$TMP/snap.node1.json" --pin-root "$(pin_root node1)" \
	>"$TMP/second.log" 2>&1; then
	fail "a second agent for node1 started: $(cat "$TMP/second.log")"
fi
grep -q "another sluice-agent (pid $first) runs for node node1" "$TMP/second.log" ||
	fail "the second agent's refusal does not name the first: $(cat "$TMP/second.log")"
kill -0 "$first" || fail "the first agent died"
in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80 | grep -q '"ok":true' ||
	fail "the first agent's node stopped serving"
note "a second agent refused: $(grep -o 'another sluice-agent.*' "$TMP/second.log" | head -c 120)"
# and an agent inside the cgroup it manages refuses too
if in_pod node1.pod2 timeout 20 "$BIN/sluice-agent" --node inside --cgroup "$(node_cgroup node1)" \
	--snapshot "$TMP/snap.node1.json" --pin-root "$(pin_root inside)" >"$TMP/inside.log" 2>&1; then
	fail "an agent inside its own workload cgroup started"
fi
grep -q "inside .* whose workloads it manages" "$TMP/inside.log" || fail "inside: $(cat "$TMP/inside.log")"
