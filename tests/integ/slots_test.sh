#!/usr/bin/env bash
# slots_test.sh: concurrency leases end to end, including a dead gateway.
#  - 300 requests in batches of 20 through the real gateway, scheduler and
#    billing to the fake upstream: 100 streams cut by the client mid-stream
#    (curl --max-time 0.5), 20 long streams in flight when the gateway is
#    SIGKILLed (batch 8), the rest normal (half streamed);
#  - a new gateway takes over; a stream longer than the lease TTL keeps
#    its lease (the gateway renews it) and completes;
#  - afterwards every slot set is empty within the lease TTL, no lease
#    record is left, the fake has nothing in flight, and the scheduler's
#    sweeper by itself removes an expired slot left by a dead gateway.
# Lease TTL 8 s, renew every 2 s, sweep every 1 s, so the test runs fast.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
T_START=$(date +%s%N)
export SUB2API_SCHEDULER_LEASE_TTL=8s
export SUB2API_SCHEDULER_SLOT_SWEEP_INTERVAL=1s
export SUB2API_GATEWAY_LEASE_RENEW_INTERVAL=2s
export SUB2API_SCHEDULER_LOG_LEVEL=debug
TTL_S=8
gws_up 18680
R=$SUB2API_REDIS_URL
psql -qAt "$DB" -c "UPDATE users SET concurrency = 64; UPDATE accounts SET concurrency = 64" >/dev/null
t_eq "concurrency raised to 64" 64 "$(psql -qAt "$DB" -c "SELECT min(concurrency) FROM accounts")"

mkdir -p "$T_TMP/res"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# req N KIND: one request; writes "KIND HTTP_CODE CURL_RC COMPLETE" to res/N.
#   cut     a 5 s stream the client leaves after 0.5 s
#   long    a 20 s stream (batch 8: the gateway dies under it)
#   renew   a 10 s stream, longer than the lease TTL
#   stream  a normal stream;  plain  a normal non-stream request
req() {
	local n=$1 kind=$2 model=claude-sonnet-4-5 stream=false max=20 code rc done_=0
	case $kind in
	cut) model='claude-sonnet-4-5@fake:drip=50:deltas=100' stream=true max=0.5 ;;
	long) model='claude-sonnet-4-5@fake:drip=200:deltas=100' stream=true max=30 ;;
	renew) model='claude-sonnet-4-5@fake:drip=100:deltas=100' stream=true max=30 ;;
	stream) stream=true ;;
	esac
	code=$(curl -s -o "$T_TMP/res/$n.body" -w '%{http_code}' --max-time "$max" \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $KEY" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "{\"model\":\"$model\",\"max_tokens\":64,\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
	rc=$?
	if [ "$stream" = false ] || grep -q '^event: message_stop' "$T_TMP/res/$n.body"; then done_=1; fi
	echo "$kind $code $rc $done_" >"$T_TMP/res/$n"
}

# batch B: starts the 20 requests of batch B; their pids land in BPIDS.
# Outside batch 8, 5 of every 14 requests are cut (100 of 280), and the
# others alternate stream / plain.
N=0 K=0 M=0
batch() {
	local j kind
	BPIDS=()
	for j in $(seq 1 20); do
		N=$((N + 1))
		if [ "$1" = 8 ]; then
			kind=long
		elif [ $((K % 14)) -lt 5 ]; then
			kind=cut
		else
			kind=$([ $((M % 2)) -eq 0 ] && echo stream || echo plain)
			M=$((M + 1))
		fi
		[ "$1" = 8 ] || K=$((K + 1))
		req "$N" "$kind" &
		BPIDS+=($!)
	done
}

fake_in_flight() {
	curl -fsS -m 2 "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])'
}
slot_members() { # all members of all slot sets
	redis-cli -u "$R" --scan --pattern '*slots:*' | while read -r k; do
		redis-cli -u "$R" zcard "$k"
	done | awk '{s += $1} END {print s + 0}'
}
slots_empty() { [ "$(slot_members)" = 0 ]; }
lease_records() { redis-cli -u "$R" --scan --pattern '*lease:*' | wc -l; }
gw_ready() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$GW_HEALTH/readyz")" = 200 ]; }

