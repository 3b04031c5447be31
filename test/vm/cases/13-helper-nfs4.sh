# nfsv3driver-mount's nfs verb with NFSv4 (the binding's version option):
# vers=4 (the newest 4.x), 4.0, 4.1 and 4.2 mount as nfs4 with the version the kernel shows,
# read and write, and unmount. NFSv4 opens wait for nfsd's grace period.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"
ROOT=$VM_SCRATCH/root KEY=4444444444444444
TARGET=$ROOT/.kernel/$KEY
mkdir -p "$ROOT"
nfs_wait_grace
for v in 4 4.0 4.1 4.2; do
	OPTS="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=$v,proto=tcp,sec=sys"
	t0=$(now_ms)
	run "mount vers=$v" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
	note "vers=$v: mount took $(($(now_ms) - t0)) ms"
	line=$(awk -v p="$TARGET" '$2 == p' /proc/mounts)
	case $line in "127.0.0.1:/srv/export $TARGET nfs4 "*) ;; *) fail "vers=$v: not an nfs4 mount: $line" ;; esac
	want=$v
	# The kernel alone takes "vers=4" as 4.0; the helper negotiates the
	# newest 4.x, as mount.nfs does (case 15 has the rest of negotiation).
	[ "$v" = 4 ] && want=4.2
	case ",$(mount_opts "$TARGET")," in
	*",vers=$want,"*) ;;
	*) fail "vers=$v: /proc/mounts shows $(mount_opts "$TARGET"), expected vers=$want" ;;
	esac
	case ",$(mount_opts "$TARGET")," in *,nosuid,*nodev,*) ;; *) fail "vers=$v: no nosuid,nodev" ;; esac
	echo "v$v" >"$TARGET/file-$v" || fail "vers=$v: cannot write"
	[ "$(cat "/srv/export/file-$v")" = "v$v" ] || fail "vers=$v: the file is not on the server"
	rm -f "$TARGET/file-$v"
	run "unmount vers=$v" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
	is_mounted "$TARGET" && fail "vers=$v: still mounted"
done
exit 0
