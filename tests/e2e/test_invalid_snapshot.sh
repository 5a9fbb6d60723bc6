#!/bin/bash
# Every invalid snapshot is refused with a message naming the field, and
# the running state stays as it was (maps unchanged, traffic flowing).
. "$(dirname "$0")/lib.sh"
e2e_init 1 2

serve node1.pod2 b1 --tcp 8080
B=$(pod_ip node1.pod2)
good="{\"version\": 1, \"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80, \"backends\": [{\"address\": \"$B\", \"port\": 8080}]}]}"
echo "$good" | snapshot node1
agent_start node1
wait_applied node1 1
before=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect services)

n=0
check() { # want-in-message json
	n=$((n + 1))
	printf '%s\n' "$2" | snapshot node1
	wait_log "$TMP/agent.node1.log" 'snapshot refused' "$n"
	msg=$(grep 'snapshot refused' "$TMP/agent.node1.log" | tail -n1)
	[[ $msg = *"$1"* ]] || fail "message lacks '$1': $msg"
	now=$("$BIN/sluicectl" --pin-root "$(pin_root node1)" -o json inspect services)
	[ "$now" = "$before" ] || fail "state changed after refused snapshot: $now"
	note "refused: ${msg#*state unchanged: }"
}
S='"version": 2, "services": [{"name": "web", "vip": "10.96.0.10", "port": 80, "backends": [{"address": "'$B'", "port": 8080'
check "snap.node1.json:2:0: ']' expected near end of file" '{"version": 2, "services": [ '
check 'extra: unknown field' "{$S}]}], \"extra\": true}"
check 'services[0].backends[0].colour: unknown field' "{$S, \"colour\": 1}]}]}"
check 'services[0].vip: "10.96.0.300" is not an IPv4 or IPv6 address' \
	'{"services": [{"name": "web", "vip": "10.96.0.300", "port": 80, "backends": []}]}'
check 'services[0].backends[0].address: "10.244.1.x"' \
	'{"services": [{"name": "web", "vip": "10.96.0.10", "port": 80, "backends": [{"address": "10.244.1.x", "port": 1}]}]}'
check 'services[1]: vip 10.96.0.10 port 80/TCP duplicates services[0]' \
	"{$S}]}, {\"name\": \"web2\", \"vip\": \"10.96.0.10\", \"port\": 80, \"backends\": []}]}"
check 'services[0].backends[0].weight: 0 is out of range 1..100' "{$S, \"weight\": 0}]}]}"
check 'services[0].backends[0].weight: 101 is out of range 1..100' "{$S, \"weight\": 101}]}]}"
check 'services[0].port: 70000 is out of range' \
	'{"services": [{"name": "web", "vip": "10.96.0.10", "port": 70000, "backends": []}]}'

out=$(in_pod node1.pod1 "$BIN/sltest" connect --to 10.96.0.10:80) || fail "traffic broken after refusals: $out"
# and a valid one after all that is applied
echo "${good/\"version\": 1/\"version\": 3}" | snapshot node1
wait_applied node1 3
