#!/bin/sh
# Install the Debian packages a build (or a test run) needs, only when missing.
# usage: deps.sh build|test
set -eu
build="gcc make pkg-config libc6-dev libuv1-dev libhttp-parser-dev libjansson-dev
       libmount-dev libcap-ng-dev libfuse3-dev fuse3"
test="check curl util-linux procps psmisc docker.io containerd runc iptables tini
      busybox-static valgrind libclang-rt-14-dev clang qemu-system-x86 cpio kmod
      seabios"
case "${1:-}" in
build) want=$build ;;
test) want="$build $test" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing; run as root or install them" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
