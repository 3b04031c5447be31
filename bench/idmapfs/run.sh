#!/bin/bash
# idmapfs (with FUSE passthrough where the kernel has it, and with
# passthrough=off: the normal path, as on 5.15/6.8 cells) against the native
# directory and bindfs, on local directories, each workload run as the app uid. Not a test: it prints a table of seconds (and
# fio IOPS), idmapfs's peak RSS under fio and its CPU seconds per GiB moved.
# Timings are the best of REPS runs (default 3): shared machines are noisy,
# and the best run is the one least disturbed by others.
#
#   sudo bench/idmapfs/run.sh [DIR]     DIR: where to work (default /var/tmp),
#                                        a local file system, not tmpfs
#
# The three kinds work on an ext4 of the bench's own (an image in DIR on a
# loop device, mkfs.ext4's defaults, so with a journal), made fresh each
# run; OWN_FS=0 works in DIR itself. On an ext4 without a journal (as this
# machine's / is) allocation skips every inode freed in the last minute, so
# each kind would pay for the files the kind before it had just deleted.
#
# Needs root (mounts, drop_caches), fio, bindfs, python3; the idmapfs binary
# from NFSV3_BUILD (default build/), and its bench/floor (floor.c) if built.
# IDMAPFS_BEFORE=BINARY adds a column "before": that idmapfs (an earlier
# build, say) with passthrough=off, to compare with nopt in the same run.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/packaging/local-sources.sh" "${1:-/var/tmp}"
build=${NFSV3_BUILD:-$top/build}
idmapfs=$build/libexec/nfsv3driver/nfsv3driver-idmapfs
bound=1234 app=2000
seq_mib=256 files=5000 tree_files=3000 fio_seconds=${FIO_SECONDS:-20} reps=${REPS:-3}

[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 77; }
for tool in fio bindfs python3 setpriv; do
	command -v $tool >/dev/null || { echo "run.sh: needs $tool (apt-get install $tool)" >&2; exit 77; }
done
[ -x "$idmapfs" ] || { echo "run.sh: $idmapfs: build it first" >&2; exit 1; }

