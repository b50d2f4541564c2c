#!/usr/bin/env bash
# relay_test.sh: Anthropic Messages through the real gateway, scheduler and
# billing (as the usage-event subscriber) to the fake upstream.
#  - non-stream and stream answers reach the client intact, with usage;
#  - count_tokens; request headers up to header_max;
#  - the error matrix: no key, unknown key, disabled key, zero balance,
#    bad JSON, missing model, body over the limit, unknown route;
#  - failover: account A answers 429, the request succeeds on B;
#  - client disconnect mid-stream: the fake sees its connection closed
#    within 1 s and Redis holds no slot for the request 1 s later;
#  - every completed request yields exactly one usage event;
#  - the gateway exits 0 on SIGTERM while holding 200 streams.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
export SUB2API_GATEWAY_WAIT_TIMEOUT=3s SUB2API_GATEWAY_WAIT_PING_INTERVAL=300ms
gws_up 18180

msg() { # msg KEY BODY [curl args...]
	local k=$1 b=$2
	shift 2
	curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $k" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' -d "$b" "$@"
}
jget() { python3 -c "import json,sys; d=json.load(open('$T_TMP/body')); print($1)"; }

B='{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
t_eq "non-stream 200" 200 "$(msg "$KEY" "$B")"
t_eq "non-stream is a message" message "$(jget 'd["type"]')"
t_eq "non-stream model echoed" claude-sonnet-4-5 "$(jget 'd["model"]')"
t_check "non-stream usage present" test "$(jget 'd["usage"]["output_tokens"]')" -gt 0
# header_max (32 KiB by default): 20 KB of headers pass, 40 KB get 431.
PAD=$(head -c 20000 /dev/zero | tr '\0' a)
t_eq "20 KB of headers accepted" 200 "$(msg "$KEY" "$B" -H "x-pad: $PAD")"
t_eq "40 KB of headers refused 431" 431 "$(msg "$KEY" "$B" -H "x-pad: $PAD$PAD")"

SB='{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
t_eq "stream 200" 200 "$(msg "$KEY" "$SB" -H 'authorization: Bearer '"$KEY")"
t_eq "stream event order" "message_start content_block_start ping content_block_delta content_block_stop message_delta message_stop" \
	"$(grep '^event:' "$T_TMP/body" | awk '{print $2}' | uniq | tr '\n' ' ' | sed 's/ $//')"
t_check "bearer auth accepted (stream above used both headers)" true

t_eq "count_tokens 200" 200 "$(curl -s -m 10 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages/count_tokens" -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d "$B")"
t_check "count_tokens answers input_tokens" test "$(jget 'd["input_tokens"]')" -gt 0

# Model list and the balance probe.
t_eq "GET /v1/models 200" 200 "$(curl -s -m 10 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/models" -H "x-api-key: $KEY")"
t_check "models list holds claude-sonnet-4-5" test "$(jget '[m["id"] for m in d["data"]].count("claude-sonnet-4-5")')" = 1
# Billing charges the requests above: let it commit them all first, so
# the balance the probe reads is the one in the database.
settled() { [ "$(psql -qAt "$DB" -c "SELECT count(*) FROM usage_logs")" = "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_events_total)" ]; }
t_check "billing committed every usage event so far" t_wait 15 settled
t_eq "GET /v1/usage 200" 200 "$(curl -s -m 10 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/usage" -H "authorization: Bearer $KEY")"
t_eq "usage probe: valid, USD" "True USD" "$(jget 'd["isValid"], d["unit"]' | tr -d "(),'")"
BAL=$(psql -qAt "$DB" -c "SELECT balance FROM users WHERE email = 'rich@example.com'")
t_check "usage probe: balance charged by billing" python3 -c "from decimal import Decimal as D; import sys; sys.exit(not D('$BAL') < 100)"
t_eq "usage probe: remaining is the exact balance" True "$(python3 -c "import json; from decimal import Decimal as D; d=json.load(open('$T_TMP/body'), parse_float=D); print(D(str(d['remaining'])) == D('$BAL'))")"
t_eq "GET /v1/models with a bad key -> 401" 401 "$(curl -s -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/models" -H "x-api-key: sk-bad")"

