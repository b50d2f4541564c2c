#!/usr/bin/env bash
# localstack_test.sh: the local stack scripts behind make up / status /
# down, run for real on ports and a var/ of this test's own:
#  - up installs nothing new here, starts PostgreSQL and Redis, migrates,
#    creates the first admin once, starts six services that all answer
#    /healthz 200 and /readyz 200;
#  - up again is idempotent (same pids, migrations a no-op);
#  - after kill -9 of everything (stale pid files and postmaster.pid left
#    behind), up recovers;
#  - down stops every process.
. "$(dirname "$0")/lib.sh"

chmod 755 "$T_TMP"
export SUB2API_VAR=$T_TMP/var
export SUB2API_PG_PORT=$((22000 + $$ % 1000))
export SUB2API_REDIS_PORT=$((23000 + $$ % 1000))
export SUB2API_HEALTH_BASE=24100
export SUB2API_GATEWAY_PORT=24080
export SUB2API_WEBUI_PORT=24081
export BIN
unset SUB2API_DATABASE_URL SUB2API_REDIS_URL SUB2API_STATE_DIR
STACK="bash $ROOT/compose/local/stack.sh"
SERVICES="gateway scheduler billing opsmon alerter webui"

all_up() {
	local i
	for i in 1 2 3 4 5 6; do
		[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$((24100 + i))/healthz")" = 200 ] || return 1
		[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$((24100 + i))/readyz")" = 200 ] || return 1
	done
}

pids() {
	local s
	for s in $SERVICES; do
		cat "$SUB2API_VAR/run/$s.pid" 2>/dev/null
	done | tr '\n' ' '
}

cleanup() {
	$STACK down >/dev/null 2>&1
}
trap cleanup EXIT

$STACK up >"$T_TMP/up1.out" 2>&1
t_eq "stack up" 0 $?
t_check "first admin created and printed once" grep -q "first admin created" "$T_TMP/up1.out"
t_check "six services healthy and ready" t_wait 15 all_up
t_check "gateway client port answers" curl -fsS -m 2 -I http://127.0.0.1:24080/
t_check "status lists six services at 200" bash -c "$STACK status | grep -c ' 200 200' | grep -qx 6"
before=$(pids)
$STACK up >"$T_TMP/up2.out" 2>&1
t_eq "stack up again" 0 $?
t_check "second up: migrations a no-op" grep -q "up to date" "$T_TMP/up2.out"
t_fails "second up: no second admin" grep -q "first admin created" "$T_TMP/up2.out"
t_eq "second up: same processes" "$before" "$(pids)"

# kill -9 everything, leaving stale pid files and postmaster.pid behind.
for p in $(pids); do kill -KILL "$p" 2>/dev/null; done
pgdir=$SUB2API_VAR/pg
[ -f "$pgdir/location" ] && pgdir=$(cat "$pgdir/location")
kill -KILL "$(head -n 1 "$pgdir/data/postmaster.pid")" 2>/dev/null
kill -KILL "$(cat "$SUB2API_VAR/redis/redis.pid")" 2>/dev/null
t_wait 5 bash -c "! redis-cli -p $SUB2API_REDIS_PORT ping" >/dev/null
t_check "postmaster.pid left behind" test -f "$pgdir/data/postmaster.pid"
t_check "stack up after kill -9" $STACK up
t_check "six services healthy and ready after recovery" t_wait 15 all_up

t_check "stack down" $STACK down
left=0
. "$ROOT/compose/local/servers.sh"
for p in $(pids); do srv_alive "$p" && left=$((left + 1)); done
t_eq "no service left after down" 0 "$left"
t_fails "redis stopped" redis-cli -p "$SUB2API_REDIS_PORT" ping
t_fails "postgres stopped" pg_isready -q -h 127.0.0.1 -p "$SUB2API_PG_PORT"
t_done
