#!/bin/bash
# `sluice-agent --uninstall` detaches every program and removes the pins;
# pod traffic to a VIP is then no longer translated.
. "$(dirname "$0")/lib.sh"
e2e_init 1 2

serve node1.pod2 b1 --tcp 8080
snapshot node1 <<EOF2
{"version": 1, "services": [{"name": "web", "vip": "10.96.0.10", "port": 80,
  "backends": [{"address": "$(pod_ip node1.pod2)", "port": 8080}]}]}
EOF2
agent_start node1
wait_applied node1 1
cg=$(node_cgroup node1)
n=$(bpftool -j cgroup show "$cg" | jq -s "add | length")
[ "$n" -eq 10 ] || fail "want 10 programs on $cg, bpftool shows $n"
in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80 >/dev/null || fail "VIP not working before uninstall"
bpftool map dump pinned "$(pin_root node1)/sl_services" >"$TMP/dump.log"
grep -q '"svc_id": 1' "$TMP/dump.log" \
	|| fail "bpftool map dump shows no named fields (BTF missing?)"

kill "$AGENT_PID"; wait "$AGENT_PID" || true
"$BIN/sluice-agent" --node node1 --pin-root "$(pin_root node1)" --uninstall
[ ! -e "$(pin_root node1)" ] || fail "pin root still exists"
n=$(bpftool -j cgroup show "$cg" | jq -s "add | length")
[ "$n" -eq 0 ] || fail "$n programs still attached to $cg"
out=$(in_pod node1.pod1 "$BIN/sltest" connect --timeout 500 --to 10.96.0.10:80) && fail "VIP still translated: $out"
note "after uninstall: $out"
