# Benchmark (run by bench/idmapfs-nfs/run.sh inside the NFS test VM, not a
# test): the same workloads as the app uid 2000 through a plain kernel NFS
# volume and through an idmapfs-mapped volume (uid 1234) of the same export.
# Round 1 warms the server up; rounds 2..BENCH_ROUNDS are measured. Within a
# round each workload runs on both volumes back to back, so a slow spell of
# the emulated machine hits both kinds rather than one. With OPS_N set, one
# operation at a time instead, OPS_N times on each volume, each on what the
# last left: lines "bench op NAME kind=KIND CALLS".
. /vm/lib.sh
MIB=${BENCH_MIB:-128}
ROUNDS=${BENCH_ROUNDS:-4}
driver_start
mkdir -p /srv/export/native /srv/export/mapped
chown 2000:2000 /srv/export/native
chown 1234:1234 /srv/export/mapped
ok Create '{"Name":"native","Opts":{"source":"nfs://127.0.0.1/srv/export","version":"3"}}' >/dev/null
ok Create '{"Name":"mapped","Opts":{"source":"nfs://127.0.0.1/srv/export","version":"3","uid":"1234","gid":"1234"}}' >/dev/null
N=$(mountpoint_of "$(ok Mount '{"Name":"native"}')")/native
M=$(mountpoint_of "$(ok Mount '{"Name":"mapped"}')")/mapped
IO=/vm/bin/iobench
pid=$(sed -n 's/.*"idmapfs_pid":\([0-9]*\).*/\1/p' "$DRIVER_ROOT/driver-state.json")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The NFSv3 calls the client made since the last call of this, by procedure.
rpcs_seen=
rpcs() {
	local now
	now=$(awk '$1 == "proc3" { for (i = 4; i <= NF; i++) printf "%s ", $i }' /proc/net/rpc/nfs)
	if [ -n "$rpcs_seen" ]; then
		awk -v a="$rpcs_seen" -v b="$now" 'BEGIN {
			split("getattr setattr lookup access readlink read write create mkdir symlink mknod remove rmdir rename link readdir readdirplus fsstat fsinfo pathconf commit", name, " ")
			n = split(a, x, " "); split(b, y, " "); out = ""
			for (i = 1; i <= n; i++) if (y[i] - x[i] > 0) out = out " " name[i] "=" (y[i] - x[i])
			print "rpcs" out
		}'
	fi
	rpcs_seen=$now
}
if [ -n "${BENCH_NETEM:-}" ]; then
	# iproute2's tc (run.sh brings it), not busybox's applet of that name.
	/usr/sbin/tc qdisc add dev lo root netem delay "$BENCH_NETEM" || fail "tc netem delay $BENCH_NETEM on lo"
fi
if [ -n "${OPS_N:-}" ]; then
	for kind in native mapped; do
		dir=$N
		[ $kind = mapped ] && dir=$M
		vm-runas 2000 2000 mkdir "$dir/ops"
		i=0
		for op in create stat open read rewrite list rename unlink creat unlink mkdir rmdir; do
			i=$((i + 1))
			rpcs >/dev/null
			out=$(vm-runas 2000 2000 $IO op "$dir/ops" $op "$OPS_N" 2>&1) || fail "$kind $op: $out"
			echo "bench op $(printf %02d $i)-$op kind=$kind $(rpcs)"
		done
	done
	ok Unmount '{"Name":"native"}' >/dev/null
	ok Unmount '{"Name":"mapped"}' >/dev/null
	exit 0
fi
mapped_ticks=0
for round in $(seq "$ROUNDS"); do
	for dir in "$N" "$M"; do vm-runas 2000 2000 mkdir -p "$dir/t"; done
	for w in "seqwrite big $MIB" "seqread big" "meta . ${BENCH_FILES:-500}" "tree t ${BENCH_TREE:-300}" "randrw rnd 64 10"; do
		set -- $w
		for kind in native mapped; do
			dir=$N
			[ $kind = mapped ] && dir=$M
			[ "$1" = seqread ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
			c0=$(cpu "$pid")
			rpcs >/dev/null
			out=$(vm-runas 2000 2000 $IO "$1" "$dir/$2" ${3:+"$3"} ${4:+"$4"} 2>&1) || fail "$kind $w: $out"
			[ $kind = mapped ] && [ "$round" -gt 1 ] && mapped_ticks=$((mapped_ticks + $(cpu "$pid") - c0))
			echo "bench round=$round kind=$kind $out"
			echo "bench calls round=$round kind=$kind $1 $(rpcs)"
		done
	done
	for dir in "$N" "$M"; do vm-runas 2000 2000 rm -rf "$dir/big" "$dir/t" "$dir/rnd"; done
done
echo "bench idmapfs-cpu-ticks $mapped_ticks rss-peak-kib $(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
ok Unmount '{"Name":"native"}' >/dev/null
ok Unmount '{"Name":"mapped"}' >/dev/null
exit 0
