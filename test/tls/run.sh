#!/bin/bash
# The "tls" stage of `make test`: mutual TLS on the driver's TCP listeners,
# with certificates this script makes (openssl CLI), against the real daemon
# and real clients: curl, and a Go client built here (Debian's golang-go)
# configured as volman configures its driver client. Prints
# "tls-case NAME: pass|fail why" per case and "tls: N passed, N failed".
# Exit 0 when all pass, 1 when any fails, 77 when openssl, curl or go is missing.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
driver_bin=$build/bin/nfsv3driver
passed=0 failed=0 pids=()

for tool in openssl curl go; do
	command -v $tool >/dev/null || { echo "tls: SKIPPED: $tool is not installed"; exit 77; }
done
tmp=$(mktemp -d /tmp/nfsv3-tls.XXXXXX) || exit 1
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ -n "${NFSV3_TLS_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1

pass() { passed=$((passed + 1)); echo "tls-case $1: pass"; }
fail() { failed=$((failed + 1)); echo "tls-case $1: fail $2"; }

# ---- certificates ----
ossl() { openssl "$@" >/dev/null 2>&1 || { echo "tls: openssl $* failed"; exit 1; }; }
ca() { ossl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 30 -subj "/CN=$1"; }
# leaf NAME CA DAYS [SAN]
leaf() {
	ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
	printf 'subjectAltName=%s\n' "${4:-DNS:$1}" > "$1.ext"
	ossl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days "$3" -extfile "$1.ext"
}
ca ca; ca otherca
leaf server ca 365 IP:127.0.0.1
leaf server2 ca 365 IP:127.0.0.1
leaf client ca 365
leaf stranger otherca 365
leaf expired ca -1
ossl req -newkey rsa:2048 -nodes -keyout wrong.key -out wrong.csr -subj /CN=wrong

mkdir -p root drivers src
cp server.pem live.pem; cp server.key live.key
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) admin=$(free_port) plain=$(free_port)

"$driver_bin" --listen "tcp://127.0.0.1:$port" --admin "tcp://127.0.0.1:$admin" --mount-root "$tmp/root" \
	--drivers-path "$tmp/drivers" --name tlstest --allow-local-sources --helper-dir "$build/libexec/nfsv3driver" \
	--tls-cert live.pem --tls-key live.key --tls-ca ca.pem --tls-client-cert client.pem \
	--tls-client-key client.key > driver.log 2>&1 &
pids+=($!)
"$driver_bin" --listen "tcp://127.0.0.1:$plain" --mount-root "$tmp/root-plain" --allow-local-sources \
	--helper-dir "$build/libexec/nfsv3driver" > plain.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q driver-server.started driver.log && grep -q driver-server.started plain.log && break; sleep 0.1; done
grep -q driver-server.started driver.log || { echo "tls: the driver did not start:"; cat driver.log; exit 1; }

url=https://127.0.0.1:$port
good=(--cacert ca.pem --cert client.pem --key client.key)
post() { curl -sS --max-time 10 "$@" -X POST -d '{}'; }
rpc() { curl -sS --max-time 10 "${good[@]}" -X POST -d "$2" "$url/$1"; }
logged() { grep -q "tls.connection-refused.*\"reason\":\"$1\"" driver.log; }

# ---- cases ----
out=$(post "${good[@]}" "$url/Plugin.Activate" 2>&1)
[ "$out" = '{"Implements":["VolumeDriver"]}' ] && pass curl-client-cert || fail curl-client-cert "$out"

out=$(curl -sS --max-time 10 "${good[@]}" "https://127.0.0.1:$admin/ping" 2>&1)
[ $? = 0 ] && pass admin-over-tls || fail admin-over-tls "$out"

if post --cacert ca.pem "$url/Plugin.Activate" >/dev/null 2>&1; then fail no-client-cert "served"
elif logged no_certificate; then pass no-client-cert; else fail no-client-cert "not logged"; fi

if post --cacert ca.pem --cert stranger.pem --key stranger.key "$url/Plugin.Activate" >/dev/null 2>&1; then
	fail other-ca "served"
elif logged bad_certificate; then pass other-ca; else fail other-ca "not logged"; fi

if post --cacert ca.pem --cert expired.pem --key expired.key "$url/Plugin.Activate" >/dev/null 2>&1; then
	fail expired-client-cert "served"
elif grep -q 'certificate has expired' driver.log; then pass expired-client-cert
else fail expired-client-cert "not logged as expired"; fi

