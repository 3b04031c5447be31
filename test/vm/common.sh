# Sourced by build.sh, boot.sh and run.sh: the cache location and the host
# tools the VM test bed needs, installed from Debian only when missing.

# The cache: NFSV3_VM_CACHE, else /var/cache/nfsv3driver-vm for root, else
# the user's cache directory.
if [ -n "${NFSV3_VM_CACHE:-}" ]; then
	vm_cache=$NFSV3_VM_CACHE
elif [ "$(id -u)" = 0 ]; then
	vm_cache=/var/cache/nfsv3driver-vm
else
	vm_cache=${XDG_CACHE_HOME:-$HOME/.cache}/nfsv3driver-vm
fi
vm_prog=${vm_prog:-vm}

vm_die() { echo "$vm_prog: $*" >&2; exit 1; }
vm_log() { echo "$vm_prog: $*" >&2; }

# Host packages, by the command that proves each is there.
vm_host_tools="qemu-system-x86_64:qemu-system-x86 cpio:cpio depmod:kmod modprobe:kmod
	dpkg-deb:dpkg apt-get:apt timeout:coreutils gzip:gzip flock:util-linux cc:gcc"

# Install missing host tools. Exit 77 (with the reason) when they are missing
# and cannot be installed: then this machine cannot run the VM at all.
vm_need_host_tools() {
	local missing= t cmd pkg
	for t in $vm_host_tools; do
		cmd=${t%%:*} pkg=${t#*:}
		PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 && continue
		case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
	done
	# -kernel boots need the firmware blobs too (seabios, qemu-system-data).
	if [ -z "$missing" ] && ! [ -e /usr/share/seabios/bios-256k.bin ]; then
		missing=" seabios"
	fi
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "$vm_prog: cannot run the NFS VM: missing Debian packages:$missing (run as root to have them installed)" >&2
		exit 77
	fi
	vm_log "installing host packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >&2; then
		echo "$vm_prog: cannot run the NFS VM: apt-get could not install:$missing" >&2
		exit 77
	fi
	export PATH=$PATH:/usr/sbin:/sbin
}
