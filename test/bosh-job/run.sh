#!/bin/bash
# Scripted stage: the BOSH job.  1. the template tests (Ruby ERB, every
# property, its default, upstream's formats, the bad values); 2. the drain's
# order against a real daemon and a fake rep: new mounts refused at once,
# nothing unmounted while the rep runs, everything unmounted after it exits
# (or after drain_rep_timeout).  Runs in a private mount namespace with a
# tmpfs on /var/vcap, so the job's fixed paths touch nothing of the host.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${NFSV3_BUILD:-$top/build}

command -v ruby >/dev/null || { echo "bosh-job: ruby is missing (packaging/deps.sh test)"; exit 77; }
ruby "$here/test_templates.rb" || exit 1

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v curl >/dev/null; then
	echo "bosh-job: the drain test needs root, unshare and curl: skipped"
	exit 77
fi
[ -x "$build/bin/nfsv3driver" ] || { echo "bosh-job: $build/bin/nfsv3driver is not built"; exit 1; }
exec unshare -m --propagation private "$here/drain-test.sh" "$build"