# The server verified as 127.0.0.1 by a client that trusts only the other CA.
if post --cacert otherca.pem --cert client.pem --key client.key "$url/Plugin.Activate" >/dev/null 2>&1; then
	fail server-not-trusted "a client trusting another CA accepted us"
else pass server-not-trusted; fi

out=$(curl -sS --max-time 10 -X POST -d '{}' "http://127.0.0.1:$port/Plugin.Activate" 2>&1)
if [[ $out == *"speaks HTTPS only"* ]] && logged protocol; then pass plain-http-to-tls-port; else fail plain-http-to-tls-port "$out"; fi

out=$(post "${good[@]}" "https://127.0.0.1:$plain/Plugin.Activate" 2>&1)
if [ $? != 0 ] && grep -q 'TLS handshake on a plain HTTP listener' plain.log; then pass tls-to-plain-port
else fail tls-to-plain-port "$out"; fi

# TLS 1.2 with volman's suites, and TLS 1.3.
for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384; do
	out=$(post "${good[@]}" --tls-max 1.2 --ciphers $suite "$url/VolumeDriver.List" 2>&1)
	[[ $out == *'"Volumes":[]'* ]] && pass "tls12-$suite" || fail "tls12-$suite" "$out"
done
out=$(post "${good[@]}" --tlsv1.3 "$url/VolumeDriver.List" 2>&1)
[[ $out == *'"Volumes":'* ]] && pass tls13 || fail tls13 "$out"
out=$(curl -sS --max-time 10 "${good[@]}" --tls-max 1.1 "$url/VolumeDriver.List" 2>&1)
[ $? != 0 ] && pass tls11-refused || fail tls11-refused "$out"

# Renegotiation is off: a TLS 1.2 client asking for one is refused (and
# the refusal logged), the server keeps serving.
out=$( (echo R; sleep 1) | timeout 10 openssl s_client -tls1_2 -connect 127.0.0.1:$port -CAfile ca.pem \
	-cert client.pem -key client.key 2>&1)
if [[ $out == *"RENEGOTIATING"*"no renegotiation"* ]] && post "${good[@]}" "$url/Plugin.Activate" >/dev/null 2>&1; then
	pass no-renegotiation; else fail no-renegotiation "$(echo "$out" | tail -2)"; fi

