#!/bin/bash
# The cost of identity-based L4 policy and of telemetry, side by side with
# plain load balancing in the same run, medians, ratios.
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
# Metrics as in bench/run.sh: new connections per second (sltest crr) and
# sockperf ping-pong p50 round trip; the RTT ratio is the per-packet cost.
. "$(dirname "$0")/lib.sh"
C=bp$(( $$ % 100000 ))
setup_cluster "$C" 5
S=$(pod_ip "$C" node1.pod1)
VIP=10.96.7.7

svc='[{"name": "bench/target", "vip": "'$VIP'", "port": 80, "backends": [{"address": "'$S'", "port": 8080}]},
      {"name": "bench/pp", "vip": "'$VIP'", "port": 11111, "backends": [{"address": "'$S'", "port": 11111}]}]'
echo "{\"services\": $svc}" >"$TMP/lb.json"
policy_snapshot "$C" "$svc" '[8080, 11111]' >"$TMP/policy.json"

VARIANTS="direct lb policy policy+log"
declare -A CONN RTT
run_variant() { # name client-pod ip port
	CONN[$1]+=" $(crr "$C" "$2" "$3" "$4")"
	RTT[$1]+=" $(rtt "$C" "$2" "$3")"
}
v=0
for r in $(seq "$ROUNDS"); do
	echo "bench: policy round $r/$ROUNDS"
	uninstall_agent "$C"
	run_variant direct node1.pod2 "$S" 8080
	start_agent "$C" --flow-log none
	agent_apply "$C" "$TMP/lb.json" $((v += 1))
	run_variant lb node1.pod3 "$VIP" 80
	agent_apply "$C" "$TMP/policy.json" $((v += 1))
	run_variant policy node1.pod4 "$VIP" 80
	stop_agent
	start_agent "$C"
	agent_apply "$C" "$TMP/policy.json" $((v += 1))
	run_variant policy+log node1.pod5 "$VIP" 80
	stop_agent
	# the next round's lb variant must not inherit identities or tc
	uninstall_agent "$C"
done
grep -m1 'identities:.*1008 policy entries\|identities:.*policy entries' "$TMP/agent.$C.log" | tail -n1 |
	sed 's/.*identities:/bench: agent loaded identities:/'
report "sluice bench (policy and telemetry)" lb $VARIANTS | tee "$OUT/policy.txt"
