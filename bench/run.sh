#!/bin/bash
# Side-by-side benchmark of service load balancing, one run, medians of
# repeated rounds, reported as ratios to the direct path.
#
#   bench/run.sh BUILD_DIR        (make bench)
#   BENCH_SECONDS=3 BENCH_ROUNDS=5 to change the run length
#
# Variants, all from a client pod to a server pod on the same node:
#   direct          the server's pod IP, no sluice programs attached
#   sluice-1        a sluice VIP, 1 service loaded
#   sluice-10k      a sluice VIP, 10,000 services loaded (target in the middle)
#   iptables-1      a kube-proxy-style DNAT VIP (KUBE-SERVICES -> KUBE-SVC ->
#                   KUBE-SEP, iptables-nft), 1 service
#   iptables-10k    the same with 10,000 services (target in the middle of
#                   KUBE-SERVICES, as an average service would be)
# Metrics: new TCP connections per second, each a 64-byte request/response
# (sltest crr, 1 client thread), and sockperf TCP ping-pong p50 round trip
# with 64-byte messages (client pinned to CPU 0, server to CPU 1).
#
# The iptables variants run in a second simulated cluster so that conntrack,
# which the nat table switches on in the node's netns, never touches the
# direct and sluice runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
BIN=$BUILD/bin
SIM=$ROOT/tests/simcluster
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-5}
NSVC=10000
OUT=$BUILD/bench
mkdir -p "$OUT"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf

A=ba$(( $$ % 100000 ))
B=bb$(( $$ % 100000 ))
TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
PIDS=()
cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	"$BIN/sluice-agent" --node node1 --pin-root "/sys/fs/bpf/sluice-$A" --uninstall >/dev/null 2>&1
	"$SIM" down "$A" >/dev/null 2>&1
	"$SIM" down "$B" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pod_ip() { "$SIM" list "$1" --json | jq -r --arg p "$2" '.nodes[].pods[] | select(.name == $p) | .ipv4'; }

setup_cluster() {
	local c=$1
	"$SIM" up --name "$c" --nodes 1 --pods-per-node 2 >/dev/null
	# ~20k connections/s for seconds: reuse TIME_WAIT ports on the client
	nsenter --net="/run/netns/slc.$c.node1.pod1" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65000"
	"$SIM" exec "$c" node1.pod2 -- taskset -c 1 "$BIN/sltest" serve --name srv --tcp 8080 \
		--ready "$TMP/ready.$c" >/dev/null 2>&1 &
	PIDS+=("$!")
	"$SIM" exec "$c" node1.pod2 -- taskset -c 1 sockperf sr --tcp -p 11111 >/dev/null 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 100); do [ -e "$TMP/ready.$c" ] && break; sleep 0.05; done
}

echo "bench: setting up clusters $A (direct, sluice) and $B (iptables)"
setup_cluster "$A"
setup_cluster "$B"
SA=$(pod_ip "$A" node1.pod2)
SB=$(pod_ip "$B" node1.pod2)
TARGET=$((NSVC / 2))
vip() { echo "10.96.$(( $1 / 256 )).$(( $1 % 256 ))"; }
TVIP=$(vip $TARGET)

# sluice snapshots: the target alone, and the target among 10,000
{
	printf '{"version": 1, "services": [{"name": "bench/target", "vip": "%s", "port": 80, "backends": [{"address": "%s", "port": 8080}]}' "$TVIP" "$SA"
	printf ', {"name": "bench/pp", "vip": "%s", "port": 11111, "backends": [{"address": "%s", "port": 11111}]}]}\n' "$TVIP" "$SA"
} >"$TMP/snap1.json"
{
	printf '{"version": 2, "services": ['
	for i in $(seq 0 $((NSVC - 1))); do
		[ "$i" -gt 0 ] && printf ', '
		printf '{"name": "bench/s%d", "vip": "%s", "port": 80, "backends": [{"address": "%s", "port": 8080}]}' \
			"$i" "$(vip "$i")" "$SA"
	done
	printf ', {"name": "bench/pp", "vip": "%s", "port": 11111, "backends": [{"address": "%s", "port": 11111}]}]}\n' "$TVIP" "$SA"
} >"$TMP/snap10k.json"

# kube-proxy-style rules, generated as kube-proxy would for 1 endpoint each
iptables_rules() { # count
	local n=$1 i v
	echo '*nat'
	echo ':KUBE-SERVICES - [0:0]'
	echo ':KUBE-MARK-MASQ - [0:0]'
	for i in $(seq 0 $((n - 1))); do printf ':KUBE-SVC-%016X - [0:0]\n:KUBE-SEP-%016X - [0:0]\n' "$i" "$i"; done
	echo '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
	echo '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000'
	for i in $(seq 0 $((n - 1))); do
		if [ "$n" -eq 1 ]; then v=$TVIP; else v=$(vip "$i"); fi
		printf -- '-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment "bench/s%d cluster IP" -m tcp --dport 80 -j KUBE-SVC-%016X\n' "$v" "$i" "$i"
		printf -- '-A KUBE-SVC-%016X -m comment --comment "bench/s%d -> %s:8080" -j KUBE-SEP-%016X\n' "$i" "$i" "$SB" "$i"
		printf -- '-A KUBE-SEP-%016X -s %s/32 -j KUBE-MARK-MASQ\n' "$i" "$SB"
		printf -- '-A KUBE-SEP-%016X -p tcp -m tcp -j DNAT --to-destination %s:8080\n' "$i" "$SB"
	done
	# the ping-pong service (moved to the middle of the chain below)
	printf -- '-A KUBE-SERVICES -d %s/32 -p tcp -m tcp --dport 11111 -j DNAT --to-destination %s:11111\n' "$TVIP" "$SB"
	echo 'COMMIT'
}
iptables_rules 1 >"$TMP/ipt1.rules"
iptables_rules $NSVC >"$TMP/ipt10k.rules"
# the ping-pong rule goes in the middle too, like the target service
python3 - "$TMP/ipt10k.rules" "$TARGET" <<'PY'
import sys
p, t = sys.argv[1], int(sys.argv[2])
lines = open(p).read().split('\n')
pp = [l for l in lines if '--dport 11111' in l][0]
lines.remove(pp)
svc = [i for i, l in enumerate(lines) if l.startswith('-A KUBE-SERVICES -d')]
lines.insert(svc[t], pp)
open(p, 'w').write('\n'.join(lines))
PY

