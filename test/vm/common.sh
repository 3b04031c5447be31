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

# Install missing host tools (packaging/deps.sh vm). Exit 77 (with the
# reason) when they are missing and cannot be installed: then this machine
# cannot run the VM at all. Checked once per run: run.sh and build.sh (which
# boot.sh runs) both call it, and the later call finds NFSV3_VM_HOST_TOOLS set.
vm_need_host_tools() {
	[ -n "${NFSV3_VM_HOST_TOOLS:-}" ] && return 0
	if ! "$(dirname "${BASH_SOURCE[0]}")/../../packaging/deps.sh" vm; then
		echo "$vm_prog: cannot run the NFS VM: its host packages are missing and cannot be installed (see above)" >&2
		exit 77
	fi
	export PATH=$PATH:/usr/sbin:/sbin NFSV3_VM_HOST_TOOLS=1
}
