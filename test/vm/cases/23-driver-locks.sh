# Issue case 8: a flock and an fcntl lock held through one volume block the
# same lock through another volume of the same export.
. /vm/lib.sh
driver_start
for v in l1 l2; do
	ok Create "{\"Name\":\"$v\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\"}}" >/dev/null
done
M1=$(mountpoint_of "$(ok Mount '{"Name":"l1"}')")
M2=$(mountpoint_of "$(ok Mount '{"Name":"l2"}')")
: >"$M1/lockfile"
nfs_wait_grace
for kind in flock fcntl; do
	bg "holder-$kind" vm-lock "$kind" "$M1/lockfile" 60
	H=$BG_PID
	wait_for 30 grep -q locked "$VM_SCRATCH/holder-$kind.log" || fail "$kind: first lock not granted"
	out=$(timeout -s KILL 30 vm-lock "$kind" "$M2/lockfile" 2>&1)
	[ $? = 1 ] || fail "$kind: the same lock through the other volume: $out (expected busy)"
	kill "$H"
	wait "$H" 2>/dev/null
	wait_for 30 vm-lock "$kind" "$M2/lockfile" || fail "$kind: not granted after the holder left"
done
rm -f "$M1/lockfile"
ok Unmount '{"Name":"l1"}' >/dev/null
ok Unmount '{"Name":"l2"}' >/dev/null
exit 0
