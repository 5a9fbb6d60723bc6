#!/usr/bin/env bash
# sluice-cni against the CNI spec, invoked as a runtime invokes it, with a
# real agent and a real podman container enrolled: malformed stdin,
# missing prevResult, an unknown cniVersion, a container the runtime does
# not know, ADD twice, DEL of an unknown container (succeeds: DEL is
# idempotent), an unreachable agent (ADD fails unless failOpen; DEL
# succeeds). Each answer has the spec's error code, and an error changes
# nothing: the control plane's registrations and the agent's record are
# compared before and after.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cni_lib.sh"

cni_init
cp_start_local
cat >"$TMP/mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: web, namespace: default}
spec:
  template: {serviceAccount: web}
EOF
"$BIN/sluicectl" apply -f "$TMP/mesh.yaml" >"$TMP/apply.log" 2>&1 || fail "apply: $(cat "$TMP/apply.log")"
cni_agent_start
run_ctr w1 web app=web >/dev/null || fail "podman run w1 failed"
W1=$(podman inspect -f '{{.Id}}' "$T-w1")
ent=$(jq -c --arg id "$W1" '.enrolled[$id]' "$RUN/cni.json")
[ "$ent" != null ] || fail "w1 is not in the agent's record"
NETNS=$(jq -r .netns <<<"$ent")
PREV=$(jq -c --argjson e "$ent" -n '{cniVersion: "1.0.0", interfaces: [{name: $e.interface},
	{name: "eth0", sandbox: $e.netns}], ips: [{address: "\($e.address)/24", interface: 1}]}')

# cni CMD ID STDIN [failOpen-socket] : run the plugin; prints its stdout, returns its status
cni() {
	CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$NETNS CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1" \
		CNI_PATH=/usr/lib/cni "$BIN/sluice-cni" <<<"$3" 2>>"$TMP/plugin.log"
}
conf() { # [VERSION] [extra jq]
	jq -c -n --arg v "${1:-1.0.0}" --arg s "$SOCK" --argjson p "$PREV" \
		"{cniVersion: \$v, name: \"$NET\", type: \"sluice-cni\", agentSocket: \$s, prevResult: \$p} ${2:-}"
}
state() {
	{ "$BIN/sluicectl" get workloadentries -o json | jq -c 'map(.metadata.name) | sort'; jq -c .enrolled "$RUN/cni.json"; }
}
expect_code() { # CODE OUT WHAT
	jq -e --argjson c "$1" '.code == $c and (.msg | length > 0)' <<<"$2" >/dev/null \
		|| fail "$3: expected CNI error code $1, got: $2"
}
before=$(state)
unchanged() { [ "$(state)" = "$before" ] || fail "$1 changed the state: $before -> $(state)"; }

note "malformed stdin: code 6 (decoding failure), for ADD, CHECK and DEL"
for cmd in ADD CHECK DEL; do
	out=$(cni "$cmd" "$W1" '{"cniVersion": "1.0.0", "name": ') && fail "$cmd accepted malformed stdin"
	expect_code 6 "$out" "$cmd with malformed stdin"
done
unchanged "malformed stdin"

note "missing prevResult: code 7 (invalid network config) for ADD and CHECK"
for cmd in ADD CHECK; do
	out=$(cni "$cmd" "$W1" "$(conf 1.0.0 '| del(.prevResult)')") && fail "$cmd without prevResult succeeded"
	expect_code 7 "$out" "$cmd without prevResult"
	grep -q "prevResult" <<<"$out" || fail "the message does not name prevResult: $out"
done
unchanged "missing prevResult"

note "unknown cniVersion: code 1 (incompatible version)"
for cmd in ADD CHECK DEL; do
	out=$(cni "$cmd" "$W1" "$(conf 9.9.9)") && fail "$cmd accepted cniVersion 9.9.9"
	expect_code 1 "$out" "$cmd with cniVersion 9.9.9"
done
unchanged "an unknown cniVersion"
out=$(cni VERSION "" '{"cniVersion": "1.0.0"}') || fail "VERSION failed: $out"
jq -e '.supportedVersions | index("0.4.0") and index("1.0.0")' <<<"$out" >/dev/null || fail "VERSION: $out"

note "a container the runtime does not know: ADD fails (code 3)"
GHOST=$(printf '%064x' $((RANDOM * RANDOM)))
out=$(cni ADD "$GHOST" "$(conf)") && fail "ADD of a container podman does not know succeeded"
expect_code 3 "$out" "ADD of an unknown container"
unchanged "ADD of an unknown container"

note "DEL of an unknown container succeeds and changes nothing"
cni DEL "$GHOST" "$(conf 1.0.0 '| del(.prevResult)')" >/dev/null || fail "DEL of an unknown container failed"
unchanged "DEL of an unknown container"

note "ADD twice: the second succeeds with prevResult unchanged, and nothing is duplicated"
out=$(cni ADD "$W1" "$(conf)") || fail "the second ADD failed: $out"
jq -e --argjson p "$PREV" '. == $p' <<<"$out" >/dev/null || fail "ADD did not return prevResult unchanged: $out"
unchanged "ADD twice"
out=$(cni ADD "$W1" "$(conf 0.4.0 '| .prevResult.cniVersion = "0.4.0" | .prevResult.ips[0].version = "4"')") \
	|| fail "ADD with a 0.4.0 config failed: $out"
jq -e '.ips[0].version == "4"' <<<"$out" >/dev/null || fail "0.4.0 prevResult not returned as given: $out"
cni CHECK "$W1" "$(conf)" >/dev/null || fail "CHECK after ADD twice failed"

note "the agent unreachable: ADD fails (code 11) unless failOpen; DEL succeeds"
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
out=$(cni ADD "$W1" "$(conf)") && fail "ADD succeeded with no agent"
expect_code 11 "$out" "ADD with no agent"
grep -q "cannot reach the sluice agent" <<<"$out" || fail "the message does not say why: $out"
out=$(cni ADD "$W1" "$(conf 1.0.0 '| .failOpen = true')") || fail "failOpen ADD failed: $out"
jq -e --argjson p "$PREV" '. == $p' <<<"$out" >/dev/null || fail "failOpen ADD: $out"
cni DEL "$GHOST" "$(conf)" >/dev/null || fail "DEL with no agent failed"
echo "PASS"
