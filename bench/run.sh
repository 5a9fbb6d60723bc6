#!/bin/bash
# Side-by-side benchmark of service load balancing, one run, medians of
# repeated rounds, reported as ratios to the direct path.
#
#   bench/run.sh BUILD_DIR        (make bench)
#   BENCH_SECONDS=3 BENCH_ROUNDS=5 to change the run length
#
# Variants, all from a client pod to a server pod on the same node (each
# variant has its own client pod, so TIME_WAIT sockets left by one variant
# never slow down another's port allocation):
#   direct          the server's pod IP, no sluice programs attached
#   sluice-1        a sluice VIP, 1 service loaded
#   sluice-10k      a sluice VIP, 10,000 services loaded (target in the middle)
#   iptables-1      a kube-proxy-style DNAT VIP (KUBE-SERVICES -> KUBE-SVC ->
#                   KUBE-SEP, iptables-nft), 1 service
#   iptables-10k    the same with 10,000 services (target in the middle of
#                   KUBE-SERVICES, as an average service would be)
#   iptables-10k-last  the target last in KUBE-SERVICES (kube-proxy's worst case)
# Metrics: new TCP connections per second, each a 64-byte request/response
# (sltest crr with BENCH_PARALLEL client threads, default 4, enough to keep
# both CPUs busy, so per-connection CPU cost shows instead of latency), and
# sockperf TCP ping-pong p50 round trip with 64-byte messages (client pinned
# to CPU 0, server to CPU 1).
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
PAR=${BENCH_PARALLEL:-4}
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

setup_cluster() { # name pods: pod1 is the server, the others are clients
	local c=$1 p
	"$SIM" up --name "$c" --nodes 1 --pods-per-node "$2" >/dev/null
	for p in $(seq 2 "$2"); do
		# thousands of connections/s: reuse TIME_WAIT ports on the client
		nsenter --net="/run/netns/slc.$c.node1.pod$p" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
			net.ipv4.ip_local_port_range="1024 65000"
	done
	"$SIM" exec "$c" node1.pod1 -- "$BIN/sltest" serve --name srv --tcp 8080 \
		--ready "$TMP/ready.$c" >/dev/null 2>&1 &
	PIDS+=("$!")
	"$SIM" exec "$c" node1.pod1 -- taskset -c 1 sockperf sr --tcp -p 11111 >/dev/null 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 100); do [ -e "$TMP/ready.$c" ] && break; sleep 0.05; done
}

echo "bench: setting up clusters $A (direct, sluice) and $B (iptables)"
setup_cluster "$A" 4   # clients: pod2 direct, pod3 sluice-1, pod4 sluice-10k
setup_cluster "$B" 4   # clients: pod2 iptables-1, pod3 iptables-10k, pod4 -10k-last
SA=$(pod_ip "$A" node1.pod1)
SB=$(pod_ip "$B" node1.pod1)
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
iptables_rules $NSVC >"$TMP/ipt10k-last.rules"
# middle: the ping-pong rule goes next to the target service's rule;
# last: both move to the end of KUBE-SERVICES
python3 - "$TMP/ipt10k-last.rules" "$TMP/ipt10k.rules" "$TARGET" <<'PY'
import sys
src, mid, t = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().split('\n')
pp = [l for l in lines if '--dport 11111' in l][0]
lines.remove(pp)
svc = [i for i, l in enumerate(lines) if l.startswith('-A KUBE-SERVICES -d')]
m = list(lines)
m.insert(svc[t], pp)
open(mid, 'w').write('\n'.join(m))
target = lines[svc[t]]
lines.remove(target)
svc = [i for i, l in enumerate(lines) if l.startswith('-A KUBE-SERVICES -d')]
lines[svc[-1] + 1:svc[-1] + 1] = [target, pp]
open(src, 'w').write('\n'.join(lines))
PY

