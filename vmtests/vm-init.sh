#!/busybox/bin/sh
# /init of the test VM (vmtests/mkinitramfs.sh puts it there). Mounts what
# the suites need, loads the modules, runs the verifier statistics, the
# agent's feature probe and the suites, writes the results to the second
# serial port (/dev/ttyS1, a file on the host) and powers off.
#
# Parameters on the kernel command line (read from /proc/cmdline):
#   sluice.suites=bpf,e2e      suites for tests/run.sh (SLUICE_SUITES)
#   sluice.e2e=test_a,test_b   only these e2e scripts (default: all)
#   sluice.timescale=N         multiply the e2e suites' waits (SLUICE_TIME_SCALE)
#   sluice.e2etimeout=SECS     per e2e script (SLUICE_E2E_TIMEOUT)
#
# Results protocol (one record a line, between "@@begin" and "@@end RC"):
#   kernel RELEASE | boot_s SECONDS | module NAME loaded|failed|absent
#   probe LINE (the agent's feature-probe log) | verifier LINE (verifier-stats)
#   result SUITE TEST pass|fail|skip [REASON] | suite_s SECONDS
export PATH=/usr/sbin:/usr/bin:/busybox/bin
export HOME=/root TERM=dumb LANG=C LC_ALL=C

/busybox/bin/mount -t proc proc /proc
/busybox/bin/mount -t sysfs sysfs /sys
/busybox/bin/mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
/busybox/bin/mount -t devpts devpts /dev/pts
/busybox/bin/mount -t tmpfs -o mode=1777 tmpfs /dev/shm
/busybox/bin/mount -t tmpfs -o mode=1777 tmpfs /tmp
/busybox/bin/mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/netns
/busybox/bin/mount -t bpf bpf /sys/fs/bpf
/busybox/bin/mount -t cgroup2 cgroup2 /sys/fs/cgroup
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname sluice-vm
ip link set lo up

BOOT_S=$(cut -d' ' -f1 /proc/uptime)
OUT=/dev/ttyS1
[ -c "$OUT" ] || OUT=/dev/console
rec() { echo "$*" >>"$OUT"; }

param() { # name default
	v=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^sluice\.$1=//p" | tail -n1)
	echo "${v:-$2}" | tr ',' ' '
}
SUITES=$(param suites "bpf e2e")
E2E_ONLY=$(param e2e "")
SCALE=$(param timescale 1)
E2E_TIMEOUT=$(param e2etimeout 600)

echo "== sluice VM: $(uname -r), booted in ${BOOT_S}s, $(nproc) CPUs"
rec "@@begin"
rec "kernel $(uname -r)"
rec "boot_s $BOOT_S"

# modules, dependencies first (mkinitramfs.sh wrote the order)
if [ -f /etc/sluice/modules ]; then
	while read -r m; do
		[ -n "$m" ] || continue
		if out=$(insmod "/lib/modules/$m.ko" 2>&1); then
			rec "module $m loaded"
		else
			echo "insmod $m: $out"
			rec "module $m failed $out"
		fi
	done </etc/sluice/modules
fi
if [ -f /etc/sluice/modules-absent ]; then
	while read -r m; do [ -n "$m" ] && rec "module $m absent"; done </etc/sluice/modules-absent
fi

cd /sluice || exit 1

# debugging hook: an extra archive may bring /etc/sluice/debug.sh, run
# instead of everything below (vmtests/run.sh --debug-script FILE)
if [ -x /etc/sluice/debug.sh ]; then
	/etc/sluice/debug.sh 2>&1
	rec "@@end $?"
	poweroff -f
	reboot -f
fi

# the verifier's verdict and instruction counts, program by program
echo "== verifier-stats"
build/vmtests/verifier-stats build/bpf/*.bpf.o >/tmp/verifier.txt 2>&1
vrc=$?
cat /tmp/verifier.txt
sed 's/^/verifier /' /tmp/verifier.txt >>"$OUT"
rec "verifier_rc $vrc"

# the agent's feature probes as it logs them at start
echo "== agent feature probes"
mkdir -p /sys/fs/cgroup/vmprobe
echo '{"services": []}' >/tmp/probe.json
build/bin/sluice-agent --node vmprobe --cgroup /sys/fs/cgroup/vmprobe --snapshot /tmp/probe.json \
	--pin-root /sys/fs/bpf/vmprobe --once >/tmp/probe.log 2>&1
echo "exit $?" >>/tmp/probe.log
build/bin/sluice-agent --node vmprobe --pin-root /sys/fs/bpf/vmprobe --uninstall >/dev/null 2>&1
rmdir /sys/fs/cgroup/vmprobe 2>/dev/null
cat /tmp/probe.log
sed 's/^[0-9T:.-]*Z //; s/^/probe /' /tmp/probe.log >>"$OUT"

# The simulated cluster needs veth and a bridge: a kernel without them
# (KERNEL_IMAGE with neither built in nor as modules) skips the e2e suite,
# each test reported with the reason, rather than failing or hanging in it.
if echo " $SUITES " | grep -q ' e2e '; then
	if ! unshare -n sh -c 'ip link add vmchk0 type veth peer name vmchk1 && ip link add vmchk2 type bridge' \
		>/tmp/chk.log 2>&1; then
		why="kernel lacks veth or bridge (CONFIG_VETH, CONFIG_BRIDGE; modules absent?): $(tr '\n' ' ' </tmp/chk.log)"
		echo "== e2e: skipped: $why"
		for t in tests/e2e/test_*.sh; do
			n=$(basename "$t" .sh)
			[ -n "$E2E_ONLY" ] && ! echo " $E2E_ONLY " | grep -q " $n " && continue
			echo "e2e $n skip $why" >>/tmp/results.txt
		done
		SUITES=$(echo " $SUITES " | sed 's/ e2e / /')
	fi
fi

echo "== suites: $SUITES${E2E_ONLY:+ (e2e: $E2E_ONLY)}, time scale $SCALE"
T0=$(cut -d' ' -f1 /proc/uptime)
SLUICE_SUITES="$SUITES" SLUICE_RESULTS=/tmp/results.txt SLUICE_E2E_ONLY="$E2E_ONLY" \
	SLUICE_TIME_SCALE="$SCALE" SLUICE_E2E_TIMEOUT="$E2E_TIMEOUT" \
	bash tests/run.sh build
rc=$?
T1=$(cut -d' ' -f1 /proc/uptime)
[ -f /tmp/results.txt ] && sed 's/^/result /' /tmp/results.txt >>"$OUT"
rec "suite_s $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')"
rec "@@end $rc"
sync
echo "== sluice VM: done, exit $rc"
poweroff -f
reboot -f
