#!/bin/bash
# The "sanitizers" stage of `make test`: the daemon, its helpers and the
# suites rebuilt with AddressSanitizer and UndefinedBehaviorSanitizer (into
# build-asan/) and the unit, integration, helper and idmapfs suites run
# against them; then the unit suites under valgrind's memcheck. Any report
# fails the stage.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
asan=$top/build-asan
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suites="test_options test_registry test_state test_http test_metrics test_mountinfo test_kernel test_supervisor test_lifecycle test_reconcile test_integration test_mapped test_ldap test_faults test_mounter test_idmapfs"
passed=0 failed=0 skipped=0

if ! make -s BUILD="$asan" CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
	"$asan/bin/nfsv3driver" "$asan/libexec/nfsv3driver/nfsv3driver-mount" "$asan/libexec/nfsv3driver/nfsv3driver-idmapfs" \
	$(for s in $suites; do echo "$asan/test/$s"; done) >"$asan.log" 2>&1; then
	tail -20 "$asan.log"
	echo "sanitizers: build failed"
	exit 1
fi
for s in $suites; do
	NFSV3_BUILD=$asan "$asan/test/$s" >"$asan/$s.log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		passed=$((passed + 1))
	elif [ $rc = 77 ]; then
		skipped=$((skipped + 1))
		echo "--- $s skipped: $(tail -1 "$asan/$s.log")"
	else
		failed=$((failed + 1))
		echo "--- $s with ASan/UBSan failed:"
		grep -E "ERROR|runtime error|Checks|:F:|:E:" "$asan/$s.log" | head -20
	fi
done
# Check forks every test by default; memcheck must see the tests themselves.
for s in test_options test_registry test_state test_http test_metrics test_mountinfo; do
	if CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		"$top/build/test/$s" >"$asan/$s.valgrind.log" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "--- $s under valgrind failed:"
		tail -20 "$asan/$s.valgrind.log"
	fi
done
echo "sanitizers: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
