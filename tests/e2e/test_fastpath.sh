#!/bin/bash
# Same-node fast path (sockops + sk_msg redirection through the sockhash),
# forced on whatever the kernel's half-close probe says, on one node with
# six pods, every client going through a service VIP:
#  - bulk integrity, SHA-256 both ways: 1 GiB each way in 64 KiB messages,
#    and 1 B, 1 KiB, 1 MiB and random message sizes; the pod's veth sees
#    (almost) none of the bytes, so they really were redirected;
#  - 200 concurrent connections over two pod pairs;
#  - half-close: the client shuts down its writing side and blocks in
#    recv() until EOF, 100 times, never EAGAIN;
#  - the client writes before the server's socket is in the sockhash (the
#    handshake's last ACK is dropped in the client's netns, so the server
#    is established by the first data segment): in order, 100 times;
#  - dual-stack: an AF_INET6 server, IPv4 and ::ffff: clients;
#  - two client/server pairs with the same ports in different pods;
#  - the switch turned off during a redirected transfer: it completes,
#    a new connection is not redirected; on again: redirected;
#  - RST and abrupt close leave nothing in the sockhash or its state map;
#  - counters, /metrics and close events are exact on both paths.
. "$(dirname "$0")/lib.sh"
e2e_init 1 6

IDS='{"node1.pod1": 256, "node1.pod2": 257, "node1.pod3": 258, "node1.pod4": 259, "node1.pod5": 260, "node1.pod6": 261}'
P2=$(pod_ip node1.pod2) P4=$(pod_ip node1.pod4)
SVC='[{"name": "default/a", "vip": "10.96.0.20", "port": 80, "backends": [{"address": "'$P2'", "port": 9000}]},
      {"name": "default/b", "vip": "10.96.0.21", "port": 80, "backends": [{"address": "'$P4'", "port": 9000}]},
      {"name": "default/v6srv", "vip": "10.96.0.22", "port": 80, "backends": [{"address": "'$P2'", "port": 9001}]},
      {"name": "default/hc", "vip": "10.96.0.23", "port": 80, "backends": [{"address": "'$P2'", "port": 9002}]}]'
mesh_snapshot node1 1 "$IDS" '[]' "$SVC"
PORT=$((19000 + $$ % 1000))
agent_start node1 --sockmap force --metrics-addr "127.0.0.1:$PORT" --flow-log "$TMP/flows.jsonl"
wait_applied node1 1
CTL=("$BIN/sluicectl" --pin-root "$(pin_root node1)")
[ "$("${CTL[@]}" -o json status | jq -r .features.fastpath_on)" = true ] || fail "fast path not on"
BUG=$("${CTL[@]}" -o json status | jq -r .features.fastpath_halfclose_bug)
note "kernel half-close bug: $BUG"

xserve() { # POD PORT [--bind ADDR]
	local pod=$1 port=$2
	shift 2
	in_pod "$pod" "$BIN/sltest" xfer-serve --tcp "$port" --ready "$TMP/xready.$pod.$port" "$@" \
		>>"$TMP/xserve.$pod.$port.log" 2>&1 &
	E2E_PIDS+=("$!")
	for _ in $(seq $((100 * SCALE))); do [ -e "$TMP/xready.$pod.$port" ] && return 0; sleep 0.05; done
	fail "xfer-serve $pod:$port did not start"
}
# sizes in MiB; divided by 16 on slow (emulated) machines
DIV=1
[ "$SCALE" -gt 1 ] && DIV=16
mib() { echo "$((($1 << 10) / DIV))K"; }
xserve node1.pod2 9000
xserve node1.pod4 9000
xserve node1.pod2 9001 --bind ::

