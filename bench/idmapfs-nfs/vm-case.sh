# Benchmark (run by bench/idmapfs-nfs/run.sh inside the NFS test VM, not a
# test): the same workloads as the app uid 2000 through a plain kernel NFS
# volume and through an idmapfs-mapped volume (uid 1234) of the same export.
. /vm/lib.sh
MIB=${BENCH_MIB:-128}
driver_start
mkdir -p /srv/export/native /srv/export/mapped
chown 2000:2000 /srv/export/native
chown 1234:1234 /srv/export/mapped
ok Create '{"Name":"native","Opts":{"source":"nfs://127.0.0.1/srv/export"}}' >/dev/null
ok Create '{"Name":"mapped","Opts":{"source":"nfs://127.0.0.1/srv/export","uid":"1234","gid":"1234"}}' >/dev/null
N=$(mountpoint_of "$(ok Mount '{"Name":"native"}')")/native
M=$(mountpoint_of "$(ok Mount '{"Name":"mapped"}')")/mapped
IO=/vm/bin/iobench
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in 1 2; do
	for kind in native mapped; do
		eval dir=\$$( [ $kind = native ] && echo N || echo M)
		pid=$(sed -n 's/.*"idmapfs_pid":\([0-9]*\).*/\1/p' "$DRIVER_ROOT/driver-state.json")
		c0=$(cpu "$pid")
		vm-runas 2000 2000 mkdir -p "$dir/t"
		for w in "seqwrite $dir/big $MIB" "seqread $dir/big" "meta $dir ${BENCH_FILES:-500}" "tree $dir/t ${BENCH_TREE:-300}" "randrw $dir/rnd 64 10"; do
			set -- $w
			[ "$1" = seqread ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
			out=$(vm-runas 2000 2000 $IO $w 2>&1) || fail "$kind $w: $out"
			echo "bench round=$round kind=$kind $out"
		done
		c1=$(cpu "$pid")
		[ $kind = mapped ] && echo "bench round=$round idmapfs-cpu-ticks $((c1 - c0)) rss-peak-kib $(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
		vm-runas 2000 2000 rm -rf "$dir/big" "$dir/t" "$dir/rnd"
	done
done
ok Unmount '{"Name":"native"}' >/dev/null
ok Unmount '{"Name":"mapped"}' >/dev/null
exit 0
