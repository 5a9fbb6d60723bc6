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
# proxies' CPU seconds per GiB (utime + stime of both sluice-proxy processes, resp. both
# nginx processes, around the 1-stream iperf3 run, over the bytes it moved)
# and per sockperf round trip (user+system and user alone: what a round
# trip's latency owes to the proxies' own work, beside the wake-ups).
# gib/cpu-s is the throughput per CPU second: GiB moved per CPU second of
# both proxies in the 1-stream run. A round runs the three variants one
# after the other; the connection rates have rounds of their own at the
# end. The report gives each ratio two ways: the ratio of the medians, and
# the median over the rounds of each round's ratio (the variants of one
# round saw the same machine: this VM's speed drifts by tens of per cent
# over minutes). Goals, sluice against nginx: at least 1.3x the throughput
# per CPU second, p50 and p99 round trip below nginx's.
set -euo pipefail
export SLUICE_BUILD=${1:-build}
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
. "$E2E/lib.sh"
. "$E2E/control_lib.sh"
. "$E2E/hbone_lib.sh"
SECS=${BENCH_SECONDS:-3}
PAR=${BENCH_PARALLEL:-4}
ROUNDS=${BENCH_ROUNDS:-5}
BENCH=hbone
. "$ROOT/bench/record.sh"
rec_param rounds "$ROUNDS"
rec_param seconds "$SECS"
for t in iperf3 sockperf nginx; do
	command -v $t >/dev/null || { rec_failed '*' "$t missing (make deps)"; exit 1; }
done
NGX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f $NGX_STREAM ] || { rec_failed '*' "$NGX_STREAM missing (libnginx-mod-stream; make deps)"; exit 1; }

METRICS="gbps-1 gbps-8 p50-64 p99-64 conn/s gib/cpu-s cpu-s/GiB cpu-us/rt usr-us/rt"
rec_metric gbps-1 Gbit/s higher "iperf3 throughput, 1 stream"
rec_metric gbps-8 Gbit/s higher "iperf3 throughput, 8 streams"
rec_metric p50-64 us lower "sockperf TCP ping-pong p50 round trip, 64 B"
rec_metric p99-64 us lower "sockperf TCP ping-pong p99 round trip, 64 B"
rec_metric conn/s conn/s higher "new connections per second (sltest crr, $PAR threads)"
rec_metric gib/cpu-s GiB/s higher "GiB moved per CPU second of both proxies, 1-stream iperf3"
rec_metric cpu-s/GiB s/GiB lower "both proxies' user+system CPU seconds per GiB, 1-stream iperf3"
rec_metric cpu-us/rt us lower "both proxies' user+system CPU microseconds per sockperf round trip"
rec_metric usr-us/rt us lower "both proxies' user CPU microseconds per sockperf round trip"
for m in $METRICS; do
	case $m in
	gib/cpu-s)     rec_compare "$m" sluice nginx '>=' 1.3 ;;
	p50-64|p99-64) rec_compare "$m" sluice nginx '<' 1 ;;
	*)             rec_compare "$m" sluice nginx ;;
	esac
done
for m in gbps-1 gbps-8 p50-64 p99-64 conn/s; do rec_compare "$m" sluice plain; done
for m in gbps-1 gbps-8 p50-64 p99-64 conn/s; do rec_compare "$m" nginx plain; done

