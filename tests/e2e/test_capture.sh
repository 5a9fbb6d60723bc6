#!/bin/bash
# Capture for the mTLS proxy (kernel side), on two nodes with two
# pods each, every pod a mesh workload:
#  - a mesh client's connect() to a workload on another node whose
#    PeerAuthentication is STRICT or PERMISSIVE (or unset) goes to the node
#    proxy's outbound listener; the listener finds the original destination
#    and the client's identity in sl_origdst under the client's address and
#    port; getpeername() in the client still shows the original destination;
#  - same-node connections and DISABLE destinations are not captured;
#  - STRICT: tc at the destination drops plaintext from outside the node
#    (counted, with a flow event) but lets through the node's own workloads
#    and what the proxy delivers (SO_MARK SL_PROXY_MARK); PERMISSIVE lets
#    plaintext through;
#  - a mode change applies to new connections at once;
#  - portLevelMtls: a port's own mode wins over the workload's, for the
#    capture and for STRICT at tc.
# The proxy here is a stand-in listener that answers with what sl_origdst
# holds; the agent's proxy itself has its own tests.
. "$(dirname "$0")/lib.sh"
e2e_init 2 2
command -v python3 >/dev/null || skip "python3 missing"

IDS='{"node1.pod1": 256, "node1.pod2": 257, "node2.pod1": 258, "node2.pod2": 259}'
MTLS='{"node2.pod1": "STRICT", "node2.pod2": "DISABLE", "node1.pod2": "PERMISSIVE"}'
for n in node1 node2; do
	mesh_snapshot "$n" 1 "$IDS" '[]'
	jq --argjson m "$MTLS" '.workloads |= map(if $m[.name] then . + {mtls: $m[.name]} else . end)' \
		"$TMP/snap.$n.json" >"$TMP/snap.tmp" && mv "$TMP/snap.tmp" "$TMP/snap.$n.json"
done
agent_start node1 --flow-log "$TMP/flows1.jsonl"
agent_start node2 --flow-log "$TMP/flows2.jsonl"
wait_applied node1 1
wait_applied node2 1
P11=$(pod_ip node1.pod1) P12=$(pod_ip node1.pod2) P21=$(pod_ip node2.pod1) P22=$(pod_ip node2.pod2)
serve node2.pod1 strict --tcp 8080
serve node2.pod2 disable --tcp 8080
serve node1.pod2 permissive --tcp 8080

# the stand-in proxy on node1: for each connection, look the peer up in
# sl_origdst and answer "DST PORT IDENTITY" (or "none")
ORIG=$(pin_root node1)/sl_origdst
nsenter --net="/run/netns/slc.$CL.node1" python3 -c '
import ipaddress, json, socket, struct, subprocess, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 15001)); l.listen(16)
open(sys.argv[2], "w").close()
while True:
    c, (addr, port) = l.accept()
    key = ipaddress.IPv6Address("::ffff:" + addr).packed + struct.pack("=HH", port, 0)
    out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned", sys.argv[1], "key", "hex"] +
                         ["%02x" % b for b in key], capture_output=True, text=True)
    try:
        v = bytes(int(x, 16) for x in json.loads(out.stdout)["value"])
        dst = ipaddress.IPv6Address(v[:16]).ipv4_mapped
        dport, _, ident = struct.unpack("=HHI", v[16:24])
        c.sendall(("%s %d %d\n" % (dst, dport, ident)).encode())
    except Exception as e:
        c.sendall(b"none\n")
    c.close()
' "$ORIG" "$TMP/proxy.ready" >"$TMP/proxy.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/proxy.ready" ] && break; sleep 0.05; done
# sl_proxy = { ::ffff:10.244.1.1, 15001, enabled }
bpftool map update pinned "$(pin_root node1)/sl_proxy" key hex 00 00 00 00 value hex \
	00 00 00 00 00 00 00 00 00 00 ff ff 0a f4 01 01 99 3a 01 00 || fail "setting sl_proxy"

