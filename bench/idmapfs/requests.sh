#!/bin/bash
# The FUSE requests a command makes, per opcode: how many and how long each
# took from the kernel sending it to the answer (µs), from the kernel's
# fuse:fuse_request_send/end tracepoints. Not a test.
#
#   sudo bench/idmapfs/requests.sh COMMAND [ARG...]
#
# e.g. against a running idmapfs mount, as the app uid:
#   sudo bench/idmapfs/requests.sh setpriv --reuid 2000 --regid 2000 \
#       --clear-groups tar -C /mnt/vol -xf tree.tar
# Needs root and a kernel with the fuse tracepoints (6.x); the trace buffer
# can overflow on long runs (the counts then fall short).
set -euo pipefail
trace=/sys/kernel/tracing
[ -d $trace/events/fuse ] || { echo "requests.sh: no fuse tracepoints in $trace" >&2; exit 77; }
on() { echo "$1" > $trace/events/fuse/fuse_request_send/enable; echo "$1" > $trace/events/fuse/fuse_request_end/enable; }
echo > $trace/trace
on 1
trap 'on 0' EXIT
"$@"
on 0
awk '
{
	for (i = 2; i <= NF; i++) {
		if ($i == "fuse_request_send:" || $i == "fuse_request_end:") {
			t = $(i - 1); sub(/:$/, "", t)
			for (j = i; j < NF; j++) if ($j == "req") req = $(j + 1)
			if ($i == "fuse_request_send:") {
				for (j = i; j < NF; j++) if ($j == "opcode") { o = $(j + 2); gsub(/[()]/, "", o) }
				sent[req] = t; op[req] = o
			} else if (req in sent) {
				o = op[req]; n[o]++; sum[o] += (t - sent[req]) * 1e6; delete sent[req]
			}
			break
		}
	}
}
END {
	for (o in n) printf "%-18s %8d %12.1f\n", o, n[o], sum[o] / n[o]
}' $trace/trace | sort -k2 -n -r | { printf "%-18s %8s %12s\n" opcode count "mean us"; cat; }
