# Figures, not a check: Mount and Unmount latency through the driver over
# NFS (each Mount makes the kernel mount and the bind; each Unmount undoes both).
. /vm/lib.sh
driver_start
ok Create '{"Name":"lat","Opts":{"source":"nfs://127.0.0.1/srv/export"}}' >/dev/null
: >"$VM_SCRATCH/mount.ms"
: >"$VM_SCRATCH/unmount.ms"
for i in $(seq 1 20); do
	t0=$(now_ms); ok Mount '{"Name":"lat"}' >/dev/null; t1=$(now_ms)
	ok Unmount '{"Name":"lat"}' >/dev/null; t2=$(now_ms)
	echo $((t1 - t0)) >>"$VM_SCRATCH/mount.ms"
	echo $((t2 - t1)) >>"$VM_SCRATCH/unmount.ms"
done
for f in mount unmount; do
	sort -n "$VM_SCRATCH/$f.ms" | awk -v what="$f" '{v[NR] = $1} END {printf "# driver %s over NFS: p50 %d ms, p99 %d ms (n=%d)\n", what, v[int(NR * 0.5 + 0.5)], v[NR], NR}'
done
exit 0
