#!/bin/sh
# `make run`: the driver in the foreground on development defaults under ./run/.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run=$top/run
mkdir -p "$run/drivers" "$run/mounts"
# file:///tmp/... sources for trying it out.
"$top/packaging/local-sources.sh" /tmp
cat <<TXT
nfsv3driver (development): unix:$run/nfsv3driver.sock, tcp://127.0.0.1:7589, admin on 7590.
Try it from another shell:
  mkdir -p /tmp/share && echo hello > /tmp/share/hello
  $top/build/bin/nfsv3driver smoke --driver tcp://127.0.0.1:7589 --source file:///tmp/share
  curl -s -XPOST --unix-socket $run/nfsv3driver.sock http://x/VolumeDriver.List -d '{}'
  curl -s http://127.0.0.1:7590/ping
Stop with Ctrl-C (SIGTERM/SIGINT: finishes in-flight work, keeps mounts, saves state).
TXT
exec "$top/build/bin/nfsv3driver" \
	--listen "unix:$run/nfsv3driver.sock" \
	--listen tcp://127.0.0.1:7589 \
	--admin tcp://127.0.0.1:7590 \
	--drivers-path "$run/drivers" \
	--mount-root "$run/mounts" \
	--allow-local-sources \
	--log-level "${LOG_LEVEL:-info}"
