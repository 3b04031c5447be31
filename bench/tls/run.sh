#!/bin/bash
# TLS benchmark of nfsv3driver (not a test: it prints a table with the goals
# beside the figures). Two daemons of one build, one plain and one with mutual
# TLS, on local file:// sources with real bind mounts; a Go client (Debian's
# golang-go) as volman would configure it.
#   - Create+Mount+Unmount+Remove cycles on one kept connection, plain vs TLS,
#     interleaved rounds, p50/p99 (goal: TLS p99 within 10% of plain);
#   - new TLS connections per second (full handshakes: no resumption);
#   - the daemon's RSS with 64 kept TLS connections open (goal: < 8 MiB).
# usage: bench/tls/run.sh [BUILD]   env: CYCLES (500), ROUNDS (3), HOLD (64)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${1:-$top/build}")
CYCLES=${CYCLES:-500} ROUNDS=${ROUNDS:-3} HOLD=${HOLD:-64}
"$top/packaging/local-sources.sh" /tmp
tmp=$(mktemp -d /tmp/nfsv3-tlsbench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
cd "$tmp"
o() { openssl "$@" >/dev/null 2>&1; }
o req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca
for n in server client; do
	o req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n
	echo "subjectAltName=IP:127.0.0.1" > $n.ext
	o x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 -extfile $n.ext
done
mkdir -p src gobench root-plain root-tls
cp "$top/bench/tls/tlsbench.go" gobench/
(cd gobench && go mod init tlsbench >/dev/null 2>&1 && GOCACHE=$tmp/gocache go build -o tlsbench .)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pp=$(port) tp=$(port)
common=(--allow-local-sources --helper-dir "$build/libexec/nfsv3driver" --log-level error)
"$build/bin/nfsv3driver" --listen tcp://127.0.0.1:$pp --mount-root "$tmp/root-plain" "${common[@]}" 2>plain.log & pids+=($!)
"$build/bin/nfsv3driver" --listen tcp://127.0.0.1:$tp --mount-root "$tmp/root-tls" "${common[@]}" \
	--tls-cert server.pem --tls-key server.key --tls-ca ca.pem 2>tls.log & pids+=($!)
tls_pid=${pids[1]}
sleep 0.5
export NFSV3_TLS_CA=$tmp/ca.pem NFSV3_TLS_CERT=$tmp/client.pem NFSV3_TLS_KEY=$tmp/client.key
b=gobench/tlsbench
echo "Create+Mount+Unmount+Remove, one kept connection, $CYCLES cycles per round, $ROUNDS rounds (best round shown)"
best() { sort -t' ' -k6 -n | head -1; }
for r in $(seq "$ROUNDS"); do
	NFSV3_TLS_CA= $b cycle http://127.0.0.1:$pp "file://$tmp/src" "$CYCLES" >> plain.out
	$b cycle https://127.0.0.1:$tp "file://$tmp/src" "$CYCLES" >> tls.out
done
plain=$(best < plain.out) tls=$(best < tls.out)
echo "  plain: $plain"
echo "  tls:   $tls"
p99p=$(echo "$plain" | awk '{print $6}') p99t=$(echo "$tls" | awk '{print $6}')
awk -v a="$p99t" -v b="$p99p" 'BEGIN { printf "  TLS p99 / plain p99 = %.3f (goal <= 1.10)\n", a / b }'
echo "New TLS connections per second (full handshake + one Activate), 5 s:"
for c in 1 8; do echo "  $c clients: $($b handshake https://127.0.0.1:$tp 5 $c)"; done
# RSS counts shared library code; RssAnon is the daemon's own memory.
mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' /proc/$1/status; }
echo "Daemon memory (RSS / own anonymous memory, MiB):"
echo "  plain, idle:                 $(mib "${pids[0]}" VmRSS) / $(mib "${pids[0]}" RssAnon)"
echo "  TLS, idle:                   $(mib "$tls_pid" VmRSS) / $(mib "$tls_pid" RssAnon)"
$b hold https://127.0.0.1:$tp "$HOLD" 3 > hold.out & hp=$!
sleep 2
echo "  TLS, $HOLD kept connections:  $(mib "$tls_pid" VmRSS) / $(mib "$tls_pid" RssAnon) (goal: RSS < 8 MiB)"
wait $hp
