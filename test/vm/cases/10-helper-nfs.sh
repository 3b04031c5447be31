# nfsv3driver-mount's nfs verb against the guest's kernel NFS server, run
# directly (no daemon): a mount with the driver's default options reads and
# writes and shows its options in /proc/mounts; unmount through the unmount
# verb; the server's refusals come back in the kernel's words with exit 6;
# the helper's own refusals exit 3 before anything is mounted.
. /vm/lib.sh
[ -x "$MOUNT_HELPER" ] || fail "no $MOUNT_HELPER in the guest"

ROOT=$VM_SCRATCH/root
KEY=0123456789abcdef
TARGET=$ROOT/.kernel/$KEY
OPTS="rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=3,proto=tcp,sec=sys"
mkdir -p "$ROOT"

# helper_fails CODE TEXT ARGS...: the helper exits CODE with TEXT in its one stderr line.
helper_fails() {
	_code=$1 _text=$2; shift 2
	_start=$(now_ms)
	expect_fail "nfsv3driver-mount $*" "$MOUNT_HELPER" "$@"
	TOOK=$(($(now_ms) - _start))
	[ "$RC" = "$_code" ] || fail "nfsv3driver-mount $*: exit $RC, expected $_code: $ERR"
	case $ERR in *"$_text"*) ;; *) fail "nfsv3driver-mount $*: \"$ERR\" does not say \"$_text\"" ;; esac
	[ "$(echo "$ERR" | wc -l)" = 1 ] || fail "nfsv3driver-mount $*: more than one line: $ERR"
	note "exit $RC in $TOOK ms: $ERR"
}

# 1. Mount, write, read, options, unmount. (rsize/wsize are negotiated down to
# what the server offers: 131072 in a 1 GiB guest.)
t0=$(now_ms)
run "mount" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
note "mount took $(($(now_ms) - t0)) ms"
is_mounted "$TARGET" || fail "$TARGET is not in /proc/mounts after the mount"
[ "$(stat -c %a "$ROOT/.kernel")" = 700 ] || fail ".kernel is mode $(stat -c %a "$ROOT/.kernel"), not 700"
opts=$(mount_opts "$TARGET")
note "options: $opts"
for o in nosuid nodev vers=3 hard proto=tcp timeo=600 retrans=2 sec=sys addr=127.0.0.1 \
	acregmin=0 acregmax=0; do
	case ",$opts," in *",$o,"*) ;; *) fail "/proc/mounts lacks $o: $opts" ;; esac
done
awk -v p="$TARGET" '$2 == p {print $1, $3}' /proc/mounts | grep -qx "127.0.0.1:/srv/export nfs" ||
	fail "wrong source or type: $(grep "$TARGET" /proc/mounts)"
echo "written through NFS" >"$TARGET/hello.txt" || fail "cannot write through the mount"
[ "$(cat /srv/export/hello.txt)" = "written through NFS" ] || fail "the file is not on the server's export"
echo "from the server" >/srv/export/back.txt
[ "$(cat "$TARGET/back.txt")" = "from the server" ] || fail "cannot read the server's file through the mount"
rm -f "$TARGET/hello.txt" "$TARGET/back.txt"

# A second mount on the same key is refused; the first stays.
helper_fails 3 "already mounted" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
is_mounted "$TARGET" || fail "the refused second mount took the first one away"

t0=$(now_ms)
run "unmount" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
note "unmount took $(($(now_ms) - t0)) ms"
is_mounted "$TARGET" && fail "$TARGET still mounted after unmount"
[ -e "$TARGET" ] && fail "$TARGET still exists after unmount"

# IPv6: a bracketed source and a v6 ADDR. proto=tcp with a v6 address is
# refused by the kernel: the caller must say proto=tcp6.
helper_fails 5 "does not match proto" nfs "$ROOT" "$KEY" "[::1]:/srv/export" ::1 "$OPTS"
run "mount [::1]" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" "[::1]:/srv/export" ::1 \
	"rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,vers=3,proto=tcp6,sec=sys"
opts=$(mount_opts "$TARGET")
note "IPv6 options: $opts"
case ",$opts," in *,proto=tcp6,*addr=::1,*) ;; *) fail "IPv6 mount: no proto=tcp6, addr=::1 in $opts" ;; esac
echo v6 >"$TARGET/v6.txt" && [ "$(cat /srv/export/v6.txt)" = v6 ] || fail "IPv6 mount: write failed"
rm -f "$TARGET/v6.txt"
run "unmount [::1]" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy

# nolock and a few other allowed options reach the kernel in their form.
run "mount nolock" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 \
	"vers=3,proto=tcp,sec=sys,nolock,soft,timeo=50,retrans=3,noac,lookupcache=none,noexec"
opts=$(mount_opts "$TARGET")
note "options: $opts"
for o in nolock soft timeo=50 retrans=3 lookupcache=none noexec nosuid nodev; do
	case ",$opts," in *",$o,"*) ;; *) fail "/proc/mounts lacks $o: $opts" ;; esac
done
run "unmount" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy

