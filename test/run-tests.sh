#!/bin/bash
# Run every Check suite given on the command line, then every scripted stage
# (test/*/run.sh: the Docker engine, the NFS VM). Each stage prints one
# result line; this prints the total as "N passed, N failed, N skipped".
# A suite or stage that exits 77 could not run on this machine and says why.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export NFSV3_BUILD=${NFSV3_BUILD:-$top/build}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
passed=0 failed=0 skipped=0 failures=()

# The suites bind and serve local directories under these; the helpers take
# local sources only from directories the operator listed.
"$top/packaging/local-sources.sh" /tmp /var/tmp

run_one() {
	local name=$1; shift
	local start=$SECONDS rc
	echo "=== $name"
	"$@"
	rc=$?
	case $rc in
	0) passed=$((passed + 1)); echo "=== $name: passed ($((SECONDS - start)) s)" ;;
	77) skipped=$((skipped + 1)); echo "=== $name: SKIPPED ($((SECONDS - start)) s)" ;;
	*) failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED, exit $rc ($((SECONDS - start)) s)" ;;
	esac
}

for t in "$@"; do
	run_one "$(basename "$t")" "$t"
done
for stage in "$top"/test/*/run.sh; do
	[ -x "$stage" ] || continue
	run_one "$(basename "$(dirname "$stage")")" "$stage"
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
