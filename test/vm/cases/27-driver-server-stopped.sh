# Issue 14, the NFS server stopped under mounted volumes, pinned to NFSv3
# and negotiated (v4.2) side by side, each through a plain bind and a mapped
# (idmapfs) volume: an app's read waits (hard mount: it must not fail) while
# the daemon keeps answering (/ping and List, every probe under 1 s) and
# serves other volumes' Mount and Unmount; a Mount of a new volume of the
# stopped server answers within the helper deadline; Unmount of each stuck
# volume answers within the deadline and leaves no mount behind; the app,
# killed as its container goes, dies at once, the mapped ones too, and no
# idmapfs stays, all while the server is still stopped; once it is back, a
# read that waited through all this ends with the data, and a new Mount of
# each volume serves.
. /vm/lib.sh
HELPER_TIMEOUT=5 driver_start --allow-local-sources
SRC='"source":"nfs://127.0.0.1/srv/export"'
VOLS="p3 m3 p4 m4"
LOCAL=$VM_SCRATCH/local
mkdir -p "$LOCAL" /srv/export/s27 /etc/nfsv3driver && chmod 0777 "$LOCAL"
# The helpers serve a file:// source only beneath a directory the operator lists.
grep -qxF "$LOCAL" /etc/nfsv3driver/local-sources 2>/dev/null || echo "$LOCAL" >>/etc/nfsv3driver/local-sources

# opts VOLUME: p* plain, m* mapped to 1234:1234; *3 pinned to v3, *4 negotiated.
opts() {
	_o=$SRC
	case $1 in m*) _o="$_o,\"uid\":\"1234\",\"gid\":\"1234\"" ;; esac
	case $1 in *3) _o="$_o,\"version\":\"3\"" ;; esac
	echo "{\"Name\":\"$1\",\"Opts\":{$_o}}"
}
# list_ms: how long POST /VolumeDriver.List takes, in ms.
list_ms() {
	curl -s -o /dev/null --max-time 10 -w '%{time_total}' --unix-socket "$DRIVER_SOCK" -X POST -d '{}' \
		http://driver/VolumeDriver.List | awk '{printf "%d", $1 * 1000}'
}
# probe: /ping and List, every 0.2 s, one "PING_MS LIST_MS" line each.
probe() {
	while :; do
		echo "$(ping_ms) $(list_ms)"
		sleep 0.2
	done
}
# state PID: the run state (R, S, D...) and what the task waits in.
state() { echo "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)/$(cat "/proc/$1/wchan" 2>/dev/null)"; }
# alive PID: running, not a zombie waiting to be reaped.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# idmapfs_left: the pids of the idmapfs processes serving under our mount root.
idmapfs_left() {
	for _p in $(pidof nfsv3driver-idmapfs); do
		grep -qs -- "$DRIVER_ROOT" "/proc/$_p/cmdline" && echo "$_p"
	done
}
no_idmapfs() { [ -z "$(idmapfs_left)" ]; }
# mount_vol VOLUME: Mount it (the call must succeed); its Mountpoint in $MP and $MP_<VOLUME>.
mount_vol() {
	_a=$(call Mount "{\"Name\":\"$1\"}")
	case $_a in *'"Err":""'*) ;; *) fail "$1: Mount: $_a" ;; esac
	MP=$(mountpoint_of "$_a")
	eval "MP_$1=\$MP"
}
# timed_call ROUTE BODY: the answer, then "took N ms".
timed_call() {
	_t0=$(now_ms)
	call "$1" "$2"
	echo
	echo "took $(($(now_ms) - _t0)) ms"
}
# readers_done: every background read has ended.
readers_done() {
	for _v in $VOLS; do
		eval "alive \$READ_$_v" && return 1
	done
	return 0
}

nfs_wait_grace
for v in $VOLS; do
	# Files the client has never seen: reading one must go to the server.
	echo "data $v" >/srv/export/s27/$v && chown 1234:1234 /srv/export/s27/$v && chmod 0644 /srv/export/s27/$v
	ok Create "$(opts $v)" >/dev/null
	mount_vol $v