# Error matrix.
t_eq "no key -> 401" 401 "$(curl -s -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" -d "$B")"
t_eq "no key -> authentication_error" authentication_error "$(jget 'd["error"]["type"]')"
t_eq "unknown key -> 401" 401 "$(msg sk-nope "$B")"
t_eq "unknown key is Anthropic-shaped" error "$(jget 'd["type"]')"
t_eq "disabled key -> 401" 401 "$(msg "$OFF" "$B")"
t_eq "zero balance -> 403" 403 "$(msg "$POOR" "$B")"
t_eq "bad JSON -> 400" 400 "$(msg "$KEY" '{"model":')"
t_eq "bad JSON -> invalid_request_error" invalid_request_error "$(jget 'd["error"]["type"]')"
t_eq "missing model -> 400" 400 "$(msg "$KEY" '{"max_tokens":5,"messages":[]}')"
head -c 1200000 /dev/zero | tr '\0' 'a' >"$T_TMP/big"
t_eq "body over the limit -> 413" 413 "$(curl -s -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $KEY" --data-binary @"$T_TMP/big")"
t_eq "unknown route -> 404" 404 "$(curl -s -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/nothing" -H "x-api-key: $KEY")"
t_eq "unknown route is Anthropic-shaped" not_found_error "$(jget 'd["error"]["type"]')"

# Failover: A (priority first) answers 429; B serves, invisible to the client.
curl -fsS -m 3 -X POST "$FAKE_URL/_fake/keys/sk-up-a" -d '{"mode":"429","count":-1}' >/dev/null
before_b=$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["keys"].get("sk-up-b",{}).get("total",0))')
t_eq "failover: 200 for the client" 200 "$(msg "$KEY" "$B")"
after_b=$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["keys"].get("sk-up-b",{}).get("total",0))')
t_eq "failover: B served it" $((before_b + 1)) "$after_b"
t_check "failover: A rate-limited in the database" bash -c "psql -qAt '$DB' -c \"SELECT count(*) FROM accounts WHERE name='acc-a' AND rate_limit_reset_at > now()\" | grep -qx 1"
curl -fsS -m 3 -X POST "$FAKE_URL/_fake/reset" >/dev/null
psql -qAt "$DB" -c "UPDATE accounts SET rate_limit_reset_at = NULL, rate_limited_at = NULL" >/dev/null

# Sticky session: one Claude Code session id stays on one account.
keytotals() {
	curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; k=json.load(sys.stdin)["keys"]; print(k.get("sk-up-a",{}).get("total",0), k.get("sk-up-b",{}).get("total",0))'
}
read -r a0 b0 < <(keytotals)
for i in $(seq 1 10); do
	msg "$KEY" "$B" -H 'x-claude-code-session-id: 7d2c0a9e-1111-4222-8333-944455556666' >/dev/null
done
read -r a1 b1 < <(keytotals)
t_eq "sticky session: 10 requests on one account" 10 "$(( (a1 - a0) > (b1 - b0) ? (a1 - a0) : (b1 - b0) ))"
t_eq "sticky session: none on the other" 0 "$(( (a1 - a0) < (b1 - b0) ? (a1 - a0) : (b1 - b0) ))"

