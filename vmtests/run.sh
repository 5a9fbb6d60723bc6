#!/bin/bash
# The BPF and end-to-end suites in QEMU (TCG) on Debian's cloud kernels.
#
#   vmtests/run.sh [--build DIR] [--kernels "5.10 6.1 6.12"] [--image BZIMAGE]
#                  [--suites "bpf e2e"] [--e2e "test_a test_b"]
#
# For each kernel: fetch it through apt (fetch-kernel.sh, cached under
# build/vmtests/<kernel>/kernel), build the initramfs (mkinitramfs.sh: the
# test binaries of --build, host tools, the kernel's modules), boot it, and
# judge what the VM reports (check-results.sh, against skips/<kernel>.txt).
# --image runs a local bzImage instead (label "custom", no modules; its skip
# list is skips/<major.minor>.txt when there is one).
#
# Every kernel runs the whole BPF suite and the e2e suite but for the
# scripts listed in vmtests/newest-only.txt, which run on 6.12 alone (and
# natively): userspace tests whose kernel steps other tests take everywhere.
# --e2e (or a custom --image) runs what it names on every kernel.
#
# Results per kernel in BUILD/vmtests/<kernel>/: console.log (the serial
# console, kept), results.txt (SUITE TEST STATUS REASON), verifier.txt,
# probe.txt (the agent's feature-probe log), raw.txt (all the VM reported).
# BUILD/vmtests/verifier.txt is the combined table (with the host kernel),
# BUILD/vmtests/summary.txt the matrix. Exit status 0 only if every kernel
# passed. The last line is "vmtest: N passed, N failed, N skipped".
#
# Environment: VMTEST_TIMEOUT (seconds per VM, default 1500),
# VMTEST_TIME_SCALE (the e2e waits' multiplier in the VM, default 5),
# VMTEST_MEM (default 2G), VMTEST_CACHE (kernels and apt, default
# build/vmtests), VMTEST_DEBUG_SCRIPT (a script the VM runs instead of the
# suites, its output on the console).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

BUILD=build
KERNELS="5.10 6.1 6.12"
IMAGE=
SUITES="bpf e2e"
E2E=
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--kernels) KERNELS=$2; shift 2 ;;
	--image) IMAGE=$2; shift 2 ;;
	--suites) SUITES=$2; shift 2 ;;
	--e2e) E2E=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "vmtests/run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
BUILD=${BUILD%/}
CACHE=${VMTEST_CACHE:-build/vmtests}
OUT=$BUILD/vmtests
TIMEOUT=${VMTEST_TIMEOUT:-1500}
SCALE=${VMTEST_TIME_SCALE:-5}
MEM=${VMTEST_MEM:-2G}
[ "$(id -u)" -eq 0 ] || { echo "vmtests/run.sh: needs root (apt, the suites' setup)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "vmtests/run.sh: qemu-system-x86_64 missing (make deps)" >&2; exit 1; }
mkdir -p "$OUT" "$CACHE"

if [ -n "$IMAGE" ]; then
	[ -f "$IMAGE" ] || { echo "vmtests/run.sh: $IMAGE: no such file" >&2; exit 1; }
	KERNELS=custom
fi

t_start=$(date +%s)
echo "vmtest: kernels: $KERNELS; suites: $SUITES${E2E:+ (e2e: $E2E)}; build: $BUILD"

# the initramfs part every kernel shares
echo "vmtest: initramfs (test binaries of $BUILD, host tools, busybox)"
"$HERE/mkinitramfs.sh" common "$BUILD" "$OUT/common.cpio.gz"

# the version of a bzImage, from its setup header (kernel_version pointer)
image_version() {
	local off
	off=$(od -An -tu2 -j $((0x20e)) -N2 "$1" | tr -d ' ')
	[ -n "$off" ] && [ "$off" -gt 0 ] || return 0
	dd if="$1" bs=1 skip=$((off + 0x200)) count=128 status=none | tr '\0' '\n' | sed -n '1s/ .*//p'
}

cmdline() { # [E2E list]
	local c="console=ttyS0 panic=-1 quiet random.trust_cpu=on"
	c+=" sluice.suites=$(tr ' ' ',' <<<"$SUITES") sluice.timescale=$SCALE sluice.e2etimeout=300"
	[ -n "${1:-}" ] && c+=" sluice.e2e=$(tr ' ' ',' <<<"$1")"
	echo "$c"
}

# e2e_for KERNEL: the e2e scripts its VM runs ("" = all)
NEWEST=6.12
e2e_for() {
	local t n out=
	[ -z "$E2E" ] || { echo "$E2E"; return 0; }
	case $1 in "$NEWEST" | custom) return 0 ;; esac
	for t in tests/e2e/test_*.sh; do
		n=$(basename "$t" .sh)
		grep -qE "^$n([[:space:]]|\$)" "$HERE/newest-only.txt" || out+="${out:+ }$n"
	done
	echo "$out"
}

