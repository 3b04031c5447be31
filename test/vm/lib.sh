# Helpers for the VM's case scripts (busybox sh). A case starts with
#   . /vm/lib.sh
# and runs in its own scratch directory ($VM_SCRATCH) with the project's build
# at $NFSV3_BUILD (/build: bin/nfsv3driver, libexec/nfsv3driver/*), also on
# PATH. Exit 0 is a pass; anything else a fail whose reason is the last line
# printed (fail "why" prints it and exits 1).
#
# The guest's NFS server (NFSv3 and v4.0-4.2): exports 127.0.0.1:/srv/export
# (fresh tmpfs, fsid=1, rw,no_root_squash) and 127.0.0.1:/srv/denied (only for
# 127.0.0.2: mounting it from here is refused). rpcbind, rpc.mountd and
# rpc.statd run; no network device exists besides lo. Tools on PATH:
# vm-lock (flock/fcntl lock without waiting), vm-runas UID GID CMD,
# vm-oldkernel CMD (the new mount API fails with ENOSYS), vm-mmap (a shared
# mapping's write or read), vm-io (a copy in paced steps).

MOUNT_HELPER=$NFSV3_BUILD/libexec/nfsv3driver/nfsv3driver-mount
DRIVER=$NFSV3_BUILD/bin/nfsv3driver
NFS_EXPORT=/srv/export
NFS_DENIED=/srv/denied

fail() { echo "$*"; exit 1; }
note() { echo "# $*"; }

# Seconds since boot, with centiseconds; and milliseconds.
now() { cut -d' ' -f1 /proc/uptime; }
now_ms() { awk '{printf "%d", $1 * 1000}' /proc/uptime; }

