#!/bin/bash
# L4 authorization matrix on a 2-node cluster: same-node and cross-node
# pairs, TCP and UDP, IPv4 and IPv6; default-allow and default-deny
# workloads; DENY overriding ALLOW. Known destinations are refused at
# connect() (EACCES); a source the socket hooks never saw (a process in a
# pod's netns but outside its cgroup) is dropped by tc at the destination's
# veth (the client times out), and counted. A pod forging its source
# address is dropped and counted.
. "$(dirname "$0")/lib.sh"
e2e_init 2 3

IDS='{"node1.pod1": 256, "node1.pod2": 257, "node1.pod3": 258, "node2.pod1": 259, "node2.pod2": 260, "node2.pod3": 261}'
# a=node1.pod1 open=node1.pod2 locked=node1.pod3 b=node2.pod1 guarded=node2.pod2 c=node2.pod3
POL='[
 {"action": "ALLOW", "source": 256, "destination": 258, "protocol": "TCP", "port": 8080},
 {"action": "ALLOW", "source": 256, "destination": 258, "protocol": "UDP", "port": 5353},
 {"action": "ALLOW", "source": "*", "destination": 260, "protocol": "TCP", "port": 8080},
 {"action": "DENY", "source": 259, "destination": 260, "protocol": "TCP"}]'
for n in node1 node2; do mesh_snapshot $n 1 "$IDS" "$POL"; agent_start $n; wait_applied $n 1; done

serve node1.pod2 open --tcp 8080 --udp 5353
serve node1.pod3 locked --tcp 8080 --udp 5353
serve node1.pod3 locked9090 --tcp 9090
serve node2.pod2 guarded --tcp 8080 --udp 5353
DENIED=$(denied_errno)

pass=0
expect() { # want(ok|ERRNO) pod-or-"raw:POD" target [--udp]
	local want=$1 who=$2 to=$3 out got
	shift 3
	if [[ $who = raw:* ]]; then # netns only: invisible to the socket hooks
		out=$(nsenter --net="/run/netns/slc.$CL.${who#raw:}" "$BIN/sltest" connect --timeout 700 --to "$to" "$@") || true
	else
		out=$(in_pod "$who" "$BIN/sltest" connect --timeout 700 --to "$to" "$@") || true
	fi
	if [ "$(jq -r .ok <<<"$out")" = true ]; then got=ok; else got=$(jq -r .error <<<"$out"); fi
	[ "$got" = "$want" ] || fail "$who -> $to $*: want $want, got $got ($out)"
	pass=$((pass + 1))
	note "$who -> $to $*: $got"
}
v4() { pod_ip "$1"; }
v6() { echo "[$(pod_ip6 "$1")]"; }

# default allow, same node
expect ok node1.pod1 "$(v4 node1.pod2):8080"
expect ok node1.pod1 "$(v6 node1.pod2):8080"
expect ok node1.pod1 "$(v4 node1.pod2):5353" --udp
# default deny with an ALLOW for a, same node
expect ok node1.pod1 "$(v4 node1.pod3):8080"
expect ok node1.pod1 "$(v6 node1.pod3):8080"
expect ok node1.pod1 "$(v4 node1.pod3):5353" --udp
expect ok node1.pod1 "$(v6 node1.pod3):5353" --udp
expect "$DENIED" node1.pod1 "$(v4 node1.pod3):9090"
expect "$DENIED" node1.pod2 "$(v4 node1.pod3):8080"
# cross node, refused by the client's node at connect()
expect "$DENIED" node2.pod1 "$(v4 node1.pod3):8080"
expect "$DENIED" node2.pod1 "$(v6 node1.pod3):8080"
expect "$DENIED" node2.pod1 "$(v4 node1.pod3):5353" --udp
expect ok node2.pod1 "$(v4 node1.pod2):8080"
# DENY overrides ALLOW "*": b is denied, c and a are allowed on 8080 only
expect "$DENIED" node2.pod1 "$(v4 node2.pod2):8080"
expect ok node2.pod3 "$(v4 node2.pod2):8080"
expect ok node1.pod1 "$(v4 node2.pod2):8080"
expect ok node1.pod1 "$(v6 node2.pod2):8080"
expect "$DENIED" node2.pod3 "$(v4 node2.pod2):5353" --udp