declare -A ST_BOOT=() ST_SUITE=() ST_WALL=() ST_VERDICT=() ST_COUNTS=() ST_REL=()
total_pass=0 total_fail=0 total_skip=0 failed_kernels=()

run_kernel() {
	local k=$1 kd d vmlinuz skips init t0 t1 rc=0 counts label e2e
	d=$OUT/$k
	rm -rf "$d"
	mkdir -p "$d"
	if [ "$k" = custom ]; then
		vmlinuz=$IMAGE
		local v
		v=$(image_version "$IMAGE")
		label="custom ${v:-unknown version}"
		skips=$HERE/skips/$(sed -E 's/^([0-9]+\.[0-9]+).*/\1/' <<<"${v:-none}").txt
		cp "$OUT/common.cpio.gz" "$d/initramfs.cpio.gz"
		ST_REL[$k]=${v:-?}
	else
		kd=$CACHE/$k/kernel
		"$HERE/fetch-kernel.sh" "$k" "$CACHE"
		[ -f "$kd/modules.cpio.gz" ] || "$HERE/mkinitramfs.sh" modules "$kd" "$kd/modules.cpio.gz"
		vmlinuz=$kd/vmlinuz
		label="$k ($(cat "$kd/package"))"
		skips=$HERE/skips/$k.txt
		cat "$OUT/common.cpio.gz" "$kd/modules.cpio.gz" >"$d/initramfs.cpio.gz"
		ST_REL[$k]=$(cat "$kd/release")
	fi
	if [ -n "${VMTEST_DEBUG_SCRIPT:-}" ]; then
		local dbg
		dbg=$(mktemp -d)
		mkdir -p "$dbg/etc/sluice"
		cp "$VMTEST_DEBUG_SCRIPT" "$dbg/etc/sluice/debug.sh"
		chmod 755 "$dbg/etc/sluice/debug.sh"
		(cd "$dbg" && find . -mindepth 1 | cpio --quiet -o -H newc -R 0:0 | gzip) >>"$d/initramfs.cpio.gz"
		rm -rf "$dbg"
	fi

	e2e=$(e2e_for "$k")
	echo "vmtest: $label: booting (qemu TCG, timeout ${TIMEOUT}s)${e2e:+; e2e: $(wc -w <<<"$e2e") scripts}$([ -n "$e2e" ] && [ -z "$E2E" ] && echo " (vmtests/newest-only.txt runs on $NEWEST)")"
	t0=$(date +%s.%N)
	timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m "$MEM" -smp 2 \
		-nographic -no-reboot -kernel "$vmlinuz" -initrd "$d/initramfs.cpio.gz" \
		-append "$(cmdline "$e2e")" -serial mon:stdio -serial "file:$d/raw" \
		</dev/null >"$d/console.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	rm -f "$d/initramfs.cpio.gz"
	[ "$rc" -eq 0 ] || echo "vmtest: $k: qemu exited $rc$([ "$rc" -eq 124 ] && echo ' (timed out)')"
	ST_WALL[$k]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')

	touch "$d/raw"
	tr -d '\r' <"$d/raw" >"$d/raw.txt"
	sed -n 's/^verifier //p' "$d/raw.txt" >"$d/verifier.txt"
	sed -n 's/^result //p' "$d/raw.txt" >"$d/results.txt"
	sed -n 's/^probe //p' "$d/raw.txt" >"$d/probe.txt"
	ST_BOOT[$k]=$(sed -n 's/^boot_s //p' "$d/raw.txt")
	ST_SUITE[$k]=$(sed -n 's/^suite_s //p' "$d/raw.txt")
	[ -n "${VMTEST_DEBUG_SCRIPT:-}" ] && { cat "$d/console.log"; return 0; }

	echo "vmtest: $label: $(sed -n 's/^kernel //p' "$d/raw.txt"), boot ${ST_BOOT[$k]:-?}s, suites ${ST_SUITE[$k]:-?}s, VM ${ST_WALL[$k]}s"
	{ grep '^module ' "$d/raw.txt" || echo "module (none) -"; } |
		awk '{ printf "%s%s %s", (NR > 1 ? ", " : "  modules: "), $2, $3 } END { print "" }'
	grep -E 'warn|error' "$d/probe.txt" | sed 's/^/  agent: /' || true
	if "$HERE/check-results.sh" "$d/raw" "$skips" "$SUITES" >"$d/verdict.txt"; then
		ST_VERDICT[$k]=PASS
	else
		ST_VERDICT[$k]=FAIL
		failed_kernels+=("$k")
	fi
	cat "$d/verdict.txt"
	counts=$(sed -n 's/^  tests: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$d/verdict.txt")
	ST_COUNTS[$k]=${counts:-0 0 0}
	read -r p f s <<<"${ST_COUNTS[$k]}"
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f)) total_skip=$((total_skip + s))
	if [ "${ST_VERDICT[$k]}" = FAIL ]; then
		total_fail=$((total_fail + (f == 0 ? 1 : 0)))
		echo "vmtest: $k: FAIL; serial console kept in $d/console.log; its last lines:"
		grep -v '^\s*$' "$d/console.log" | tail -n 40 | sed 's/^/  | /'
	fi
}