# bytes through a pod's host-side veth, both directions
veth_bytes() {
	ip -n "slc.$CL.node1" -j -s link show "p${1#node1.pod}" |
		jq '.[0].stats64.rx.bytes + .[0].stats64.tx.bytes'
}
# xfer POD ADDR UP DOWN [xfer flags]: one checked transfer, no half-close
xfer() {
	local pod=$1 to=$2 up=$3 down=$4 out
	shift 4
	out=$(in_pod "$pod" "$BIN/sltest" xfer --to "$to" --up "$up" --down "$down" \
		--no-half-close --timeout-s $((120 * SCALE)) "$@") ||
		fail "xfer $pod -> $to $up/$down $*: $out"
	echo "$out"
}
# redirected POD BEFORE PAYLOAD: the pod's veth carried under 1% of PAYLOAD
redirected() {
	local d=$(($(veth_bytes "$1") - $2))
	[ "$d" -lt $(($3 / 100)) ] || fail "$4: $d bytes crossed $1's veth for $3 bytes of payload: not redirected"
}
sockets() { "${CTL[@]}" -o json fastpath status | jq .sockets; }
# xfer_redirected SERVERPOD WHAT POD ADDR UP DOWN [xfer flags]: a checked
# transfer that must be redirected. A client that writes before the
# server's socket joins the sockhash rides TCP, both ways, by design
# (headers/sluice_fast.h): the server joins when the handshake's last
# ACK is processed, which an emulated machine may defer past the
# client's first write (seen 3 times in 4 on the 6.1 VM for a first
# connection, and on the 5.10 VM for the first after a switch). Such a
# transfer is still checked whole; the next try must be redirected, 3
# tries in all. Prints the last transfer's report.
xfer_redirected() {
	local srv=$1 what=$2 try v0 out bytes d
	shift 2
	for try in 1 2 3; do
		v0=$(veth_bytes "$srv")
		out=$(xfer "$@")
		bytes=$(jq '.up + .down' <<<"$out")
		d=$(($(veth_bytes "$srv") - v0))
		[ "$d" -lt $((bytes / 100)) ] && break
		[ "$try" = 3 ] && redirected "$srv" "$v0" "$bytes" "$what, 3 tries"
		note "$what: rode TCP ($d bytes crossed the veth); again" >&2
	done
	echo "$out"
}

# --- bulk integrity, message sizes
for spec in "$(mib 1024) 65536" "$(mib 1) 1" "$(mib 64) 1024" "$(mib 256) 1048576" "$(mib 256) random"; do
	set -- $spec
	out=$(xfer_redirected node1.pod2 "$1 each way in $2-byte messages" \
		node1.pod1 10.96.0.20:80 "$1" "$1" --msg "$2")
	note "$1 each way, msg $2: $(jq -c '{sha256_up, mbps_up, mbps_down}' <<<"$out")"
done

# --- 200 concurrent connections, two pod pairs (40 on emulated machines:
# there, under that load, 6.1's tcp_bpf_recvmsg also returned EAGAIN to
# a reader thread woken without data while its socket's writer thread
# waited for memory, the kernel limitation docs/architecture.md describes)
PAR=100
[ "$SCALE" -gt 1 ] && PAR=20
v0=$(veth_bytes node1.pod2)
xfer node1.pod1 10.96.0.20:80 1M 1M --parallel $PAR --seed 1000 >"$TMP/par1" &
p1=$!
xfer node1.pod3 10.96.0.21:80 1M 1M --parallel $PAR --seed 2000 >"$TMP/par2" &
p2=$!
wait $p1 || fail "$PAR concurrent pod1 -> pod2: $(cat "$TMP/par1")"
wait $p2 || fail "$PAR concurrent pod3 -> pod4: $(cat "$TMP/par2")"
redirected node1.pod2 "$v0" $((PAR << 21)) "$PAR concurrent connections"
note "$((2 * PAR)) concurrent connections: ok"

# --- half-close then a blocking recv(), 100 times: EOF, never EAGAIN
in_pod node1.pod2 python3 -c '
import socket, threading, time
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 9002)); l.listen(128)
open("'"$TMP"'/hc.ready", "w").close()
def conn(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    time.sleep(0.02)    # longer than a delayed ACK: the FIN is acked alone
    c.sendall(b"r" * (2 * n))
    c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=conn, args=(c,), daemon=True).start()
' >"$TMP/hc.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/hc.ready" ] && break; sleep 0.05; done
in_pod node1.pod1 python3 -c '
import socket, sys
for i in range(100):
    s = socket.create_connection(("10.96.0.23", 80))
    s.sendall(b"q" * 10000)
    s.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        try:
            b = s.recv(65536)       # blocking, no timeout
        except OSError as e:
            sys.exit("connection %d: recv after %d bytes: %s" % (i, got, e))
        if not b:
            break
        got += len(b)
    s.close()
    if got != 20000:
        sys.exit("connection %d: %d bytes, want 20000" % (i, got))
' || fail "half-close"
note "half-close: 100 connections, every byte then EOF"

