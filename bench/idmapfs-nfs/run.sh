#!/bin/bash
# Benchmark, not a test: native kernel NFS against idmapfs over it, in the
# real-NFS VM (test/vm/), side by side in one boot. Prints a table of the
# best of the measured rounds (BENCH_ROUNDS, default 4; the first warms the
# server up), with idmapfs' CPU and peak RSS.
# BENCH_MIB sets the sequential file size (default 128 MiB: the VM has 1 GiB
# and the export is a tmpfs in it), BENCH_FILES the metadata files (500),
# BENCH_TREE the tree's files (300). BENCH_NETEM delays every packet on
# the guest's loopback by that much (tc netem, e.g. 0.5ms: a round trip of
# 1 ms, as on a real network) for both kinds alike. NFSV3_VM_KERNEL_SUITE=
# bookworm-backports boots that suite's kernel (FUSE passthrough; see
# test/vm/README.md).
#
#   bench/idmapfs-nfs/run.sh ops    the NFSv3 calls of one operation at a
#                                   time instead (OPS_N of each, default 100)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Wall -o "$tmp/iobench" "$top/bench/idmapfs-nfs/iobench.c"
boot() {
	NFSV3_BUILD=$build NFSV3_VM_KERNEL_SUITE=${NFSV3_VM_KERNEL_SUITE:-} \
		"$top/test/vm/boot.sh" -f /usr/bin/curl -f /usr/sbin/tc -f "$tmp/iobench:/vm/bin/iobench" \
		"$1" >"$tmp/out" 2>&1 || { tail -20 "$tmp/out"; exit 1; }
	echo "kernel $(sed -n 's/.*init started (kernel \(.*\))$/\1/p' "$tmp/out")"
}
if [ "${1:-}" = ops ]; then
	{ printf 'OPS_N=%s BENCH_NETEM=%s\n' "${OPS_N:-100}" "${BENCH_NETEM:-}"; cat "$top/bench/idmapfs-nfs/vm-case.sh"; } \
		>"$tmp/idmapfs-ops.sh"
	boot "$tmp/idmapfs-ops.sh"
	echo "NFSv3 calls of ${OPS_N:-100} of each operation, in order, each on what the one before left"
	grep -o 'bench op .*' "$tmp/out" |
		awk '{ split($4, k, "="); printf "%-10s %-7s", $3, k[2]; for (i = 6; i <= NF; i++) printf " %s", $i; printf "\n" }' |
		awk '{ if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } line[$1] = line[$1] $0 "\n" }
		END { for (i = 1; i <= n; i++) printf "%s", line[order[i]] }'
	exit 0
fi
# The guest sees none of our environment: the settings go in the case script.
rounds=${BENCH_ROUNDS:-4}
{
	printf 'BENCH_MIB=%s BENCH_ROUNDS=%s BENCH_FILES=%s BENCH_TREE=%s BENCH_NETEM=%s\n' \
		"${BENCH_MIB:-128}" "$rounds" "${BENCH_FILES:-500}" "${BENCH_TREE:-300}" "${BENCH_NETEM:-}"
	cat "$top/bench/idmapfs-nfs/vm-case.sh"
} >"$tmp/idmapfs-nfs.sh"
NFSV3_VM_CASE_TIMEOUT=${NFSV3_VM_CASE_TIMEOUT:-$((300 * rounds))} boot "$tmp/idmapfs-nfs.sh"
grep -o 'bench .*' "$tmp/out" >"$tmp/lines"
# Best of the measured rounds: the shortest time, or for randrw (a fixed
# 10 s) the most IOPS; ratios are idmapfs time over native time, and for
# randrw native IOPS over idmapfs IOPS, so above 1 is always slower.
awk '
/^bench round=/ {
	split($2, r, "="); split($3, k, "="); if (r[2] < 2) next
	kind = k[2]; w = $4; rounds[r[2]] = 1
	v = (w == "randrw") ? 1 / $6 : $5
	if (!((kind, w) in best) || v < best[kind, w]) { best[kind, w] = v; d[kind, w] = $6 " " $7 }
}
/^bench idmapfs-cpu-ticks/ { ticks = $3; rss = $5 }
END {
	printf "best of %d measured rounds%s\n", length(rounds), netem
	printf "%-10s %14s %14s %10s   %s\n", "workload", "native", "idmapfs", "ratio", "idmapfs detail (native)"
	n = split("seqwrite seqread meta tree randrw", order, " ")
	for (i = 1; i <= n; i++) {
		w = order[i]; a = best["native", w]; b = best["mapped", w]
		if (w == "randrw") printf "%-10s %10.0f IOPS %9.0f IOPS %9.2fx   %s (%s)\n", w, 1 / a, 1 / b, b / a, d["mapped", w], d["native", w]
		else printf "%-10s %12.3f s %12.3f s %9.2fx   %s (%s)\n", w, a, b, b / a, d["mapped", w], d["native", w]
	}
	printf "idmapfs CPU over the measured mapped runs: %.2f s; peak RSS %d KiB\n", ticks / 100, rss
}' netem="${BENCH_NETEM:+, loopback delayed $BENCH_NETEM each way}" "$tmp/lines"
# The NFS calls each run made in the last round: what idmapfs adds on the wire.
echo
echo "NFSv3 calls per run (last round)"
awk '/^bench calls/ { line[$4, $5] = $0 }
END { n = split("seqwrite seqread meta tree randrw", order, " ")
	for (i = 1; i <= n; i++) for (k = 0; k < 2; k++) {
		kind = k ? "mapped" : "native"; split(line["kind=" kind, order[i]], f, " ")
		printf "%-10s %-7s", order[i], kind; for (j = 7; j in f; j++) printf " %s", f[j]; printf "\n" } }' "$tmp/lines"
