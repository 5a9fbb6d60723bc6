#!/bin/bash
# Side-by-side benchmark of service load balancing (bench "lb"): one run,
# repeated rounds, every sample recorded (bench/record.sh), ratios to the
# direct path in the report.
#
#   bench/run.sh BUILD_DIR        (make bench runs it first)
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
# (sltest crr with BENCH_PARALLEL client threads, default 4, on CPU 0 and
# the server on CPU 1, which keeps both CPUs busy, so per-connection CPU
# cost shows instead of where the scheduler put the threads), and
# sockperf TCP ping-pong p50 round trip with 64-byte messages (client pinned
# to CPU 0, server to CPU 1). Goal: the sluice variants at least 0.95x the
# direct path's connections per second.
#
# The iptables variants run in a second simulated cluster so that conntrack,
# which the nat table switches on in the node's netns, never touches the
# direct and sluice runs.
BENCH=lb
. "$(dirname "$0")/lib.sh"
NSVC=10000
A=ba$(( $$ % 100000 ))
B=bb$(( $$ % 100000 ))
VARIANTS="direct sluice-1 sluice-10k iptables-1 iptables-10k iptables-10k-last"

rec_metric conn/s conn/s higher "new TCP connections per second, 64 B request/response (sltest crr, $PAR threads)"
rec_metric rtt-p50 us lower "sockperf TCP ping-pong p50 round trip, 64 B"
for v in $VARIANTS; do
	[ "$v" = direct ] && continue
	case $v in sluice-*) rec_compare conn/s "$v" direct '>=' 0.95 ;; *) rec_compare conn/s "$v" direct ;; esac
	rec_compare rtt-p50 "$v" direct
done
rec_compare conn/s sluice-10k iptables-10k
rec_compare conn/s sluice-10k iptables-10k-last

echo "bench: setting up clusters $A (direct, sluice) and $B (iptables)"
setup_cluster "$A" 4   # clients: pod2 direct, pod3 sluice-1, pod4 sluice-10k
setup_cluster "$B" 4   # clients: pod2 iptables-1, pod3 iptables-10k, pod4 -10k-last
SA=$(pod_ip "$A" node1.pod1)
SB=$(pod_ip "$B" node1.pod1)
TARGET=$((NSVC / 2))
TVIP=10.96.$(( TARGET / 256 )).$(( TARGET % 256 ))

# sluice snapshots: the target alone, and the target among 10,000
pp='{"name": "bench/pp", "vip": "'$TVIP'", "port": 11111, "backends": [{"address": "'$SA'", "port": 11111}]}'
echo '{"version": 1, "services": [{"name": "bench/target", "vip": "'$TVIP'", "port": 80,
  "backends": [{"address": "'"$SA"'", "port": 8080}]}, '"$pp"']}' >"$TMP/snap1.json"
awk -v n="$NSVC" -v sa="$SA" -v pp="$pp" 'BEGIN {
	printf "{\"version\": 2, \"services\": ["
	for (i = 0; i < n; i++)
		printf "{\"name\": \"bench/s%d\", \"vip\": \"10.96.%d.%d\", \"port\": 80, \"backends\": [{\"address\": \"%s\", \"port\": 8080}]}, ",
			i, int(i / 256), i % 256, sa
	printf "%s]}\n", pp
}' >"$TMP/snap10k.json"

