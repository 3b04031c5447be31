#!/bin/bash
# The "fuzz" stage of `make test`: libFuzzer (clang, ASan, UBSan) on four
# targets, each for a bounded time: fuzz_http (HTTP framing through the real
# server over a unix socket), fuzz_body (request bodies as routes.c parses
# them, and the words of its errors), fuzz_options (Create's Opts through the
# option table and the kernel option string) and fuzz_state (the state file
# through the bounded loader, with a round trip). NFSV3_FUZZ_SECONDS sets each
# target's time (default 15); NFSV3_FUZZ_TARGETS picks targets. Crashes,
# sanitizer reports, leaks and timeouts fail; the inputs are kept in
# build/fuzz/<target>/.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/fuzz
seconds=${NFSV3_FUZZ_SECONDS:-15}
targets=${NFSV3_FUZZ_TARGETS:-http body options state}
mkdir -p "$out/obj"
if ! command -v clang >/dev/null; then
	echo "fuzz: clang is missing (packaging/deps.sh test installs it)"
	exit 1
fi
flags="-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
incs="-I$top/include -I$top/driver -I$top/mounter $(pkg-config --cflags libuv jansson mount openssl)"
libs="$(pkg-config --libs libuv jansson mount openssl) -lhttp_parser -lldap -llber -pthread"
# The daemon's objects once (main.c aside; the policy parser it shares with
# the mount helper), then one link per target.
objs=()
for c in "$top"/driver/*.c "$top"/mounter/policy.c; do
	[ "$(basename "$c")" = main.c ] && continue
	o=$out/obj/$(basename "$c" .c).o
	# shellcheck disable=SC2086
	if [ ! -e "$o" ] || [ "$c" -nt "$o" ] || [ -n "$(find "$top/driver" "$top/mounter" "$top/include" -name '*.h' -newer "$o")" ]; then
		clang $flags $incs -c "$c" -o "$o" >>"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; echo "fuzz: 0 passed, 1 failed (build of $c)"; exit 1; }
	fi
	objs+=("$o")
done
passed=0 failed=0 summary=()
for t in $targets; do
	# shellcheck disable=SC2086
	if ! clang $flags -fsanitize=fuzzer $incs "$top/test/fuzz/fuzz_$t.c" "${objs[@]}" -o "$out/fuzz_$t" $libs \
		>>"$out/build.log" 2>&1; then
		tail -20 "$out/build.log"
		echo "fuzz: 0 passed, 1 failed (build of fuzz_$t)"
		exit 1
	fi
	mkdir -p "$out/$t/corpus" "$out/$t/crashes"
	cp -n "$top"/test/fuzz/corpus/"$t"/* "$out/$t/corpus/" 2>/dev/null
	# -detect_leaks stays on: each input's leaks fail the target.
	if (cd "$out/$t/crashes" && ASAN_OPTIONS=detect_leaks=1 "$out/fuzz_$t" -max_total_time="$seconds" -max_len=8192 \
		-timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "$out/$t/corpus") >"$out/$t/run.log" 2>&1; then
		passed=$((passed + 1))
		summary+=("$t $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t/run.log" | grep -o '[0-9]*$') runs")
	else
		failed=$((failed + 1))
		echo "--- fuzz_$t failed:"
		grep -E "ERROR|runtime error|SUMMARY|Test unit written|abort|bad error" "$out/$t/run.log" | head -20
		summary+=("$t FAILED")
	fi
done
IFS=,
echo "fuzz: $passed passed, $failed failed (${summary[*]})"
[ "$failed" -eq 0 ]
