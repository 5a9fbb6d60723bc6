#!/bin/bash
# outlierDetection decided in the kernel: a backend whose process is gone
# (RST to the SYN) and one that is blackholed (tc drops its SYNs: the SYN
# times out) are ejected after the configured number of consecutive connect
# failures, get no connection while ejected, and are tried again after
# baseEjectionTime; maxEjectionPercent caps how many go; with every backend
# ejected nothing is skipped (panic). sluicectl inspect shows the ejections,
# a flow event reports each one, and the state survives an agent restart.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

command -v tc >/dev/null || skip "tc (iproute2) missing"
# the backend process itself: serve's job is a subshell that either became
# it or runs it as its child (no pgrep in the VMs' initramfs: the parent
# pid is field 4 of /proc/PID/stat)
sltest_pid() {
	if [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sltest ]; then echo "$1"
	else awk -v p="$1" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true; fi
}
backend_pid() { sltest_pid "${E2E_PIDS[-1]}"; }
stop() { kill "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.02; done; }
serve node2.pod1 b1 --tcp 8080
B1=$(backend_pid)
serve node2.pod2 b2 --tcp 8080
B2=$(backend_pid)
serve node2.pod3 b3 --tcp 8080
B3=$(backend_pid)

# baseEjectionTime long enough for the checks below, also in a slow VM
BASE_MS=$((4000 * SCALE))
svc() { # VERSION MAX_EJECTION_PERCENT
	snapshot node1 <<EOF2
{"version": $1, "services": [
 {"name": "default/web", "vip": "10.96.0.10", "port": 80,
  "backends": [{"address": "$(pod_ip node2.pod1)", "port": 8080},
               {"address": "$(pod_ip node2.pod2)", "port": 8080},
               {"address": "$(pod_ip node2.pod3)", "port": 8080}],
  "traffic": {"outlier": {"consecutive_errors": 3, "interval_ms": 60000,
              "base_ejection_ms": $BASE_MS, "max_ejection_percent": $2}}}]}
EOF2
}
svc 1 34
agent_start node1 --flow-log "$TMP/flows.jsonl"
wait_applied node1 1
p=node1.pod1
inspect() { "$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect services; }
ejected() { inspect | jq -r '[.[0].backends[] | select(.state.ejected) | .port as $p | .address] | sort | join(",")'; }

# --- a killed backend: RST to the SYN ---
stop "$B1"
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 30 --timeout 1000) || true
note "b1 killed: $out"
# sequential connects: exactly the threshold fails, then b1 is ejected
[ "$(jq '.errors.ECONNREFUSED // 0' <<<"$out")" -eq 3 ] || fail "want exactly 3 refused before the ejection: $out"
[ "$(ejected)" = "$(pod_ip node2.pod1)" ] || fail "inspect: ejected [$(ejected)], want b1: $(inspect)"
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 40 --timeout 1000) || fail "after ejection: $out"
[ "$(jq .ok <<<"$out")" -eq 40 ] || fail "connections failed after the ejection: $out"
note "after ejection: $out"
"$BIN/sluicectl" --pin-root "$(pin_root node1)" inspect services
for i in $(seq 50); do grep -q '"eject' "$TMP/flows.jsonl" 2>/dev/null && break; sleep 0.1; done
grep '"eject' "$TMP/flows.jsonl" | grep -q "$(pod_ip node2.pod1)" || fail "no flow event for the ejection: $(tail -3 "$TMP/flows.jsonl")"

# --- the ejection survives an agent restart (pinned state) ---
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
agent_start node1 --flow-log "$TMP/flows.jsonl"
[ "$(ejected)" = "$(pod_ip node2.pod1)" ] || fail "ejection lost across an agent restart: $(inspect)"

# --- after baseEjectionTime b1 (back up) is tried again ---
rm -f "$TMP/ready.b1"   # serve waits for this file: the new process's
serve node2.pod1 b1 --tcp 8080
B1=$(backend_pid)
sleep "$(awk -v ms="$BASE_MS" 'BEGIN { print ms / 1000 + 0.3 }')"
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 60 --timeout 1000) || fail "after the ejection time: $out"
[ "$(jq '.backends.b1 // 0' <<<"$out")" -gt 0 ] || fail "b1 not tried again after baseEjectionTime: $out"
[ -z "$(ejected)" ] || fail "still ejected: $(ejected)"
note "after baseEjectionTime: $out"

# --- a blackholed backend: its SYNs are dropped, the SYN times out ---
ns3=/run/netns/$("$SIM" list "$CL" --json | jq -r '.nodes[].pods[] | select(.name == "node2.pod3") | .netns')
blackhole() { # on|off: drop b3's incoming SYNs with tc, or iptables where tc cannot
	if [ "$1" = on ]; then
		{ nsenter --net="$ns3" tc qdisc add dev eth0 clsact &&
		  nsenter --net="$ns3" tc filter add dev eth0 ingress protocol ip prio 1 u32 \
			match ip protocol 6 0xff match ip dport 8080 0xffff action drop; } 2>/dev/null && return 0
		nsenter --net="$ns3" tc qdisc del dev eth0 clsact 2>/dev/null
		nsenter --net="$ns3" iptables -A INPUT -p tcp --dport 8080 -j DROP 2>/dev/null
	else
		nsenter --net="$ns3" tc qdisc del dev eth0 clsact 2>/dev/null ||
			nsenter --net="$ns3" iptables -D INPUT -p tcp --dport 8080 -j DROP
	fi
}
if blackhole on; then
	# a connect to b3 now waits; its first SYN retransmission (1 s) counts
	out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 30 --timeout 1500) || true
	note "b3 blackholed: $out"
	[ "$(jq '.errors.ETIMEDOUT // 0' <<<"$out")" -eq 3 ] || fail "want exactly 3 timeouts before the ejection: $out"
	[ "$(ejected)" = "$(pod_ip node2.pod3)" ] || fail "inspect: ejected [$(ejected)], want b3: $(inspect)"
	out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 30 --timeout 1500) || fail "after ejection: $out"
	[ "$(jq .ok <<<"$out")" -eq 30 ] || fail "connections failed after the ejection: $out"
	note "after ejection: $out"
	blackhole off
else
	note "SKIPPED the blackhole case: neither tc (cls_u32, act_gact) nor iptables can drop b3's SYNs here"
fi
stop "$B3"

# --- maxEjectionPercent: 3 of 3 dead, 34% may go (one of three) ---
stop "$B1"
stop "$B2"
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 30 --timeout 300) || true
note "all dead, 34%: $out"
[ "$(inspect | jq '.[0].policy.ejected')" -eq 1 ] || fail "maxEjectionPercent 34 ejected other than one of three: $(inspect)"

# --- 100%: all three go, and then none is skipped (panic) ---
svc 2 100
wait_applied node1 2
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 40 --timeout 300) || true
note "all dead, 100%: $out"
[ "$(inspect | jq '.[0].policy.ejected')" -eq 3 ] || fail "100%: want 3 ejected: $(inspect)"
rm -f "$TMP/ready.b2"
serve node2.pod2 b2 --tcp 8080
out=$(in_pod $p "$BIN/sltest" spread --to 10.96.0.10:80 -n 30 --timeout 300) || true
note "panic, b2 back: $out"
[ "$(jq '.backends.b2 // 0' <<<"$out")" -gt 0 ] || fail "panic mode did not try the ejected backends: $out"
"$BIN/sluicectl" --pin-root "$(pin_root node1)" inspect services
