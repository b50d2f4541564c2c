# lib.sh: helpers for integration tests (sourced, never run).
#
# A test is tests/integ/<name>_test.sh.  tests/run.sh runs each one with:
#   BIN                        directory of the built binaries
#   SUB2API_TEST_DATABASE_URL  DSN of a live PostgreSQL (database "postgres")
#   SUB2API_TEST_REDIS_URL     redis://127.0.0.1:PORT of a live Redis
#   T_TMP                      a fresh scratch directory for this test
# Checks print "ok"/"FAIL" lines; t_done prints "N passed, N failed" and
# sets the exit status.  Nothing here sleeps blindly: t_wait polls a
# condition with a deadline.

set -u
T_PASS=0
T_FAIL=0
: "${T_TMP:=$(mktemp -d)}"
: "${BIN:=build/bin}"

t_ok() {
	T_PASS=$((T_PASS + 1))
	echo "ok   $1"
}

t_bad() {
	T_FAIL=$((T_FAIL + 1))
	echo "FAIL $1${2:+: $2}"
}

# t_check NAME CMD...: passes when CMD exits 0.
t_check() {
	local name=$1
	shift
	if "$@" >"$T_TMP/last.out" 2>&1; then
		t_ok "$name"
	else
		t_bad "$name" "$(tail -c 600 "$T_TMP/last.out" | tr '\n' ' ')"
	fi
}

# t_fails NAME CMD...: passes when CMD exits non-zero.
t_fails() {
	local name=$1
	shift
	if "$@" >"$T_TMP/last.out" 2>&1; then
		t_bad "$name" "expected failure, got success"
	else
		t_ok "$name"
	fi
}

# t_eq NAME EXPECTED ACTUAL
t_eq() {
	if [ "$2" = "$3" ]; then
		t_ok "$1"
	else
		t_bad "$1" "expected [$2] got [$3]"
	fi
}

# t_wait SECONDS CMD...: polls CMD every 50 ms until it succeeds; 1 on timeout.
t_wait() {
	local secs=$1 end
	shift
	end=$(($(date +%s%N) / 1000000 + secs * 1000))
	while [ $(($(date +%s%N) / 1000000)) -lt $end ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# t_newdb NAME: creates an empty database NAME_<pid> and prints its DSN.
t_newdb() {
	local db="$1_$$"
	psql "$SUB2API_TEST_DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $db" >/dev/null
	psql "$SUB2API_TEST_DATABASE_URL" -qAtc "CREATE DATABASE $db" >/dev/null
	echo "${SUB2API_TEST_DATABASE_URL%/*}/$db"
}

t_done() {
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}
