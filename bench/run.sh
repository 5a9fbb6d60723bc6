#!/bin/bash
# Side-by-side benchmark of service load balancing, one run, medians of
# repeated rounds, reported as ratios to the direct path.
#
#   bench/run.sh BUILD_DIR        (make bench runs this, then bench/policy.sh)
#   BENCH_SECONDS=3 BENCH_ROUNDS=5 BENCH_PARALLEL=4 to change the run
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
. "$(dirname "$0")/lib.sh"
NSVC=10000
A=ba$(( $$ % 100000 ))
B=bb$(( $$ % 100000 ))

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

ipt_load() { # cluster rules-file
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -F
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -X
	nsenter --net="/run/netns/slc.$1.node1" iptables-restore --noflush <"$2"
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

# Load balancing only: no flow log (bench/policy.sh measures telemetry).
v=10
for r in $(seq "$ROUNDS"); do
	echo "bench: round $r/$ROUNDS"
	uninstall_agent "$A"
	run_variant direct
	start_agent "$A" --flow-log none
	agent_apply "$A" "$TMP/snap1.json" $((v += 1))
	run_variant sluice-1
	agent_apply "$A" "$TMP/snap10k.json" $((v += 1))
	run_variant sluice-10k
	stop_agent
	ipt_load "$B" "$TMP/ipt1.rules"
	run_variant iptables-1
	ipt_load "$B" "$TMP/ipt10k.rules"
	run_variant iptables-10k
	ipt_load "$B" "$TMP/ipt10k-last.rules"
	run_variant iptables-10k-last
done
grep 'applied snapshot' "$TMP/agent.$A.log" | tail -n 1 | sed 's/.*applied/bench: agent applied/'

{
	report "sluice bench (load balancing)" direct $VARIANTS
	ic=$(median <<<"${CONN[iptables-10k]}"); il=$(median <<<"${CONN[iptables-10k-last]}")
	for v in sluice-1 sluice-10k; do
		awk -v v="$v" -v c="$(median <<<"${CONN[$v]}")" -v ic="$ic" -v il="$il" \
			'BEGIN { printf "%s vs iptables-10k: %.2fx conn/s (vs iptables-10k-last: %.2fx)\n", v, c / ic, c / il }'
	done
} | tee "$OUT/results.txt"
