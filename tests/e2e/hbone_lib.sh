# shellcheck shell=bash
# Helpers for the HBONE tests (test_hbone_*.sh), on top of lib.sh and
# control_lib.sh: a control plane, two agents fed by it with their proxies,
# WorkloadEntries for a client on node1 and a server on node2, and
# sl_origdst filled by the test (the capture that fills it is BPF work of
# its own): every connection from the client pod's narrowed ephemeral
# port range to node1's outbound port is sent to the server.

HB_LO=40000 HB_HI=40999
HB_OUT=10.244.1.1:15001     # node1's side of the client pod's veth

# hb_setup [control flags] : cluster, control plane, config, agents
# ($HB_EXTRA_YAML, if set, is applied with the workloads)
hb_setup() {
	e2e_init 2 2
	cp_init
	cp_start "$@"
	workloads '{"node1.pod1": {"app": "client", "ipv6": true}, "node1.pod2": {"app": "intruder"},
		    "node2.pod1": {"app": "server", "ipv6": true}}' >"$TMP/wl.yaml"
	cat >>"$TMP/wl.yaml" <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: server-from-client
  namespace: default
spec:
  selector:
    matchLabels:
      app: server
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/client"]
YAML
	[ -z "${HB_EXTRA_YAML:-}" ] || printf -- '---\n%s\n' "$HB_EXTRA_YAML" >>"$TMP/wl.yaml"
	ctl apply -f "$TMP/wl.yaml" >"$TMP/apply.out" || fail "apply: $(cat "$TMP/apply.out")"
	# HB_AGENT1/HB_AGENT2: more flags for the agents (e.g. --capture-addr)
	agent_start_cp node1 --hbone-handshake-timeout 2000 --metrics-addr 127.0.0.1:9101 ${HB_AGENT1:-}
	agent_start_cp node2 --hbone-handshake-timeout 2000 --metrics-addr 127.0.0.1:9102 ${HB_AGENT2:-}
	wait_converged node1 node2
	hb_wait_cert node1 client
	hb_wait_cert node1 intruder
	hb_wait_cert node2 server
	# node1's snapshot must name node2's HBONE address
	local i
	for i in $(seq $((200 * SCALE))); do
		jq -e '.nodes[]? | select(.name == "node2")' "$TMP/agent-state.node1/snapshot.json" \
			>/dev/null 2>&1 && break
		sleep 0.05
	done
	jq -e '.nodes[] | select(.name == "node2" and .hbone == "192.168.77.2:15008")' \
		"$TMP/agent-state.node1/snapshot.json" >/dev/null || fail "node1's snapshot lacks node2's HBONE address"
	in_pod node1.pod1 sysctl -qw net.ipv4.ip_local_port_range="$HB_LO $HB_HI"
	in_pod node1.pod2 sysctl -qw net.ipv4.ip_local_port_range="$HB_LO $HB_HI"
}

# hb_capture_strict: for hb_setup, agents that capture (pods reach their
# node's outbound listener at 10.244.<node>.1 and fd00:244:<node>::1) and
# the server STRICT
hb_capture_strict() {
	HB_AGENT1="--capture-addr 10.244.1.1 --capture-addr fd00:244:1::1"
	HB_AGENT2="--capture-addr 10.244.2.1 --capture-addr fd00:244:2::1"
	HB_EXTRA_YAML='apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: server-strict
  namespace: default
spec:
  selector:
    matchLabels:
      app: server
  mtls:
    mode: STRICT'
}

run_dir() { echo "/run/sluice/$(basename "$(pin_root "$1")")"; }

# proxy_pid NODE: the pid of the node's serving proxy, if any
proxy_pid() { jq -r '[.proxies[] | select(.state == "serving")][0].pid // empty' "$(run_dir "$1")/status.json" 2>/dev/null; }
# wait_serving NODE [NOT_PID]: waits for a serving proxy other than NOT_PID;
# prints its pid
wait_serving() {
	local i p
	for i in $(seq $((200 * SCALE))); do
		p=$(proxy_pid "$1")
		if [ -n "$p" ] && [ "$p" != "${2:-}" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; return 0; fi
		sleep 0.05
	done
	fail "no new serving proxy on $1 (status: $(jq -c .proxies "$(run_dir "$1")/status.json" 2>/dev/null))"
}

# hb_wait_cert NODE SA : the node's proxy holds a certificate for SA
hb_wait_cert() {
	local i f
	f="$(run_dir "$1")/certs.json"
	for i in $(seq $((200 * SCALE))); do
		jq -e --arg sa "$2" '.[] | select((.identity | endswith("/sa/" + $sa)) and .serial != "")' \
			"$f" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "node $1 has no certificate for $2: $(cat "$f" 2>/dev/null)"
}

# ident SA : numeric identity from node1's snapshot
ident() {
	jq -r --arg sa "$1" '.identities[] | select(.spiffe | endswith("/sa/" + $sa)) | .id' \
		"$TMP/agent-state.node1/snapshot.json"
}

le16() { printf '%02x %02x' $(($1 & 255)) $(($1 >> 8)); }
le32() { printf '%02x %02x %02x %02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $(($1 >> 24)); }
v4hex() { local IFS=.; set -- $1; printf '00 00 00 00 00 00 00 00 00 00 ff ff %02x %02x %02x %02x' "$1" "$2" "$3" "$4"; }

# origdst_fill CLIENT_POD DST_IP DST_PORT SRC_SA : every port of the client
# pod's range goes to DST as SRC_SA (on node1's pinned sl_origdst)
origdst_fill() {
	local cip dst=$2 dport=$3 id p map key val
	cip=$(pod_ip "$1")
	id=$(ident "$4")
	[ -n "$id" ] || fail "no identity for $4"
	map="$(pin_root node1)/sl_origdst"
	[ -e "$map" ] || fail "$map: the agent did not create sl_origdst"
	# what does not change outside the loop: a subshell per port and field
	# cost 25 s in the emulated VMs
	key="map update pinned $map key hex $(v4hex "$cip")"
	val="value hex $(v4hex "$dst") $(le16 "$dport") 00 00 $(le32 "$id") 00 00 00 00 00 00 00 00"
	for ((p = HB_LO; p <= HB_HI; p++)); do
		printf '%s %02x %02x 00 00 %s\n' "$key" $((p & 255)) $((p >> 8)) "$val"
	done >"$TMP/origdst.batch"
	bpftool batch file "$TMP/origdst.batch" >/dev/null || fail "bpftool batch failed"
}

# metric NODE REGEX : sum of the matching lines of the agent's /metrics
metric() {
	in_node "$1" curl -s "http://127.0.0.1:9$([ "$1" = node1 ] && echo 101 || echo 102)/metrics" |
		awk -v re="$2" '$0 ~ re {s += $NF} END {print s + 0}'
}
