#!/bin/bash
# The "clients" stage of `make test`: misbehaving clients against the real
# daemon's plugin listener (TCP, as volman; the unix socket shares its
# limits), while well-behaved clients keep asking (a List on a new TCP
# connection, on a new unix-socket connection and on a kept TCP connection,
# every 100 ms; build/test/clients/storm). Each storm passes when every probe
# was answered within 1 s with no error, the kept connection was never
# closed under it, the daemon's RSS grew by less than 16 MiB, and the
# storm's own connections were dealt with as the limits say. Prints
# "clients-case NAME: pass|fail why" per storm and "clients: N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
driver_bin=$build/bin/nfsv3driver storm=$build/test/clients/storm
passed=0 failed=0 driver_pid=

[ -x "$storm" ] || { echo "clients: $storm is not built (make $build/test/clients/storm)"; exit 1; }
command -v curl >/dev/null || { echo "clients: SKIPPED: curl is not installed"; exit 77; }
# 2,000 storm connections, both ends in this machine, plus the daemon's.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 5000 ] || { echo "clients: SKIPPED: the descriptor limit ($(ulimit -n)) is below 5000"; exit 77; }
tmp=$(mktemp -d /tmp/nfsv3-clients.XXXXXX) || exit 1
cleanup() {
	[ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
	[ -n "${NFSV3_CLIENTS_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "clients-case $1: pass"; }
fail() { failed=$((failed + 1)); echo "clients-case $1: fail $2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) admin=$(free_port)
mkdir -p "$tmp/root"
"$driver_bin" --listen "tcp://127.0.0.1:$port" --listen "unix:$tmp/driver.sock" --admin "tcp://127.0.0.1:$admin" \
	--mount-root "$tmp/root" --allow-local-sources --helper-dir "$build/libexec/nfsv3driver" >"$tmp/driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 100); do grep -q driver-server.started "$tmp/driver.log" && break; sleep 0.1; done
grep -q driver-server.started "$tmp/driver.log" || { echo "clients: the driver did not start:"; cat "$tmp/driver.log"; exit 1; }

# field LINE KEY: the value of KEY=... in a storm line.
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
open_connections() {
	curl -s "http://127.0.0.1:$admin/metrics" |
		sed -n 's/^nfsv3driver_open_connections{listener="plugin"} //p'
}

# run_storm NAME CHECK STORM-ARGS...: CHECK is a shell condition on $line
# (besides the common ones), printed when it fails.
run_storm() {
	local name=$1 check=$2
	shift 2
	line=$("$storm" --target "tcp://127.0.0.1:$port" --probe "tcp://127.0.0.1:$port" \
		--probe "unix:$tmp/driver.sock" --pid "$driver_pid" "$@" 2>&1)
	echo "  $line"
	local why=
	if ! kill -0 "$driver_pid" 2>/dev/null; then
		why="the daemon died: $(tail -3 "$tmp/driver.log")"
	elif [ -z "$(field "$line" probes)" ]; then
		why="no result: $line"
	elif [ "$(field "$line" probe_errors)" != 0 ]; then
		why="$(field "$line" probe_errors) probes failed (first: ${line##*first_error=})"
	elif [ "$(field "$line" kept_reconnects)" != 0 ]; then
		why="the kept connection was closed under the storm"
	elif [ "$(field "$line" probes)" -lt 10 ]; then
		why="only $(field "$line" probes) probes ran"
	elif awk -v m="$(field "$line" max_ms)" 'BEGIN { exit !(m >= 1000) }'; then
		why="the slowest probe took $(field "$line" max_ms) ms (limit 1000)"
	elif [ $(($(field "$line" rss_peak_kib) - $(field "$line" rss_before_kib))) -ge 16384 ]; then
		why="RSS grew from $(field "$line" rss_before_kib) to $(field "$line" rss_peak_kib) KiB"
	elif ! eval "$check"; then
		why="expected $check"
	fi
	if [ -n "$why" ]; then fail "$name" "$why"; else pass "$name"; fi
}
v() { field "$line" "$1"; }

# 2,000 connections that never send: past the limit of 512 the oldest give
# way, so 1,488 or more are closed by the daemon while the storm lasts.
run_storm idle-2000 '[ "$(v closed_by_server)" -ge 1488 ]' --storm idle --count 2000 --seconds 5
# 2,000 connections whose headers never end (a byte a second): beyond the
# limit they give way; the rest are closed at the 10 s read timeout.
run_storm slowloris-2000 '[ "$(v still_open)" = 0 ]' --storm slowloris --count 2000 --seconds 12
# 100 MB bodies, announced and chunked: refused with 413 each time, and the
# connection closed after the answer.
body_ok='[ "$(v bodies)" -ge 1 ] && [ "$(v answered_413)" = "$(v bodies)" ] && [ "$(v closed_after_answer)" = "$(v bodies)" ]'
run_storm body-100mb "$body_ok" --storm body --count 100 --seconds 4
run_storm chunked-100mb "$body_ok" --storm chunked --count 100 --seconds 4
# 10,000 pipelined requests never read: the connection stops being read
# (16 unanswered, 64 KiB unsent) and costs no more.
run_storm pipeline-10000 '[ "$(v requests_written)" -ge 1 ]' --storm pipeline --count 10000 --seconds 5

# Every storm connection is gone once its client is (the daemon keeps none).
left=
for _ in $(seq 50); do left=$(open_connections); [ "$left" = 0 ] && break; sleep 0.1; done
if [ "$left" = 0 ]; then pass connections-released; else fail connections-released "$left plugin connections still open"; fi

# The daemon ends cleanly.
kill -TERM "$driver_pid"
wait "$driver_pid"
rc=$?
driver_pid=
if [ "$rc" = 0 ]; then pass clean-exit; else fail clean-exit "exit status $rc"; fi

echo "clients: $passed passed, $failed failed"
[ "$failed" = 0 ]
