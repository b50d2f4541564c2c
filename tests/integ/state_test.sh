#!/usr/bin/env bash
# state_test.sh: the scheduler's account state machine end to end (real
# gateway, scheduler and fake upstream; gwstack.sh's acc-a, priority 10,
# key sk-up-a, is preferred over acc-b, sk-up-b):
#  - a success carrying anthropic-ratelimit-unified-5h-* headers sets the
#    session window (the headers travel gateway -> scheduler);
#  - 429 with a reset header: acc-a is skipped (acc-b serves) until exactly
#    that second, then serves again within 1.5 s, and that success clears
#    the recorded rate limit; the DB held the header's reset;
#  - 529: overload_until about now + 10 min;
#  - 401: status error with the reason;
#  - three 500s: temporarily unschedulable with the reason;
#  - 403 "organization has been disabled": error with a banned reason;
#  - account_state_log holds one row per transition, in order.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
export SUB2API_GATEWAY_WAIT_TIMEOUT=3s SUB2API_GATEWAY_WAIT_PING_INTERVAL=300ms
gws_up 18780

# Each request is a new conversation: a sticky session would otherwise keep
# it on the account that served the first one.
msg() {
	local b='{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi '$(date +%s%N)$RANDOM'"}]}'
	curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' -d "$b"
}
q() { psql -qAt "$DB" -c "$1"; }
ctl() { # ctl KEY MODE COUNT
	curl -fsS -m 3 -X POST "$FAKE_URL/_fake/keys/$1" -d "{\"mode\":\"$2\",\"count\":$3}" >/dev/null
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
A_ID=$(q "SELECT id FROM accounts WHERE name = 'acc-a'")
B_ID=$(q "SELECT id FROM accounts WHERE name = 'acc-b'")
ACC_A="SELECT %s FROM accounts WHERE id = $A_ID"
a_col() { q "$(printf "$ACC_A" "$1")"; }
# Puts acc-a back to a clean, schedulable state (no log row: not a transition).
reset_a() {
	q "UPDATE accounts SET status = 'active', error_message = '', rate_limited_at = NULL,
	   rate_limit_reset_at = NULL, overload_until = NULL, temp_unschedulable_until = NULL,
	   temp_unschedulable_reason = '' WHERE id = $A_ID" >/dev/null
	curl -fsS -m 3 -X POST "$FAKE_URL/_fake/reset" >/dev/null
}
# served_by: the upstream key of the newest request the fake saw.
served_by() {
	curl -fsS "$FAKE_URL/_fake/requests?limit=1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"][-1]["key"])'
}

# --- 5h window from a success's headers ---------------------------------
ctl sk-up-a "5h=allowed_warning,7200" 1
t0=$(($(now_ms) / 1000))
t_eq "5h: request served" 200 "$(msg)"
t_eq "5h: served by acc-a" sk-up-a "$(served_by)"
t_check "5h: window status from the header" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT session_window_status FROM accounts WHERE id = $A_ID\")\" = allowed_warning ]"
wend=$(a_col "extract(epoch FROM session_window_end)::bigint")
t_check "5h: window end = the 5h-reset header ($wend vs $((t0 + 7200)))" test "$wend" -ge $((t0 + 7200)) -a "$wend" -le $((t0 + 7201))
t_eq "5h: window start = end - 5h" $((wend - 18000)) "$(a_col "extract(epoch FROM session_window_start)::bigint")"
reset_a

# --- 429 with a reset header: skipped until exactly then -----------------
ctl sk-up-a "429:reset=4" 1
t_eq "429: the client still gets 200" 200 "$(msg)"
t_eq "429: acc-b served it" sk-up-b "$(served_by)"
R=$(curl -fsS "$FAKE_URL/_fake/requests?key=sk-up-a" |
	python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)["requests"] if x.get("status")==429]; print(r[-1]["reset"])')
t_check "429: the fake sent a reset ($R)" test "$R" -gt 0
t_check "429: rate_limit_reset_at = the reset header" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT extract(epoch FROM rate_limit_reset_at)::bigint FROM accounts WHERE id = $A_ID\")\" = $R ]"
t_eq "429: 5h window [reset-5h, reset], rejected" "$((R - 18000))|$R|rejected" \
	"$(a_col "extract(epoch FROM session_window_start)::bigint || '|' || extract(epoch FROM session_window_end)::bigint || '|' || session_window_status")"
codes=""
deadline=$((R * 1000 + 5000))
while [ "$(now_ms)" -lt $deadline ]; do
	codes="$codes $(msg)"
	[ "$(served_by)" = sk-up-a ] && break
	sleep 0.15
