#!/bin/bash
# The simulated cluster itself: two clusters coexist with the same
# addresses, pods reach each other within and across nodes over IPv4 and
# IPv6, exec puts a process in the pod's netns and cgroup, list --json
# describes it, and down removes everything, also after a half-made up.
. "$(dirname "$0")/lib.sh"
e2e_init 2 2
CL2=${CL}b
"$SIM" up --name "$CL2" --nodes 1 --pods-per-node 2 >/dev/null
trap '"$SIM" down "$CL2" >/dev/null 2>&1; e2e_cleanup' EXIT

j=$("$SIM" list "$CL" --json)
[ "$(jq '.nodes | length' <<<"$j")" -eq 2 ] || fail "list: want 2 nodes: $j"
[ "$(jq '[.nodes[].pods[]] | length' <<<"$j")" -eq 4 ] || fail "list: want 4 pods: $j"
[ "$(jq -r '.nodes[1].pods[0].ipv4' <<<"$j")" = 10.244.2.2 ] || fail "list: node2.pod1 address: $j"

cg=$(in_pod node1.pod1 cat /proc/self/cgroup)
[[ $cg = *"/slc.$CL/node1/pod1" ]] || fail "exec: not in the pod cgroup: $cg"
[ "$(in_pod node1.pod1 readlink /proc/self/ns/net)" = "$(nsenter --net="/run/netns/slc.$CL.node1.pod1" readlink /proc/self/ns/net)" ] \
	|| fail "exec: not in the pod netns"

serve node2.pod2 far --tcp 8080
serve node1.pod2 near --tcp 8080
for to in "$(pod_ip node2.pod2):8080" "[$(pod_ip6 node2.pod2)]:8080" "$(pod_ip node1.pod2):8080" "[$(pod_ip6 node1.pod2)]:8080"; do
	out=$(in_pod node1.pod1 "$BIN/sltest" connect --to "$to") || fail "pod to $to: $out"
done
# the second cluster has the same addresses, and its own pods
"$SIM" exec "$CL2" node1.pod2 -- "$BIN/sltest" serve --name other --tcp 8080 --ready "$TMP/ready.other" &
E2E_PIDS+=("$!")
for _ in $(seq 100); do [ -e "$TMP/ready.other" ] && break; sleep 0.05; done
out=$("$SIM" exec "$CL2" node1.pod1 -- "$BIN/sltest" connect --to 10.244.1.3:8080) || fail "cluster 2: $out"
[ "$(jq -r .backend <<<"$out")" = other ] || fail "cluster 2 reached cluster 1's pod: $out"
out=$(in_pod node1.pod1 "$BIN/sltest" connect --to 10.244.1.3:8080) || fail "cluster 1: $out"
[ "$(jq -r .backend <<<"$out")" = near ] || fail "cluster 1 reached cluster 2's pod: $out"

"$SIM" down "$CL2" >/dev/null
[ -z "$(ip netns list | grep "^slc\.$CL2\.")" ] || fail "down left netns behind"
[ ! -e "$(dirname "$(node_cgroup node1)")/../slc.$CL2" ] || fail "down left cgroups behind"
in_pod node1.pod1 "$BIN/sltest" connect --to 10.244.1.3:8080 >/dev/null || fail "cluster 1 broken by cluster 2's down"

# a half-made cluster: down still removes it
root=$(dirname "$(dirname "$(node_cgroup node1)")")
ip netns add "slc.$CL2.node1"
mkdir -p "$root/slc.$CL2/node1/pod1"
"$SIM" down "$CL2" >/dev/null
[ -z "$(ip netns list | grep "^slc\.$CL2\.")" ] || fail "down of a half-made cluster left netns"
[ ! -e "$root/slc.$CL2" ] || fail "down of a half-made cluster left cgroups"
