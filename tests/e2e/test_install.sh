#!/bin/bash
# sluicectl install / verify-install / uninstall, as an operator runs them,
# with the demo profile: profiles and their errors; a dry run that changes
# nothing; install; verify-install passing, then failing for each broken
# piece it must name (agent stopped, program detached, control plane down,
# bpffs missing, an agent on an old config version); a second install that
# changes nothing; an upgrade under a connection loop; uninstall leaving
# nothing behind. Everything runs in a network namespace of its own, with
# its own prefix, pin base, cgroup and cluster name.
source "$(dirname "$0")/lib.sh"

note() { echo "-- [${SECONDS}s] $*"; }
[ "$(id -u)" -eq 0 ] || skip "needs root (BPF, cgroups, network namespaces)"
ID=$(( $$ % 100000 ))$(( RANDOM % 100 ))
TMP=$(mktemp -d "/tmp/sluice-e2e-install-$ID.XXXXXX")
NS=sli$ID
ROOTP=$TMP/root
PINB=/sys/fs/bpf/sluice-e2e-i$ID
DEMO=d$ID
NODE=i$ID
SETS=(--set paths.prefix="$ROOTP" --set paths.pinBase="$PINB" --set node.name="$NODE"
	--set node.cgroup="sluice-e2e-$ID" --set demo.cluster="$DEMO")
CTL=$BIN/sluicectl
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
sctl() { in_ns "$CTL" "$@"; }
pods() { "$BIN/sluice-simcluster" exec "$DEMO" "$@"; }

