#!/usr/bin/env bash
# A real agent's HBONE port (node2's 15008) against peers it must refuse,
# from node1's network namespace, while a captured connection of the client
# pod runs through both proxies (a checked echo every 50 ms) and must not
# notice:
#  - client certificates from another CA, expired (signed by the mesh CA),
#    of another trust domain (signed by the mesh CA), and none at all;
#  - bytes that are not TLS, a handshake that stalls, a CONNECT to an
#    address that is not a workload of node2, and stream floods (streams
#    past the concurrency limit at once; an open-refuse-cancel loop).
# Each is cut off, counted in sluice_proxy_refused_total{reason} and written
# as a deny flow event. A certificate the mesh CA signed for the client's
# identity, through the same probe, is accepted and tunnels to the server:
# the probe can tell an acceptance from a refusal.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/control_lib.sh"
source "$(dirname "$0")/hbone_lib.sh"
command -v openssl >/dev/null || skip "openssl missing"
command -v python3 >/dev/null || skip "python3 missing"
PROBE=$(cd "$(dirname "$0")" && pwd)/hbone_probe.py

hb_capture_strict
hb_setup
SRV=$(pod_ip node2.pod1)
HB=192.168.77.2
serve node2.pod1 srv --tcp 8080

# the good connection, captured on node1 and carried over HBONE (before
# 5.14 nothing is captured: the test hands node1's proxy the destination
# itself and connects to the outbound listener)
GOOD=$SRV:8080
if ! connect_knows_client; then
	origdst_fill node1.pod1 "$SRV" 8080 client
	GOOD=$HB_OUT
fi
in_pod node1.pod1 "$BIN/sltest" hold --to "$GOOD" --until "$TMP/stop" --interval-ms 50 \
	--max-seconds 120 --timeout 3000 >"$TMP/hold.json" 2>"$TMP/hold.log" &
HOLD=$!
E2E_PIDS+=("$HOLD")

