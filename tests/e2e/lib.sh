# shellcheck shell=bash
# Shared helpers for end-to-end tests on a simulated cluster.
#
# A test sources this file, calls e2e_init, and gets its own cluster (a
# unique name), temp directory and pin roots; everything is removed on exit,
# pass or fail, and the agents' logs are printed on failure. Exit codes: 0
# pass, 77 skip (reason on the last line), anything else fail.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
BIN=$BUILD/bin
SIM=$ROOT/tests/simcluster
CL= TMP=
# Multiplies the waits below (not test logic): slow machines, e.g. the
# TCG-emulated VMs of vmtests/, set it above 1.
SCALE=${SLUICE_TIME_SCALE:-1}
declare -a E2E_PIDS=()
declare -a E2E_NODES=()
E2E_FAILED=

skip() { echo "SKIP: $*"; exit 77; }
fail() { E2E_FAILED=$*; echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

e2e_cleanup() {
	local rc=$? pid node
	set +e
	for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	for node in "${E2E_NODES[@]}"; do
		"$BIN/sluice-agent" --node "$node" --pin-root "$(pin_root "$node")" --uninstall >/dev/null 2>&1
		rm -rf "/run/sluice/$(basename "$(pin_root "$node")")"
	done
	[ -n "$CL" ] && "$SIM" down "$CL" >/dev/null 2>&1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$TMP" ]; then
		for f in "$TMP"/*.log; do
			[ -f "$f" ] || continue
			echo "---- $(basename "$f") (last 30 lines)"
			tail -n 30 "$f"
		done
		# once more below the logs, where a log's tail still shows it
		[ -n "$E2E_FAILED" ] && echo "FAIL: $E2E_FAILED" >&2
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}

# e2e_init NODES PODS_PER_NODE
e2e_init() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (BPF, cgroups, network namespaces)"
	for b in sluice-agent sluicectl sltest; do
		[ -x "$BIN/$b" ] || fail "$BIN/$b missing: run make first"
	done
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
	CL=e$(( $$ % 100000 ))$(( RANDOM % 100 ))
	TMP=$(mktemp -d "/tmp/sluice-e2e-$CL.XXXXXX")
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	"$SIM" up --name "$CL" --nodes "$1" --pods-per-node "$2" >"$TMP/simcluster.log" 2>&1 \
		|| fail "simcluster up failed: $(cat "$TMP/simcluster.log")"
}

pin_root() { echo "/sys/fs/bpf/sluice-e2e-$CL-$1"; }
node_cgroup() { "$SIM" list "$CL" --json | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .cgroup'; }
pod_ip() { "$SIM" list "$CL" --json | jq -r --arg p "$1" '.nodes[].pods[] | select(.name == $p) | .ipv4'; }
pod_ip6() { "$SIM" list "$CL" --json | jq -r --arg p "$1" '.nodes[].pods[] | select(.name == $p) | .ipv6'; }

# in_pod POD CMD... : run CMD in the pod's netns and cgroup
in_pod() { local p=$1; shift; "$SIM" exec "$CL" "$p" -- "$@"; }

# snapshot NODE < JSON : replace the node's snapshot atomically
snapshot() {
	cat >"$TMP/snap.$1.json.tmp"
	mv "$TMP/snap.$1.json.tmp" "$TMP/snap.$1.json"
}

# agent_start NODE : start the node's agent (in the node's netns, not in
# its cgroup: the agent's own sockets are not pod traffic)
agent_start() { # NODE [extra agent flags]
	local node=$1 n0
	shift
	[ -f "$TMP/snap.$node.json" ] || echo '{"services": []}' | snapshot "$node"
	[[ " ${E2E_NODES[*]} " = *" $node "* ]] || E2E_NODES+=("$node")
	n0=$(grep -c 'programs attached' "$TMP/agent.$node.log" 2>/dev/null || true)
	nsenter --net="/run/netns/slc.$CL.$node" "$BIN/sluice-agent" --node "$node" \
		--cgroup "$(node_cgroup "$node")" --snapshot "$TMP/snap.$node.json" \
		--pin-root "$(pin_root "$node")" "$@" >>"$TMP/agent.$node.log" 2>&1 &
	AGENT_PID=$!
	E2E_PIDS+=("$AGENT_PID")
	echo "$AGENT_PID" >"$TMP/agent.$node.pid"
	wait_log "$TMP/agent.$node.log" 'programs attached' $((n0 + 1))
}

# wait_log FILE PATTERN COUNT : wait (10 s x SCALE) until PATTERN has COUNT matches
wait_log() {
	local i n
	for i in $(seq $((200 * SCALE))); do
		n=$(grep -c -- "$2" "$1" 2>/dev/null || true)
		[ "${n:-0}" -ge "$3" ] && return 0
		sleep 0.05
	done
	fail "timed out waiting for '$2' (x$3) in $(basename "$1") after $((10 * SCALE)) s"
}

# wait_applied NODE VERSION
wait_applied() { wait_log "$TMP/agent.$1.log" "applied snapshot version=$2 " 1; }

# serve POD NAME [sltest serve args] : start a named backend in POD
serve() {
	local pod=$1 name=$2 i
	shift 2
	in_pod "$pod" "$BIN/sltest" serve --name "$name" --ready "$TMP/ready.$name" "$@" \
		>>"$TMP/serve.$name.log" 2>&1 &
	E2E_PIDS+=("$!")
	for i in $(seq $((100 * SCALE))); do
		[ -e "$TMP/ready.$name" ] && return 0
		sleep 0.05
	done
	fail "backend $name did not start"
}

# chi2_ok OBSERVED_JSON WEIGHTS... : chi-square goodness of fit at p > 0.001
# for backends named b1..bN with the given weights; prints the statistic.
chi2_ok() {
	local obs=$1
	shift
	jq -r --argjson w "$(printf '%s\n' "$@" | jq -s .)" '
		.backends as $b | ($w | add) as $tw | ([$b[]] | add) as $n |
		[range(0; $w | length) | ($b["b\(. + 1)"] // 0) as $o |
		 ($n * $w[.] / $tw) as $e | (($o - $e) * ($o - $e) / $e)] | add' <<<"$obs"
}

# chi-square critical values at p = 0.001 for 1..5 degrees of freedom
chi2_crit() { echo "10.828 13.816 16.266 18.467 20.515" | cut -d' ' -f"$1"; }

# mesh_snapshot NODE VERSION IDS_JSON POLICIES_JSON [SERVICES_JSON]
# A node's snapshot with every pod of the cluster as a workload: IDS_JSON
# maps pod name -> identity number (pods not in it are not in the mesh);
# the node's own pods also carry their netns and host-side veth.
mesh_snapshot() {
	"$SIM" list "$CL" --json | jq --arg node "$1" --argjson v "$2" --argjson ids "$3" \
		--argjson pol "$4" --argjson svc "${5:-[]}" '
		{version: $v, services: $svc,
		 identities: [$ids | to_entries[] | {id: .value, spiffe: "spiffe://cluster.local/ns/default/sa/\(.key | gsub("\\."; "-"))"}],
		 workloads: [.nodes[] | .name as $n | .pods[] | select($ids[.name] != null) |
			{name: .name, namespace: "default", identity: $ids[.name], ipv4: .ipv4, ipv6: .ipv6} +
			(if $n == $node then {netns: "/run/netns/\(.netns)", interface: "p\(.name | split(".pod")[1])"} else {} end)],
		 policies: $pol}' | snapshot "$1"
}

# Does connect() know the client's identity? Not before 5.14 (no
# SO_NETNS_COOKIE; the agent logs it): then tc at the destination decides.
connect_knows_client() { ! grep -q 'kernel lacks SO_NETNS_COOKIE' "$TMP"/agent.*.log 2>/dev/null; }

# what a client denied by policy sees: EACCES from connect(); EPERM where
# the kernel lacks bpf_set_retval; a timeout where connect() cannot tell the
# client (the SYN is dropped at the destination)
denied_errno() {
	if ! connect_knows_client; then echo ETIMEDOUT
	elif grep -q 'kernel lacks bpf_set_retval' "$TMP"/agent.*.log 2>/dev/null; then echo EPERM
	else echo EACCES; fi
}
