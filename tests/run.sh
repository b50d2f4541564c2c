#!/usr/bin/env bash
# run.sh: runs every test suite and prints one summed closing line.
#
# Called by `make test` (after building).  Starts the test PostgreSQL and
# Redis under var/test/ when they are not already up, drops the databases
# earlier runs left there (any name ending in _<digits>), then runs:
#   unit    every build/test/*_test binary (services, proto, tools, services)
#   fuzz    the fuzz corpora replayed through each decoder
#   integ   tests/integ/*_test.sh against the real binaries and servers
# Each suite prints its own "N passed, N failed"; the last line sums them.
# SUITES="unit integ" narrows the run; O is the build tree (build or build/san).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
O=${O:-build}
SUITES=${SUITES:-unit fuzz integ}
TEST_PG_PORT=${SUB2API_TEST_PG_PORT:-55432}
TEST_REDIS_PORT=${SUB2API_TEST_REDIS_PORT:-56379}

. compose/local/packages.sh
. compose/local/servers.sh

pkg_ensure $PKG_RUN $PKG_TEST || exit 1

TOTAL_PASS=0
TOTAL_FAIL=0
LOGDIR=$ROOT/$O/test-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}
export T_VERBOSE=${T_VERBOSE:-0}

# tally NAME LOGFILE STATUS: reads the binary's closing line; a binary that
# died before printing one counts as one failure.
tally() {
	local name=$1 log=$2 rc=$3 line p f took=${4:+ (${4} s)}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		p=0
		f=1
		echo "FAIL $name: no result line (exit $rc)"
		tail -n 30 "$log" | sed 's/^/    /'
	else
		p=$(echo "$line" | awk '{print $1}')
		f=$(echo "$line" | awk '{print $3}' | tr -d ',')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "FAIL $name: exit $rc after \"$line\""
			tail -n 30 "$log" | sed 's/^/    /'
		elif [ "$f" -ne 0 ]; then
			echo "FAIL $name: $line$took"
			grep -E 'FAIL|SKIP|ERROR|Sanitizer' "$log" | head -n 40 | sed 's/^/    /'
		else
			echo "ok   $name: $line$took"
		fi
		grep -E '^  SKIP|^skip ' "$log" | sed "s/^/    $name: /"
	fi
	SUITE_PASS=$((SUITE_PASS + p))
	SUITE_FAIL=$((SUITE_FAIL + f))
}

suite_begin() {
	SUITE=$1
	SUITE_PASS=0
	SUITE_FAIL=0
	echo "== $SUITE =="
}

suite_end() {
	echo "$SUITE: $SUITE_PASS passed, $SUITE_FAIL failed"
	TOTAL_PASS=$((TOTAL_PASS + SUITE_PASS))
	TOTAL_FAIL=$((TOTAL_FAIL + SUITE_FAIL))
}

start_servers() {
	srv_pg_start "$ROOT/var/test/pg" "$TEST_PG_PORT" || return 1
	srv_redis_start "$ROOT/var/test/redis" "$TEST_REDIS_PORT" || return 1
	export SUB2API_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$TEST_PG_PORT/postgres"
	export SUB2API_TEST_REDIS_URL="redis://127.0.0.1:$TEST_REDIS_PORT"
	export SUB2API_TEST_PG_DIR="$ROOT/var/test/pg"
	export SUB2API_TEST_REDIS_DIR="$ROOT/var/test/redis"
}

run_unit() {
	local t name rc
	suite_begin unit
	for t in "$O"/test/*_test; do
		[ -x "$t" ] || continue
		name=$(basename "$t")
		timeout 300 "$t" >"$LOGDIR/$name.log" 2>&1
		rc=$?
		tally "$name" "$LOGDIR/$name.log" $rc
	done
	suite_end
}

run_fuzz() {
	local t name rc
	suite_begin fuzz-corpora
	for t in "$O"/test/replay_*; do
		[ -x "$t" ] || continue
		name=${t##*/replay_}
		timeout 300 "$t" "tests/fuzz/$name" >"$LOGDIR/replay_$name.log" 2>&1
		rc=$?
		tally "replay $name" "$LOGDIR/replay_$name.log" $rc
	done
	suite_end
}

run_integ() {
	local t name rc t0
	suite_begin integ
	for t in tests/integ/*_test.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/s2a-$name.XXXXXX")
		t0=$SECONDS
		BIN="$ROOT/$O/bin" T_TMP="$T_TMP" ROOT="$ROOT" \
			timeout 900 bash "$t" >"$LOGDIR/$name.log" 2>&1
		rc=$?
		tally "$name" "$LOGDIR/$name.log" $rc $((SECONDS - t0))
		[ $rc -eq 0 ] && rm -rf "$T_TMP"
	done
	suite_end
}

# Databases left by earlier runs (tests name theirs <name>_<pid>; a test
# that fails or is killed leaves its own): the test cluster keeps none
# from one run to the next.
drop_stale_dbs() {
	local db n=0
	for db in $(psql "$SUB2API_TEST_DATABASE_URL" -qAt -c \
		"SELECT datname FROM pg_database WHERE datname ~ '^[a-z][a-z0-9_]*_[0-9]+\$'"); do
		psql "$SUB2API_TEST_DATABASE_URL" -qAt -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null &&
			n=$((n + 1))
	done
	[ "$n" -eq 0 ] || echo "dropped $n databases of earlier runs"
}

start_servers || {
	echo "could not start the test PostgreSQL/Redis"
	echo "0 passed, 1 failed"
	exit 1
}
drop_stale_dbs

for s in $SUITES; do
	case $s in
	unit) run_unit ;;
	fuzz) run_fuzz ;;
	integ) run_integ ;;
	*) echo "unknown suite $s" ;;
	esac
done

echo "logs: $LOGDIR"
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
[ "$TOTAL_FAIL" -eq 0 ]
