#!/bin/bash
# Benchmark, not a test: a start storm in the real-NFS VM (test/vm/): 250
# mapped bindings (BENCH_COUNT) of one NFSv3 export mounted at once, as many
# containers starting on a cell at the same moment. Prints the errors, Mount
# latency p50/p99/max, the daemon's peak RSS and what the idmapfs
# processes cost once all serve.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The guest sees none of our environment: the settings go in the case script.
{
	printf 'BENCH_COUNT=%s\n' "${BENCH_COUNT:-250}"
	cat "$top/bench/storm-nfs/vm-case.sh"
} >"$tmp/storm-nfs.sh"
NFSV3_VM_CASE_TIMEOUT=${NFSV3_VM_CASE_TIMEOUT:-600} NFSV3_BUILD=$build \
	"$top/test/vm/boot.sh" "$tmp/storm-nfs.sh" >"$tmp/out" 2>&1 || { tail -20 "$tmp/out"; exit 1; }
grep -o 'bench .*' "$tmp/out" >"$tmp/lines"
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
m=$(grep '^bench mount ' "$tmp/lines") u=$(grep '^bench unmount ' "$tmp/lines")
i=$(grep '^bench idmapfs ' "$tmp/lines")
echo "start storm: $(echo "$m" | field count) mapped bindings over NFSv3 mounted at once (--max-parallel 16)"
printf '%-8s %7s %9s %9s %9s   %s\n' call errors p50_ms p99_ms max_ms first_error
for l in "$m" "$u"; do
	printf '%-8s %7s %9s %9s %9s   %s\n' "$(echo "$l" | field verb)" "$(echo "$l" | field errors)" \
		"$(echo "$l" | field p50_ms)" "$(echo "$l" | field p99_ms)" "$(echo "$l" | field max_ms)" \
		"$(echo "$l" | field first_error)"
done
echo "$(grep '^bench mounted ' "$tmp/lines" | cut -d' ' -f3-)"
echo "daemon: peak RSS (VmHWM) $(awk '/^bench daemon-peak-rss-kib/ {print $3}' "$tmp/lines") KiB," \
	"before the storm $(awk '/^bench daemon-rss-before-kib/ {print $3}' "$tmp/lines") KiB"
echo "idmapfs: $(echo "$i" | field servers) servers, $(echo "$i" | field processes) processes with their sentries;" \
	"PSS total $(echo "$i" | field pss-total-kib) KiB, largest server RSS $(echo "$i" | field max-server-rss-kib) KiB"
grep '^bench guest-memory\|^bench left-mounted' "$tmp/lines" | sed 's/^bench //'
