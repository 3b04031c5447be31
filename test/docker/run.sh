#!/bin/bash
# The "docker" stage of `make test`: the real Docker engine (Debian's docker.io)
# as a client of our driver, over the legacy plugin socket.
#
# It starts a private dockerd (its own data-root, exec-root, socket, pidfile and
# config under a temp dir; no iptables, no bridge), imports a busybox image made
# from busybox-static, starts our daemon under a unique plugin name with local
# sources allowed, and runs each case, printing "docker-case NAME: pass|fail why".
# The last line is "docker: N passed, N failed". Exit 0 when all pass, 1 when any
# fails, 77 only when this machine cannot run dockerd at all (with the reason).
#
# Everything it starts (containers, dockerd and its containerd, our daemon) is
# stopped by pid on exit, its mounts are detached and its temp dir removed.
# NFSV3_DOCKER_KEEP=1 keeps the temp dir (logs) for a post-mortem;
# NFSV3_DOCKER_STORAGE=vfs|overlay2 overrides the storage driver's detection.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}
driver_bin=$build/bin/nfsv3driver
docker_bin=/usr/bin/docker
dockerd_bin=/usr/sbin/dockerd
image=local/busybox
plugin=nfsv3test$$
plugin_dir=/run/docker/plugins
plugin_sock=$plugin_dir/$plugin.sock
stage_start=$SECONDS

passed=0 failed=0 signalled=
tmp= dockerd_pid= containerd_pid= driver_pid= driver_starts=0

say() { echo "docker: $*"; }

skip() {
	say "SKIPPED: $*"
	exit 77
}

# Setup failed before any case ran: say why (and show the end of LOG), count one failure.
setup_failed() {
	say "FAILED: $1"
	[ -n "${2:-}" ] && tail -n 15 "$2" | sed 's/^/  /'
	say "0 passed, 1 failed"
	exit 1
}

# ---- Cleanup: only what this script started, by pid -------------------------

# Wait until a pid is gone, at most $2 seconds; 1 if it is still there.
wait_gone() {
	local pid=$1 tenths=$(($2 * 10))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$tenths" -le 0 ] && return 1
		tenths=$((tenths - 1))
		sleep 0.1
	done
	return 0
}