done
note "kernel mounts: $(driver_mount_list .kernel | cut -d' ' -f3,4 | sed 's/,.*vers=\([0-9.]*\).*/ vers=\1/' | tr '\n' ';')"
[ "$(kernel_mounts)" = 2 ] || fail "expected 2 kernel mounts (v3 and negotiated), have $(kernel_mounts)"
for v in $VOLS; do
	eval "mp=\$MP_$v"
	[ "$(vm-runas 2000 2000 cat "$mp/s27/p3" 2>&1)" = "data p3" ] || fail "$v does not serve before the stop"
done
ok Create "{\"Name\":\"l1\",\"Opts\":{\"source\":\"file://$LOCAL\"}}" >/dev/null
ok Create "{\"Name\":\"l2\",\"Opts\":{\"source\":\"file://$LOCAL\",\"uid\":\"1234\",\"gid\":\"1234\"}}" >/dev/null
ok Create "$(opts n3)" >/dev/null

nfs_server_stop
t_stop=$(now_ms)
bg probes probe
PROBES=$BG_PID
for v in $VOLS; do
	eval "mp=\$MP_$v"
	bg "read-$v" vm-runas 2000 2000 cat "$mp/s27/$v"
	eval "READ_$v=\$BG_PID"
done
# A new volume of the stopped server, on the v3 kernel mount.
bg mount-n3 timed_call Mount '{"Name":"n3"}'
MOUNT_N3=$BG_PID

# Other volumes are served meanwhile: a plain and a mapped local one.
for v in l1 l2; do
	t0=$(now_ms)
	a=$(call Mount "{\"Name\":\"$v\"}")
	t1=$(now_ms)
	case $a in *'"Err":""'*) ;; *) fail "$v: Mount while the server is stopped: $a" ;; esac
	mp=$(mountpoint_of "$a")
	out=$(vm-runas 2000 2000 sh -c "echo $v >$mp/$v && cat $mp/$v" 2>&1)
	[ "$out" = "$v" ] || fail "$v: write and read back while the server is stopped: $out"
	t2=$(now_ms)
	ok Unmount "{\"Name\":\"$v\"}" >/dev/null
	t3=$(now_ms)
	is_mounted "$mp" && fail "$v: still mounted after Unmount"
	note "$v (local, server stopped): Mount $((t1 - t0)) ms, Unmount $((t3 - t2)) ms"
done

# The readers wait: hard mounts neither fail nor answer while the server is away.
sleep 2
for v in $VOLS; do
	eval "r=\$READ_$v"
	alive "$r" || fail "$v: the read ended with the server stopped: $(cat "$VM_SCRATCH/read-$v.log")"
	[ -s "$VM_SCRATCH/read-$v.log" ] && fail "$v: the read said something with the server stopped: $(cat "$VM_SCRATCH/read-$v.log")"
	note "$v: read still waiting after $(($(now_ms) - t_stop)) ms, state $(state "$r")"
done
wait "$MOUNT_N3"
a=$(cat "$VM_SCRATCH/mount-n3.log")
note "n3 (new volume of the stopped server): $(echo "$a" | tr '\n' ' ')"
n3ms=$(echo "$a" | sed -n 's/^took \([0-9]*\) ms$/\1/p')
[ "${n3ms:-99999}" -le 7000 ] || fail "n3: Mount took ${n3ms} ms (deadline 5 s + 2 s)"
# Served at once by the kernel mount it shares (the bind does not reach the
# server), or refused at the deadline: either way an answer in time.
case $a in
*'"Err":""'*) STUCK="$VOLS n3" MP_n3=$(mountpoint_of "$a") ;;
*SafeDescription*"timed out after 5 s"*) STUCK=$VOLS ;;
*) fail "n3: Mount on the stopped server: $a" ;;
esac

