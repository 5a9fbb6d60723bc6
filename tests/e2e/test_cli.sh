#!/bin/bash
# The command lines' generated documentation: sluicectl's bash completion
# (commands, subcommands, options and their values, as --help lists them),
# the man pages render without warnings and name every option --help
# names, and `version` reports one version for the three programs and
# the running daemons. No root, no cluster.
source "$(dirname "$0")/lib.sh"

TMP=$(mktemp -d)
CONTROL_PID=
trap '[ -z "$CONTROL_PID" ] || kill "$CONTROL_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
CTL=$BIN/sluicectl

# complete WORDS...: what the completion offers for the last word
complete_words() {
	COMP_WORDS=(sluicectl "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_sluicectl
	echo "${COMPREPLY[*]}"
}

# shellcheck disable=SC1090
source <("$CTL" completion bash) || fail "completion bash does not source"
[ "$(complete -p sluicectl)" = "complete -F _sluicectl sluicectl" ] || fail "not registered: $(complete -p sluicectl)"
[ "$(complete_words ins)" = "install inspect" ] || fail "ins: $(complete_words ins)"
[ "$(complete_words inst)" = "install" ] || fail "inst: $(complete_words inst)"
[ "$(complete_words profile d)" = "dump" ] || fail "profile d: $(complete_words profile d)"
[ "$(complete_words --node n1 fastpath f)" = "force" ] || fail "fastpath f: $(complete_words --node n1 fastpath f)"
[ "$(complete_words -o json inspect '')" = "services identities policy" ] || fail "inspect: $(complete_words -o json inspect '')"
[ "$(complete_words proxy '')" = "certs" ] || fail "proxy: $(complete_words proxy '')"
[ "$(complete_words -o '')" = "table json" ] || fail "-o: $(complete_words -o '')"
[ "$(complete_words --pin)" = "--pin-root" ] || fail "--pin: $(complete_words --pin)"
[ -z "$(complete_words status --control '')" ] || fail "a word after a command's option was completed"

# commands with options of their own (lib/core/cli tables): completed after
# the command, with their values; listed by the command's --help and under
# it in the man page; a usage error exits 2 before anything is contacted
[ "$(complete_words get svc -o '')" = "table yaml json" ] || fail "get -o: $(complete_words get svc -o '')"
[ "$(complete_words delete --nam)" = "--namespace" ] || fail "delete --nam: $(complete_words delete --nam)"
[ "$(complete_words status --con)" = "--control" ] || fail "status --con: $(complete_words status --con)"
[ "$(complete_words --node n1 fastpath status -o '')" = "table json" ] ||
	fail "fastpath status -o: $(complete_words --node n1 fastpath status -o '')"
[ -z "$(complete_words fastpath on '')" ] || fail "a word after fastpath's subcommand was completed"
h=$("$CTL" apply --help) && [[ $h = *$'\n  -f, --filename FILE'* ]] || fail "apply --help: $h"
h=$("$CTL" get -h) && [[ $h = "usage: sluicectl get KIND"* ]] || fail "get -h: $h"
h=$("$CTL" fastpath --help) && [[ $h = *"fastpath on|off|force|status"* ]] || fail "fastpath --help: $h"
h=$("$CTL" --man) && [[ $h = *'\fB\-\-all\-namespaces\fR'* ]] || fail "the man page lacks get's --all-namespaces"
for args in "apply --bogus" "apply -f" "apply" "get" "get a b c d e" "delete svc" \
	"status --control --timeout 0" "fastpath" "fastpath bogus" "fastpath status extra" \
	"fastpath status -o yaml" "--pin-root $TMP/none fastpath o"; do
	# shellcheck disable=SC2086
	rc=0
	SLUICE_CONTROL=https://127.0.0.1:1 "$CTL" $args >/dev/null 2>&1 || rc=$?
	[ $rc -eq 2 ] || fail "sluicectl $args: exit $rc, want 2 (usage)"
done
# fastpath's subcommands by unique prefix, as every command table
err=$("$CTL" --pin-root "$TMP/none" fastpath of 2>&1) && fail "fastpath of without maps succeeded"
[[ $err = *"$TMP/none"* ]] || fail "fastpath of: $err"

# every command parses its own arguments by its table (ctl/ctl.h): its
# --help lists -h, --help; the completion offers its options and their
# values; a stray argument, an unknown option or a value outside an
# option's list is a usage error (exit 2) before anything is read
for cmd in $("$CTL" --help | sed -n '/^commands/,$s/^  \([a-z][a-z-]*\).*/\1/p'); do
	h=$("$CTL" "$cmd" --help) || fail "$cmd --help failed"
	[[ $h = "usage: sluicectl $cmd"* && $h = *"-h, --help"* ]] || fail "$cmd --help: $h"
	[[ " $(complete_words "$cmd" --) " = *" --help "* ]] || fail "$cmd: --help not completed"
done
h=$("$CTL" analyze --help)
for o in "-f, --filename FILE" "-o, --output table|json" "--snapshot NODE"; do
	[[ $h = *"$o"* ]] || fail "analyze --help lacks $o: $h"
done
[ "$(complete_words analyze --)" = "--filename --output --snapshot --help" ] ||
	fail "analyze --: $(complete_words analyze --)"
[ "$(complete_words analyze -f x -o '')" = "table json" ] || fail "analyze -o: $(complete_words analyze -f x -o '')"
[ "$(complete_words observe --verdict '')" = "allowed denied" ] || fail "observe --verdict: $(complete_words observe --verdict '')"
[ "$(complete_words --node n1 inspect policy -o '')" = "table json" ] ||
	fail "inspect policy -o: $(complete_words --node n1 inspect policy -o '')"
[ "$(complete_words version --cred)" = "--credentials" ] || fail "version --cred: $(complete_words version --cred)"
[ "$(complete_words uninstall --p)" = "--purge" ] || fail "uninstall --p: $(complete_words uninstall --p)"
h=$("$CTL" --man) && [[ $h = *'\fB\-\-snapshot\fR'* && $h = *'\fB\-\-since\-start\fR'* ]] ||
	fail "the man page lacks analyze's --snapshot or observe's --since-start"
for args in "analyze" "analyze -f" "analyze -f x extra" "analyze -o yaml -f x" "analyze --bogus" \
	"observe --verdict maybe" "observe extra" "inspect" "inspect services extra" \
	"inspect policy -o yaml" "proxy certs --bogus" "top --interval 0" "top extra" \
	"uninstall extra" "uninstall --dry-run" "verify-install extra" "install --purge" \
	"install extra" "completion" "completion zsh" "version extra" "version --timeout 1" \
	"profile dump a b" "profile dump -o xml" "manifest generate extra" "status extra"; do
	rc=0
	# shellcheck disable=SC2086
	SLUICE_CONTROL=https://127.0.0.1:1 "$CTL" --pin-root "$TMP/none" $args >/dev/null 2>&1 || rc=$?
	[ $rc -eq 2 ] || fail "sluicectl $args: exit $rc, want 2 (usage)"
done
# the options a command shares with the program are its own too
cat >"$TMP/mesh.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
  selector: {app: web}
EOF
"$CTL" analyze -f "$TMP/mesh.yaml" -o json | jq -e '.errors == 0 and .resources == 1' >/dev/null ||
	fail "analyze -o json"

# every command --help lists, and nothing else, besides the options
want=$("$CTL" --help | sed -n '/^commands/,$s/^  \([a-z][a-z-]*\).*/\1/p' | sort | tr '\n' ' ')
got=$(complete_words '' | tr ' ' '\n' | grep -v '^-' | sort | tr '\n' ' ')
[ "$want" = "$got" ] || fail "completion offers '$got', --help lists '$want'"
[ -n "$want" ] || fail "--help lists no commands"

# man pages: each renders without a warning and names every option of --help
for prog in sluicectl:1 sluice-agent:8 sluice-control:8 sluice-cni:8; do
	name=${prog%:*}
	"$BIN/$name" --man >"$TMP/$name.${prog#*:}" || fail "$name --man failed"
	if [ -e "$BUILD/man/$name.${prog#*:}" ]; then
		cmp -s "$TMP/$name.${prog#*:}" "$BUILD/man/$name.${prog#*:}" ||
			fail "$BUILD/man/$name.${prog#*:} is not what $name --man prints"
	fi
	command -v groff >/dev/null || continue
	warn=$(groff -man -Tutf8 -ww -z "$TMP/$name.${prog#*:}" 2>&1) || fail "groff failed on $name's page: $warn"
	[ -z "$warn" ] || fail "groff warns on $name's page: $warn"
	text=$(groff -man -Tascii -P-cbou "$TMP/$name.${prog#*:}" 2>/dev/null)
	for opt in $("$BIN/$name" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		[[ $text = *"$opt"* ]] || fail "$name's man page lacks $opt"
	done
	[[ $text != *--man* ]] || fail "$name's man page shows the hidden --man"
done
command -v groff >/dev/null || note "groff is not installed: man pages not rendered"

# version: one for the three programs, and the running control plane's
v=$("$CTL" version --control https://127.0.0.1:1 | sed -n 's/^sluicectl //p')
[ -n "$v" ] || fail "sluicectl version printed no version"
[ "$("$BIN/sluice-agent" --version)" = "sluice-agent $v" ] || fail "agent: $("$BIN/sluice-agent" --version), ctl: $v"
[ "$("$BIN/sluice-control" --version)" = "sluice-control $v" ] || fail "control: $("$BIN/sluice-control" --version), ctl: $v"
j=$("$CTL" -o json version --control https://127.0.0.1:1) || fail "version -o json failed"
[ "$(jq -c . <<<"$j")" = "{\"version\":\"$v\"}" ] || fail "nothing runs, yet: $j"

port=$((20000 + RANDOM % 20000))
"$BIN/sluice-control" --state-dir "$TMP/control" --listen "127.0.0.1:$port" >"$TMP/control.log" 2>&1 &
CONTROL_PID=$!
for _ in $(seq 100); do
	j=$("$CTL" version -o json --control "https://127.0.0.1:$port" --credentials "$TMP/control" 2>&1)
	[ "$(jq -r '.control_plane.version // empty' <<<"$j" 2>/dev/null)" = "$v" ] && break
	sleep 0.05
done
[ "$(jq -r .control_plane.version <<<"$j")" = "$v" ] || fail "control plane's version: $j; log: $(cat "$TMP/control.log")"
"$CTL" version --control "https://127.0.0.1:$port" --credentials "$TMP/control" |
	grep -qx "control plane $v (https://127.0.0.1:$port)" || fail "version's table lacks the control plane"
# the control-plane commands' options: --control URL as one word or two,
# options before and after the arguments
cp=(--credentials "$TMP/control")
"$CTL" status --control "https://127.0.0.1:$port" "${cp[@]}" -o json | jq -e .config_version >/dev/null ||
	fail "status --control URL"
"$CTL" status "${cp[@]}" --control="https://127.0.0.1:$port" | grep -q "^control plane $v at https://127.0.0.1:$port" ||
	fail "status --control=URL"
[ "$("$CTL" get services -A --control "https://127.0.0.1:$port" "${cp[@]}" -o json)" = "[]" ] ||
	fail "get services -A: $("$CTL" get services -A --control "https://127.0.0.1:$port" "${cp[@]}" -o json 2>&1)"
err=$("$CTL" get --control "https://127.0.0.1:$port" "${cp[@]}" service web 2>&1) &&
	fail "get service web found one"
[[ $err = *"Service default/web not found"* ]] || fail "get KIND NAME after the options: $err"
# the agent's, from the status.json it writes (as root: its run dir)
if [ "$(id -u)" -eq 0 ]; then
	node=sluice-e2e-cli-$$
	RUN=/run/sluice/$node
	trap '[ -z "$CONTROL_PID" ] || kill "$CONTROL_PID" 2>/dev/null; rm -rf "$TMP" "$RUN"' EXIT
	mkdir -p "$RUN"
	printf '{"node": "n1", "version": "%s", "pid": %d}\n' "$v" $$ >"$RUN/status.json"
	j=$("$CTL" --pin-root "/sys/fs/bpf/$node" version -o json --control https://127.0.0.1:1)
	[ "$(jq -c .agent <<<"$j")" = "{\"node\":\"n1\",\"version\":\"$v\"}" ] || fail "agent's version: $j"
	sleep 0 & dead=$!
	wait "$dead"
	printf '{"node": "n1", "version": "%s", "pid": %d}\n' "$v" "$dead" >"$RUN/status.json"
	j=$("$CTL" --pin-root "/sys/fs/bpf/$node" version -o json --control https://127.0.0.1:1)
	[ "$(jq -c .agent <<<"$j")" = null ] || fail "an agent that exited is reported: $j"
fi
echo "ok: completion, man pages, version $v"
