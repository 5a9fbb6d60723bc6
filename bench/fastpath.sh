#!/bin/bash
# The same-node fast path (sockmap/sk_msg redirection), side by side with
# the kernel's TCP path in the same run, medians, ratios.
#
#   bench/fastpath.sh BUILD_DIR        (make bench)
#
# Variants, a client pod to the server pod on the same node, each with its
# own client pod:
#   direct   the server's pod IP, no sluice programs attached
#   tcp      sluice with load balancing (through a VIP), identities, 1,000
#            policy entries with the server default-deny, tc on every veth,
#            accounting and flow events; no fast path
#   fast     the same with the fast path forced on (--sockmap force: this
#            kernel may have the half-close bug, see docs/architecture.md)
# Metrics: iperf3 throughput with 1 and 4 streams, sockperf ping-pong p50
# and p99 round trip with 64 B and 1 KiB messages.
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { echo "bench: iperf3 missing (make deps)" >&2; exit 1; }
C=bf$(( $$ % 100000 ))
setup_cluster "$C" 4
S=$(pod_ip "$C" node1.pod1)
VIP=10.96.7.8
"$SIM" exec "$C" node1.pod1 -- iperf3 -s -p 5201 >/dev/null 2>&1 &
PIDS+=("$!")

svc='[{"name": "bench/iperf", "vip": "'$VIP'", "port": 5201, "backends": [{"address": "'$S'", "port": 5201}]},
      {"name": "bench/pp", "vip": "'$VIP'", "port": 11111, "backends": [{"address": "'$S'", "port": 11111}]}]'
policy_snapshot "$C" "$svc" '[5201, 11111]' >"$TMP/policy.json"

declare -A M
METRICS="gbps-1 gbps-4 p50-64 p99-64 p50-1k p99-1k"
# iperf() client-pod ip streams: Gbit/s received, or "fail:REASON" (the
# fast path's sender gets ENOMEM when its reader falls far behind: that is
# reported, not hidden)
iperf() {
	local out err
	for _ in 1 2 3; do   # the server takes one test at a time ("busy")
		out=$("$SIM" exec "$C" "$1" -- iperf3 -c "$2" -p 5201 -t "$SECS" -P "$3" -J 2>&1)
		# iperf3 may exit 0 with an error in its JSON
		err=$(jq -r '.error // empty' <<<"$out" 2>/dev/null || echo "unreadable output")
		[ -z "$err" ] && { jq '.end.sum_received.bits_per_second / 1e9' <<<"$out"; return; }
		[[ $err = *busy* ]] || break
		sleep 0.5
	done
	echo "bench: iperf3 to $2 failed: $err" >&2
	echo "fail:$(tr ' ' _ <<<"$err")"
}
pingpong() { # client-pod ip size: "p50 p99" in microseconds
	local out
	out=$("$SIM" exec "$C" "$1" -- taskset -c 0 sockperf pp --tcp -i "$2" -p 11111 -m "$3" -t "$SECS" 2>&1) ||
		{ echo "bench: sockperf to $2 failed: $out" >&2; exit 1; }
	awk '/percentile 50.000 =/ { p50 = $NF } /percentile 99.000 =/ { p99 = $NF } END { print p50, p99 }' <<<"$out"
}
measure() { # variant client-pod ip
	local a
	M[$1,gbps-1]+=" $(iperf "$2" "$3" 1)"
	M[$1,gbps-4]+=" $(iperf "$2" "$3" 4)"
	read -r -a a <<<"$(pingpong "$2" "$3" 64)"
	M[$1,p50-64]+=" ${a[0]}" M[$1,p99-64]+=" ${a[1]}"
	read -r -a a <<<"$(pingpong "$2" "$3" 1024)"
	M[$1,p50-1k]+=" ${a[0]}" M[$1,p99-1k]+=" ${a[1]}"
}

v=0
for r in $(seq "$ROUNDS"); do
	echo "bench: fastpath round $r/$ROUNDS"
	uninstall_agent "$C"
	measure direct node1.pod2 "$S"
	start_agent "$C" --sockmap off --flow-log "$TMP/flows.jsonl"
	agent_apply "$C" "$TMP/policy.json" $((v += 1))
	measure tcp node1.pod3 "$VIP"
	stop_agent
	start_agent "$C" --sockmap force --flow-log "$TMP/flows.jsonl"
	agent_apply "$C" "$TMP/policy.json" $((v += 1))
	measure fast node1.pod4 "$VIP"
	stop_agent
	rm -f "$TMP/flows.jsonl"
done
grep -m1 'same-node fast path: on' "$TMP/agent.$C.log" | sed 's/.*sluice-agent: /bench: /'

{
	echo "sluice bench (same-node fast path): $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs, $ROUNDS rounds x ${SECS}s, medians"
	printf '%-8s' variant
	for m in $METRICS; do printf ' %10s %8s' "$m" vs-dir; done
	echo
	for var in direct tcp fast; do
		printf '%-8s' "$var"
		for m in $METRICS; do
			awk -v x="$(median <<<"${M[$var,$m]}")" -v b="$(median <<<"${M[direct,$m]}")" \
				'BEGIN { printf " %10.2f %7.3fx", x, x / b }'
		done
		echo
	done
	echo "(gbps: iperf3 Gbit/s, higher is better; p50/p99: sockperf round trip in us, lower is better;"
	echo " medians of the runs that did not fail; failed runs are listed as fail:REASON below)"
	echo "samples:"
	for var in direct tcp fast; do
		for m in $METRICS; do echo "  $var $m:${M[$var,$m]}"; done
	done
} | tee "$OUT/fastpath.txt"
