#!/usr/bin/env bash
# Mutual TLS without the application knowing: the client pod on node1
# connects to the server pod's own address on node2; the kernel captures
# the connection to node1's proxy, which carries it over HBONE to node2's
# proxy, which delivers it (the server is PeerAuthentication STRICT):
#  - request/response, and getpeername() shows the server's address, to
#    its IPv4 and to its IPv6 address;
#  - on the link between the nodes a packet capture shows only TLS to port
#    15008 and none of the plaintext marker the client sends;
#  - each connection is accounted once per side, as mutual TLS;
#  - half-close and reset carried end to end;
#  - STRICT: plaintext from outside the mesh is refused at node2's veth,
#    over IPv4 and IPv6;
#  - certificates rotated every few seconds (10 s lifetime) during a long
#    transfer: no connection breaks, and the serial changes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/control_lib.sh"
source "$(dirname "$0")/hbone_lib.sh"

hb_capture_strict
hb_setup --workload-cert-ttl 10s
connect_knows_client || skip "capture needs SO_NETNS_COOKIE (5.14+): connect() does not know the client here"
grep -q 'capture on: connections that must be mutual TLS go to 10.244.1.1:15001' "$TMP/agent.node1.log" ||
	fail "node1's capture is not on: $(grep capture "$TMP/agent.node1.log")"
grep -q 'capture on: IPv6 connections that must be mutual TLS go to \[fd00:244:1::1\]:15001' "$TMP/agent.node1.log" ||
	fail "node1's IPv6 capture is not on: $(grep capture "$TMP/agent.node1.log")"
SRV=$(pod_ip node2.pod1) SRV6=$(pod_ip6 node2.pod1)

# an echo server that can also half-close and reset on request
in_pod node2.pod1 python3 -c '
import socket, struct, threading, sys
l = socket.socket(socket.AF_INET6); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
l.bind(("::", 8081)); l.listen(64)
open(sys.argv[1], "w").close()
def conn(c):
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
        if data.startswith(b"RESET"):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            return
    c.sendall(b"echo:" + data)   # after the client half-closed
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=conn, args=(c,), daemon=True).start()
' "$TMP/echo.ready" >"$TMP/echo.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/echo.ready" ] && break; sleep 0.05; done

# request/response + half-close, with a packet capture on node1's uplink
# (where tcpdump is installed: make check has it, the VM images not)
TCPD=
if command -v tcpdump >/dev/null; then
	# nsenter itself (it execs tcpdump), not a shell function: $! is tcpdump
	nsenter --net="/run/netns/slc.$CL.node1" tcpdump -Z root -i eth0 -U -w "$TMP/link.pcap" 'tcp or udp' \
		>"$TMP/tcpdump.log" 2>&1 &
	TCPD=$!
	E2E_PIDS+=("$TCPD")
	sleep 1
