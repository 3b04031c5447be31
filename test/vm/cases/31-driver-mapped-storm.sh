# A start storm of mapped bindings over NFSv3: 100 Mounts of uid 1234
# bindings at once with --max-parallel 4 and a 2 s deadline. idmapfs starts
# wait for a slot as helpers do, each deadline from its own launch, so every
# Mount succeeds (an idmapfs start takes a few hundred ms here; when all 100
# were launched at once, each took longer than the deadline and was killed
# with its mount left behind). Each serves as the bound uid, List agrees
# with the mount table, and 100 Unmounts at once leave no mount and no
# idmapfs behind.
. /vm/lib.sh
N=100
HELPER_TIMEOUT=2 driver_start --max-parallel 4
mkdir -p /srv/export/storm && chown 1234:1234 /srv/export/storm
opts='{"source":"nfs://127.0.0.1/srv/export/storm","uid":"1234","gid":"1234","version":"3"}'

# idmapfs servers of ours (not their sentries, which share the command line).
idmapfs_servers() {
	_n=0
	for _p in /proc/[0-9]*; do
		case $(tr '\0' ' ' <"$_p/cmdline" 2>/dev/null) in
		*nfsv3driver-idmapfs\ "$DRIVER_ROOT"\ *) ;;
		*) continue ;;
		esac
		case $(cat "$_p/comm" 2>/dev/null) in
		nfsv3driver-idm*) _n=$((_n + 1)) ;;
		esac
	done
	echo "$_n"
}

out=$(vm-storm "$DRIVER_SOCK" create $N s "$opts") || fail "Create: $out"
out=$(vm-storm "$DRIVER_SOCK" mount $N s) || fail "Mount storm: $out"
note "$out"
# N idmapfs mounts and the one kernel mount they share.
[ "$(driver_mounts)" = $((N + 1)) ] || fail "$(driver_mounts) mounts under the root, expected $((N + 1)): $(driver_mounts_left)"
[ "$(kernel_mounts)" = 1 ] || fail "$(kernel_mounts) kernel mounts, expected 1"
servers=$(idmapfs_servers)
[ "$servers" = $N ] || fail "$servers idmapfs servers for $N mapped Mounts"
listed=$(call List '{}' | grep -o '"Mountpoint":"/[^"]*"' | wc -l)
[ "$listed" = $N ] || fail "List shows $listed mounted volumes, expected $N"
# The first and the last served as the bound uid.
for v in s000 s099; do
	vm-runas 2000 2000 sh -c "echo $v >$DRIVER_ROOT/$v/$v" || fail "write through $v as the app"
	[ "$(stat -c %u:%g /srv/export/storm/$v)" = 1234:1234 ] || fail "$v's file on the server: $(stat -c %u:%g /srv/export/storm/$v)"
done

out=$(vm-storm "$DRIVER_SOCK" unmount $N s) || fail "Unmount storm: $out"
note "$out"
wait_for 10 no_driver_mounts || fail "left mounted: $(driver_mounts_left)"
for _ in $(seq 100); do [ "$(idmapfs_servers)" = 0 ] && break; sleep 0.1; done
[ "$(idmapfs_servers)" = 0 ] || fail "$(idmapfs_servers) idmapfs still running after Unmount"
out=$(vm-storm "$DRIVER_SOCK" remove $N s) || fail "Remove: $out"
listed=$(call List '{}' | grep -o '"Name"' | wc -l)
[ "$listed" = 0 ] || fail "List still shows $listed volumes"
exit 0
