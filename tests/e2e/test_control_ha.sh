#!/bin/bash
# Control plane replicas on a 3-member etcd cluster: etcd member i and
# sluice-control replica i run in node i's network namespace (192.168.77.i);
# the agents of node1 and node2 are given all three replicas' addresses.
# a) a loop of applies, to the replicas in turn, while the replica node1's
#    agent watches is killed (SIGKILL): the agent moves to another replica
#    within 2 s, every apply that succeeded is stored, none is half stored,
#    both agents converge to the newest version;
# b) one etcd member killed: applies go on; a second one killed: an apply
#    fails with a clear error within seconds, traffic still flows on the
#    last config;
# c) every etcd member and replica killed and started again: the agents
#    converge to the newest version.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
command -v etcd >/dev/null || skip "etcd is not installed (Debian: etcd-server; scripts/install-deps.sh)"
t_start=$(date +%s%3N)
e2e_init 3 1
[ -x "$BIN/sluice-control" ] || fail "$BIN/sluice-control missing: run make first"
ETCD=http://192.168.77.1:2379,http://192.168.77.2:2379,http://192.168.77.3:2379
STORE=etcd://192.168.77.1:2379,192.168.77.2:2379,192.168.77.3:2379
URLS=(https://192.168.77.1:15012 https://192.168.77.2:15012 https://192.168.77.3:15012)
# nsenter itself, not a shell function, runs each daemon: $! is the process
declare -A ETCD_PID RPID
now_ms() { date +%s%3N; }
log_ms() { date -d "$(cut -d' ' -f1 <<<"$1")" +%s%3N; }   # a log line's time stamp

etcd_start() { # I
	local i=$1
	nsenter --net="/run/netns/slc.$CL.node$i" etcd --name "m$i" --data-dir "$TMP/etcd.$i" \
		--listen-client-urls "http://192.168.77.$i:2379" --advertise-client-urls "http://192.168.77.$i:2379" \
		--listen-peer-urls "http://192.168.77.$i:2380" --initial-advertise-peer-urls "http://192.168.77.$i:2380" \
		--initial-cluster "m1=http://192.168.77.1:2380,m2=http://192.168.77.2:2380,m3=http://192.168.77.3:2380" \
		--initial-cluster-state new --initial-cluster-token "$CL" \
		--heartbeat-interval 50 --election-timeout 500 --logger zap --log-level error >>"$TMP/etcd.$i.log" 2>&1 &
	ETCD_PID[$i]=$!
	E2E_PIDS+=("$!")
}
etcd_healthy() { # wait until the cluster has a leader (10 s)
	local i
	for i in $(seq $((200 * SCALE))); do
		ETCDCTL_API=3 in_node node1 etcdctl --endpoints "$ETCD" --command-timeout=1s \
			put /sluice-e2e/probe 1 >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "etcd cluster did not come up"
}
# replica_start I... : start replicas at once, wait until all listen
replica_start() {
	local i
	declare -A n0
	for i in "$@"; do
		n0[$i]=$(grep -c 'listening on' "$TMP/control.$i.log" 2>/dev/null || true)
		nsenter --net="/run/netns/slc.$CL.node$i" "$BIN/sluice-control" --state-dir "$TMP/cp.$i" --listen "192.168.77.$i:15012" \
			--store "$STORE" --store-key "$TMP/store.key" >>"$TMP/control.$i.log" 2>&1 &
		RPID[$i]=$!
		E2E_PIDS+=("$!")
	done
	for i in "$@"; do wait_log "$TMP/control.$i.log" 'listening on' $((n0[$i] + 1)); done
}
# rctl I COMMAND ARGS... : sluicectl against replica I (any replica's admin
# credentials do: one CA)
rctl() { in_node node1 "$BIN/sluicectl" "$2" --control="${URLS[$(($1 - 1))]}" "${@:3}"; }
ha_agent() { # NODE URL_LIST
	local node=$1 tok=()
	E2E_NODES+=("$node")
	tok=(--join-token "$(in_node node1 "$BIN/sluice-control" token create --store "$STORE" --node "$node")") ||
		fail "token create for $node failed"
	nsenter --net="/run/netns/slc.$CL.$node" "$BIN/sluice-agent" --node "$node" --cgroup "$(node_cgroup "$node")" \
		--pin-root "$(pin_root "$node")" --control "$2" --ca-file "$TMP/cp.1/ca.crt" \
		--state-dir "$TMP/agent-state.$node" "${tok[@]}" >>"$TMP/agent.$node.log" 2>&1 &
	E2E_PIDS+=("$!")
	wait_log "$TMP/agent.$node.log" 'programs attached' 1
}
# newest: the highest config version any live replica reports
newest() {
	local i v m=0
	for i in 1 2 3; do
		kill -0 "${RPID[$i]}" 2>/dev/null || continue
		v=$(rctl "$i" status -o json 2>/dev/null | jq .config_version) || continue
		[ "${v:-0}" -gt "$m" ] && m=$v
	done
	echo "$m"
}
# ha_converged VERSION NODE... : each node is connected to some live replica
# that is at VERSION, and has ACKed VERSION there (15 s)
ha_converged() {
	local want=$1 i n st ok
	shift
	for _ in $(seq $((300 * SCALE))); do
		ok=0
		for n in "$@"; do
			for i in 1 2 3; do
				kill -0 "${RPID[$i]}" 2>/dev/null || continue
				st=$(rctl "$i" status -o json 2>/dev/null) || continue
				jq -e --arg n "$n" --argjson v "$want" '.config_version == $v and
					any(.agents[]; .node == $n and .connected and .in_sync and .acked == $v)' \
					<<<"$st" >/dev/null && { ok=$((ok + 1)); break; }
			done
		done
		[ "$ok" -eq $# ] && return 0
		sleep 0.1
	done
	fail "agents $* did not converge to version $want"
}

"$BIN/sluice-control" store-key create "$TMP/store.key" >/dev/null
for i in 1 2 3; do etcd_start "$i"; done
etcd_healthy
replica_start 1   # creates the CA in etcd; the others load it
replica_start 2 3
export SLUICE_CREDENTIALS=$TMP/cp.1
# node1 starts on replica 1, node2 on replica 2
ha_agent node1 "${URLS[0]},${URLS[1]},${URLS[2]}"
ha_agent node2 "${URLS[1]},${URLS[2]},${URLS[0]}"
wait_log "$TMP/control.1.log" 'node node1 watching' 1
wait_log "$TMP/control.2.log" 'node node2 watching' 1
note "etcd m1-m3 and replicas r1-r3 up, node1 watches r1, node2 watches r2 ($(( $(now_ms) - t_start )) ms)"

workloads '{"node1.pod1": {"app": "client"}, "node2.pod1": {"app": "web"}}' >"$TMP/base.yaml"
cat >>"$TMP/base.yaml" <<'EOF2'
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.10
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
EOF2
rctl 1 apply -f "$TMP/base.yaml" >/dev/null || fail "apply refused"
ha_converged "$(newest)" node1 node2
serve node2.pod1 b1 --tcp 8080
in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80 | grep -q '"ok":true' || fail "no traffic to the VIP"

# -- a) applies to the replicas in turn; node1's replica killed meanwhile.
# Apply I stores two ServiceEntries, loop-I and pair-I, and moves the
# endpoint of ServiceEntry cur to 10.201.0.I: one transaction or nothing.
change() { # I
	local i=$1
	for n in loop pair cur; do
		printf -- "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
		if [ $n = cur ]; then
			printf "  name: cur\n  namespace: default\nspec:\n  hosts: [cur.ha.test]\n"
			printf "  addresses: [10.97.0.1]\n"
		else
			printf "  name: %s-%d\n  namespace: default\nspec:\n  hosts: [%s-%d.ha.test]\n" $n "$i" $n "$i"
			printf "  addresses: [10.97.%d.%d]\n" "$([ $n = loop ] && echo 1 || echo 2)" "$i"
		fi
		printf "  ports:\n  - {number: 80, name: tcp, protocol: TCP, targetPort: 8080}\n"
		printf "  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints:\n  - {address: 10.201.0.%d}\n" "$i"
	done
}
N=15
(
	for i in $(seq "$N"); do
		change "$i" >"$TMP/change.$i.yaml"
		r=$(( (i - 1) % 3 + 1 ))
		if out=$(rctl "$r" apply -f "$TMP/change.$i.yaml" 2>&1); then
			echo "$i ok r$r" >>"$TMP/applies"
		else
			echo "$i failed r$r: $(tr '\n' ' ' <<<"$out")" >>"$TMP/applies"
		fi
		sleep 0.2
	done
) &
applier=$!
E2E_PIDS+=("$applier")
wait_log "$TMP/applies" . 4
n2=$(grep -c 'node node1 watching' "$TMP/control.2.log" || true)
n3=$(grep -c 'node node1 watching' "$TMP/control.3.log" || true)
t_kill=$(now_ms)
kill -KILL "${RPID[1]}"
for _ in $(seq $((100 * SCALE))); do
	[ "$(grep -c 'node node1 watching' "$TMP/control.2.log" || true)" -gt "$n2" ] && { new=2; break; }
	[ "$(grep -c 'node node1 watching' "$TMP/control.3.log" || true)" -gt "$n3" ] && { new=3; break; }
	sleep 0.02
done
[ -n "${new:-}" ] || fail "node1's agent watches no other replica 5 s after r1 was killed"
line=$(grep 'node node1 watching' "$TMP/control.$new.log" | tail -n 1)
failover=$(( $(log_ms "$line") - t_kill ))
note "r1 killed; node1's agent watches r$new ${failover} ms later: ${line#* }"
note "agent: $(grep 'moving from' "$TMP/agent.node1.log" | tail -n 1 | cut -d' ' -f4-)"
[ "$failover" -le 2000 ] || fail "failover took $failover ms (limit 2000)"
wait "$applier" || true
oks=$(grep -c ' ok ' "$TMP/applies" || true)
note "applies: $oks of $N succeeded; failed: $(grep -c failed "$TMP/applies" || true) ($(grep failed "$TMP/applies" | head -n 2 | cut -c1-150 | tr '\n' ';'))"
[ "$oks" -ge $((N / 2)) ] || fail "too few applies succeeded: $(cat "$TMP/applies")"
got=$(rctl 2 get se -o json | jq -c '[.[].metadata.name]')
for i in $(awk '/ ok / {print $1}' "$TMP/applies"); do
	jq -e --arg n "loop-$i" 'index($n)' <<<"$got" >/dev/null || fail "apply $i succeeded but loop-$i is missing: $got"
done
loops=$(jq -c '[.[] | select(startswith("loop-")) | ltrimstr("loop-")] | sort' <<<"$got")
pairs=$(jq -c '[.[] | select(startswith("pair-")) | ltrimstr("pair-")] | sort' <<<"$got")
[ "$loops" = "$pairs" ] || fail "half-applied changes: loop $loops, pair $pairs"
last=$(jq '[.[] | select(startswith("loop-")) | ltrimstr("loop-") | tonumber] | max' <<<"$got")
cur=$(rctl 3 get se cur -o json | jq -r 'if type == "array" then .[0] else . end | .spec.endpoints[0].address')
[ "$cur" = "10.201.0.$last" ] || fail "cur's endpoint is $cur, the last stored change is $last"
v=$(newest)
ha_converged "$v" node1 node2
note "every successful apply stored, none half (loop/pair $(jq length <<<"$loops") each), agents at version $v"

# -- b) etcd loses one member, then two
kill -KILL "${ETCD_PID[3]}"
change 101 >"$TMP/change.101.yaml"
t0=$(now_ms)
rctl 2 apply -f "$TMP/change.101.yaml" >/dev/null || fail "apply failed with one etcd member down"
note "etcd m3 killed: apply through r2 took $(( $(now_ms) - t0 )) ms"
kill -KILL "${ETCD_PID[2]}"
change 102 >"$TMP/change.102.yaml"
t0=$(now_ms)
out=$(rctl 3 apply -f "$TMP/change.102.yaml" 2>&1) && fail "apply succeeded without etcd quorum: $out"
dt=$(( $(now_ms) - t0 ))
note "etcd m2 killed too: apply failed after $dt ms: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
grep -q 'etcd' <<<"$out" || fail "the error does not say etcd: $out"
[ "$dt" -le 20000 ] || fail "the failing apply took $dt ms"
in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80 | grep -q '"ok":true' ||
	fail "traffic stopped without etcd quorum"
note "traffic to 10.96.0.10 still flows on the last config"

# -- c) everything killed and started again
for i in 1 2 3; do
	kill -KILL "${RPID[$i]}" "${ETCD_PID[$i]}" 2>/dev/null || true
done
t0=$(now_ms)
for i in 1 2 3; do etcd_start "$i"; done
etcd_healthy
replica_start 1 2 3
change 103 >"$TMP/change.103.yaml"
rctl 1 apply -f "$TMP/change.103.yaml" >/dev/null || fail "apply after the restart refused"
v=$(newest)
ha_converged "$v" node1 node2
note "etcd and replicas restarted: agents at version $v $(( $(now_ms) - t0 )) ms after the restart began"
rctl 2 get se loop-101 >/dev/null || fail "loop-101 lost across the restart"
# the failed apply: refused before etcd got it (nothing changed), or in
# doubt (a member logged it; it commits if that member's log wins)
if rctl 2 get se loop-102 >/dev/null 2>&1; then
	grep -q 'may still take effect' <<<"$out" || fail "loop-102 stored although its apply said nothing changed: $out"
	note "the apply in doubt took effect after the restart (etcd m1 had it in its log)"
else
	note "the failed apply is not stored"
fi
in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80 | grep -q '"ok":true' || fail "no traffic after the restart"
note "total $(( $(now_ms) - t_start )) ms"
