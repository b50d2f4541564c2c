#!/usr/bin/env bash
# stack_test.sh: the six services started for real against PostgreSQL and
# a Redis of this test's own, proving the wiring of issue 1:
#  - every /healthz answers 200, every /readyz 200, every /metrics passes
#    promtool;
#  - the gateway's scheduler ping round trip succeeds (counter and readyz);
#  - billing and opsmon each receive >= 1000 heartbeats with none missed,
#    and again >= 1000 after the subscriber is restarted (after reconnect);
#  - opsmon's snapshots reach the alerter;
#  - the scheduler's /readyz turns 503 within 5 s of Redis stopping and 200
#    within 5 s of its return;
#  - SIGTERM: each service exits 0 within 5 s (under ASan, LeakSanitizer
#    would make the exit status non-zero and print a report).
. "$(dirname "$0")/lib.sh"

SERVICES="scheduler billing opsmon alerter webui gateway"
declare -A HP=([gateway]=19101 [scheduler]=19102 [billing]=19103 [opsmon]=19104 [alerter]=19105 [webui]=19106)
declare -A PID
REDIS_PORT=$((20000 + $$ % 10000))
RUN=$T_TMP/run
mkdir -p "$RUN" "$T_TMP/redis"

DB=$(t_newdb stack)
export SUB2API_DATABASE_URL=$DB
export SUB2API_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export SUB2API_STATE_DIR=$RUN
export SUB2API_SECRET_KEY=$(openssl rand -hex 32)
export SUB2API_GATEWAY_LISTEN_ADDR=127.0.0.1:18080
export SUB2API_WEBUI_LISTEN_ADDR=127.0.0.1:18081
export SUB2API_GATEWAY_HEARTBEAT_INTERVAL=2ms
export SUB2API_GATEWAY_SCHED_PING_INTERVAL=100ms
export SUB2API_OPSMON_SNAPSHOT_INTERVAL=200ms
for s in $SERVICES; do
	u=$(echo "$s" | tr a-z A-Z)
	export "SUB2API_${u}_HEALTH_ADDR=127.0.0.1:${HP[$s]}"
done

redis_up() {
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
		--appendonly no --daemonize yes --dir "$T_TMP/redis" \
		--pidfile "$T_TMP/redis/redis.pid" --logfile "$T_TMP/redis/log" >/dev/null
	t_wait 5 redis-cli -p "$REDIS_PORT" ping
}
redis_down() {
	redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
	t_wait 5 bash -c "! redis-cli -p $REDIS_PORT ping"
}

start() {
	"$BIN/sub2api-$1" >>"$T_TMP/$1.log" 2>&1 &
	PID[$1]=$!
}

code() {
	curl -s -o /dev/null -m 3 -w '%{http_code}' "$1"
}

metric() {
	curl -fsS -m 3 "http://127.0.0.1:${HP[$1]}/metrics" |
		awk -v m="$2" '$1 == m { printf "%d\n", $2 }'
}

# at_least SVC METRIC N: metric has reached N.
at_least() {
	local v
	v=$(metric "$1" "$2")
	[ -n "$v" ] && [ "$v" -ge "$3" ]
}

cleanup() {
	for s in $SERVICES; do
		[ -n "${PID[$s]:-}" ] && kill -KILL "${PID[$s]}" 2>/dev/null
	done
	redis_down
}
trap cleanup EXIT

t_check "redis for this test starts" redis_up
t_check "migrate the test database" "$BIN/sub2apictl" --db "$DB" --migrations "$ROOT/migrations" migrate

for s in $SERVICES; do
	t_check "$s --check-config" "$BIN/sub2api-$s" --check-config
	start "$s"
done

for s in $SERVICES; do
	t_check "$s /healthz 200" t_wait 10 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[$s]}/healthz)\" = 200 ]"
done
for s in $SERVICES; do
	t_check "$s /readyz 200" t_wait 15 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[$s]}/readyz)\" = 200 ]"
