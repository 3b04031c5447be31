#!/bin/bash
# The "fuzz" stage of `make test`: a short libFuzzer run (clang, ASan, UBSan)
# of the request path: HTTP framing through the real server, and request
# bodies through the name checks, the option table and the state loader.
# NFSV3_FUZZ_SECONDS sets the length (default 30).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/fuzz
mkdir -p "$out/corpus"
if ! command -v clang >/dev/null; then
	echo "fuzz: clang is missing (packaging/deps.sh test installs it)"
	exit 1
fi
# shellcheck disable=SC2046
if ! clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I"$top/include" -I"$top/driver" \
	$(pkg-config --cflags libuv jansson mount openssl) "$top/test/fuzz/fuzz_request.c" \
	"$top"/driver/{http,options,registry,state,upstream,error,log,metrics}.c -o "$out/fuzz_request" \
	$(pkg-config --libs libuv jansson mount openssl) -lhttp_parser >"$out/build.log" 2>&1; then
	tail -20 "$out/build.log"
	echo "fuzz: 0 passed, 1 failed (build)"
	exit 1
fi
cp -n "$top"/test/fuzz/corpus/* "$out/corpus/" 2>/dev/null
if "$out/fuzz_request" -max_total_time="${NFSV3_FUZZ_SECONDS:-30}" -max_len=8192 -timeout=10 \
	"$out/corpus" >"$out/run.log" 2>&1; then
	echo "fuzz: 1 passed, 0 failed ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/run.log" || tail -1 "$out/run.log" | cut -c1-80))"
	exit 0
fi
grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$out/run.log" | head -20
echo "fuzz: 0 passed, 1 failed"
exit 1