for k in $KERNELS; do
	case $k in 5.10 | 6.1 | 6.12 | custom) ;; *) echo "vmtest: unknown kernel '$k' (5.10, 6.1, 6.12; KERNEL_IMAGE=path)" >&2; exit 2 ;; esac
	run_kernel "$k"
done
[ -n "${VMTEST_DEBUG_SCRIPT:-}" ] && exit 0

# the combined verifier table: processed instructions per program and
# kernel, with the host kernel's (loaded here, natively) as the last column
host_rel=$(uname -r)
"$BUILD/vmtests/verifier-stats" "$BUILD"/bpf/*.bpf.o >"$OUT/verifier-host.txt" 2>&1 || true
{
	printf '# processed instructions per program (verifier log, "processed N insns"); R = rejected\n'
	printf '%-20s' program
	for k in $KERNELS host; do printf ' %10s' "$k"; done
	printf '\n'
	progs=$( { for k in $KERNELS; do grep -v '^#' "$OUT/$k/verifier.txt" 2>/dev/null | awk '{ print $1 }'; done
		grep -v '^#' "$OUT/verifier-host.txt" | awk '{ print $1 }'; } | awk '!seen[$0]++')
	for p in $progs; do
		printf '%-20s' "$p"
		for k in $KERNELS host; do
			f=$OUT/$k/verifier.txt
			[ "$k" = host ] && f=$OUT/verifier-host.txt
			v=$(awk -v p="$p" '$1 == p { print ($3 == "accepted" ? $4 : "R" $4) }' "$f" 2>/dev/null)
			printf ' %10s' "${v:--}"
		done
		printf '\n'
	done
	printf '# kernels: '
	for k in $KERNELS; do printf '%s=%s ' "$k" "${ST_REL[$k]}"; done
	printf 'host=%s\n' "$host_rel"
} >"$OUT/verifier.txt"

t_end=$(date +%s)
{
	printf '%-8s %-30s %7s %8s %6s  %s\n' kernel release boot_s suites_s vm_s "verdict (passed failed skipped)"
	for k in $KERNELS; do
		printf '%-8s %-30s %7s %8s %6s  %s (%s)\n' "$k" "${ST_REL[$k]}" "${ST_BOOT[$k]:--}" \
			"${ST_SUITE[$k]:--}" "${ST_WALL[$k]}" "${ST_VERDICT[$k]}" "${ST_COUNTS[$k]}"
	done
	echo "total $((t_end - t_start)) s"
} >"$OUT/summary.txt"

echo "vmtest: verifier, processed instructions ($OUT/verifier.txt):"
sed 's/^/  /' "$OUT/verifier.txt"
echo "vmtest: matrix ($OUT/summary.txt):"
sed 's/^/  /' "$OUT/summary.txt"
[ "${#failed_kernels[@]}" -eq 0 ] || echo "vmtest: FAILED on: ${failed_kernels[*]}"
echo "vmtest: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "${#failed_kernels[@]}" -eq 0 ]
