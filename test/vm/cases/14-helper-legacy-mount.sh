# The helpers' mount(2) fallbacks, for kernels without the new mount API:
# under vm-oldkernel (fsopen, open_tree, move_mount, mount_setattr... fail
# with ENOSYS) nfsv3driver-mount still mounts NFS with nosuid,nodev and the
# options it was given, reports the server's refusal, binds, and unmounts.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"
ROOT=$VM_SCRATCH/root KEY=5555555555555555
TARGET=$ROOT/.kernel/$KEY
OPTS="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=3,proto=tcp,sec=sys"
mkdir -p "$ROOT"
vm-oldkernel grep -q '^Seccomp:[[:space:]]*2' /proc/self/status || fail "vm-oldkernel installs no seccomp filter"

run "legacy nfs mount" vm-oldkernel "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,noexec"
opts=$(mount_opts "$TARGET")
note "options: $opts"
for o in nosuid nodev noexec vers=3 hard timeo=600 retrans=2 sec=sys addr=127.0.0.1; do
	case ",$opts," in *",$o,"*) ;; *) fail "legacy mount: /proc/mounts lacks $o: $opts" ;; esac
done
echo legacy >"$TARGET/legacy.txt" && [ "$(cat /srv/export/legacy.txt)" = legacy ] || fail "legacy mount: write failed"
rm -f "$TARGET/legacy.txt"

# The bind verb's fallback, read-only, from the kernel mount.
run "legacy bind" vm-oldkernel "$MOUNT_HELPER" bind "$ROOT" "$TARGET" vol ro
bopts=$(mount_opts "$ROOT/vol")
case ",$bopts," in *,ro,*nosuid,*nodev,*) ;; *) fail "legacy bind: not ro,nosuid,nodev: $bopts" ;; esac
(echo x >"$ROOT/vol/x") 2>/dev/null && fail "legacy ro bind: write succeeded"
run "unmount bind" vm-oldkernel "$MOUNT_HELPER" unmount "$ROOT" vol lazy
run "unmount nfs" vm-oldkernel "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
is_mounted "$TARGET" && fail "still mounted"

expect_fail "legacy denied" vm-oldkernel "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/denied 127.0.0.1 "$OPTS"
note "denied: exit $RC: $ERR"
[ "$RC" = 6 ] || fail "legacy denied: exit $RC, expected 6: $ERR"
case $ERR in *"access denied"*) ;; *) fail "legacy denied: $ERR" ;; esac
[ -e "$TARGET" ] && fail "a failed legacy mount left $TARGET"
exit 0