cleanup() {
	local rc=$?
	set +e
	[ -d "$TMP/min/etc/sluice" ] && sctl uninstall -y --purge --set paths.prefix="$TMP/min" >/dev/null 2>&1
	[ -d "$ROOTP/etc/sluice" ] && sctl uninstall -y --purge --set paths.prefix="$ROOTP" >/dev/null 2>&1
	"$BIN/sluice-simcluster" down "$DEMO" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PINB" 2>/dev/null
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$TMP"/*.out "$ROOTP"/var/log/sluice/*.log; do
			[ -f "$f" ] && { echo "---- $f (last 20 lines)"; tail -n 20 "$f"; }
		done
		[ -n "$E2E_FAILED" ] && echo "FAIL: $E2E_FAILED" >&2
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$NS"
ip -n "$NS" link set lo up

# verify_fails CHECK : verify-install exits 1 and names CHECK with a fix
verify_fails() {
	local out
	if out=$(sctl verify-install --set paths.prefix="$ROOTP"); then
		fail "verify-install passed with $1 broken: $out"
	fi
	grep -q "^FAIL  $1" <<<"$out" || fail "verify-install did not name '$1': $out"
	grep -A1 "^FAIL  $1" <<<"$out" | grep -q 'fix: ' || fail "no fix for '$1': $out"
	note "verify-install: $(grep "^FAIL  $1" <<<"$out" | head -1)"
}
# wait_verified : verify-install passes within 10 s (x SCALE)
wait_verified() {
	for _ in $(seq $((100 * SCALE))); do
		sctl verify-install --set paths.prefix="$ROOTP" >/dev/null && return 0
		sleep 0.1
	done
	verify_ok "$1"
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
verify_ok() {
	sctl verify-install --set paths.prefix="$ROOTP" >"$TMP/verify.out" ||
		fail "verify-install failed$1: $(grep -A1 FAIL "$TMP/verify.out")"
}
child() { cat "$ROOTP/var/lib/sluice/daemons/$1.child"; }
sv() { cat "$ROOTP/var/lib/sluice/daemons/$1.pid"; }

note "profiles: unknown keys and bad values are refused, naming the key and what is allowed"
out=$("$CTL" profile dump demo --set agent.sockmap=maybe 2>&1) && fail "a bad value was accepted"
grep -q "agent.sockmap: 'maybe' is not one of off, on, force" <<<"$out" || fail "bad value: $out"
out=$("$CTL" profile dump --set agent.nope=1 2>&1) && fail "an unknown key was accepted"
grep -q "agent.nope: unknown key" <<<"$out" || fail "unknown key: $out"
printf 'agent:\n  flowLog: maybe\n' >"$TMP/overlay.yaml"
out=$("$CTL" profile dump -f "$TMP/overlay.yaml" 2>&1) && fail "a bad overlay was accepted"
grep -q "overlay.yaml:2:12: agent.flowLog: 'maybe' is not a boolean" <<<"$out" || fail "overlay: $out"
[ "$("$CTL" profile dump demo --set agent.logLevel=debug -o json | jq -r '.agent.logLevel, .demo.enabled')" = \
	"$(printf 'debug\ntrue')" ] || fail "profile dump with --set"

# (the VMs carry no docs/)
for k in $([ -f "$ROOT/docs/install.md" ] && "$CTL" profile keys | awk '{print $1}'); do
	grep -q "^| \`$k\` |" "$ROOT/docs/install.md" || fail "docs/install.md does not describe $k"
done

note "install --dry-run prints the plan and changes nothing"
sctl install --set profile=demo "${SETS[@]}" --dry-run >"$TMP/dry.out" || fail "dry run: $(cat "$TMP/dry.out")"
grep -q "start   agent-$DEMO-node1" "$TMP/dry.out" || fail "the plan lacks the demo's agents"
[ ! -e "$ROOTP" ] && [ ! -e "$PINB" ] || fail "the dry run changed something"

note "install --set profile=demo -y"
t0=$(date +%s%N)
sctl install --set profile=demo "${SETS[@]}" -y >"$TMP/install.out" 2>&1 ||
	fail "install failed: $(cat "$TMP/install.out")"
note "installed in $(ms_since "$t0") ms"
grep -q "every agent applied the config" "$TMP/install.out" || fail "install: $(cat "$TMP/install.out")"
t0=$(date +%s%N)
verify_ok ""
note "verify-install passed in $(ms_since "$t0") ms: $(grep -c '^OK' "$TMP/verify.out") checks"
grep -q '^OK    probe .*flow event seen' "$TMP/verify.out" || fail "no live probe: $(cat "$TMP/verify.out")"
[ "$(sctl verify-install --set paths.prefix="$ROOTP" -o json | jq -r '.ok, (.checks | length > 10)')" = \
	"$(printf 'true\ntrue')" ] || fail "verify-install -o json"

note "the demo mesh: weighted split, a denied pair, cross-node over HBONE"
r=$(pods node1.pod1 -- "$BIN/sltest" spread --to 10.96.0.10:80 -n 100 --max-seconds $((20 * SCALE)))
[ "$(jq '.ok' <<<"$r")" -eq 100 ] || fail "web: $r"
[ "$(jq '.backends["web-v2"] // 0' <<<"$r")" -gt 0 ] || fail "no connection reached web-v2: $r"
r=$(pods node1.pod1 -- "$BIN/sltest" connect --to 10.96.0.20:90 || true)
grep -q '"ok":false' <<<"$r" ||
	fail "sleep reached ledger despite the AuthorizationPolicy: $r"
pods node1.pod2 -- "$BIN/sltest" connect --to 10.96.0.20:90 | grep -q '"ok":true' || fail "web -> ledger"
# capture to the node proxy needs connect() to know its client (5.14+)
capture=1
if grep -q 'kernel lacks SO_NETNS_COOKIE' "$ROOTP"/var/log/sluice/agent-*.log; then
	capture=
	note "no capture on this kernel (no SO_NETNS_COOKIE, 5.14+): cross-node traffic is plaintext"
fi
if [ -n "$capture" ]; then
	grep -q '"path":"hbone".*"workload":"ledger"' /run/sluice/"$DEMO"-node1/flows.jsonl ||
		grep -q '"workload":"ledger".*"path":"hbone"' /run/sluice/"$DEMO"-node1/flows.jsonl ||
		fail "web -> ledger did not go over HBONE"
fi
sctl top --set paths.prefix="$ROOTP" --count 1 --interval 0.2 --since-start -o json >"$TMP/top.out" ||
	fail "top failed"
[ -z "$capture" ] ||
	jq -e '[.[] | select(.mtls and .destination == "sa:demo/ledger")] | length == 1' "$TMP/top.out" >/dev/null ||
	fail "top: no mTLS row to demo/ledger: $(cat "$TMP/top.out")"
jq -e '[.[] | select(.denied > 0)] | length >= 1' "$TMP/top.out" >/dev/null || fail "top: no denial"

note "a second install changes nothing"
sctl install --set profile=demo "${SETS[@]}" -y >"$TMP/again.out" 2>&1 || fail "second install failed"
grep -q "nothing to change" "$TMP/again.out" || fail "second install: $(cat "$TMP/again.out")"

note "verify-install fails for each broken piece, naming it and its fix"
bpftool link detach pinned "$PINB/$NODE/links/sl_connect4" || fail "bpftool link detach"
verify_fails "programs $NODE"
kill "$(child "agent-$NODE")"      # its supervisor starts it again; it attaches what is missing
wait_verified " after the agent's restart"

a=$(sv "agent-$DEMO-node2")
kill "$a"
for _ in $(seq 100); do kill -0 "$a" 2>/dev/null || break; sleep 0.1; done
verify_fails "daemon agent-$DEMO-node2"
c=$(sv control)
kill "$c"
for _ in $(seq 100); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
verify_fails "control plane"
sctl install --set profile=demo "${SETS[@]}" -y >"$TMP/repair.out" 2>&1 || fail "install did not repair: $(cat "$TMP/repair.out")"
verify_ok " after install started what was stopped"

out=$(unshare -m bash -c "umount /sys/fs/bpf && nsenter --net=/run/netns/$NS $CTL verify-install --set paths.prefix=$ROOTP") &&
	fail "verify-install passed without bpffs"
grep -q '^FAIL  bpffs' <<<"$out" || fail "verify-install did not name bpffs: $out"

kill -STOP "$(child "agent-$DEMO-node2")"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: demo}\nspec:\n  clusterIP: 10.96.0.99\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n' >"$TMP/extra.yaml"
SLUICE_CREDENTIALS=$ROOTP/var/lib/sluice/control sctl apply -f "$TMP/extra.yaml" >/dev/null || fail "apply"
verify_fails "config $DEMO-node2"
kill -CONT "$(child "agent-$DEMO-node2")"

note "profile minimal: an agent that joins this control plane from another prefix"
MIN=(--set profile=minimal --set paths.prefix="$TMP/min" --set paths.pinBase="$PINB"
	--set node.name="m$ID" --set node.cgroup="sluice-e2e-m$ID"
	--set agent.metricsAddr=127.0.0.1:15021 --set proxy.hboneAddr=0.0.0.0:15018
	--set proxy.outboundAddr=0.0.0.0:15011 --set control.address=https://127.0.0.1:15012
	--set control.caFile="$ROOTP/var/lib/sluice/control/ca.crt")
out=$(sctl install "${MIN[@]}" -y 2>&1) && fail "minimal without a join token installed: $out"
grep -q "has no certificate .* set control.joinToken" <<<"$out" || fail "minimal without a token: $out"
sctl uninstall -y --purge --set paths.prefix="$TMP/min" >/dev/null || fail "uninstall of the failed minimal"
tok=$(in_ns "$ROOTP/usr/local/lib/sluice/sluice-control" token create \
	--state-dir "$ROOTP/var/lib/sluice/control" --node "m$ID")
sctl install "${MIN[@]}" --set control.joinToken="$tok" -y >"$TMP/min.out" 2>&1 ||
	fail "minimal: $(cat "$TMP/min.out"; tail -5 "$TMP/min/var/log/sluice/agent-m$ID.log"; cat /run/sluice/m$ID/status.json)"
sctl verify-install --set paths.prefix="$TMP/min" >"$TMP/verify-min.out" ||
	fail "verify-install (minimal): $(grep -A1 FAIL "$TMP/verify-min.out")"
grep -q "^OK    node certificate m$ID" "$TMP/verify-min.out" || fail "minimal: $(cat "$TMP/verify-min.out")"
wait_verified " with the minimal node joined"   # and the first install sees it ACK too
sctl uninstall -y --purge --set paths.prefix="$TMP/min" >/dev/null || fail "uninstall (minimal)"
[ -z "$(ls -A "$TMP/min" 2>/dev/null)" ] && [ ! -e "$PINB/m$ID" ] || fail "minimal left files or pins"

note "upgrade (a changed profile) under connection loops"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web-local, namespace: demo}\nspec:\n  clusterIP: 10.96.0.11\n  selector: {app: web, version: v1}\n  ports: [{port: 80, targetPort: 8080}]\n' >"$TMP/local.yaml"
SLUICE_CREDENTIALS=$ROOTP/var/lib/sluice/control sctl apply -f "$TMP/local.yaml" >/dev/null || fail "apply"
wait_verified " after applying web-local"
pods node1.pod1 -- "$BIN/sltest" loop --to 10.96.0.11:80 --until "$TMP/stop" --max-seconds $((120 * SCALE)) >"$TMP/loop-local.out" &
l1=$!
pods node1.pod1 -- "$BIN/sltest" loop --to 10.96.0.10:80 --until "$TMP/stop" --max-seconds $((120 * SCALE)) >"$TMP/loop-web.out" &
l2=$!
pods node1.pod1 -- "$BIN/sltest" hold --to 10.96.0.11:80 --until "$TMP/stop" --max-seconds $((120 * SCALE)) >"$TMP/hold.out" &
l3=$!
sleep 1
sctl install --set profile=demo "${SETS[@]}" --set agent.logLevel=debug -y >"$TMP/upgrade.out" 2>&1 ||
	fail "upgrade failed: $(cat "$TMP/upgrade.out")"
