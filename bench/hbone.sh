#!/bin/bash
# Cross-node pod to pod through the node mTLS proxies, side by side with no
# mesh and with a pair of nginx stream proxies doing the same mutual TLS 1.3
# with the same certificates, in one run, medians, ratios.
#
#   bench/hbone.sh BUILD_DIR        (make bench; writes BUILD_DIR/bench/hbone.txt)
#   BENCH_ROUNDS (5) x BENCH_SECONDS (3) per measurement, BENCH_PARALLEL (4)
#   threads for the connection rate.
#
# One simulated cluster of 2 nodes x 2 pods, a control plane and two agents
# (tests/e2e/hbone_lib.sh: the setup of test_hbone_capture), and in each
# server pod iperf3 (5201), sockperf (11111) and sltest serve (8080):
#   plain   node1.pod2 -> node2.pod2: neither is a mesh workload, so nothing
#           is captured (the agents' programs stay attached: "capture off")
#   sluice  node1.pod1 (client) -> node2.pod1 (server, PeerAuthentication
#           STRICT, ALLOW from the client's principal): connect() to the
#           server pod's own address is captured to node1's proxy, HBONE
#           (TLS 1.3, HTTP/2 CONNECT) to node2's proxy, delivered there
#   nginx   node1.pod2 -> nginx on node1 (10.244.1.1) -> TLS 1.3 with client
#           certificate -> nginx on node2 (ssl_verify_client on) ->
#           node2.pod2; the certificates are the nodes' own (the mesh CA's,
#           the ones the sluice proxies present on 15008), one nginx process
#           per node (master_process off, one worker: the agent's proxy is
#           one thread too)
# Metrics: iperf3 Gbit/s with 1 and 8 streams, sockperf ping-pong p50/p99
# round trip (64 B), new connections per second (sltest crr), and the
# proxies' CPU seconds per GiB (utime + stime of both agents, resp. both
# nginx processes, around the 1-stream iperf3 run, over the bytes it moved)
# and per sockperf round trip (user+system and user alone: what a round
# trip's latency owes to the proxies' own work, beside the wake-ups).
# A round runs the three variants one after the other; the connection
# rates have rounds of their own at the end. Ratios are given two ways:
# the median over the rounds of each round's ratio (the variants of one
# round saw the same machine: this VM's speed drifts by tens of per cent
# over minutes), and the ratio of the medians.
set -euo pipefail
export SLUICE_BUILD=${1:-build}
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
. "$E2E/lib.sh"
. "$E2E/control_lib.sh"
. "$E2E/hbone_lib.sh"
SECS=${BENCH_SECONDS:-3}
PAR=${BENCH_PARALLEL:-4}
ROUNDS=${BENCH_ROUNDS:-5}
OUT=$BUILD/bench
for t in iperf3 sockperf nginx; do
	command -v $t >/dev/null || { echo "bench: $t missing (make deps)" >&2; exit 1; }
done
NGX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f $NGX_STREAM ] || { echo "bench: $NGX_STREAM missing (libnginx-mod-stream; make deps)" >&2; exit 1; }
mkdir -p "$OUT"

hb_capture_strict
hb_setup
grep -q 'capture on' "$TMP/agent.node1.log" || fail "node1's capture is not on"
MESH_SRV=$(pod_ip node2.pod1) PLAIN_SRV=$(pod_ip node2.pod2)
A1=$(cat "$TMP/agent.node1.pid") A2=$(cat "$TMP/agent.node2.pid")
for p in node1.pod1 node1.pod2; do
	# thousands of connections/s: reuse TIME_WAIT ports on the clients
	in_pod $p sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
done
for n in node1 node2; do
	# and on the nodes, whose proxies (sluice's and nginx's alike) connect
	# to the server pods from the node's address: 28,000 ports in TIME_WAIT
	# for 60 s otherwise, under 500 new connections/s to one server
	nsenter --net="/run/netns/slc.$CL.$n" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65000"
