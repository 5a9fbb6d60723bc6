#!/bin/bash
# Run the libFuzzer harnesses (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh BUILD --seconds N NAME...      fuzz each for N seconds, in turn
#   tests/fuzz/run.sh BUILD --crash FILE NAME        run NAME on one input
#   tests/fuzz/run.sh BUILD --regress NAME...        run each on its committed corpus
#
# Fuzzing reads the committed seeds (tests/fuzz/corpus/NAME) and writes
# what it finds to BUILD/fuzz/corpus/NAME, crashes to BUILD/fuzz/crashes.
# One process at a time (no -jobs): the machine is shared. Exit status is
# non-zero if any harness failed.
set -uo pipefail

BUILD=$1
shift
mode=fuzz secs=60 crash=
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=$2; shift 2 ;;
	--crash) mode=crash crash=$2; shift 2 ;;
	--regress) mode=regress; shift ;;
	*) break ;;
	esac
done
FUZZ=$BUILD/fuzz
rc=0

# the harness's options: its dictionary, and no input larger than the
# biggest a test would need (the YAML limits are tested by unit tests)
opts() {
	local dict=tests/fuzz/$1.dict
	printf '%s\n' -max_len=65536 -timeout=20 -rss_limit_mb=2048
	[ -f "$dict" ] && printf '%s\n' "-dict=$dict"
}

fuzz_one() { # name
	local n=$1 log=$FUZZ/log/$1.log
	mkdir -p "$FUZZ/corpus/$n" "$FUZZ/crashes" "$FUZZ/log"
	mapfile -t o < <(opts "$n")
	"$FUZZ/fuzz_$n" "${o[@]}" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$FUZZ/crashes/$n-" "$FUZZ/corpus/$n" "tests/fuzz/corpus/$n" \
		>"$log" 2>&1
	local r=$?
	# "#123 DONE cov: 812 ft: 2301 corp: 140/9Kb ..." and the final stats
	local done execs eps
	done=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	printf '%-9s %s: execs=%s exec/s=%s cov=%s ft=%s corpus=%s\n' "$n" \
		"$([ $r -eq 0 ] && echo ok || echo FAIL)" "${execs:-?}" "${eps:-?}" \
		"$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done")" \
		"$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done")" \
		"$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$done")"
	if [ $r -ne 0 ]; then
		grep -E -A30 'ERROR: |runtime error|SUMMARY' "$log" | head -60
		ls "$FUZZ/crashes/$n-"* 2>/dev/null | sed 's/^/   input: /'
		rc=1
	fi
}

regress_one() { # name: every committed input once
	local n=$1 files
	mapfile -t files < <(find "tests/fuzz/corpus/$n" -type f | sort)
	if [ ${#files[@]} -eq 0 ]; then
		echo "$n: no committed corpus"; rc=1; return
	fi
	if ! "$FUZZ/fuzz_$n" -timeout=20 -rss_limit_mb=2048 "${files[@]}" >"$FUZZ/log/$n.regress.log" 2>&1; then
		echo "$n: FAIL on its corpus (${#files[@]} inputs):"
		grep -E -B2 -A30 'ERROR: |runtime error' "$FUZZ/log/$n.regress.log" | head -60
		rc=1
		return
	fi
	echo "$n: ${#files[@]} inputs ok"
}

mkdir -p "$FUZZ/log"
for n in "$@"; do
	[ -x "$FUZZ/fuzz_$n" ] || { echo "no harness $FUZZ/fuzz_$n" >&2; rc=1; continue; }
	case $mode in
	fuzz) fuzz_one "$n" ;;
	regress) regress_one "$n" ;;
	crash) "$FUZZ/fuzz_$n" -timeout=20 "$crash" || rc=1 ;;
	esac
done
exit $rc
