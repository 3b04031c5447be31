# idmapfs with FUSE passthrough over real NFSv3 (Linux 6.9+: run.sh boots
# cases-passthrough/ on a kernel that has it). A uid 1234 binding, the app
# uid 2000:
# (a) idmapfs negotiated passthrough (its idmapfs-pt sentry, which makes
#     FUSE_DEV_IOC_BACKING_OPEN, runs beside it), and the data of 64 MiB
#     written and read back never passes through it: its CPU ticks over the
#     writes and over the reads are a tenth of
#     what the same I/O costs it with --no-idmapfs-passthrough, or less; the
#     data is right on the server and in what the app read, either way;
# (b) the app reads and rewrites 1234's 0600 file through the binding, where
#     the plain binding refuses it; what it creates is 1234:1234;
# (c) a write through a shared mapping reaches the server, and the server's
#     writes show in a mapping;
# (d) idmapfs SIGKILLed under a file the app holds open for writing: the
#     writes go on without an error, the dead mount is detached and nothing
#     new lands there, nothing hangs, the sentry goes, the written lines
#     reach the server as 1234 (by the kernel's writeback: no FLUSH reaches
#     a dead idmapfs), and a new Mount serves.
. /vm/lib.sh
MIB=64
PT_COMM=idmapfs-pt

