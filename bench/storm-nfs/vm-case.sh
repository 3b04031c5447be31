# Benchmark (run by bench/storm-nfs/run.sh inside the NFS test VM, not a
# test): BENCH_COUNT mapped bindings (uid 1234, NFSv3) mounted at once, with
# the daemon's production defaults (--max-parallel 16, --helper-timeout 30).
# Prints "bench ..." lines: the Mount and Unmount storms (errors, latency),
# the daemon's peak RSS, and what the idmapfs processes cost once all are
# serving (every process of theirs, sentries included: PSS summed, so that
# shared pages count once; the largest server's RSS).
. /vm/lib.sh
N=${BENCH_COUNT:-250}
HELPER_TIMEOUT=30 driver_start
mkdir -p /srv/export/storm && chown 1234:1234 /srv/export/storm
opts='{"source":"nfs://127.0.0.1/srv/export/storm","uid":"1234","gid":"1234","version":"3"}'
vm-storm "$DRIVER_SOCK" create "$N" s "$opts" >/dev/null || fail "Create failed"
echo "bench daemon-rss-before-kib $(awk '/VmRSS/ {print $2}' /proc/$DRIVER_PID/status)"
out=$(vm-storm "$DRIVER_SOCK" mount "$N" s)
echo "bench mount $out"
echo "bench mounted $(driver_mounts) mounts-under-root (expected $((N + 1)))"
pss=0 servers=0 procs=0 max_rss=0
for p in /proc/[0-9]*; do
	case $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) in
	*nfsv3driver-idmapfs\ "$DRIVER_ROOT"\ *) ;;
	*) continue ;;
	esac
	procs=$((procs + 1))
	pss=$((pss + $(awk '/^Pss:/ {print $2}' "$p/smaps_rollup" 2>/dev/null || echo 0)))
	if [ "$(cat "$p/comm")" = nfsv3driver-idm ]; then
		servers=$((servers + 1))
		rss=$(awk '/VmRSS/ {print $2}' "$p/status")
		[ "$rss" -gt "$max_rss" ] && max_rss=$rss
	fi
done
echo "bench idmapfs servers=$servers processes=$procs pss-total-kib=$pss max-server-rss-kib=$max_rss"
echo "bench guest-memory $(awk '/MemTotal|MemAvailable/ {printf "%s=%s ", $1, $2}' /proc/meminfo)"
out=$(vm-storm "$DRIVER_SOCK" unmount "$N" s)
echo "bench unmount $out"
wait_for 20 no_driver_mounts || echo "bench left-mounted $(driver_mounts)"
echo "bench daemon-peak-rss-kib $(awk '/VmHWM/ {print $2}' /proc/$DRIVER_PID/status) now-kib $(awk '/VmRSS/ {print $2}' /proc/$DRIVER_PID/status)"
vm-storm "$DRIVER_SOCK" remove "$N" s >/dev/null
exit 0
