#!/bin/bash
# Boot the NFS test VM once and run case scripts inside it.
#
# usage: boot.sh [-f HOST_FILE[:GUEST_PATH]]... CASE.sh...
#
# The initrd is the cached base image (build.sh) plus a second cpio archive
# appended here, holding:
#   /init                  init.sh: NFS server up, cases run, verdict, poweroff
#   /vm/lib.sh             helpers for the cases
#   /vm/bin/*              tools/*.c built with the host's cc (vm-lock), on PATH
#   /cases/*.sh            the CASE scripts, run in name order
#   /build/bin/*, /build/libexec/nfsv3driver/*
#                          the project's binaries from $NFSV3_BUILD, same layout
#   HOST_FILE              any extra host file (-f), at GUEST_PATH (default: the
#                          same path); ELF files bring their libraries
# Libraries of the project's binaries are taken from the host with ldd (guest
# and host are both Debian 12) unless the base image already has them (its
# libc and loader always win).
#
# Relays the guest's console on stdout (and into $NFSV3_VM_LOG) and exits 0
# when the guest's verdict is "every case passed", 1 otherwise, 77 when qemu
# cannot run on this machine at all.
#
# env: NFSV3_BUILD           build tree (default: <repo>/build)
#      NFSV3_VM_CACHE        see build.sh (also NFSV3_VM_KERNEL,
#                            NFSV3_VM_KERNEL_SUITE: boot another suite's kernel,
#                            e.g. bookworm-backports, and NFSV3_VM_NEED_PASSTHROUGH)
#      NFSV3_VM_WATCHDOG     guest watchdog, s (default 60 + cases x case
#                            timeout); the host kills qemu 30 s after it
#      NFSV3_VM_CASE_TIMEOUT per-case limit in the guest, s (default 60)
#      NFSV3_VM_LOG          console log (default $NFSV3_BUILD/vm/console.log,
#                            console-SUITE.log with NFSV3_VM_KERNEL_SUITE)
#      NFSV3_VM_APPEND       extra kernel command line
set -euo pipefail
vm_prog=vm-boot
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/common.sh"

build=${NFSV3_BUILD:-$top/build}
case_timeout=${NFSV3_VM_CASE_TIMEOUT:-60}
watchdog=${NFSV3_VM_WATCHDOG:-}
log=${NFSV3_VM_LOG:-$build/vm/console${NFSV3_VM_KERNEL_SUITE:+-$NFSV3_VM_KERNEL_SUITE}.log}

extra=()
while getopts f: opt; do
	case $opt in
	f) extra+=("$OPTARG") ;;
	*) echo "usage: $0 [-f HOST_FILE[:GUEST_PATH]]... CASE.sh..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-f HOST_FILE[:GUEST_PATH]]... CASE.sh..." >&2; exit 2; }
# Every case is bounded by its own timeout; the watchdog only catches a guest
# that hangs outside them (module loading, server start).
[ -n "$watchdog" ] || watchdog=$((60 + $# * case_timeout))

base=$("$here/build.sh") || exit $?
[ -s "$base/base.cpio.gz" ] || vm_die "build.sh gave no image"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ov=$tmp/overlay
mkdir -p "$ov"/{cases,vm,etc,usr/lib/x86_64-linux-gnu}

# copy_file SRC DEST: DEST relative to the overlay; ELF files bring their
# libraries (host ldd), except those the base image has.
copy_file() {
	local src=$1 dest=$2 line name path
	mkdir -p "$ov/$(dirname "$dest")"
	[ "$src" -ef "$ov/$dest" ] || cp -L "$src" "$ov/$dest"
	head -c4 "$src" | grep -q ELF || return 0
	ldd "$src" >"$tmp/ldd" 2>&1 || return 0 # static, or not a program
	while read -r line; do
		case $line in
		*"not found"*) vm_die "$src: library not found on the host: $line" ;;
		*" => /"*) ;;
		*) continue ;;
		esac
		name=${line%% =>*} path=${line#*=> }; path=${path%% (*}
		grep -qx "usr/lib/x86_64-linux-gnu/$name" "$base/manifest" && continue
		[ -e "$ov/usr/lib/x86_64-linux-gnu/$name" ] || cp -L "$path" "$ov/usr/lib/x86_64-linux-gnu/$name"
	done <"$tmp/ldd"
}

