#!/usr/bin/env bash
# notify_test.sh: billing tells the scheduler when money runs out.
#
# The scheduler caches keys and their money verdicts (balance > 0, key
# quota, subscription windows) for 60 s and 1 h here, so the
# only way a refusal can show at once is billing's config-changed event
# (kind user / api_key), published after the commit that turned the
# verdict.  Through the real gateway, scheduler and billing:
#  - a user with a tiny balance is served once, charged below zero by
#    billing, and the very next request is refused 403 before any
#    upstream call;
#  - a key whose quota the first request spends gets 429 on the next;
#  - billing counted both announcements, the scheduler received them.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
export SUB2API_SCHEDULER_BALANCE_CACHE_TTL=60s SUB2API_SCHEDULER_KEY_CACHE_TTL=1h
gws_up 19780

msg() { # msg KEY: one small request, prints the status
	curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $1" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' \
		-d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
}
sql() { psql -qAt "$DB" -c "$1"; }
fake_total() { curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
rows() { sql "SELECT count(*) FROM usage_logs"; }

# The balance: one request's cost is far above 0.000001.
sql "UPDATE users SET balance = 0.000001 WHERE email = 'rich@example.com'" >/dev/null
t_eq "tiny balance: first request served" 200 "$(msg "$KEY")"
t_check "billing charged it" t_wait 10 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT count(*) FROM usage_logs')\" = 1 ]"
t_eq "the balance went below zero" t "$(sql "SELECT balance < 0 FROM users WHERE email = 'rich@example.com'")"
before=$(fake_total)
# The event travels after the commit: the next request may race it by a
# few milliseconds, so allow a short wait (far below the 60 s cache).
refused_now() { [ "$(msg "$KEY")" = 403 ]; }
t_check "next request refused 403 (money cached 60 s)" t_wait 5 refused_now
t_check "refusal is the billing error" grep -q "Insufficient account balance" "$T_TMP/body"
t_eq "no upstream call for the refusal" "$before" "$(fake_total)"

# The key quota: another user with money, a key with a quota the first
# request spends.
$CTL user add --email q@example.com --balance 50 >/dev/null
QK=$($CTL --json key add --user q@example.com --group claude |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
sql "UPDATE api_keys SET quota_usd = 0.000001 WHERE key_prefix = '${QK:0:10}'" >/dev/null
t_eq "quota key: first request served" 200 "$(msg "$QK")"
t_check "billing charged it" t_wait 10 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT count(*) FROM usage_logs')\" = 2 ]"
quota_now() { [ "$(msg "$QK")" = 429 ]; }
t_check "next request refused 429 (quota spent)" t_wait 5 quota_now
t_check "refusal names the key quota" grep -q "API_KEY_QUOTA_EXHAUSTED" "$T_TMP/body"

t_eq "billing announced two verdicts" 2 "$(gws_metric "$BILL_HEALTH" sub2api_billing_sched_notified_total)"
t_eq "no announcement failed" 0 "$(gws_metric "$BILL_HEALTH" sub2api_billing_sched_notify_failed_total)"
t_check "the scheduler received them" test "$(gws_metric "$SCHED_HEALTH" sub2api_sched_config_events_total)" -ge 2
t_eq "usage rows: the two served requests only" 2 "$(rows)"
t_done