done
for p in node2.pod1 node2.pod2; do
	in_pod $p iperf3 -s -p 5201 >/dev/null 2>&1 &
	E2E_PIDS+=("$!")
	in_pod $p taskset -c 1 sockperf sr --tcp -p 11111 >/dev/null 2>&1 &
	E2E_PIDS+=("$!")
	serve $p "srv-$p" --tcp 8080
done

# ---- the nginx pair ---------------------------------------------------------
# node1: 10.244.1.1:1520x plaintext from the pod -> TLS to node2:1620x;
# node2: 1620x TLS with a verified client certificate -> node2.pod2
nginx_conf() { # NODE
	local n=$1 d=$TMP/nginx.$1 port
	mkdir -p "$d"
	{
		echo "load_module $NGX_STREAM;"
		echo "daemon off; master_process off; worker_processes 1;"
		echo "pid $d/nginx.pid; error_log $d/error.log warn;"
		echo "events { worker_connections 16384; }"
		echo "stream {"
		echo "  log_format tls '\$remote_addr \$ssl_protocol \$ssl_cipher \$ssl_client_verify';"
		for port in 5201 11111 8080; do
			if [ "$n" = node1 ]; then
				echo "  server { listen 10.244.1.1:$((15000 + port % 1000)); proxy_pass 192.168.77.2:$((16000 + port % 1000));"
				echo "    proxy_ssl on; proxy_ssl_protocols TLSv1.3;"
				echo "    proxy_ssl_certificate $TMP/agent-state.node1/node.crt;"
				echo "    proxy_ssl_certificate_key $TMP/agent-state.node1/node.key;"
				echo "    proxy_ssl_trusted_certificate $CP_DIR/ca.crt; proxy_ssl_verify on;"
				echo "    proxy_ssl_name node2; proxy_ssl_server_name off; }"
			else
				echo "  server { listen 192.168.77.2:$((16000 + port % 1000)) ssl; proxy_pass $PLAIN_SRV:$port;"
				echo "    access_log $d/access.log tls;"
				echo "    ssl_protocols TLSv1.3; ssl_certificate $TMP/agent-state.node2/node.crt;"
				echo "    ssl_certificate_key $TMP/agent-state.node2/node.key;"
				echo "    ssl_client_certificate $CP_DIR/ca.crt; ssl_verify_client on; }"
			fi
		done
		echo "}"
	} >"$d/nginx.conf"
	# nsenter itself (it execs nginx): $! is the nginx process
	nsenter --net="/run/netns/slc.$CL.$n" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" \
		>>"$TMP/nginx.$n.log" 2>&1 &
	E2E_PIDS+=("$!")
	NGX=$!
}
nginx_conf node1; N1=$NGX
nginx_conf node2; N2=$NGX
sleep 0.5
kill -0 "$N1" "$N2" 2>/dev/null || fail "nginx did not start: $(cat "$TMP"/nginx.*/error.log)"
out=$(in_pod node1.pod2 "$BIN/sltest" connect --to 10.244.1.1:15080 --timeout 3000) ||
	fail "through the nginx pair: $out $(cat "$TMP"/nginx.*/error.log)"
sleep 0.3   # the stream module logs when the session ends
grep -q 'TLSv1.3 TLS_AES_256_GCM_SHA384 SUCCESS' "$TMP/nginx.node2/access.log" ||
	fail "nginx on node2 did not log a TLS 1.3 connection with a verified client certificate: $(cat "$TMP/nginx.node2/access.log")"
out=$(in_pod node1.pod1 "$BIN/sltest" connect --to "$MESH_SRV:8080" --timeout 3000) || fail "through sluice: $out"

