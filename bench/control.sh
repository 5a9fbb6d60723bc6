#!/bin/bash
# The control plane at scale (bench "control"): time from `sluicectl
# apply` to every agent's ACK for one change (and from the control plane
# taking the request: the first includes starting sluicectl under nsenter
# and its TLS handshake, some 45 ms here), with 10, 1,000 and 10,000
# services of 10 endpoints each (ServiceEntry, STATIC endpoints), the
# bytes that change pushed, the time to load them, the size of a node's
# snapshot, and the resident memory of the control plane and an agent
# (3 s after the last change).
# Both push modes run in the same run, each with its own control plane and
# agents: delta (the default: each agent gets what changed since the
# version it has) and full (`sluice-control --push full`: the whole
# snapshot at every change), the baseline. Every sample is recorded
# (bench/record.sh); the ratios are delta against full at each size, and
# each size against the smallest.
#
#   bench/control.sh BUILD_DIR     (BENCH_CONTROL_SIZES="10 1000 10000",
#                                   BENCH_ROUNDS=5, BENCH_CONTROL_CHUNK=2000
#                                   services per file)
#
# Two simulated nodes, each with a real agent joined to sluice-control
# (which runs in node1's network namespace; BENCH_CONTROL_MODES="delta
# full"). The config is loaded in
# files of 2,000 services, one apply each (the files are written
# before the clock starts); then ROUNDS times
# one ServiceEntry's endpoint changes and the time from launching sluicectl
# to the last ACK is read from the control plane's log (one clock). An
# agent ACKs the newest version it has, which can be above the one `apply`
# returned (a node joining also makes a version), so a change counts as
# applied once both agents ACKed that version or a later one. Only
# addresses in namespaces this script creates are used; no traffic is sent.
BENCH=control
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
SIZES=${BENCH_CONTROL_SIZES:-10 1000 10000}
MODES=${BENCH_CONTROL_MODES:-delta full}
C=bc$(( $$ % 100000 ))
CLUSTERS+=("$C")
"$SIM" up --name "$C" --nodes 2 --pods-per-node 1 >/dev/null
ADDR=192.168.77.1:15012
export SLUICE_CONTROL=https://$ADDR
BASE=${SIZES%% *}
rec_param sizes "$SIZES"
rec_param modes "$MODES"
rec_metric apply-ack-ms ms lower "time from launching sluicectl apply (one endpoint changed) to the last agent's ACK"
rec_metric change-ack-ms ms lower "time from the control plane taking that request to the last agent's ACK (its log)"
rec_metric push-bytes bytes lower "bytes the control plane sent both agents for that change"
rec_metric load-s s lower "time to load the services (files of ${BENCH_CONTROL_CHUNK:-2000}, one apply each) until both agents ACKed"
rec_metric load-cpu-control-ms ms lower "CPU time sluice-control used to load them"
rec_metric load-cpu-agent-ms ms lower "CPU time node1's agent used to load them"
rec_metric snapshot-bytes bytes lower "size of node1's snapshot"
rec_metric control-rss-kb KiB lower "resident memory of sluice-control"
rec_metric agent-rss-kb KiB lower "resident memory of node1's agent"
for n in $SIZES; do
	# both modes run: delta against full at each size
	if [[ " $MODES " = *" delta "* && " $MODES " = *" full "* ]]; then
		for m in apply-ack-ms change-ack-ms push-bytes load-s load-cpu-control-ms load-cpu-agent-ms \
			 control-rss-kb agent-rss-kb; do
			rec_compare "$m" "delta-svc-$n" "full-svc-$n"
		done
	fi
	[ "$n" = "$BASE" ] && continue
	for mode in $MODES; do
		for m in apply-ack-ms load-s load-cpu-control-ms load-cpu-agent-ms snapshot-bytes control-rss-kb agent-rss-kb; do
			rec_compare "$m" "$mode-svc-$n" "$mode-svc-$BASE"
		done
	done
done

