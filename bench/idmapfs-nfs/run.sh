#!/bin/bash
# Benchmark, not a test: native kernel NFS against idmapfs over it, in the
# real-NFS VM (test/vm/), side by side in one boot. Prints a table of the
# second round (the first warms the server), with idmapfs' CPU and peak RSS.
# BENCH_MIB sets the sequential file size (default 128 MiB: the VM has 1 GiB
# and the export is a tmpfs in it).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -o "$tmp/iobench" "$top/bench/idmapfs-nfs/iobench.c"
NFSV3_VM_CASE_TIMEOUT=${NFSV3_VM_CASE_TIMEOUT:-900} NFSV3_BUILD=$build \
	"$top/test/vm/boot.sh" -f /usr/bin/curl -f "$tmp/iobench:/vm/bin/iobench" \
	"$top/bench/idmapfs-nfs/vm-case.sh" >"$tmp/out" 2>&1 || { tail -20 "$tmp/out"; exit 1; }
grep -o 'bench round=.*' "$tmp/out" >"$tmp/lines"
awk '
/round=2 kind=/ {
	split($3, k, "="); kind = k[2]; w = $4; t[kind, w] = $5; d[kind, w] = $6 " " $7; ws[w] = 1
}
/round=2 idmapfs-cpu-ticks/ { ticks = $4; rss = $6 }
END {
	printf "%-10s %14s %14s %10s   %s\n", "workload", "native s", "idmapfs s", "ratio", "idmapfs detail"
	n = split("seqwrite seqread meta tree randrw", order, " ")
	for (i = 1; i <= n; i++) {
		w = order[i]
		printf "%-10s %14.3f %14.3f %9.2fx   %s (native %s)\n", w, t["native", w], t["mapped", w], t["mapped", w] / t["native", w], d["mapped", w], d["native", w]
	}
	printf "idmapfs CPU over the mapped round: %.2f s; peak RSS %d KiB\n", ticks / 100, rss
}' "$tmp/lines"
