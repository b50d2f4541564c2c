#!/bin/bash
# fuzz.sh: runs libFuzzer targets for a while each and reports findings.
#
# Usage: FUZZ_SECONDS=60 bash tests/fuzz.sh name...   (names like env_fuzz)
#
# For each name the seed corpus tests/fuzz/<name>/ is copied into the
# working corpus build/fuzz/corpus/<name>/ (which keeps what earlier runs
# found), then build/fuzz/bin/<name> (from `make fuzz-build`) runs for
# FUZZ_SECONDS on it.  A target fails when the fuzzer exits non-zero or
# leaves a crash, leak, timeout or out-of-memory artifact; artifacts go to
# build/fuzz/artifacts/<name>/.  Prints one line per target, then
# "N passed, N failed"; exits non-zero if any failed.
set -u

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2

if [ $# -eq 0 ]; then
	echo "usage: FUZZ_SECONDS=60 bash tests/fuzz.sh name..." >&2
	exit 2
fi

passed=0
failed=0
for name in "$@"; do
	bin=build/fuzz/bin/$name
	seeds=tests/fuzz/$name
	corpus=build/fuzz/corpus/$name
	arts=build/fuzz/artifacts/$name
	log=build/fuzz/logs/$name.log
	if [ ! -x "$bin" ]; then
		echo "FAIL $name: $bin missing (run make fuzz-build)"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$corpus" "$arts" "$(dirname "$log")"
	rm -f "$arts"/crash-* "$arts"/leak-* "$arts"/timeout-* "$arts"/oom-*
	if [ -d "$seeds" ]; then
		cp -f "$seeds"/* "$corpus"/ 2>/dev/null
	fi
	"$bin" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$arts/" "$corpus" >"$log" 2>&1
	rc=$?
	found=$(find "$arts" -maxdepth 1 -type f \( -name 'crash-*' \
	    -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
	    head -n 5 | tr '\n' ' ')
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		echo "FAIL $name: exit $rc ${found:+artifacts: $found}(log: $log)"
		failed=$((failed + 1))
	else
		echo "ok   $name: ${runs:-?} runs in ${FUZZ_SECONDS}s, corpus $(ls "$corpus" | wc -l)"
		passed=$((passed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