# client IP PORT: connect from node1.pod1, print "PEER| first line"
client() {
	in_pod node1.pod1 python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
peer = "%s:%d" % s.getpeername()[:2]
line = s.makefile().readline().strip()
print("%s|%s" % (peer, line))' "$1" "$2"
}

if connect_knows_client; then
	# STRICT and PERMISSIVE on another node: captured
	out=$(client "$P21" 8080) || fail "client to node2.pod1 (STRICT): $out"
	[ "$out" = "$P21:8080|$P21 8080 256" ] || fail "STRICT remote not captured as expected: $out"
	note "remote STRICT: captured, getpeername $P21:8080, sl_origdst: ${out#*|}"
	# same node: not captured (the backend's name line comes back)
	out=$(client "$P12" 8080) || fail "client to node1.pod2: $out"
	[ "${out#*|}" = permissive ] || fail "same-node connection captured: $out"
	# DISABLE: not captured
	out=$(client "$P22" 8080) || fail "client to node2.pod2: $out"
	[ "${out#*|}" = disable ] || fail "DISABLE destination captured: $out"
	note "same node and DISABLE: not captured"
	[ "$(bpftool -j map dump pinned "$ORIG" | jq length)" -le 1 ] ||
		fail "sl_origdst keeps entries of closed connections"
else
	# before 5.14 connect() cannot tell which pod calls: nothing is captured
	out=$(client "$P22" 8080) || fail "client to node2.pod2: $out"
	[ "${out#*|}" = disable ] || fail "connection captured without a known client: $out"
	note "SKIPPED capture: this kernel lacks SO_NETNS_COOKIE (5.14), so connect() does not know the client"
fi

# STRICT at the destination: plaintext from node1's own namespace (not a
# pod: never captured) is dropped by tc on node2, and counted
out=$(nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sltest" connect --to "$P21:8080" --timeout 1000) &&
	fail "plaintext reached a STRICT workload: $out"
[ "$(jq -r .error <<<"$out")" = ETIMEDOUT ] || fail "plaintext to STRICT: $out"
d=$("$BIN/sluicectl" --pin-root "$(pin_root node2)" -o json inspect policy | jq '.drops.mtls_strict // 0')
[ "$d" -ge 1 ] || fail "mtls_strict drops: $d"
for _ in $(seq 50); do grep -q '"reason":"mtls_strict"' "$TMP/flows2.jsonl" && break; sleep 0.1; done
grep -q '"reason":"mtls_strict"' "$TMP/flows2.jsonl" || fail "no mtls_strict flow event"
# ... but the node's own workloads and the proxy's marked sockets pass
out=$(in_pod node2.pod2 "$BIN/sltest" connect --to "$P21:8080") || fail "same-node plaintext to STRICT: $out"
nsenter --net="/run/netns/slc.$CL.node2" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x5100)
s.settimeout(3)
s.connect((sys.argv[1], 8080))
assert s.makefile().readline().strip() == "strict"' "$P21" || fail "proxy-marked connection to STRICT refused"
# PERMISSIVE takes plaintext from outside the node
out=$(nsenter --net="/run/netns/slc.$CL.node2" "$BIN/sltest" connect --to "$P12:8080") ||
	fail "plaintext to PERMISSIVE refused: $out"
note "STRICT drops outside plaintext ($d counted, flow event), passes local and proxy; PERMISSIVE passes"

