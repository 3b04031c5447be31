# Issue 14, NFSv3 locks across a server restart: an fcntl lock held through
# a driver volume (version 3 pinned, no nolock, rpc.statd running beside the
# driver as on a cell) survives the NFS server's restart. The restart loses
# the server's lock state (nfsd stopped, the client's locks dropped as a
# reboot drops them), starts a grace period, and the server's sm-notify tells
# the client's rpc.statd, which tells the client's lockd: it reclaims the lock
# within the grace period. After the grace period another volume of the same
# export (its own kernel mount, so the server's lockd decides) still cannot
# take the lock while the holder lives; the lock is still the holder's: once
# it unlocks (the file still open), the other volume gets it.
. /vm/lib.sh
driver_start --allowed-nfs-options actimeo
SRC='"source":"nfs://127.0.0.1/srv/export","version":"3"'
F=/srv/export/lock29
: >"$F" && chmod 0666 "$F"

# server_locks: how many locks the server's lockd holds on $F (/proc/locks
# lines for the exported tmpfs file, not the client's NFS inode).
server_locks() {
	awk -v d="$(stat -c %d "$F")" -v i="$(stat -c %i "$F")" '
		BEGIN { id = sprintf("%02x:%02x:%d", int(d / 256) % 4096, d % 256 + int(d / 1048576) * 256, i) }
		$2 != "->" && $6 == id { n++ } END { print n + 0 }' /proc/locks
}
has_server_locks() { [ "$(server_locks)" = "$1" ]; }
# other: the lock through the other volume, without waiting: locked|busy|...
other() { timeout -s KILL 30 vm-lock fcntl "$MO/lock29" 2>&1; }

ok Create "{\"Name\":\"h\",\"Opts\":{$SRC}}" >/dev/null
# actimeo=3: other kernel options, so another kernel mount (superblock):
# its conflict with the holder is the server's to find, not the client's.
ok Create "{\"Name\":\"o\",\"Opts\":{$SRC,\"nfs_options\":\"actimeo=3\"}}" >/dev/null
MH=$(mountpoint_of "$(ok Mount '{"Name":"h"}')")
MO=$(mountpoint_of "$(ok Mount '{"Name":"o"}')")
[ "$(kernel_mounts)" = 2 ] || fail "expected 2 kernel mounts, have $(kernel_mounts)"
case $(mount_opts "$MH") in *nolock*) fail "the holder's volume has nolock: $(mount_opts "$MH")" ;; esac
rpcinfo -p 127.0.0.1 | grep -q ' status$' || fail "rpc.statd is not registered with rpcbind"

nfs_wait_grace
bg holder vm-lock fcntl "$MH/lock29" 55
HOLDER=$BG_PID
wait_for 20 grep -q locked "$VM_SCRATCH/holder.log" || fail "the lock was not granted: $(cat "$VM_SCRATCH/holder.log")"
[ "$(other)" = busy ] || fail "before the restart the other volume got: $(other)"
[ "$(server_locks)" = 1 ] || fail "the server holds $(server_locks) locks on $F, expected 1"
# statd monitors the server for the client (and the client for the server).
ls /var/lib/nfs/sm/ 2>/dev/null | grep -q . || fail "rpc.statd monitors no host: $(ls -la /var/lib/nfs/sm/)"
note "statd monitors: $(ls /var/lib/nfs/sm/ | tr '\n' ' ')"

# The restart. nfsd stops; lockd serves on (the client's mounts hold it):
# the server's locks would outlive "rpc.nfsd 0", so drop them as a reboot
# would (every lock of client 127.0.0.1, the server's /proc/fs/nfsd/unlock_ip).
nfs_server_stop
note "locks the server holds with nfsd stopped: $(server_locks)"
echo 127.0.0.1 >/proc/fs/nfsd/unlock_ip || fail "cannot drop the server's locks"
[ "$(server_locks)" = 0 ] || fail "the server still holds $(server_locks) locks after unlock_ip"
nfs_server_start || fail "cannot restart the NFS server"
t_start=$(now_ms)
# Nothing brings the lock back by itself: the client has not been told yet.
sleep 1
[ "$(server_locks)" = 0 ] || fail "the server holds $(server_locks) locks before any notification"
# As the server's rpc.statd does when it starts: tell every monitored peer
# (here the client, through its own rpc.statd) that this host restarted.
t_sent=$(now_ms)
out=$(timeout -s KILL 20 sm-notify -d -f -v 127.0.0.1 2>&1) || fail "sm-notify: exit $?: $out"
t_notify=$(now_ms)
wait_for 9 has_server_locks 1 ||
	fail "the lock was not reclaimed in the grace period (the server holds $(server_locks)); holder: $(cat "$VM_SCRATCH/holder.log")"
t_back=$(now_ms)
note "sm-notify took $((t_notify - t_sent)) ms; the lock was back on the server $((t_back - t_notify)) ms after it ended, $((t_back - t_start)) ms after the restart"
kill -0 "$HOLDER" 2>/dev/null || fail "the holder died: $(cat "$VM_SCRATCH/holder.log")"

# After the grace period: still the holder's.
nfs_wait_grace
o=$(other)
note "after the grace period the other volume: $o"
[ "$o" = busy ] || fail "after the restart the other volume got \"$o\": the lock was not reclaimed"
[ "$(server_locks)" = 1 ] || fail "the server holds $(server_locks) locks, expected 1"
[ "$(cat "$VM_SCRATCH/holder.log")" = locked ] || fail "holder: $(cat "$VM_SCRATCH/holder.log")"
kill -USR1 "$HOLDER"
wait_for 10 grep -q unlocked "$VM_SCRATCH/holder.log" || fail "the holder could not unlock: $(cat "$VM_SCRATCH/holder.log")"
wait_for 10 has_server_locks 0 || fail "the server still holds $(server_locks) locks after the holder unlocked"
o=$(other)
[ "$o" = locked ] || fail "after the holder unlocked the other volume got \"$o\""
kill -0 "$HOLDER" 2>/dev/null || fail "the holder exited before the other volume locked"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null

rm -f "$MH/lock29"
ok Unmount '{"Name":"h"}' >/dev/null
ok Unmount '{"Name":"o"}' >/dev/null
for v in h o; do ok Remove "{\"Name\":\"$v\"}" >/dev/null; done
wait_for 15 no_driver_mounts || fail "mounts left: $(driver_mounts_left)"
exit 0
