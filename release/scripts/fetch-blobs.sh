#!/bin/bash
# Fetches the Debian source packages the release's packages build from
# (orig tarball, debian/ tarball, .dsc) with `apt-get source --download-only`,
# through a private apt configuration holding the deb-src lines (the
# machine's own sources are not touched), into release/blobs/PACKAGE/, and
# writes config/blobs.yml from what it got:
#   nfs-rpc           libtirpc, rpcbind, nfs-utils
#   nfsv3driver-libs  pkgconf, http-parser, libuv1, jansson, libcap-ng,
#                     util-linux, openssl, openldap
# The blobs are not in git (.gitignore); `bosh add-blob`/`bosh upload-blobs`
# take them from here for a final release.
# Each package comes from the suite whose source the archive serves whole
# (bookworm's libtirpc and rpcbind tarballs are gone from it; trixie's are
# there and build on bookworm and jammy alike).
#   release/scripts/fetch-blobs.sh [PACKAGE...]     (default: all)
set -euo pipefail
release=$(cd "$(dirname "$0")/.." && pwd)
declare -A sources=(
	[nfs-rpc]="libtirpc/trixie rpcbind/trixie nfs-utils/bookworm"
	[nfsv3driver-libs]="pkgconf/bookworm http-parser/bookworm libuv1/bookworm jansson/bookworm libcap-ng/bookworm util-linux/bookworm openssl/bookworm openldap/bookworm"
)
[ $# -gt 0 ] || set -- nfs-rpc nfsv3driver-libs
apt=$(mktemp -d)
trap 'rm -rf "$apt"' EXIT

mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
chmod 0755 "$apt" "$apt/lists" "$apt/lists/partial"; chown _apt "$apt/lists/partial" 2>/dev/null || true
cat >"$apt/sources.list" <<SOURCES
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$apt/lists"
	-o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0")
apt-get "${opts[@]}" update -qq
for package in "$@"; do
	[ -n "${sources[$package]:-}" ] || { echo "fetch-blobs: no package $package (known: ${!sources[*]})" >&2; exit 2; }
	out=$release/blobs/$package
	rm -rf "$out.new"
	mkdir -p "$out.new"
	chown _apt "$out.new" 2>/dev/null || true
	# shellcheck disable=SC2086 # the list is words
	(cd "$out.new" && apt-get "${opts[@]}" source --download-only -qq ${sources[$package]})
	rm -rf "$out"
	mv "$out.new" "$out"
	echo "fetch-blobs: $(find "$out" -type f | wc -l) files in $out"
done

# One entry per blob: what bosh add-blob would record (the object id comes
# with bosh upload-blobs).
{
	for f in "$release"/blobs/*/*; do
		[ -f "$f" ] || continue
		echo "$(basename "$(dirname "$f")")/$(basename "$f"):"
		echo "  size: $(stat -c %s "$f")"
		echo "  sha: sha256:$(sha256sum "$f" | cut -d' ' -f1)"
	done
} >"$release/config/blobs.yml"
echo "fetch-blobs: config/blobs.yml written"
