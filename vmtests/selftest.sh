#!/bin/bash
# Prove the VM harness fails when it should: run it on build/broken (made
# with `make BPF_TEST_BROKEN=1 BUILD=build/broken`, where xlate4 holds a ctx
# read the verifier rejects on every kernel; bpf/lib/test_broken.h) and
# expect a failed run whose verifier results show the rejection.
#
#   vmtests/selftest.sh [--kernels "6.1"]     (make vmtest-selftest)
#
# Runs the BPF suite only (the e2e suite adds nothing to the proof) on one
# kernel by default, 5.10, the oldest. Exit 0 when the harness caught the
# broken program; 1 when it passed it (the harness is broken).
set -uo pipefail
cd "$(dirname "$0")/.."

KERNELS=5.10
[ "${1:-}" = --kernels ] && KERNELS=$2
BUILD=build/broken
[ -x "$BUILD/tests/bpf" ] || { echo "selftest: $BUILD missing: make vmtest-selftest builds it" >&2; exit 2; }

echo "selftest: the harness must fail on $BUILD (BPF_TEST_BROKEN=1) on: $KERNELS"
vmtests/run.sh --build "$BUILD" --kernels "$KERNELS" --suites bpf >"$BUILD/vmtests-selftest.log" 2>&1
rc=$?
sed 's/^/  | /' "$BUILD/vmtests-selftest.log" | grep -E 'FAIL|verifier|rejected|vmtest:' | head -40

ok=1
[ "$rc" -ne 0 ] || { echo "selftest: FAIL: the VM run passed a datapath the verifier rejects"; ok=0; }
for k in $KERNELS; do
	v=$BUILD/vmtests/$k/verifier.txt
	if grep -q 'sl_connect4 .* rejected .*invalid bpf_context access' "$v" 2>/dev/null; then
		echo "selftest: $k: verifier rejected sl_connect4 as planted: $(grep 'sl_connect4' "$v" | sed 's/  */ /g')"
	else
		echo "selftest: FAIL: $k: no rejection of sl_connect4 in $v (the run failed for another reason?)"
		ok=0
	fi
	grep -q 'FAIL: verifier: sl_connect4' "$BUILD/vmtests/$k/verdict.txt" 2>/dev/null ||
		{ echo "selftest: FAIL: $k: the verdict does not name the rejected program"; ok=0; }
done
if [ "$ok" -eq 1 ]; then
	echo "selftest: ok: the harness failed the broken build (exit $rc), as it must"
	exit 0
fi
echo "selftest: harness did not catch the broken build; log: $BUILD/vmtests-selftest.log"
exit 1