nbin=0
for f in "$build"/bin/* "$build"/libexec/nfsv3driver/*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	copy_file "$f" "build/${f#"$build"/}"
	nbin=$((nbin + 1))
done
[ "$nbin" -gt 0 ] || vm_log "warning: no project binaries under $build (bin/, libexec/nfsv3driver/)"
for e in "${extra[@]}"; do
	src=${e%%:*} dest=${e#*:}
	[ "$dest" = "$e" ] && dest=$src
	[ -e "$src" ] || vm_die "-f $src: no such file"
	copy_file "$src" "${dest#/}"
done
for c in "$@"; do
	[ -f "$c" ] || vm_die "$c: no such case script"
	cp "$c" "$ov/cases/$(basename "$c")"
done
# Test tools (tools/*.c), built here with the host's compiler.
mkdir -p "$ov/vm/bin"
for t in "$here"/tools/*.c; do
	[ -e "$t" ] || continue
	cc -O2 -Wall -o "$ov/vm/bin/$(basename "$t" .c)" "$t" || vm_die "cannot build $t"
	copy_file "$ov/vm/bin/$(basename "$t" .c)" "vm/bin/$(basename "$t" .c)"
done
cp "$here/init.sh" "$ov/init"
cp "$here/lib.sh" "$ov/vm/lib.sh"
chmod 0755 "$ov/init" "$ov"/cases/*
printf 'VM_WATCHDOG=%s\nVM_CASE_TIMEOUT=%s\n' "$watchdog" "$case_timeout" >"$ov/etc/vm.conf"

cp "$base/base.cpio.gz" "$tmp/initrd"
# The kernel finds the next archive only at a 4-byte boundary (it skips zero
# padding up to there).
pad=$(( (4 - $(stat -c %s "$tmp/initrd") % 4) % 4 ))
head -c "$pad" /dev/zero >>"$tmp/initrd"
(cd "$ov" && find . | sort | cpio -o -H newc -R +0:+0 --quiet) >>"$tmp/initrd"

mkdir -p "$(dirname "$log")"
vm_log "booting $(cat "$base/kpkg") with $nbin project binaries and $# cases (watchdog $watchdog s)"
start=$(date +%s.%N)
set +e
timeout -k 5 $((watchdog + 30)) qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -machine q35 -m 1024M -smp 2 \
	-nodefaults -no-user-config -nic none -display none -monitor none \
	-serial stdio -no-reboot \
	-kernel "$base/vmlinuz" -initrd "$tmp/initrd" \
	-append "console=ttyS0 panic=-1 quiet loglevel=4 ${NFSV3_VM_APPEND:-}" \
	</dev/null 2>"$tmp/qemu.err" | tr -d '\r' | tee "$log"
rc=${PIPESTATUS[0]}
set -e
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')

verdict=$(grep -a '^vm-verdict ' "$log" | tail -n1 || true)
if [ -z "$verdict" ]; then
	# qemu failed before the guest printed a single byte: this machine cannot run it.
	if ! [ -s "$log" ] && [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$rc" != 137 ]; then
		echo "$vm_prog: qemu cannot run on this machine (exit $rc): $(head -c 2000 "$tmp/qemu.err")" >&2
		exit 77
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		why="killed by the host timeout"
	elif grep -qa 'Kernel panic' "$log"; then
		why="kernel panic"
	else
		why="qemu exit $rc"
	fi
	vm_log "no verdict from the guest after $took s ($why); console in $log"
	[ -s "$tmp/qemu.err" ] && vm_log "qemu: $(head -c 2000 "$tmp/qemu.err")"
	exit 1
fi
vm_log "$verdict after $took s"
case $verdict in
*" pass="[1-9]*" fail=0") exit 0 ;;
*) exit 1 ;;
esac
