# The operator's policy over real NFS (issue 16), through the daemon: a
# binding the policy allows mounts (by name, at the address checked, with
# its uid on the server); one it refuses (uid, identity, export, server) is
# never mounted and Mount answers a SafeError naming what was refused and
# where the policy lives; SIGHUP reloads it. Then the helpers alone, run with
# what the daemon would refuse (the mount helper's server and export,
# idmapfs's ids), refuse it before mounting anything.
. /vm/lib.sh
PDIR=/etc/nfsv3driver-test
P=$PDIR/policy
mkdir -p "$PDIR" && chmod 0755 "$PDIR"
cat >"$P" <<'POLICY'
# raw ids 5000-5999 on the export, by the server's name
export nfsvm /srv/export uid=5000-5999 gid=5000-5999 identity=raw
# the app's own ids (no uid/gid) on one directory, by address
export 127.0.0.0/8 /srv/export/open identity=none
deny-server ::1
POLICY
chmod 0644 "$P"
mkdir -p /srv/export/open && chown 2000:2000 /srv/export/open
driver_start --policy "$P"
grep -q policy.loaded "$VM_SCRATCH/driver.log" || fail "no policy.loaded in the log"

# refused MOUNT-ANSWER NEEDLE: a SafeError naming the refusal and the policy file.
refused() {
	case $1 in *SafeDescription*"$2"*"refused by the operator's policy ($P)"*) note "refused: $2" ;;
	*) fail "expected a refusal of $2: $1" ;; esac
}

# Allowed: raw ids in range, on the named server; written as 5000 on the server.
ok Create '{"Name":"a1","Opts":{"source":"nfs://nfsvm/srv/export","uid":"5000","gid":"5001"}}' >/dev/null
MA=$(mountpoint_of "$(ok Mount '{"Name":"a1"}')")
out=$(vm-runas 2000 2000 sh -c "echo allowed >$MA/by-a1" 2>&1) || fail "write through a1: $out"
[ "$(stat -c %u:%g /srv/export/by-a1)" = 5000:5001 ] || fail "on the server: $(stat -c %u:%g /srv/export/by-a1)"
# The kernel mount names the server as the binding did and connects to the address checked.
kline=$(driver_mount_list .kernel)
case $kline in "nfsvm:/srv/export "*addr=127.0.0.1*) note "kernel mount: $(echo "$kline" | cut -d' ' -f1)" ;;
*) fail "kernel mount: $kline" ;; esac
# Allowed: no ids, on the open directory by address.
ok Create '{"Name":"a2","Opts":{"source":"nfs://127.0.0.1/srv/export/open"}}' >/dev/null
MO=$(mountpoint_of "$(ok Mount '{"Name":"a2"}')")
vm-runas 2000 2000 sh -c "echo open >$MO/f" || fail "write through a2"
before=$(driver_mounts)

# Refused, each at Mount (volman's client), nothing mounted for any.
ok Create '{"Name":"r1","Opts":{"source":"nfs://nfsvm/srv/export","uid":"4000","gid":"5000"}}' >/dev/null
refused "$(call Mount '{"Name":"r1"}')" "uid 4000 on nfsvm:/srv/export is"
ok Create '{"Name":"r2","Opts":{"source":"nfs://nfsvm/srv/export"}}' >/dev/null
refused "$(call Mount '{"Name":"r2"}')" "bindings without uid and gid on nfsvm:/srv/export are"
ok Create '{"Name":"r3","Opts":{"source":"nfs://127.0.0.1/srv/export","uid":"5000","gid":"5000"}}' >/dev/null
refused "$(call Mount '{"Name":"r3"}')" "export /srv/export on NFS server 127.0.0.1 is"
ok Create '{"Name":"r4","Opts":{"source":"nfs://[::1]/srv/export/open"}}' >/dev/null
refused "$(call Mount '{"Name":"r4"}')" "NFS server ::1 is"
ok Create '{"Name":"r5","Opts":{"source":"nfs://nfsvm/srv/export","uid":"500","gid":"5000"}}' >/dev/null
refused "$(call Mount '{"Name":"r5"}')" "uid 500 is"
[ "$(driver_mounts)" = "$before" ] || fail "a refused binding mounted something: $(driver_mounts_left)"

