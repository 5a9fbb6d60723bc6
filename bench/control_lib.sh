# shellcheck shell=bash
# The control-plane benches' shared parts (control.sh, fanout.sh), on top of
# lib.sh: sluicectl apply from node1's namespace, the control plane's log
# read for ACKs and pushed bytes, and the generated services. Needs C (the
# simulated cluster) and TMP/control.log (the running control plane's log).

ms() { date -d "$1" +%s%3N; }
now_ms() { date +%s%3N; }

# acked VERSION: "NODES TIME": how many nodes ACKed VERSION or a later
# one, and the time of the later of those ACKs (each node's first)
acked() {
	awk -v v="$1" '/: node [^ ]+: ACK version [0-9]+$/ && $NF + 0 >= v {
		n = $(NF - 3); if (!(n in t)) { t[n] = $1; c++; if ($1 > last) last = $1 } }
		END { print c + 0, last }' "$TMP/control.log"
}
# taken VERSION: the time (ms since the epoch) the control plane took the
# request that made VERSION: its log line for the change, less the steps
# that line times (parse and check, compare, compile, save and push)
taken() {
	local line t
	line=$(grep -E "config version $1 \(" "$TMP/control.log" | tail -n 1)
	[ -n "$line" ] || return 1
	t=$(ms "${line%% *}")
	echo $(( t - $(grep -oE '[0-9]+ ms' <<<"$line" | awk '{ s += $1 } END { print s + 0 }') ))
}
# wait_acked VERSION: all NODES agents (default 2) ACKed VERSION or a
# later one (120 s at most); else prints why and fails
wait_acked() {
	local a nack
	for _ in $(seq 2400); do
		read -r -a a <<<"$(acked "$1")"
		[ "${a[0]}" -ge "${NODES:-2}" ] && return 0
		nack=$(awk -v v="$1" '/: NACK version [0-9]+:/ { x = $0; sub(/.*NACK version /, "", x); if (x + 0 >= v) { print; exit } }' "$TMP/control.log")
		[ -z "$nack" ] || { echo "NACK: $nack"; return 1; }
		sleep 0.05
	done
	echo "version $1 or later not ACKed by ${NODES:-2} agents in 120 s ($(grep -c ': ACK version' "$TMP/control.log") ACKs in the log; last: $(grep 'ACK version' "$TMP/control.log" | tail -n 2 | tr '\n' ' '))"
	return 1
}
# services FROM TO [CHANGED]: ServiceEntries FROM..TO-1; endpoint j of
# service i is 10.200.x.y from a pool of 10,000 addresses (at most 10,000
# distinct backends); CHANGED moves service FROM's first endpoint.
services() {
	awk -v from="$1" -v to="$2" -v changed="${3:-0}" 'BEGIN {
		for (i = from; i < to; i++) {
			printf "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
			printf "  name: s%d\n  namespace: bench\nspec:\n  hosts: [s%d.bench.svc.cluster.local]\n", i, i
			printf "  addresses: [10.%d.%d.%d]\n", 96 + int(i / 65536), int(i / 256) % 256, i % 256
			printf "  ports:\n  - {number: 80, name: tcp, protocol: TCP, targetPort: 8080}\n"
			printf "  location: MESH_INTERNAL\n  resolution: STATIC\n  endpoints:\n"
			for (j = 0; j < 10; j++) {
				a = (i * 10 + j) % 10000
				if (j == 0 && i == from && changed) a = 10000 + changed % 50000
				printf "  - {address: 10.%d.%d.%d}\n", 200 + int(a / 65536), int(a / 256) % 256, a % 256
			}
		}
	}'
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# cpu_ms PID: the CPU time (user and system) PID has used, in ms
cpu_ms() {
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	f=${f##*) }   # the fields after the command name (which may hold spaces)
	read -r -a f <<<"$f"
	echo $(( (f[11] + f[12]) * 1000 / $(getconf CLK_TCK) ))
}

# apply FILE: sluicectl apply; prints the version, or why it failed
# (read from its text with bash alone: timed loads wait on it, and jq's
# start costs some 25 ms of CPU)
apply() {
	local out
	out=$(timeout 120 nsenter --net="/run/netns/slc.$C.node1" "$BIN/sluicectl" apply -f "$1" 2>&1) ||
		{ echo "apply refused: $(tail -n 3 <<<"$out" | tr '\n' ' ')"; return 1; }
	[[ $out =~ config\ version\ ([0-9]+) ]] || { echo "apply printed no version: $out"; return 1; }
	echo "${BASH_REMATCH[1]}"
}
# pushed VERSION: bytes the change to VERSION pushed, from the log
pushed() {
	awk -v v="$1" '/config version [0-9]+ / { x = $0; sub(/.*config version /, "", x);
		if (x + 0 == v && match($0, /[0-9]+ bytes pushed/)) print substr($0, RSTART, RLENGTH - 13) + 0 }' \
		"$TMP/control.log" | tail -n 1
}

