#!/bin/bash
# Judge one VM run against the kernel's expected-skip list.
#
#   vmtests/check-results.sh RAW SKIPLIST [SUITES]
#
# RAW is what the VM wrote to its second serial port (vm-init.sh's protocol).
# SKIPLIST is vmtests/skips/<kernel>.txt (may be missing: nothing may skip).
# SUITES (default "bpf e2e") must each have reported at least one test.
# Prints one line per problem and a closing count; exit 0 only when the VM
# finished, every program passed the verifier, every needed module loaded,
# no test failed, and every skip is listed (with its reason).
#
# Skip list lines: SUITE TEST SINCE REASON...   (# starts a comment)
#   SUITE  bpf or e2e; TEST as in the results (sock::name, test_name)
#   SINCE  the kernel version that added what the test needs (e.g. 5.18)
set -uo pipefail

RAW=${1:?usage: check-results.sh RAW SKIPLIST [SUITES]}
SKIPS=${2:?usage: check-results.sh RAW SKIPLIST [SUITES]}
SUITES=${3:-bpf e2e}
bad=0
problem() { echo "  FAIL: $*"; bad=$((bad + 1)); }

if [ ! -s "$RAW" ]; then
	echo "  FAIL: the VM wrote no results (did it boot? see console.log)"
	exit 1
fi
tr -d '\r' <"$RAW" >"$RAW.txt"
RAW=$RAW.txt

end=$(sed -n 's/^@@end //p' "$RAW" | tail -n1)
[ -n "$end" ] || problem "the VM did not finish (no @@end: crashed, hung or timed out; see console.log)"

# the verifier must accept every program
while read -r _ prog sec verdict rest; do
	[ "$verdict" = accepted ] || problem "verifier: $prog ($sec) $verdict: $(tr -s ' ' <<<"$rest")"
done < <(grep '^verifier ' "$RAW" | grep -v '^verifier #')
vrc=$(sed -n 's/^verifier_rc //p' "$RAW")
[ -z "$end" ] || [ "${vrc:-x}" = 0 ] || [ "$bad" -gt 0 ] || problem "verifier-stats exited ${vrc:-?}"

while read -r _ m st rest; do
	[ "$st" = failed ] && problem "module $m failed to load: $rest"
done < <(grep '^module ' "$RAW")

declare -A listed=()
if [ -f "$SKIPS" ]; then
	while read -r suite test since reason; do
		[[ -z $suite || $suite = \#* ]] && continue
		[ -n "$reason" ] || problem "skip list $SKIPS: $suite $test has no SINCE and REASON"
		listed["$suite $test"]="$since $reason"
	done <"$SKIPS"
fi

pass=0 fail=0 skip=0
declare -A seen=() suite_n=()
while read -r _ suite test status reason; do
	seen["$suite $test"]=$status
	suite_n[$suite]=$((${suite_n[$suite]:-0} + 1))
	case $status in
	pass) pass=$((pass + 1))
	      [ -n "${listed["$suite $test"]:-}" ] &&
		echo "  note: $suite $test passes but is on the skip list (${listed["$suite $test"]}): remove it?" ;;
	skip) skip=$((skip + 1))
	      if [ -n "${listed["$suite $test"]:-}" ]; then
		echo "  skip (listed): $suite $test: ${listed["$suite $test"]} [test said: $reason]"
	      else
		problem "unexpected skip: $suite $test: $reason (not in $SKIPS)"
	      fi ;;
	*) fail=$((fail + 1)); problem "$suite $test: $status${reason:+ ($reason)}" ;;
	esac
done < <(grep '^result ' "$RAW")

for s in $SUITES; do
	[ "${suite_n[$s]:-0}" -gt 0 ] || problem "suite $s reported no tests"
done
[ -z "$end" ] || [ "$end" = 0 ] || [ "$fail" -gt 0 ] || [ "$bad" -gt 0 ] ||
	problem "tests/run.sh exited $end"

echo "  tests: $pass passed, $fail failed, $skip skipped; problems: $bad"
[ "$bad" -eq 0 ]