done
for s in $SERVICES; do
	curl -fsS -m 3 "http://127.0.0.1:${HP[$s]}/metrics" >"$T_TMP/$s.metrics"
	t_check "$s /metrics passes promtool" bash -c "promtool check metrics < '$T_TMP/$s.metrics'"
done

t_check "gateway HEAD / on the client port" bash -c "[ \"\$(curl -s -I -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/)\" = 200 ]"
t_check "webui serves its page" bash -c "curl -fsS http://127.0.0.1:18081/ | grep -q Sub2API"

# Ping round trip: the gateway's counter of answered pings grows.
t_check "gateway -> scheduler ping answered" t_wait 5 at_least gateway sub2api_gateway_sched_pings_ok_total 3
t_eq "no failed pings while the scheduler is up" 0 "$(metric gateway sub2api_gateway_sched_pings_failed_total)"

# Heartbeats: 1000 received by each collector, none missed.
for s in billing opsmon; do
	t_check "$s received >= 1000 heartbeats" t_wait 60 at_least "$s" sub2api_heartbeats_received_total 1000
	t_eq "$s missed no heartbeat" 0 "$(metric "$s" sub2api_heartbeats_missed_total)"
	t_eq "$s got no malformed heartbeat" 0 "$(metric "$s" sub2api_heartbeats_malformed_total)"
done
t_eq "gateway dropped no heartbeat" 0 "$(metric gateway sub2api_heartbeats_dropped_total)"

# Restart each subscriber: after the gateway redials, all arrive again.
for s in billing opsmon; do
	kill -TERM "${PID[$s]}"
	wait "${PID[$s]}"
	t_eq "$s exits 0 on SIGTERM (restart)" 0 $?
	start "$s"
	t_check "$s restarted: >= 1000 heartbeats again" t_wait 60 at_least "$s" sub2api_heartbeats_received_total 1000
	t_eq "$s restarted: none missed after reconnect" 0 "$(metric "$s" sub2api_heartbeats_missed_total)"
done

t_check "alerter receives opsmon snapshots" t_wait 10 at_least alerter sub2api_alerter_snapshots_total 2

# Redis outage seen by the scheduler's readiness.
redis_down
t_check "scheduler /readyz 503 within 5 s of Redis stopping" t_wait 5 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[scheduler]}/readyz)\" = 503 ]"
curl -s -m 2 "http://127.0.0.1:${HP[scheduler]}/readyz" >"$T_TMP/readyz.json"
t_check "readyz names redis as failing" grep -q '"redis":{"ok":false' "$T_TMP/readyz.json"
redis_up
t_check "scheduler /readyz 200 within 5 s of Redis returning" t_wait 5 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[scheduler]}/readyz)\" = 200 ]"

# The gateway is not ready without its scheduler.
kill -TERM "${PID[scheduler]}"
wait "${PID[scheduler]}"
t_eq "scheduler exits 0 on SIGTERM" 0 $?
t_check "gateway /readyz 503 without the scheduler" t_wait 10 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[gateway]}/readyz)\" = 503 ]"
start scheduler
t_check "gateway /readyz 200 with the scheduler back" t_wait 10 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:${HP[gateway]}/readyz)\" = 200 ]"

# SIGTERM: all exit 0 within 5 s.
for s in $SERVICES; do
	kill -TERM "${PID[$s]}"
done
for s in $SERVICES; do
	t0=$(date +%s%N)
	if timeout 6 tail --pid="${PID[$s]}" -f /dev/null; then
		wait "${PID[$s]}"
		rc=$?
		ms=$((($(date +%s%N) - t0) / 1000000))
		t_eq "$s exits 0 on SIGTERM" 0 $rc
		t_check "$s stopped within 5 s" test "$ms" -le 5000
	else
		t_bad "$s stopped within 5 s" "still running"
	fi
	PID[$s]=
	t_fails "$s log has no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$T_TMP/$s.log"
done

t_done