# Waiting for a slot: user concurrency 1, two parallel streams.
$CTL user add --email solo@example.com --balance 10 --concurrency 1 >/dev/null
SOLO=$(gws_newkey solo@example.com)
SLOW='{"model":"claude-sonnet-4-5@fake:drip=150:deltas=10","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"slow one"}]}'
inflight() { curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["in_flight"])'; }
curl -s -m 20 -o "$T_TMP/first" "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $SOLO" -H 'content-type: application/json' -d "$SLOW" &
first=$!
t_wait 5 bash -c "[ \"\$(curl -fsS $FAKE_URL/_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"in_flight\"])')\" -ge 1 ]"
code=$(curl -s -m 20 -o "$T_TMP/second" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $SOLO" -H 'content-type: application/json' -d "$SB")
wait "$first"
t_eq "waiting stream: 200" 200 "$code"
t_check "waiting stream: got SSE pings while waiting" grep -q '^event: ping' "$T_TMP/second"
t_check "waiting stream: then the whole answer" grep -q '^event: message_stop' "$T_TMP/second"
t_check "first stream completed too" grep -q '^event: message_stop' "$T_TMP/first"

# The wait has a bound: a plain request behind a long stream gets 429.
LONG='{"model":"claude-sonnet-4-5@fake:drip=400:deltas=12","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"long one"}]}'
curl -s -m 20 -o /dev/null "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $SOLO" -H 'content-type: application/json' -d "$LONG" &
long=$!
t_wait 5 bash -c "[ \"\$(curl -fsS $FAKE_URL/_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"in_flight\"])')\" -ge 1 ]"
t0=$(date +%s%N)
t_eq "wait timeout -> 429" 429 "$(msg "$SOLO" "$B")"
ms=$((($(date +%s%N) - t0) / 1000000))
t_eq "wait timeout -> rate_limit_error" rate_limit_error "$(jget 'd["error"]["type"]')"
t_check "wait timeout honoured (~3 s, took $ms ms)" test "$ms" -ge 2500 -a "$ms" -lt 4500
wait "$long"

# Fail-fast group: no queue, 429 at once.
$CTL group add --name fast --platform anthropic --fail-fast >/dev/null
$CTL account add --name acc-f --platform anthropic --type apikey \
	--credentials '{"api_key":"sk-up-f"}' --base-url "$FAKE_URL" --group fast >/dev/null
$CTL user add --email ff@example.com --balance 10 --concurrency 1 >/dev/null
FF=$($CTL --json key add --user ff@example.com --group fast | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
curl -s -m 20 -o /dev/null "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $FF" -H 'content-type: application/json' -d "$LONG" &
long=$!
t_wait 5 bash -c "[ \"\$(curl -fsS $FAKE_URL/_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"in_flight\"])')\" -ge 1 ]"
t0=$(date +%s%N)
t_eq "fail-fast group -> 429" 429 "$(msg "$FF" "$B")"
ms=$((($(date +%s%N) - t0) / 1000000))
t_check "fail-fast answers at once (took $ms ms)" test "$ms" -lt 1000
wait "$long"

# Account slots: 3 accounts of concurrency 2, 12 parallel slow streams.
$CTL group add --name pool3 --platform anthropic >/dev/null
for i in 1 2 3; do
	$CTL account add --name "acc-p$i" --platform anthropic --type apikey \
		--credentials "{\"api_key\":\"sk-up-p$i\"}" --base-url "$FAKE_URL" \
		--concurrency 2 --group pool3 >/dev/null
done
$CTL user add --email pool@example.com --balance 10 --concurrency 20 >/dev/null
POOL=$($CTL --json key add --user pool@example.com --group pool3 | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
pids=()
for i in $(seq 1 12); do
	curl -s -m 30 -o "$T_TMP/pool$i" "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $POOL" \
		-H 'content-type: application/json' \
		-d "{\"model\":\"claude-sonnet-4-5@fake:drip=100:deltas=8\",\"max_tokens\":64,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"pool request $i\"}]}" &
	pids+=($!)
done
wait "${pids[@]}"
t_eq "12 parallel streams over 3x2 slots all finish" 12 "$(grep -l '^event: message_stop' "$T_TMP"/pool{1..12} | wc -l)"
t_check "the ones that waited got pings" grep -q '^event: ping' $(printf "$T_TMP/pool%d " $(seq 1 12))
maxes=$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; k=json.load(sys.stdin)["keys"]; print(" ".join(str(k.get(f"sk-up-p{i}",{}).get("max_in_flight",0)) for i in (1,2,3)))')
t_check "the fake never saw more than 2 at once per account ($maxes)" python3 -c "m=[int(x) for x in '$maxes'.split()]; assert max(m) == 2 and min(m) >= 1, m"

# Account state from upstream answers, in the database: 529 -> cooldown,
# 401 -> error with a reason (A fails, B serves each time).
curl -fsS -m 3 -X POST "$FAKE_URL/_fake/keys/sk-up-a" -d '{"mode":"529","count":1}' >/dev/null
t_eq "529 on A: served by B" 200 "$(msg "$KEY" "$B")"
t_check "529: A overloaded until a future time" bash -c "psql -qAt '$DB' -c \"SELECT count(*) FROM accounts WHERE name='acc-a' AND overload_until > now()\" | grep -qx 1"
psql -qAt "$DB" -c "UPDATE accounts SET overload_until = NULL" >/dev/null
curl -fsS -m 3 -X POST "$FAKE_URL/_fake/keys/sk-up-a" -d '{"mode":"401","count":1}' >/dev/null
t_eq "401 on A: served by B" 200 "$(msg "$KEY" "$B" -H 'x-claude-code-session-id: 0b7a3c1e-0000-4000-8000-000000000401')"
t_check "401: A in error with a reason" bash -c "psql -qAt '$DB' -c \"SELECT status, error_message FROM accounts WHERE name='acc-a'\" | grep -q '^error|.*401'"
psql -qAt "$DB" -c "UPDATE accounts SET status = 'active', error_message = NULL" >/dev/null
curl -fsS -m 3 -X POST "$FAKE_URL/_fake/reset" >/dev/null

# Client disconnect mid-stream: the upstream connection closes within 1 s.
STALL='{"model":"claude-fake-stall","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
curl -s -m 1 -o /dev/null "http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $KEY" -H 'content-type: application/json' -d "$STALL"
t0=$(date +%s%N)
closed() {
	curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); k=s["keys"]; print(sum(v.get("closed_early",0) for v in k.values()))' | grep -qv '^0$'
}
t_check "fake sees the connection closed within 1 s" t_wait 1 closed
t_check "no slot left 1 s later" t_wait 2 gws_slots_empty

# Usage events: one per completed request.
# (wait on the request jobs only: the services are jobs of this shell too)
N=40
jobs_=()
for i in $(seq 1 $N); do
	if [ $((i % 2)) -eq 0 ]; then msg "$KEY" "$SB" >/dev/null; else msg "$KEY" "$B" >/dev/null; fi &
	jobs_+=($!)
	if [ $((i % 8)) -eq 0 ]; then wait "${jobs_[@]}"; jobs_=(); fi
done
# The gateway may hold the last events a few ms (usage_linger), and a slow
# billing gets some again from the spool: wait until billing confirmed
# them all.
t_check "billing received every usage event" t_wait 30 gws_billing_settled
t_eq "one usage event per completed request (N + 33 earlier)" $((N + 33)) \
	"$(gws_metric $GW_HEALTH sub2api_gateway_usage_events_total)"

# Stopped while holding streams: MHD must have resumed every suspended
# connection before it stops (it aborts otherwise).
HOLD='{"model":"claude-sonnet-4-5@fake:drip=1000:deltas=100000","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
psql -qAt "$DB" -c "UPDATE users SET concurrency = 1000 WHERE email = 'rich@example.com'; UPDATE accounts SET concurrency = 1000" >/dev/null
HKEY=$(gws_newkey rich@example.com) # a key not in the scheduler's cache
"$BIN/loadgen" --url "http://127.0.0.1:$GW/v1/messages" --body "$HOLD" -H "x-api-key: $HKEY" \
	--mode hold --streams 200 --ramp 1000 --duration 60 --timeout 20 --json >"$T_TMP/hold.json" 2>"$T_TMP/hold.err" &
HOLD_PID=$!
t_check "200 streams held before the stop" t_wait 20 grep -q '^READY 200$' "$T_TMP/hold.err"
fds=$(gws_metric $GW_HEALTH process_open_fds)
t_check "each with a client and an upstream socket ($fds fds >= 400)" test "$fds" -ge 400
for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$T_TMP/gateway.log" "$T_TMP/scheduler.log"
t_done
