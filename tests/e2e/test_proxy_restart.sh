#!/usr/bin/env bash
# The mesh survives its own processes. A client pod on node1 opens
# connections in a loop to a service with a backend on each of node1 (same
# node: not captured), node2 STRICT and node2 PERMISSIVE; the kernel
# captures the cross-node ones to node1's proxy, which carries them over
# HBONE to node2's proxy. Two established cross-node connections (to the
# STRICT and the PERMISSIVE backend) exchange data every 100 ms throughout.
# Per kind of restart, a loop of its own:
#  - node1's agent killed (SIGKILL) and started again; down for 5 s;
#    stopped and started: 0 failed connections, the held connections go on,
#    and the proxy is the same process throughout;
#  - an upgrade as sluicectl install does it: a new sluice-proxy renamed
#    over the running one's binary, the agent restarted: the new agent
#    hot-restarts the proxy from the new binary, 0 failed, and held
#    connections go on through the draining predecessor;
#  - node1's and node2's proxies hot-restarted (SIGUSR2 to the agent, what
#    an upgrade does) during a transfer of 1 GiB each way checked by
#    SHA-256 and under the loop: 0 failed, the transfer intact, the old
#    proxies drain and exit, new pids serve;
#  - node1's proxy killed (SIGKILL): the agent starts another on the
#    listening sockets it holds: no connection is refused (the ones the
#    killed process carried are lost, and counted);
#  - sluicectl status shows the proxy's pid, version and tunnels; the
#    metrics count restarts and drains.
# The loops' figures (attempted, failed, longest connection) are printed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/control_lib.sh"
source "$(dirname "$0")/hbone_lib.sh"

hb_capture_strict
hb_setup
connect_knows_client || skip "capture needs SO_NETNS_COOKIE (5.14+): connect() does not know the client here"
SRV=$(pod_ip node2.pod1)
# hb_setup narrows the client's ports for sl_origdst fills this test does
# not use; the loops need many
in_pod node1.pod1 sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
serve node2.pod1 srv --tcp 8080
# the service: node1.pod2 (same node), node2.pod1 (STRICT), node2.pod2
# (PERMISSIVE: no PeerAuthentication selects it)
VIP=10.96.0.50
{
	workloads '{"node2.pod2": {"app": "web"}}'
	printf -- '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: mixed, namespace: default}\n'
	printf 'spec:\n  hosts: [mixed.default.svc.cluster.local]\n  addresses: [%s]\n  resolution: STATIC\n' "$VIP"
	printf '  ports: [{number: 80, name: tcp, protocol: TCP, targetPort: 8080}]\n  endpoints:\n'
	for p in node1.pod2 node2.pod1 node2.pod2; do printf '  - address: %s\n' "$(pod_ip $p)"; done
} >"$TMP/mixed.yaml"
ctl apply -f "$TMP/mixed.yaml" >"$TMP/apply-mixed.out" || fail "apply: $(cat "$TMP/apply-mixed.out")"
wait_converged node1 node2
hb_wait_cert node2 web
serve node1.pod2 local --tcp 8080
serve node2.pod2 permissive --tcp 8080
in_pod node2.pod1 "$BIN/sltest" xfer-serve --tcp 9000 --ready "$TMP/xfer.ready" --max-seconds 300 \
	>"$TMP/xfer-serve.log" 2>&1 &
E2E_PIDS+=("$!")
for _ in $(seq $((100 * SCALE))); do [ -e "$TMP/xfer.ready" ] && break; sleep 0.05; done
in_pod node1.pod1 "$BIN/sltest" connect --to "$SRV:8080" | grep -q '"ok":true' ||
	fail "no connection through the proxies before any restart"
out=$(in_pod node1.pod1 "$BIN/sltest" spread --to "$VIP:80" -n 30)
for b in local srv permissive; do
	jq -e --arg b "$b" '.backends[$b] > 0' <<<"$out" >/dev/null || fail "the service's backend $b got no connection: $out"
done

