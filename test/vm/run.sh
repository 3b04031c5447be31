#!/bin/bash
# `make test` stage: boot the NFS test VM once with every test/vm/cases/*.sh
# on Debian's kernel, then once more with every test/vm/cases-passthrough/*.sh
# on a kernel that has FUSE passthrough (bookworm-backports'), and print one
# result line, "vm: N passed, N failed". Exit 0 when every case of both
# boots passed, 1 otherwise, 77 only when this machine cannot run qemu (and
# says why).
# env: NFSV3_VM_PT_SUITE   the second boot's kernel suite (default
#                          bookworm-backports; "none": no second boot)
#      NFSV3_VM_PT_KERNEL  pin the second boot's kernel package in that suite
# See boot.sh and build.sh for the other environment variables.
set -uo pipefail
vm_prog=vm
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
vm_need_host_tools

cases=("$here"/cases/*.sh)
[ -e "${cases[0]}" ] || { echo "vm: no cases in $here/cases" >&2; exit 1; }
pt_suite=${NFSV3_VM_PT_SUITE-bookworm-backports}
pt_cases=()
if [ -n "$pt_suite" ] && [ "$pt_suite" != none ]; then
	pt_cases=("$here"/cases-passthrough/*.sh)
	[ -e "${pt_cases[0]}" ] || { echo "vm: no cases in $here/cases-passthrough" >&2; exit 1; }
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Host tools the cases may use, when the host has them (packaging/deps.sh
# test installs curl): curl talks to the daemon's HTTP listeners.
extra=()
for f in /usr/bin/curl; do
	[ -x "$f" ] && extra+=(-f "$f")
done

passed=0 failed=0 ok=1 took=() start=$SECONDS
# boot ENV... -- CASE...: one boot; its counts added to the totals.
boot() {
	local n vars=() rc t0=$SECONDS p f missing kernel
	while [ "$1" != -- ]; do vars+=("$1"); shift; done
	shift
	n=$#
	env "${vars[@]}" "$here/boot.sh" "${extra[@]}" "$@" | tee "$out"
	rc=${PIPESTATUS[0]}
	[ "$rc" = 77 ] && exit 77
	p=$(grep -ac '^vm-case [^ ]*: pass' "$out")
	f=$(grep -ac '^vm-case [^ ]*: fail' "$out")
	missing=$((n - p - f))
	if [ "$missing" -gt 0 ]; then
		echo "vm: $missing case(s) never reported (the guest stopped early; see the console above)"
		f=$((f + missing))
	fi
	kernel=$(sed -n 's/^vm-init \[[0-9.]*\]: init started (kernel \(.*\))$/\1/p' "$out" | head -n1)
	took+=("${kernel:-no kernel} $((SECONDS - t0)) s")
	passed=$((passed + p)) failed=$((failed + f))
	[ "$rc" = 0 ] && [ "$f" = 0 ] && [ "$p" -gt 0 ] || ok=
}
boot -- "${cases[@]}"
if [ ${#pt_cases[@]} -gt 0 ]; then
	# An NFSV3_VM_LOG given for the stage: the second console beside it.
	pt_log=()
	[ -n "${NFSV3_VM_LOG:-}" ] && pt_log=("NFSV3_VM_LOG=${NFSV3_VM_LOG%.log}-$pt_suite.log")
	boot NFSV3_VM_KERNEL_SUITE="$pt_suite" NFSV3_VM_KERNEL="${NFSV3_VM_PT_KERNEL:-}" \
		NFSV3_VM_NEED_PASSTHROUGH=1 "${pt_log[@]}" -- "${pt_cases[@]}"
else
	echo "vm: no FUSE passthrough boot (NFSV3_VM_PT_SUITE=$pt_suite)"
fi
echo "vm: stage took $((SECONDS - start)) s ($(IFS=,; echo "${took[*]}" | sed 's/,/, /g'))"
echo "vm: $passed passed, $failed failed"
[ -n "$ok" ]