# sources the socket hooks never saw: tc at the destination decides
d0=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect policy | jq .drops.policy_ingress)
expect ok raw:node2.pod1 "$(v4 node1.pod2):8080"
expect ETIMEDOUT raw:node2.pod1 "$(v4 node1.pod3):8080"
expect ETIMEDOUT raw:node2.pod1 "$(v6 node1.pod3):8080"
expect ETIMEDOUT raw:node2.pod1 "$(v4 node1.pod3):5353" --udp
expect ok raw:node1.pod1 "$(v4 node1.pod3):8080"
d1=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect policy | jq .drops.policy_ingress)
[ "$((d1 - d0))" -ge 3 ] || fail "tc ingress drops counted $((d1 - d0)), want >= 3"
note "tc ingress drops: $((d1 - d0))"

# a pod forging its source address
s0=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect policy | jq .drops.spoof)
ns=/run/netns/slc.$CL.node1.pod1
nsenter --net=$ns ip addr add 10.244.1.250/32 dev eth0
nsenter --net=$ns ip route replace default via 10.244.1.1 dev eth0 onlink src 10.244.1.250
expect ETIMEDOUT node1.pod1 "$(v4 node1.pod2):8080"
nsenter --net=$ns ip route replace default via 10.244.1.1 dev eth0 onlink
expect ok node1.pod1 "$(v4 node1.pod2):8080"
s1=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect policy | jq .drops.spoof)
[ "$((s1 - s0))" -ge 1 ] || fail "spoofed packets not counted ($s0 -> $s1)"
note "spoof drops: $((s1 - s0))"

"$BIN/sluicectl" --pin-root "$(pin_root node1)" inspect policy
# sluicectl status says what the agent's probes turned off on this kernel
st=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" status) || fail "sluicectl status"
note "status: $(tr '\n' ' ' <<<"$st")"
if connect_knows_client; then
	! grep -q 'SO_NETNS_COOKIE' <<<"$st" || fail "status lists SO_NETNS_COOKIE as missing: $st"
else
	grep -q 'policy decisions at connect(): kernel lacks SO_NETNS_COOKIE' <<<"$st" || fail "status: $st"
fi
[ "$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json status | jq .snapshot.version)" = 1 ] ||
	fail "status: wrong snapshot version"

# the agent's default flow log, read by observe with no --flow-log
out=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json observe --since-start \
	--verdict denied --type deny --timeout 2) || fail "observe (default flow log): $out"
[ "$(jq -s '[.[] | select(.reason == "spoof")] | length' <<<"$out")" -ge 1 ] || fail "no spoof event: $out"

# The tc programs move between tcx and cls_bpf when the agent restarts in
# the other mode, and the destination's tc decides all along: a denied
# SYN from outside the socket hooks (raw:) stays dropped.
tc_on_p3() { # "TCX CLS": our programs on node1.pod3's veth, by tcx and by cls_bpf
	local ns=/run/netns/slc.$CL.node1 t c
	t=$(nsenter --net=$ns "$ROOT/tests/e2e/tcx.py" count p3)
	c=$( (nsenter --net=$ns tc filter show dev p3 ingress; nsenter --net=$ns tc filter show dev p3 egress) |
		grep -c 'sl_from_pod\|sl_to_pod' || true)
	echo "$t $c"
}
stop_node1() { local p; p=$(cat "$TMP/agent.node1.pid"); kill "$p"; wait "$p" || true; }
tc_wait() { # WANT ("TCX CLS")
	local i
	for i in $(seq $((100 * SCALE))); do [ "$(tc_on_p3)" = "$1" ] && return 0; sleep 0.1; done
	fail "tc on p3: want '$1' (tcx, cls_bpf), have '$(tc_on_p3)'"
}
if ! command -v python3 >/dev/null || ! command -v tc >/dev/null; then
	note "tc attach modes not checked: python3 or tc missing here"
else
	if grep -q 'tc programs by tcx' "$TMP/agent.node1.log"; then
		tc_wait "2 0"
		stop_node1
		agent_start node1 --tc-attach cls
		tc_wait "0 2"
		expect ETIMEDOUT raw:node2.pod1 "$(v4 node1.pod3):8080"
		expect ok raw:node1.pod1 "$(v4 node1.pod3):8080"
		stop_node1
		agent_start node1
		tc_wait "2 0"
		expect ETIMEDOUT raw:node2.pod1 "$(v4 node1.pod3):8080"
		note "tc: tcx -> cls_bpf -> tcx across agent restarts"
	else
		tc_wait "0 2"
		note "tc: cls_bpf (the kernel has no tcx)"
	fi
	# uninstall, in the node's netns where its veths are, takes them off
	stop_node1
	nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sluice-agent" --node node1 \
		--pin-root "$(pin_root node1)" --uninstall
	tc_wait "0 0"
fi
note "$pass cases"
