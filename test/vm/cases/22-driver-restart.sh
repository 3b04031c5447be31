# Issue case 7: the driver killed with SIGKILL while volumes are mounted and
# restarted: state reconciled (both adopted, the shared kernel mount too),
# Unmount works, nothing leaked.
. /vm/lib.sh
driver_start
for v in r1 r2; do
	ok Create "{\"Name\":\"$v\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\"}}" >/dev/null
	ok Mount "{\"Name\":\"$v\"}" >/dev/null
done
[ "$(driver_mounts)" = 3 ] || fail "expected 2 binds and 1 kernel mount, have $(driver_mounts)"
kill -9 "$DRIVER_PID"
wait "$DRIVER_PID" 2>/dev/null
driver_start
[ "$(grep -c reconcile.adopted "$VM_SCRATCH/driver.log")" = 2 ] || fail "not adopted: $(grep reconcile "$VM_SCRATCH/driver.log")"
l=$(ok List '{}')
case $l in *'"r1"'*'"r2"'*|*'"r2"'*'"r1"'*) ;; *) fail "List: $l" ;; esac
ok Unmount '{"Name":"r1"}' >/dev/null
[ "$(kernel_mounts)" = 1 ] || fail "the kernel mount went while r2 uses it"
ok Unmount '{"Name":"r2"}' >/dev/null
wait_for 10 no_driver_mounts ||
	fail "leaked: $(driver_mounts_left)"
exit 0