grep -q "restart agent-$DEMO-node1" "$TMP/upgrade.out" || fail "upgrade: $(cat "$TMP/upgrade.out")"
sleep 1
touch "$TMP/stop"
wait "$l1" "$l2" "$l3"
note "upgrade, same-node service: $(jq -c '{ok, failed, max_ms, errors}' "$TMP/loop-local.out")"
note "upgrade, service with a cross-node backend (HBONE): $(jq -c '{ok, failed, max_ms, errors}' "$TMP/loop-web.out")"
note "upgrade, an established connection: $(jq -c '{exchanges, failed}' "$TMP/hold.out")"
[ "$(jq '.failed' "$TMP/loop-local.out")" -eq 0 ] || fail "connections failed during the upgrade"
[ "$(jq '.ok' "$TMP/loop-local.out")" -gt 0 ] || fail "the loop made no connection"
# the node proxy is its own process: the agents' restarts do not touch it
[ "$(jq '.failed' "$TMP/loop-web.out")" -eq 0 ] || fail "cross-node connections failed during the upgrade"
[ "$(jq '.ok' "$TMP/loop-web.out")" -gt 0 ] || fail "the cross-node loop made no connection"
[ "$(jq '.failed' "$TMP/hold.out")" -eq 0 ] || fail "the established connection broke"
verify_ok " after the upgrade"

