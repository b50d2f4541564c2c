#!/usr/bin/env bash
# waitq_test.sh: per-API-key concurrency and the wait queues end to end
# (real gateway, scheduler and billing; the fake upstream drips streams).
#  (a) a key of concurrency 1, two parallel streams: the second waits,
#      gets SSE pings, and completes after the first; the fake never has
#      two in flight; count_tokens meanwhile is answered at once (it
#      holds no slot);
#  (b) a user of concurrency 1 with wait_queue_extra 2 (cap 1 + 2 = 3
#      waiters): of 1 + 3 + 1 parallel slow requests exactly one is
#      refused at once with 429 "Too many pending requests", the others
#      complete; the scheduler's metrics count it (and pass promtool);
#  (c) clients that leave while waiting (curl --max-time) are cancelled:
#      the wait sets are empty at once while the slot holder still runs;
#      and waiters of a gateway that is SIGKILLed leave the sets within
#      the wait TTL (4 s here), through expiry and the sweeper.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
export SUB2API_SCHEDULER_WAIT_QUEUE_EXTRA=2
export SUB2API_SCHEDULER_WAIT_TTL=4s
export SUB2API_SCHEDULER_SLOT_SWEEP_INTERVAL=1s
export SUB2API_GATEWAY_WAIT_PING_INTERVAL=300ms
gws_up 18880
R=$SUB2API_REDIS_URL
SCHED_METRICS=http://127.0.0.1:$SCHED_HEALTH/metrics
mkdir -p "$T_TMP/res"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# req N KEY MODEL MAX: one stream request; writes "CODE RC START_MS END_MS"
# to res/N and the body to res/N.body.
req() {
	local n=$1 key=$2 model=$3 max=$4 code rc t0
	t0=$(now_ms)
	code=$(curl -s -o "$T_TMP/res/$n.body" -w '%{http_code}' --max-time "$max" \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $key" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "{\"model\":\"$model\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
	rc=$?
	echo "$code $rc $t0 $(now_ms)" >"$T_TMP/res/$n"
}
fake_stat() {
	curl -fsS -m 2 "$FAKE_URL/_fake/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"
}
in_flight_is() { [ "$(fake_stat in_flight)" = "$1" ]; }
wait_members() { # members of every wait set
	redis-cli -u "$R" --scan --pattern '*slots:wait:*' | while read -r k; do
		redis-cli -u "$R" zcard "$k"
	done | awk '{s += $1} END {print s + 0}'
}
waiters_are() { [ "$(wait_members)" = "$1" ]; }
waiter_records() { redis-cli -u "$R" --scan --pattern '*waiter:*' | wc -l; }
completed() { grep -q '^event: message_stop' "$T_TMP/res/$1.body"; }
uid_of() { psql -qAt "$DB" -c "SELECT id FROM users WHERE email = '$1'"; }

# ---- (a) a key of concurrency 1 --------------------------------------
t_eq "the fake starts idle" 0 "$(fake_stat max_in_flight)"
$CTL user add --email keyconc@example.com --balance 100 --concurrency 10 >/dev/null
KEY1=$(gws_newkey keyconc@example.com)
psql -qAt "$DB" -c "UPDATE api_keys SET concurrency = 1 WHERE key_prefix = '${KEY1:0:10}'" >/dev/null
t_eq "the key has concurrency 1" 1 \
	"$(psql -qAt "$DB" -c "SELECT concurrency FROM api_keys WHERE key_prefix = '${KEY1:0:10}'")"
DRIP='claude-sonnet-4-5@fake:drip=200:deltas=20'
req a1 "$KEY1" "$DRIP" 30 &
P1=$!
t_check "(a) the first stream is at the fake" t_wait 5 in_flight_is 1
req a2 "$KEY1" "$DRIP" 30 &
P2=$!
t_check "(a) the second waits in the key's queue" t_wait 5 waiters_are 1
wait "$P1" "$P2"
read -r c1 rc1 s1 e1 <"$T_TMP/res/a1"
read -r c2 rc2 s2 e2 <"$T_TMP/res/a2"
t_eq "(a) both answered 200" "200 200" "$c1 $c2"
t_check "(a) both streams completed" bash -c "grep -q '^event: message_stop' '$T_TMP/res/a1.body' && grep -q '^event: message_stop' '$T_TMP/res/a2.body'"
# The fake sends one ping after content_block_start; the gateway's pings
# come before message_start.
pings_before_start() { awk '/^event: message_start/ {exit} /^event: ping/ {n++} END {print n + 0}' "$1"; }
t_check "(a) the waiting stream got SSE pings while it waited" \
	test "$(pings_before_start "$T_TMP/res/a2.body")" -ge 2
t_eq "(a) the first stream got none" 0 "$(pings_before_start "$T_TMP/res/a1.body")"
t_check "(a) the second completed after the first" test "$e2" -gt "$e1"
t_check "(a) the second took at least twice as long" test $((e2 - s2)) -ge $((2 * (e1 - s1) - 500))
t_eq "(a) the fake never saw two at once" 1 "$(fake_stat max_in_flight)"
t_check "(a) no waiter left" t_wait 2 waiters_are 0
t_eq "(a) no waiter record left" 0 "$(waiter_records)"

# count_tokens takes no slot: with the key's one slot held and another
# request waiting for it, it is answered at once and joins no queue.
req a3 "$KEY1" "$DRIP" 30 &
P1=$!
t_check "(a) a stream holds the key's slot again" t_wait 5 in_flight_is 1
req a4 "$KEY1" "$DRIP" 30 &
P2=$!
t_check "(a) and another waits for it" t_wait 5 waiters_are 1
ct=$(curl -s -m 10 -o "$T_TMP/res/ct.body" -w '%{http_code}' \
	"http://127.0.0.1:$GW/v1/messages/count_tokens" -H "x-api-key: $KEY1" \
	-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
	-d '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}')
t_eq "(a) count_tokens answers 200 meanwhile" 200 "$ct"
t_check "(a) ... with input_tokens" grep -q '"input_tokens"' "$T_TMP/res/ct.body"
t_check "(a) ... before the slot holder finished" test ! -e "$T_TMP/res/a3"
t_eq "(a) ... without joining the wait queue" 1 "$(wait_members)"
wait "$P1" "$P2"
t_eq "(a) both streams still answered 200" "200 200" "$(cut -d' ' -f1 "$T_TMP/res/a3") $(cut -d' ' -f1 "$T_TMP/res/a4")"
t_check "(a) no waiter left after them" t_wait 2 waiters_are 0

# ---- (b) the admission cap: concurrency 1 + 3 waiters ------------------
$CTL user add --email capped@example.com --balance 100 --concurrency 1 >/dev/null
KEY2=$(gws_newkey capped@example.com)
UID2=$(uid_of capped@example.com)
SLOW='claude-sonnet-4-5@fake:drip=100:deltas=10'
BP=()
for i in 1 2 3 4 5; do
	req "b$i" "$KEY2" "$SLOW" 30 &
	BP+=($!)
done
wait "${BP[@]}"
n429=0 n200=0 fast429=0 done200=0
for i in 1 2 3 4 5; do
	read -r c rc s e <"$T_TMP/res/b$i"
	if [ "$c" = 429 ]; then
		n429=$((n429 + 1))
		[ $((e - s)) -lt 1000 ] && fast429=$((fast429 + 1))
		grep -q 'Too many pending requests' "$T_TMP/res/b$i.body" &&
			grep -q '"rate_limit_error"' "$T_TMP/res/b$i.body" && TOO_MANY=b$i
	elif [ "$c" = 200 ]; then
		n200=$((n200 + 1))
		completed "b$i" && done200=$((done200 + 1))
	fi
done
t_eq "(b) exactly one of 1 + 3 + 1 is refused with 429" 1 "$n429"
t_eq "(b) ... at once" 1 "$fast429"
t_check "(b) ... as rate_limit_error 'Too many pending requests'" test -n "${TOO_MANY:-}"
t_eq "(b) the other four completed" "4 4" "$n200 $done200"
t_eq "(b) the scheduler counted one refusal" 1 \
	"$(gws_metric "$SCHED_HEALTH" sub2api_sched_queue_full_total)"
t_check "(b) the scheduler's metrics pass promtool" bash -c "curl -fsS -m 3 '$SCHED_METRICS' | promtool check metrics"
t_check "(b) no waiter left" t_wait 2 waiters_are 0

# ---- (c) clients leave while waiting: cancelled at once ---------------
req c0 "$KEY2" 'claude-sonnet-4-5@fake:drip=200:deltas=40' 30 &
C0=$!
t_check "(c) the holder streams" t_wait 5 in_flight_is 1
CP=()
for i in 1 2 3; do
	req "c$i" "$KEY2" "$SLOW" 1.5 &
	CP+=($!)
done
t_check "(c) three requests wait" t_wait 3 bash -c "[ \"\$(redis-cli -u '$R' zcard s2a:slots:wait:user:$UID2)\" = 3 ]"
gauge_is() { [ "$(gws_metric "$SCHED_HEALTH" sub2api_sched_waiting_requests)" = "$1" ]; }
t_check "(c) the sweeper's gauge shows them" t_wait 3 gauge_is 3
wait "${CP[@]}"
t_eq "(c) the waiting clients gave up (curl timeout)" "28 28 28" \
	"$(for i in 1 2 3; do awk '{print $2}' "$T_TMP/res/c$i"; done | xargs)"
t_check "(c) their waiters are gone at once" t_wait 1 waiters_are 0
t_eq "(c) ... and their records" 0 "$(waiter_records)"
t_check "(c) while the holder still streams" in_flight_is 1

# ---- (c) a gateway dies with waiters: gone within the wait TTL --------
CK=()
for i in 4 5; do
	req "c$i" "$KEY2" "$SLOW" 30 &
	CK+=($!)
done
t_check "(c) two more wait" t_wait 3 waiters_are 2
kill -KILL "${PID[gateway]}"
T_KILL=$(now_ms)
wait "${PID[gateway]}" 2>/dev/null
unset "PID[gateway]"
wait "$C0" "${CK[@]}"
t_check "(c) the dead gateway's waiters expire within the wait TTL" t_wait 6 waiters_are 0
t_check "(c) ... not before their expiry (no cancel was sent)" test $(($(now_ms) - T_KILL)) -ge 1500
t_check "(c) the waiter records expire too" t_wait 2 bash -c "[ \"\$(redis-cli -u '$R' --scan --pattern '*waiter:*' | wc -l)\" = 0 ]"
t_check "(c) the gauge is back to 0" t_wait 3 gauge_is 0

for s in scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$T_TMP/gateway.log" "$T_TMP/scheduler.log"

t_done
