#!/usr/bin/env bash
# gate_test.sh: the scheduler's money gate through the real gateway,
# scheduler and billing, with the fake upstream.
#  - zero and negative balances get 403 billing_error in Anthropic shape
#    (stream requests too) and the fake sees no request at all;
#  - an exhausted daily window of a subscription gets 429 whose message
#    carries DAILY_LIMIT_EXCEEDED; a window started 25 h ago is unused;
#  - an expired key gets 403 permission_error;
#  - an exhausted key quota gets 429 naming API_KEY_QUOTA_EXHAUSTED;
#  - after a top-up (psql UPDATE, no event) requests pass again within
#    balance_cache_ttl, although the key itself stays cached for 30 s.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
export SUB2API_SCHEDULER_BALANCE_CACHE_TTL=2s SUB2API_SCHEDULER_KEY_CACHE_TTL=30s
gws_up 19280

msg() { # msg KEY BODY [curl args...]
	local k=$1 b=$2
	shift 2
	curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $k" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' -d "$b" "$@"
}
jget() { python3 -c "import json,sys; d=json.load(open('$T_TMP/body')); print($1)"; }
sql() { psql -qAt "$DB" -c "$1"; }
fake_total() { curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
newkey() { # newkey EMAIL GROUP
	$CTL --json key add --user "$1" --group "$2" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
# refused NAME KEY STATUS TYPE TEXT: one Anthropic-shaped refusal.
refused() {
	t_eq "$1 -> $3" "$3" "$(msg "$2" "$B")"
	t_eq "$1: Anthropic shape" "error $4" "$(jget 'd["type"], d["error"]["type"]' | tr -d "(),'")"
	t_check "$1: message has '$5'" grep -q "$5" "$T_TMP/body"
}
passes() { [ "$(msg "$1" "$B")" = 200 ]; }

B='{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
SB='{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
t_eq "rich key served" 200 "$(msg "$KEY" "$B")"

# Fixtures for the refusals.
$CTL user add --email neg@example.com --balance 1 >/dev/null
NEG=$(gws_newkey neg@example.com)
sql "UPDATE users SET balance = -0.0000000001 WHERE email = 'neg@example.com'" >/dev/null
$CTL user add --email plan@example.com --balance 0 >/dev/null
$CTL group add --name plan --platform anthropic --subscription --daily-limit 1 >/dev/null
$CTL account add --name acc-s --platform anthropic --type apikey \
	--credentials '{"api_key":"sk-up-s"}' --base-url "$FAKE_URL" \
	--priority 10 --concurrency 5 --group plan >/dev/null
SUBK=$(newkey plan@example.com plan)
sql "INSERT INTO user_subscriptions (user_id, group_id, expires_at, daily_usage_usd, daily_window_start)
     SELECT u.id, g.id, now() + interval '30 days', 1, now() - interval '1 hour'
     FROM users u, groups g WHERE u.email = 'plan@example.com' AND g.name = 'plan'" >/dev/null
EXP=$(gws_newkey rich@example.com)
sql "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_prefix = '${EXP:0:10}'" >/dev/null
QK=$(gws_newkey rich@example.com)
sql "UPDATE api_keys SET quota_usd = 1, quota_used_usd = 1 WHERE key_prefix = '${QK:0:10}'" >/dev/null
t_check "fixture keys" test -n "$NEG" -a -n "$SUBK" -a -n "$EXP" -a -n "$QK"

before=$(fake_total)
refused "zero balance" "$POOR" 403 billing_error "Insufficient account balance"
t_eq "zero balance, stream -> 403 JSON" 403 "$(msg "$POOR" "$SB")"
t_eq "zero balance, stream: billing_error" billing_error "$(jget 'd["error"]["type"]')"
refused "negative balance" "$NEG" 403 billing_error "Insufficient account balance"
refused "exhausted daily window" "$SUBK" 429 rate_limit_error DAILY_LIMIT_EXCEEDED
refused "expired key" "$EXP" 403 permission_error "API key has expired"
refused "exhausted key quota" "$QK" 429 rate_limit_error API_KEY_QUOTA_EXHAUSTED
t_eq "no refusal reached the upstream" "$before" "$(fake_total)"
t_eq "the plan's account saw nothing" 0 "$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"].get("sk-up-s",{}).get("total",0))')"

# Top-ups with no event: the money part is re-read after balance_cache_ttl
# (2 s) while the keys stay cached (30 s).
sql "UPDATE users SET balance = 5 WHERE email = 'poor@example.com'" >/dev/null
sql "UPDATE users SET balance = 0.0000000001 WHERE email = 'neg@example.com'" >/dev/null
sql "UPDATE user_subscriptions SET daily_window_start = now() - interval '25 hours'
     WHERE user_id = (SELECT id FROM users WHERE email = 'plan@example.com')" >/dev/null
sql "UPDATE api_keys SET quota_used_usd = 0.9999999999 WHERE key_prefix = '${QK:0:10}'" >/dev/null
t0=$(date +%s%N)
t_check "topped-up balance served again" t_wait 10 passes "$POOR"
t_check "tiny positive balance served" t_wait 10 passes "$NEG"
t_check "daily window older than 24 h served" t_wait 10 passes "$SUBK"
t_check "quota under its limit served" t_wait 10 passes "$QK"
t1=$(date +%s%N)
t_check "top-ups seen within 2 s + slack" test $(((t1 - t0) / 1000000)) -lt 4000
refused "expired key stays refused" "$EXP" 403 permission_error "API key has expired"
t_eq "the plan's account served its request" 1 "$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"].get("sk-up-s",{}).get("total",0))')"

# Spent again: refused within the TTL, without any event.
sql "UPDATE users SET balance = 0 WHERE email = 'poor@example.com'" >/dev/null
t_check "balance back to 0 refused within the TTL" t_wait 10 bash -c "[ \"\$(curl -s -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:$GW/v1/messages -H 'x-api-key: $POOR' -H 'content-type: application/json' -d '$B')\" = 403 ]"

t_check "scheduler stops cleanly" gws_stop scheduler
t_check "gateway stops cleanly" gws_stop gateway
t_check "billing stops cleanly" gws_stop billing
t_done
