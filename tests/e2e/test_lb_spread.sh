#!/bin/bash
# 3000 TCP connections from a pod to a VIP spread over 3 equal backends
# (on two nodes) within a chi-square bound at p > 0.001; then weights 1:3.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

serve node1.pod2 b1 --tcp 8080
serve node2.pod1 b2 --tcp 8080
serve node2.pod2 b3 --tcp 8080
snapshot node1 <<EOF2
{"version": 1, "services": [{"name": "default/web", "vip": "10.96.0.10", "port": 80, "backends": [
  {"address": "$(pod_ip node1.pod2)", "port": 8080},
  {"address": "$(pod_ip node2.pod1)", "port": 8080},
  {"address": "$(pod_ip node2.pod2)", "port": 8080}]}]}
EOF2
agent_start node1
wait_applied node1 1

out=$(in_pod node1.pod1 "$BIN/sltest" spread --to 10.96.0.10:80 -n 3000) || fail "spread: $out"
note "equal weights: $out"
x=$(chi2_ok "$out" 1 1 1)
awk -v x="$x" -v c="$(chi2_crit 2)" 'BEGIN { exit !(x < c) }' || fail "chi2 $x >= $(chi2_crit 2): $out"
note "chi-square $x < $(chi2_crit 2) (df 2)"

snapshot node1 <<EOF2
{"version": 2, "services": [{"name": "default/web", "vip": "10.96.0.10", "port": 80, "backends": [
  {"address": "$(pod_ip node1.pod2)", "port": 8080, "weight": 1},
  {"address": "$(pod_ip node2.pod1)", "port": 8080, "weight": 3}]}]}
EOF2
wait_applied node1 2
out=$(in_pod node1.pod1 "$BIN/sltest" spread --to 10.96.0.10:80 -n 3000) || fail "spread: $out"
note "weights 1:3: $out"
[ "$(jq '.backends.b3 // 0' <<<"$out")" -eq 0 ] || fail "removed backend b3 still gets connections"
x=$(chi2_ok "$out" 1 3)
awk -v x="$x" -v c="$(chi2_crit 1)" 'BEGIN { exit !(x < c) }' || fail "chi2 $x >= $(chi2_crit 1): $out"
note "chi-square $x < $(chi2_crit 1) (df 1)"

"$BIN/sluicectl" --pin-root "$(pin_root node1)" inspect services
w=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect services | jq -c '[.[0].backends[].weight]')
[ "$w" = "[1,3]" ] || fail "inspect services shows weights $w, want [1,3]"
