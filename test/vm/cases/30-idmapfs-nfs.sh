# idmapfs over real NFS (issue 4): what the app writes through a uid 1234
# binding is owned 1234:1234 on the server; a file chowned to 1234 on the
# server looks owned by the app (2000); in a sticky world-writable directory
# the uid 5000 binding reads but cannot delete the 1234 binding's file; a
# lock through one binding blocks the same lock through the other. Unlinks
# and renames over files cost what they cost natively on the wire.
# Version 3 throughout: the call counts are NFSv3 procedures (case 39 runs
# the identity checks over the negotiated version).
. /vm/lib.sh
driver_start
mkdir -p /srv/export/shared && chmod 1777 /srv/export/shared
for b in "a 1234" "b 5000"; do
	set -- $b
	ok Create "{\"Name\":\"$1\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\",\"uid\":\"$2\",\"gid\":\"$2\",\"version\":\"3\"}}" >/dev/null
done
MA=$(mountpoint_of "$(ok Mount '{"Name":"a"}')")
MB=$(mountpoint_of "$(ok Mount '{"Name":"b"}')")
out=$(vm-runas 2000 2000 sh -c "echo one >$MA/shared/f1 && chmod 0644 $MA/shared/f1 && stat -c %u:%g $MA/shared/f1" 2>&1) ||
	fail "write through the 1234 binding: $out"
[ "$out" = 2000:2000 ] || fail "the app sees its file owned by $out"
[ "$(stat -c %u:%g /srv/export/shared/f1)" = 1234:1234 ] || fail "on the server: $(stat -c %u:%g /srv/export/shared/f1)"
echo srv >/srv/export/shared/srvfile && chown 1234:1234 /srv/export/shared/srvfile
[ "$(vm-runas 2000 2000 stat -c %u "$MA/shared/srvfile")" = 2000 ] || fail "server's 1234 file not shown as 2000"
[ "$(vm-runas 2000 2000 cat "$MB/shared/f1")" = one ] || fail "uid 5000 binding cannot read the 0644 file"
vm-runas 2000 2000 rm -f "$MB/shared/f1" 2>/dev/null && fail "uid 5000 binding deleted uid 1234's file in a sticky dir"
[ -e /srv/export/shared/f1 ] || fail "the file is gone"
# Another uid on the host gets nothing through the mount.
vm-runas 3000 3000 ls "$MA/shared" >/dev/null 2>&1 && fail "uid 3000 could list through the binding"
# The refused unlink left the file usable through the binding that tried.
[ "$(vm-runas 2000 2000 cat "$MB/shared/f1")" = one ] || fail "the file is unreadable after a refused unlink"

# Unlinks and renames over a file nobody has open are plain REMOVEs and
# RENAMEs on the wire: no hidden .nfsXXXX file (a "silly rename", an extra
# LOOKUP and RENAME) for the fd idmapfs holds on every inode it knows.
renames() { awk '$1 == "proc3" { print $17 }' /proc/net/rpc/nfs; }
r0=$(renames)
out=$(vm-runas 2000 2000 sh -c "mkdir $MA/shared/d && for i in 1 2 3 4 5 6 7 8 9 10; do echo \$i >$MA/shared/d/f\$i && stat $MA/shared/d/f\$i >/dev/null && rm $MA/shared/d/f\$i; done && rmdir $MA/shared/d" 2>&1) ||
	fail "create, stat, unlink, rmdir: $out"
r1=$(renames)
[ "$r1" = "$r0" ] || fail "10 unlinks made $((r1 - r0)) RENAME calls (silly renames)"
out=$(vm-runas 2000 2000 sh -c "echo x >$MA/shared/x && echo y >$MA/shared/y && cat $MA/shared/y >/dev/null && mv $MA/shared/x $MA/shared/y && cat $MA/shared/y" 2>&1)
[ "$out" = x ] || fail "rename over a file: $out"
[ $(($(renames) - r1)) = 1 ] || fail "a rename over a file made $(($(renames) - r1)) RENAME calls, not 1"
ls -A /srv/export/shared | grep -q '^\.nfs' && fail "hidden files left: $(ls -A /srv/export/shared)"
# Under the driver's default actimeo=0 the binding caches what the kernel
# NFS client caches: nothing. A name the server adds, a size it changes,
# show at once, as on a plain binding.
vm-runas 2000 2000 stat "$MA/shared/late" >/dev/null 2>&1 && fail "late exists before the server made it"
echo late >/srv/export/shared/late && chown 1234:1234 /srv/export/shared/late
[ "$(vm-runas 2000 2000 cat "$MA/shared/late" 2>&1)" = late ] || fail "a name the server just added is not there"
echo later >>/srv/export/shared/late
[ "$(vm-runas 2000 2000 stat -c %s "$MA/shared/late" 2>&1)" = 11 ] || fail "a size the server just changed is stale"
rm /srv/export/shared/late
vm-runas 2000 2000 stat "$MA/shared/late" >/dev/null 2>&1 && fail "a name the server just removed is still there"
# ... yet a stat's LOOKUP and GETATTR share one answer (a clock tick): one
# GETATTR call per stat more than through a plain binding, not two (as when
# every answer is trusted for no time at all).
ok Create '{"Name":"p","Opts":{"source":"nfs://127.0.0.1/srv/export","version":"3"}}' >/dev/null
MP=$(mountpoint_of "$(ok Mount '{"Name":"p"}')")
echo s >/srv/export/shared/s && chown 1234:1234 /srv/export/shared/s
getattrs() { awk '$1 == "proc3" { print $4 }' /proc/net/rpc/nfs; }
stats() {
	local g
	vm-runas 2000 2000 stat "$1" >/dev/null
	g=$(getattrs)
	vm-runas 2000 2000 sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do stat $1 >/dev/null; sleep 0.02; done"
	echo $(($(getattrs) - g))
}
plain=$(stats "$MP/shared/s")
mapped=$(stats "$MA/shared/s")
[ "$mapped" -le $((plain + 15)) ] || fail "10 stats made $mapped GETATTR calls through the binding, $plain through a plain one"
ok Unmount '{"Name":"p"}' >/dev/null
rm /srv/export/shared/s
# A file unlinked while open stays readable through the open descriptor.
out=$(vm-runas 2000 2000 sh -c "echo held >$MA/shared/h && exec 3<$MA/shared/h && rm $MA/shared/h && cat <&3" 2>&1)
[ "$out" = held ] || fail "a file unlinked while open: $out"

nfs_wait_grace
: >/srv/export/shared/lk && chmod 666 /srv/export/shared/lk
for kind in flock fcntl; do
	bg "holder-$kind" vm-runas 2000 2000 vm-lock "$kind" "$MA/shared/lk" 60
	H=$BG_PID
	wait_for 30 grep -q locked "$VM_SCRATCH/holder-$kind.log" || fail "$kind: first lock not granted: $(cat "$VM_SCRATCH/holder-$kind.log")"
	out=$(timeout -s KILL 30 vm-runas 2000 2000 vm-lock "$kind" "$MB/shared/lk" 2>&1)
	[ $? = 1 ] || fail "$kind: the same lock through the other binding: $out (expected busy)"
	kill "$H"
	wait "$H" 2>/dev/null
done
ok Unmount '{"Name":"a"}' >/dev/null
ok Unmount '{"Name":"b"}' >/dev/null
wait_for 10 no_driver_mounts ||
	fail "leaked: $(driver_mounts_left)"
exit 0
