#!/bin/bash
# The same-node fast path (sockmap/sk_msg redirection, bench "fastpath"),
# side by side with the kernel's TCP path in the same run, every sample
# recorded (bench/record.sh), ratios to direct in the report.
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
# and p99 round trip with 64 B and 1 KiB messages. Goals, for fast against
# direct: throughput at least 3x and p50 round trip at most 0.6x.
BENCH=fastpath
. "$(dirname "$0")/lib.sh"
command -v iperf3 >/dev/null || { rec_failed '*' "iperf3 missing (make deps)"; exit 1; }
C=bf$(( $$ % 100000 ))
setup_cluster "$C" 4
S=$(pod_ip "$C" node1.pod1)
VIP=10.96.7.8
"$SIM" exec "$C" node1.pod1 -- iperf3 -s -p 5201 >/dev/null 2>&1 &
PIDS+=("$!")

svc='[{"name": "bench/iperf", "vip": "'$VIP'", "port": 5201, "backends": [{"address": "'$S'", "port": 5201}]},
      {"name": "bench/pp", "vip": "'$VIP'", "port": 11111, "backends": [{"address": "'$S'", "port": 11111}]}]'
policy_snapshot "$C" "$svc" '[5201, 11111]' >"$TMP/policy.json"

METRICS="gbps-1 gbps-4 p50-64 p99-64 p50-1k p99-1k"
rec_metric gbps-1 Gbit/s higher "iperf3 throughput, 1 stream"
rec_metric gbps-4 Gbit/s higher "iperf3 throughput, 4 streams"
rec_metric p50-64 us lower "sockperf TCP ping-pong p50 round trip, 64 B"
rec_metric p99-64 us lower "sockperf TCP ping-pong p99 round trip, 64 B"
rec_metric p50-1k us lower "sockperf TCP ping-pong p50 round trip, 1 KiB"
rec_metric p99-1k us lower "sockperf TCP ping-pong p99 round trip, 1 KiB"
for var in tcp fast; do
	for m in $METRICS; do
		case $var,$m in
		fast,gbps-*) rec_compare "$m" "$var" direct '>=' 3 ;;
		fast,p50-*)  rec_compare "$m" "$var" direct '<=' 0.6 ;;
		*)           rec_compare "$m" "$var" direct ;;
		esac
	done
done
# iperf() client-pod ip streams: Gbit/s received, or "fail:REASON" (the
# fast path's sender gets ENOMEM when its reader falls far behind: that is
# reported, not hidden)
iperf() {
	local out err
	for _ in 1 2 3; do   # the server takes one test at a time ("busy")
		out=$(timeout $((SECS + 30)) "$SIM" exec "$C" "$1" -- iperf3 -c "$2" -p 5201 -t "$SECS" -P "$3" -J 2>&1)
		# iperf3 may exit 0 with an error in its JSON
		err=$(jq -r '.error // empty' <<<"$out" 2>/dev/null || echo "unreadable output: $(tail -n 3 <<<"$out")")
		[ -z "$err" ] && { jq '.end.sum_received.bits_per_second / 1e9' <<<"$out"; return; }
		[[ $err = *busy* ]] || break
		sleep 0.5
	done
	echo "fail:iperf3 -P $3 to $2: $err"
}
pingpong() { # client-pod ip size: "p50 p99" in microseconds, or "fail:REASON"
	local out
	out=$(timeout $((SECS + 30)) "$SIM" exec "$C" "$1" -- taskset -c 0 sockperf pp --tcp -i "$2" -p 11111 \
		-m "$3" -t "$SECS" 2>&1) || { echo "fail:sockperf -m $3 to $2: $(tail -n 3 <<<"$out" | tr '\n' ' ')"; return; }
	awk '/percentile 50.000 =/ { p50 = $NF } /percentile 99.000 =/ { p99 = $NF }
		END { if (p50 == "" || p99 == "") print "fail:no percentiles in sockperf output"; else print p50, p99 }' <<<"$out"
}
measure() { # variant round client-pod ip
	local a s
	rec_sample gbps-1 "$1" "$2" "$(iperf "$3" "$4" 1)"
	rec_sample gbps-4 "$1" "$2" "$(iperf "$3" "$4" 4)"
	for s in 64:64 1024:1k; do
		read -r -a a <<<"$(pingpong "$3" "$4" "${s%:*}")"
		if [[ ${a[0]} = fail:* ]]; then   # the reason, whole, for both
			rec_sample "p50-${s#*:}" "$1" "$2" "${a[*]}"
			rec_sample "p99-${s#*:}" "$1" "$2" "${a[*]}"
		else
			rec_sample "p50-${s#*:}" "$1" "$2" "${a[0]}"
			rec_sample "p99-${s#*:}" "$1" "$2" "${a[1]}"
		fi
	done
}

v=0
for r in $(seq "$ROUNDS"); do
	echo "bench: fastpath round $r/$ROUNDS"
	uninstall_agent "$C"
	measure direct "$r" node1.pod2 "$S"
	for x in tcp:off:node1.pod3 fast:force:node1.pod4; do
		IFS=: read -r var mode pod <<<"$x"
		start_agent "$C" --sockmap "$mode" --flow-log "$TMP/flows.jsonl"
		if agent_apply "$C" "$TMP/policy.json" $((v += 1)); then measure "$var" "$r" "$pod" "$VIP"
		else rec_failed "$var" "round $r: the agent did not apply the policy snapshot"; fi
		stop_agent
	done
	rm -f "$TMP/flows.jsonl"
done
grep -m1 'same-node fast path: on' "$TMP/agent.$C.log" | sed 's/.*sluice-agent: /bench: /' || true
rec_done
