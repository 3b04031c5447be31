#!/bin/bash
# Puts this repository's committed tree (HEAD, as `git archive` gives it) at
# release/src/nfsv3driver/, where the nfsv3driver package's spec takes its
# files from; run it before `bosh create-release`. A copy, not a symlink to
# the repository (which holds release/ itself: a loop for every tool that
# walks the tree). release/src/ is not in git.
#   release/scripts/sync-src.sh
set -euo pipefail
release=$(cd "$(dirname "$0")/.." && pwd)
top=$(cd "$release/.." && pwd)
out=$release/src/nfsv3driver
rm -rf "$out"
mkdir -p "$out"
git -C "$top" archive --format=tar HEAD Makefile driver mounter tools include packaging test/test.mk | tar -x -C "$out"
echo "release/src/nfsv3driver: $(git -C "$top" rev-parse --short HEAD)"
