#!/bin/bash
# Inside the build root (own network namespace): rpcbind and rpc.statd, as
# the job's rpc_ctl starts them, listen where monit checks (111, statd_port)
# and statd registers with rpcbind.  Both are stopped by pid.
p=/var/vcap/packages/nfs-rpc
state=/var/vcap/data/rpc_statd
mkdir -p /var/vcap/data/rpcbind "$state/sm" "$state/sm.bak"
listening() { cat /proc/net/tcp /proc/net/tcp6 | awk -v port="$1" '$2 ~ ":" port "$" && $4 == "0A" { found = 1 } END { exit !found }'; }
"$p/sbin/rpcbind" -f -w &
rpcbind=$!
for _ in $(seq 20); do listening 006F && break; sleep 0.2; done
"$p/sbin/rpc.statd" -F -p 41793 -P "$state" &
statd=$!
for _ in $(seq 20); do listening A341 && break; sleep 0.2; done
rc=0
listening 006F || { echo "rpcbind does not listen on 111"; rc=1; }
listening A341 || { echo "rpc.statd does not listen on 41793 (statd_port)"; rc=1; }
kill -0 "$statd" 2>/dev/null || { echo "rpc.statd exited"; rc=1; }
kill "$statd" "$rpcbind" 2>/dev/null
wait
exit $rc
