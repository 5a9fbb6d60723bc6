# shellcheck shell=bash
# Results as data: every bench script appends one JSON object per line to
# $BENCH_JSONL, and bench/report.sh turns the file into the run's JSON
# result, markdown table and plot (bench/README.md has the line types).
# Sourcing this file only defines functions and the two variables below.
#
#   BENCH        the bench's name (default: the script's name); set it
#                before sourcing
#   BENCH_JSONL  the run's file (bench/bench.sh sets it); a script run on
#                its own writes BUILD/bench/BENCH.jsonl, emptied first, and
#                prints its table at the end (rec_done)

BENCH=${BENCH:-$(basename "$0" .sh)}
if [ -z "${BENCH_JSONL:-}" ]; then
	BENCH_JSONL=$BUILD/bench/$BENCH.jsonl
	BENCH_ALONE=1
	mkdir -p "$(dirname "$BENCH_JSONL")"
	: >"$BENCH_JSONL"
fi

# rec_metric METRIC UNIT BETTER(higher|lower) ABOUT
rec_metric() {
	jq -nc --arg b "$BENCH" --arg m "$1" --arg u "$2" --arg better "$3" --arg about "$4" \
		'{type: "metric", bench: $b, metric: $m, unit: $u, better: $better, about: $about}' >>"$BENCH_JSONL"
}

# rec_sample METRIC VARIANT ROUND VALUE [PAIR]: VALUE is a number, or
# anything else (by convention "fail:REASON"), which is recorded as the
# sample's error: the variant is then failed in the report. PAIR names the
# variant this baseline sample was taken next to: the per-round ratio of
# that variant then divides by this sample alone, not by every sample of
# the baseline in the round (report.sh).
rec_sample() {
	local v=$4 pair=${5:-}
	if [[ $v =~ ^[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ || $v =~ ^\.[0-9]+$ ]]; then
		jq -nc --arg b "$BENCH" --arg m "$1" --arg var "$2" --argjson r "$3" --arg v "$v" --arg p "$pair" \
			'{type: "sample", bench: $b, metric: $m, variant: $var, round: $r, value: ($v | tonumber)}
			 + (if $p == "" then {} else {pair: $p} end)'
	else
		v=${v#fail:}
		jq -nc --arg b "$BENCH" --arg m "$1" --arg var "$2" --argjson r "$3" --arg e "${v:-no value}" \
			'{type: "sample", bench: $b, metric: $m, variant: $var, round: $r, error: $e}'
		echo "bench: $BENCH $2 $1 round $3 failed: ${v:-no value}" >&2
	fi >>"$BENCH_JSONL"
}

# rec_compare METRIC VARIANT BASELINE [OP GOAL]: report VARIANT's median
# over BASELINE's as a ratio, with its goal (OP one of >= <= > <)
rec_compare() {
	jq -nc --arg b "$BENCH" --arg m "$1" --arg var "$2" --arg base "$3" --arg op "${4:-}" --arg g "${5:-}" \
		'{type: "compare", bench: $b, metric: $m, variant: $var, baseline: $base,
		  goal: (if $op == "" then null else {op: $op, value: ($g | tonumber)} end)}' >>"$BENCH_JSONL"
}

# rec_failed VARIANT REASON: VARIANT ("*": the whole bench) could not be
# measured
rec_failed() {
	jq -nc --arg b "$BENCH" --arg var "$1" --arg why "$2" \
		'{type: "failed", bench: $b, variant: $var, reason: $why}' >>"$BENCH_JSONL"
	echo "bench: $BENCH $1 failed: $2" >&2
}

# rec_param NAME VALUE: a setting of this bench's run (rounds, seconds...)
rec_param() {
	jq -nc --arg b "$BENCH" --arg n "$1" --arg v "$2" \
		'{type: "param", bench: $b, name: $n, value: ($v | tonumber? // $v)}' >>"$BENCH_JSONL"
}

# rec_done: a script run on its own prints its table
rec_done() {
	[ -z "${BENCH_ALONE:-}" ] || "$(dirname "${BASH_SOURCE[0]}")/report.sh" "$BENCH_JSONL"
}