# ---- certificates -----------------------------------------------------------
C=$TMP/certs
mkdir -p "$C/db"
: >"$C/db/index.txt"
echo 01 >"$C/db/serial"
# leaf NAME URI CA_CERT CA_KEY [openssl ca date flags]: key and certificate
# for URI (a SPIFFE ID), signed by the CA with `openssl ca`, which alone can
# set any validity period (-startdate/-enddate)
leaf() {
	local name=$1 uri=$2 cacrt=$3 cakey=$4
	shift 4
	cat >"$C/$name.cnf" <<EOF
[ ca ]
default_ca = x
[ x ]
database = $C/db/index.txt
new_certs_dir = $C/db
serial = $C/db/serial
default_md = sha256
default_days = 1
policy = pol
unique_subject = no
x509_extensions = ext
[ pol ]
commonName = supplied
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,serverAuth
subjectAltName = URI:$uri
EOF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/$name.key" \
		-subj "/CN=$name" -out "$C/$name.csr" 2>>"$TMP/openssl.log" || fail "CSR for $name"
	openssl ca -batch -notext -config "$C/$name.cnf" -cert "$cacrt" -keyfile "$cakey" \
		-in "$C/$name.csr" -out "$C/$name.crt" "$@" >>"$TMP/openssl.log" 2>&1 ||
		fail "signing $name: $(tail -3 "$TMP/openssl.log")"
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/other-ca.key" \
	-subj "/CN=other root" -days 2 -out "$C/other-ca.crt" 2>>"$TMP/openssl.log" || fail "other CA"
MCA=$CP_DIR/ca.crt MKEY=$CP_DIR/ca.key
[ -f "$MKEY" ] || fail "the mesh CA key is not at $MKEY"
leaf good spiffe://cluster.local/ns/default/sa/client "$MCA" "$MKEY"
leaf foreign spiffe://cluster.local/ns/default/sa/client "$C/other-ca.crt" "$C/other-ca.key"
leaf expired spiffe://cluster.local/ns/default/sa/client "$MCA" "$MKEY" \
	-startdate 20200101000000Z -enddate 20200102000000Z
leaf othertd spiffe://other.domain/ns/default/sa/x "$MCA" "$MKEY"
openssl x509 -in "$C/expired.crt" -noout -checkend 0 >/dev/null && fail "the expired certificate is not expired"

probe() { in_node node1 python3 "$PROBE" "$HB" 15008 "$@" --ca "$MCA"; }
with() { echo --cert "$C/$1.crt" --key "$C/$1.key"; }
refused_n() { metric node2 "^sluice_proxy_refused_total\\{reason=\"$1\"\\}"; }

# expect_refusal REASON DESCRIPTION PROBE_ARGS... : the probe is not let in,
# and node2 counts REASON once more; sets OUT
expect_refusal() {
	local reason=$1 what=$2 before after
	shift 2
	before=$(refused_n "$reason")
	OUT=$(probe "$@") || fail "$what: the probe failed: $OUT"
	jq -e '.outcome != "settings" and .outcome != "answered" and .outcome != "timeout" and .outcome != "error"' \
		<<<"$OUT" >/dev/null || fail "$what was not refused: $OUT"
	for _ in $(seq $((40 * SCALE))); do
		after=$(refused_n "$reason")
		[ "$after" -gt "$before" ] && break
		sleep 0.05
	done
	[ "$after" -gt "$before" ] || fail "$what: sluice_proxy_refused_total{reason=\"$reason\"} stayed at $before ($OUT)"
	note "$what: refused ($(jq -c . <<<"$OUT")), counted as $reason"
}

note "control: a certificate of the mesh CA for the client is accepted and tunnels"
out=$(probe connect $(with good) --authority "$SRV:8080") || fail "control probe: $out"
jq -e '.status == 200 and (.data | startswith("srv"))' <<<"$out" >/dev/null ||
	fail "a valid client certificate was not let through: $out"

expect_refusal tls "a client certificate from another CA" tls $(with foreign)
expect_refusal tls "an expired client certificate" tls $(with expired)
jq -e '.outcome == "alert" and (.reason | test("EXPIRED"; "i"))' <<<"$OUT" >/dev/null ||
	fail "the expired certificate was not refused as expired: $OUT"
expect_refusal peer_identity "a certificate of the mesh CA for another trust domain" tls $(with othertd)
expect_refusal tls "no client certificate" tls
expect_refusal tls "bytes that are not TLS" garbage
expect_refusal handshake_timeout "a handshake that stalls" stall
# the agents run with --hbone-handshake-timeout 2000 (hb_setup)
jq -e --argjson max $((6 * SCALE)) '.seconds >= 1.5 and .seconds < $max' <<<"$OUT" >/dev/null ||
	fail "the stalled handshake was not cut off after about 2 s: $OUT"

before=$(refused_n not_local)
out=$(probe connect $(with good) --authority "$(pod_ip node1.pod2):8080") || fail "not_local probe: $out"
jq -e '.status == 403' <<<"$out" >/dev/null || fail "a CONNECT to another node's pod was not answered 403: $out"
sleep 0.2
[ "$(refused_n not_local)" -gt "$before" ] || fail "the CONNECT to another node's pod was not counted as not_local"
note "a CONNECT to an address that is not a workload of node2: 403, counted as not_local"

# streams past SETTINGS_MAX_CONCURRENT_STREAMS (100) once it is acknowledged:
# a protocol error for nghttp2, the connection ends with GOAWAY
expect_refusal http2 "300 CONNECT streams at once (100 allowed)" flood $(with good) \
	--authority "$SRV:8080" --streams 300
jq -e '.outcome != "goaway" or .code == 1' <<<"$OUT" >/dev/null || fail "the flood's GOAWAY: $OUT"
# open, get refused, cancel, again: never past the limit, cut off after 100
expect_refusal stream_flood "300 CONNECTs refused and cancelled one after another" flood $(with good) \
	--authority "$(pod_ip node1.pod2):8080" --streams 300 --reset

note "deny flow events on node2"
for r in tls peer_identity handshake_timeout not_local http2 stream_flood; do
	jq -e -s --arg r "$r" 'map(select(.path == "hbone" and .type == "deny" and .reason == $r)) | length >= 1' \
		"$(run_dir node2)/flows.jsonl" >/dev/null || fail "no deny flow event with reason $r on node2"
done

note "the captured connection kept working throughout"
touch "$TMP/stop"
wait "$HOLD" || fail "the held connection failed: $(cat "$TMP/hold.json" "$TMP/hold.log")"
jq -e '.failed == 0 and .exchanges >= 20' "$TMP/hold.json" >/dev/null ||
	fail "the held connection: $(cat "$TMP/hold.json")"
n=$(metric node2 '^istio_tcp_connections_opened_total\{reporter="destination".*source_principal="spiffe://cluster.local/ns/default/sa/client".*connection_security_policy="mutual_tls"')
[ "$n" -ge 2 ] || fail "node2 did not see the held connection and the control probe as mutual TLS ($n)"
note "held connection: $(jq -c . "$TMP/hold.json")"
echo PASS
