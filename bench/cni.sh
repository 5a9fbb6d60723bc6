#!/bin/bash
# Enrollment latency of containers started by podman through sluice-cni
# (bench "cni"): N containers (default 100) started back to back with
# `podman run -d` on a network chaining sluice-cni, then removed.
#
#   bench/cni.sh BUILD_DIR        (BENCH_CONTAINERS=N to change N)
#
# Figures, p50 / p99 / max over the containers:
#   add-ms    the agent's ADD, from the plugin's request to the answer,
#             which waits until the control plane has registered the
#             container and the snapshot holding it is applied (tc on the
#             veth, identity maps): when ADD returns, the container is
#             enrolled, so "enrollment after ADD returns" is 0
#   run-ms    `podman run -d` wall time, everything podman does included
#   del-ms    the agent's DEL (deregistration applied) under `podman rm -f`
# Results go to stdout and BUILD_DIR/bench/cni.txt.
set -euo pipefail
export SLUICE_BUILD=${1:?usage: bench/cni.sh BUILD_DIR}
N=${BENCH_CONTAINERS:-100}
. "$(dirname "$0")/../tests/e2e/lib.sh"
. "$(dirname "$0")/../tests/e2e/cni_lib.sh"

cni_init
cp_start_local
cat >"$TMP/mesh.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: bench, namespace: default}
spec:
  template: {serviceAccount: bench}
YAML
"$BIN/sluicectl" apply -f "$TMP/mesh.yaml" >"$TMP/apply.log" 2>&1 || fail "apply: $(cat "$TMP/apply.log")"
cni_agent_start

: >"$TMP/run.ms"
for i in $(seq "$N"); do
	t0=$(date +%s%N)
	run_ctr "c$i" bench app=bench >/dev/null || fail "podman run c$i failed"
	echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$TMP/run.ms"
done
for i in $(seq "$N"); do podman rm -f -t 0 "$T-c$i" >/dev/null; done

stats() { # FILE -> "p50 p99 max" (nearest rank)
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		p50 = int(NR * 0.50 + 0.999); p99 = int(NR * 0.99 + 0.999);
		printf "%d %d %d\n", v[p50], v[p99], v[NR] }'
}
grep -o 'cni: ADD [0-9a-f]* as .* done in [0-9]* ms' "$TMP/agent.log" | awk '{ print $(NF-1) }' >"$TMP/add.ms"
grep -o 'cni: DEL [0-9a-f]* as .* done in [0-9]* ms' "$TMP/agent.log" | awk '{ print $(NF-1) }' >"$TMP/del.ms"
[ "$(wc -l <"$TMP/add.ms")" -eq "$N" ] || fail "expected $N ADDs in the agent's log, found $(wc -l <"$TMP/add.ms")"
mkdir -p "$BUILD/bench"
{
	echo "# sluice-cni enrollment, $N podman containers back to back ($(date -u +%FT%TZ), $(uname -r))"
	echo "# metric  p50  p99  max  (ms)"
	echo "add-ms  $(stats "$TMP/add.ms")"
	echo "run-ms  $(stats "$TMP/run.ms")"
	echo "del-ms  $(stats "$TMP/del.ms")"
} | tee "$BUILD/bench/cni.txt"
