#!/bin/bash
# The control plane's fan-out (bench "fanout"): time from `sluicectl apply`
# (and from the control plane taking the request) of one changed service
# to the ACK of every one of N agents, with S
# services loaded, and the bytes that change pushed to them all; delta
# push (the default) against full push (`sluice-control --push full`) in
# the same run, each with its own control plane and agents.
#
#   bench/fanout.sh BUILD_DIR   (BENCH_FANOUT_AGENTS=50, BENCH_FANOUT_SIZE=10000,
#                                BENCH_FANOUT_MODES="delta full", BENCH_ROUNDS=5)
#
# The N agents are map-less: sl-watchers (bench/watchers.c) runs the
# agent's own link to the control plane (join, watch, deltas, ACK/NACK)
# N times in one process in node2's network namespace, and decodes every
# snapshot as the agent does, but writes no BPF map. So this measures the
# control plane and the wire, not the agents' maps (bench/control.sh does
# that with real agents). Only addresses in namespaces this script creates
# are used; no traffic is sent.
BENCH=fanout
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
N=${BENCH_FANOUT_AGENTS:-50}
SIZE=${BENCH_FANOUT_SIZE:-10000}
MODES=${BENCH_FANOUT_MODES:-delta full}
export NODES=$N
C=bf$(( $$ % 100000 ))
CLUSTERS+=("$C")
"$SIM" up --name "$C" --nodes 2 --pods-per-node 1 >/dev/null
ADDR=192.168.77.1:15012
export SLUICE_CONTROL=https://$ADDR

rec_param agents "$N"
rec_param services "$SIZE"
rec_param modes "$MODES"
rec_metric apply-ack-ms ms lower "time from launching sluicectl apply (one endpoint changed) to the last of the $N agents' ACK"
rec_metric change-ack-ms ms lower "time from the control plane taking that request to the last of the $N agents' ACK (its log)"
rec_metric push-bytes bytes lower "bytes the control plane sent the $N agents for that change"
rec_metric control-rss-kb KiB lower "resident memory of sluice-control"
rec_metric watcher-rss-kb KiB lower "resident memory of the $N map-less agents, per agent"
case " $MODES " in *" delta "*" full "*|*" full "*" delta "*)
	for m in apply-ack-ms change-ack-ms push-bytes control-rss-kb watcher-rss-kb; do
		rec_compare "$m" "delta-$N" "full-$N"
	done;;
esac

for mode in $MODES; do
	var=$mode-$N
	CP=$TMP/control.$mode
	export SLUICE_CREDENTIALS=$CP
	echo "bench: fan-out, $mode push, $N map-less agents, $SIZE services"
	nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluice-control" --state-dir "$CP" --listen "$ADDR" \
		--push "$mode" >"$TMP/control.log" 2>&1 &
	CPID=$!
	PIDS+=("$CPID")
	for _ in $(seq 100); do grep -q 'listening on' "$TMP/control.log" && break; sleep 0.05; done
	: >"$TMP/tokens.$mode"
	for i in $(seq 0 $((N - 1))); do
		"$BIN/sluice-control" token create --state-dir "$CP" --node "w-$i" >>"$TMP/tokens.$mode" ||
			{ rec_failed "$var" "token create failed"; exit 1; }
	done
	nsenter --net="/run/netns/slc.$C.node2" "$BIN/sl-watchers" --control "https://$ADDR" \
		--ca-file "$CP/ca.crt" --state-dir "$TMP/watchers.$mode" --nodes w --count "$N" \
		--tokens "$TMP/tokens.$mode" >"$TMP/watchers.log" 2>&1 &
	WPID=$!
	PIDS+=("$WPID")
	for from in $(seq 0 2000 $((SIZE - 1))); do
		services "$from" $((from + 2000 > SIZE ? SIZE : from + 2000)) >"$TMP/chunk.yaml"
		v=$(apply "$TMP/chunk.yaml") || { rec_failed "$var" "loading services: $v"; exit 1; }
	done
	why=$(wait_acked "$v") || { rec_failed "$var" "loading $SIZE services: $why"; exit 1; }
	for r in $(seq "$ROUNDS"); do
		services 0 1 "$r" >"$TMP/one.yaml"
		t0=$(now_ms)
		if ! v=$(apply "$TMP/one.yaml"); then
			rec_sample apply-ack-ms "$var" "$r" "fail:$v"
		elif ! why=$(wait_acked "$v"); then
			rec_sample apply-ack-ms "$var" "$r" "fail:$why"
		else
			read -r -a a <<<"$(acked "$v")"
			rec_sample apply-ack-ms "$var" "$r" $(( $(ms "${a[1]}") - t0 ))
			rec_sample change-ack-ms "$var" "$r" $(( $(ms "${a[1]}") - $(taken "$v") ))
			rec_sample push-bytes "$var" "$r" "$(pushed "$v")"
		fi
	done
	rec_sample control-rss-kb "$var" 1 "$(rss "$CPID" || echo "fail:sluice-control is gone")"
	w=$(rss "$WPID") && rec_sample watcher-rss-kb "$var" 1 $((w / N)) ||
		rec_sample watcher-rss-kb "$var" 1 "fail:sl-watchers is gone"
	kill "$CPID" "$WPID" 2>/dev/null
	wait "$CPID" "$WPID" 2>/dev/null
done
rec_done
