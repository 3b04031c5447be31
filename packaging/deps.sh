#!/bin/sh
# Install the Debian packages a build, a test run or one test stage needs,
# only when missing.
# usage: deps.sh SET...
#   build   compiling the daemon and the helpers (the Makefile's `deps`)
#   test    build, plus everything `make test` and its stages use
#   docker  the docker stage: the engine and the busybox image's source
#   vm      the VM stage's host tools (qemu and its firmware, initramfs tools)
#   bench   the idmapfs benchmark's tools
#   ldap    a private slapd for test_ldap and bench-ldap (installed without
#           debconf questions; the system slapd it may start is never used)
# Exit 0 when everything is there (now), non-zero with the reason on stderr
# otherwise: callers that can do without (test stages) skip on that.
set -eu
build="gcc make pkg-config libc6-dev libuv1-dev libhttp-parser-dev libjansson-dev libssl-dev
       libmount-dev libcap-ng-dev libldap-dev"
docker="docker.io containerd runc iptables tini busybox-static"
vm="qemu-system-x86 seabios cpio kmod dpkg apt coreutils gzip xz-utils util-linux gcc"
bench="fio bindfs python3"
ldap="slapd ldap-utils openssl"
test="$build check curl openssl golang-go ruby shellcheck debootstrap util-linux procps psmisc valgrind libclang-rt-14-dev clang python3-prometheus-client
      $docker $vm $ldap"
[ $# -gt 0 ] || { echo "usage: $0 build|test|docker|vm|bench|ldap..." >&2; exit 2; }
want=
for set in "$@"; do
	case $set in
	build) want="$want $build" ;;
	test) want="$want $test" ;;
	docker) want="$want $docker" ;;
	vm) want="$want $vm" ;;
	bench) want="$want $bench" ;;
	ldap) want="$want $ldap" ;;
	*) echo "usage: $0 build|test|docker|vm|bench|ldap..." >&2; exit 2 ;;
	esac
done
missing=
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
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
# shellcheck disable=SC2086
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >/dev/null; then
	echo "deps.sh: apt-get could not install:$missing" >&2
	exit 1
fi
