#!/bin/bash
# Scripted stage: the release's packaging scripts build from the release's
# own blobs with only a compiler.  Each runs in a fresh Debian 12 root
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
if [ ! -d "$release/blobs/nfs-rpc" ]; then
	"$release/scripts/fetch-blobs.sh" || skip "the Debian source packages could not be fetched"
fi
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

# package NAME CHECK...: compile release/packages/NAME in a fresh root.
package() {
	local name=$1 root start
	shift
	root=$(mktemp -d /var/tmp/nfsv3driver-root.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	tar -C "$root" -xf "$cache/bookworm-buildd.tar"
	mkdir -p "$root/var/vcap/data/compile/$name" "$root/var/vcap/packages/$name"
	cp -r "$release/blobs/$name" "$root/var/vcap/data/compile/$name/"
	cp "$release/packages/$name/packaging" "$root/var/vcap/data/compile/$name/packaging"
	# What every stemcell has and the buildd variant lacks: netbase's
	# /etc/services (rpcbind looks its port up by name).
	[ -s "$root/etc/services" ] || cp /etc/services "$root/etc/services"
	cp "$(dirname "$0")/serve-check.sh" "$root/serve-check.sh"
	start=$SECONDS
	if unshare -n -m --propagation private chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		"BOSH_COMPILE_TARGET=/var/vcap/data/compile/$name" "BOSH_INSTALL_TARGET=/var/vcap/packages/$name" \
		/bin/bash -c "cd /var/vcap/data/compile/$name && bash -e ./packaging" >"$root.log" 2>&1; then
		ok "$name compiled in a fresh Debian 12 root without network ($((SECONDS - start)) s)"
	else
		no "$name packaging failed; last lines of $root.log:"
		tail -15 "$root.log"
	fi
	for check in "$@"; do
		if unshare -n -m --propagation private --mount-proc="$root/proc" chroot "$root" /bin/bash -c "$check" >>"$root.log" 2>&1; then
			ok "$name: $check"
		else
			no "$name: $check"
		fi
	done
	rm -rf "$root"
}

p=/var/vcap/packages/nfs-rpc
package nfs-rpc \
	"$p/sbin/rpc.statd --version" \
	"test -x $p/sbin/sm-notify && test -s $p/etc/netconfig" \
	"! ldd $p/sbin/rpcbind $p/sbin/rpc.statd $p/sbin/sm-notify | grep -v -e linux-vdso -e libc.so -e ld-linux -e libresolv -e '^/' | grep ." \
	"grep -q $p/sbin/sm-notify $p/sbin/rpc.statd && grep -q $p/etc/netconfig $p/sbin/rpcbind" \
	"bash /serve-check.sh"

echo "release: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
