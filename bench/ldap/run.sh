#!/bin/bash
# Mount latency of LDAP bindings (not a test: it prints figures). Starts a
# private slapd (test/ldap/slapd.sh) and a daemon with LDAP over StartTLS
# against it, in a temp dir; every Mount proves a password in the directory
# and serves the volume through idmapfs. Compared with uid/gid bindings (the
# same Mount without the directory). Needs root (FUSE mounts).
#
# usage: bench/ldap/run.sh BUILD_DIR    (`make bench-ldap` passes build)
# Environment: ROUNDS (200), CONCURRENT (64).
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-200}
CONCURRENT=${CONCURRENT:-64}
[ "$(id -u)" = 0 ] || { echo "$0: must run as root (idmapfs mounts)" >&2; exit 1; }
"$here/../../packaging/deps.sh" ldap

tmp=$(mktemp -d /tmp/nfsv3-ldapbench.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
	local pid mp
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ldap_port=$(freeport)
ldaps_port=$(freeport)
"$here/../../test/ldap/slapd.sh" "$tmp/ldap" "$ldap_port" "$ldaps_port" >"$tmp/slapd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	ldapsearch -x -H "ldap://127.0.0.1:$ldap_port" -D cn=svc,dc=test -w svc-pw -b dc=test -s base >/dev/null 2>&1 && break
	sleep 0.1
done
printf 'svc-pw\n' >"$tmp/svc-pw"
chmod 0600 "$tmp/svc-pw"
mkdir -p "$tmp/src" "$tmp/root"
chmod 0777 "$tmp/src"
port=$(freeport)
"$build/bin/nfsv3driver" --listen "tcp://127.0.0.1:$port" --mount-root "$tmp/root" --allow-local-sources \
	--helper-dir "$build/libexec/nfsv3driver" --max-parallel 64 --log-level info \
	--ldap-host 127.0.0.1 --ldap-port "$ldap_port" --ldap-ca-cert "$tmp/ldap/ca.pem" --ldap-starttls \
	--ldap-svc-user cn=svc,dc=test --ldap-svc-password-file "$tmp/svc-pw" --ldap-user-fqdn dc=test \
	--ldap-user-filter '(&(objectClass=posixAccount)(cn=%s))' >"$tmp/driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	curl -s -X POST "http://127.0.0.1:$port/Plugin.Activate" >/dev/null && break
	sleep 0.05
done
echo "LDAP Mount latency: slapd on loopback, StartTLS, idmapfs over a local directory; $(nproc) cores"
"$build/bench/ldapbench" seq "$port" "$tmp/src" "$ROUNDS" uid
"$build/bench/ldapbench" seq "$port" "$tmp/src" "$ROUNDS" ldap
before=$(grep -c 'ldap.resolved' "$tmp/driver.log" || true)
"$build/bench/ldapbench" conc "$port" "$tmp/src" "$CONCURRENT"
# The directory's share of those Mounts: the daemon logs each lookup's time (queue wait included).
python3 - "$tmp/driver.log" "$before" <<'PY'
import json, sys
ms = [json.loads(l)["data"]["elapsed_ms"] for l in open(sys.argv[1]) if 'ldap.resolved' in l][int(sys.argv[2]):]
ms.sort()
pick = lambda p: ms[min(len(ms) - 1, int(p / 100 * (len(ms) - 1) + 0.5))]
print("ldap-lookup-concurrent n=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f" % (len(ms), pick(50), pick(99), ms[-1]))
PY