# Unmount each stuck volume: an answer within the deadline, its Mountpoint
# detached (lazily: the read still holds it), and then the kernel mounts
# (forced).
for v in $STUCK; do
	eval "mp=\$MP_$v"
	t0=$(now_ms)
	ok Unmount "{\"Name\":\"$v\"}" >/dev/null
	t1=$(now_ms)
	wait_for 5 not_mounted "$mp" || fail "$v: $mp still mounted after Unmount"
	note "$v: Unmount with the server stopped answered in $((t1 - t0)) ms"
	[ $((t1 - t0)) -le 7000 ] || fail "$v: Unmount took $((t1 - t0)) ms (deadline 5 s + 2 s)"
done
t0=$(now_ms)
wait_for 15 no_driver_mounts || fail "mounts left with the server stopped: $(driver_mounts_left)"
note "every mount under the root gone $(($(now_ms) - t0)) ms after the last Unmount"
kill "$PROBES"
sort -n -k1 "$VM_SCRATCH/probes.log" | awk 'END {printf "# %d probes while stopped: slowest /ping %d ms\n", NR, $1}'
sort -n -k2 "$VM_SCRATCH/probes.log" | awk 'END {printf "# slowest List %d ms\n", $2}'
awk '$1 >= 1000 || $2 >= 1000 || $1 == "" || $2 == "" {bad++} END {exit bad > 0 || NR < 5}' "$VM_SCRATCH/probes.log" ||
	fail "a probe took 1 s or more (or too few ran): $(tr '\n' ' ' <"$VM_SCRATCH/probes.log")"

# Detached, the readers still wait (the hard mount's calls were not failed).
for v in $VOLS; do
	eval "r=\$READ_$v"
	alive "$r" || fail "$v: the read ended after Unmount: $(cat "$VM_SCRATCH/read-$v.log")"
done
note "after Unmount every read still waits: $(for v in $VOLS; do eval "echo -n \"$v \$(state \$READ_$v) \""; done)"
# The container goes: its processes get SIGKILL, and die at once, the
# mapped ones too (idmapfs answers for a killed caller); no idmapfs stays.
# p3's reader lives on, to see the hard mount finish it once the server is back.
t0=$(now_ms)
for v in m3 p4 m4; do eval "kill -9 \$READ_$v"; done
killed_gone() { for _v in m3 p4 m4; do eval "alive \$READ_$_v" && return 1; done; return 0; }
wait_for 5 killed_gone ||
	fail "killed readers still there with the server stopped: $(for v in m3 p4 m4; do eval "echo -n \"$v \$(state \$READ_$v) \""; done)"
t1=$(now_ms)
wait_for 10 no_idmapfs || fail "idmapfs left with the server stopped: $(for p in $(idmapfs_left); do echo -n "$p $(state "$p") "; done)"
note "killed readers gone in $((t1 - t0)) ms; every idmapfs gone $(($(now_ms) - t0)) ms after the kill"

# The server comes back: a new Mount of each volume serves (over NFSv4
# once the grace period, which refuses opens, is over).
nfs_server_start || fail "cannot restart the NFS server"
for v in p3 m3 wait p4 m4; do
	[ "$v" = wait ] && { nfs_wait_grace; continue; }
	mount_vol $v
	out=$(vm-runas 2000 2000 cat "$MP/s27/$v" 2>&1)
	[ "$out" = "data $v" ] || fail "$v: after the restart the new Mount reads \"$out\""
done
wait_for 10 readers_done || fail "p3's read from before the stop still waits after the server came back"
out=$(cat "$VM_SCRATCH/read-p3.log")
note "p3: the read from before the stop, once the server was back: \"$out\""
[ "$out" = "data p3" ] || fail "p3: the read from before the stop ended with \"$out\""
for v in $VOLS; do ok Unmount "{\"Name\":\"$v\"}" >/dev/null; done
for v in $VOLS l1 l2 n3; do ok Remove "{\"Name\":\"$v\"}" >/dev/null; done
wait_for 15 no_driver_mounts || fail "mounts left: $(driver_mounts_left)"
wait_for 10 no_idmapfs || fail "idmapfs left running: $(idmapfs_left | tr '\n' ' ')"
exit 0
