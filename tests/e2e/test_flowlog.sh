#!/bin/bash
# The flow log rotates by size (FILE -> FILE.1) and `sluicectl observe`
# follows it across a rotation without losing events. (observe can only
# follow rotations it sees: if the agent rotates twice between two reads,
# observe says that events were missed; with the default 64 MiB files that
# takes gigabytes of events in a burst.)
. "$(dirname "$0")/lib.sh"
e2e_init 1 2

IDS='{"node1.pod1": 256, "node1.pod2": 257}'
mesh_snapshot node1 1 "$IDS" '[]'
F=$TMP/flows.jsonl
agent_start node1 --flow-log "$F" --flow-log-max-bytes 65536
wait_applied node1 1
serve node1.pod2 srv --tcp 8080
N=60
"$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json observe --flow-log "$F" --type close \
	--pod node1.pod2 --count $((2 * N)) --timeout 30 >"$TMP/observed.jsonl" &
obs=$!
E2E_PIDS+=("$obs")
sleep 0.3
out=$(in_pod node1.pod1 "$BIN/sltest" spread --to "$(pod_ip node1.pod2):8080" -n $N) || fail "spread: $out"
wait "$obs" || fail "observe saw $(wc -l <"$TMP/observed.jsonl") close events, want $((2 * N))"
[ -s "$F.1" ] || fail "no rotation: $(ls -l "$TMP")"
sz=$(stat -c %s "$F.1")
[ "$sz" -ge 65536 ] && [ "$sz" -lt 66560 ] || fail "rotated file is $sz bytes, want 65536..66559"
n=$(jq -s '[.[] | select(.type == "close")] | length' "$TMP/observed.jsonl")
[ "$n" -eq $((2 * N)) ] || fail "observe: $n close events, want $((2 * N)) (both reporters)"
note "rotated at $sz bytes; observe followed $n close events across rotations"
