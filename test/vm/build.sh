#!/bin/bash
# Build (or find in the cache) the NFS test VM's base image: Debian's kernel
# and a base initramfs holding the NFS modules, busybox and the kernel NFS
# server's userspace (rpcbind, rpc.nfsd, rpc.mountd, exportfs, rpc.statd,
# mount.nfs, rpcinfo) with their shared libraries. Everything comes from
# Debian's archive through `apt-get download`, unpacked with dpkg-deb, never
# installed on the host.
#
# usage: build.sh            prints the base directory on stdout:
#                            DIR/vmlinuz DIR/base.cpio.gz DIR/kver DIR/kpkg
#                            DIR/config (the kernel's) DIR/manifest
# env:   NFSV3_VM_CACHE      cache directory (default /var/cache/nfsv3driver-vm)
#        NFSV3_VM_KERNEL     kernel package to use, e.g. linux-image-6.1.0-56-amd64
#                            (default: what linux-image-amd64 depends on, resolved now)
#        NFSV3_VM_KERNEL_SUITE  take the kernel (only: the userland stays the host's
#                            suite, bookworm) from this suite of NFSV3_VM_KERNEL_MIRROR,
#                            e.g. bookworm-backports, through a private apt
#                            configuration in the cache (default: the host's apt sources)
#        NFSV3_VM_KERNEL_MIRROR  that suite's archive (default http://deb.debian.org/debian)
#        NFSV3_VM_NEED_PASSTHROUGH=1  fail unless the kernel has FUSE passthrough
#                            (CONFIG_FUSE_PASSTHROUGH=y in its /boot/config-*)
#        NFSV3_VM_REBUILD=1  rebuild the base image even if cached
#
# A warm cache (the .debs and the image for the same inputs) builds nothing and
# needs no network.
set -euo pipefail
vm_prog=vm-build
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
vm_need_host_tools
export PATH=$PATH:/usr/sbin:/sbin

debs=$vm_cache/debs
mkdir -p "$debs"

# The NFS server and client userspace and every library it links, plus
# busybox for everything else. A library not in this list makes the build
# fail loudly (see resolve_libs), never silently taken from the host.
packages="busybox-static libc6 libgcc-s1 nfs-kernel-server nfs-common rpcbind netbase
	libtirpc3 libtirpc-common libwrap0 libnfsidmap1 libevent-core-2.1-7 libsqlite3-0
	libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1
	libsystemd0 libcap2 libgcrypt20 libgpg-error0 liblzma5 libzstd1 liblz4-1 libnsl2
	libmount1 libblkid1 libuuid1 libselinux1 libpcre2-8-0 libdevmapper1.02.1 libudev1
	libssl3 libreadline8 libtinfo6 libevent-2.1-7 libcap-ng0"

# The guest's userspace from those packages: name -> guest directory.
binaries="rpcbind rpcinfo rpc.nfsd rpc.mountd exportfs rpc.statd sm-notify mount.nfs"

# Modules to load, in dependency order (resolved with modprobe --show-depends);
# sch_netem for the benchmarks' loopback delay (bench/idmapfs-nfs, BENCH_NETEM).
modules="sunrpc grace lockd nfs_acl auth_rpcgss nfs nfsv3 nfsv4 nfsd fuse sch_netem"

# One build at a time per cache: several checkouts (or engineers) may run
# the stage at once on one machine (and share the kernel suite's package lists).
exec 9>"$vm_cache/.lock"
flock 9

