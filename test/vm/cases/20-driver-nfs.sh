# The driver's protocol over real NFSv3 (issue cases 1, 2, 3, 4, 6, 9):
# write and read back as the app uid, readonly, two volumes sharing one
# kernel mount, a denied export, lazy unmount with a file held open, and
# nfs_options against the operator's allowlist.
. /vm/lib.sh
driver_start --allowed-nfs-options nolock,actimeo,lookupcache
SRC='"source":"nfs://127.0.0.1/srv/export"'
mkdir -p /srv/export/c1 && chown 2000:2000 /srv/export/c1

# 1: Create + Mount; write and read back as the app uid; on the server's export.
ok Create "{\"Name\":\"v1\",\"Opts\":{$SRC}}" >/dev/null
MP1=$(mountpoint_of "$(ok Mount '{"Name":"v1"}')")
[ "$MP1" = "$DRIVER_ROOT/v1" ] || fail "case 1: Mountpoint $MP1"
out=$(vm-runas 2000 2000 sh -c "echo hello >$MP1/c1/f && cat $MP1/c1/f") || fail "case 1: write as uid 2000: $out"
[ "$out" = hello ] || fail "case 1: read back \"$out\""
[ "$(cat /srv/export/c1/f)" = hello ] || fail "case 1: not on the export"
[ "$(stat -c %u:%g /srv/export/c1/f)" = 2000:2000 ] || fail "case 1: owner on the server $(stat -c %u:%g /srv/export/c1/f)"
case $(mount_opts "$MP1") in *nosuid*nodev*|*nodev*nosuid*) ;; *) fail "case 1: bind without nosuid,nodev: $(mount_opts "$MP1")" ;; esac

# 3: a second volume on the export shares the kernel mount.
ok Create "{\"Name\":\"v2\",\"Opts\":{$SRC}}" >/dev/null
MP2=$(mountpoint_of "$(ok Mount '{"Name":"v2"}')")
[ "$(cat "$MP2/c1/f")" = hello ] || fail "case 3: v2 does not see v1's file"
[ "$(kernel_mounts)" = 1 ] || fail "case 3: $(kernel_mounts) kernel mounts for one export"
kopts=$(driver_mount_list .kernel | cut -d' ' -f4)
note "kernel mount options: $kopts"
# No version in the binding: negotiated, the newest this server offers.
case ,$kopts, in *,vers=4.2,*) ;; *) fail "case 3: kernel options $kopts (expected vers=4.2, negotiated)" ;; esac
case ,$kopts, in *,hard,*proto=tcp,*) ;; *) fail "case 3: kernel options $kopts (expected hard, proto=tcp)" ;; esac

# 2: readonly: the kernel refuses writes with EROFS.
ok Create "{\"Name\":\"ro1\",\"Opts\":{$SRC,\"readonly\":\"true\"}}" >/dev/null
MPR=$(mountpoint_of "$(ok Mount '{"Name":"ro1"}')")
err=$(vm-runas 2000 2000 sh -c "echo x >$MPR/c1/g" 2>&1) && fail "case 2: write to a readonly volume succeeded"
case $err in *"Read-only file system"*) ;; *) fail "case 2: $err" ;; esac
[ "$(cat "$MPR/c1/f")" = hello ] || fail "case 2: cannot read"

# 9: allowlisted nfs_options reach /proc/mounts; others are refused (volman: at Mount).
# Version 3: nolock is about NLM, which NFSv4 has no use for (nor shows).
ok Create "{\"Name\":\"o1\",\"Opts\":{$SRC,\"version\":\"3\",\"nfs_options\":\"nolock,actimeo=7\"}}" >/dev/null
before=$(kernel_mounts)
MPO=$(mountpoint_of "$(ok Mount '{"Name":"o1"}')")
[ "$(kernel_mounts)" = $((before + 1)) ] || fail "case 9: other options must make another kernel mount"
o=$(mount_opts "$MPO")
case $o in *nolock*) ;; *) fail "case 9: nolock not in $o" ;; esac
case $o in *acregmin=7*) ;; *) fail "case 9: actimeo=7 not in $o" ;; esac
ok Create "{\"Name\":\"o2\",\"Opts\":{$SRC,\"nfs_options\":\"wsize=4096\"}}" >/dev/null
a=$(call Mount '{"Name":"o2"}')
case $a in *SafeDescription*wsize*"not in the operator"*) ;; *) fail "case 9: $a" ;; esac

# 4: an export that does not allow us.
ok Create '{"Name":"d1","Opts":{"source":"nfs://127.0.0.1/srv/denied"}}' >/dev/null
a=$(call Mount '{"Name":"d1"}')
case $a in *SafeDescription*"access denied by server"*) note "case 4: $a" ;; *) fail "case 4: $a" ;; esac

# 6: lazy unmount with a file held open: Unmount succeeds, gone within 5 s.
bg holder sh -c "exec 3<$MP2/c1/f; sleep 120"
sleep 0.5
ok Unmount '{"Name":"v2"}' >/dev/null
wait_for 5 not_mounted "$MP2" || fail "case 6: $MP2 still mounted"
kill "$BG_PID"

for v in v1 ro1 o1; do ok Unmount "{\"Name\":\"$v\"}" >/dev/null; done
for v in v1 v2 ro1 o1 o2 d1; do ok Remove "{\"Name\":\"$v\"}" >/dev/null; done
wait_for 10 no_driver_mounts ||
	fail "mounts left: $(driver_mounts_left)"
exit 0