# start MODE: a control plane pushing in MODE and two agents joined to it,
# on fresh state; sets CP, CPID, APID
declare -A APID
start() {
	CP=$TMP/control.$1
	export SLUICE_CREDENTIALS=$CP
	: >"$TMP/control.log"
	nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluice-control" --state-dir "$CP" --listen "$ADDR" \
		--push "$1" >"$TMP/control.log" 2>&1 &
	CPID=$!
	PIDS+=("$CPID")
	for _ in $(seq 100); do grep -q 'listening on' "$TMP/control.log" && break; sleep 0.05; done
	for n in node1 node2; do
		pin=/sys/fs/bpf/sluice-bench-$C-$1-$n
		AGENT_PINS+=("$pin")
		nsenter --net="/run/netns/slc.$C.$n" "$BIN/sluice-agent" --node "$n" \
			--cgroup "$("$SIM" list "$C" --json | jq -r --arg n "$n" '.nodes[] | select(.name == $n) | .cgroup')" \
			--pin-root "$pin" --control "https://$ADDR" --ca-file "$CP/ca.crt" --state-dir "$TMP/agent.$1.$n" \
			--join-token "$("$BIN/sluice-control" token create --state-dir "$CP" --node "$n")" \
			--flow-log none >"$TMP/agent.$n.log" 2>&1 &
		APID[$n]=$!
		PIDS+=("$!")
	done
	# both agents are watching (they ACKed a version) before any load:
	# the times below are the config's, not the agents' start
	why=$(wait_acked 0) || { rec_failed "$1-svc-${SIZES%% *}" "agents did not start: $why"; exit 1; }
}
# stop MODE: the control plane and agents of start, and their maps
stop() {
	kill "$CPID" "${APID[node1]}" "${APID[node2]}" 2>/dev/null
	wait "$CPID" "${APID[node1]}" "${APID[node2]}" 2>/dev/null
	for n in node1 node2; do
		"$BIN/sluice-agent" --node x --pin-root "/sys/fs/bpf/sluice-bench-$C-$1-$n" --uninstall >/dev/null 2>&1
	done
}

for mode in $MODES; do
	start "$mode"
	loaded=0 change=0
	for n in $SIZES; do
		var=$mode-svc-$n
		echo "bench: control plane, $mode push, $n services"
		# the chunks are written before the clock starts
		chunks=()
		K=${BENCH_CONTROL_CHUNK:-2000}
		for from in $(seq "$loaded" "$K" $((n - 1))); do
			services "$from" $((from + K > n ? n : from + K)) >"$TMP/chunk.$from.yaml"
			chunks+=("$TMP/chunk.$from.yaml")
		done
		t0=$(now_ms) c0=$(cpu_ms "$CPID") a0=$(cpu_ms "${APID[node1]}")
		for f in "${chunks[@]}"; do
			v=$(apply "$f") || { rec_failed "$var" "loading $f: $v"; exit 1; }
		done
		rm -f "${chunks[@]}"
		loaded=$n
		why=$(wait_acked "$v") || { rec_failed "$var" "loading $n services: $why"; exit 1; }
		rec_sample load-s "$var" 1 "$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN {printf "%.3f", (b - a) / 1000}')"
		rec_sample load-cpu-control-ms "$var" 1 $(( $(cpu_ms "$CPID") - c0 ))
		rec_sample load-cpu-agent-ms "$var" 1 $(( $(cpu_ms "${APID[node1]}") - a0 ))
		for r in $(seq "$ROUNDS"); do
			change=$((change + 1))
			services 0 1 "$change" >"$TMP/one.yaml"
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
		sleep 3   # resident memory once changes pause (sluice-control trims its heap then)
		rec_sample snapshot-bytes "$var" 1 "$(stat -c %s "$TMP/agent.$mode.node1/snapshot.json" 2>/dev/null || echo "fail:no snapshot on node1")"
		rec_sample control-rss-kb "$var" 1 "$(rss "$CPID" || echo "fail:sluice-control is gone")"
		rec_sample agent-rss-kb "$var" 1 "$(rss "${APID[node1]}" || echo "fail:node1's agent is gone")"
	done
	stop "$mode"
done
rec_done