# SIGHUP: uid 4000 allowed from now on; then a bad file keeps that policy.
sed -i 's/uid=5000-5999/uid=4000-5999/' "$P"
kill -HUP "$DRIVER_PID"
wait_for 5 grep -q policy.reloaded "$VM_SCRATCH/driver.log" || fail "no policy.reloaded"
MR=$(mountpoint_of "$(ok Mount '{"Name":"r1"}')")
vm-runas 2000 2000 sh -c "echo reloaded >$MR/by-r1" || fail "write through r1"
[ "$(stat -c %u /srv/export/by-r1)" = 4000 ] || fail "r1 on the server: $(stat -c %u /srv/export/by-r1)"
echo "export nfsvm /srv/export uid=oops" >>"$P"
kill -HUP "$DRIVER_PID"
wait_for 5 grep -q policy.reload-failed "$VM_SCRATCH/driver.log" || fail "no policy.reload-failed"
grep policy.reload-failed "$VM_SCRATCH/driver.log" | grep -q "the policy loaded before" || fail "not said that the last policy is kept"
refused "$(call Mount '{"Name":"r5"}')" "uid 500 is"
for v in a1 a2 r1; do ok Unmount "{\"Name\":\"$v\"}" >/dev/null; done
wait_for 10 no_driver_mounts || fail "mounts left: $(driver_mounts_left)"

# The helper alone trusts nothing: what the daemon would refuse, it refuses too.
sed -i '$d' "$P"
ROOT=$VM_SCRATCH/hroot
KEY=0123456789abcdef
OPTS="hard,vers=3,proto=tcp,sec=sys"
mkdir -p "$ROOT"
helper() { NFSV3DRIVER_POLICY=$P "$MOUNT_HELPER" nfs "$ROOT" "$KEY" "$@" "$OPTS"; }
for bad in "127.0.0.1:/srv/export 127.0.0.1|export /srv/export on NFS server 127.0.0.1 is" \
	"nfsvm:/srv/export 127.0.0.2|does not resolve to 127.0.0.2" \
	"[::1]:/srv/export/open ::1|NFS server ::1 is" \
	"127.0.0.1:/srv/export/open 127.0.0.2|is not the source's own"; do
	args=${bad%%|*} want=${bad#*|}
	# shellcheck disable=SC2086
	err=$(helper $args 2>&1) && fail "helper mounted $args"
	rc=$?
	[ "$rc" = 3 ] || fail "helper $args: exit $rc: $err"
	case $err in *"$want"*) note "helper: $err" ;; *) fail "helper $args: $err" ;; esac
	is_mounted "$ROOT/.kernel/$KEY" && fail "helper $args left a mount"
done
helper nfsvm:/srv/export 127.0.0.1 || fail "the helper refused an allowed mount"
is_mounted "$ROOT/.kernel/$KEY" || fail "the allowed mount is not there"
# idmapfs reads the policy too: ids it refuses on this server and export are never served.
IDMAPFS=$NFSV3_BUILD/libexec/nfsv3driver/nfsv3driver-idmapfs
err=$(NFSV3DRIVER_POLICY=$P timeout 10 "$IDMAPFS" "$ROOT" "$ROOT/.kernel/$KEY" m1 3000 5000 2000 2000 rw 2>&1) &&
	fail "idmapfs served uid 3000"
rc=$?
[ "$rc" = 3 ] || fail "idmapfs uid 3000: exit $rc: $err"
case $err in *"uid 3000 on nfsvm (address 127.0.0.1):/srv/export is refused by the operator's policy"*) note "idmapfs: $err" ;;
*) fail "idmapfs uid 3000: $err" ;; esac
is_mounted "$ROOT/m1" && fail "idmapfs mounted m1"
"$MOUNT_HELPER" unmount "$ROOT" ".kernel/$KEY" force || fail "unmount"
exit 0