# ---- measurements -----------------------------------------------------------
declare -A M
METRICS="gbps-1 gbps-8 p50-64 p99-64 conn/s cpu-s/GiB cpu-us/rt usr-us/rt"
# ticks PID...: user+system CPU ticks of the processes, "USER TOTAL"
ticks() { local u=0 s=0 p a; for p in "$@"; do read -r -a a < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + a[0])) s=$((s + a[1])); done; echo "$u $((u + s))"; }
HZ=$(getconf CLK_TCK)
iperf() { # client-pod ip port streams: "Gbit/s bytes", or "fail:REASON 0"
	local out err
	for _ in 1 2 3; do   # the server takes one test at a time ("busy")
		out=$(in_pod "$1" iperf3 -c "$2" -p "$3" -t "$SECS" -P "$4" -J 2>&1 || true)
		err=$(jq -r '.error // empty' <<<"$out" 2>/dev/null || echo "unreadable output")
		[ -z "$err" ] && { jq -r '"\(.end.sum_received.bits_per_second / 1e9) \(.end.sum_received.bytes)"' <<<"$out"; return; }
		[[ $err = *busy* ]] || break
		sleep 0.5
	done
	echo "bench: iperf3 to $2:$3 failed: $err" >&2
	echo "fail:$(tr ' ' _ <<<"$err") 0"
}
measure() { # variant client-pod ip iperf-port pp-port [proxy pids...]
	local v=$1 pod=$2 ip=$3 ip5=$4 pp=$5 a t0 t1 out
	shift 5
	read -r -a t0 <<<"$(ticks "$@")"
	read -r -a a <<<"$(iperf "$pod" "$ip" "$ip5" 1)"
	read -r -a t1 <<<"$(ticks "$@")"
	M[$v,gbps-1]+=" ${a[0]}"
	if [ $# -gt 0 ] && [ "${a[1]}" -gt 0 ]; then
		M[$v,cpu-s/GiB]+=" $(awk -v t=$((t1[1] - t0[1])) -v hz="$HZ" -v b="${a[1]}" 'BEGIN { print t / hz / (b / 2^30) }')"
	elif [ $# -gt 0 ]; then
		M[$v,cpu-s/GiB]+=" fail"   # keeps the rounds aligned for paired()
	fi
	read -r -a a <<<"$(iperf "$pod" "$ip" "$ip5" 8)"
	M[$v,gbps-8]+=" ${a[0]}"
	read -r -a t0 <<<"$(ticks "$@")"
	out=$(in_pod "$pod" taskset -c 0 sockperf pp --tcp -i "$ip" -p "$pp" -m 64 -t "$SECS" 2>&1) ||
		fail "sockperf to $ip:$pp ($v): $out"
	read -r -a t1 <<<"$(ticks "$@")"
	read -r -a a <<<"$(awk '/percentile 50.000 =/ { p50 = $NF } /percentile 99.000 =/ { p99 = $NF }
		/\[Total Run\]/ { sub(/.*ReceivedMessages=/, ""); n = $1 } END { print p50, p99, n }' <<<"$out")"
	M[$v,p50-64]+=" ${a[0]}" M[$v,p99-64]+=" ${a[1]}"
	if [ $# -gt 0 ]; then   # the proxies' CPU per round trip, in the whole run (warm-up too)
		M[$v,cpu-us/rt]+=" $(awk -v t=$((t1[1] - t0[1])) -v hz="$HZ" -v n="${a[2]:-0}" 'BEGIN { print (n > 0 ? t / hz * 1e6 / n : "fail") }')"
		M[$v,usr-us/rt]+=" $(awk -v t=$((t1[0] - t0[0])) -v hz="$HZ" -v n="${a[2]:-0}" 'BEGIN { print (n > 0 ? t / hz * 1e6 / n : "fail") }')"
	fi
}
# New connections per second, in rounds of their own after the others: each
# leaves thousands of sockets in TIME_WAIT, which slowed every variant's
# later rounds when they were interleaved.
measure_crr() { # variant client-pod ip port
	local out
	out=$(in_pod "$2" "$BIN/sltest" crr --to "$3:$4" --duration "$SECS" --parallel "$PAR") ||
		fail "crr to $3:$4 ($1): $out"
	M[$1,conn/s]+=" $(jq -r .rate <<<"$out")"
}
opened() { metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*connection_security_policy="mutual_tls"'; }
# paired "X samples" "B samples": the median of X[i]/B[i] over the rounds
# where both are numbers ("-" if none)
paired() {
	paste <(tr ' ' '\n' <<<"$1" | sed '/^$/d') <(tr ' ' '\n' <<<"$2" | sed '/^$/d') |
		awk '$1 ~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ && $2 ~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ && $2 > 0 { print $1 / $2 }' |
		sort -g | awk '{ a[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) printf "%.3f", a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
median() { tr ' ' '\n' | grep -E '^[0-9.]+([eE][-+]?[0-9]+)?$' | sort -g | awk '{ a[NR] = $1 } END { if (!NR) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

for r in $(seq "$ROUNDS"); do
	echo "bench: hbone round $r/$ROUNDS"
	measure plain node1.pod2 "$PLAIN_SRV" 5201 11111
	o0=$(opened)
	measure sluice node1.pod1 "$MESH_SRV" 5201 11111 "$A1" "$A2"
	o1=$(opened)
	# every sluice connection went through node2's proxy (iperf3 opens 1+1 and 1+8)
	[ "$o1" -ge $((o0 + 11)) ] || fail "node2's proxy saw $((o1 - o0)) connections in the sluice round, not the bench's"
	measure nginx node1.pod2 10.244.1.1 15201 15111 "$N1" "$N2"
done
for r in $(seq "$ROUNDS"); do
	echo "bench: hbone connection rate, round $r/$ROUNDS"
	measure_crr plain node1.pod2 "$PLAIN_SRV" 8080
	measure_crr sluice node1.pod1 "$MESH_SRV" 8080
	measure_crr nginx node1.pod2 10.244.1.1 15080
done

{
	echo "sluice bench (cross-node mTLS proxies): $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) CPUs, $ROUNDS rounds x ${SECS}s, medians"
	printf '%-7s' variant
	for m in $METRICS; do printf ' %10s' "$m"; done
	echo
	for v in plain sluice nginx; do
		printf '%-7s' "$v"
		for m in $METRICS; do printf ' %10.3f' "$(median <<<"${M[$v,$m]:-}")"; done
		echo
	done
	echo "ratios, median of the ratios of the same round (the machine drifts between rounds):"
	for pair in "sluice nginx" "sluice plain"; do
		set -- $pair
		printf '%-7s' "$1/$2"
		for m in $METRICS; do printf ' %9sx' "$(paired "${M[$1,$m]:-}" "${M[$2,$m]:-}")"; done
		echo
	done
	echo "ratios of the medians:"
	for pair in "sluice nginx" "sluice plain"; do
		set -- $pair
		printf '%-7s' "$1/$2"
		for m in $METRICS; do
			awk -v x="$(median <<<"${M[$1,$m]:-}")" -v b="$(median <<<"${M[$2,$m]:-}")" \
				'BEGIN { if (b + 0 > 0 && x != "nan") printf " %9.3fx", x / b; else printf " %10s", "-" }'
		done
		echo
	done
	awk -v sc="$(median <<<"${M[sluice,cpu-s/GiB]}")" -v nc="$(median <<<"${M[nginx,cpu-s/GiB]}")" \
	    -v pr="$(paired "${M[nginx,cpu-s/GiB]}" "${M[sluice,cpu-s/GiB]}")" \
		'BEGIN { printf "throughput per CPU second (GiB per proxy CPU-s, 1 stream): sluice %.3f, nginx %.3f, sluice/nginx %.3fx by medians, %sx by rounds (goal >= 1.3x)\n", 1 / sc, 1 / nc, nc / sc, pr }'
	echo "(gbps: iperf3 Gbit/s; p50/p99: sockperf 64 B round trip in us; conn/s: sltest crr with $PAR threads;"
	echo " cpu-s/GiB: both proxies' user+system CPU seconds per GiB during the 1-stream run; cpu-us/rt, usr-us/rt:"
	echo " both proxies' user+system, resp. user, CPU microseconds per sockperf round trip; lower is better for"
	echo " p50, p99 and the CPU figures. Failed runs are listed as fail:REASON below and left out of the medians.)"
	echo "samples:"
	for v in plain sluice nginx; do
		for m in $METRICS; do echo "  $v $m:${M[$v,$m]:-}"; done
	done
} | tee "$OUT/hbone.txt"
