#!/bin/bash
# The control plane's API refuses what it must, and refused requests change
# nothing: join tokens that are wrong, for another node, reused or expired;
# requests without a client certificate (401), with the wrong role (403),
# with a certificate from another CA or without HTTP/2 (TLS refused),
# oversized (413: over 4 MiB without a certificate, over 64 MiB with
# one), malformed (400, 404, 405, 422). A silent connection blocks no
# one; a watcher that stops reading is cut off while another keeps
# getting every push. A directory of 4.5 MB applies as one change. An
# operator's CA is taken (and a second one refused). Runs on loopback in
# the host namespace; no root needed.
. "$(dirname "$0")/lib.sh"
for t in curl openssl jq; do command -v $t >/dev/null || skip "$t is not installed"; done
[ -x "$BIN/sluice-control" ] && [ -x "$BIN/sluicectl" ] || fail "binaries missing: run make first"
TMP=$(mktemp -d /tmp/sluice-e2e-auth.XXXXXX)
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM
CP=$TMP/control

for try in 1 2 3 4 5; do
	PORT=$((20000 + RANDOM % 20000))
	"$BIN/sluice-control" --state-dir "$CP" --listen "127.0.0.1:$PORT" --stall-timeout 1000 \
		>"$TMP/control.log" 2>&1 &
	CP_PID=$!
	for i in $(seq 100); do
		grep -q 'listening on\|Address already in use' "$TMP/control.log" && break
		sleep 0.05
	done
	grep -q 'listening on' "$TMP/control.log" && break
	wait "$CP_PID" || true
done
grep -q 'listening on' "$TMP/control.log" || fail "control plane did not start: $(cat "$TMP/control.log")"
E2E_PIDS+=("$CP_PID")
URL=https://127.0.0.1:$PORT
export SLUICE_CONTROL=$URL SLUICE_CREDENTIALS=$CP
for f in ca.key admin.key server.key; do
	[ "$(stat -c %a "$CP/$f")" = 600 ] || fail "$f has mode $(stat -c %a "$CP/$f"), want 600"
done

# api CURL_ARGS... : prints the HTTP status; the body goes to $TMP/body
api() { curl -sS --http2 --max-time 10 --cacert "$CP/ca.crt" -o "$TMP/body" -w '%{http_code}' "$@" 2>"$TMP/curl.err"; }
admin=(--cert "$CP/admin.crt" --key "$CP/admin.key")
expect() { # STATUS TEXT WHAT
	[ "$st" = "$1" ] || fail "$3: HTTP $st, want $1: $(cat "$TMP/body" "$TMP/curl.err" 2>/dev/null)"
	grep -q -- "$2" "$TMP/body" || fail "$3: the answer does not say '$2': $(cat "$TMP/body")"
	note "$3: $1 $(jq -r '.error // empty' "$TMP/body" 2>/dev/null | head -c 150)"
}
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/n1.key" 2>/dev/null
openssl req -new -key "$TMP/n1.key" -subj /CN=whatever -out "$TMP/n1.csr"
join() { # NODE TOKEN [CSR_FILE]
	jq -n --arg n "$1" --arg t "$2" --rawfile c "${3:-$TMP/n1.csr}" '{node: $n, token: $t, csr: $c}' >"$TMP/join.json"
	st=$(api -X POST -H 'content-type: application/json' --data-binary @"$TMP/join.json" "$URL/v1/join")
}

