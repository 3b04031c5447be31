# Issue case 5: a server that does not answer: Mount fails within the helper
# deadline plus 2 s with a clear error while /ping answers promptly; and a
# volume whose server died still unmounts.
. /vm/lib.sh
HELPER_TIMEOUT=5 driver_start
# Version 3: stopping mountd silences the MOUNT call, which NFSv4 does not make.
ok Create '{"Name":"h1","Opts":{"source":"nfs://127.0.0.1/srv/export","version":"3"}}' >/dev/null

mountd=$(pidof rpc.mountd) || fail "no rpc.mountd"
kill -STOP $mountd
t0=$(now_ms)
bg mount1 sh -c 'call() { curl -sS --max-time 60 --unix-socket '"$DRIVER_SOCK"' -X POST -d "$2" "http://driver/VolumeDriver.$1"; }; call Mount "{\"Name\":\"h1\"}"'
M=$BG_PID
worst=0
while kill -0 $M 2>/dev/null; do
	p=$(ping_ms)
	[ "$p" -gt "$worst" ] && worst=$p
	sleep 0.2
done
t1=$(now_ms)
kill -CONT $mountd
a=$(cat "$VM_SCRATCH/mount1.log")
note "case 5: Mount answered after $((t1 - t0)) ms: $a; slowest /ping meanwhile $worst ms"
case $a in *SafeDescription*"timed out after 5 s"*) ;; *) fail "case 5: $a" ;; esac
[ $((t1 - t0)) -le 7000 ] || fail "case 5: Mount took $((t1 - t0)) ms (deadline 5 s + 2 s)"
[ "$worst" -lt 1000 ] || fail "case 5: /ping took $worst ms while the mount hung"
wait_for 10 no_driver_mounts || fail "case 5: a late mount leaked"

# The server comes back: Mount works; then the server dies under it.
MP=$(mountpoint_of "$(ok Mount '{"Name":"h1"}')")
echo data >"$MP/file" || fail "case 5: cannot write"
nfs_server_stop
t0=$(now_ms)
ok Unmount '{"Name":"h1"}' >/dev/null
t1=$(now_ms)
note "case 5: Unmount with the server stopped took $((t1 - t0)) ms"
wait_for 10 no_driver_mounts ||
	fail "case 5: still mounted: $(driver_mounts_left)"
nfs_server_start || fail "cannot restart the NFS server"
ok Remove '{"Name":"h1"}' >/dev/null
exit 0