done
t_eq "429: every client request got 200" "" "$(echo "$codes" | tr ' ' '\n' | grep -v '^$' | grep -v '^200$' | sort -u | tr '\n' ' ')"
curl -fsS "$FAKE_URL/_fake/requests?limit=500" >"$T_TMP/reqs.json"
python3 - "$T_TMP/reqs.json" "$R" >"$T_TMP/a.out" <<'EOF'
import json, sys
reqs = json.load(open(sys.argv[1]))["requests"]
reset_ms = int(sys.argv[2]) * 1000
i429 = max(i for i, r in enumerate(reqs) if r["key"] == "sk-up-a" and r.get("status") == 429)
after = reqs[i429 + 1:]
first_a = next((i for i, r in enumerate(after) if r["key"] == "sk-up-a"), None)
if first_a is None:
    print("none 0 0 0")
else:
    between = after[:first_a]
    print(after[first_a]["started_ms"] - reset_ms, len(between),
          sum(1 for r in between if r["key"] == "sk-up-b"), after[first_a].get("status"))
EOF
read -r delta nb nbb ast <"$T_TMP/a.out"
t_check "429: acc-a served again (first at reset + ${delta} ms)" test "$delta" != none
t_check "429: not before the reset second" test "$delta" -ge 0
t_check "429: within 1.5 s after it" test "$delta" -le 1500
t_check "429: acc-b served the $nb requests meanwhile" test "$nb" -ge 5 -a "$nb" = "$nbb"
t_eq "429: acc-a's answer was a 200" 200 "$ast"
t_check "429: that success cleared the rate limit" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT (rate_limited_at IS NULL AND rate_limit_reset_at IS NULL) FROM accounts WHERE id = $A_ID\")\" = t ]"
reset_a

# --- 529: overloaded for overload_cooldown (10 min) ----------------------
ctl sk-up-a 529 1
t_eq "529: the client gets 200" 200 "$(msg)"
t_check "529: overload_until = now + 10 min" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT count(*) FROM accounts WHERE id = $A_ID AND overload_until BETWEEN now() + interval '590 s' AND now() + interval '610 s'\")\" = 1 ]"
t_eq "529: acc-b serves meanwhile" "200 sk-up-b" "$(msg) $(served_by)"
reset_a

# --- 401: error with the reason ------------------------------------------
ctl sk-up-a 401 1
t_eq "401: the client gets 200" 200 "$(msg)"
t_check "401: status error" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT status FROM accounts WHERE id = $A_ID\")\" = error ]"
t_eq "401: reason" "Authentication failed (401): invalid x-api-key" "$(a_col error_message)"
reset_a

# --- three 500s: temporarily unschedulable -------------------------------
ctl sk-up-a 500 3
for i in 1 2 3; do
	t_eq "500 #$i: the client gets 200" 200 "$(msg)"
done
t_check "500: temporarily unschedulable for 5 min" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT count(*) FROM accounts WHERE id = $A_ID AND temp_unschedulable_until BETWEEN now() + interval '280 s' AND now() + interval '310 s'\")\" = 1 ]"
t_eq "500: reason" "3 upstream failures within 60s, the last HTTP 500: Internal server error" "$(a_col temp_unschedulable_reason)"
t_eq "500: acc-b serves meanwhile" "200 sk-up-b" "$(msg) $(served_by)"
reset_a

# --- 403 "organization has been disabled": banned -------------------------
ctl sk-up-a 403-banned 1
t_eq "403-banned: the client gets 200" 200 "$(msg)"
t_check "403-banned: status error" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT status FROM accounts WHERE id = $A_ID\")\" = error ]"
t_eq "403-banned: reason says banned" "Account banned (403): This organization has been disabled." "$(a_col error_message)"

# --- the transition log --------------------------------------------------
t_eq "log: acc-a's transitions in order" \
	"ok>rate_limited:429 rate_limited>ok:200 ok>overloaded:529 ok>error:401 ok>temp_unschedulable:500 ok>error:403" \
	"$(q "SELECT string_agg(from_state || '>' || to_state || ':' || http_status, ' ' ORDER BY id) FROM account_state_log WHERE account_id = $A_ID")"
t_eq "log: the 429 row's until is the reset" "$R" "$(q "SELECT extract(epoch FROM until)::bigint FROM account_state_log WHERE account_id = $A_ID AND http_status = 429")"
t_eq "log: the banned row" 1 "$(q "SELECT count(*) FROM account_state_log WHERE account_id = $A_ID AND reason LIKE '%banned%'")"
t_eq "log: every row names the scheduler instance" 0 "$(q "SELECT count(*) FROM account_state_log WHERE instance = ''")"
t_eq "log: acc-b had no transition" 0 "$(q "SELECT count(*) FROM account_state_log WHERE account_id = $B_ID")"

t_check "gateway exits 0" gws_stop gateway
t_check "scheduler exits 0" gws_stop scheduler
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' "$T_TMP/gateway.log" "$T_TMP/scheduler.log"
t_done
