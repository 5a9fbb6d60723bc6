#!/bin/bash
# Policy changes under a steady connection loop: 20 new policy generations
# (8 in the emulated VMs, where each takes 4 s) on both nodes while denied pairs keep trying (through the client-side
# hooks on either node, and around them from a bare netns so tc decides)
# and an allowed pair keeps connecting. No denied attempt may ever get
# through, and no allowed one may fail.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

IDS='{"node1.pod1": 256, "node1.pod2": 257, "node1.pod3": 258, "node2.pod1": 259, "node2.pod2": 260}'
base='{"action": "ALLOW", "source": 256, "destination": 258, "protocol": "TCP", "port": 8080},
      {"action": "DENY", "source": 259, "destination": 258, "protocol": "TCP"}'
# version-specific noise: other entries come and go around the fixed ones
pol() {
	local v=$1 i extra=""
	for i in $(seq 1 $(( (v % 3) * 40 ))); do
		extra+=", {\"action\": \"ALLOW\", \"source\": 260, \"destination\": 257, \"protocol\": \"TCP\", \"port\": $((1000 + i + v))}"
	done
	if [ $((v % 2)) -eq 0 ]; then
		extra+=', {"action": "ALLOW", "source": "*", "destination": 260, "protocol": "TCP", "port": 8080}'
	fi
	echo "[$base $extra]"
}
for n in node1 node2; do mesh_snapshot $n 1 "$IDS" "$(pol 1)"; agent_start $n; wait_applied $n 1; done
serve node1.pod3 locked --tcp 8080
L=$(pod_ip node1.pod3):8080

in_pod node1.pod1 "$BIN/sltest" loop --to "$L" --until "$TMP/stop" --timeout 1000 >"$TMP/allowed.out" 2>&1 &
p1=$!
in_pod node1.pod2 "$BIN/sltest" loop --to "$L" --until "$TMP/stop" --timeout 300 >"$TMP/denied-local.out" 2>&1 &
p2=$!
in_pod node2.pod1 "$BIN/sltest" loop --to "$L" --until "$TMP/stop" --timeout 300 >"$TMP/denied-remote.out" 2>&1 &
p3=$!
nsenter --net="/run/netns/slc.$CL.node2.pod1" "$BIN/sltest" loop --to "$L" --until "$TMP/stop" \
	--timeout 150 >"$TMP/denied-raw.out" 2>&1 &
p4=$!
E2E_PIDS+=("$p1" "$p2" "$p3" "$p4")

LAST=21
[ "$SCALE" -gt 1 ] && LAST=9
for v in $(seq 2 $LAST); do
	for n in node1 node2; do mesh_snapshot $n "$v" "$IDS" "$(pol "$v")"; done
	for n in node1 node2; do wait_applied $n "$v"; done
	sleep 0.1
done
touch "$TMP/stop"
wait "$p1" || true; wait "$p2" || true; wait "$p3" || true; wait "$p4" || true
for f in allowed denied-local denied-remote denied-raw; do note "$f: $(cat "$TMP/$f.out")"; done
[ "$(jq .failed "$TMP/allowed.out")" -eq 0 ] || fail "allowed pair failed during policy changes"
[ "$(jq .ok "$TMP/allowed.out")" -gt 100 ] || fail "allowed loop made too few connections"
for f in denied-local denied-remote denied-raw; do
	[ "$(jq .ok "$TMP/$f.out")" -eq 0 ] || fail "$f: a denied pair got through"
	[ "$(jq .failed "$TMP/$f.out")" -gt 0 ] || fail "$f: made no attempts"
done
grep -c 'new generation' "$TMP/agent.node1.log" | xargs -I{} echo "-- node1 policy generations: {}"

# An established connection outlives a policy that now denies it; new
# connections from the same client are refused.
rm -f "$TMP/stop"
in_pod node1.pod1 "$BIN/sltest" hold --to "$L" --until "$TMP/stop" --interval-ms 20 >"$TMP/hold.out" 2>&1 &
hold=$!
E2E_PIDS+=("$hold")
sleep 0.5
for n in node1 node2; do
	mesh_snapshot $n 22 "$IDS" '[{"action": "DENY", "source": 259, "destination": 258, "protocol": "TCP"},
		{"action": "ALLOW", "source": 260, "destination": 258, "protocol": "TCP", "port": 8080}]'
done
for n in node1 node2; do wait_applied $n 22; done
out=$(in_pod node1.pod1 "$BIN/sltest" connect --to "$L") && fail "new connection allowed after the change: $out"
sleep 0.5
touch "$TMP/stop"
wait "$hold" || fail "established connection broken by the policy change: $(cat "$TMP/hold.out")"
note "established across the change: $(cat "$TMP/hold.out"); new: $(jq -r .error <<<"$out")"