work=$(mktemp -d "${1:-/var/tmp}/idmapfs-bench.XXXXXX")
chmod 755 "$work"
idmapfs_pid= nopt_pid= before_pid=
before=${IDMAPFS_BEFORE:-}
[ -z "$before" ] || [ -x "$before" ] || { echo "run.sh: IDMAPFS_BEFORE=$before is not an executable" >&2; exit 1; }
cleanup() {
	set +e
	for pid in $idmapfs_pid $nopt_pid $before_pid; do kill -TERM "$pid"; done
	mountpoint -q "$work/bindfs" && umount -l "$work/bindfs"
	for vol in vol nopt before; do
		for _ in $(seq 50); do
			mountpoint -q "$work/root/$vol" || break
			sleep 0.1
		done
		mountpoint -q "$work/root/$vol" && umount -l "$work/root/$vol"
	done
	# The servers hold fds on the data file system until they have exited.
	for pid in $idmapfs_pid $nopt_pid $before_pid; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
	mountpoint -q "$work/data" && umount "$work/data"
	# Never remove through a mount that is still there.
	grep -q " $work/" /proc/self/mountinfo || rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data" "$work/root" "$work/bindfs" "$work/src"
if [ "${OWN_FS:-1}" = 1 ]; then
	truncate -s 3G "$work/data.img"
	mkfs.ext4 -q "$work/data.img"
	mount -o loop "$work/data.img" "$work/data"
fi
mkdir -p "$work/data/native" "$work/data/back" "$work/data/nback" "$work/data/bback" "$work/data/oback"
chown $app:$app "$work/data/native"
chown $bound:$bound "$work/data/back" "$work/data/nback" "$work/data/bback" "$work/data/oback"

# idmapfs: the helper as the daemon starts it, ready when it says so.
exec {ready}< <("$idmapfs" "$work/root" "$work/data/back" vol $bound $bound $app $app rw & echo "pid $!"; wait)
read -r _ idmapfs_pid <&$ready
read -r line <&$ready
[ "$line" = ready ] || { echo "run.sh: idmapfs did not start" >&2; exit 1; }
exec {ready2}< <("$idmapfs" "$work/root" "$work/data/nback" nopt $bound $bound $app $app rw passthrough=off &
	echo "pid $!"; wait)
read -r _ nopt_pid <&$ready2
read -r line <&$ready2
[ "$line" = ready ] || { echo "run.sh: idmapfs passthrough=off did not start" >&2; exit 1; }
if [ -n "$before" ]; then
	exec {ready3}< <("$before" "$work/root" "$work/data/oback" before $bound $bound $app $app rw passthrough=off &
		echo "pid $!"; wait)
	read -r _ before_pid <&$ready3
	read -r line <&$ready3
	[ "$line" = ready ] || { echo "run.sh: $before did not start" >&2; exit 1; }
fi
passthrough=no
pgrep -P "$idmapfs_pid" -x idmapfs-pt >/dev/null && passthrough=yes
# bindfs with the same mapping: bound ids on disk show as the app's.
bindfs -o allow_other --map=$bound/$app:@$bound/@$app "$work/data/bback" "$work/bindfs"
bindfs_pid=$(pgrep -n -x bindfs)

declare -A target=([native]=$work/data/native [idmapfs]=$work/root/vol [nopt]=$work/root/nopt
	[bindfs]=$work/bindfs [before]=$work/root/before)
kinds=(native idmapfs nopt bindfs)
[ -n "$before" ] && kinds+=(before)
declare -A result

as_app() { setpriv --reuid $app --regid $app --clear-groups "$@"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
cpu_seconds() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat"; }

# A ~3,000-file tree (small files in 60 directories) to untar.
python3 - "$work/src" $tree_files <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
for i in range(n):
    d = os.path.join(root, "tree", f"d{i % 60:02d}", f"s{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(random.randint(200, 16384)))
EOF
tar -C "$work/src" -cf "$work/tree.tar" tree
chmod 644 "$work/tree.tar"

metadata_py='
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(os.path.join(d, "meta"))
names = [os.path.join(d, "meta", f"f{i}") for i in range(n)]
for p in names:
    os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
for p in names:
    os.stat(p)
for p in names:
    os.unlink(p)
os.rmdir(os.path.join(d, "meta"))
'

# Keep the smaller of the result so far and a new time.
keep_best() {
	local key=$1 t=$2
	if [ -z "${result[$key]:-}" ] || python3 -c "import sys; sys.exit(not $t < ${result[$key]})"; then
		result[$key]=$t
	fi
}
timed() {
	local key=$1 t0
	shift
	t0=$(now)
	"$@"
	keep_best "$key" "$(elapsed "$t0" "$(now)")"
}

idmapfs_cpu_start=$(cpu_seconds "$idmapfs_pid")
for _ in $(seq $reps); do
	for kind in "${kinds[@]}"; do
		dir=${target[$kind]}
		drop_caches
		timed $kind.write as_app dd if=/dev/zero of="$dir/seq" bs=1M count=$seq_mib conv=fsync status=none
		drop_caches
		timed $kind.read as_app dd if="$dir/seq" of=/dev/null bs=1M status=none
		timed $kind.cached as_app dd if="$dir/seq" of=/dev/null bs=1M status=none
		as_app rm -f "$dir/seq"
	done
done
idmapfs_cpu_seq=$(python3 -c "print(f'{($(cpu_seconds "$idmapfs_pid") - $idmapfs_cpu_start) / ($reps * $seq_mib * 2 / 1024):.2f}')")

for _ in $(seq $reps); do
	for kind in "${kinds[@]}"; do
		dir=${target[$kind]}
		drop_caches
		timed $kind.meta as_app /usr/bin/python3 -c "$metadata_py" "$dir" $files
		drop_caches
		timed $kind.untar as_app tar -C "$dir" -xf "$work/tree.tar"
		drop_caches
		timed $kind.readback as_app find "$dir/tree" -type f -exec cat {} + > /dev/null
		as_app rm -rf "$dir/tree"
	done
done

for kind in "${kinds[@]}"; do
	dir=${target[$kind]}
	[ $kind = idmapfs ] && echo 5 > "/proc/$idmapfs_pid/clear_refs"
	[ $kind = nopt ] && echo 5 > "/proc/$nopt_pid/clear_refs"
	[ $kind = bindfs ] && echo 5 > "/proc/$bindfs_pid/clear_refs"
	[ $kind = before ] && echo 5 > "/proc/$before_pid/clear_refs"
	as_app fio --name=randrw --directory="$dir" --size=256M --rw=randrw --bs=4k \
		--ioengine=psync --numjobs=2 --runtime=$fio_seconds --time_based --group_reporting \
		--output-format=json > "$work/fio.$kind.json"
	result[$kind.fio]=$(python3 -c "
import json; j = json.load(open('$work/fio.$kind.json'))['jobs'][0]
print(int(j['read']['iops'] + j['write']['iops']))")
	as_app rm -f "$dir"/randrw.*
done
idmapfs_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$idmapfs_pid/status")
nopt_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$nopt_pid/status")
bindfs_rss=$(awk '/VmHWM/ { print $2 }' "/proc/$bindfs_pid/status")
before_rss=${before_pid:+$(awk '/VmHWM/ { print $2 }' "/proc/$before_pid/status")}

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
echo "idmapfs: passthrough $passthrough (kernel $(uname -r)); nopt: idmapfs with passthrough=off${before:+; before: $before, passthrough=off}"
printf '%-34s' workload
for kind in "${kinds[@]}"; do printf ' %9s' "$kind"; done
for kind in "${kinds[@]:1}"; do printf ' %9s' "$kind/n"; done
echo
row() {
	local key=$1 label=$2 kind
	printf '%-34s' "$label"
	for kind in "${kinds[@]}"; do printf ' %9s' "${result[$kind.$key]}"; done
	for kind in "${kinds[@]:1}"; do printf ' %9s' "$(ratio "${result[$kind.$key]}" "${result[native.$key]}")"; done
	echo
}
row write "seq write ${seq_mib} MiB + fsync (s)"
row read "seq read ${seq_mib} MiB, cold (s)"
row cached "seq read ${seq_mib} MiB, cached (s)"
row meta "$files files create/stat/unlink (s)"
row untar "untar $tree_files files (s)"
row readback "read back $tree_files files, cold (s)"
row fio "fio 4k randrw ${fio_seconds}s (IOPS)"
echo
echo "peak RSS under fio: idmapfs ${idmapfs_rss} KiB, nopt ${nopt_rss} KiB, bindfs ${bindfs_rss} KiB${before:+, before $before_rss KiB}"
echo "idmapfs CPU per GiB moved (seq write + read): ${idmapfs_cpu_seq} s"

# What no FUSE layer can go below on this machine, on the same file system.
if [ -x "$build/bench/floor" ]; then
	echo
	"$build/bench/floor" "$work/data"
fi