fi
# CLIENT: request/response with half-close to $1 port 8081: "PEER ECHO"
CLIENT='
import socket, sys
s = socket.create_connection((sys.argv[1], 8081), timeout=10)
peer = "%s:%d" % s.getpeername()[:2]
s.sendall(b"SLUICE-PLAINTEXT-MARKER-4711")
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
print(peer, got.decode())'
out=$(in_pod node1.pod1 python3 -c "$CLIENT" "$SRV") || fail "client through capture: $out"
[ "$out" = "$SRV:8081 echo:SLUICE-PLAINTEXT-MARKER-4711" ] || fail "through capture: $out"
note "captured request/response with half-close: $out"
out=$(in_pod node1.pod1 python3 -c "$CLIENT" "$SRV6") || fail "IPv6 client through capture: $out"
[ "$out" = "$SRV6:8081 echo:SLUICE-PLAINTEXT-MARKER-4711" ] || fail "IPv6 through capture: $out"
note "captured IPv6 request/response with half-close: $out"
# accounted once, by the proxies (with the certificates' principals): the
# kernels leave out the captured connections (node1) and the proxy's
# deliveries to the server (node2), which they would report without mTLS,
# node2's as coming from "world"
sleep 0.5
all1=$(metric node1 '^istio_tcp_connections_opened_total\{reporter="source".*destination_workload="node2-pod1"')
tls1=$(metric node1 '^istio_tcp_connections_opened_total\{reporter="source".*destination_workload="node2-pod1".*connection_security_policy="mutual_tls"')
all2=$(metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*destination_workload="node2-pod1"')
tls2=$(metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*source_principal="spiffe://cluster.local/ns/default/sa/client".*destination_workload="node2-pod1".*connection_security_policy="mutual_tls"')
[ "$all1" = 2 ] && [ "$tls1" = 2 ] && [ "$all2" = 2 ] && [ "$tls2" = 2 ] ||
	fail "two captured connections were counted as opened $all1 times on node1 ($tls1 mutual_tls) and $all2 times on node2 ($tls2 mutual_tls from the client); want 2 each, all mutual_tls"
note "accounted once on each side, as mutual_tls"
if [ -n "$TCPD" ]; then
	sleep 1
	kill "$TCPD"; wait "$TCPD" 2>/dev/null
	[ "$(tcpdump -Z root -r "$TMP/link.pcap" -nn 'tcp port 15008' 2>/dev/null | wc -l)" -gt 0 ] ||
		fail "no HBONE traffic on the link"
	other=$(tcpdump -Z root -r "$TMP/link.pcap" -nn 'not tcp port 15008 and not tcp port 15012' 2>/dev/null)
	[ -z "$other" ] || fail "traffic on the link besides HBONE and the control plane: $other"
	! tcpdump -Z root -r "$TMP/link.pcap" -A 2>/dev/null | grep -q 'SLUICE-PLAINTEXT-MARKER' ||
		fail "the plaintext marker crossed the link"
	note "link capture: only TLS on 15008 (and the control plane's 15012), no marker"
else
	note "SKIPPED the link capture: tcpdump missing"
fi

# a reset at the server reaches the client as a reset
out=$(in_pod node1.pod1 python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 8081), timeout=10)
s.sendall(b"RESET")
try:
    b = s.recv(100)
    print("got %r" % b)
except ConnectionResetError:
    print("reset")' "$SRV") || fail "reset client: $out"
[ "$out" = reset ] || fail "a reset at the server reached the client as: $out"
note "reset carried across"

# STRICT: plaintext from node1's own namespace (no identity, never captured)
# (nothing listens on 8080: a SYN let through would be refused, not lost)
out=$(in_node node1 "$BIN/sltest" connect --to "$SRV:8080" --timeout 1000) &&
	fail "plaintext from outside the mesh reached a STRICT workload: $out"
[ "$(jq -r .error <<<"$out")" = ETIMEDOUT ] || fail "plaintext to STRICT: $out, want ETIMEDOUT (dropped)"
note "STRICT refuses plaintext from outside the mesh: $(jq -c . <<<"$out")"
out=$(in_node node1 "$BIN/sltest" connect --to "[$SRV6]:8080" --timeout 1000) &&
	fail "IPv6 plaintext from outside the mesh reached a STRICT workload: $out"
[ "$(jq -r .error <<<"$out")" = ETIMEDOUT ] || fail "IPv6 plaintext to STRICT: $out, want ETIMEDOUT (dropped)"
note "and over IPv6: $(jq -c . <<<"$out")"

# rotation under traffic: 10 s certificates renewed at half-life during a
# transfer of about 20 s; the connection must not break
in_pod node2.pod1 "$BIN/sltest" xfer-serve --tcp 9000 --ready "$TMP/ready.xfer" --max-seconds 300 \
	>>"$TMP/xfer-serve.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/ready.xfer" ] && break; sleep 0.05; done
# The transfer has to outlast a renewal: a machine fast enough to move it
# between two renewals proves nothing, so it is repeated 4x larger (twice
# at most); a renewal that never comes, or a broken transfer, fails.
client_serial() { jq -r '.[] | select(.identity | endswith("/sa/client")) | .serial' "$(run_dir node1)/certs.json"; }
XFER=$((768 << 20))
[ "$SCALE" -gt 1 ] && XFER=$((24 << 20))   # emulated machines are ~30x slower
for _ in 1 2 3; do
	serial0=$(client_serial)
	out=$(in_pod node1.pod1 "$BIN/sltest" xfer --to "$SRV:9000" --up $XFER --down $XFER --timeout-s 240) ||
		fail "transfer across certificate rotations: $out"
	serial1=$(client_serial)
	[ "$serial0" != "$serial1" ] && break
	note "no renewal during a transfer of $((XFER >> 20)) MiB each way ($(jq -c .seconds <<<"$out") s): again, 4x larger"
	XFER=$((XFER * 4))
done
[ "$serial0" != "$serial1" ] || fail "the client's certificate was not renewed during the transfer"
renewals=$(grep -c 'workload certificate for spiffe://cluster.local/ns/default/sa/client' "$TMP/agent.node1.log")
note "rotation: $renewals certificates for the client so far, $((XFER >> 20)) MiB each way intact across one ($(jq -c '{seconds, mbps_up, mbps_down}' <<<"$out"))"
