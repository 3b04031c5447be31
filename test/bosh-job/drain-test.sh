#!/bin/bash
# The drain's order, in a private mount namespace (see run.sh): a real
# daemon rendered from the job's own properties.sh, a volume mounted through
# it, a fake rep (a copy of sleep under the name drain waits for).
set -u
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
no() { fail=$((fail + 1)); echo "FAILED: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else no "$what"; fi; }

mount -t tmpfs tmpfs /var/vcap 2>/dev/null || { mkdir -p /var/vcap && mount -t tmpfs tmpfs /var/vcap; } || exit 1
work=$(mktemp -d /tmp/nfsv3-drain.XXXXXX)
mount -t tmpfs tmpfs "$work"
mkdir -p "$work/src" "$work/bin"
echo hello >"$work/src/file"
cp /bin/sleep "$work/bin/fakerep"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
plugin_port=$(port) admin_port=$(port)
job=$work/job
daemon_pid=

render() {
	rm -rf "$job"
	ruby -e 'require ARGV[0]; JobRender.write(ARGV[1], JobRender.render(JSON.parse(ARGV[2])))' -rjson \
		"$top/bosh-job/render.rb" "$job" "{\"nfsv3driver.listen_addr\": \"127.0.0.1:$plugin_port\",
		\"nfsv3driver.admin_addr\": \"127.0.0.1:$admin_port\", \"nfsv3driver.drain_rep_process\": \"fakerep\",
		\"nfsv3driver.drain_rep_timeout\": $1, \"nfsv3driver.drain_timeout\": 30}" || exit 1
}
start_daemon() {
	# shellcheck source=/dev/null
	(. "$job/config/properties.sh" && mkdir -p "$MOUNT_ROOT" "$DRIVERS_PATH" &&
		exec "$build/bin/nfsv3driver" "${DRIVER_ARGS[@]}" --allow-local-sources --helper-dir "$build/libexec/nfsv3driver") \
		>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$admin_port/ping" >/dev/null && return 0
		sleep 0.1
	done
	echo "daemon did not answer /ping"; cat "$work/daemon.log"; exit 1
}
call() { curl -s -X POST --data "$2" "http://127.0.0.1:$plugin_port/$1"; }
mounted() { grep -q " /var/vcap/data/volumes/nfs/$1 " /proc/self/mountinfo; }
volume() {
	call VolumeDriver.Create "{\"Name\":\"$1\",\"Opts\":{\"source\":\"file://$work/src\"}}" >/dev/null
	call VolumeDriver.Mount "{\"Name\":\"$1\",\"ID\":\"c-$1\"}"
}
stop_daemon() { kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; }

# --- 1. the rep exits after a while: drain waits for it, then evacuates.
render 60
start_daemon
out=$(volume v1)
check "a volume mounts before the drain ($out)" mounted v1
"$work/bin/fakerep" 600 &
rep=$!
"$job/bin/drain" >"$work/drain.out" &
drain=$!
sleep 2
out=$(volume v2)
check "a new mount is refused while draining ($out)" grep -q 'draining' <<<"$out"
check "v2 is not mounted" eval '! mounted v2'
check "nothing is unmounted while the rep runs" mounted v1
check "drain still waits for the rep" kill -0 "$drain"
out=$(call VolumeDriver.Get '{"Name":"v1"}')
check "other calls are served while draining ($out)" grep -q '"Name"' <<<"$out"
rep_gone=$(date +%s.%N)
kill "$rep"; wait "$rep" 2>/dev/null
wait "$drain"
check "drain prints exactly 0" [ "$(cat "$work/drain.out")" = 0 ]
check "v1 is unmounted after the rep exited" eval '! mounted v1'
evac=$(grep -m1 'evacuate.starting' "$work/daemon.log" | sed 's/.*"timestamp":"\([0-9.]*\)".*/\1/')
check "evacuation started after the rep exited ($evac > $rep_gone)" awk -v a="$evac" -v b="$rep_gone" 'BEGIN { exit !(a + 0 > b + 0) }'
log=/var/vcap/sys/log/nfsv3driver/drain.log
check "drain.log says it in order" awk '/takes no new mounts/ { a = NR } /waiting for fakerep/ { b = NR } /fakerep is gone/ { c = NR } /drain: evacuated/ { d = NR } END { exit !(a && b && c && d && a < b && b < c && c < d) }' "$log"
stop_daemon

# --- 2. the rep never exits: drain evacuates after drain_rep_timeout.
render 2
start_daemon
volume v3 >/dev/null
"$work/bin/fakerep" 600 &
rep=$!
start=$SECONDS
"$job/bin/drain" >"$work/drain.out"
took=$((SECONDS - start))
check "drain gave up on the rep after drain_rep_timeout (${took}s)" [ "$took" -ge 2 ] && [ "$took" -lt 15 ]
check "and evacuated" eval '! mounted v3'
check "drain.log names the timeout" grep -q 'still running after 2s (drain_rep_timeout)' "$log"
kill "$rep"; wait "$rep" 2>/dev/null
stop_daemon

# --- 3. no daemon: nothing to drain, at once.
start=$SECONDS
check "drain with no daemon prints 0" [ "$("$job/bin/drain")" = 0 ]
check "at once" [ $((SECONDS - start)) -lt 5 ]
check "drain.log says why" grep -q 'does not answer' "$log"

umount -R "$work" 2>/dev/null; rmdir "$work"
echo "drain: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
