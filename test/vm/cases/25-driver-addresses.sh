# Sources by every host form: a DNS name (resolved off the loop, from
# /etc/hosts here), an [IPv6] literal (the kernel gets proto=tcp6), the
# host:/path form, and a name that does not resolve.
. /vm/lib.sh
driver_start
i=0
for src in "nfs://nfsvm/srv/export" "nfs://[::1]/srv/export" "127.0.0.1:/srv/export" "nfs://127.0.0.1:2049/srv/export"; do
	i=$((i + 1))
	ok Create "{\"Name\":\"a$i\",\"Opts\":{\"source\":\"$src\"}}" >/dev/null
	MP=$(mountpoint_of "$(ok Mount "{\"Name\":\"a$i\"}")")
	echo "$src" >"$MP/from-a$i" || fail "$src: cannot write"
	[ "$(cat /srv/export/from-a$i)" = "$src" ] || fail "$src: not on the export"
	note "$src: kernel mount $(driver_mount_list .kernel | cut -d' ' -f1 | tr '\n' ' ')"
	ok Unmount "{\"Name\":\"a$i\"}" >/dev/null
done
ok Create '{"Name":"bad","Opts":{"source":"nfs://no-such-host.invalid/srv/export"}}' >/dev/null
a=$(call Mount '{"Name":"bad"}')
case $a in *SafeDescription*"unknown host"*) ;; *) fail "unresolvable host: $a" ;; esac
[ "$(driver_mounts)" = 0 ] || fail "mounts left: $(driver_mounts)"
exit 0