# --- the client writes before the server is in the sockhash
if in_pod node1.pod1 iptables -w -A OUTPUT -p tcp --dport 9000 --tcp-flags ALL ACK \
	-m connbytes --connbytes 2:2 --connbytes-dir original --connbytes-mode packets -j DROP 2>/dev/null; then
	for i in $(seq 100); do
		xfer node1.pod1 10.96.0.20:80 256K 256K --seed $((3000 + i)) --msg 4096 >/dev/null
	done
	dropped=$(in_pod node1.pod1 iptables -w -L OUTPUT -v -n -x | awk '/connbytes/ { print $1 }')
	in_pod node1.pod1 iptables -w -F OUTPUT
	[ "$dropped" -ge 100 ] || fail "only $dropped handshake ACKs dropped, want 100"
	note "early writes: 100 connections in order ($dropped handshake ACKs dropped)"
else
	# the VM images of vmtests/ have no xt_connbytes module
	note "SKIPPED early writes: iptables connbytes unavailable on this kernel"
fi

# --- dual-stack: the server's socket is AF_INET6
for to in 10.96.0.22:80 "[::ffff:10.96.0.22]:80"; do
	xfer_redirected node1.pod2 "dual-stack $to" node1.pod1 "$to" "$(mib 256)" "$(mib 256)" >/dev/null
done
note "dual-stack: redirected, both client families"

# --- the same ports in different pods, at the same time (30000: below the
# ephemeral range, so no earlier connection of the test holds that port in
# TIME_WAIT to the same backend, which made connect() fail with EADDRINUSE)
xfer node1.pod1 10.96.0.20:80 "$(mib 128)" "$(mib 128)" --bind-port 30000 --seed 7 >"$TMP/same1" &
p1=$!
xfer node1.pod3 10.96.0.21:80 "$(mib 128)" "$(mib 128)" --bind-port 30000 --seed 8 >"$TMP/same2" &
p2=$!
wait $p1 || fail "same ports, pod1: $(cat "$TMP/same1")"
wait $p2 || fail "same ports, pod3: $(cat "$TMP/same2")"
note "same ports in two pods: no cross-talk"

# --- switch off while redirected, then on again
in_pod node1.pod1 "$BIN/sltest" xfer --to 10.96.0.20:80 --up "$(mib 512)" --down "$(mib 512)" --no-half-close \
	--timeout-s $((120 * SCALE)) >"$TMP/long" 2>&1 &
long=$!
for _ in $(seq $((100 * SCALE))); do [ "$(sockets)" -ge 2 ] && break; sleep 0.02; done
"${CTL[@]}" fastpath off >/dev/null || fail "fastpath off"
# the subcommand's own -o, and any unique prefix of it
[ "$("${CTL[@]}" fastpath st -o json | jq .fastpath)" = false ] || fail "fastpath st -o json"
v0=$(veth_bytes node1.pod4)
xfer node1.pod3 10.96.0.21:80 16M 16M >/dev/null
d=$(($(veth_bytes node1.pod4) - v0))
[ "$d" -ge $((32 << 20)) ] || fail "switched off, yet only $d bytes crossed the veth"
wait $long || fail "redirected transfer across the switch: $(cat "$TMP/long")"
if [ "$BUG" = true ]; then
	"${CTL[@]}" fastpath on 2>/dev/null && fail "fastpath on must refuse where the probe found the bug"
	"${CTL[@]}" fastpath force >/dev/null || fail "fastpath force"
else
	"${CTL[@]}" fastpath on >/dev/null || fail "fastpath on"
fi
xfer_redirected node1.pod4 "switched on again" node1.pod3 10.96.0.21:80 16M 16M >/dev/null
note "switch: off keeps established ones, new ones take TCP; on again redirects"

# --- RST and abrupt close
in_pod node1.pod1 python3 -c '
import socket, struct
for i in range(20):
    s = socket.create_connection(("10.96.0.20", 80))
    s.sendall(b"SLX1")           # a partial header, then a reset
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
' || fail "reset clients"
# a process holding a redirected connection, killed with SIGKILL (it
# writes its own PID: in_pod's $! would be the wrapper's)
in_pod node1.pod1 python3 -c '
import os, socket, sys, time
s = socket.create_connection(("10.96.0.20", 80))
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)' "$TMP/holder.pid" >/dev/null 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq $((100 * SCALE))); do [ -s "$TMP/holder.pid" ] && [ "$(sockets)" -ge 2 ] && break; sleep 0.02; done
[ "$(sockets)" -ge 2 ] || fail "held connection not in the sockhash"
kill -9 "$(cat "$TMP/holder.pid")" || fail "the holder is gone before it was killed"
for _ in $(seq $((100 * SCALE))); do [ "$(sockets)" -eq 0 ] && break; sleep 0.05; done
[ "$(sockets)" -eq 0 ] || fail "$(sockets) stale sockhash entries"
st=$(bpftool -j map dump pinned "$(pin_root node1)/sl_faststate" | jq length)
[ "$st" -eq 0 ] || fail "$st stale sl_faststate entries"
note "RST and kill -9: sockhash and state empty"