# apt for the userland: the host's sources. apt for the kernel: the same, or,
# with NFSV3_VM_KERNEL_SUITE, a private configuration that knows only that
# suite (its sources and package lists in the cache; the host's /etc/apt
# sources, lists and pins are not read, nor changed).
apt_opts=(-q -o APT::Sandbox::User=root)
kapt_opts=("${apt_opts[@]}")
ksuite=${NFSV3_VM_KERNEL_SUITE:-}
if [ -n "$ksuite" ]; then
	case $ksuite in
	*[!a-z0-9-]*) vm_die "NFSV3_VM_KERNEL_SUITE=$ksuite is not a suite name (e.g. bookworm-backports)" ;;
	esac
	mirror=${NFSV3_VM_KERNEL_MIRROR:-http://deb.debian.org/debian}
	kapt=$vm_cache/apt-$ksuite
	mkdir -p "$kapt/lists/partial" "$kapt/parts" "$kapt/prefs"
	signed=
	[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] && signed="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
	echo "deb $signed$mirror $ksuite main" >"$kapt/sources.list.new"
	cmp -s "$kapt/sources.list.new" "$kapt/sources.list" || rm -f "$kapt"/lists/*_Packages* "$kapt"/lists/*Release*
	mv "$kapt/sources.list.new" "$kapt/sources.list"
	kapt_opts+=(-o "Dir::Etc::SourceList=$kapt/sources.list" -o "Dir::Etc::SourceParts=$kapt/parts"
		-o "Dir::State::Lists=$kapt/lists" -o "Dir::Etc::Preferences=$kapt/prefs/none"
		-o "Dir::Etc::PreferencesParts=$kapt/prefs" -o Dir::State::status=/dev/null
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
fi
# Where the kernel comes from, for messages.
kfrom=${ksuite:+" from $mirror $ksuite"}

have_deb() { compgen -G "$debs/${1%%=*}_*.deb" >/dev/null; }

# apt_update host|kernel: refresh that side's package lists, once per run.
apt_updated=
apt_update() {
	case " $apt_updated " in *" $1 "*) return 0 ;; esac
	if [ "$1" = kernel ] && [ -n "$ksuite" ]; then
		vm_log "apt-get update (the kernel's suite, $mirror $ksuite)"
		apt-get "${kapt_opts[@]}" update -qq >&2 || vm_die "apt-get update failed: is $mirror $ksuite reachable?"
		touch "$kapt"/lists/*Release
	else
		vm_log "apt-get update"
		apt-get "${apt_opts[@]}" update -qq >&2 || vm_die "apt-get update failed: is Debian's archive reachable?"
	fi
	apt_updated="$apt_updated $1"
}

# fetch host|kernel PACKAGE...: download the packages not yet cached. A stale
# package list (a kernel that left the archive) is refreshed once and retried.
fetch() {
	local side=$1 want=() p opts=("${apt_opts[@]}") from=
	shift
	[ "$side" = kernel ] && opts=("${kapt_opts[@]}") from=$kfrom
	for p in "$@"; do have_deb "$p" || want+=("$p"); done
	[ ${#want[@]} -eq 0 ] && return 0
	vm_log "downloading ${want[*]}$from"
	if ! (cd "$debs" && apt-get "${opts[@]}" download "${want[@]}" >&2); then
		apt_update "$side"
		(cd "$debs" && apt-get "${opts[@]}" download "${want[@]}" >&2) ||
			vm_die "apt-get download ${want[*]}$from failed"
	fi
}

# The kernel: pinned, or what linux-image-amd64 depends on today (in the
# kernel's suite).
kpkg=${NFSV3_VM_KERNEL:-}
if [ -z "$kpkg" ]; then
	# Nothing else refreshes the suite's private lists: once a day, when the
	# archive answers (a warm cache still builds offline with the old ones).
	if [ -n "$ksuite" ] && [ -n "$(find "$kapt/lists" -maxdepth 1 -name '*Release' -mmin +1440)" ]; then
		if apt-get "${kapt_opts[@]}" update -qq >&2; then
			touch "$kapt"/lists/*Release
			apt_updated=kernel
		else
			vm_log "warning: cannot refresh the package lists of $mirror $ksuite; using the old ones"
		fi
	fi
	resolve_kernel() {
		apt-cache "${kapt_opts[@]}" depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
	}
	kpkg=$(resolve_kernel || true)
	if [ -z "$kpkg" ]; then
		apt_update kernel
		kpkg=$(resolve_kernel || true)
	fi
	[ -n "$kpkg" ] || vm_die "cannot resolve the package linux-image-amd64 depends on$kfrom (set NFSV3_VM_KERNEL)"
fi
case $kpkg in
linux-image-*) ;;
*) vm_die "NFSV3_VM_KERNEL=$kpkg is not a linux-image-* package" ;;
esac

fetch kernel "$kpkg"
# shellcheck disable=SC2086
fetch host $packages

# The inputs of the image: this script and the exact .deb files.
deb_files=()
for p in "$kpkg" $packages; do
	f=$(compgen -G "$debs/${p%%=*}_*.deb" | sort -V | tail -n1)
	[ -n "$f" ] || vm_die "no .deb for $p in $debs"
	deb_files+=("$f")
done
key=$( { cat "$here/build.sh"; printf '%s\n' "${deb_files[@]##*/}"; } | sha256sum | cut -c1-16)
out=$vm_cache/base-$key