# -- join tokens
tok1=$("$BIN/sluice-control" token create --state-dir "$CP" --node node1)
tok2=$("$BIN/sluice-control" token create --state-dir "$CP" --node node2)
[ "$(ls "$CP/tokens"/*.json | wc -l)" -eq 2 ] || fail "token files not stored"
grep -rq "$tok1" "$CP/tokens" && fail "a token is stored in clear"
join node1 0123456789abcdef;              expect 401 "unknown token" "join with a wrong token"
join node1 "$tok2";                       expect 401 "issued for node node2" "join with another node's token"
echo "not a csr" >"$TMP/bad.csr"
join node1 "$tok1" "$TMP/bad.csr";        expect 400 "not a PEM" "join with a bad CSR"
join node1 "$tok1";                       expect 200 "BEGIN CERTIFICATE" "join (the bad CSR did not use the token up)"
jq -r .certificate "$TMP/body" >"$TMP/n1.crt"
openssl verify -CAfile "$CP/ca.crt" "$TMP/n1.crt" >/dev/null || fail "node certificate does not verify"
openssl x509 -in "$TMP/n1.crt" -noout -ext subjectAltName | grep -q 'URI:spiffe://cluster.local/sluice/node/node1' \
	|| fail "node certificate lacks its URI SAN: $(openssl x509 -in "$TMP/n1.crt" -noout -text)"
join node1 "$tok1";                       expect 401 "already used" "join with a reused token"
tok3=$("$BIN/sluice-control" token create --state-dir "$CP" --node node3 --ttl 1s)
sleep 2
join node3 "$tok3";                       expect 401 "expired" "join with an expired token"
node=(--cert "$TMP/n1.crt" --key "$TMP/n1.key")

# -- authentication and roles
st=$(api "$URL/v1/status");               expect 401 "client certificate" "status without a certificate"
st=$(api -X POST --data-binary 'kind: Service' "$URL/v1/apply"); expect 401 "client certificate" "apply without a certificate"
st=$(api "$URL/v1/watch");                expect 401 "client certificate" "watch without a certificate"
st=$(api "${node[@]}" -X POST --data-binary 'x: 1' "$URL/v1/apply"); expect 403 "for the admin" "apply with a node certificate"
st=$(api "${node[@]}" "$URL/v1/status");  expect 403 "for the admin" "status with a node certificate"
st=$(api "${admin[@]}" "$URL/v1/watch");  expect 403 "for nodes" "watch with the admin certificate"
st=$(api "${node[@]}" --max-time 2 "$URL/v1/watch") || true
head -n1 "$TMP/body" | jq -e '.version == 0 and (.snapshot.services | type == "array")' >/dev/null \
	|| fail "node1's watch did not start with its snapshot: $(head -c 300 "$TMP/body")"
note "watch with node1's certificate: $(head -c 80 "$TMP/body")..."

# -- another CA's certificate; no HTTP/2
timeout 2 "$BIN/sluice-control" --state-dir "$TMP/other" --listen 127.0.0.1:0 >"$TMP/other.log" 2>&1 || true
[ -f "$TMP/other/admin.crt" ] || fail "second CA not created: $(cat "$TMP/other.log")"
st=$(api --cert "$TMP/other/admin.crt" --key "$TMP/other/admin.key" "$URL/v1/status") && [ "$st" != 000 ] \
	&& fail "a certificate from another CA got HTTP $st"
note "another CA's certificate: refused in TLS ($(head -c 120 "$TMP/curl.err"))"
out=$("$BIN/sluicectl" status --control --credentials "$TMP/other" 2>&1) && fail "sluicectl trusted another CA: $out"
note "sluicectl with another CA: $out"
st=$(curl -sS --http1.1 --max-time 5 --cacert "$CP/ca.crt" "${admin[@]}" -o /dev/null -w '%{http_code}' \
	"$URL/v1/status" 2>/dev/null) && [ "$st" != 000 ] && fail "HTTP/1.1 (no ALPN h2) got HTTP $st"