T_RUN=$(now_ms)
for b in 1 2 3 4 5 6 7; do
	batch "$b"
	wait "${BPIDS[@]}"
done
t_check "cut streams leave no slot behind (batches 1-7)" t_wait 2 slots_empty

# Batch 8: 20 long streams; once all are streaming, SIGKILL the gateway.
batch 8
LONG_PIDS=("${BPIDS[@]}")
t_check "20 long streams in flight at the fake" t_wait 10 bash -c "[ \"\$(curl -fsS -m 2 $FAKE_URL/_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"in_flight\"])')\" -ge 20 ]"
# Kill right after a renewal, so the dead leases live a full TTL from the
# kill (and the old gateway is seen renewing them).
T_B8=$(now_ms)
just_renewed() {
	local now low
	[ $(($(now_ms) - T_B8)) -ge 1000 ] || return 1
	now=$(redis-cli -u "$R" time | awk 'NR == 1 {s = $1} NR == 2 {printf "%d", s * 1000 + int($1 / 1000)}')
	low=$(redis-cli -u "$R" --scan --pattern '*slots:user:*' | while read -r k; do
		redis-cli -u "$R" zrange "$k" 0 0 withscores | sed -n 2p
	done | sort -n | head -1)
	[ -n "$low" ] && [ "${low%.*}" -ge $((now + TTL_S * 1000 - 700)) ]
}
t_check "the old gateway renews the long streams' leases" t_wait 5 just_renewed
held=$(slot_members)
t_eq "the dying gateway holds 20 user + 20 key + 20 account slots" 60 "$held"
OLD=${PID[gateway]}
kill -KILL "$OLD"
T_KILL=$(now_ms)
wait "$OLD" 2>/dev/null
wait "${LONG_PIDS[@]}"
t_eq "the long streams were cut by the gateway's death" 0 \
	"$(cat "$T_TMP"/res/{141..160} | awk '$1 == "long" && $3 == 0' | wc -l)"

# A new gateway, started as gwstack.sh does (same environment).
"$BIN/sub2api-gateway" >>"$T_TMP/gateway.log" 2>&1 &
PID[gateway]=$!
t_check "new gateway ready" t_wait 15 gw_ready
t_eq "the dead gateway's leases are still held" 60 "$(slot_members)"

# A stream longer than the lease TTL runs beside the remaining batches.
req 301 renew &
RENEW_PID=$!
T_RENEW=$(now_ms)
for b in 9 10 11 12 13 14 15; do
	batch "$b"
	wait "${BPIDS[@]}"
done
T_BATCHES=$(now_ms)
echo "info batches 9-15 ended $(secs $((T_BATCHES - T_KILL))) s after the kill"
# The dead leases go once expired (TTL after their last renewal, before
# the kill) and swept: only the renewed stream's three members (user,
# key, account) remain.
if t_wait $((TTL_S + 2)) bash -c "[ \"\$(redis-cli -u '$R' --scan --pattern '*slots:*' | while read -r k; do redis-cli -u '$R' zcard \"\$k\"; done | awk '{s += \$1} END {print s + 0}')\" = 3 ]"; then
	t_ok "the dead gateway's slots are reclaimed $(secs $(($(now_ms) - T_KILL))) s after the kill (TTL ${TTL_S} s)"
else
	t_bad "the dead gateway's slots are reclaimed within $((TTL_S + 2)) s" "$(slot_members) members"