# a PeerAuthentication change applies to new connections at once: STRICT
# -> PERMISSIVE lets the same outside plaintext in; DISABLE stops capture
mtls_to() { # MODE VERSION : node2.pod1's mode, on both nodes
	local n
	for n in node1 node2; do
		jq --arg m "$1" --argjson v "$2" '.version = $v |
			.workloads |= map(if .name == "node2.pod1" then . + {mtls: $m} else . end)' \
			"$TMP/snap.$n.json" >"$TMP/snap.tmp" && mv "$TMP/snap.tmp" "$TMP/snap.$n.json"
	done
	wait_applied node1 "$2"
	wait_applied node2 "$2"
}
mtls_to PERMISSIVE 2
out=$(nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sltest" connect --to "$P21:8080") ||
	fail "plaintext to a workload switched to PERMISSIVE: $out"
if connect_knows_client; then
	out=$(client "$P21" 8080) || fail "client to node2.pod1 (PERMISSIVE): $out"
	[ "${out#*|}" = "$P21 8080 256" ] || fail "PERMISSIVE remote not captured: $out"
	mtls_to DISABLE 3
	out=$(client "$P21" 8080) || fail "client to node2.pod1 (DISABLE): $out"
	[ "${out#*|}" = strict ] || fail "a workload switched to DISABLE is still captured: $out"
fi
note "mode changes apply at once: STRICT -> PERMISSIVE takes plaintext, -> DISABLE is not captured"

# portLevelMtls: node2.pod1 STRICT but port 8082 DISABLE, node2.pod2
# DISABLE but port 8083 STRICT
serve node2.pod1 strict8082 --tcp 8082
serve node2.pod2 disable8083 --tcp 8083
for n in node1 node2; do
	jq '.version = 4 | .workloads |= map(
		if .name == "node2.pod1" then . + {mtls: "STRICT", mtls_ports: [{port: 8082, mode: "DISABLE"}]}
		elif .name == "node2.pod2" then . + {mtls: "DISABLE", mtls_ports: [{port: 8083, mode: "STRICT"}]}
		else . end)' "$TMP/snap.$n.json" >"$TMP/snap.tmp" && mv "$TMP/snap.tmp" "$TMP/snap.$n.json"
done
wait_applied node1 4
wait_applied node2 4
outside() { nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sltest" connect --to "$1" --timeout 1000; }
out=$(outside "$P21:8082") || fail "plaintext to a STRICT workload's DISABLE port refused: $out"
out=$(outside "$P21:8080") && fail "plaintext to a STRICT workload's other port got through: $out"
out=$(outside "$P22:8083") && fail "plaintext to a DISABLE workload's STRICT port got through: $out"
[ "$(jq -r .error <<<"$out")" = ETIMEDOUT ] || fail "plaintext to a STRICT port: $out, want ETIMEDOUT"
out=$(outside "$P22:8080") || fail "plaintext to a DISABLE workload's other port refused: $out"
if connect_knows_client; then
	out=$(client "$P21" 8082) || fail "client to a STRICT workload's DISABLE port: $out"
	[ "${out#*|}" = strict8082 ] || fail "a DISABLE port was captured: $out"
	out=$(client "$P21" 8080) || fail "client to a STRICT workload's other port: $out"
	[ "${out#*|}" = "$P21 8080 256" ] || fail "the STRICT workload's other port was not captured: $out"
	out=$(client "$P22" 8083) || fail "client to a DISABLE workload's STRICT port: $out"
	[ "${out#*|}" = "$P22 8083 256" ] || fail "a STRICT port of a DISABLE workload was not captured: $out"
fi
note "portLevelMtls: a port's mode wins over the workload's, for capture and at tc"
# and a port that leaves portLevelMtls leaves sl_mtls_port
# two ports of two dual-stack workloads
[ "$(bpftool -j map dump pinned "$(pin_root node1)/sl_mtls_port" | jq length)" = 4 ] ||
	fail "sl_mtls_port: $(bpftool -j map dump pinned "$(pin_root node1)/sl_mtls_port")"
for n in node1 node2; do
	jq '.version = 5 | .workloads |= map(del(.mtls_ports))' "$TMP/snap.$n.json" >"$TMP/snap.tmp" &&
		mv "$TMP/snap.tmp" "$TMP/snap.$n.json"
done
wait_applied node1 5
[ "$(bpftool -j map dump pinned "$(pin_root node1)/sl_mtls_port" | jq length)" = 0 ] ||
	fail "sl_mtls_port keeps ports the snapshot dropped: $(bpftool -j map dump pinned "$(pin_root node1)/sl_mtls_port")"
out=$(outside "$P21:8082") && fail "plaintext to the STRICT workload's former DISABLE port got through: $out"
note "ports dropped from portLevelMtls leave sl_mtls_port, and the workload's mode applies again"