# -- limits and malformed requests
# 4 MiB from anyone, 64 MiB from a client with a certificate of this CA
head -c $((5 << 20)) /dev/zero | tr '\0' '#' >"$TMP/big.yaml"
st=$(api -X POST --data-binary @"$TMP/big.yaml" "$URL/v1/join"); expect 413 "over the limit" "5 MiB without a certificate"
st=$(api "${admin[@]}" -X POST -H 'x-sluice-file: big.yaml' --data-binary @"$TMP/big.yaml" "$URL/v1/apply")
expect 200 '"changed": false' "a 5 MiB apply (comments only: nothing changes)"
head -c $((65 << 20)) /dev/zero | tr '\0' '#' >"$TMP/big.yaml"
st=$(api "${admin[@]}" -X POST --data-binary @"$TMP/big.yaml" "$URL/v1/apply"); expect 413 "over the limit" "a 65 MiB apply"
rm -f "$TMP/big.yaml"
st=$(api -X POST --data-binary 'not json' "$URL/v1/join"); expect 400 "line 1" "join with a body that is not JSON"
st=$(api "${node[@]}" -X POST --data-binary '{}' "$URL/v1/ack"); expect 400 "ACK or NACK" "ack without fields"
st=$(api "${admin[@]}" "$URL/v1/apply");  expect 405 "takes POST" "GET on apply"
st=$(api "${admin[@]}" "$URL/v1/nope");   expect 404 "no such endpoint" "an unknown path"
printf 'kind: Service\nmetadata: [\n' >"$TMP/broken.yaml"
st=$(api "${admin[@]}" -X POST -H 'x-sluice-file: broken.yaml' --data-binary @"$TMP/broken.yaml" "$URL/v1/apply")
expect 422 "broken.yaml:" "broken YAML"
st=$(api "${admin[@]}" "$URL/v1/resources?kind=Gadget"); expect 400 "unknown kind" "get an unknown kind"

# -- a connection that never speaks does not block the others
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
out=$("$BIN/sluicectl" status --control --timeout 5) || fail "status blocked by a silent connection: $out"
exec 3>&-

# -- an operator's CA: copied into the state dir, used for the credentials;
# a state dir holding another CA refuses it
opca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/$1.key" \
		-out "$TMP/$1.crt" -subj "/CN=$1" -days 30 -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
opca opca
opca opca2
timeout 2 "$BIN/sluice-control" --state-dir "$TMP/op" --listen 127.0.0.1:0 --ca-cert "$TMP/opca.crt" \
	--ca-key "$TMP/opca.key" >"$TMP/op.log" 2>&1 || true
cmp -s "$TMP/opca.crt" "$TMP/op/ca.crt" || openssl x509 -in "$TMP/op/ca.crt" -noout -subject | grep -q opca \
	|| fail "the operator's CA was not taken: $(cat "$TMP/op.log")"
[ "$(stat -c %a "$TMP/op/ca.key")" = 600 ] || fail "the copied CA key is not 0600"
openssl verify -CAfile "$TMP/opca.crt" "$TMP/op/admin.crt" >/dev/null || fail "admin.crt not issued by the operator's CA"
"$BIN/sluice-control" --state-dir "$TMP/op" --listen 127.0.0.1:0 --ca-cert "$TMP/opca2.crt" \
	--ca-key "$TMP/opca2.key" >"$TMP/op2.log" 2>&1 && fail "a second CA was accepted for a state dir"
grep -q "holds another CA" "$TMP/op2.log" || fail "refusing another CA: $(cat "$TMP/op2.log")"
"$BIN/sluice-control" --state-dir "$TMP/op3" --listen 127.0.0.1:0 --ca-cert "$TMP/opca.crt" \
	--ca-key "$TMP/opca2.key" >"$TMP/op3.log" 2>&1 && fail "a CA with the wrong key was accepted"
grep -q "does not hold the key" "$TMP/op3.log" || fail "refusing a mismatched key: $(cat "$TMP/op3.log")"
note "operator CA: copied and used; another CA or a mismatched key refused"

# -- and nothing changed
st=$(api "${admin[@]}" "$URL/v1/status")
jq -e '.config_version == 0 and .resources == 0' "$TMP/body" >/dev/null || fail "refused requests changed the config: $(cat "$TMP/body")"
[ -f "$CP/config.json" ] && fail "refused requests wrote a config"
note "after every refusal: config version 0, no resources"