# comm_of PID, ppid_of PID, ticks PID (user + system, all threads, in clock ticks).
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
ppid_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $2}'; }
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# idmapfs_pid VOLUME: the idmapfs serving VOLUME under our mount root (not
# its sentries, which share its command line).
idmapfs_pid() {
	for _p in $(pidof nfsv3driver-idmapfs); do
		case $(comm_of "$_p") in idmapfs-sentry|"$PT_COMM") continue ;; esac
		tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null | grep -q " $DRIVER_ROOT [^ ]* $1 1234 " && echo "$_p"
	done
}
# pt_sentry_of PID: the passthrough sentry idmapfs PID forked, if any.
pt_sentry_of() {
	for _p in $(pidof nfsv3driver-idmapfs); do
		[ "$(comm_of "$_p")" = "$PT_COMM" ] && [ "$(ppid_of "$_p")" = "$1" ] && echo "$_p"
	done
}
gone() { ! [ -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# mount_m: Mount volume m; its Mountpoint in $MA, its idmapfs in $PID.
mount_m() {
	MA=$(mountpoint_of "$(ok Mount '{"Name":"m"}')")
	PID=$(idmapfs_pid m)
	[ -n "$PID" ] || fail "no idmapfs serves m: $(pidof nfsv3driver-idmapfs)"
}
# app_copy SRC DEST: as the app, vm-io copies SRC into DEST in steps:
# idmapfs's CPU ticks over the opens in $OT, over the copy (1 MiB reads and
# writes) in $XT, over the closes in $CT (after a sync by root, so that no
# dirty page is left for the close's FLUSH to write back in idmapfs).
app_copy() {
	rm -f "$VM_SCRATCH/go" "$VM_SCRATCH/close"
	_t0=$(ticks "$PID")
	bg copy sh -c "{ until [ -e $VM_SCRATCH/go ]; do sleep 0.05; done; echo go
		until [ -e $VM_SCRATCH/close ]; do sleep 0.05; done; } | vm-runas 2000 2000 vm-io $1 $2"
	_c=$BG_PID
	copy_step opened
	_t1=$(ticks "$PID") _ms=$(now_ms)
	touch "$VM_SCRATCH/go"
	copy_step "copied $((MIB << 20))"
	_t2=$(ticks "$PID") COPY_MS=$(($(now_ms) - _ms))
	sync
	_t3=$(ticks "$PID")
	touch "$VM_SCRATCH/close"
	wait "$_c"
	copy_step closed
	OT=$((_t1 - _t0)) XT=$((_t2 - _t1)) CT=$(($(ticks "$PID") - _t3))
}
copy_step() {
	wait_for 30 sh -c "grep -qx '$1' $VM_SCRATCH/copy.log || ! kill -0 $_c"
	grep -qx "$1" "$VM_SCRATCH/copy.log" || fail "vm-io as the app, no \"$1\": $(tr "\n" " " <"$VM_SCRATCH/copy.log")"
}
# io FILE: $MIB MiB ($SRC) written to FILE through the binding and, the
# caches dropped, read back: idmapfs's ticks over the writes in $WT, the
# reads in $RT; the rest in $IO_NOTE. The data must be right in what the
# app read and on the server.
io() {
	app_copy "$SRC" "$1"
	WT=$XT IO_NOTE="writes $COPY_MS ms, opens $OT ticks, closes $CT"
	echo 3 >/proc/sys/vm/drop_caches
	app_copy "$1" "$BACK"
	RT=$XT IO_NOTE="$IO_NOTE; reads $COPY_MS ms, opens $OT ticks, closes $CT"
	_sum=$(md5sum <"$BACK")
	[ "${_sum%% *}" = "$SUM" ] || fail "read back through the binding: md5 ${_sum%% *}, the app wrote $SUM"
	rm "$BACK"
	_srv=/srv/export${1#"$MA"}
	_sum=$(md5sum <"$_srv")
	[ "${_sum%% *}" = "$SUM" ] || fail "on the server, $_srv: md5 ${_sum%% *}, the app wrote $SUM"
	[ "$(stat -c %u:%g "$_srv")" = 1234:1234 ] || fail "$_srv is $(stat -c %u:%g "$_srv") on the server"
}

SRC=$VM_SCRATCH/src BACK=$VM_SCRATCH/app/back
mkdir -p "$VM_SCRATCH/app" && chmod 0777 "$VM_SCRATCH/app"
dd if=/dev/urandom of="$SRC" bs=1M count=$MIB 2>/dev/null && chmod 0644 "$SRC" || fail "cannot make $MIB MiB of test data"
SUM=$(md5sum <"$SRC") SUM=${SUM%% *}
mkdir -p /srv/export/pt && chown 1234:1234 /srv/export/pt && chmod 0755 /srv/export/pt
driver_start
ok Create '{"Name":"m","Opts":{"source":"nfs://127.0.0.1/srv/export","uid":"1234","gid":"1234","version":"3"}}' >/dev/null
ok Create '{"Name":"p","Opts":{"source":"nfs://127.0.0.1/srv/export","version":"3"}}' >/dev/null
MP=$(mountpoint_of "$(ok Mount '{"Name":"p"}')")
mount_m

# (a) Negotiated: the sentry that makes FUSE_DEV_IOC_BACKING_OPEN runs only then.
SENTRY=$(pt_sentry_of "$PID")
[ -n "$SENTRY" ] || fail "no $PT_COMM sentry beside idmapfs $PID: passthrough not negotiated (kernel $(uname -r); FUSE passthrough needs 6.9+)"
note "kernel $(uname -r): idmapfs $PID, passthrough sentry $SENTRY"
io "$MA/pt/big"
WT_ON=$WT RT_ON=$RT
note "passthrough: $MIB MiB cost idmapfs $WT_ON ticks to write, $RT_ON to read back ($IO_NOTE)"

# (b) Identity through passthrough.
printf 'secret of 1234\n' >/srv/export/pt/secret && chown 1234:1234 /srv/export/pt/secret && chmod 0600 /srv/export/pt/secret
out=$(vm-runas 2000 2000 cat "$MA/pt/secret" 2>&1)
[ "$out" = "secret of 1234" ] || fail "the app reading 1234's 0600 file through the 1234 binding: $out"
out=$(vm-runas 2000 2000 sh -c "echo rewritten by the app >$MA/pt/secret" 2>&1) ||
	fail "the app rewriting 1234's 0600 file through the binding: $out"
[ "$(cat /srv/export/pt/secret)" = "rewritten by the app" ] || fail "on the server, secret holds: $(cat /srv/export/pt/secret)"
[ "$(stat -c %u:%g:%a /srv/export/pt/secret)" = 1234:1234:600 ] || fail "secret is $(stat -c %u:%g:%a /srv/export/pt/secret) on the server"
expect_fail "the plain binding opening 1234's 0600 file as uid 2000" vm-runas 2000 2000 cat "$MP/pt/secret"
case $ERR in *"Permission denied"*) ;; *) fail "the plain binding's refusal: $(echo "$ERR" | tr "\n" " ")(expected EACCES)" ;; esac
expect_fail "the plain binding writing 1234's 0600 file as uid 2000" vm-runas 2000 2000 sh -c "echo x >>$MP/pt/secret"
[ "$(cat /srv/export/pt/secret)" = "rewritten by the app" ] || fail "the plain binding's refused write changed secret: $(cat /srv/export/pt/secret)"
out=$(vm-runas 2000 2000 sh -c "echo made by the app >$MA/pt/new && cat $MA/pt/new && stat -c %u:%g $MA/pt/new" 2>&1)
[ "$out" = "made by the app
2000:2000" ] || fail "the app creating a file through the binding: $out"
[ "$(stat -c %u:%g /srv/export/pt/new)" = 1234:1234 ] || fail "the app's new file is $(stat -c %u:%g /srv/export/pt/new) on the server"
[ "$(cat /srv/export/pt/new)" = "made by the app" ] || fail "the app's new file holds \"$(cat /srv/export/pt/new)\" on the server"

# (c) Shared mappings: the kernel maps the backing file itself.
dd if=/dev/zero of=/srv/export/pt/mm bs=4096 count=4 2>/dev/null && chown 1234:1234 /srv/export/pt/mm && chmod 0600 /srv/export/pt/mm
text="written through a shared mapping"
run "mmap write through the binding" vm-runas 2000 2000 vm-mmap write "$MA/pt/mm" 5000 "$text"
out=$(dd if=/srv/export/pt/mm bs=1 skip=5000 count=${#text} 2>/dev/null)
[ "$out" = "$text" ] || fail "mmap write: the server's file holds \"$out\" at 5000"
[ "$(stat -c %s:%u /srv/export/pt/mm)" = 16384:1234 ] || fail "mmap write: the server's file is $(stat -c %s:%u /srv/export/pt/mm) (size:uid)"
printf 'written on the server' | dd of=/srv/export/pt/mm bs=1 seek=9000 conv=notrunc 2>/dev/null
out=$(vm-runas 2000 2000 vm-mmap read "$MA/pt/mm" 9000 21 2>&1)
[ "$out" = "written on the server" ] || fail "mmap read through the binding at 9000: $out"

# (d) idmapfs killed under an open passthrough file.
: >/srv/export/pt/held && chown 1234:1234 /srv/export/pt/held
bg writer vm-runas 2000 2000 sh -c "exec 3>>$MA/pt/held; i=0; while [ \$i -lt 400 ]; do if echo line \$i >&3; then echo ok \$i; else echo fail \$i; fi; i=\$((i + 1)); sleep 0.05; done"
WRITER=$BG_PID
oks() { grep -c '^ok ' "$VM_SCRATCH/writer.log"; }
wait_for 20 sh -c "[ \$(grep -c '^ok ' $VM_SCRATCH/writer.log) -ge 5 ]" || fail "the writer did not start: $(tail -3 "$VM_SCRATCH/writer.log" | tr "\n" " ")"
before=$(oks)
kill -9 "$PID"
t0=$(now_ms)
wait_for 5 gone "$PID" || fail "idmapfs $PID outlived SIGKILL"
wait_for 5 grep -q idmapfs.died "$VM_SCRATCH/driver.log" || fail "no idmapfs.died in the driver's log"
wait_for 5 grep -q idmapfs.dead-mount-detached "$VM_SCRATCH/driver.log" || fail "the dead mount was not detached: $(tail -3 "$VM_SCRATCH/driver.log" | tr "\n" " ")"
wait_for 5 not_mounted "$MA" || fail "$MA still mounted 5 s after idmapfs died"
wait_for 5 gone "$SENTRY" || fail "the passthrough sentry $SENTRY outlived its idmapfs"
t1=$(now_ms)
# Nothing hangs on the dead mount's path, and nothing new lands there.
out=$(timeout -s KILL 5 vm-runas 2000 2000 sh -c "echo x >$MA/pt/after" 2>&1)
rc=$?
[ $rc = 137 ] && fail "a create under the dead mount hung"
[ $rc = 0 ] && fail "a create under the dead mount succeeded"
[ -e /srv/export/pt/after ] && fail "a create under the dead mount reached the server"
timeout -s KILL 5 ls "$DRIVER_ROOT" >/dev/null 2>&1 || fail "listing the mount root after the death failed or hung"
wait_for 10 sh -c "[ \$(grep -c '^ok ' $VM_SCRATCH/writer.log) -ge $((before + 10)) ]" ||
	fail "the open file's writes stopped at the death: $before before, $(oks) in all: $(tail -2 "$VM_SCRATCH/writer.log" | tr "\n" " ")"
after=$(oks)
grep -q '^fail' "$VM_SCRATCH/writer.log" && fail "writes to the open file failed after the death: $(grep -m1 -B1 '^fail' "$VM_SCRATCH/writer.log" | tr '\n' ' ')"
kill "$WRITER"
wait "$WRITER" 2>/dev/null
n=$(oks)
# What the app wrote after the death is in the client's page cache: the
# close's FLUSH cannot reach idmapfs, so the kernel's writeback sends it
# (after dirty_expire, 30 s; sync here).
sleep 1
landed=$(wc -l </srv/export/pt/held)
sync
wait_for 5 sh -c "[ \$(wc -l </srv/export/pt/held) -ge $n ]" ||
	fail "the server's file holds $(wc -l </srv/export/pt/held) lines after sync, the app wrote $n"
[ "$(stat -c %u:%g /srv/export/pt/held)" = 1234:1234 ] || fail "held is $(stat -c %u:%g /srv/export/pt/held) on the server"
note "SIGKILL: $before writes before, $((after - before)) after (none failed); detached and sentry gone in $((t1 - t0)) ms; create under it: $out; $landed of $n lines on the server 1 s after the close, all after sync"
t0=$(now_ms)
ok Unmount '{"Name":"m"}' >/dev/null
[ $(($(now_ms) - t0)) -le 5000 ] || fail "Unmount after the death took $(($(now_ms) - t0)) ms"
mount_m
[ "$(vm-runas 2000 2000 sh -c "wc -l <$MA/pt/held")" = "$(wc -l </srv/export/pt/held)" ] || fail "the new Mount does not serve held"
[ -n "$(pt_sentry_of "$PID")" ] || fail "the new Mount's idmapfs $PID has no passthrough sentry"
ok Unmount '{"Name":"m"}' >/dev/null

# (a) again with passthrough off: the same I/O through idmapfs.
kill "$DRIVER_PID"
wait "$DRIVER_PID" 2>/dev/null
driver_start --no-idmapfs-passthrough
mount_m
tr '\0' ' ' <"/proc/$PID/cmdline" | grep -q ' passthrough=off $' || fail "idmapfs $PID was not started with passthrough=off: $(tr '\0' ' ' <"/proc/$PID/cmdline")"
[ -z "$(pt_sentry_of "$PID")" ] || fail "a passthrough sentry beside idmapfs $PID with passthrough off"
rm /srv/export/pt/big
io "$MA/pt/big"
WT_OFF=$WT RT_OFF=$RT
note "no passthrough: $MIB MiB cost idmapfs $WT_OFF ticks to write, $RT_OFF to read back ($IO_NOTE)"
# With passthrough no data passes through idmapfs (opens and closes do,
# either way), nor anything per write(2): the kernel's killpriv check asks
# for security.capability before each, unless told ENOSYS once, which
# idmapfs answers on NFSv3 (no user.* or security.* xattrs). Ratios, as
# TCG's speed follows the host's load.
[ "$WT_OFF" -ge 10 ] && [ "$RT_OFF" -ge 10 ] ||
	fail "with passthrough off idmapfs spent only $WT_OFF ticks writing and $RT_OFF reading $MIB MiB: the measure cannot tell"
[ $((WT_ON * 10)) -le "$WT_OFF" ] ||
	fail "the writes reached idmapfs with passthrough: $WT_ON ticks (off: $WT_OFF)"
[ $((RT_ON * 10)) -le "$RT_OFF" ] ||
	fail "the reads reached idmapfs with passthrough: $RT_ON ticks (off: $RT_OFF)"
ok Unmount '{"Name":"m"}' >/dev/null
ok Unmount '{"Name":"p"}' >/dev/null
wait_for 10 no_driver_mounts || fail "leaked: $(driver_mounts_left)"
exit 0