# need_passthrough DIR: with NFSV3_VM_NEED_PASSTHROUGH=1, the image's kernel
# must have FUSE passthrough (Linux 6.9+, built with CONFIG_FUSE_PASSTHROUGH).
need_passthrough() {
	local c=$1/config fs pt
	[ -n "${NFSV3_VM_NEED_PASSTHROUGH:-}" ] || return 0
	grep -Eqx 'CONFIG_FUSE_FS=[ym]' "$c" && grep -qx 'CONFIG_FUSE_PASSTHROUGH=y' "$c" && return 0
	fs=$(grep -E '^(# )?CONFIG_FUSE_FS[= ]' "$c" || echo "no CONFIG_FUSE_FS")
	pt=$(grep -E '^(# )?CONFIG_FUSE_PASSTHROUGH[= ]' "$c" || echo "no CONFIG_FUSE_PASSTHROUGH")
	vm_die "kernel $(cat "$1/kpkg")$kfrom has no FUSE passthrough ($fs; $pt in /boot/config-$(cat "$1/kver")): it needs Linux 6.9+ built with CONFIG_FUSE_PASSTHROUGH=y"
}

if [ -z "${NFSV3_VM_REBUILD:-}" ] && [ -s "$out/base.cpio.gz" ] && [ -s "$out/vmlinuz" ]; then
	touch "$out"
	need_passthrough "$out"
	echo "$out"
	exit 0
fi

start=$SECONDS
vm_log "building base image $out (kernel $kpkg$kfrom)"
work=$(mktemp -d "$vm_cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage root=$work/root
mkdir -p "$stage" "$root"

# The kernel package unpacks once per kernel (a few hundred MB of modules).
kdeb=${deb_files[0]}
kstage=$vm_cache/kernel-$(basename "$kdeb" .deb)
if ! [ -e "$kstage/.done" ]; then
	rm -rf "$kstage"
	mkdir -p "$kstage"
	dpkg-deb -x "$kdeb" "$kstage"
	touch "$kstage/.done"
fi
kver=$(ls "$kstage/lib/modules" | head -n1)
[ -n "$kver" ] && [ -e "$kstage/boot/vmlinuz-$kver" ] || vm_die "$kdeb holds no kernel"
[ -e "$kstage/lib/modules/$kver/modules.dep" ] || depmod -b "$kstage" "$kver"

for f in "${deb_files[@]:1}"; do dpkg-deb -x "$f" "$stage"; done

# Guest layout: merged /usr, libraries flat in the multiarch directory.
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,lib64,etc,modules,dev,proc,sys,tmp,run,srv,var/lib/nfs/sm,var/lib/nfs/sm.bak,var/lib/nfs/v4recovery,root,mnt}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
chmod 1777 "$root/tmp"

bb=$stage/bin/busybox
[ -x "$bb" ] || bb=$stage/usr/bin/busybox
[ -x "$bb" ] || vm_die "busybox-static has no busybox binary"
cp "$bb" "$root/usr/bin/busybox"

# Copy a userspace binary found anywhere in the stage into usr/sbin.
for b in $binaries; do
	f=$(find "$stage"/bin "$stage"/sbin "$stage"/usr/bin "$stage"/usr/sbin -name "$b" \( -type f -o -type l \) 2>/dev/null | head -n1)
	[ -n "$f" ] || vm_die "$b not found in the downloaded packages"
	cp -L "$f" "$root/usr/sbin/$b"
done