agent_apply() { # snapshot-file version
	cp "$1" "$TMP/snap.json.tmp" && mv "$TMP/snap.json.tmp" "$TMP/snap.json"
	for _ in $(seq 600); do
		grep -q "applied snapshot version=$2 " "$TMP/agent.log" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: agent did not apply version $2" >&2; tail "$TMP/agent.log" >&2; exit 1
}
ipt_load() { # cluster rules-file
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -F
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -X
	nsenter --net="/run/netns/slc.$1.node1" iptables-restore --noflush <"$2"
}

crr() { # cluster client-pod ip port
	local out
	out=$("$SIM" exec "$1" "$2" -- "$BIN/sltest" crr --to "$3:$4" --duration "$SECS" --parallel "$PAR") ||
		{ echo "bench: crr to $3:$4 failed: $out" >&2; exit 1; }
	jq -r .rate <<<"$out"
}
rtt() { # cluster client-pod ip: p50 in microseconds
	local out
	out=$("$SIM" exec "$1" "$2" -- taskset -c 0 sockperf pp --tcp -i "$3" -p 11111 -m 64 -t "$SECS" 2>&1) ||
		{ echo "bench: sockperf to $3 failed: $out" >&2; exit 1; }
	awk '/percentile 50.000 =/ { print $NF }' <<<"$out"
}

VARIANTS="direct sluice-1 sluice-10k iptables-1 iptables-10k iptables-10k-last"
declare -A CONN RTT
run_variant() { # name
	case $1 in
	direct)       CONN[$1]+=" $(crr "$A" node1.pod2 "$SA" 8080)"; RTT[$1]+=" $(rtt "$A" node1.pod2 "$SA")" ;;
	sluice-1)     CONN[$1]+=" $(crr "$A" node1.pod3 "$TVIP" 80)"; RTT[$1]+=" $(rtt "$A" node1.pod3 "$TVIP")" ;;
	sluice-10k)   CONN[$1]+=" $(crr "$A" node1.pod4 "$TVIP" 80)"; RTT[$1]+=" $(rtt "$A" node1.pod4 "$TVIP")" ;;
	iptables-1)   CONN[$1]+=" $(crr "$B" node1.pod2 "$TVIP" 80)"; RTT[$1]+=" $(rtt "$B" node1.pod2 "$TVIP")" ;;
	iptables-10k) CONN[$1]+=" $(crr "$B" node1.pod3 "$TVIP" 80)"; RTT[$1]+=" $(rtt "$B" node1.pod3 "$TVIP")" ;;
	iptables-10k-last) CONN[$1]+=" $(crr "$B" node1.pod4 "$TVIP" 80)"; RTT[$1]+=" $(rtt "$B" node1.pod4 "$TVIP")" ;;
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
	ipt_load "$B" "$TMP/ipt10k-last.rules"
	run_variant iptables-10k-last
done
grep 'applied snapshot' "$TMP/agent.log" | tail -n 1 | sed 's/.*applied/bench: agent applied/'

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
{
	echo "sluice bench: $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs, $ROUNDS rounds x ${SECS}s, medians"
	printf '%-18s %12s %9s %9s %12s %9s\n' variant conn/s vs-direct vs-ipt10k rtt-p50-us vs-direct
	dc=$(median <<<"${CONN[direct]}"); dr=$(median <<<"${RTT[direct]}")
	ic=$(median <<<"${CONN[iptables-10k]}")
	for v in $VARIANTS; do
		c=$(median <<<"${CONN[$v]}"); t=$(median <<<"${RTT[$v]}")
		awk -v v="$v" -v c="$c" -v t="$t" -v dc="$dc" -v dr="$dr" -v ic="$ic" \
			'BEGIN { printf "%-18s %12.0f %8.3fx %8.2fx %12.3f %8.3fx\n", v, c, c / dc, c / ic, t, t / dr }'
	done
	echo "samples (conn/s):"
	for v in $VARIANTS; do echo "  $v:${CONN[$v]}"; done
	echo "samples (rtt p50 us):"
	for v in $VARIANTS; do echo "  $v:${RTT[$v]}"; done
} | tee "$OUT/results.txt"