# bg NAME CMD...: run CMD in the background, output in $VM_SCRATCH/NAME.log;
# its pid is in $BG_PID and it is killed when the case ends.
bg() {
	_n=$1; shift
	"$@" >"$VM_SCRATCH/$_n.log" 2>&1 &
	BG_PID=$!
	echo "$BG_PID" >>"$VM_SCRATCH/.pids"
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds (0) or the
# time is up (1).
wait_for() {
	_end=$(($(now_ms) + $1 * 1000)); shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$_end" ] || return 1
		sleep 0.1
	done
}

# expect_fail DESCRIPTION CMD...: CMD must fail; its stderr is in $ERR, exit in $RC.
expect_fail() {
	_d=$1; shift
	ERR=$("$@" 2>&1 >/dev/null) && fail "$_d: succeeded, expected a failure"
	RC=$?
	return 0
}

# run DESCRIPTION CMD...: CMD must succeed; stderr shown on failure.
run() {
	_d=$1; shift
	ERR=$("$@" 2>&1) || fail "$_d: exit $?: $ERR"
}

# is_mounted PATH: PATH is a mount point in /proc/mounts.
is_mounted() { awk -v p="$1" '$2 == p {f=1} END {exit !f}' /proc/mounts; }
mount_opts() { awk -v p="$1" '$2 == p {o=$4} END {print o}' /proc/mounts; }

# The NFS server: stop it (nfsd threads to 0; rpcbind and mountd stay) and
# start it again. The runner restarts it after a case that left it stopped.
nfs_server_stop() { rpc.nfsd 0; }
# init.sh starts it the same way at boot.
nfs_server_start() {
	exportfs -ra || return 1
	# NFSv3 and v4.0-4.2. Grace periods: a fresh server has no state to be
	# reclaimed, but lockd refuses new locks (and nfsd NFSv4 opens) while
	# nfsd's grace period runs (measured: 10 s after
	# rpc.nfsd, with the least grace time nfsd takes, set here; rpc.nfsd -G
	# would also stretch lockd's own to 12 s). nfs_wait_grace waits out what
	# is left of it.
	echo 10 >/proc/fs/nfsd/nfsv4gracetime
	echo 10 >/proc/fs/nfsd/nfsv4leasetime
	rpc.nfsd 4 || return 1
	now >/run/vm-nfs-started
	pidof rpc.mountd >/dev/null || rpc.mountd
}

# For a grace period after nfsd starts (10 s, see nfs_server_start) lockd refuses new
# locks and nfsd refuses NFSv4 opens, and a client refused for grace retries
# only every 5 s. A case that takes locks or opens files over NFSv4 calls this
# first: it sleeps until the grace period since the last server start is over.
nfs_wait_grace() {
	_left=$(awk -v s="$(cat /run/vm-nfs-started 2>/dev/null || echo 0)" -v n="$(now)" \
		'BEGIN {l = s + 11 - n; printf "%.1f", (l > 0 ? l : 0)}')
	[ "$_left" = 0.0 ] || { note "waiting ${_left} s for the server's grace period"; sleep "$_left"; }
}

# ---- nfsv3driver itself, driven through its protocol (the driver cases) ----
DRIVER_ROOT=$VM_SCRATCH/mounts
DRIVER_SOCK=$VM_SCRATCH/driver.sock

# driver_start [ARGS...]: start the daemon (log: $VM_SCRATCH/driver.log) and
# wait until it serves. HELPER_TIMEOUT sets --helper-timeout (default 10).
driver_start() {
	mkdir -p "$DRIVER_ROOT"
	_starts=$(grep -c driver-server.started "$VM_SCRATCH/driver.log" 2>/dev/null)
	"$DRIVER" --listen "unix:$DRIVER_SOCK" --admin tcp://127.0.0.1:7590 --mount-root "$DRIVER_ROOT" \
		--helper-timeout "${HELPER_TIMEOUT:-10}" "$@" >>"$VM_SCRATCH/driver.log" 2>&1 &
	DRIVER_PID=$!
	echo "$DRIVER_PID" >>"$VM_SCRATCH/.pids"
	wait_for 15 sh -c "[ \$(grep -c driver-server.started '$VM_SCRATCH/driver.log') -gt ${_starts:-0} ]" ||
		fail "the driver did not start: $(tail -3 "$VM_SCRATCH/driver.log")"
}

# call ROUTE BODY: POST /VolumeDriver.ROUTE (or /Plugin.Activate), print the answer.
call() {
	case $1 in
	Activate) _r=/Plugin.Activate ;;
	*) _r=/VolumeDriver.$1 ;;
	esac
	curl -sS --max-time 60 --unix-socket "$DRIVER_SOCK" -X POST -d "$2" "http://driver$_r"
}

# ok ROUTE BODY: the call must succeed (Err empty); prints the answer.
ok() {
	_a=$(call "$1" "$2") || fail "$1 $2: no answer"
	case $_a in
	*'"Err":""'*) echo "$_a" ;;
	*) fail "$1 $2: $_a" ;;
	esac
}

# mountpoint_of ANSWER
mountpoint_of() { echo "$1" | sed -n 's/.*"Mountpoint":"\([^"]*\)".*/\1/p'; }

# driver_mount_list [.kernel]: the /proc/mounts lines of the mounts under the
# driver's mount root (kernel mounts included), or under its .kernel only.
driver_mount_list() { awk -v r="$DRIVER_ROOT/${1:+$1/}" 'index($2, r) == 1' /proc/mounts; }
driver_mounts() { driver_mount_list | wc -l; }
kernel_mounts() { driver_mount_list .kernel | wc -l; }
# For wait_for: nothing is mounted under the mount root; PATH is not mounted.
no_driver_mounts() { [ -z "$(driver_mount_list)" ]; }
not_mounted() { ! is_mounted "$1"; }
# The mountpoints still under the mount root, on one line (for a failure).
driver_mounts_left() { driver_mount_list | cut -d' ' -f2 | tr '\n' ' '; }

# ping_ms: how long GET /ping on the admin port takes, in ms.
ping_ms() { curl -s -o /dev/null --max-time 10 -w '%{time_total}' http://127.0.0.1:7590/ping | awk '{printf "%d", $1 * 1000}'; }
