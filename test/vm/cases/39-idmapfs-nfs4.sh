# idmapfs over the negotiated version (no version in the binding: NFSv4.2
# against this server, what most bindings get): the identity holds as over
# NFSv3 (case 30). What the app writes through a uid 1234 binding is owned
# 1234:1234 on the server, a file the server gives 1234 looks owned by the
# app (2000), the uid 5000 binding cannot delete 1234's file in a sticky
# directory, another uid on the host gets nothing, and a lock through one
# binding blocks the same lock through the other (NFSv4's own locking, no
# statd). NFSv4 carries owners as strings: this holds with numeric ones
# (sec=sys, Linux nfsd's default); see README, "version".
. /vm/lib.sh
driver_start
mkdir -p /srv/export/shared4 && chmod 1777 /srv/export/shared4
for b in "a 1234" "b 5000"; do
	set -- $b
	ok Create "{\"Name\":\"$1\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\",\"uid\":\"$2\",\"gid\":\"$2\"}}" >/dev/null
done
MA=$(mountpoint_of "$(ok Mount '{"Name":"a"}')")
MB=$(mountpoint_of "$(ok Mount '{"Name":"b"}')")
kopts=$(driver_mount_list .kernel | cut -d' ' -f3,4)
note "kernel mount: $kopts"
case $kopts in "nfs4 "*vers=4.2*) ;; *) fail "the kernel mount is not the negotiated NFSv4.2: $kopts" ;; esac
nfs_wait_grace
out=$(vm-runas 2000 2000 sh -c "echo one >$MA/shared4/f1 && chmod 0644 $MA/shared4/f1 && stat -c %u:%g $MA/shared4/f1" 2>&1) ||
	fail "write through the 1234 binding: $out"
[ "$out" = 2000:2000 ] || fail "the app sees its file owned by $out"
[ "$(stat -c %u:%g /srv/export/shared4/f1)" = 1234:1234 ] || fail "on the server: $(stat -c %u:%g /srv/export/shared4/f1)"
echo srv >/srv/export/shared4/srvfile && chown 1234:1234 /srv/export/shared4/srvfile
[ "$(vm-runas 2000 2000 stat -c %u "$MA/shared4/srvfile")" = 2000 ] || fail "server's 1234 file not shown as 2000"
[ "$(vm-runas 2000 2000 cat "$MB/shared4/f1")" = one ] || fail "uid 5000 binding cannot read the 0644 file"
vm-runas 2000 2000 rm -f "$MB/shared4/f1" 2>/dev/null && fail "uid 5000 binding deleted uid 1234's file in a sticky dir"
[ -e /srv/export/shared4/f1 ] || fail "the file is gone"
vm-runas 3000 3000 ls "$MA/shared4" >/dev/null 2>&1 && fail "uid 3000 could list through the binding"
: >/srv/export/shared4/lk && chmod 666 /srv/export/shared4/lk
for kind in flock fcntl; do
	bg "holder-$kind" vm-runas 2000 2000 vm-lock "$kind" "$MA/shared4/lk" 60
	H=$BG_PID
	wait_for 30 grep -q locked "$VM_SCRATCH/holder-$kind.log" || fail "$kind: first lock not granted: $(cat "$VM_SCRATCH/holder-$kind.log")"
	out=$(timeout -s KILL 30 vm-runas 2000 2000 vm-lock "$kind" "$MB/shared4/lk" 2>&1)
	[ $? = 1 ] || fail "$kind: the same lock through the other binding: $out (expected busy)"
	kill "$H"
	wait "$H" 2>/dev/null
done
rm -rf /srv/export/shared4
ok Unmount '{"Name":"a"}' >/dev/null
ok Unmount '{"Name":"b"}' >/dev/null
wait_for 10 no_driver_mounts || fail "leaked: $(driver_mounts_left)"
exit 0
