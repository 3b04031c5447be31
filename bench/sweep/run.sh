#!/bin/bash
# The sweep's benchmark (not a test: it measures and prints). volman never
# calls Remove: every container start creates a volume of its own, mounts
# it and later unmounts it. This runs STARTS such starts (Create, Mount,
# Unmount, fresh names, a new TCP connection per call, CLIENTS at once)
# against a daemon with --forget-unmounted-after AGE, with real bind mounts
# of a local source, and prints the state file's size, the daemon's RSS and
# the listed volumes every EVERY starts: both must stay bounded. Then the
# same for COMPARE starts with the sweep off (--forget-unmounted-after 0),
# to show what it bounds. Needs root (bind mounts).
#
# usage: bench/sweep/run.sh BUILD_DIR    (make bench-sweep)
# Environment: STARTS (100000), CLIENTS (8), EVERY (5000), AGE (10s),
#   COMPARE (20000; 0 skips the run without the sweep), TMPFS (1: the mount
#   root on a tmpfs of its own, so that the state's fsync costs nothing and
#   100,000 starts fit in minutes; 0: on /tmp's own file system).
set -euo pipefail
build=$(realpath "${1:-build}")
"$(dirname "$0")/../../packaging/local-sources.sh" /tmp >/dev/null
[ "$(id -u)" = 0 ] || { echo "$0: must run as root (the helpers make real bind mounts)" >&2; exit 1; }
STARTS=${STARTS:-100000}
CLIENTS=${CLIENTS:-8}
EVERY=${EVERY:-5000}
AGE=${AGE:-10s}
COMPARE=${COMPARE:-20000}
TMPFS=${TMPFS:-1}

tmp=$(mktemp -d /tmp/nfsv3sweep.XXXXXX)
mkdir -p "$tmp/src" "$tmp/bin" "$tmp/libexec"
# Run copies, so that a rebuild in the tree during the run cannot touch them.
cp "$build/bin/nfsv3driver" "$tmp/bin/"
cp "$build/libexec/nfsv3driver/nfsv3driver-mount" "$tmp/libexec/"
pid=

cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	awk -v d="$tmp/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run LABEL N AGE: a fresh daemon, N starts, the table.
run() {
	local label=$1 n=$2 age=$3 root=$tmp/$1/root port
	mkdir -p "$root"
	[ "$TMPFS" = 1 ] && mount -t tmpfs -o size=512m,mode=0755 nfsv3sweep "$root"
	port=$(free_port)
	"$tmp/bin/nfsv3driver" --listen "tcp://127.0.0.1:$port" --mount-root "$root" --allow-local-sources \
		--helper-dir "$tmp/libexec" --log-level error --forget-unmounted-after "$age" >"$tmp/$label.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.05
	done
	echo "== $label: $n container starts, $CLIENTS clients, --forget-unmounted-after $age, root on $(stat -f -c %T "$root") ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$build/bench/sweepbench" --port "$port" --pid "$pid" --state "$root/driver-state.json" --source "file://$tmp/src" \
		--starts "$n" --clients "$CLIENTS" --every "$EVERY"
	if [ "$age" != 0 ]; then
		# What is left once the last starts have aged: the sweep forgets them too.
		sleep "$(awk -v a="$age" 'BEGIN { n = a + 0; u = substr(a, length(a)); m = u == "m" ? 60 : u == "h" ? 3600 : 1; print n * m * 1.5 + 2 }')"
		echo "   after the last starts aged:"
		"$build/bench/sweepbench" --port "$port" --pid "$pid" --state "$root/driver-state.json" --source "file://$tmp/src" \
			--starts 1 --clients 1 --every 1 | tail -1
	fi
	echo "   mounts left under the root: $(awk -v d="$root/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l)"
	kill -TERM "$pid"
	wait "$pid" || true
	pid=
}

run sweep "$STARTS" "$AGE"
[ "$COMPARE" -gt 0 ] && run no-sweep "$COMPARE" 0
exit 0
