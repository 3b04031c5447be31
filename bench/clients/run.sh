#!/bin/bash
# Benchmark, not a test: misbehaving clients against a locally started daemon
# (local sources, no VM) while a probe asks for List every 100 ms, on a new
# TCP connection, a new unix-socket connection and a kept TCP connection
# (build/test/clients/storm, the client of the "clients" test stage).
# Prints, per storm, the probes' p50/p99/max and errors and the daemon's
# RSS before, at its peak and after, with what became of the storm.
# usage: bench/clients/run.sh [BUILD]
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${NFSV3_BUILD:-$top/build}}
driver_bin=$build/bin/nfsv3driver storm=$build/test/clients/storm
driver_pid=

[ -x "$storm" ] || { echo "bench-clients: $storm is not built" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 5000 ] || { echo "bench-clients: the descriptor limit ($(ulimit -n)) is below 5000" >&2; exit 1; }
tmp=$(mktemp -d /tmp/nfsv3-bench-clients.XXXXXX) || exit 1
cleanup() {
	[ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) admin=$(free_port)
mkdir -p "$tmp/root" "$tmp/src"
"$driver_bin" --listen "tcp://127.0.0.1:$port" --listen "unix:$tmp/driver.sock" --admin "tcp://127.0.0.1:$admin" \
	--mount-root "$tmp/root" --allow-local-sources --helper-dir "$build/libexec/nfsv3driver" >"$tmp/driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 100); do grep -q driver-server.started "$tmp/driver.log" && break; sleep 0.1; done
grep -q driver-server.started "$tmp/driver.log" || { echo "bench-clients: the driver did not start:"; cat "$tmp/driver.log"; exit 1; }
# Something for List to list: 20 volumes of a local directory.
for i in $(seq -w 1 20); do
	curl -s --unix-socket "$tmp/driver.sock" -X POST -d "{\"Name\":\"v$i\",\"Opts\":{\"source\":\"file://$tmp/src\"}}" \
		http://driver/VolumeDriver.Create >/dev/null
done

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
printf '%-15s %6s %6s %8s %8s %8s %10s %10s %10s   %s\n' storm probes errors p50_ms p99_ms max_ms rss0_kib \
	rss_peak_kib rss_end_kib outcome
# run NAME OUTCOME-KEYS STORM-ARGS...
run() {
	local name=$1 keys=$2 line outcome= k
	shift 2
	line=$("$storm" --target "tcp://127.0.0.1:$port" --probe "tcp://127.0.0.1:$port" \
		--probe "unix:$tmp/driver.sock" --pid "$driver_pid" "$@" 2>&1)
	if [ -z "$(field "$line" probes)" ]; then
		echo "$name: no result: $line"
		return
	fi
	for k in $keys; do outcome="$outcome $k=$(field "$line" "$k")"; done
	[ "$(field "$line" probe_errors)" = 0 ] || outcome="$outcome first_error=${line##*first_error=}"
	printf '%-15s %6s %6s %8s %8s %8s %10s %10s %10s  %s\n' "$name" "$(field "$line" probes)" \
		"$(field "$line" probe_errors)" "$(field "$line" p50_ms)" "$(field "$line" p99_ms)" \
		"$(field "$line" max_ms)" "$(field "$line" rss_before_kib)" "$(field "$line" rss_peak_kib)" \
		"$(field "$line" rss_end_kib)" "$outcome"
	kill -0 "$driver_pid" 2>/dev/null || { echo "the daemon died: $(tail -3 "$tmp/driver.log")"; exit 1; }
}
run baseline "" --storm none --seconds 5
run idle-2000 "connections closed_by_server still_open kept_reconnects" --storm idle --count 2000 --seconds 10
run slowloris-2000 "connections closed_by_server still_open trickled_bytes" --storm slowloris --count 2000 \
	--trickle-ms 3000 --seconds 15
run body-100mb "bodies answered_413 closed_after_answer sent_mib" --storm body --count 100 --seconds 5
run chunked-100mb "bodies answered_413 closed_after_answer sent_mib" --storm chunked --count 100 --seconds 5
run pipeline-10000 "requests_written all_written answers_waiting" --storm pipeline --count 10000 --seconds 10