# 2. The server says no.
helper_fails 6 "access denied" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/denied 127.0.0.1 "$OPTS"
# mountd answers "access denied" for a path it does not export at all, and
# "no such file" for a missing directory inside an export.
helper_fails 6 "access denied" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/nope 127.0.0.1 "$OPTS"
helper_fails 6 "" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export/nope 127.0.0.1 "$OPTS"
[ -e "$TARGET" ] && fail "a failed mount left $TARGET behind"
# Nothing listens on this port: the connection is refused.
helper_fails 6 "" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,port=9,mountport=9,timeo=10,retrans=1"

# The kernel refuses (exit 5), in its own words.
helper_fails 5 "out of range" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,nconnect=99"
helper_fails 5 "minorversion" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,minorversion=1"
helper_fails 5 "udp" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,proto=udp"
[ -e "$TARGET" ] && fail "a refused mount left $TARGET behind"

# 3. The helper's own refusals (exit 3), nothing mounted.
helper_fails 3 "sec=krb5" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS,sec=krb5"
helper_fails 3 "suid" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "vers=3,suid"
helper_fails 3 "dev" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "vers=3,dev"
helper_fails 3 "exec" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "vers=3,exec"
helper_fails 3 "addr" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "vers=3,addr=10.1.2.3"
helper_fails 3 "mountaddr" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "mountaddr=127.0.0.1"
helper_fails 3 "sloppy" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "sloppy"
helper_fails 3 "takes no value" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "hard=1"
helper_fails 3 "must be a number" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "timeo=1x"
helper_fails 3 "address" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export localhost "$OPTS"
helper_fails 3 "address" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export "[::1]" "$OPTS"
helper_fails 3 "kernel key" nfs "$ROOT" ../../etc 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
helper_fails 3 "kernel key" nfs "$ROOT" ABCDEF0123456789 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
# A comma in the export path is part of the path, never an option: the
# server is asked for the literal path (and has no such export).
helper_fails 6 "/srv/export,addr=1.2.3.4: access denied by server" nfs "$ROOT" "$KEY" "127.0.0.1:/srv/export,addr=1.2.3.4" 127.0.0.1 "$OPTS"
helper_fails 3 "source" nfs "$ROOT" "$KEY" "127.0.0.1:srv" 127.0.0.1 "$OPTS"
helper_fails 3 "source" nfs "$ROOT" "$KEY" "127.0.0.1:/srv/../etc" 127.0.0.1 "$OPTS"
# A .kernel that is a symlink out of the mount root.
ROOT2=$VM_SCRATCH/root2
mkdir -p "$ROOT2" "$VM_SCRATCH/elsewhere"
ln -s "$VM_SCRATCH/elsewhere" "$ROOT2/.kernel"
helper_fails 3 "symlink" nfs "$ROOT2" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
[ -z "$(ls "$VM_SCRATCH/elsewhere")" ] || fail "the helper created something through the symlink"
# A key directory that is a symlink.
mkdir -p "$ROOT/.kernel"
ln -s "$VM_SCRATCH/elsewhere" "$ROOT/.kernel/fedcba9876543210"
helper_fails 3 "symlink" nfs "$ROOT" fedcba9876543210 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
grep -q "$VM_SCRATCH/elsewhere" /proc/mounts && fail "mounted through a symlink"

# 4. A stopped server (nfsd threads 0; rpcbind and mountd still up), with a
# short timeo (1 s) and one retransmission: the mount fails by itself.
nfs_server_stop
helper_fails 6 "" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 \
	"vers=3,proto=tcp,sec=sys,hard,timeo=10,retrans=1"
[ "$TOOK" -lt 30000 ] || fail "the mount on a stopped server took $TOOK ms"
nfs_server_start || fail "cannot restart the NFS server"
is_mounted "$TARGET" && fail "a failed mount is mounted"

# 5. A hung server: mountd stopped (SIGSTOP), so the MOUNT call gets no
# answer. Recorded, not judged, except that it must not mount: the daemon's
# deadline is what bounds this in production.
kill -STOP $(pidof rpc.mountd)
t0=$(now_ms)
ERR=$(timeout -s KILL 40 "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 \
	"vers=3,proto=tcp,sec=sys,hard,timeo=10,retrans=1" 2>&1)
RC=$?
note "hung mountd: exit $RC after $(($(now_ms) - t0)) ms: $ERR"
[ "$RC" = 0 ] && fail "mounted although mountd is stopped"
# With the default timeo=600 the kernel would wait minutes: the daemon's
# deadline kills the helper (SIGKILL), which must end it at once and leave
# nothing mounted; the next mount on the same key then works.
t0=$(now_ms)
timeout -s KILL 3 "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS" 2>/dev/null
RC=$?
took=$(($(now_ms) - t0))
note "hung mountd, default options, killed after 3 s: exit $RC after $took ms"
[ "$RC" = 0 ] && fail "mounted although mountd is stopped"
[ "$took" -lt 6000 ] || fail "the helper took $took ms to die from SIGKILL"
is_mounted "$TARGET" && fail "a killed mount is mounted"
kill -CONT $(pidof rpc.mountd)
run "mount after a killed mount" "$MOUNT_HELPER" nfs "$ROOT" "$KEY" 127.0.0.1:/srv/export 127.0.0.1 "$OPTS"
run "unmount after the hung mounts" "$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" lazy
[ -e "$TARGET" ] && fail "$TARGET left behind"
exit 0
