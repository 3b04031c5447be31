# The test bed itself: the guest's NFS server answers, and a plain kernel NFS
# mount (mount.nfs from Debian, not the project's helper) reads and writes.
. /vm/lib.sh
for p in portmapper nfs mountd status nlockmgr; do
	rpcinfo -p 127.0.0.1 | grep -qw "$p" || fail "rpcbind does not list $p"
done
showmount -e 127.0.0.1 2>/dev/null | grep -q /srv/export ||
	exportfs -v | grep -q /srv/export || fail "/srv/export is not exported"
mkdir -p /mnt/smoke
run "mount.nfs" mount.nfs 127.0.0.1:/srv/export /mnt/smoke -o vers=3,proto=tcp,sec=sys
echo hello >/mnt/smoke/smoke.txt || fail "write through NFS failed"
[ "$(cat /srv/export/smoke.txt)" = hello ] || fail "file not on the server's export"
rm /mnt/smoke/smoke.txt
umount /mnt/smoke || fail "umount failed"