hb_capture_strict
hb_setup
grep -q 'capture on' "$TMP/agent.node1.log" || fail "node1's capture is not on"
MESH_SRV=$(pod_ip node2.pod1) PLAIN_SRV=$(pod_ip node2.pod2)
P1=$(wait_serving node1) P2=$(wait_serving node2)   # the node proxies
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
# ticks PID...: user+system CPU ticks of the processes, "USER TOTAL"
ticks() { local u=0 s=0 p a; for p in "$@"; do read -r -a a < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + a[0])) s=$((s + a[1])); done; echo "$u $((u + s))"; }
HZ=$(getconf CLK_TCK)
iperf() { # client-pod ip port streams: "Gbit/s bytes", or "fail:REASON"
	local out err
	for _ in 1 2 3; do   # the server takes one test at a time ("busy")
		out=$(timeout $((SECS + 30)) "$SIM" exec "$CL" "$1" -- iperf3 -c "$2" -p "$3" -t "$SECS" -P "$4" -J 2>&1 || true)
		err=$(jq -r '.error // empty' <<<"$out" 2>/dev/null || echo "unreadable output: $(tail -n 3 <<<"$out" | tr '\n' ' ')")
		[ -z "$err" ] && { jq -r '"\(.end.sum_received.bits_per_second / 1e9) \(.end.sum_received.bytes)"' <<<"$out"; return; }
		[[ $err = *busy* ]] || break
		sleep 0.5
	done
	echo "fail:iperf3 -P $4 to $2:$3: $err"
}
measure() { # variant round client-pod ip iperf-port pp-port [proxy pids...]
	local v=$1 r=$2 pod=$3 ip=$4 ip5=$5 pp=$6 a t0 t1 out
	shift 6
	read -r -a t0 <<<"$(ticks "$@")"
	out=$(iperf "$pod" "$ip" "$ip5" 1)
	read -r -a t1 <<<"$(ticks "$@")"
	read -r -a a <<<"$out"
	if [[ $out = fail:* ]]; then rec_sample gbps-1 "$v" "$r" "$out"; else rec_sample gbps-1 "$v" "$r" "${a[0]}"; fi
	if [ $# -gt 0 ] && [[ $out != fail:* ]] && [ "${a[1]}" -gt 0 ]; then
		rec_sample cpu-s/GiB "$v" "$r" "$(awk -v t=$((t1[1] - t0[1])) -v hz="$HZ" -v b="${a[1]}" 'BEGIN { print t / hz / (b / 2^30) }')"
		rec_sample gib/cpu-s "$v" "$r" "$(awk -v t=$((t1[1] - t0[1])) -v hz="$HZ" -v b="${a[1]}" \
			'BEGIN { print (t > 0 ? b / 2^30 / (t / hz) : "fail:no CPU tick counted in the run") }')"
	elif [ $# -gt 0 ]; then
		rec_sample cpu-s/GiB "$v" "$r" "fail:no bytes moved: $out"
		rec_sample gib/cpu-s "$v" "$r" "fail:no bytes moved: $out"
	fi
	out=$(iperf "$pod" "$ip" "$ip5" 8)
	if [[ $out = fail:* ]]; then rec_sample gbps-8 "$v" "$r" "$out"; else rec_sample gbps-8 "$v" "$r" "${out%% *}"; fi
	read -r -a t0 <<<"$(ticks "$@")"
	if ! out=$(timeout $((SECS + 30)) "$SIM" exec "$CL" "$pod" -- taskset -c 0 sockperf pp --tcp -i "$ip" -p "$pp" -m 64 -t "$SECS" 2>&1); then
		out="fail:sockperf to $ip:$pp: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		rec_sample p50-64 "$v" "$r" "$out"
		rec_sample p99-64 "$v" "$r" "$out"
		[ $# -eq 0 ] || { rec_sample cpu-us/rt "$v" "$r" "$out"; rec_sample usr-us/rt "$v" "$r" "$out"; }
		return
	fi
	read -r -a t1 <<<"$(ticks "$@")"
	read -r -a a <<<"$(awk '/percentile 50.000 =/ { p50 = $NF } /percentile 99.000 =/ { p99 = $NF }
		/\[Total Run\]/ { sub(/.*ReceivedMessages=/, ""); n = $1 }
		END { print (p50 == "" ? "fail:no_p50" : p50), (p99 == "" ? "fail:no_p99" : p99), n + 0 }' <<<"$out")"
	rec_sample p50-64 "$v" "$r" "${a[0]}"
	rec_sample p99-64 "$v" "$r" "${a[1]}"
	if [ $# -gt 0 ]; then   # the proxies' CPU per round trip, in the whole run (warm-up too)
		rec_sample cpu-us/rt "$v" "$r" "$(awk -v t=$((t1[1] - t0[1])) -v hz="$HZ" -v n="${a[2]}" 'BEGIN { print (n > 0 ? t / hz * 1e6 / n : "fail:no round trips counted") }')"
		rec_sample usr-us/rt "$v" "$r" "$(awk -v t=$((t1[0] - t0[0])) -v hz="$HZ" -v n="${a[2]}" 'BEGIN { print (n > 0 ? t / hz * 1e6 / n : "fail:no round trips counted") }')"
	fi
}
# New connections per second, in rounds of their own after the others: each
# leaves thousands of sockets in TIME_WAIT, which slowed every variant's
# later rounds when they were interleaved.
measure_crr() { # variant round client-pod ip port
	local out
	if out=$(timeout $((SECS + 30)) "$SIM" exec "$CL" "$3" -- "$BIN/sltest" crr --to "$4:$5" --duration "$SECS" --parallel "$PAR" 2>&1); then
		rec_sample conn/s "$1" "$2" "$(jq -r '.rate // "fail:no rate in sltest output"' <<<"$out" 2>/dev/null || echo "fail:sltest crr output: $out")"
	else
		rec_sample conn/s "$1" "$2" "fail:sltest crr to $4:$5: $out"
	fi
}
opened() { metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*connection_security_policy="mutual_tls"'; }

for r in $(seq "$ROUNDS"); do
	echo "bench: hbone round $r/$ROUNDS"
	measure plain "$r" node1.pod2 "$PLAIN_SRV" 5201 11111
	o0=$(opened)
	measure sluice "$r" node1.pod1 "$MESH_SRV" 5201 11111 "$P1" "$P2"
	o1=$(opened)
	# every sluice connection went through node2's proxy (iperf3 opens 1+1 and 1+8)
	[ "$o1" -ge $((o0 + 11)) ] ||
		rec_failed sluice "round $r: node2's proxy saw $((o1 - o0)) mutual-TLS connections in the sluice round, not the bench's 11"
	measure nginx "$r" node1.pod2 10.244.1.1 15201 15111 "$N1" "$N2"
done
for r in $(seq "$ROUNDS"); do
	echo "bench: hbone connection rate, round $r/$ROUNDS"
	measure_crr plain "$r" node1.pod2 "$PLAIN_SRV" 8080
	measure_crr sluice "$r" node1.pod1 "$MESH_SRV" 8080
	measure_crr nginx "$r" node1.pod2 10.244.1.1 15080
done
rec_done
