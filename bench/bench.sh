#!/bin/bash
# make bench: every bench script in turn, each bounded in time, then the
# report (bench/report.sh): bench/results/<stamp>.json, .md and .png, and
# the markdown table on stdout. A bench that fails is recorded as failed
# with its reason and the next one still runs; the exit status is 1 if
# any bench or variant failed.
#
#   bench/bench.sh BUILD_DIR [--quick]
#
# --quick (make bench QUICK=1): every script end to end in about two
# minutes: 1 round, 1 s per measurement, 2 client threads, control plane
# sizes 10 and 1,000. BENCH_ROUNDS, BENCH_SECONDS, BENCH_PARALLEL,
# BENCH_CONTROL_SIZES set in the environment still win. BENCH_TIMEOUT
# bounds each script (seconds; 1800, or 300 with --quick).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?usage: bench/bench.sh BUILD_DIR [--quick]}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
QUICK=0
[ "${2:-}" = --quick ] && QUICK=1
if [ "$QUICK" = 1 ]; then
	export BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_SECONDS=${BENCH_SECONDS:-1} BENCH_PARALLEL=${BENCH_PARALLEL:-2}
	export BENCH_CONTROL_SIZES=${BENCH_CONTROL_SIZES:-10 1000}
	export BENCH_FANOUT_AGENTS=${BENCH_FANOUT_AGENTS:-10} BENCH_FANOUT_SIZE=${BENCH_FANOUT_SIZE:-1000}
	LIMIT=${BENCH_TIMEOUT:-300}
else
	LIMIT=${BENCH_TIMEOUT:-1800}
fi
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF, cgroups, network namespaces)" >&2; exit 1; }
command -v gnuplot >/dev/null || echo "bench: gnuplot missing (make deps): no plot" >&2

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BUILD/bench" "$ROOT/bench/results"
export BENCH_JSONL=$BUILD/bench/run-$STAMP.jsonl
jq -nc --arg date "$(date -u +%FT%TZ)" --arg commit "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg kernel "$(uname -r)" --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
	--argjson cores "$(nproc)" --argjson mem "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" \
	--argjson quick "$QUICK" --arg rounds "${BENCH_ROUNDS:-5}" --arg secs "${BENCH_SECONDS:-3}" \
	--arg par "${BENCH_PARALLEL:-4}" \
	'{type: "run", date: $date, commit: $commit, kernel: $kernel, quick: ($quick == 1),
	  machine: {cpu: $cpu, cores: $cores, memory_kib: $mem},
	  params: {rounds: ($rounds | tonumber), seconds: ($secs | tonumber), parallel: ($par | tonumber)}}' >"$BENCH_JSONL"

t_all=$(date +%s)
for x in lb:run.sh policy:policy.sh resilience:resilience.sh fastpath:fastpath.sh control:control.sh fanout:fanout.sh hbone:hbone.sh; do
	name=${x%%:*} script=bench/${x#*:}
	echo "=== bench: $name ($script)"
	t0=$(date +%s)
	# the script's stderr is shown and kept for the reason of a failure;
	# timeout signals the script's whole process group, whose EXIT trap
	# then removes what it set up
	{ timeout --kill-after=30 "$LIMIT" "$ROOT/$script" "$BUILD" 2>&1 1>&3 | tee "$BUILD/bench/$name.err" >&2; } 3>&1
	rc=${PIPESTATUS[0]}
	secs=$(( $(date +%s) - t0 ))
	jq -nc --arg b "$name" --arg s "$script" --argjson rc "$rc" --argjson t "$secs" \
		'{type: "bench", bench: $b, script: $s, exit: $rc, seconds: $t}' >>"$BENCH_JSONL"
	if [ "$rc" -ne 0 ]; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			why="stopped after the limit of $LIMIT s"
		else   # the script's own message: its last "bench:" or "FAIL:" line
			why=$(grep -E '^(bench: |FAIL: )' "$BUILD/bench/$name.err" | tail -n 1)
			why=${why:-$(grep -v '^[[:space:]]*$' "$BUILD/bench/$name.err" | tail -n 1)}
		fi
		jq -nc --arg b "$name" --arg why "$script exited $rc after $secs s: ${why:-no message}" \
			'{type: "failed", bench: $b, variant: "*", reason: $why}' >>"$BENCH_JSONL"
	fi
	echo "=== bench: $name: exit $rc after $secs s"
done
echo "=== bench: all scripts in $(( $(date +%s) - t_all )) s"
"$ROOT/bench/report.sh" "$BENCH_JSONL" "$ROOT/bench/results/$STAMP"
