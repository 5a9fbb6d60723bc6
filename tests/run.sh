#!/bin/bash
# Run every test suite and end with one summary line.
#
#   tests/run.sh BUILD_DIR [e2e-test-name-filter]
#
# Suites: Criterion unit tests, the same under ASan+UBSan, BPF program tests
# (real kernel, real sockets) and end-to-end tests (tests/e2e/test_*.sh on a
# simulated cluster). An e2e script exits 0 (pass), 77 (skip, with the
# reason on its last line) or anything else (fail: its log is printed).
set -uo pipefail

BUILD=${1:-build}
FILTER=${2:-}
OUT=$BUILD/test-results
rm -rf "$OUT"
mkdir -p "$OUT"
passed=0 failed=0 skipped=0
failures=()

[ "$(id -u)" -eq 0 ] || echo "note: not root: BPF and end-to-end tests will be skipped" >&2

criterion_suite() {
	local name=$1 bin=$2 p f s
	shift 2
	printf '== %s\n' "$name"
	"$bin" --json="$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1
	if ! jq -e . "$OUT/$name.json" >/dev/null 2>&1; then
		echo "   $name: crashed before reporting"; cat "$OUT/$name.log"
		failed=$((failed + 1)); failures+=("$name")
		return
	fi
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
	if [ "$s" -gt 0 ]; then
		jq -r '.test_suites[] | .name as $s | .tests[] | select(.status == "SKIPPED") |
			"   skip \($s)::\(.name): \(.messages // [] | join(" "))"' "$OUT/$name.json" | sort -u | head -5
	fi
}

criterion_suite unit "$BUILD/tests/unit"
criterion_suite unit-asan "$BUILD/tests/unit-asan"
criterion_suite bpf "$BUILD/tests/bpf" --jobs=2

printf '== e2e\n'
export SLUICE_BUILD=$BUILD
for t in tests/e2e/test_*.sh; do
	n=$(basename "$t" .sh)
	[ -n "$FILTER" ] && [[ $n != *$FILTER* ]] && continue
	start=$(date +%s)
	timeout --kill-after=10 600 "$t" >"$OUT/$n.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) passed=$((passed + 1)); printf '   pass %-32s %4ds\n' "$n" "$secs" ;;
	77) skipped=$((skipped + 1)); printf '   skip %-32s %s\n' "$n" "$(tail -n1 "$OUT/$n.log")" ;;
	*) failed=$((failed + 1)); failures+=("e2e: $n (exit $rc)")
	   printf '   FAIL %-32s %4ds (exit %d), log:\n' "$n" "$secs" "$rc"
	   sed 's/^/      | /' "$OUT/$n.log" | tail -60 ;;
	esac
done

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "SUMMARY: passed=$passed failed=$failed skipped=$skipped (logs in $OUT)"
[ "$failed" -eq 0 ]
