# Issue 14, the export removed under mounted volumes, pinned to NFSv3 and
# negotiated (v4.2) side by side, through a plain bind and a mapped
# (idmapfs) volume each; once with `exportfs -u`, once by changing the
# exports file and `exportfs -ra`. The app's reads, listings and writes fail
# at once with the server's refusal (EACCES; noted), the same through
# idmapfs as through the bind; the daemon keeps answering; Unmount succeeds
# and leaves nothing; a new Mount fails with a SafeError naming the export
# ("access denied by server"); after re-exporting, Mount serves again.
. /vm/lib.sh
HELPER_TIMEOUT=5 driver_start
SRC='"source":"nfs://127.0.0.1/srv/export"'
VOLS="p3 m3 p4 m4"
EXPORTS=$VM_SCRATCH/exports.orig
cp /etc/exports "$EXPORTS"
# Whatever happens, the next cases find the export as init made it.
trap 'cp "$EXPORTS" /etc/exports; exportfs -ra' EXIT
mkdir -p /srv/export/s28

# opts VOLUME: p* plain, m* mapped to 1234:1234; *3 pinned to v3, *4 negotiated.
opts() {
	_o=$SRC
	case $1 in m*) _o="$_o,\"uid\":\"1234\",\"gid\":\"1234\"" ;; esac
	case $1 in *3) _o="$_o,\"version\":\"3\"" ;; esac
	echo "{\"Name\":\"$1\",\"Opts\":{$_o}}"
}
# app WHAT CMD: run CMD as the app (bounded), print "WHAT: ok" or "WHAT: <error> (N ms)".
app() {
	_w=$1; shift
	_t0=$(now_ms)
	_e=$(timeout -s KILL 20 vm-runas 2000 2000 sh -c "$*" 2>&1 >/dev/null)
	_rc=$?
	_ms=$(($(now_ms) - _t0))
	[ "$_rc" = 137 ] && { echo "$_w: hung (killed after $_ms ms)"; return; }
	[ "$_rc" = 0 ] && { echo "$_w: ok"; return; }
	echo "$_w: ${_e##*: } (${_ms} ms)"
}
# mount_all: Mount every volume (each call must succeed) and read through it; Mountpoints in $MP_<VOLUME>.
mount_all() {
	for v in $VOLS; do
		a=$(call Mount "{\"Name\":\"$v\"}")
		case $a in *'"Err":""'*) ;; *) fail "$v: Mount: $a" ;; esac
		mp=$(mountpoint_of "$a")
		eval "MP_$v=\$mp"
		[ "$(vm-runas 2000 2000 cat "$mp/s28/f" 2>&1)" = data ] || fail "$v does not serve: $(vm-runas 2000 2000 cat "$mp/s28/f" 2>&1)"
	done
}

echo data >/srv/export/s28/f && chown 1234:1234 /srv/export/s28/f && chmod 0644 /srv/export/s28/f
chmod 0777 /srv/export/s28
nfs_wait_grace
for v in $VOLS; do ok Create "$(opts $v)" >/dev/null; done

for how in unexport exports-file; do
	mount_all
	[ "$(kernel_mounts)" = 2 ] || fail "$how: expected 2 kernel mounts (v3 and negotiated), have $(kernel_mounts)"
	if [ "$how" = unexport ]; then
		# This client mounts through 127.0.0.1; the ::1 entry stays.
		exportfs -u 127.0.0.1:/srv/export || fail "exportfs -u failed"
	else
		grep -v '^/srv/export ' "$EXPORTS" >/etc/exports
		exportfs -ra || fail "exportfs -ra failed"
	fi
	exportfs | awk '$1 == "/srv/export" && $2 == "127.0.0.1" {f=1} END {exit !f}' &&
		fail "$how: still exported: $(exportfs | tr '\n' ' ')"

	# What the app sees: the server's refusal of a handle whose export is
	# gone (measured here: EACCES over v3 and v4.2, where ESTALE would be
	# as right), in bounded time; through idmapfs the same as through the bind.
	for v in $VOLS; do
		eval "mp=\$MP_$v"
		seen="$(app read "cat $mp/s28/f"); $(app list "ls $mp/s28"); $(app write "echo x >$mp/s28/new")"
		note "$how, $v: $seen"
		case $seen in *hung*) fail "$how, $v: the app hangs: $seen" ;; esac
		case $seen in *": ok"*) fail "$how, $v: the export is gone but the app still reaches it: $seen" ;; esac
		echo "$seen" | tr ';' '\n' | grep -v -e 'Permission denied' -e 'Stale file handle' -e '^ *$' &&
			fail "$how, $v: an error other than EACCES or ESTALE: $seen"
		eval "SEEN_$v=\$(echo \"\$seen\" | sed 's/ ([0-9]* ms)//g')"
	done
	[ "$SEEN_m3" = "$SEEN_p3" ] && [ "$SEEN_m4" = "$SEEN_p4" ] ||
		fail "$how: idmapfs shows other errors than the bind: p3 $SEEN_p3, m3 $SEEN_m3, p4 $SEEN_p4, m4 $SEEN_m4"
	p=$(ping_ms)
	l=$(ok List '{}')
	note "$how: /ping $p ms"
	[ "$p" -lt 1000 ] || fail "$how: /ping took $p ms"
	case $l in *'"p3"'*'"m4"'*|*'"m4"'*'"p3"'*) ;; *) fail "$how: List $l" ;; esac

	for v in $VOLS; do
		eval "mp=\$MP_$v"
		t0=$(now_ms)
		ok Unmount "{\"Name\":\"$v\"}" >/dev/null
		note "$how, $v: Unmount $(($(now_ms) - t0)) ms"
		wait_for 5 not_mounted "$mp" || fail "$how, $v: $mp still mounted"
	done
	wait_for 15 no_driver_mounts || fail "$how: mounts left: $(driver_mounts_left)"

	# A new Mount: refused by the server (mountd for v3; v4 after it, which
	# the negotiation falls back to), a SafeError naming the export.
	for v in p3 p4; do
		a=$(call Mount "{\"Name\":\"$v\"}")
		note "$how, Mount $v: $a"
		case $a in *SafeDescription*"mounting 127.0.0.1:/srv/export: access denied by server"*) ;; *) fail "$how, Mount $v: $a" ;; esac
	done
	no_driver_mounts || fail "$how: a refused Mount left $(driver_mounts_left)"

	cp "$EXPORTS" /etc/exports
	exportfs -ra || fail "cannot export again"
done
# Back: Mount serves again (mount_all checks each read).
mount_all
for v in $VOLS; do ok Unmount "{\"Name\":\"$v\"}" >/dev/null; done
for v in $VOLS; do ok Remove "{\"Name\":\"$v\"}" >/dev/null; done
wait_for 15 no_driver_mounts || fail "mounts left: $(driver_mounts_left)"
exit 0
