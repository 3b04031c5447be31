#!/bin/bash
# Control-path benchmark of nfsv3driver (not a test: it measures and prints a
# table with the goals beside the figures).  Starts its own daemons in a temp
# dir, with real bind mounts of a local source, and removes every mount and
# process it started.  Needs root (bind mounts).
#
# usage: bench/control/run.sh DRIVER HELPER_DIR CTLBENCH
#   (`make bench` passes build/bin/nfsv3driver build/libexec/nfsv3driver build/bench/ctlbench)
# Environment: SEQ_ITER (1000), CONC_CLIENTS (64), CONC_OPS (10000),
#   CONC_VOLUMES (256), HANGS (16), PINGS (1000), MEM_VOLUMES (1000), SCRAPES (1000).
set -euo pipefail
"$(dirname "$0")/../../packaging/local-sources.sh" /tmp

if [ $# -ne 3 ]; then
	echo "usage: $0 DRIVER HELPER_DIR CTLBENCH" >&2
	exit 2
fi
driver=$(realpath "$1")
helper_dir=$(realpath "$2")
ctl=$(realpath "$3")
if [ "$(id -u)" != 0 ]; then
	echo "$0: must run as root (the helpers make real bind mounts)" >&2
	exit 1
fi

SEQ_ITER=${SEQ_ITER:-1000}
CONC_CLIENTS=${CONC_CLIENTS:-64}
CONC_OPS=${CONC_OPS:-10000}
CONC_VOLUMES=${CONC_VOLUMES:-256}
HANGS=${HANGS:-16}
PINGS=${PINGS:-1000}
MEM_VOLUMES=${MEM_VOLUMES:-1000}
SCRAPES=${SCRAPES:-1000}

tmp=$(mktemp -d /tmp/nfsv3bench.XXXXXX)
src=$tmp/src
mkdir -p "$src"
# Run copies, so that a rebuild in the tree during the run cannot touch them.
mkdir -p "$tmp/bin" "$tmp/libexec"
cp "$driver" "$tmp/bin/nfsv3driver"
cp "$helper_dir/nfsv3driver-mount" "$tmp/libexec/"
driver=$tmp/bin/nfsv3driver
helper_dir=$tmp/libexec
pids=()

# Mount points under DIR, from the kernel's own table (field 5 of mountinfo).
mounts_under() {
	awk -v d="$1/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l
}

cleanup() {
	local pid mp
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	# Anything still mounted under our temp dir is ours: deepest first.
	awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

indent() { printf '%s\n' "$1" | sed 's/^/    /'; }

# start NAME HELPER_DIR [daemon options...]: sets port, admin, pid, root, log.
start() {
	local name=$1 helpers=$2
	shift 2
	root=$tmp/$name/root
	log=$tmp/$name/log
	mkdir -p "$root"
	port=$("$ctl" freeport)
	admin=$("$ctl" freeport)
	while [ "$admin" = "$port" ]; do admin=$("$ctl" freeport); done
	"$driver" --listen "tcp://127.0.0.1:$port" --admin "tcp://127.0.0.1:$admin" \
		--listen "unix:$tmp/$name/d.sock" --mount-root "$root" --drivers-path "$tmp/$name" \
		--allow-local-sources --max-parallel 16 --helper-dir "$helpers" "$@" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	"$ctl" waitping "$admin" 10

	for _ in $(seq 100); do
		grep -q driver-server.started "$log" && return 0
		sleep 0.05
	done
	echo "$0: $name: no driver-server.started in $log" >&2
	exit 1
}

stop() {
	kill -TERM "$pid"
	wait "$pid" || echo "$0: daemon $pid exited with status $?" >&2
}

# CPU time in ms of PID itself and of its reaped children (the helpers).
hz=$(getconf CLK_TCK)
cpu_self() { awk -v hz="$hz" '{ print ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
cpu_children() { awk -v hz="$hz" '{ print ($16 + $17) * 1000 / hz }' "/proc/$1/stat"; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) / n }'; }

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

field() { # field KEY LINE: the word after KEY
	awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$2"
}
lat() { # lat LABEL OUTPUT: "p50 p99" of that label's line
	awk -v l="$1" '$1 == l { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		print v["p50_ms"], v["p99_ms"], v["max_ms"] }' <<<"$2"
}
verdict() { # verdict VALUE OP LIMIT
	if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { exit !(op == "<" ? v < l : v == l) }'; then
		echo met
	else
		echo MISSED
	fi
}

echo "nfsv3driver control-path benchmark on $(uname -r), $(nproc) cores; driver $("$driver" --version 2>&1 | head -1)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# (a) and (b): one daemon, local sources, helper timeout 30 s.
start main "$helper_dir" --helper-timeout 30
state_one=400 # bytes: driver-state.json holding one volume, about
echo "(a) sequential Create+Mount+Unmount+Remove x $SEQ_ITER, a new connection per call ..."
d0=$(cpu_self "$pid") h0=$(cpu_children "$pid")
seq_out=$("$ctl" seq "$port" "$src" "$SEQ_ITER")
d1=$(cpu_self "$pid") h1=$(cpu_children "$pid")
seq_cpu_daemon=$(per "$d0" "$d1" "$SEQ_ITER") seq_cpu_helpers=$(per "$h0" "$h1" "$SEQ_ITER")
indent "$seq_out"
echo "(a') the same over one kept-alive connection ..."
seqk_out=$("$ctl" seq "$port" "$src" "$SEQ_ITER" keepalive)
indent "$seqk_out"
echo "(b) $CONC_CLIENTS clients, $CONC_OPS operations over $CONC_VOLUMES volumes, a new connection per call ..."
conc_out=$("$ctl" conc "$port" "$src" "$CONC_CLIENTS" "$CONC_OPS" "$CONC_VOLUMES")
indent "$conc_out"
conc_leak=$(mounts_under "$root")
echo "(b') the same with keep-alive ..."
conck_out=$("$ctl" conc "$port" "$src" "$CONC_CLIENTS" "$CONC_OPS" "$CONC_VOLUMES" keepalive)
indent "$conck_out"
conck_leak=$(mounts_under "$root")
main_rss_after=$(rss_kib "$pid")
stop

# (c) pings while HANGS helpers hang until their 5 s deadline.
hang_dir=$tmp/hanghelper
mkdir -p "$hang_dir"
printf '#!/bin/sh\nexec sleep 1000\n' >"$hang_dir/nfsv3driver-mount"
chmod 0755 "$hang_dir/nfsv3driver-mount"
start hang "$hang_dir" --helper-timeout 5
echo "(c) $PINGS pings on the admin port while $HANGS Mounts hang in their helper (deadline 5 s) ..."
hang_out=$("$ctl" hangping "$port" "$admin" "$src" "$HANGS" "$PINGS")
indent "$hang_out"
sleep 0.5
hang_left=$(pgrep -P "$pid" -c || true)
stop

# (d) memory.
start mem "$helper_dir" --helper-timeout 30
sleep 0.3
rss_idle=$(rss_kib "$pid")
echo "(d) RSS with $MEM_VOLUMES volumes created, then mounted ..."
"$ctl" create "$port" "$src" "$MEM_VOLUMES" >/dev/null
rss_created=$(rss_kib "$pid")
state_created=$(stat -c %s "$root/driver-state.json" 2>/dev/null || echo 0)
"$ctl" create "$port" "$src" "$MEM_VOLUMES" mount >/dev/null
rss_mounted=$(rss_kib "$pid")
mounted_n=$(mounts_under "$root")
state_mounted=$(stat -c %s "$root/driver-state.json" 2>/dev/null || echo 0)
echo "(d') GET /metrics x $SCRAPES with $mounted_n volumes mounted ..."
scrape_out=$("$ctl" scrape "$admin" "$SCRAPES")
indent "$scrape_out"
"$ctl" teardown "$port" "$MEM_VOLUMES"
rss_after=$(rss_kib "$pid")
mem_leak=$(mounts_under "$root")
stop

# (e) The pieces a cycle is made of, without the daemon (same machine, same moment).
echo "(e) the pieces: spawn of /bin/true, helper bind, helper unmount, one state write ..."
mkdir -p "$tmp/parts/root"
parts_out=$("$ctl" parts "$helper_dir/nfsv3driver-mount" "$tmp/parts/root" "$src" 200 "$state_one")
indent "$parts_out"

# (f) How the daemon spawns: libuv's fork against posix_spawn (vfork).
spawnbench=$(dirname "$ctl")/spawnbench
spawn_out=
if [ -x "$spawnbench" ]; then
	echo "(f) uv_spawn (fork) against posix_spawn (vfork), 300 spawns of /bin/true each ..."
	spawn_out=$("$spawnbench" 300 /bin/true)
	indent "$spawn_out"
fi

# The table.
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
read -r c50 c99 cmax <<<"$(lat cycle "$seq_out")"
read -r k50 k99 _ <<<"$(lat cycle "$seqk_out")"
read -r p50 p99 pmax <<<"$(lat ping "$hang_out")"
conc_err=$(field errors "$conc_out")
conck_err=$(field errors "$conck_out")
mib() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }
echo
printf '%-62s %-22s %-12s %s\n' "measure" "figure" "goal" "result"
row() { printf '%-62s %-22s %-12s %s\n' "$@"; }
row "(a) C+M+U+R cycle, new conn per call, p50" "$c50 ms" "" ""
row "(a) C+M+U+R cycle, new conn per call, p99 (max $cmax ms)" "$c99 ms" "< 20 ms" "$(verdict "$c99" '<' 20)"
for op in Create Mount Unmount Remove; do
	read -r o50 o99 _ <<<"$(lat "$op" "$seq_out")"
	row "    $op p50 / p99" "$o50 / $o99 ms" "" ""
done
row "(a) CPU per cycle: daemon / helpers (2 helper runs)" "$seq_cpu_daemon / $seq_cpu_helpers ms" "" ""
row "(a') C+M+U+R cycle, keep-alive, p50 / p99" "$k50 / $k99 ms" "< 20 ms" "$(verdict "$k99" '<' 20)"
row "(b) $CONC_CLIENTS clients new conn: errors" "$conc_err (cleanup $(field cleanup_errors "$conc_out"))" "0" "$(verdict "$conc_err" = 0)"
row "(b) $CONC_CLIENTS clients new conn: ops/s" "$(field ops_per_s "$conc_out")" "" ""
row "(b) leaked mounts after" "$conc_leak" "0" "$(verdict "$conc_leak" = 0)"
row "(b') $CONC_CLIENTS clients keep-alive: errors" "$conck_err (cleanup $(field cleanup_errors "$conck_out"))" "0" "$(verdict "$conck_err" = 0)"
row "(b') $CONC_CLIENTS clients keep-alive: ops/s" "$(field ops_per_s "$conck_out")" "" ""
row "(b') leaked mounts after" "$conck_leak" "0" "$(verdict "$conck_leak" = 0)"
row "(b) daemon RSS after (a)+(b)" "$(mib "$main_rss_after")" "" ""
read -r i50 i99 imax <<<"$(lat ping_idle "$hang_out")"
row "(c) /ping p50 / p99 with nothing hanging (max $imax ms)" "$i50 / $i99 ms" "" ""
row "(c) /ping p50 with $HANGS helpers hanging" "$p50 ms" "" ""
row "(c) /ping p99 with $HANGS helpers hanging (max $pmax ms)" "$p99 ms" "< 5 ms" "$(verdict "$p99" '<' 5)"
row "(c) slowest hung Mount answered after" "$(field hung_mount_slowest_ms "$hang_out") ms" "~5000 ms" ""
row "(c) helper processes left after the deadline" "$hang_left" "0" "$(verdict "$hang_left" = 0)"
row "(d) RSS idle after start" "$(mib "$rss_idle")" "< 4 MiB" "$(verdict "$rss_idle" '<' 4096)"
row "(d) RSS with $MEM_VOLUMES volumes created (state $state_created B)" "$(mib "$rss_created")" "< 16 MiB" "$(verdict "$rss_created" '<' 16384)"
row "(d) RSS with $mounted_n volumes mounted (state $state_mounted B)" "$(mib "$rss_mounted")" "" ""
row "(d) RSS after all unmounted and removed" "$(mib "$rss_after")" "" ""
read -r s50 s99 smax <<<"$(lat scrape "$scrape_out")"
read -r n50 n99 _ <<<"$(lat scrape_new_conn "$scrape_out")"
row "(d') GET /metrics, $mounted_n mounted, p50 (max $smax ms)" "$s50 ms" "" ""
row "(d') GET /metrics, $mounted_n mounted, p99, kept-alive" "$s99 ms" "< 5 ms" "$(verdict "$s99" '<' 5)"
row "(d') GET /metrics, new conn each, p50 / p99" "$n50 / $n99 ms" "< 5 ms" "$(verdict "$n99" '<' 5)"
row "(d') GET /metrics answer size" "$(field scrape_bytes "$scrape_out") B" "" ""
row "(d) leaked mounts after" "$mem_leak" "0" "$(verdict "$mem_leak" = 0)"
for piece in spawn_true helper_bind helper_unmount state_write; do
	read -r o50 o99 _ <<<"$(lat "$piece" "$parts_out")"
	row "(e) $piece p50 / p99 (outside the daemon)" "$o50 / $o99 ms" "" ""
done
if [ -n "$spawn_out" ]; then
	for how in uv_spawn posix_spawn; do
		row "(f) $how: loop blocked p50 / p99; spawn to exit p50" \
			"$(awk -v h="$how" '$1 == h { print $5 " / " $7 " ms; " $11 " ms" }' <<<"$spawn_out")" "" ""
	done
fi
echo "load average at start: $load_start; at end: $load_end (latencies are wall clock: other load on the machine inflates them)"
