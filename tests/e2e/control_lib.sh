# shellcheck shell=bash
# Helpers for the control-plane end-to-end tests (test_control_*.sh), on
# top of lib.sh: sluice-control in node1's network namespace (listening on
# the node's fabric address, so every node's agent reaches it), agents that
# join it with tokens, sluicectl as the admin, and Istio YAML for the
# simulated cluster's pods.

CP_ADDR=192.168.77.1:15012
CP_URL=https://$CP_ADDR
CP_DIR=
CP_PID=

cp_init() {
	[ -x "$BIN/sluice-control" ] || fail "$BIN/sluice-control missing: run make first"
	CP_DIR=$TMP/control
	export SLUICE_CONTROL=$CP_URL SLUICE_CREDENTIALS=$CP_DIR
}

in_node() { local n=$1; shift; nsenter --net="/run/netns/slc.$CL.$n" "$@"; }

# cp_start [flags] : start (or restart) the control plane
cp_start() {
	local n0
	n0=$(grep -c 'listening on' "$TMP/control.log" 2>/dev/null || true)
	# nsenter itself, not a shell function: $! must be the process to kill
	nsenter --net="/run/netns/slc.$CL.node1" "$BIN/sluice-control" --state-dir "$CP_DIR" --listen "$CP_ADDR" "$@" \
		>>"$TMP/control.log" 2>&1 &
	CP_PID=$!
	E2E_PIDS+=("$CP_PID")
	wait_log "$TMP/control.log" 'listening on' $((n0 + 1))
}

ctl() { in_node node1 "$BIN/sluicectl" "$@"; }
token() { "$BIN/sluice-control" token create --state-dir "$CP_DIR" --node "$1" "${@:2}"; }

# agent_start_cp NODE [flags] : an agent fed by the control plane; joins
# with a fresh token the first time (no certificate in its state dir yet)
agent_start_cp() {
	local node=$1 n0 tok=()
	shift
	[[ " ${E2E_NODES[*]} " = *" $node "* ]] || E2E_NODES+=("$node")
	[ -f "$TMP/agent-state.$node/node.crt" ] || tok=(--join-token "$(token "$node")")
	n0=$(grep -c 'programs attached' "$TMP/agent.$node.log" 2>/dev/null || true)
	nsenter --net="/run/netns/slc.$CL.$node" "$BIN/sluice-agent" --node "$node" --cgroup "$(node_cgroup "$node")" \
		--pin-root "$(pin_root "$node")" --control "$CP_URL" --ca-file "$CP_DIR/ca.crt" \
		--state-dir "$TMP/agent-state.$node" "${tok[@]}" "$@" >>"$TMP/agent.$node.log" 2>&1 &
	AGENT_PID=$!
	E2E_PIDS+=("$AGENT_PID")
	echo "$AGENT_PID" >"$TMP/agent.$node.pid"
	wait_log "$TMP/agent.$node.log" 'programs attached' $((n0 + 1))
}

cp_status() { ctl status --control -o json; }

# wait_converged NODE... : each named agent is connected and has ACKed the
# snapshot the control plane holds for it (10 s x SCALE, 20 s after restarts)
wait_converged() {
	local i st="" want
	want=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	for i in $(seq $((400 * SCALE))); do
		if st=$(cp_status 2>/dev/null) && jq -e --argjson want "$want" '
			[.agents[] | select(.node as $n | $want | index($n)) | select(.connected and .in_sync)]
			| length == ($want | length)' <<<"$st" >/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	fail "agents $* did not converge: $st"
}

# workloads SPEC_JSON : a WorkloadEntry for each pod named in SPEC_JSON,
# {"node1.pod1": {"app": "client", "weight": 2, "ipv6": true}, ...}; the
# service account is the app's name; the pod's node, netns and host-side
# veth go in the sluice.io annotations, and with "ipv6" its IPv6 address.
workloads() {
	"$SIM" list "$CL" --json | jq -r --argjson spec "$1" '
		.nodes[] | .name as $n | .pods[] | select($spec[.name] != null) | $spec[.name] as $s |
		"---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n" +
		"  name: \(.name | gsub("\\."; "-"))\n  namespace: default\n  annotations:\n" +
		"    sluice.io/node: \($n)\n    sluice.io/netns: /run/netns/\(.netns)\n" +
		"    sluice.io/interface: p\(.name | split(".pod")[1])\n" +
		(if $s.ipv6 then "    sluice.io/ipv6: \(.ipv6)\n" else "" end) + "spec:\n" +
		"  address: \(.ipv4)\n  serviceAccount: \($s.app)\n" +
		(if $s.weight then "  weight: \($s.weight)\n" else "" end) +
		"  labels:\n    app: \($s.app)"'
}

# services_json NODE : the node's service map as sluicectl inspect shows it
services_json() { "$BIN/sluicectl" --pin-root "$(pin_root "$1")" -o json inspect services; }
