#!/bin/bash
# sluicectl manifest generate: the YAML parses; every object has
# apiVersion, kind and a DNS-label name; the DaemonSet's probes are paths
# and a port a real agent started with the DaemonSet's own flags serves;
# every host path it mounts is one that agent uses.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
in_node() { local n=$1; shift; nsenter --net="/run/netns/slc.$CL.$n" "$@"; }
$PY -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (it parses the manifests)"
e2e_init 1 1
"$BIN/sluicectl" manifest generate --set profile=default >"$TMP/m.yaml" || fail "manifest generate failed"
"$BIN/sluicectl" manifest generate --set profile=demo >/dev/null 2>&1 && fail "the demo profile made manifests"

# objects, names; then the DaemonSet's facts as shell words
$PY - "$TMP/m.yaml" >"$TMP/facts" <<'PY' || fail "manifest check: $(cat "$TMP/facts")"
import re, shlex, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
label = re.compile(r'^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
kinds = set()
for d in docs:
    for k in ('apiVersion', 'kind', 'metadata'):
        assert k in d, f'object without {k}: {d}'
    n = d['metadata'].get('name', '')
    assert label.match(n), f'{d["kind"]} name {n!r} is not a DNS label'
    kinds.add(d['kind'])
for k in ('Namespace', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'DaemonSet'):
    assert k in kinds, f'no {k}'
ds = next(d for d in docs if d['kind'] == 'DaemonSet')
pod = ds['spec']['template']['spec']
c = pod['containers'][0]
assert pod['hostNetwork'] is True
caps = c['securityContext']['capabilities']
assert caps['drop'] == ['ALL'] and sorted(caps['add']) == ['BPF', 'NET_ADMIN', 'SYS_ADMIN'], caps
args = shlex.split(c['args'][0].split('exec ', 1)[1].split('${TOKEN')[0])
flags = dict(zip(args[1::2], args[2::2]))
ports = {p['name']: p['containerPort'] for p in c['ports']}
probes = [(c[p]['httpGet']['path'], c[p]['httpGet']['port']) for p in ('readinessProbe', 'livenessProbe')]
mounts = {m['name']: m['mountPath'] for m in c['volumeMounts']}
hostpaths = [v['hostPath']['path'] for v in pod['volumes'] if 'hostPath' in v]
for v in pod['volumes']:
    if 'hostPath' in v:
        assert mounts[v['name']] == v['hostPath']['path'], f'{v["name"]} mounted elsewhere'
print('METRICS=' + shlex.quote(flags['--metrics-addr']))
print('STATE=' + shlex.quote(flags['--state-dir']))
print('PROBES=(' + ' '.join(f'{p}:{port}' for p, port in probes) + ')')
print('HOSTPATHS=(' + ' '.join(hostpaths) + ')')
print('METRICS_PORT=%d' % ports['metrics'])
PY
source "$TMP/facts"
note "manifests: $(grep -c '^kind:' "$TMP/m.yaml") objects; probes ${PROBES[*]}; host paths ${HOSTPATHS[*]}"
[ "${METRICS##*:}" = "$METRICS_PORT" ] || fail "--metrics-addr $METRICS is not the metrics port $METRICS_PORT"

# a real agent with the DaemonSet's metrics address (its port on this node's loopback)
agent_start node1 --metrics-addr "127.0.0.1:$METRICS_PORT"
wait_log "$TMP/agent.node1.log" "applied snapshot" 1
for pp in "${PROBES[@]}"; do
	path=${pp%%:*} port=${pp##*:}
	[ "$port" = "$METRICS_PORT" ] || fail "probe port $port is not the metrics port"
	code=$(in_node node1 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")
	[ "$code" = 200 ] || fail "the agent answers $path with $code"
done
# each host path is one the running agent uses
node=node1
used=("$(pin_root "$node")" "/run/sluice/$(basename "$(pin_root "$node")")/status.json"
	"$(node_cgroup "$node")" "/run/netns/slc.$CL.node1.pod1" "$STATE")
for hp in "${HOSTPATHS[@]}"; do
	ok=
	for u in "${used[@]}"; do [[ $u = "$hp"/* ]] && ok=1; done
	[ -n "$ok" ] || fail "host path $hp is mounted, but the agent uses none of it (${used[*]})"
done
[ -e "${used[1]}" ] || fail "the agent wrote no ${used[1]}"

# replicas: a Deployment of 3 on etcd, no state volume; none without a store
out=$("$BIN/sluicectl" manifest generate --set control.replicas=3 2>&1) && fail "replicas without a store made manifests"
grep -q 'control.replicas=3 needs control.store' <<<"$out" || fail "replicas without a store: $out"
"$BIN/sluicectl" manifest generate --set control.replicas=3 \
	--set control.store=etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 >"$TMP/ha.yaml" ||
	fail "manifest generate with replicas failed"
$PY - "$TMP/ha.yaml" <<'PY' || fail "replicated control plane manifest"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]
dep = next(d for d in docs if d['kind'] == 'Deployment')
assert dep['spec']['replicas'] == 3, dep['spec']
c = dep['spec']['template']['spec']['containers'][0]
flags = dict(zip(c['args'][::2], c['args'][1::2]))
assert flags['--store'] == 'etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379', flags
assert flags['--store-key'].startswith('/etc/sluice/store-key/'), flags
assert not any(d['kind'] == 'PersistentVolumeClaim' for d in docs), 'a state volume with etcd'
vols = {v['name']: v for v in dep['spec']['template']['spec']['volumes']}
assert vols['store-key']['secret']['secretName'] == 'sluice-store-key', vols
PY
note "control.replicas=3 with control.store: a Deployment of 3 with --store; without a store: $out"
exit 0
