#!/bin/bash
# Scripted stage: the release's packaging scripts build from the release's
# own blobs (and, for nfsv3driver, this repository) with only a compiler.  Each runs in a fresh Debian 12 root
# (debootstrap --variant=buildd: build-essential and nothing else) with
# networking cut (unshare -n) and BOSH_COMPILE_TARGET/BOSH_INSTALL_TARGET set
# as the BOSH agent sets them; then the binaries it installed are run.
# The root is made once and kept as a tarball (NFSV3_RELEASE_CACHE); the
# blobs come from release/scripts/fetch-blobs.sh when missing.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
release=$top/release
cache=${NFSV3_RELEASE_CACHE:-/var/tmp/nfsv3driver-release}
skip() { echo "release: $*: skipped"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (chroot, unshare)"
command -v debootstrap >/dev/null || skip "debootstrap is missing (packaging/deps.sh test)"
for blobs in nfs-rpc nfsv3driver-libs; do
	if [ ! -d "$release/blobs/$blobs" ]; then
		"$release/scripts/fetch-blobs.sh" "$blobs" || skip "the Debian source packages of $blobs could not be fetched"
	fi
done
mkdir -p "$cache"
if [ ! -s "$cache/bookworm-buildd.tar" ]; then
	echo "release: making a Debian 12 build root (once)"
	rm -rf "$cache/root.new"
	debootstrap --variant=buildd bookworm "$cache/root.new" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
		{ tail -5 "$cache/debootstrap.log"; skip "debootstrap failed"; }
	tar -C "$cache/root.new" -cf "$cache/bookworm-buildd.tar.tmp" . && mv "$cache/bookworm-buildd.tar.tmp" "$cache/bookworm-buildd.tar"
	rm -rf "$cache/root.new"
fi

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
no() { fail=$((fail + 1)); echo "FAILED: $*"; }

# The files a package's spec lists, as BOSH gathers them into the compile
# directory: each `files:` glob from blobs/ when there is such a blob
# directory, else from src/ (src/nfsv3driver is this repository's working
# tree here, not a copy of HEAD: the stage tests what is checked out).
spec_list() { awk -v key="$2" '$0 ~ "^" key ":" {on = 1; next} /^[a-z_]+:/ {on = 0} on && /^ *- / {sub(/^ *- */, ""); print}' "$1"; }
gather() {
	local name=$1 dest=$2 glob top_dir rel
	spec_list "$release/packages/$name/spec" files | while read -r glob; do
		top_dir=${glob%%/*}
		rel=${glob#*/}
		if [ -d "$release/blobs/$top_dir" ]; then
			# shellcheck disable=SC2086 # the glob is meant to expand
			mkdir -p "$dest/$top_dir" && cp $release/blobs/$top_dir/$rel "$dest/$top_dir/"
		elif [ "$top_dir" = nfsv3driver ]; then
			rel=${rel%%/\*\**}
			mkdir -p "$dest/nfsv3driver/$(dirname "$rel")" && cp -r "$top/$rel" "$dest/nfsv3driver/$(dirname "$rel")/"
		else
			echo "release: $name: no source for $glob" >&2
			return 1
		fi
	done
}

# The fingerprint of what compiling NAME takes (spec, packaging, every file
# gathered, and its dependencies' fingerprints), as BOSH keys its compiled
# packages: a compiled package is kept under it in the cache and reused while
# nothing of that changes (NFSV3_RELEASE_REBUILD=1 compiles anyway).
fingerprint() {
	local name=$1 tmp dep
	tmp=$(mktemp -d)
	gather "$name" "$tmp" || { rm -rf "$tmp"; return 1; }
	{
		sha256sum "$release/packages/$name/spec" "$release/packages/$name/packaging" | cut -d' ' -f1
		(cd "$tmp" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
		for dep in $(spec_list "$release/packages/$name/spec" dependencies); do fingerprint "$dep"; done
	} | sha256sum | cut -c1-16
	rm -rf "$tmp"
}

# package NAME CHECK...: compile release/packages/NAME in a fresh root with
# its dependencies' compiled packages in /var/vcap/packages, then run each
# CHECK there. The compiled package is kept in the cache by fingerprint for
# the packages that depend on it.
package() {
	local name=$1 root start fp dep tar
	shift
	fp=$(fingerprint "$name") || { no "$name: its spec's files could not be gathered"; return; }
	tar=$cache/compiled/$name-$fp.tar
	root=$(mktemp -d /var/tmp/nfsv3driver-root.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	tar -C "$root" -xf "$cache/bookworm-buildd.tar"
	mkdir -p "$root/var/vcap/data/compile/$name" "$root/var/vcap/packages/$name" "$cache/compiled"
	for dep in $(spec_list "$release/packages/$name/spec" dependencies); do
		dep=$cache/compiled/$dep-$(fingerprint "$dep").tar
		[ -s "$dep" ] || { no "$name: its dependency $(basename "$dep") was not compiled"; rm -rf "$root"; return; }
		dep=$(basename "$dep" .tar)
		mkdir -p "$root/var/vcap/packages/${dep%-*}"
		tar -C "$root/var/vcap/packages/${dep%-*}" -xf "$cache/compiled/$dep.tar"
	done
	gather "$name" "$root/var/vcap/data/compile/$name"
	cp "$release/packages/$name/packaging" "$root/var/vcap/data/compile/$name/packaging"
	# What every stemcell has and the buildd variant lacks: netbase's
	# /etc/services (rpcbind looks its port up by name).
	[ -s "$root/etc/services" ] || cp /etc/services "$root/etc/services"
	cp "$(dirname "$0")/serve-check.sh" "$root/serve-check.sh"
	start=$SECONDS
	if [ -s "$tar" ] && [ -z "${NFSV3_RELEASE_REBUILD:-}" ]; then
		tar -C "$root/var/vcap/packages/$name" -xf "$tar"
		ok "$name: compiled before from the same inputs (fingerprint $fp, $tar; NFSV3_RELEASE_REBUILD=1 compiles again)"
	elif unshare -n -m --propagation private chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		"BOSH_COMPILE_TARGET=/var/vcap/data/compile/$name" "BOSH_INSTALL_TARGET=/var/vcap/packages/$name" \
		/bin/bash -c "cd /var/vcap/data/compile/$name && bash -e ./packaging" >"$root.log" 2>&1; then
		ok "$name compiled in a fresh Debian 12 root without network ($((SECONDS - start)) s)"
		# This package's older builds only: a fingerprint is 16 hex digits, so
		# nfsv3driver's cannot take nfsv3driver-libs' with it.
		rm -f "$cache/compiled/$name"-????????????????.tar
		tar -C "$root/var/vcap/packages/$name" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
	else
		no "$name packaging failed; last lines of $root.log:"
		tail -15 "$root.log"
	fi
	for check in "$@"; do
		if unshare -n -m --propagation private --mount-proc="$root/proc" chroot "$root" /bin/bash -c "$check" >>"$root.log" 2>&1; then
			ok "$name: $check"
		else
			no "$name: $check"
			tail -5 "$root.log"
		fi
	done
	rm -rf "$root" "$root.log"
}

p=/var/vcap/packages/nfs-rpc
package nfs-rpc \
	"$p/sbin/rpc.statd --version" \
	"test -x $p/sbin/sm-notify && test -s $p/etc/netconfig" \
	"! ldd $p/sbin/rpcbind $p/sbin/rpc.statd $p/sbin/sm-notify | grep -v -e linux-vdso -e libc.so -e ld-linux -e libresolv -e '^/' | grep ." \
	"grep -q $p/sbin/sm-notify $p/sbin/rpc.statd && grep -q $p/etc/netconfig $p/sbin/rpcbind" \
	"bash /serve-check.sh"

l=/var/vcap/packages/nfsv3driver-libs
package nfsv3driver-libs \
	"PKG_CONFIG_LIBDIR=$l/lib/pkgconfig $l/bin/pkgconf --static --libs libuv jansson mount openssl libcap-ng ldap" \
	"! find $l -name '*.so*' | grep ."

d=/var/vcap/packages/nfsv3driver
package nfsv3driver \
	"$d/bin/nfsv3driver --version" \
	"test -x $d/libexec/nfsv3driver/nfsv3driver-mount && test -x $d/libexec/nfsv3driver/nfsv3driver-idmapfs" \
	"test -x $d/bin/nfsv3driver-smoke && $d/bin/nfsv3driver smoke --help | grep -q '^usage: nfsv3driver-smoke '" \
	"! ldd $d/bin/nfsv3driver $d/bin/nfsv3driver-smoke $d/libexec/nfsv3driver/* | grep -e libuv -e jansson -e libssl -e libldap -e libmount -e cap-ng -e fuse"

echo "release: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
