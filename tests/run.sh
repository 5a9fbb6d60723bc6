#!/bin/bash
# Run every test suite and end with one summary line.
#
#   tests/run.sh BUILD_DIR [e2e-test-name-filter]
#
# Suites: Criterion unit tests, the same under ASan+UBSan, every libFuzzer
# harness over its committed corpus (tests/fuzz/, one test per harness), BPF
# program tests (real kernel, real sockets) and end-to-end tests (tests/e2e/test_*.sh on a
# simulated cluster). An e2e script exits 0 (pass), 77 (skip, with the
# reason on its last line) or anything else (fail: its log is printed).
#
# Opt-in environment (the VM harness, vmtests/, uses them; unset, nothing
# changes):
#   SLUICE_SUITES="bpf e2e"   run only these suites (default: all five)
#   SLUICE_RESULTS=FILE       append one line per test: SUITE TEST STATUS [REASON]
#                             (STATUS pass, fail or skip)
#   SLUICE_E2E_ONLY="test_a test_b"   only these e2e scripts (default: all)
#   SLUICE_E2E_TIMEOUT=SECS   per e2e script (default 600)
set -uo pipefail

BUILD=${1:-build}
FILTER=${2:-}
OUT=$BUILD/test-results
rm -rf "$OUT"
mkdir -p "$OUT"
passed=0 failed=0 skipped=0
failures=()
SUITES=${SLUICE_SUITES:-unit unit-asan fuzz bpf e2e}
RESULTS=${SLUICE_RESULTS:-}
want() { [[ " $SUITES " = *" $1 "* ]]; }
result() { [ -z "$RESULTS" ] || printf '%s\n' "$*" >>"$RESULTS"; }

[ "$(id -u)" -eq 0 ] || echo "note: not root: BPF and end-to-end tests will be skipped" >&2

criterion_suite() {
	local name=$1 bin=$2 p f s
	shift 2
	printf '== %s\n' "$name"
	"$bin" --json="$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1
	if ! jq -e . "$OUT/$name.json" >/dev/null 2>&1; then
		echo "   $name: crashed before reporting"; cat "$OUT/$name.log"
		failed=$((failed + 1)); failures+=("$name")
		result "$name (suite) fail crashed before reporting"
		return
	fi
	[ -z "$RESULTS" ] || jq -r --arg suite "$name" '.test_suites[] | .name as $s | .tests[] |
		"\($suite) \($s)::\(.name) \(if .status == "PASSED" then "pass" elif .status == "SKIPPED"
		then "skip" else "fail" end) \(.messages // [] | join(" ") | gsub("\n"; " "))"' \
		"$OUT/$name.json" >>"$RESULTS"
	p=$(jq '.passed' "$OUT/$name.json")
	f=$(jq '.failed + .errored' "$OUT/$name.json")
	s=$(jq '.skipped' "$OUT/$name.json")
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	printf '   passed %d, failed %d, skipped %d\n' "$p" "$f" "$s"
	if [ "$f" -gt 0 ]; then
		grep -v '^\[----\] *$' "$OUT/$name.log" | grep -B2 -A8 -E 'FAIL|ERROR' | head -80
		while read -r t; do failures+=("$name: $t"); done < <(jq -r \
			'.test_suites[] | .name as $s | .tests[] | select(.status != "PASSED" and .status != "SKIPPED") | "\($s)::\(.name)"' \
			"$OUT/$name.json")
	fi
	# a sanitizer report (a leak is found as a test's process exits, after
	# Criterion has counted it as passed) fails the suite
	if grep -qE 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$OUT/$name.log"; then
		grep -E -A12 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$OUT/$name.log" | head -40
		failed=$((failed + 1)); failures+=("$name: sanitizer report (see $OUT/$name.log)")
		result "$name (suite) fail sanitizer report"
	fi
	if [ "$s" -gt 0 ]; then
		jq -r '.test_suites[] | .name as $s | .tests[] | select(.status == "SKIPPED") |
			"   skip \($s)::\(.name): \(.messages // [] | join(" "))"' "$OUT/$name.json" | sort -u | head -5
	fi
}

want unit && criterion_suite unit "$BUILD/tests/unit"
want unit-asan && criterion_suite unit-asan "$BUILD/tests/unit-asan"

# Each harness replays its committed inputs once (crashes found before and
# their fixes stay fixed); tests/fuzz/run.sh prints what failed.
fuzz_suite() {
	local src n
	printf '== fuzz\n'
	for src in tests/fuzz/fuzz_*.c; do
		n=$(basename "$src" .c)
		n=${n#fuzz_}
		if tests/fuzz/run.sh "$BUILD" --regress "$n" >"$OUT/fuzz-$n.log" 2>&1; then
			passed=$((passed + 1)); printf '   pass %-32s %s\n' "fuzz_$n" "$(tail -n1 "$OUT/fuzz-$n.log")"
			result "fuzz $n pass"
		else
			failed=$((failed + 1)); failures+=("fuzz: $n")
			result "fuzz $n fail"
			printf '   FAIL %-32s log:\n' "fuzz_$n"
			sed 's/^/      | /' "$OUT/fuzz-$n.log" | tail -40
		fi
	done
}
want fuzz && fuzz_suite
want bpf && criterion_suite bpf "$BUILD/tests/bpf" --jobs=2

want e2e && printf '== e2e\n'
export SLUICE_BUILD=$BUILD
for t in tests/e2e/test_*.sh; do
	want e2e || break
	n=$(basename "$t" .sh)
	[ -n "$FILTER" ] && [[ $n != *$FILTER* ]] && continue
	[ -n "${SLUICE_E2E_ONLY:-}" ] && [[ " $SLUICE_E2E_ONLY " != *" $n "* ]] && continue
	start=$(date +%s)
	timeout --kill-after=10 "${SLUICE_E2E_TIMEOUT:-600}" "$t" >"$OUT/$n.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) passed=$((passed + 1)); printf '   pass %-32s %4ds\n' "$n" "$secs"
	   result "e2e $n pass ${secs}s" ;;
	77) skipped=$((skipped + 1)); printf '   skip %-32s %s\n' "$n" "$(tail -n1 "$OUT/$n.log")"
	   result "e2e $n skip $(tail -n1 "$OUT/$n.log")" ;;
	*) # the script's own reason (lib.sh fail), for summaries that show no log
	   why=$(grep -m1 '^FAIL: ' "$OUT/$n.log" | cut -c1-240 | tr -d '\r')
	   failed=$((failed + 1)); failures+=("e2e: $n (exit $rc)${why:+ $why}")
	   result "e2e $n fail exit $rc after ${secs}s${why:+: $why}"
	   printf '   FAIL %-32s %4ds (exit %d), log:\n' "$n" "$secs" "$rc"
	   sed 's/^/      | /' "$OUT/$n.log" | tail -60 ;;
	esac
done

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "SUMMARY: passed=$passed failed=$failed skipped=$skipped (logs in $OUT)"
[ "$failed" -eq 0 ]
