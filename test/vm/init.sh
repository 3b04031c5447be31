#!/bin/sh
# The NFS test VM's /init (busybox sh). Brings up a kernel NFS server on the
# guest's own 127.0.0.1, runs every /cases/*.sh in name order, prints
#   vm-case NAME: pass|fail <why>
# per case and "vm-verdict pass=N fail=N" at the end, and powers off. A
# watchdog powers off first if anything hangs.
export PATH=/vm/bin:/build/bin:/build/libexec/nfsv3driver:/usr/sbin:/usr/bin
export HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
exec </dev/null >/dev/console 2>&1

# Written by boot.sh.
VM_WATCHDOG=150 VM_CASE_TIMEOUT=60
[ -r /etc/vm.conf ] && . /etc/vm.conf

uptime_s() { cut -d' ' -f1 /proc/uptime; }
log() { echo "vm-init [$(uptime_s)]: $*"; }
die() {
	log "FATAL: $*"
	echo "vm-verdict pass=0 fail=1 fatal"
	sync
	poweroff -f
	sleep 10
}

(
	sleep "$VM_WATCHDOG"
	echo "vm-init: WATCHDOG: no verdict after $VM_WATCHDOG s, powering off"
	cur=$(cat /run/vm-current 2>/dev/null) && [ -r "$cur/.out" ] &&
		{ echo "vm-init: output of the running case:"; sed 's/^/  | /' "$cur/.out"; }
	echo "vm-verdict pass=0 fail=1 watchdog"
	poweroff -f
) &

log "init started (kernel $(uname -r))"

while read -r m; do
	args=
	# lockd's grace period (default 50 s) would stall the first lock
	# requests: the minimum is one nlm_timeout (3 s).
	case $m in lockd.ko) args="nlm_timeout=3 nlm_grace_period=3" ;; esac
	# shellcheck disable=SC2086
	insmod "/modules/$m" $args || die "insmod $m failed"
done </modules/order
log "modules loaded"

ip link set lo up || die "cannot bring up lo"
hostname nfsvm

# The server: two fresh tmpfs exports. /srv/export is open to 127.0.0.1 and ::1;
# /srv/denied is exported only to 127.0.0.2, so mounting it from 127.0.0.1
# is refused by mountd ("access denied by server").
mkdir -p /srv/export /srv/denied /proc/fs/nfsd /run/rpcbind /var/lib/nfs/rpc_pipefs
mount -t tmpfs -o mode=0777 export /srv/export || die "tmpfs /srv/export"
mount -t tmpfs -o mode=0777 denied /srv/denied || die "tmpfs /srv/denied"
mount -t nfsd nfsd /proc/fs/nfsd || die "cannot mount the nfsd filesystem"
chown _rpc /run/rpcbind
chown statd /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs
cat >/etc/exports <<'EOF'
/srv/export 127.0.0.1(rw,no_root_squash,insecure,no_subtree_check,fsid=1) ::1(rw,no_root_squash,insecure,no_subtree_check,fsid=1)
/srv/denied 127.0.0.2(rw,no_root_squash,insecure,no_subtree_check,fsid=2)
EOF

# nfs_server_start (and the cases' other helpers).
. /vm/lib.sh
rpcbind -w || die "rpcbind failed"
nfs_server_start || die "the NFS server did not start"
rpc.statd --no-notify || die "rpc.statd failed"
log "NFS server up: $(rpcinfo -p 127.0.0.1 | awk 'NR>1{print $5}' | sort -u | tr '\n' ' ')"

# Cases. Each runs in its own scratch directory with NFSV3_BUILD=/build; the
# runner restarts the NFS server when a case left it stopped.
pass=0 fail=0
for c in /cases/*.sh; do
	[ -e "$c" ] || continue
	name=$(basename "$c" .sh)
	[ "$(cat /proc/fs/nfsd/threads 2>/dev/null)" != 0 ] || nfs_server_start ||
		log "could not restart the NFS server"
	export VM_CASE=$name VM_SCRATCH=/tmp/case-$name NFSV3_BUILD=/build
	mkdir -p "$VM_SCRATCH"
	start=$(uptime_s)
	log "case $name"
	echo "$VM_SCRATCH" >/run/vm-current
	(cd "$VM_SCRATCH" && exec timeout -s KILL "$VM_CASE_TIMEOUT" sh "$c" >"$VM_SCRATCH/.out" 2>&1)
	echo $? >"$VM_SCRATCH/.rc"
	sed 's/^/  | /' "$VM_SCRATCH/.out"
	# Whatever the case left running in the background (lib.sh's bg).
	[ -r "$VM_SCRATCH/.pids" ] && kill -9 $(cat "$VM_SCRATCH/.pids") 2>/dev/null
	rc=$(cat "$VM_SCRATCH/.rc" 2>/dev/null || echo 255)
	took=$(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN{printf "%.1f", b-a}')
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
		echo "vm-case $name: pass (${took} s)"
	else
		fail=$((fail + 1))
		why=$(grep -v '^$' "$VM_SCRATCH/.out" | tail -n1)
		if [ "$rc" -ge 124 ] && [ "${took%.*}" -ge "$((VM_CASE_TIMEOUT - 1))" ]; then
			why="timed out after $VM_CASE_TIMEOUT s; last output: $why"
		fi
		echo "vm-case $name: fail exit $rc (${took} s): $why"
	fi
done
[ $((pass + fail)) -gt 0 ] || log "no cases in /cases"
log "done"
echo "vm-verdict pass=$pass fail=$fail"
sync
poweroff -f