# --- exact accounting on both paths: pod5 redirected, pod6 through TCP
# (switched off for it), 10 connections each of 1 MiB up, 2 MiB down,
# plus the 32-byte header and the 64-byte trailer
for pod in node1.pod5 node1.pod6; do
	[ $pod = node1.pod6 ] && "${CTL[@]}" fastpath off >/dev/null
	# per connection: redirected if under 1% of its 3 MiB crossed the veth
	# (one whose client wrote first rides TCP, as above; its bytes count
	# all the same)
	fast=0
	for i in $(seq 10); do
		v0=$(veth_bytes $pod)
		xfer $pod 10.96.0.20:80 1M 2M --seed $((5000 + i)) >/dev/null
		[ $(($(veth_bytes $pod) - v0)) -lt $(((3 << 20) / 100)) ] && fast=$((fast + 1))
	done
	if [ $pod = node1.pod5 ]; then
		[ "$fast" -ge 8 ] || fail "pod5: $fast of 10 connections redirected, want 8 or more"
	else
		[ "$fast" -eq 0 ] || fail "pod6: $fast of 10 connections redirected while switched off"
	fi
	note "$pod: $fast of 10 connections redirected"
done
sleep 0.5
metrics() { nsenter --net="/run/netns/slc.$CL.node1" curl -sf "http://127.0.0.1:$PORT/metrics"; }
metrics >"$TMP/metrics.txt" || fail "GET /metrics failed"
val() { # metric reporter pod
	grep "^$1{reporter=\"$2\",source_workload=\"$3\"" "$TMP/metrics.txt" | awk '{ s += $NF } END { print s + 0 }'
}
UP=$((10 * ((1 << 20) + 32))) DOWN=$((10 * ((2 << 20) + 64)))
# Istio's names: "received" is the request direction, "sent" the response
for pod in node1.pod5 node1.pod6; do
	for r in source destination; do
		[ "$(val istio_tcp_received_bytes_total $r $pod)" = $UP ] ||
			fail "$pod $r received: $(val istio_tcp_received_bytes_total $r $pod), want $UP"
		[ "$(val istio_tcp_sent_bytes_total $r $pod)" = $DOWN ] ||
			fail "$pod $r sent: $(val istio_tcp_sent_bytes_total $r $pod), want $DOWN"
		[ "$(val istio_tcp_connections_closed_total $r $pod)" = 10 ] || fail "$pod $r closed"
	done
	F=$TMP/flows.jsonl
	b=$(jq -s --arg p $pod '[.[] | select(.type == "close" and .reporter == "source" and .source.workload == $p) |
		"\(.bytes_sent) \(.bytes_received)"] | unique | join(",")' "$F")
	[ "$b" = "\"$(((1 << 20) + 32)) $(((2 << 20) + 64))\"" ] || fail "$pod close events: $b"
done
note "accounting exact on both paths: $UP bytes up, $DOWN down per pod"

# --- a policy change: pod1 -> pod2 becomes denied while a redirected
# connection between them runs. New connections are refused at connect()
# (the fast path never sees them); the established one keeps its path
# until it ends, as it would on TCP (docs/architecture.md).
"${CTL[@]}" fastpath force >/dev/null || "${CTL[@]}" fastpath on >/dev/null || fail "fastpath back on"
in_pod node1.pod1 "$BIN/sltest" xfer --to 10.96.0.20:80 --up 128M --down 128M \
	--no-half-close --timeout-s $((120 * SCALE)) >"$TMP/est" 2>&1 &
est=$!
for _ in $(seq $((100 * SCALE))); do [ "$(sockets)" -ge 2 ] && break; sleep 0.02; done
[ "$(sockets)" -ge 2 ] || fail "the established connection is not redirected"
mesh_snapshot node1 2 "$IDS" '[{"action": "DENY", "source": 256, "destination": 257, "protocol": "TCP"}]' "$SVC"
wait_applied node1 2
out=$(in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.20:80 --timeout 1000) &&
	fail "a denied pair connected: $out"
[ "$(jq -r .error <<<"$out")" = "$(denied_errno)" ] || fail "denied client saw $out, want $(denied_errno)"
wait $est || fail "the established connection broke on the policy change: $(cat "$TMP/est")"
note "policy change: new connections $(denied_errno), the established redirected one finished"
