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
# every node's, for the cleanup (cni_node adds to them)
declare -a CNI_NETS=() CNI_PINS=() CNI_CGPS=() CNI_NODES=()

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
		for c in "${CNI_NETS[@]}"; do
			podman network rm -f "$c" >/dev/null 2>&1
			rm -rf "/var/lib/cni/networks/$c"   # host-local's reservations
		done
		podman rmi -f "$IMG" >/dev/null 2>&1
		for i in "${!CNI_NODES[@]}"; do
			"$BIN/sluice-agent" --node "${CNI_NODES[$i]}" --pin-root "${CNI_PINS[$i]}" --uninstall >/dev/null 2>&1
			rm -rf "/run/sluice/$(basename "${CNI_PINS[$i]}")"
		done
		for c in "${CNI_CGPS[@]}"; do
			for d in /sys/fs/cgroup/*"$c" "$CG2$c"; do
				[ -d "$d" ] || continue
				find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
				rmdir "$d" 2>/dev/null
			done
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
	CNI_NODES+=("$T") CNI_PINS+=("$PIN") CNI_CGPS+=("$CGP")
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
	cni_network "$NET" "$SUBNET" "$SOCK"
}

# cni_network NAME SUBNET SOCKET : a podman network chaining sluice-cni
# after the bridge and the rest of podman's list, with that agent socket
cni_network() {
	CNI_NETS+=("$1")
	podman network create --subnet "$2" "$1" >>"$TMP/podman.log" 2>&1 \
		|| fail "podman network create: $(tail -3 "$TMP/podman.log")"
	jq --arg s "$3" '.plugins += [{"type": "sluice-cni", "agentSocket": $s}]' \
		"$CNI_CONF_DIR/$1.conflist" >"$TMP/conflist" && mv "$TMP/conflist" "$CNI_CONF_DIR/$1.conflist"
}

cp_start_local() {
	"$BIN/sluice-control" --state-dir "$TMP/control" --listen "127.0.0.1:$CP_PORT" >>"$TMP/control.log" 2>&1 &
	E2E_PIDS+=("$!")
	wait_log "$TMP/control.log" 'listening on' 1
	export SLUICE_CONTROL=https://127.0.0.1:$CP_PORT SLUICE_CREDENTIALS=$TMP/control
}

# cni_agent_start [flags] : (re)start the test's agent (node $T, proxy off)
cni_agent_start() { cni_agent "$T" "$CGP" "$PIN" "$SOCK" agent --proxy off "$@"; }

# cni_agent NODE CGROUP_PARENT PIN_ROOT SOCKET NAME [flags] : (re)start an
# agent whose log is $TMP/NAME.log and state dir $TMP/NAME-state; joins
# with a token the first time
cni_agent() {
	local node=$1 cgp=$2 pin=$3 sock=$4 name=$5 tok=() n0
	shift 5
	[ -f "$TMP/$name-state/node.crt" ] || tok=(--join-token "$("$BIN/sluice-control" token create --state-dir "$TMP/control" --node "$node")")
	n0=$(grep -c 'cni: listening' "$TMP/$name.log" 2>/dev/null || true)
	"$BIN/sluice-agent" --node "$node" --cgroup "$CG2$cgp" --pin-root "$pin" --control "https://127.0.0.1:$CP_PORT" \
		--ca-file "$TMP/control/ca.crt" --state-dir "$TMP/$name-state" --cni-socket "$sock" \
		"${tok[@]}" "$@" >>"$TMP/$name.log" 2>&1 &
	AGENT_PID=$!
	E2E_PIDS+=("$AGENT_PID")
	wait_log "$TMP/$name.log" 'cni: listening' $((n0 + 1))
}

# run_ctr NAME SA [LABEL=VALUE...] : a container on the test's network
# running a busybox nc server that answers its name on 8080 (CTR_NET and
# CTR_CGP, if set, name another network and cgroup parent)
run_ctr() {
	local name=$1 sa=$2 l=()
	shift 2
	for x in "$@"; do l+=(--label "$x"); done
	podman run -d --name "$T-$name" --network "${CTR_NET:-$NET}" --cgroup-parent "${CTR_CGP:-$CGP}" \
		--label "sluice.io/service-account=$sa" "${l[@]}" "$IMG" \
		/busybox nc -ll -p 8080 -e /busybox echo "$name"
}

ctr_exec() { local c=$1; shift; podman exec "$T-$c" "$@"; }
ctr_ip() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$T-$1"; }