note "uninstall --purge leaves nothing"
pids=$(cat "$ROOTP"/var/lib/sluice/daemons/*.pid "$ROOTP"/var/lib/sluice/daemons/*.child)
# the ids of our pinned links, to see them gone
links=$(for f in "$PINB"/*/links/*; do bpftool link show pinned "$f" -j | jq -r .id; done)
[ -n "$links" ] || fail "no pinned links found under $PINB"
t0=$(date +%s%N)
sctl uninstall -y --purge --set paths.prefix="$ROOTP" >"$TMP/uninstall.out" 2>&1 ||
	fail "uninstall: $(cat "$TMP/uninstall.out")"
note "uninstall took $(ms_since "$t0") ms"
# exited but not reaped yet (init reaps the supervisors) is gone too
alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) [ZX] ' "/proc/$1/stat"; }
for p in $pids; do ! alive "$p" || fail "process $p is still running"; done
[ ! -e "$PINB/$NODE" ] && [ ! -e "$PINB/$DEMO-node1" ] || fail "pins left under $PINB"
[ -z "$(ls -A "$ROOTP" 2>/dev/null)" ] || fail "files left: $(find "$ROOTP" | head)"
! ip netns list | grep -q "slc\.$DEMO\." || fail "netns left: $(ip netns list | grep "slc.$DEMO")"
cg=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ ! -e "$cg/sluice-e2e-$ID" ] && [ ! -e "$cg/slc.$DEMO" ] || fail "cgroups left"
[ -z "$(ls -d /run/sluice/"$NODE"* /run/sluice/"$DEMO"-* 2>/dev/null)" ] || fail "run dirs left"
for id in $links; do ! bpftool link show id "$id" >/dev/null 2>&1 || fail "link $id is left"; done
[ -z "$(ls /run/sluice-sim/"$DEMO".json 2>/dev/null)" ] || fail "the simulated cluster's state is left"
note "uninstalled: no process, pin, link, netns, cgroup or file left"
exit 0
