#!/bin/bash
# Fetches the Debian source packages the nfs-rpc package builds from
# (libtirpc, rpcbind, nfs-utils: orig tarball, debian/ tarball, .dsc) with
# `apt-get source --download-only`, through a private apt configuration
# holding the deb-src line (the machine's own sources are not touched), into
# release/blobs/nfs-rpc/, and writes config/blobs.yml from what it got.
# The blobs are not in git (.gitignore); `bosh add-blob`/`bosh upload-blobs`
# take them from here for a final release.
# Each package comes from the suite whose source the archive serves whole
# (bookworm's libtirpc and rpcbind tarballs are gone from it; trixie's are
# there and build on bookworm and jammy alike).
#   release/scripts/fetch-blobs.sh
set -euo pipefail
release=$(cd "$(dirname "$0")/.." && pwd)
packages=(libtirpc/trixie rpcbind/trixie nfs-utils/bookworm)
out=$release/blobs/nfs-rpc
apt=$(mktemp -d)
trap 'rm -rf "$apt"' EXIT

rm -rf "$out"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$out"
chmod 0755 "$apt" "$apt/lists" "$apt/lists/partial"; chown _apt "$apt/lists/partial" "$out" 2>/dev/null || true
cat >"$apt/sources.list" <<SOURCES
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=-" -o "Dir::State::Lists=$apt/lists"
	-o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0")
apt-get "${opts[@]}" update -qq
(cd "$out" && apt-get "${opts[@]}" source --download-only -qq "${packages[@]}")

# One line per blob: what bosh add-blob would record (the object id comes
# with bosh upload-blobs).
{
	for f in "$out"/*; do
		[ -f "$f" ] || continue
		echo "nfs-rpc/$(basename "$f"):"
		echo "  size: $(stat -c %s "$f")"
		echo "  sha: sha256:$(sha256sum "$f" | cut -d' ' -f1)"
	done
} >"$release/config/blobs.yml"
echo "fetch-blobs: $(find "$out" -type f | wc -l) files in $out; config/blobs.yml written"
