#!/bin/bash
# `make test` stage: boot the NFS test VM once with every test/vm/cases/*.sh
# and print one result line, "vm: N passed, N failed". Exit 0 when every case
# passed, 1 otherwise, 77 only when this machine cannot run qemu (and says why).
# See boot.sh and build.sh for the environment variables.
set -uo pipefail
vm_prog=vm
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
vm_need_host_tools

cases=("$here"/cases/*.sh)
[ -e "${cases[0]}" ] || { echo "vm: no cases in $here/cases" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Host tools the cases may use, when the host has them (packaging/deps.sh
# test installs curl): curl talks to the daemon's HTTP listeners.
extra=()
for f in /usr/bin/curl; do
	[ -x "$f" ] && extra+=(-f "$f")
done

start=$SECONDS
"$here/boot.sh" "${extra[@]}" "${cases[@]}" | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" = 77 ] && exit 77

passed=$(grep -ac '^vm-case [^ ]*: pass' "$out")
failed=$(grep -ac '^vm-case [^ ]*: fail' "$out")
missing=$((${#cases[@]} - passed - failed))
if [ "$missing" -gt 0 ]; then
	echo "vm: $missing case(s) never reported (the guest stopped early; see the console above)"
	failed=$((failed + missing))
fi
echo "vm: stage took $((SECONDS - start)) s"
echo "vm: $passed passed, $failed failed"
[ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
