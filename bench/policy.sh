#!/bin/bash
# The cost of identity-based L4 policy and of telemetry (bench "policy"),
# side by side with plain load balancing in the same run, every sample
# recorded (bench/record.sh), ratios in the report.
#
#   bench/policy.sh BUILD_DIR        (make bench, after bench/run.sh)
#
# Variants, client pod to server pod through a VIP on the same node (each
# variant has its own client pod):
#   direct        the server's pod IP, no sluice programs attached
#   lb            sluice load balancing only: no identities, no policy, no
#                 tc programs, no flow log
#   policy        every pod an identity, 1,000 compiled policy entries, the
#                 server default-deny with an ALLOW for the clients: the full
#                 check at connect (5 lookups + identities) and tc on every
#                 pod veth (per packet: one endpoint lookup and parsing; per
#                 SYN: the policy check again); no flow log
#   policy+log    the same with flow events written to the flow log
#   all           policy, and each service with a traffic policy as well
#                 (LEAST_REQUEST, maxConnections never reached,
#                 outlierDetection): everything a connection can pay for
#                 but the flow log
#   all-cls       all, with the tc programs as cls_bpf filters under a
#                 clsact qdisc (--tc-attach cls: what kernels before 6.6
#                 get) instead of tcx; on such kernels both are cls_bpf
# Metrics as in bench/run.sh: new connections per second (sltest crr) and
# sockperf ping-pong p50 round trip; the RTT ratio is the per-packet cost.
# Baselines: lb and all against direct, policy, policy+log and all
# against lb. Goals: lb and all at least 0.95x direct's connections per
# second, and policy at least 0.95x lb's. Each variant's connection rate
# is measured right after a direct sample of its own, and its per-round
# ratio to direct divides by that sample (paired below).
BENCH=policy
. "$(dirname "$0")/lib.sh"
rec_metric conn/s conn/s higher "new TCP connections per second, 64 B request/response (sltest crr, $PAR threads)"
rec_metric rtt-p50 us lower "sockperf TCP ping-pong p50 round trip, 64 B"
rec_compare conn/s lb direct '>=' 0.95
rec_compare rtt-p50 lb direct
rec_compare conn/s policy lb '>=' 0.95
rec_compare rtt-p50 policy lb
rec_compare conn/s policy+log lb
rec_compare rtt-p50 policy+log lb
rec_compare conn/s all direct '>=' 0.95
rec_compare conn/s all lb
rec_compare conn/s all all-cls
rec_compare rtt-p50 all direct
C=bp$(( $$ % 100000 ))
setup_cluster "$C" 7
S=$(pod_ip "$C" node1.pod1)
VIP=10.96.7.7

svc='[{"name": "bench/target", "vip": "'$VIP'", "port": 80, "backends": [{"address": "'$S'", "port": 8080}]},
      {"name": "bench/pp", "vip": "'$VIP'", "port": 11111, "backends": [{"address": "'$S'", "port": 11111}]}]'
echo "{\"services\": $svc}" >"$TMP/lb.json"
policy_snapshot "$C" "$svc" '[8080, 11111]' >"$TMP/policy.json"
jq '.services[].traffic = {lb: "LEAST_REQUEST", max_connections: 1000000, outlier: {consecutive_errors: 5}}' \
	"$TMP/policy.json" >"$TMP/all.json"

run_variant() { # name round client-pod ip port
	rec_sample conn/s "$1" "$2" "$(crr "$C" "$3" "$4" "$5")"
	rec_sample rtt-p50 "$1" "$2" "$(rtt "$C" "$3" "$4")"
}
# paired VARIANT ROUND FILE CLIENT-POD [AGENT FLAGS]: VARIANT measured
# seconds after a direct sample of its own, by a fresh agent on FILE
# (paired_start, bench/lib.sh), so that the machine's speed, which moved
# by up to a third between rounds here, changes less in between; and each
# variant starts from nothing (lb inherits no identities or tc programs).
paired() {
	local var=$1 r=$2 f=$3 pod=$4
	shift 4
	if paired_start "$C" "$var" "$r" "$S" "$f" "$@"; then run_variant "$var" "$r" "$pod" "$VIP" 80; fi
	stop_agent
}
for r in $(seq "$ROUNDS"); do
	echo "bench: policy round $r/$ROUNDS"
	uninstall_agent "$C"
	rec_sample rtt-p50 direct "$r" "$(rtt "$C" node1.pod2 "$S")"
	paired lb "$r" "$TMP/lb.json" node1.pod3 --flow-log none
	paired policy "$r" "$TMP/policy.json" node1.pod4 --flow-log none
	paired all "$r" "$TMP/all.json" node1.pod6 --flow-log none
	paired all-cls "$r" "$TMP/all.json" node1.pod7 --flow-log none --tc-attach cls
	paired policy+log "$r" "$TMP/policy.json" node1.pod5
done
uninstall_agent "$C"
grep 'identities:.*policy entries' "$TMP/agent.$C.log" | tail -n 1 |
	sed 's/.*identities:/bench: agent loaded identities:/' || true
rec_done
