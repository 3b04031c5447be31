# Through nfsv3driver-mount's kernel mounts, run directly (no daemon):
# - a lock held through one mount blocks the same lock through a second,
#   separate kernel mount of the export (the server's lockd decides: NLM and
#   rpc.statd work in the test bed);
# - a mount whose server died, with a process stuck in it, still unmounts
#   with "force" in bounded time.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"

ROOT=$VM_SCRATCH/root
K1=1111111111111111 K2=2222222222222222
OPTS="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=3,proto=tcp,sec=sys"
mkdir -p "$ROOT"

# nosharecache: two superblocks, two NFS clients' worth of state, so the
# conflict cannot be settled inside one client.
run "mount 1" "$MOUNT_HELPER" nfs "$ROOT" "$K1" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,nosharecache"
run "mount 2" "$MOUNT_HELPER" nfs "$ROOT" "$K2" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,nosharecache"
M1=$ROOT/.kernel/$K1 M2=$ROOT/.kernel/$K2
: >"$M1/lockfile" || fail "cannot create the lock file"

# For flock and for fcntl locks: lock through mount 1 and hold it; the same
# lock through mount 2 is refused while held and granted once released.
nfs_wait_grace
for kind in flock fcntl; do
	t0=$(now_ms)
	bg "holder-$kind" vm-lock "$kind" "$M1/lockfile" 60
	HOLDER=$BG_PID
	wait_for 30 grep -q locked "$VM_SCRATCH/holder-$kind.log" ||
		fail "$kind: the first lock was not granted in 30 s: $(cat "$VM_SCRATCH/holder-$kind.log")"
	note "$kind: first lock granted after $(($(now_ms) - t0)) ms"
	t0=$(now_ms)
	out=$(timeout -s KILL 30 vm-lock "$kind" "$M2/lockfile" 2>&1)
	rc=$?
	[ "$rc" = 1 ] || fail "$kind: a second lock through another mount: exit $rc, $out (expected busy)"
	note "$kind: conflicting lock refused after $(($(now_ms) - t0)) ms"
	kill "$HOLDER"
	wait "$HOLDER" 2>/dev/null
	wait_for 30 vm-lock "$kind" "$M2/lockfile" ||
		fail "$kind: the lock was not granted after the holder left: $(vm-lock "$kind" "$M2/lockfile" 2>&1)"
done
rm -f "$M1/lockfile"
run "unmount 2" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$K2" lazy

# A dead server: nfsd stopped while a process is stuck reading on the mount.
echo data >"$M1/file"
nfs_server_stop
bg stuck cat "$M1/file"
sleep 1
# Mounting again on the dead mount's key is refused at once, without touching it.
t0=$(now_ms)
ERR=$(timeout -s KILL 10 "$MOUNT_HELPER" nfs "$ROOT" "$K1" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS" 2>&1)
RC=$?
note "nfs on a dead mount's key: exit $RC after $(($(now_ms) - t0)) ms: $ERR"
[ "$RC" = 3 ] || fail "nfs on a dead mount's key: exit $RC, expected 3 (already mounted): $ERR"
t0=$(now_ms)
timeout -s KILL 30 "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$K1" force
RC=$?
note "force unmount on a dead server: exit $RC after $(($(now_ms) - t0)) ms"
[ "$RC" = 0 ] || fail "force unmount on a dead server failed (exit $RC)"
is_mounted "$M1" && fail "$M1 still mounted after the force unmount"
nfs_server_start || fail "cannot restart the NFS server"
exit 0
