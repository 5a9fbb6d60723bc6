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
# Metrics as in bench/run.sh: new connections per second (sltest crr) and
# sockperf ping-pong p50 round trip; the RTT ratio is the per-packet cost.
# Baselines: lb and all against direct, policy, policy+log and all
# against lb. Goals: lb and all at least 0.95x direct's connections per
# second, and policy at least 0.95x lb's.
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
rec_compare rtt-p50 all direct
C=bp$(( $$ % 100000 ))
setup_cluster "$C" 6
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
# apply_then VARIANT ROUND FILE VERSION MEASUREMENT...: the variant is
# measured once the agent applied FILE, else recorded as failed
apply_then() {
	local var=$1 r=$2 f=$3 ver=$4
	shift 4
	if agent_apply "$C" "$f" "$ver"; then run_variant "$var" "$r" "$@"
	else rec_failed "$var" "round $r: the agent did not apply $(basename "$f")"; fi
}
v=0
for r in $(seq "$ROUNDS"); do
	echo "bench: policy round $r/$ROUNDS"
	uninstall_agent "$C"
	run_variant direct "$r" node1.pod2 "$S" 8080
	start_agent "$C" --flow-log none
	apply_then lb "$r" "$TMP/lb.json" $((v += 1)) node1.pod3 "$VIP" 80
	apply_then policy "$r" "$TMP/policy.json" $((v += 1)) node1.pod4 "$VIP" 80
	apply_then all "$r" "$TMP/all.json" $((v += 1)) node1.pod6 "$VIP" 80
	stop_agent
	start_agent "$C"
	apply_then policy+log "$r" "$TMP/policy.json" $((v += 1)) node1.pod5 "$VIP" 80
	stop_agent
	# the next round's lb variant must not inherit identities or tc
	uninstall_agent "$C"
done
grep 'identities:.*policy entries' "$TMP/agent.$C.log" | tail -n 1 |
	sed 's/.*identities:/bench: agent loaded identities:/' || true
rec_done
