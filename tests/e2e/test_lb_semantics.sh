#!/bin/bash
# What an application sees through a VIP: getpeername returns VIP:port, a
# service with no backends refuses, UDP replies come from the VIP, IPv6 VIPs
# and dual-stack sockets (IPv4-mapped VIP) work, also across nodes.
. "$(dirname "$0")/lib.sh"
e2e_init 2 2

serve node2.pod1 b1 --tcp 8080 --udp 5353
serve node2.pod2 b2 --tcp 8080 --udp 5353
snapshot node1 <<EOF2
{"version": 1, "services": [
 {"name": "default/web", "vip": "10.96.0.10", "port": 80,
  "backends": [{"address": "$(pod_ip node2.pod1)", "port": 8080}, {"address": "$(pod_ip node2.pod2)", "port": 8080}]},
 {"name": "default/dns", "vip": "10.96.0.53", "port": 53, "protocol": "UDP",
  "backends": [{"address": "$(pod_ip node2.pod1)", "port": 5353}]},
 {"name": "default/empty", "vip": "10.96.0.99", "port": 80, "backends": []},
 {"name": "default/web6", "vip": "fd00:96::10", "port": 80,
  "backends": [{"address": "$(pod_ip6 node2.pod2)", "port": 8080}]},
 {"name": "default/dns6", "vip": "fd00:96::53", "port": 53, "protocol": "UDP",
  "backends": [{"address": "$(pod_ip6 node2.pod1)", "port": 5353}]}]}
EOF2
agent_start node1
wait_applied node1 1
p=node1.pod1

out=$(in_pod $p "$BIN/sltest" connect --to 10.96.0.10:80) || fail "tcp v4: $out"
[ "$(jq -r .peer <<<"$out")" = "10.96.0.10:80" ] || fail "getpeername: $out"
note "tcp v4: $out"

out=$(in_pod $p "$BIN/sltest" connect --to 10.96.0.99:80) && fail "empty service accepted: $out"
# bpf_set_retval is 5.18+: without it (the agent's probe says so at start)
# the refusal can only be EPERM
want=ECONNREFUSED
grep -q 'kernel lacks bpf_set_retval' "$TMP/agent.node1.log" && want=EPERM
[ "$(jq -r .error <<<"$out")" = "$want" ] || fail "empty service: want $want: $out"
note "no backends: $out"

out=$(in_pod $p "$BIN/sltest" connect --udp --to 10.96.0.53:53) || fail "udp v4: $out"
[ "$(jq -r .from <<<"$out")" = "10.96.0.53:53" ] || fail "udp reply source: $out"
note "udp v4: $out"

out=$(in_pod $p "$BIN/sltest" connect --to '[fd00:96::10]:80') || fail "tcp v6: $out"
[ "$(jq -r .peer <<<"$out")" = "[fd00:96::10]:80" ] || fail "getpeername v6: $out"
[ "$(jq -r .backend <<<"$out")" = b2 ] || fail "v6 backend: $out"
note "tcp v6: $out"

out=$(in_pod $p "$BIN/sltest" connect --udp --to '[fd00:96::53]:53') || fail "udp v6: $out"
[ "$(jq -r .from <<<"$out")" = "[fd00:96::53]:53" ] || fail "udp v6 reply source: $out"
note "udp v6: $out"

out=$(in_pod $p "$BIN/sltest" connect --to '[::ffff:10.96.0.10]:80') || fail "dual-stack tcp: $out"
[ "$(jq -r .peer <<<"$out")" = "[::ffff:10.96.0.10]:80" ] || fail "dual-stack getpeername: $out"
note "dual-stack tcp: $out"

out=$(in_pod $p "$BIN/sltest" connect --udp --to '[::ffff:10.96.0.53]:53') || fail "dual-stack udp: $out"
[ "$(jq -r .from <<<"$out")" = "[::ffff:10.96.0.53]:53" ] || fail "dual-stack udp source: $out"
note "dual-stack udp: $out"

# a pod on another node has no agent: its traffic is untouched
out=$(in_pod node2.pod1 "$BIN/sltest" connect --timeout 500 --to 10.96.0.10:80) && fail "node2 translated without an agent: $out"
note "node without agent: $out"
