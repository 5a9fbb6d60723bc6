# shellcheck shell=bash
# Helpers for the CNI tests (test_cni*.sh), on top of lib.sh: real podman
# containers (CNI backend, runc) on a network of their own whose conflist
# chains sluice-cni, a control plane and an agent in the host's namespace
# on loopback ports of their own. Everything is named after the test's id
# and removed on exit, pass or fail: containers, the network and its
# conflist, the image, the cgroup parent, the pin root.
#
# The containers' cgroup parent is /sluice-$T (podman --cgroup-parent), and
# the agent's --cgroup is that directory in the cgroup2 hierarchy: the
# socket programs attached there see every container of the test, and no
# other.

T= NET= SUBNET= CGP= CG2= CNI_CONF_DIR= IMG= CP_PORT= PIN= RUN= SOCK=
declare -a CNI_CTRS=()

cni_skip_checks() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (podman, BPF, cgroups)"
	command -v podman >/dev/null || skip "podman is not installed (scripts/install-deps.sh)"
	command -v runc >/dev/null || skip "runc is not installed (scripts/install-deps.sh)"
	[ -x /usr/lib/cni/bridge ] || skip "the CNI plugins are not installed (containernetworking-plugins)"
	file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || skip "busybox-static is not installed"
	CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$CG2" ] || skip "no cgroup2 mount"
	for b in sluice-agent sluice-control sluicectl sluice-cni; do
		[ -x "$BIN/$b" ] || fail "$BIN/$b missing: run make first"
	done
}

cni_cleanup() {
	local rc=$? pid c d
	set +e
	for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	if [ -n "$T" ]; then
		podman ps -a --format '{{.Names}}' 2>/dev/null | grep "^$T-" | xargs -r podman rm -f -t 0 >/dev/null 2>&1
		podman network rm -f "$NET" >/dev/null 2>&1
		podman rmi -f "$IMG" >/dev/null 2>&1
		"$BIN/sluice-agent" --node "$T" --pin-root "$PIN" --uninstall >/dev/null 2>&1
		rm -rf "$RUN"
		for d in /sys/fs/cgroup/*/"sluice-$T" "$CG2/sluice-$T"; do
			[ -d "$d" ] || continue
			find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
			rmdir "$d" 2>/dev/null
		done
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$TMP" ]; then
		for c in "$TMP"/*.log; do
			[ -f "$c" ] || continue
			echo "---- $(basename "$c") (last 30 lines)"
			tail -n 30 "$c"
		done
		[ -n "$E2E_FAILED" ] && echo "FAIL: $E2E_FAILED" >&2
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}

# cni_init : ids, podman's config, the image, the network
cni_init() {
	cni_skip_checks
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
	T=slcni$(( $$ % 100000 ))$(( RANDOM % 100 ))
	TMP=$(mktemp -d "/tmp/sluice-e2e-$T.XXXXXX")
	trap cni_cleanup EXIT
	trap 'exit 130' INT TERM
	NET=$T SUBNET=10.$(( 160 + $$ % 30 )).$(( RANDOM % 250 + 1 )).0/24
	CGP=/sluice-$T IMG=localhost/$T:1 PIN=/sys/fs/bpf/sluice-e2e-$T RUN=/run/sluice/sluice-e2e-$T
	SOCK=$RUN/cni.sock CNI_CONF_DIR=$TMP/net
	CP_PORT=$(( 20000 + ($$ * 7 + RANDOM) % 20000 ))
	mkdir -p "$CNI_CONF_DIR" "$TMP/plugins" "$TMP/rootfs/bin" "$TMP/rootfs/tmp" "$CG2$CGP"
	ln -s "$BIN/sluice-cni" "$TMP/plugins/sluice-cni"
	# this sandbox refuses setrlimit above the current limits: the
	# containers get limits below them
	cat >"$TMP/containers.conf" <<-EOF
	[containers]
	default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
	[network]
	network_backend = "cni"
	network_config_dir = "$CNI_CONF_DIR"
	cni_plugin_dirs = ["$TMP/plugins", "/usr/lib/cni"]
	[engine]
	runtime = "runc"
	cgroup_manager = "cgroupfs"
	events_logger = "file"
	EOF
	export CONTAINERS_CONF=$TMP/containers.conf
	cp /bin/busybox "$TMP/rootfs/busybox"
	ln -s /busybox "$TMP/rootfs/bin/sh"
	tar -C "$TMP/rootfs" -cf "$TMP/rootfs.tar" .
	podman import "$TMP/rootfs.tar" "$IMG" >"$TMP/podman.log" 2>&1 || fail "podman import: $(cat "$TMP/podman.log")"
	podman network create --subnet "$SUBNET" "$NET" >>"$TMP/podman.log" 2>&1 \
		|| fail "podman network create: $(tail -3 "$TMP/podman.log")"
	# chain sluice-cni after the bridge and the rest of podman's list
	jq --arg s "$SOCK" '.plugins += [{"type": "sluice-cni", "agentSocket": $s}]' \
		"$CNI_CONF_DIR/$NET.conflist" >"$TMP/conflist" && mv "$TMP/conflist" "$CNI_CONF_DIR/$NET.conflist"
}

cp_start_local() {
	"$BIN/sluice-control" --state-dir "$TMP/control" --listen "127.0.0.1:$CP_PORT" >>"$TMP/control.log" 2>&1 &
	E2E_PIDS+=("$!")
	wait_log "$TMP/control.log" 'listening on' 1
	export SLUICE_CONTROL=https://127.0.0.1:$CP_PORT SLUICE_CREDENTIALS=$TMP/control
}

# cni_agent_start : (re)start the agent; joins with a token the first time
cni_agent_start() {
	local tok=() n0
	[ -f "$TMP/agent-state/node.crt" ] || tok=(--join-token "$("$BIN/sluice-control" token create --state-dir "$TMP/control" --node "$T")")
	n0=$(grep -c 'cni: listening' "$TMP/agent.log" 2>/dev/null || true)
	"$BIN/sluice-agent" --node "$T" --cgroup "$CG2$CGP" --pin-root "$PIN" --control "https://127.0.0.1:$CP_PORT" \
		--ca-file "$TMP/control/ca.crt" --state-dir "$TMP/agent-state" --proxy off --cni-socket "$SOCK" \
		"${tok[@]}" >>"$TMP/agent.log" 2>&1 &
	AGENT_PID=$!
	E2E_PIDS+=("$AGENT_PID")
	wait_log "$TMP/agent.log" 'cni: listening' $((n0 + 1))
}

# run_ctr NAME SA [LABEL=VALUE...] : a container on the test's network
# running a busybox nc server that answers its name on 8080
run_ctr() {
	local name=$1 sa=$2 l=()
	shift 2
	for x in "$@"; do l+=(--label "$x"); done
	podman run -d --name "$T-$name" --network "$NET" --cgroup-parent "$CGP" \
		--label "sluice.io/service-account=$sa" "${l[@]}" "$IMG" \
		/busybox nc -ll -p 8080 -e /busybox echo "$name"
}

ctr_exec() { local c=$1; shift; podman exec "$T-$c" "$@"; }
ctr_ip() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$T-$1"; }