# 200 pipelined Creates on one TLS connection, written at once. A Create
# is answered once the state is on disk, so more than the 64 answers a
# connection may owe pile up: the rest of the requests wait, still
# encrypted, and are read as answers go out. Every one is answered.
for i in $(seq 200); do
	body="{\"Name\":\"pipe$i\",\"Opts\":{\"source\":\"file://$tmp/src\"}}"
	printf 'POST /VolumeDriver.Create HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' ${#body} "$body"
done > pipelined
printf 'POST /VolumeDriver.List HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}' >> pipelined
out=$(timeout 20 openssl s_client -quiet -ign_eof -connect 127.0.0.1:$port -CAfile ca.pem -cert client.pem \
	-key client.key < pipelined 2>/dev/null)
answers=$(grep -o 'HTTP/1.1 200' <<< "$out" | wc -l)
if [ "$answers" = 201 ] && [ "$(grep -o '"Name":"pipe[0-9]*"' <<< "$out" | wc -l)" = 200 ]; then pass pipelined-200
else fail pipelined-200 "$answers answers"; fi

# volman's conformance sequence through a Go client configured as volman's.
mkdir -p gocl && cp "$top/test/tls/volman_client.go" gocl/ &&
	(cd gocl && GOFLAGS=-mod=mod GOCACHE=$tmp/gocache GOPATH=$tmp/gopath go mod init volmanclient >/dev/null 2>&1 &&
	 GOCACHE=$tmp/gocache GOPATH=$tmp/gopath go build -o volman_client . ) > go-build.log 2>&1 ||
	{ fail go-build "$(tail -3 go-build.log)"; }
if [ -x gocl/volman_client ]; then
	for v in tls12 tls13; do
		out=$(gocl/volman_client drivers/tlstest.json "file://$tmp/src" $v 2>&1)
		[ $? = 0 ] && pass "volman-sequence-$v" || fail "volman-sequence-$v" "$out"
	done
fi

# A half-open handshake (part of a ClientHello, then nothing) is closed at
# the read timeout (10 s); meanwhile other clients are answered at once.
exec 7<>/dev/tcp/127.0.0.1/$port; printf '\x16\x03\x01\x00' >&7
exec 8<>/dev/tcp/127.0.0.1/$port
start=$SECONDS
out=$(post "${good[@]}" "$url/Plugin.Activate" 2>&1)
fast=$((SECONDS - start))
if timeout 15 cat <&7 >/dev/null 2>&1 && timeout 15 cat <&8 >/dev/null 2>&1 && [ "$fast" -le 1 ] &&
	[ "$out" = '{"Implements":["VolumeDriver"]}' ] && logged timeout; then pass slowloris-handshake
else fail slowloris-handshake "fast=$fast $out"; fi
exec 7>&- 8>&-

# Rotation: a mounted volume keeps serving across SIGHUP, new connections
# get the new certificate; a bad file keeps the old one.
name=rotate_$$
rpc VolumeDriver.Create "{\"Name\":\"$name\",\"Opts\":{\"source\":\"file://$tmp/src\"}}" >/dev/null
mp=$(rpc VolumeDriver.Mount "{\"Name\":\"$name\"}" | sed -n 's/.*"Mountpoint":"\([^"]*\)".*/\1/p')
serial() { echo | timeout 10 openssl s_client -connect 127.0.0.1:$port -CAfile ca.pem -cert client.pem -key client.key 2>/dev/null |
	openssl x509 -noout -serial 2>/dev/null; }
before=$(serial)
cp server2.pem live.pem; cp server2.key live.key
kill -HUP "${pids[0]}"
for _ in $(seq 50); do grep -q tls.reloaded driver.log && break; sleep 0.1; done
after=$(serial)
want=$(openssl x509 -in server2.pem -noout -serial)
if [ -n "$mp" ] && mountpoint -q "$mp" && [ "$after" = "$want" ] && [ "$before" != "$after" ]; then pass sighup-rotation
else fail sighup-rotation "mp=$mp before=$before after=$after want=$want"; fi
cp wrong.key live.key
kill -HUP "${pids[0]}"
for _ in $(seq 50); do grep -q tls.reload-failed driver.log && break; sleep 0.1; done
out=$(rpc VolumeDriver.Path "{\"Name\":\"$name\"}" 2>&1)
if grep -q 'tls.reload-failed.*is not the key of the certificate' driver.log && [[ $out == *"$mp"* ]] && [ "$(serial)" = "$want" ]; then
	pass sighup-bad-key-keeps-old
else fail sighup-bad-key-keeps-old "$out"; fi
rpc VolumeDriver.Unmount "{\"Name\":\"$name\"}" >/dev/null
rpc VolumeDriver.Remove "{\"Name\":\"$name\"}" >/dev/null
mountpoint -q "$mp" 2>/dev/null && fail cleanup "$mp still mounted"

# Start-up refusals: exit 2 naming the problem.
start_err() { "$driver_bin" --listen "tcp://127.0.0.1:0" --mount-root "$tmp/root-x" "$@" 2>&1 >/dev/null; echo "rc=$?"; }
out=$(start_err --tls-cert server.pem --tls-key wrong.key --tls-ca ca.pem)
[[ $out == *"is not the key of the certificate"*"rc=2" ]] && pass start-wrong-key || fail start-wrong-key "$out"
out=$(start_err --tls-cert server.pem --tls-key server.key)
[[ $out == *"go together"*"--tls-ca"*"rc=2" ]] && pass start-missing-ca || fail start-missing-ca "$out"
out=$(start_err --tls-cert server.pem --tls-key server.key --tls-ca ca.pem --drivers-path "$tmp/drivers")
[[ $out == *"needs --tls-client-cert"*"rc=2" ]] && pass start-no-client-cert || fail start-no-client-cert "$out"
out=$(start_err --tls-cert client.csr --tls-key server.key --tls-ca ca.pem)
[[ $out == *"--tls-cert client.csr"*"rc=2" ]] && pass start-not-a-cert || fail start-not-a-cert "$out"

# The spec file for volman: https, and the CA and client files by absolute path.
spec=$(cat drivers/tlstest.json)
if [[ $spec == *"\"Addr\":\"https://127.0.0.1:$port\""* && $spec == *"\"CAFile\":\"$tmp/ca.pem\""* &&
	$spec == *"\"CertFile\":\"$tmp/client.pem\""* && $spec == *"\"KeyFile\":\"$tmp/client.key\""* ]]; then
	pass spec-file; else fail spec-file "$spec"; fi

# The driver kept serving through all of it.
out=$(post "${good[@]}" "$url/Plugin.Activate" 2>&1)
[ "$out" = '{"Implements":["VolumeDriver"]}' ] && kill -0 "${pids[0]}" && pass still-serving || fail still-serving "$out"

echo "tls: $passed passed, $failed failed"
[ "$failed" = 0 ]