agent_apply() { # snapshot-file version
	cp "$1" "$TMP/snap.json.tmp" && mv "$TMP/snap.json.tmp" "$TMP/snap.json"
	for _ in $(seq 600); do
		grep -q "applied snapshot version=$2 " "$TMP/agent.log" && return 0
		sleep 0.05
	done
	echo "bench: agent did not apply version $2" >&2; tail "$TMP/agent.log" >&2; exit 1
}
ipt_load() { # cluster rules-file
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -F
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -X
	nsenter --net="/run/netns/slc.$1.node1" iptables-restore --noflush <"$2"
}

crr() { # cluster dst
	"$SIM" exec "$1" node1.pod1 -- taskset -c 0 "$BIN/sltest" crr --to "$2:80" --duration "$SECS" | jq -r .rate
}
rtt() { # cluster dst: p50 in microseconds
	"$SIM" exec "$1" node1.pod1 -- taskset -c 0 sockperf pp --tcp -i "$2" -p 11111 -m 64 -t "$SECS" 2>&1 |
		awk '/percentile 50.000 =/ { print $NF }'
}

VARIANTS="direct sluice-1 sluice-10k iptables-1 iptables-10k"
declare -A CONN RTT
run_variant() { # name
	case $1 in
	direct)       CONN[$1]+=" $(crr "$A" "$SA")"; RTT[$1]+=" $(rtt "$A" "$SA")" ;;
	sluice-*)     CONN[$1]+=" $(crr "$A" "$TVIP")"; RTT[$1]+=" $(rtt "$A" "$TVIP")" ;;
	iptables-*)   CONN[$1]+=" $(crr "$B" "$TVIP")"; RTT[$1]+=" $(rtt "$B" "$TVIP")" ;;
	esac
}

# the sluice agent on cluster A's node; direct runs with nothing attached
start_agent() {
	nsenter --net="/run/netns/slc.$A.node1" "$BIN/sluice-agent" --node node1 \
		--cgroup "$("$SIM" list "$A" --json | jq -r '.nodes[0].cgroup')" \
		--snapshot "$TMP/snap.json" --pin-root "/sys/fs/bpf/sluice-$A" >>"$TMP/agent.log" 2>&1 &
	AGENT=$!
	PIDS+=("$AGENT")
}
echo '{"services": []}' >"$TMP/snap.json"
v=10
for r in $(seq "$ROUNDS"); do
	echo "bench: round $r/$ROUNDS"
	"$BIN/sluice-agent" --node node1 --pin-root "/sys/fs/bpf/sluice-$A" --uninstall >/dev/null 2>&1 || true
	run_variant direct
	start_agent
	sed "s/\"version\": 1/\"version\": $((v += 1))/" "$TMP/snap1.json" >"$TMP/s.json"; agent_apply "$TMP/s.json" $v
	run_variant sluice-1
	sed "s/\"version\": 2/\"version\": $((v += 1))/" "$TMP/snap10k.json" >"$TMP/s.json"; agent_apply "$TMP/s.json" $v
	run_variant sluice-10k
	kill "$AGENT"; wait "$AGENT" 2>/dev/null || true
	ipt_load "$B" "$TMP/ipt1.rules"
	run_variant iptables-1
	ipt_load "$B" "$TMP/ipt10k.rules"
	run_variant iptables-10k
done
grep 'applied snapshot' "$TMP/agent.log" | tail -n 1 | sed 's/.*applied/bench: agent applied/'

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
{
	echo "sluice bench: $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs, $ROUNDS rounds x ${SECS}s, medians"
	printf '%-14s %12s %9s %9s %12s %9s\n' variant conn/s vs-direct vs-ipt10k rtt-p50-us vs-direct
	dc=$(median <<<"${CONN[direct]}"); dr=$(median <<<"${RTT[direct]}")
	ic=$(median <<<"${CONN[iptables-10k]}")
	for v in $VARIANTS; do
		c=$(median <<<"${CONN[$v]}"); t=$(median <<<"${RTT[$v]}")
		awk -v v="$v" -v c="$c" -v t="$t" -v dc="$dc" -v dr="$dr" -v ic="$ic" \
			'BEGIN { printf "%-14s %12.0f %8.3fx %8.2fx %12.3f %8.3fx\n", v, c, c / dc, c / ic, t, t / dr }'
	done
	echo "samples (conn/s):"
	for v in $VARIANTS; do echo "  $v:${CONN[$v]}"; done
	echo "samples (rtt p50 us):"
	for v in $VARIANTS; do echo "  $v:${RTT[$v]}"; done
} | tee "$OUT/results.txt"
