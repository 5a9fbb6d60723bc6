#!/bin/bash
# A backend removed while a long connection to it is open: that connection
# keeps working, and no new connection reaches the removed backend.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

serve node2.pod1 b1 --tcp 8080
serve node2.pod2 b2 --tcp 8080
serve node2.pod3 b3 --tcp 8080
svc() { # version backends-json
	snapshot node1 <<EOF2
{"version": $1, "services": [{"name": "default/db", "vip": "10.96.0.20", "port": 5432, "backends": [$2]}]}
EOF2
}
svc 1 "{\"address\": \"$(pod_ip node2.pod1)\", \"port\": 8080}"
agent_start node1
wait_applied node1 1

in_pod node1.pod1 "$BIN/sltest" hold --to 10.96.0.20:5432 --until "$TMP/stop" \
	--interval-ms 20 >"$TMP/hold.out" 2>&1 &
hold=$!
E2E_PIDS+=("$hold")
sleep 0.5

svc 2 "{\"address\": \"$(pod_ip node2.pod2)\", \"port\": 8080}, {\"address\": \"$(pod_ip node2.pod3)\", \"port\": 8080}"
wait_applied node1 2
"$BIN/sluicectl" --pin-root "$(pin_root node1)" inspect services
out=$(in_pod node1.pod2 "$BIN/sltest" spread --to 10.96.0.20:5432 -n 500) || fail "spread: $out"
note "after removal: $out"
[ "$(jq '.backends.b1 // 0' <<<"$out")" -eq 0 ] || fail "new connections reach removed backend b1"
sleep 0.5
touch "$TMP/stop"
wait "$hold" || fail "long connection broke: $(cat "$TMP/hold.out")"
out=$(cat "$TMP/hold.out")
note "long connection: $out"
[ "$(jq -r .backend <<<"$out")" = b1 ] || fail "long connection was not on b1: $out"
[ "$(jq .exchanges <<<"$out")" -ge 20 ] || fail "too few exchanges: $out"