fi
# Past the TTL, the renewed lease's expiry is well ahead of the Redis
# clock (a lease not renewed would have expired already).
renewed() {
	local now
	[ $(($(now_ms) - T_RENEW)) -ge $((TTL_S * 1000 + 500)) ] || return 1
	now=$(redis-cli -u "$R" time | awk 'NR == 1 {s = $1} NR == 2 {printf "%d", s * 1000 + int($1 / 1000)}')
	[ "$(redis-cli -u "$R" --scan --pattern '*slots:user:*' | while read -r k; do
		redis-cli -u "$R" zcount "$k" $((now + 4000)) +inf
	done | awk '{s += $1} END {print s + 0}')" = 1 ]
}
t_check "a stream longer than the TTL keeps its lease (renewed)" t_wait 12 renewed
wait "$RENEW_PID"
T_LAST=$(now_ms)
t_eq "the long renewed stream completes (200, message_stop)" "renew 200 0 1" "$(cat "$T_TMP/res/301")"

# Every slot set empties within the lease TTL.
if t_wait $((TTL_S + 2)) slots_empty; then
	T_EMPTY=$(now_ms)
	t_ok "every slot set empty $(secs $((T_EMPTY - T_LAST))) s after the last request ($(secs $((T_EMPTY - T_KILL))) s after the kill)"
else
	t_bad "every slot set empty within $((TTL_S + 2)) s" "$(slot_members) members left: $(redis-cli -u "$R" --scan --pattern '*slots:*' | tr '\n' ' ')"
fi
t_check "no lease record left" t_wait 2 bash -c "[ \"\$(redis-cli -u '$R' --scan --pattern '*lease:*' | wc -l)\" = 0 ]"
t_eq "no slot key left at all" 0 "$(redis-cli -u "$R" --scan --pattern '*slots:*' | wc -l)"
t_check "fake: nothing in flight" t_wait 5 bash -c "[ \"\$(curl -fsS -m 2 $FAKE_URL/_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"in_flight\"])')\" = 0 ]"
# The sweeper by itself: with no traffic at all, an expired member left in
# an account set (what a dead gateway leaves) is removed by the sweeper
# alone, since no acquire touches that set.  (During the run above,
# acquires may prune the dead leases first; this makes the check exact.)
swept0=$(gws_metric "$SCHED_HEALTH" sub2api_sched_slots_swept_total)
redis-cli -u "$R" zadd s2a:slots:acct:999999 1 dead-lease >/dev/null
t_check "the sweeper removes an expired slot left by a dead gateway" \
	t_wait 5 bash -c "[ \"\$(redis-cli -u '$R' exists s2a:slots:acct:999999)\" = 0 ]"
swept=$(gws_metric "$SCHED_HEALTH" sub2api_sched_slots_swept_total)
t_check "the sweeper counted it (swept ${swept0:-?} -> ${swept:-?})" test "${swept:-0}" -gt "${swept0:-0}"
echo "info sweeps that removed members: $(grep -c '"ev":"sched.sweep_done".*"removed":[1-9]' "$T_TMP/scheduler.log")"

# Outcomes of the 300.
count() { cat "$T_TMP"/res/{1..300} | awk "$1" | wc -l; }
t_eq "300 requests recorded" 300 "$(count '1')"
t_eq "kinds: 100 cut, 20 long, 90 stream, 90 plain" "100 20 90 90" \
	"$(count '$1 == "cut"') $(count '$1 == "long"') $(count '$1 == "stream"') $(count '$1 == "plain"')"
t_eq "every normal request got 200, complete" 180 "$(count '($1 == "stream" || $1 == "plain") && $2 == 200 && $3 == 0 && $4 == 1')"
t_eq "every cut request was left mid-stream (200 then timeout)" 100 "$(count '$1 == "cut" && $2 == 200 && $3 == 28')"
t_check "the gateway is healthy after the cuts" gw_ready
t_check "the gateway process is alive" kill -0 "${PID[gateway]}"
t_eq "a request after the run gets 200" "plain 200 0 1" "$(req 302 plain; cat "$T_TMP/res/302")"

for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$T_TMP/gateway.log" "$T_TMP/scheduler.log"
echo "info runtime $(secs $(($(now_ms) - T_START / 1000000))) s (run $(secs $(($(now_ms) - T_RUN))) s)"
t_done