# -- a watcher that stops reading is cut off; another keeps getting every push
for n in stuck live; do
	t=$("$BIN/sluice-control" token create --state-dir "$CP" --node "$n")
	join "$n" "$t"
	[ "$st" = 200 ] || fail "join $n: $st"
	jq -r .certificate "$TMP/body" >"$TMP/$n.crt"
	curl -sSN --http2 --cacert "$CP/ca.crt" --cert "$TMP/$n.crt" --key "$TMP/n1.key" \
		"$URL/v1/watch" >"$TMP/watch.$n" 2>/dev/null &
	E2E_PIDS+=("$!")
	eval "W_$n=$!"
done
for i in $(seq 100); do [ -s "$TMP/watch.stuck" ] && [ -s "$TMP/watch.live" ] && break; sleep 0.05; done
kill -STOP "$W_stuck"
for round in $(seq 20); do
	# 5,000 services of 8 endpoints (awk: a bash loop takes 20 s a round in the VMs)
	awk -v round="$round" 'BEGIN {
		for (i = 0; i < 5000; i++) {
			printf "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s%d}\n", i
			printf "spec:\n  hosts: [s%d.example]\n  addresses: [10.97.%d.%d]\n", i, int(i / 250), i % 250 + 1
			printf "  ports: [{number: 80, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints:\n"
			for (e = 1; e <= 8; e++) printf "  - {address: 10.201.%d.%d}\n", e, (i + round) % 250 + 1
		}
	}' >"$TMP/many.yaml"
	v=$("$BIN/sluicectl" -o json apply -f "$TMP/many.yaml" | jq .version) || fail "apply refused"
	for i in $(seq 200); do grep -q "^{\"version\":$v," "$TMP/watch.live" && break; sleep 0.05; done
	grep -q "^{\"version\":$v," "$TMP/watch.live" || fail "the live watcher did not get version $v"
	grep -q 'stopped reading' "$TMP/control.log" && break
done
sleep 2
grep -q 'peer stopped reading: no write progress, connection cut off' "$TMP/control.log" \
	|| fail "a watcher that stopped reading was not cut off after $round pushes of $(stat -c %s "$TMP/many.yaml") bytes"
note "stalled watcher cut off after $round pushes; the live one got each of them ($(grep -c . "$TMP/watch.live") lines)"
kill -CONT "$W_stuck"
"$BIN/sluicectl" delete -f "$TMP/many.yaml" >/dev/null || fail "delete refused"

# a directory over 4 MiB is one request, one change (the admin may send 64 MiB)
mkdir "$TMP/dir"
for part in 0 1; do
	awk -v part="$part" 'BEGIN {
		for (i = 0; i < 5000; i++) {
			printf "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: d%d-%d}\n", part, i
			printf "spec:\n  hosts: [d%d-%d.example]\n  addresses: [10.%d.%d.%d]\n", part, i, 98 + part, int(i / 250), i % 250 + 1
			printf "  ports: [{number: 80, name: tcp, protocol: TCP}]\n  resolution: STATIC\n  endpoints:\n"
			for (e = 1; e <= 8; e++) printf "  - {address: 10.202.%d.%d}\n", e, i % 250 + 1
		}
	}' >"$TMP/dir/part$part.yaml"
done
bytes=$(cat "$TMP/dir"/*.yaml | wc -c)
[ "$bytes" -gt $((4 << 20)) ] || fail "the directory is $bytes bytes, not over 4 MiB"
before=$(grep -c 'config version' "$TMP/control.log")
out=$("$BIN/sluicectl" apply -f "$TMP/dir" 2>&1) || fail "a directory of $bytes bytes refused: $out"
n=$("$BIN/sluicectl" get serviceentry -A -o json | jq '[.[] | select(.metadata.name | startswith("d"))] | length')
[ "$n" = 10000 ] || fail "$n of the directory's 10,000 ServiceEntries held after: $out"
[ "$(grep -c 'config version' "$TMP/control.log")" = $((before + 1)) ] || fail "the directory was not one change"
note "a directory of $bytes bytes: one apply, one change ($out)"
true