# Stop a process we started: SIGTERM, then SIGKILL after $2 seconds; reap it.
stop_pid() {
	local pid=$1 grace=$2
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	if ! wait_gone "$pid" "$grace"; then
		echo "docker: pid $pid ignored SIGTERM for $grace s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null
		wait_gone "$pid" 5
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# Mount points at or beneath a directory, deepest first.
mounts_under() {
	awk -v p="$1" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Runs once, in the main shell: bash may run an EXIT trap in a command
# substitution's subshell when a signal arrives while it is being read.
cleanup() {
	local rc=$?
	[ "$BASHPID" = "$$" ] || return 0
	trap - EXIT INT TERM HUP
	[ -n "$signalled" ] && rc=$signalled
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		# A shell as PID 1 ignores SIGTERM: remove containers first, or dockerd
		# takes 10 s per container to stop.
		local ids
		ids=$(dk ps -aq 2>/dev/null)
		[ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
	fi
	stop_pid "$driver_pid" 10
	driver_pid=
	stop_pid "$dockerd_pid" 20
	# dockerd stops its containerd (which has its own session); make sure.
	if [ -n "$containerd_pid" ] && [ -n "$tmp" ] &&
		tr '\0' ' ' 2>/dev/null <"/proc/$containerd_pid/cmdline" | grep -qF "$tmp/"; then
		kill -TERM "$containerd_pid" 2>/dev/null
		wait_gone "$containerd_pid" 5 || kill -KILL "$containerd_pid" 2>/dev/null
	fi
	rm -f "$plugin_sock"
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		local m
		for m in $(mounts_under "$tmp"); do
			umount -l "$m" 2>/dev/null
		done
		if [ "${NFSV3_DOCKER_KEEP:-0}" = 1 ]; then
			echo "docker: kept $tmp" >&2
		else
			# Never across a mount that somehow survived: that would delete through it.
			rm -rf --one-file-system "$tmp"
		fi
	fi
	exit "$rc"
}

# ---- Machine prerequisites ------------------------------------------------

[ "$(id -u)" = 0 ] || skip "needs root to run dockerd and mount volumes"
# Inside a chroot / is not a mount point, and containerd's image unpacking
# (which remounts /) fails: dockerd cannot run containers there.
awk '$5 == "/" {found = 1} END {exit !found}' /proc/self/mountinfo ||
	skip "/ is not a mount point here (a chroot?): dockerd cannot unpack images"
[ -d /sys/fs/cgroup ] && [ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ] ||
	skip "no cgroup filesystem mounted: dockerd cannot run containers here"

"$top/packaging/deps.sh" docker || skip "the docker packages are missing and cannot be installed (see above)"
[ -x "$dockerd_bin" ] && [ -x "$docker_bin" ] || skip "$dockerd_bin or $docker_bin missing after install"

[ -x "$driver_bin" ] || setup_failed "$driver_bin is not built (make build/bin/nfsv3driver)"

# On a signal, clean up at once: "exit" from a trap during a command
# substitution would skip the EXIT trap.
signalled=
trap cleanup EXIT
trap 'signalled=130; cleanup' INT
trap 'signalled=143; cleanup' TERM HUP

tmp=$(mktemp -d /tmp/nfsv3-docker.XXXXXX) || skip "cannot make a temp dir under /tmp"
chmod 0755 "$tmp"
mkdir -p "$tmp/data" "$tmp/exec" "$tmp/mounts" "$tmp/drivers" "$tmp/backing"
chmod 0755 "$tmp/mounts"
chmod 0777 "$tmp/backing"
# Our own config, so that no /etc/docker/daemon.json applies, and the trust key
# that dockerd 20.10 otherwise writes to /etc/docker/key.json stays in here.
printf '{"deprecated-key-path": "%s"}\n' "$tmp/key.json" >"$tmp/daemon.json"

# ---- dockerd ----------------------------------------------------------------

dk() { timeout 90 "$docker_bin" -H "unix://$tmp/docker.sock" "$@"; }

# overlay2 needs a filesystem that can be an overlay's upper layer (not overlay,
# not some network filesystems); try one mount where the data-root lives.
storage=${NFSV3_DOCKER_STORAGE:-vfs}
mkdir -p "$tmp/ovl/lower" "$tmp/ovl/upper" "$tmp/ovl/work" "$tmp/ovl/merged"
if [ -z "${NFSV3_DOCKER_STORAGE:-}" ] && mount -t overlay overlay \
	-o "lowerdir=$tmp/ovl/lower,upperdir=$tmp/ovl/upper,workdir=$tmp/ovl/work" \
	"$tmp/ovl/merged" 2>/dev/null; then
	storage=overlay2
	umount "$tmp/ovl/merged"
fi
rm -rf "$tmp/ovl"

# In its own session so that nothing it does reaches our terminal or process
# group. Not being a group leader, setsid execs dockerd in place: $! is dockerd.
setsid "$dockerd_bin" \
	--config-file "$tmp/daemon.json" \
	--data-root "$tmp/data" --exec-root "$tmp/exec" \
	--pidfile "$tmp/docker.pid" -H "unix://$tmp/docker.sock" \
	--iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
	--bridge=none --userland-proxy=false --storage-driver="$storage" \
	</dev/null >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!

for _ in $(seq 300); do
	dk version >/dev/null 2>&1 && break
	if ! kill -0 "$dockerd_pid" 2>/dev/null; then
		wait "$dockerd_pid"
		dockerd_pid=
		setup_failed "dockerd exited at start ($storage storage); its log ends:" "$tmp/dockerd.log"
	fi
	sleep 0.1
done
dk version >/dev/null 2>&1 || setup_failed "dockerd did not answer within 30 s; its log ends:" "$tmp/dockerd.log"
# Had setsid forked after all, the pidfile names dockerd: stop that one.
if [ -s "$tmp/docker.pid" ] && [ "$(cat "$tmp/docker.pid")" != "$dockerd_pid" ]; then
	dockerd_pid=$(cat "$tmp/docker.pid")
fi
containerd_pid=$(cat "$tmp/exec/containerd/containerd.pid" 2>/dev/null)

# ---- The image: busybox-static, cached as a rootfs tarball ------------------

busybox=$(command -v busybox)
tarball=$build/cache/busybox-rootfs.tar
if [ ! -s "$tarball" ] || [ "$busybox" -nt "$tarball" ]; then
	rootfs=$tmp/rootfs
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
	cp "$busybox" "$rootfs/bin/busybox"
	# Inside the rootfs, so that the links point at /bin/busybox.
	chroot "$rootfs" /bin/busybox --install -s /bin
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	chmod 1777 "$rootfs/tmp"
	mkdir -p "$(dirname "$tarball")"
	tar --numeric-owner -C "$rootfs" -cf "$tarball.$$" . && mv "$tarball.$$" "$tarball"
	rm -rf "$rootfs"
fi
out=$(dk import -c 'CMD ["/bin/sh"]' "$tarball" "$image" 2>&1) || setup_failed "docker import of $tarball: $out"

# ---- Our daemon ---------------------------------------------------------------

mkdir -p "$plugin_dir"

# Start the driver and wait for it to serve; its log is driver.N.log.
start_driver() {
	driver_starts=$((driver_starts + 1))
	driver_log=$tmp/driver.$driver_starts.log
	"$driver_bin" --listen "unix:$plugin_sock" --name "$plugin" \
		--drivers-path "$tmp/drivers" --mount-root "$tmp/mounts" \
		--allow-local-sources --log-level debug </dev/null >"$driver_log" 2>&1 &
	driver_pid=$!
	for _ in $(seq 100); do
		grep -q 'driver-server.started' "$driver_log" && return 0
		if ! kill -0 "$driver_pid" 2>/dev/null; then
			wait "$driver_pid"
			why="driver exited with status $? before serving: $(tail -n 3 "$driver_log" | tr '\n' ' ')"
			driver_pid=
			return 1
		fi
		sleep 0.1
	done
	why="driver did not log driver-server.started within 10 s"
	return 1
}

stop_driver() {
	local pid=$driver_pid
	driver_pid=
	kill -TERM "$pid" 2>/dev/null
	if ! wait_gone "$pid" 10; then
		why="driver ignored SIGTERM for 10 s"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid"
	local rc=$?
	if [ "$rc" != 0 ]; then
		why="driver exited with status $rc on SIGTERM"
		return 1
	fi
	return 0
}

start_driver || setup_failed "$why"

# ---- Cases ------------------------------------------------------------------

why=
result() {
	if [ "$2" = pass ]; then
		passed=$((passed + 1))
		echo "docker-case $1: pass"
	else
		failed=$((failed + 1))
		echo "docker-case $1: fail $why"
	fi
}

# Run a case function: pass when it returns 0, otherwise fail with $why.
run_case() {
	local name=${1//_/-}
	why=
	# A driver that is down makes each Docker call retry for 15-30 s: say so
	# at once instead.
	if [ -z "$driver_pid" ] || ! kill -0 "$driver_pid" 2>/dev/null; then
		[ -n "$driver_pid" ] && wait "$driver_pid" 2>/dev/null
		driver_pid=
		if ! start_driver; then
			why="driver not running before this case: $why"
			result "$name" fail
			return
		fi
	fi
	if "case_$1"; then result "$name" pass; else result "$name" fail; fi
	# A failed case may leave its container holding a volume: remove it, so
	# that the failure is reported once and not again by every later case.
	local left
	left=$(dk ps -aq 2>/dev/null)
	[ -n "$left" ] && dk rm -f $left >/dev/null 2>&1
	return 0
}

# $1 (output of a command) flattened to one short line for a reason.
oneline() { printf '%s' "$1" | tr '\n' ' ' | cut -c1-300; }

is_mounted() { awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }

# Nothing is mounted beneath the mount root any more (else $why names what is).
nothing_mounted() {
	local left
	left=$(mounts_under "$tmp/mounts")
	[ -z "$left" ] || { why="left mounted: $(oneline "$left")"; return 1; }
}

# expect_refused WHAT WORD VOLUME CMD...: CMD must fail with an error naming
# WORD, and VOLUME must not be listed afterwards.
expect_refused() {
	local what=$1 word=$2 vol=$3 out
	shift 3
	if out=$("$@" 2>&1); then
		why="$what succeeded"
		return 1
	fi
	printf '%s' "$out" | grep -q "$word" || { why="error does not name $word: $(oneline "$out")"; return 1; }
	out=$(dk volume ls -q 2>&1)
	! printf '%s\n' "$out" | grep -qx "$vol" || { why="$vol listed after a failed create"; return 1; }
}

backing=$tmp/backing
mountpoint=

case_create() {
	local out
	out=$(dk volume create -d "$plugin" -o "source=file://$backing" vol1 2>&1) ||
		{ why="volume create: $(oneline "$out")"; return 1; }
	[ "$out" = vol1 ] || { why="volume create printed '$(oneline "$out")', expected vol1"; return 1; }
}

# Docker never re-activates a plugin: the volume must survive a restart.
case_restart() {
	stop_driver || return 1
	start_driver || return 1
	local out
	out=$(dk volume inspect -f '{{.Driver}}' vol1 2>&1) ||
		{ why="volume inspect after restart: $(oneline "$out")"; return 1; }
	[ "$out" = "$plugin" ] || { why="vol1's driver is '$out' after restart"; return 1; }
	out=$(dk volume ls -q -f "driver=$plugin" 2>&1)
	printf '%s\n' "$out" | grep -qx vol1 || { why="volume ls after restart: $(oneline "$out")"; return 1; }
}

case_run_write() {
	local out
	out=$(dk run --rm --network none -v vol1:/data "$image" sh -c 'echo hello > /data/f' 2>&1) ||
		{ why="docker run: $(oneline "$out")"; return 1; }
	[ -f "$backing/f" ] || { why="no file f in the backing dir"; return 1; }
	[ "$(cat "$backing/f")" = hello ] || { why="backing f holds '$(oneline "$(cat "$backing/f")")'"; return 1; }
	[ "$(stat -c %u:%g "$backing/f")" = 0:0 ] ||
		{ why="backing f owned by $(stat -c %u:%g "$backing/f"), expected 0:0"; return 1; }
}

case_run_user() {
	local out owner
	out=$(dk run --rm --network none --user 2000:2000 -v vol1:/data "$image" \
		sh -c 'echo app > /data/g && cat /data/f' 2>&1) ||
		{ why="docker run --user: $(oneline "$out")"; return 1; }
	[ "$out" = hello ] || { why="container read '$(oneline "$out")' from /data/f, expected hello"; return 1; }
	[ -f "$backing/g" ] || { why="no file g in the backing dir"; return 1; }
	owner=$(stat -c %u:%g "$backing/g")
	[ "$owner" = 2000:2000 ] || { why="backing g owned by $owner, expected 2000:2000"; return 1; }
}

# While a container holds vol1: inspect names our mountpoint, mounted, showing
# the backing files; after the container stops, unmounted.
case_inspect() {
	local out
	out=$(dk run -d --name holder1 --network none -v vol1:/data "$image" sleep 300 2>&1) ||
		{ why="docker run -d: $(oneline "$out")"; return 1; }
	mountpoint=$(dk volume inspect -f '{{.Mountpoint}}' vol1 2>&1) ||
		{ why="volume inspect: $(oneline "$mountpoint")"; return 1; }
	case $mountpoint in
	"$tmp/mounts/"?*) ;;
	*) why="Mountpoint '$mountpoint' is not beneath the mount root $tmp/mounts"; return 1 ;;
	esac
	is_mounted "$mountpoint" || { why="$mountpoint is not in /proc/self/mountinfo while in use"; return 1; }
	[ "$(cat "$mountpoint/f" 2>&1)" = hello ] || { why="$mountpoint/f does not hold hello"; return 1; }
	out=$(dk exec holder1 cat /data/g 2>&1)
	[ "$out" = app ] || { why="container reads '$(oneline "$out")' from /data/g"; return 1; }
	out=$(dk rm -f holder1 2>&1) || { why="docker rm -f: $(oneline "$out")"; return 1; }
	! is_mounted "$mountpoint" || { why="$mountpoint still mounted after the container is gone"; return 1; }
}

# Docker counts references per mount ID: one container leaving must not
# unmount the volume under another.
case_shared() {
	local out mp
	for c in holderA holderB; do
		out=$(dk run -d --name "$c" --network none -v vol1:/data "$image" sleep 300 2>&1) ||
			{ why="docker run -d $c: $(oneline "$out")"; return 1; }
	done
	mp=$(dk volume inspect -f '{{.Mountpoint}}' vol1 2>&1)
	out=$(dk rm -f holderA 2>&1) || { why="docker rm -f holderA: $(oneline "$out")"; return 1; }
	is_mounted "$mp" || { why="$mp unmounted while holderB still uses it"; return 1; }
	out=$(dk exec holderB sh -c 'echo shared > /data/s' 2>&1) ||
		{ why="holderB cannot write after holderA left: $(oneline "$out")"; return 1; }
	[ "$(cat "$backing/s" 2>&1)" = shared ] || { why="holderB's write is not in the backing dir"; return 1; }
	out=$(dk rm -f holderB 2>&1) || { why="docker rm -f holderB: $(oneline "$out")"; return 1; }
	! is_mounted "$mp" || { why="$mp still mounted after both containers left"; return 1; }
}

# ":ro" is Docker's to apply (never sent); the driver must not undo it.
case_readonly() {
	local out
	if out=$(dk run --rm --network none -v vol1:/data:ro "$image" sh -c 'echo x > /data/r' 2>&1); then
		why="a write to a :ro volume succeeded"
		return 1
	fi
	[ ! -e "$backing/r" ] || { why="a write through :ro reached the backing dir"; return 1; }
	out=$(dk run --rm --network none -v vol1:/data:ro "$image" cat /data/f 2>&1)
	[ "$out" = hello ] || { why="reading a :ro volume gave '$(oneline "$out")'"; return 1; }
}

# "run --volume-driver" creates with Opts null: no source, refused at Create
# with a message naming the option.
case_implicit_create() {
	expect_refused "run with an implicit create and no source" source novol \
		dk run --rm --network none --volume-driver "$plugin" -v novol:/data "$image" true
}

# Docker gets option mistakes at Create, naming the option.
case_bad_option() {
	expect_refused "volume create with -o bogus=1" bogus volbad \
		dk volume create -d "$plugin" -o "source=file://$backing" -o bogus=1 volbad
}

case_remove() {
	local out
	out=$(dk volume rm vol1 2>&1) || { why="volume rm: $(oneline "$out")"; return 1; }
	out=$(dk volume ls -q 2>&1)
	! printf '%s\n' "$out" | grep -qx vol1 || { why="vol1 still listed after rm"; return 1; }
	[ -n "$mountpoint" ] && is_mounted "$mountpoint" && { why="$mountpoint still mounted"; return 1; }
	nothing_mounted || return 1
	[ "$(cat "$backing/f")" = hello ] || { why="backing data changed by volume rm"; return 1; }
}

# kill -9 while a container holds a volume; the restarted driver adopts the
# mount, the container stops cleanly, the volume goes, nothing leaks.
case_kill9() {
	local out mp
	mkdir -p "$tmp/backing2" && chmod 0777 "$tmp/backing2"
	out=$(dk volume create -d "$plugin" -o "source=file://$tmp/backing2" vol2 2>&1) ||
		{ why="volume create vol2: $(oneline "$out")"; return 1; }
	out=$(dk run -d --name holder2 --network none -v vol2:/data "$image" \
		sh -c 'echo before > /data/b; exec sleep 300' 2>&1) ||
		{ why="docker run -d: $(oneline "$out")"; return 1; }
	mp=$(dk volume inspect -f '{{.Mountpoint}}' vol2 2>&1)
	is_mounted "$mp" || { why="vol2's Mountpoint '$mp' not mounted while in use"; return 1; }
	kill -KILL "$driver_pid"
	wait "$driver_pid" 2>/dev/null
	driver_pid=
	start_driver || return 1
	is_mounted "$mp" || { why="$mp not mounted after the driver restarted"; return 1; }
	out=$(dk exec holder2 sh -c 'echo after > /data/a' 2>&1) ||
		{ why="container cannot write after the restart: $(oneline "$out")"; return 1; }
	[ "$(cat "$tmp/backing2/a" 2>&1)" = after ] || { why="write after restart not in backing dir"; return 1; }
	out=$(dk stop -t 1 holder2 2>&1) || { why="docker stop: $(oneline "$out")"; return 1; }
	out=$(dk rm holder2 2>&1) || { why="docker rm: $(oneline "$out")"; return 1; }
	out=$(dk volume rm vol2 2>&1) || { why="volume rm vol2: $(oneline "$out")"; return 1; }
	nothing_mounted || return 1
}

# The operator's smoke command against this driver, as volman would call it.
case_smoke() {
	local out
	mkdir -p "$tmp/backing3" && chmod 0777 "$tmp/backing3"
	# A volman-style name: volume id and container guid joined by "=".
	out=$(timeout 60 "$driver_bin" smoke --driver "unix:$plugin_sock" --source "file://$tmp/backing3" \
		--name "smoke-vol=$$=guid" --timeout 20 2>&1) ||
		{ why="smoke exited $?: $(oneline "$(printf '%s' "$out" | tail -n 3)")"; return 1; }
	printf '%s\n' "$out" | tail -n 1 | grep -q '^smoke ok' ||
		{ why="last line is not 'smoke ok': $(oneline "$(printf '%s' "$out" | tail -n 1)")"; return 1; }
	[ -z "$(ls -A "$tmp/backing3")" ] || { why="smoke left files: $(ls -A "$tmp/backing3" | tr '\n' ' ')"; return 1; }
	out=$(dk volume ls -q 2>&1)
	! printf '%s\n' "$out" | grep -q '^smoke' || { why="smoke left a volume: $(oneline "$out")"; return 1; }
	nothing_mounted || return 1
}

# The same for a mapped binding, run as root as an operator on a cell does:
# the files land in the source owned by the bound ids.
case_smoke_mapped() {
	local out
	mkdir -p "$tmp/backing4" && chmod 0777 "$tmp/backing4"
	out=$(timeout 60 "$driver_bin" smoke --driver "unix:$plugin_sock" --source "file://$tmp/backing4" \
		--uid 1234 --gid 1234 --timeout 20 2>&1) ||
		{ why="smoke --uid exited $?: $(oneline "$(printf '%s' "$out" | tail -n 3)")"; return 1; }
	printf '%s\n' "$out" | grep -q '^step backing-owner ok' ||
		{ why="no backing-owner step: $(oneline "$out")"; return 1; }
	printf '%s\n' "$out" | tail -n 1 | grep -q '^smoke ok' ||
		{ why="last line is not 'smoke ok': $(oneline "$(printf '%s' "$out" | tail -n 1)")"; return 1; }
	nothing_mounted || return 1
}

# A source that does not exist: non-zero, and the last line names Mount.
case_smoke_fail() {
	local out rc
	out=$(timeout 60 "$driver_bin" smoke --driver "unix:$plugin_sock" --source "file://$tmp/missing" \
		--timeout 20 2>&1)
	rc=$?
	[ "$rc" = 1 ] || { why="smoke exited $rc, expected 1: $(oneline "$(printf '%s' "$out" | tail -n 2)")"; return 1; }
	printf '%s\n' "$out" | tail -n 1 | grep -q '^smoke FAILED at step mount' ||
		{ why="last line does not name the mount step: $(oneline "$(printf '%s' "$out" | tail -n 1)")"; return 1; }
	printf '%s\n' "$out" | grep -q '^step cleanup-remove ok' ||
		{ why="smoke did not remove its volume after the failure"; return 1; }
	out=$(dk volume ls -q 2>&1)
	! printf '%s\n' "$out" | grep -q '^smoke' || { why="failed smoke left a volume: $(oneline "$out")"; return 1; }
	nothing_mounted || return 1
}

for c in create restart run_write run_user inspect shared readonly bad_option implicit_create \
	remove kill9 smoke smoke_mapped smoke_fail; do
	run_case "$c"
done

if [ "$failed" -gt 0 ]; then
	echo "docker: driver log (driver.$driver_starts.log) ends:"
	tail -n 20 "$tmp/driver.$driver_starts.log" 2>/dev/null | sed 's/^/  /'
fi
say "$passed passed, $failed failed ($storage storage, $((SECONDS - stage_start)) s)"
[ "$failed" -eq 0 ]
