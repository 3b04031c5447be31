# nfsv3driver-mount's nfs verb with no version in its options negotiates as
# mount.nfs does for upstream's driver: the newest the server offers (4.2),
# one minor down when the server lacks it (4.1), v3 when the server has no
# NFSv4 at all; vers=4 is any 4.x, newest first; a pinned version is tried
# alone. A refusal after negotiating names the versions tried.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"
ROOT=$VM_SCRATCH/root KEY=5555555555555555
TARGET=$ROOT/.kernel/$KEY
BASE="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,proto=tcp,sec=sys"
mkdir -p "$ROOT"

# server_versions ARGS: restart nfsd with rpc.nfsd's -N/-V switches.
server_versions() {
	nfs_server_stop
	rpc.nfsd "$@" 4 || fail "rpc.nfsd $*"
	now >/run/vm-nfs-started
	note "server offers: $(cat /proc/fs/nfsd/versions)"
}
# mounts OPTIONS TYPE VERS: the helper mounts with OPTIONS and the kernel shows TYPE with vers=VERS.
mounts() {
	run "mount $1" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$1"
	line=$(awk -v p="$TARGET" '$2 == p' /proc/mounts)
	case $line in "127.0.0.1:/srv/export $TARGET $2 "*) ;; *) fail "$1: expected an $2 mount: $line" ;; esac
	case ",$(mount_opts "$TARGET")," in
	*",vers=$3,"*) ;;
	*) fail "$1: /proc/mounts shows $(mount_opts "$TARGET"), expected vers=$3" ;;
	esac
	echo "$3" >"$TARGET/negotiated" || fail "$1: cannot write over vers=$3"
	run "unmount" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
	is_mounted "$TARGET" && fail "$1: still mounted"
	note "$1 -> $2 vers=$3"
}

nfs_wait_grace
# 1: the server offers everything: 4.2, with no version or with vers=4.
mounts "$BASE" nfs4 4.2
mounts "$BASE,vers=4" nfs4 4.2
mounts "$BASE,nfsvers=4" nfs4 4.2
# A pinned version is that version.
mounts "$BASE,vers=3" nfs 3
mounts "$BASE,vers=4.1" nfs4 4.1

# 2: a server without 4.2 (the minor version mismatch): 4.1.
server_versions -N 4.2
mounts "$BASE" nfs4 4.1
mounts "$BASE,vers=4" nfs4 4.1
expect_fail "vers=4.2 pinned on a server without 4.2" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$BASE,vers=4.2"
note "pinned 4.2: $ERR"
case $ERR in *"versions tried"*) fail "a pinned version was negotiated: $ERR" ;; esac

# 3: a server with no NFSv4 at all: v3 (through rpcbind and mountd).
server_versions -N 4 -N 4.0 -N 4.1 -N 4.2
mounts "$BASE" nfs 3
expect_fail "vers=4 on a v3-only server" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$BASE,vers=4"
note "vers=4 on v3 only: $ERR"
case $ERR in *"4.2, 4.1, 4.0"*) ;; *) fail "vers=4 on a v3-only server: $ERR (expected the 4.x versions tried)" ;; esac
is_mounted "$TARGET" && fail "a failed negotiation left a mount"

# 4: back to everything. An export this client may not mount: v4 is refused,
# then v3, whose mountd answer is the one reported, with the versions tried.
server_versions -V 3 -V 4 -V 4.1 -V 4.2
expect_fail "the denied export" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/denied 127.0.0.1 "$BASE"
note "denied: $ERR (exit $RC)"
case $ERR in *"versions tried: 4.2"*", 3)"*) ;; *) fail "denied export: $ERR (expected the versions tried, ending with 3)" ;; esac
[ "$RC" = 6 ] || fail "denied export: exit $RC, expected 6 (the server refused)"
is_mounted "$TARGET" && fail "a refused negotiation left a mount"
mounts "$BASE" nfs4 4.2
exit 0