# kube-proxy-style rules, as kube-proxy writes them for 1 endpoint each.
# The ping-pong service's rule goes next to the target service's (mid), or
# both go to the end of KUBE-SERVICES (last: kube-proxy's worst case, and
# the only place there is with 1 service).
iptables_rules() { # count mid|last
	awk -v n="$1" -v mode="$2" -v t="$TARGET" -v tvip="$TVIP" -v sb="$SB" 'BEGIN {
		print "*nat"; print ":KUBE-SERVICES - [0:0]"; print ":KUBE-MARK-MASQ - [0:0]"
		for (i = 0; i < n; i++) printf ":KUBE-SVC-%016X - [0:0]\n:KUBE-SEP-%016X - [0:0]\n", i, i
		print "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
		pp = sprintf("-A KUBE-SERVICES -d %s/32 -p tcp -m tcp --dport 11111 -j DNAT --to-destination %s:11111", tvip, sb)
		for (i = 0; i < n; i++) {
			v = n == 1 ? tvip : sprintf("10.96.%d.%d", int(i / 256), i % 256)
			svc = sprintf("-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/s%d cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%016X", v, i, i)
			if (n == 1 || (mode == "last" && i == t)) {
				last = svc
			} else {
				if (mode == "mid" && i == t) print pp
				print svc
			}
			printf "-A KUBE-SVC-%016X -m comment --comment \"bench/s%d -> %s:8080\" -j KUBE-SEP-%016X\n", i, i, sb, i
			printf "-A KUBE-SEP-%016X -s %s/32 -j KUBE-MARK-MASQ\n", i, sb
			printf "-A KUBE-SEP-%016X -p tcp -m tcp -j DNAT --to-destination %s:8080\n", i, sb
		}
		if (last != "") { print last; print pp }
		print "COMMIT"
	}'
}
iptables_rules 1 last >"$TMP/ipt1.rules"
iptables_rules "$NSVC" mid >"$TMP/ipt10k.rules"
iptables_rules "$NSVC" last >"$TMP/ipt10k-last.rules"

ipt_load() { # cluster rules-file
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -F &&
	nsenter --net="/run/netns/slc.$1.node1" iptables -t nat -X &&
	nsenter --net="/run/netns/slc.$1.node1" iptables-restore --noflush <"$2"
}

run_variant() { # name round
	local c pod ip port
	case $1 in
	sluice-1)          c=$A pod=node1.pod3 ip=$TVIP port=80 ;;
	sluice-10k)        c=$A pod=node1.pod4 ip=$TVIP port=80 ;;
	iptables-1)        c=$B pod=node1.pod2 ip=$TVIP port=80 ;;
	iptables-10k)      c=$B pod=node1.pod3 ip=$TVIP port=80 ;;
	iptables-10k-last) c=$B pod=node1.pod4 ip=$TVIP port=80 ;;
	esac
	rec_sample conn/s "$1" "$2" "$(crr "$c" "$pod" "$ip" "$port")"
	rec_sample rtt-p50 "$1" "$2" "$(rtt "$c" "$pod" "$ip")"
}

# paired VARIANT ROUND FILE: VARIANT measured seconds after a direct
# sample of its own, by a fresh agent on FILE (paired_start, bench/lib.sh).
# Load balancing only: no flow log (bench/policy.sh measures telemetry).
# A variant whose set-up fails is recorded as failed for the round.
paired() {
	if paired_start "$A" "$1" "$2" "$SA" "$3" --flow-log none; then run_variant "$1" "$2"; fi
	stop_agent
}
for r in $(seq "$ROUNDS"); do
	echo "bench: lb round $r/$ROUNDS"
	uninstall_agent "$A"
	rec_sample rtt-p50 direct "$r" "$(rtt "$A" node1.pod2 "$SA")"
	paired sluice-1 "$r" "$TMP/snap1.json"
	paired sluice-10k "$r" "$TMP/snap10k.json"
	uninstall_agent "$A"
	for x in iptables-1:ipt1 iptables-10k:ipt10k iptables-10k-last:ipt10k-last; do
		if ipt_load "$B" "$TMP/${x#*:}.rules"; then run_variant "${x%:*}" "$r"
		else rec_failed "${x%:*}" "round $r: iptables-restore of ${x#*:}.rules failed"; fi
	done
done
grep 'applied snapshot' "$TMP/agent.$A.log" | tail -n 1 | sed 's/.*applied/bench: agent applied/'
rec_done