wait_linked() { # NODE: its current agent sees a serving proxy linked
	local i a
	a=$(cat "$TMP/agent.$1.pid")
	for i in $(seq $((200 * SCALE))); do
		jq -e --argjson a "$a" '.pid == $a and ([.proxies[]? | select(.state == "serving" and .linked)] | length > 0)' \
			"$(run_dir "$1")/status.json" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "$1's agent $a does not see a serving proxy linked: $(jq -c .proxies "$(run_dir "$1")/status.json" 2>/dev/null)"
}
gone() { # PID: exited (or a zombie init has not reaped yet)
	[ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}
loop_start() {
	rm -f "$TMP/stop"
	in_pod node1.pod1 "$BIN/sltest" loop --to "$VIP:80" --until "$TMP/stop" --max-seconds 120 \
		--timeout 5000 >"$TMP/loop.$1.out" 2>&1 &
	LOOP=$!
	E2E_PIDS+=("$LOOP")
	sleep 1
}
# loop_end NAME MAX_FAILED : the loop's figures; at most MAX_FAILED failed
loop_end() {
	local out rc=0
	sleep 1
	touch "$TMP/stop"
	wait "$LOOP" || rc=$?
	out=$(tail -n 1 "$TMP/loop.$1.out")
	note "$1: $(jq -c '{ok, failed, max_ms, errors, backends}' <<<"$out" 2>/dev/null || echo "$out")"
	[ "$(jq .ok <<<"$out")" -gt 20 ] || fail "$1: too few connections: $out"
	[ "$(jq .failed <<<"$out")" -le "$2" ] || fail "$1: $(jq .failed <<<"$out") connections failed: $out"
	[ "$(jq '.errors.ECONNREFUSED // 0' <<<"$out")" -eq 0 ] || fail "$1: connections refused: $out"
}

# node1's proxy runs from a copy of its binary that the upgrade replaces
mkdir -p "$TMP/bin"
cp "$BIN/sluice-proxy" "$TMP/bin/sluice-proxy"
A1=(--hbone-handshake-timeout 2000 --metrics-addr 127.0.0.1:9101 $HB_AGENT1 --proxy-bin "$TMP/bin/sluice-proxy")
restart_agent1() { # SIGNAL [SECONDS down]
	kill "-$1" "$(cat "$TMP/agent.node1.pid")"
	wait "$(cat "$TMP/agent.node1.pid")" 2>/dev/null || true
	[ -z "${2:-}" ] || sleep "$2"
	agent_start_cp node1 "${A1[@]}"
}
P0=$(wait_serving node1)
restart_agent1 TERM
wait_linked node1
kill -USR2 "$(cat "$TMP/agent.node1.pid")"
P1=$(wait_serving node1 "$P0")
[ "$(readlink "/proc/$P1/exe")" = "$TMP/bin/sluice-proxy" ] || fail "node1's proxy does not run $TMP/bin/sluice-proxy"
P2=$(wait_serving node2)
note "proxies: node1 pid $P1, node2 pid $P2"
in_node node1 "$BIN/sluicectl" --pin-root "$(pin_root node1)" status >"$TMP/status.out" 2>&1 ||
	fail "sluicectl status: $(cat "$TMP/status.out")"
grep -q "pid $P1, version .*, serving, up" "$TMP/status.out" || fail "status lacks the proxy: $(cat "$TMP/status.out")"
grep -q "^agent pid [0-9]*, version" "$TMP/status.out" || fail "status lacks the agent: $(cat "$TMP/status.out")"

# hold_start NAME: a connection to the STRICT and one to the PERMISSIVE
# backend on node2, an exchange each 100 ms; hold_end NAME checks both went
# on without a failure
hold_start() {
	rm -f "$TMP/hold.stop"
	HOLDS=()
	for b in "$SRV" "$(pod_ip node2.pod2)"; do
		in_pod node1.pod1 "$BIN/sltest" hold --to "$b:8080" --until "$TMP/hold.stop" --interval-ms 100 \
			--max-seconds 300 >"$TMP/hold.$1.$b.out" 2>&1 &
		HOLDS+=("$!")
		E2E_PIDS+=("$!")
	done
}
hold_end() {
	local h b out
	touch "$TMP/hold.stop"
	for h in "${HOLDS[@]}"; do wait "$h" || true; done
	for b in "$SRV" "$(pod_ip node2.pod2)"; do
		out=$(tail -n 1 "$TMP/hold.$1.$b.out")
		note "held connection to $b ($1): $out"
		jq -e '.failed == 0 and .exchanges > 0' <<<"$out" >/dev/null || fail "the held connection to $b broke ($1): $out"
	done
}

# -- the agent: SIGKILL and restart; down for 5 s; stop and start
hold_start agent
loop_start agent-kill
restart_agent1 KILL
loop_end agent-kill 0
loop_start agent-down-5s
restart_agent1 KILL 5
loop_end agent-down-5s 0
loop_start agent-restart
restart_agent1 TERM
wait_converged node1
loop_end agent-restart 0
[ "$(wait_serving node1)" = "$P1" ] || fail "the proxy changed across agent restarts"
kill -0 "$P1" || fail "node1's proxy died with the agent"
wait_log "$TMP/agent.node1.log" "proxy pid $P1 linked" 3
hold_end agent

# -- an upgrade: a new binary renamed over the running proxy's, the agent
# restarted; the held connections go on through the draining predecessor
hold_start upgrade
loop_start upgrade
cp "$BIN/sluice-proxy" "$TMP/bin/.sluice-proxy.new"
mv "$TMP/bin/.sluice-proxy.new" "$TMP/bin/sluice-proxy"
restart_agent1 TERM
P1U=$(wait_serving node1 "$P1")
loop_end upgrade 0
hold_end upgrade
grep -q "hot restart of pid $P1: the proxy's binary was replaced" "$TMP/agent.node1.log" ||
	fail "the upgrade did not hot-restart the proxy: $(grep 'proxy' "$TMP/agent.node1.log" | tail -5)"
note "upgrade: node1's proxy $P1 -> $P1U"
P1=$P1U

# -- hot restart of both proxies during a transfer and under the loop
XFER=$((1024 * 1024 * 1024))
[ "$SCALE" -gt 1 ] && XFER=$((32 * 1024 * 1024))
in_pod node1.pod1 "$BIN/sltest" xfer --to "$SRV:9000" --up "$XFER" --down "$XFER" --timeout-s 240 \
	>"$TMP/xfer.out" 2>&1 &
xfer=$!
E2E_PIDS+=("$xfer")
loop_start hot-restart
wait_linked node1
wait_linked node2
kill -USR2 "$(cat "$TMP/agent.node1.pid")"
N1=$(wait_serving node1 "$P1")
kill -USR2 "$(cat "$TMP/agent.node2.pid")"
N2=$(wait_serving node2 "$P2")
note "hot restart: node1 $P1 -> $N1, node2 $P2 -> $N2"
loop_end hot-restart 0
wait "$xfer" || fail "the transfer across the hot restart failed: $(cat "$TMP/xfer.out")"
note "transfer across the hot restart: $(tail -n 1 "$TMP/xfer.out")"
for i in $(seq $((400 * SCALE))); do gone "$P1" && gone "$P2" && break; sleep 0.05; done
gone "$P1" || fail "node1's old proxy $P1 did not drain and exit"
gone "$P2" || fail "node2's old proxy $P2 did not drain and exit"
grep -q "sluice-proxy: proxy: drained: no tunnel open; exiting" "$TMP/agent.node1.log" ||
	fail "node1's old proxy did not say it drained"

# -- a crash: SIGKILL of node1's proxy under the loop
loop_start proxy-kill
kill -KILL "$N1"
C1=$(wait_serving node1 "$N1")
note "proxy crash: node1 $N1 -> $C1"
loop_end proxy-kill 3
in_pod node1.pod1 "$BIN/sltest" connect --to "$SRV:8080" | grep -q '"ok":true' ||
	fail "no connection through the restarted proxy"

# -- what the agent counts
m=$(metric node1 '^sluice_proxy_restarts_total\{reason="upgrade"\}')
[ "$m" -ge 1 ] || fail "sluice_proxy_restarts_total{reason=upgrade} is $m"
m=$(metric node1 '^sluice_proxy_restarts_total\{reason="crash"\}')
[ "$m" -ge 1 ] || fail "sluice_proxy_restarts_total{reason=crash} is $m"
m=$(metric node1 '^sluice_proxy_drains_total')
[ "$m" -ge 1 ] || fail "sluice_proxy_drains_total is $m"
note "ok"
