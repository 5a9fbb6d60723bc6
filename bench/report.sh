#!/bin/bash
# The report of a bench run: reads the run's JSON lines (bench/record.sh,
# bench/bench.sh) and writes PREFIX.json (the result: machine, kernel,
# commit, date, and per bench and variant every sample, the median, and the
# ratios to the baselines with their goals), PREFIX.md (the table) and
# PREFIX.png (the ratios against their goals; needs gnuplot), then prints
# the table. Without PREFIX it only prints the table. bench/README.md has
# the schema.
#
#   bench/report.sh RUN.jsonl [PREFIX]
#
# Exit status: 0 if every bench ran to the end and no variant failed, 1
# otherwise, 2 if the input cannot be read.
set -euo pipefail
IN=${1:?usage: bench/report.sh RUN.jsonl [PREFIX]}
PREFIX=${2:-}

# shellcheck disable=SC2016
RESULT=$(jq -s '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[(length - 1) / 2]
	else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def first_seen: reduce .[] as $x ([]; if any(.[]; . == $x) then . else . + [$x] end);
def stats($bs; $m; $v): ($bs | map(select(.metric == $m and .variant == $v))) as $x |
	{samples: [$x[] | select(.value != null) | {round, value} + (if .pair then {pair} else {} end)],
	 errors: [$x[] | select(.error != null) | {round, error}],
	 median: ([$x[] | select(.value != null) | .value] | median)};
def met($r): if .goal == null then null elif $r == null then false
	else .goal.op as $op | .goal.value as $g |
		if $op == ">=" then $r >= $g elif $op == "<=" then $r <= $g
		elif $op == ">" then $r > $g else $r < $g end end;
. as $L
| ($L | map(select(.type == "run")) | .[0] // {}) as $run
| ($L | map(select(.type == "sample"))) as $S
| ($L | map(select(.bench != null) | .bench) | first_seen) as $benches
| {schema: 1, date: $run.date, commit: $run.commit, kernel: $run.kernel, quick: $run.quick,
   machine: $run.machine, params: $run.params,
   benches: [$benches[] as $b
	| ($L | map(select(.type == "bench" and .bench == $b)) | .[0] // {}) as $info
	| ($S | map(select(.bench == $b))) as $bs
	| ($L | map(select(.type == "metric" and .bench == $b))) as $decl
	| (($decl | map(.metric)) + ($bs | map(.metric)) | first_seen) as $metrics
	| ([$L[] | select(.type == "failed" and .bench == $b) | {variant, reason}] +
	   [$bs | map(select(.error != null)) | group_by(.variant)[] |
		{variant: .[0].variant,
		 reason: "\(length) sample(s) failed, first \(.[0].metric) in round \(.[0].round): \(.[0].error)"}]) as $failures
	| {bench: $b, script: $info.script, exit: $info.exit, seconds: $info.seconds,
	   status: (if ($failures | length) > 0 or (($info.exit // 0) != 0) then "failed" else "ok" end),
	   params: ([$L[] | select(.type == "param" and .bench == $b) | {(.name): .value}] | add // {}),
	   failures: $failures,
	   metrics: [$metrics[] as $m | ($decl | map(select(.metric == $m)) | .[0] // {}) as $d
		| {metric: $m, unit: $d.unit, better: $d.better, about: $d.about,
		   variants: [($bs | map(select(.metric == $m) | .variant) | first_seen)[] as $v
			| {variant: $v} + stats($bs; $m; $v)
			| . + {status: (if (.errors | length) > 0 or any($failures[]; .variant == $v or .variant == "*")
					then "failed" else "ok" end)}]}],
	   ratios: [$L[] | select(.type == "compare" and .bench == $b) | . as $c
		| stats($bs; $c.metric; $c.variant) as $x | stats($bs; $c.metric; $c.baseline) as $y
		| (if $x.median != null and $y.median != null and $y.median != 0
		   then $x.median / $y.median else null end) as $r
		| {metric, variant, baseline, median: $x.median, baseline_median: $y.median, ratio: $r, goal,
		   ratio_by_round: ([$x.samples[] as $s
				| ($y.samples | map(select(.round == $s.round and .value != 0))) as $same
				| ($same | map(select(.pair == $c.variant))) as $paired
				| (if ($paired | length) > 0 then $paired else $same end)[]
				| $s.value / .value] | median)}
		| . + {met: met(.ratio_by_round // $r)}]}]}
| . + {failed: [.benches[] | .bench as $b | .failures[] | {bench: $b} + .]}
' "$IN") || { echo "bench/report.sh: cannot read $IN" >&2; exit 2; }

# shellcheck disable=SC2016
TABLE=$(jq -r '
def num: if . == null then "-" else (if . < 0 then -. else . end) as $a
	| if $a >= 1000 then round elif $a >= 100 then (. * 10 | round) / 10
	  elif $a >= 1 then (. * 100 | round) / 100 else (. * 1000 | round) / 1000 end | tostring end;
def ratio: if . == null then "-" else "\((. * 1000 | round) / 1000)x" end;
. as $r
| "## sluice bench, \(.date // "?")\(if .quick then " (QUICK)" else "" end)",
  "",
  (if .quick then "QUICK: one short round per variant, to show every bench runs end to end; its ratios are noise-prone, not a measurement to judge by.\n" else empty end),
  "commit \(.commit // "?"), kernel \(.kernel // "?"), \(.machine.cpu // "?"), \(.machine.cores // "?") cores, \(((.machine.memory_kib // 0) / 1048576 * 10 | round) / 10) GiB; \(.params.rounds // "?") rounds x \(.params.seconds // "?") s, \(.params.parallel // "?") client threads",
  "",
  "| bench | metric | variant | median | baseline | baseline median | ratio | per-round ratio | goal | met? |",
  "|---|---|---|---:|---|---:|---:|---:|---|---|",
  (.benches[] | .bench as $b | . as $bench | .ratios[]
	| (.metric as $m | [$bench.metrics[] | select(.metric == $m) | .unit][0] // "") as $u
	| "| \($b) | \(.metric) | \(.variant) | \(.median | num) \($u) | \(.baseline) | \(.baseline_median | num) \($u) | \(.ratio | ratio) | \(.ratio_by_round | ratio) | \(if .goal then "\(.goal.op) \(.goal.value)x" else "" end) | \(if .met == null then "" elif .met then "yes" elif .ratio == null then "no (no data)" else "**no**" end) |"),
  "",
  "Benches: " + ([.benches[] | "\(.bench) \(.status) (\(.seconds // "?") s)"] | join(", ")),
  (if (.failed | length) > 0 then "", "Failed:", (.failed[] | "- \(.bench) \(.variant): \(.reason)") else empty end)
' <<<"$RESULT")

if [ -n "$PREFIX" ]; then
	echo "$RESULT" >"$PREFIX.json"
	echo "$TABLE" >"$PREFIX.md"
	if command -v gnuplot >/dev/null; then
		"$(dirname "$0")/plot.sh" "$PREFIX.json" "$PREFIX.png" || echo "bench: the plot failed" >&2
	fi
fi
echo "$TABLE"
if [ -n "$PREFIX" ]; then
	echo
	echo "bench: $PREFIX.json, $PREFIX.md$([ -f "$PREFIX.png" ] && echo ", $PREFIX.png")"
fi
[ "$(jq '.failed | length' <<<"$RESULT")" -eq 0 ] &&
	[ "$(jq '[.benches[] | select(.status != "ok")] | length' <<<"$RESULT")" -eq 0 ]