# The downloaded dynamic loader lists each binary's libraries; any library it
# does not find among the downloaded files is an error, not a host fallback.
ldso=$stage/lib64/ld-linux-x86-64.so.2
[ -e "$ldso" ] || ldso=$stage/usr/lib64/ld-linux-x86-64.so.2
[ -e "$ldso" ] || vm_die "libc6 has no ld-linux-x86-64.so.2"
libpath=$stage/lib/x86_64-linux-gnu:$stage/usr/lib/x86_64-linux-gnu
for b in $binaries; do
	list=$("$ldso" --inhibit-cache --library-path "$libpath" --list "$root/usr/sbin/$b") ||
		vm_die "ld.so cannot load $b: $list"
	while read -r name arrow path _; do
		case $name in linux-vdso.so.*|/lib64/ld-linux-x86-64.so.2|*/ld-linux-x86-64.so.2) continue ;; esac
		[ "$arrow" = "=>" ] || continue
		case $path in
		"$stage"/*) cp -L "$path" "$root/usr/lib/x86_64-linux-gnu/$name" ;;
		*) vm_die "$b needs $name, which is not in the downloaded packages (found: $path); add its package to build.sh" ;;
		esac
	done <<<"$list"
done
cp -L "$ldso" "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
# glibc dlopens libgcc_s for thread cancellation and unwinding.
g=$(compgen -G "$stage/*lib/x86_64-linux-gnu/libgcc_s.so.1" | head -n1)
[ -n "$g" ] || vm_die "libgcc-s1 has no libgcc_s.so.1"
cp -L "$g" "$root/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
mv "$root/lib64" "$root/usr/lib64" && ln -s usr/lib64 "$root/lib64"

# busybox applets, wherever nothing real is installed.
"$root/usr/bin/busybox" --list-full | while read -r a; do
	n=${a##*/}
	case $a in *sbin/*) d=usr/sbin ;; *) d=usr/bin ;; esac
	[ -e "$root/usr/sbin/$n" ] || [ -e "$root/usr/bin/$n" ] || [ -L "$root/usr/bin/$n" ] ||
		ln -s /usr/bin/busybox "$root/$d/$n"
done

# Modules, flat, with their load order.
: >"$root/modules/order"
for m in $modules; do
	modprobe -d "$kstage" -S "$kver" --show-depends "$m" ||
		vm_die "modprobe cannot resolve module $m for $kver"
done | while read -r kind path _; do
	[ "$kind" = insmod ] || continue
	# Newer kernels ship modules compressed (6.12: .ko.xz); busybox's insmod
	# takes them plain.
	n=$(basename "$path")
	case $n in
	*.ko.xz) n=${n%.xz} unpack=(xz -dc) ;;
	*.ko.zst) n=${n%.zst} unpack=(zstd -qdc) ;;
	*.ko.gz) n=${n%.gz} unpack=(gzip -dc) ;;
	*) unpack=(cat) ;;
	esac
	grep -qx "$n" "$root/modules/order" && continue
	"${unpack[@]}" "$path" >"$root/modules/$n" || vm_die "cannot unpack $path"
	echo "$n" >>"$root/modules/order"
done
[ -s "$root/modules/order" ] || vm_die "no modules resolved"

# /etc: users for rpcbind and statd, name service files, libtirpc's netconfig.
for f in services protocols rpc netconfig; do
	[ -e "$stage/etc/$f" ] && cp "$stage/etc/$f" "$root/etc/$f"
done
[ -e "$root/etc/netconfig" ] || vm_die "libtirpc-common gave no /etc/netconfig"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
_rpc:x:100:65534::/run/rpcbind:/bin/false
statd:x:101:65534::/var/lib/nfs:/bin/false
app:x:2000:2000:app:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
app:x:2000:
nogroup:x:65534:
EOF
printf '127.0.0.1\tlocalhost nfsvm\n::1\tlocalhost ip6-localhost\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\nrpc: files\nservices: files\nprotocols: files\n' >"$root/etc/nsswitch.conf"
echo nfsvm >"$root/etc/hostname"
: >"$root/etc/exports"
: >"$root/etc/fstab"
ln -s /proc/self/mounts "$root/etc/mtab"
: >"$root/var/lib/nfs/etab" ; : >"$root/var/lib/nfs/rmtab"

mkdir -p "$out.tmp"
cp "$kstage/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
[ -e "$kstage/boot/config-$kver" ] || vm_die "$kdeb has no /boot/config-$kver"
cp "$kstage/boot/config-$kver" "$out.tmp/config"
echo "$kver" >"$out.tmp/kver"
echo "$kpkg" >"$out.tmp/kpkg"
(cd "$root" && find . | sed 's|^\./||' | sort >"$out.tmp/manifest")
(cd "$root" && find . | sort | cpio -o -H newc -R +0:+0 --quiet 2>/dev/null) |
	gzip -1 >"$out.tmp/base.cpio.gz"
rm -rf "$out"
mv "$out.tmp" "$out"
# Other images and kernel unpacks are dead weight once nobody has used them
# for a day (another checkout may still boot them).
touch "$kstage"
find "$vm_cache" -maxdepth 1 \( -name 'base-*' -o -name 'kernel-*' \) ! -name "${out##*/}" \
	! -name "${kstage##*/}" -mmin +1440 -exec rm -rf {} +
vm_log "base image built in $((SECONDS - start)) s: $(du -h "$out/base.cpio.gz" | cut -f1) initramfs, kernel $kver"
need_passthrough "$out"
echo "$out"
