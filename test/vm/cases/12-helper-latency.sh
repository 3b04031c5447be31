# Latency of nfsv3driver-mount's kernel NFS mount and unmount in the VM (run
# directly, no daemon): N rounds of nfs + unmount lazy, p50 and p99 printed as
#   vm-figure helper-nfs-mount p50=.. p99=.. ms
# Judged only loosely (every round must work, p99 under 5 s): qemu TCG and a
# loaded host make absolute numbers noisy.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"
ROUNDS=${VM_LATENCY_ROUNDS:-20}
ROOT=$VM_SCRATCH/root KEY=abcdefabcdef0000
OPTS="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=3,proto=tcp,sec=sys"
mkdir -p "$ROOT"
: >mount.ms; : >unmount.ms
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	t0=$(now_ms)
	run "mount round $i" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
	t1=$(now_ms)
	run "unmount round $i" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
	t2=$(now_ms)
	echo $((t1 - t0)) >>mount.ms
	echo $((t2 - t1)) >>unmount.ms
	i=$((i + 1))
done
# percentile FILE P: nearest-rank percentile of the numbers in FILE.
percentile() { sort -n "$1" | awk -v p="$2" '{v[NR]=$1} END {r=int((p*NR+99)/100); if (r<1) r=1; print v[r]}'; }
for what in mount unmount; do
	p50=$(percentile $what.ms 50) p99=$(percentile $what.ms 99)
	echo "vm-figure helper-nfs-$what rounds=$ROUNDS p50=${p50}ms p99=${p99}ms"
	[ "$p99" -lt 5000 ] || fail "helper $what p99 is $p99 ms"
done
