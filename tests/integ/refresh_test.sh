#!/usr/bin/env bash
# refresh_test.sh: OAuth token refresh with two scheduler replicas, end to
# end, against the fake upstream's token endpoint:
#  - an oauth account whose token expires in 10 min is refreshed exactly
#    once although two schedulers scan every second (the fake delays the
#    exchange, so the replicas' scans overlap while the lock is held); its
#    sealed credentials change, a request through the gateway reaches the
#    fake with the new access token, and no second refresh follows during
#    several more intervals;
#  - an account whose refresh token the fake refuses (invalid_grant) is
#    put in 'error' with the reason, after one attempt only;
#  - an account with a proxy (tests/tools/fakeproxy, HTTP with
#    credentials) is refreshed through that proxy; one whose proxy is
#    disabled is not refreshed at all (never directly) and not marked;
#  - the admin-set sticky TTL (settings table, written with sub2apictl
#    "setting set", which publishes nothing) is loaded at start and used
#    for the session binding; a bad value written later is refused by the
#    periodic reload, with a log line;
#  - no token and no proxy password appears in a log.
# Ports: gateway BASE, health listeners BASE+11 (gateway), BASE+12 and
# BASE+13 (the two schedulers).
. "$(dirname "$0")/lib.sh"

BASE=18980
GW=$BASE
GW_HEALTH=$((BASE + 11))
SA_HEALTH=$((BASE + 12))
SB_HEALTH=$((BASE + 13))
declare -A PID

cleanup() {
	local p
	for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT

stop() { # stop NAME: SIGTERM, then the exit status
	local rc
	kill -TERM "${PID[$1]}"
	wait "${PID[$1]}"
	rc=$?
	unset "PID[$1]"
	return $rc
}
ready() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }
sql() { psql -qAt "$DB" -c "$1"; }
# refreshes RT: token requests the fake saw with refresh token RT.
refreshes() {
	curl -fsS -m 3 "$FAKE_URL/_fake/requests?limit=2000" | python3 -c '
import json, sys
n = 0
for r in json.load(sys.stdin)["requests"]:
    if r["path"] != "/v1/oauth/token":
        continue
    try:
        b = json.loads(r["body"] or "{}")
    except ValueError:
        continue
    if b.get("refresh_token") == sys.argv[1]:
        n += 1
print(n)' "$1"
}
fake_key() { # fake_key KEY MODE: the next requests of KEY use MODE
	curl -fsS -m 3 -o /dev/null -X POST "$FAKE_URL/_fake/keys/$1" \
		-H 'content-type: application/json' -d "{\"mode\":\"$2\",\"count\":-1}"
}
creds_md5() { sql "SELECT md5(credentials_enc) FROM accounts WHERE name = '$1'"; }
status_of() { sql "SELECT status || '|' || error_message FROM accounts WHERE name = '$1'"; }
oauth_add() { # oauth_add NAME RT EXPIRES_IN_S [more account add options]
	local name=$1 rt=$2 exp=$(($(date +%s) + $3))
	shift 3
	$CTL account add --name "$name" --platform anthropic --type oauth \
		--credentials "{\"access_token\":\"at-$name-$$\",\"refresh_token\":\"$rt\",\"expires_at\":\"$exp\"}" \
		--base-url "$FAKE_URL" "$@" >/dev/null
}

mkdir -p "$T_TMP/run-a" "$T_TMP/run-b" "$T_TMP/run-gw"
"$BIN/sub2api-fakeup" --listen 127.0.0.1:0 >"$T_TMP/fakeup.out" 2>"$T_TMP/fakeup.log" &
PID[fakeup]=$!
t_check "fake upstream starts" t_wait 10 grep -q '^listening ' "$T_TMP/fakeup.out"
FAKE_URL=http://$(awk '/^listening/ {print $2; exit}' "$T_TMP/fakeup.out")

DB=$(t_newdb "refresh$BASE")
export SUB2API_DATABASE_URL=$DB
export SUB2API_REDIS_URL=$SUB2API_TEST_REDIS_URL/$((BASE % 13 + 2))
SUB2API_SECRET_KEY=$(openssl rand -hex 32)
export SUB2API_SECRET_KEY
CTL="$BIN/sub2apictl --db $DB"
redis-cli -u "$SUB2API_REDIS_URL" flushdb >/dev/null
t_check "migrate" $CTL --migrations "$ROOT/migrations" migrate
$CTL user add --email rich@example.com --balance 100 --concurrency 10 >/dev/null
$CTL group add --name claude --platform anthropic >/dev/null

RT_ONE=rt-one-$$
RT_BAD=rt-bad-$$
t_check "oauth account expiring in 10 min" oauth_add acc-one "$RT_ONE" 600 --group claude
t_check "oauth account with a refused refresh token" oauth_add acc-bad "$RT_BAD" 600
KEY=$($CTL --json key add --user rich@example.com --group claude |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
t_check "key created" test -n "$KEY"

# A fake proxy with credentials; acc-px uses it, acc-off a disabled one.
PPW="p:w@d/$RANDOM"
"$BIN/fakeproxy" --listen 127.0.0.1:0 --user pu --pass "$PPW" >"$T_TMP/fpx.out" 2>"$T_TMP/fpx.log" &
PID[fpx]=$!
t_check "fake proxy starts" t_wait 10 grep -q '^listening ' "$T_TMP/fpx.out"
PP=$(awk '/^listening/ {split($2, a, ":"); print a[2]; exit}' "$T_TMP/fpx.out")
pstat() { curl -fsS -m 3 "http://127.0.0.1:$PP/_proxy/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
t_check "proxy add" $CTL proxy add --name px --protocol http --host 127.0.0.1 --port "$PP" --username pu --password "$PPW"
t_check "proxy add (to be disabled)" $CTL proxy add --name px-off --protocol http --host 127.0.0.1 --port "$PP" --username pu --password "$PPW"
sql "UPDATE proxies SET status = 'disabled' WHERE name = 'px-off'" >/dev/null
RT_PX=rt-px-$$
RT_OFF=rt-off-$$
t_check "oauth account behind the proxy" oauth_add acc-px "$RT_PX" 600 --proxy px
t_check "oauth account behind a disabled proxy" oauth_add acc-off "$RT_OFF" 600 --proxy px-off
PX_MD5=$(creds_md5 acc-px)
OFF_MD5=$(creds_md5 acc-off)
# The exchange of acc-one takes 1.5 s: longer than a scan period, so the
# second replica scans while the first one holds the lock.
t_check "fake: slow token exchange for acc-one" fake_key "$RT_ONE" slow-first-byte=1500
t_check "fake: invalid_grant for acc-bad" fake_key "$RT_BAD" invalid-grant
ONE_MD5=$(creds_md5 acc-one)
t_check "setting set: sticky TTL 120 s" $CTL setting set --key sticky_session_ttl_seconds --value 120
t_eq "setting list shows it" "sticky_session_ttl_seconds 120" \
	"$($CTL --json setting list | python3 -c 'import json,sys; print(*[r["key"] + " " + r["value"] for r in json.load(sys.stdin)])')"
t_fails "setting set refuses a bad key" $CTL setting set --key 'Bad Key' --value 1

# Two replicas: own health ports, own REP and SUB addresses (own state dirs).
sched_up() { # sched_up NAME HEALTH RUNDIR
	SUB2API_STATE_DIR=$3 SUB2API_SCHEDULER_HEALTH_ADDR=127.0.0.1:$2 \
		SUB2API_SCHEDULER_TOKEN_REFRESH_INTERVAL=1s \
		SUB2API_SCHEDULER_TOKEN_REFRESH_BACKOFF=100ms \
		SUB2API_SCHEDULER_SETTINGS_RELOAD_INTERVAL=1s \
		SUB2API_SCHEDULER_ANTHROPIC_TOKEN_URL="$FAKE_URL/v1/oauth/token" \
		"$BIN/sub2api-scheduler" >>"$T_TMP/$1.log" 2>&1 &
	PID[$1]=$!
}
sched_up sched_a "$SA_HEALTH" "$T_TMP/run-a"
sched_up sched_b "$SB_HEALTH" "$T_TMP/run-b"
t_check "scheduler A ready" t_wait 15 ready "$SA_HEALTH"
t_check "scheduler B ready" t_wait 15 ready "$SB_HEALTH"

# --- single flight across the replicas ------------------------------------
t_check "acc-one refreshed (credentials rewritten)" \
	t_wait 20 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT md5(credentials_enc) FROM accounts WHERE name = 'acc-one'\")\" != '$ONE_MD5' ]"
t_eq "acc-one: the fake saw exactly one refresh" 1 "$(refreshes "$RT_ONE")"
t_check "both replicas scanned while the lock was held" \
	grep -q '"ev":"sched.token_refresh_locked"' "$T_TMP/sched_a.log" "$T_TMP/sched_b.log"
t_eq "acc-one stays active" "active|" "$(status_of acc-one)"
ONE_ID=$(sql "SELECT id FROM accounts WHERE name = 'acc-one'")
n=$(cat "$T_TMP/sched_a.log" "$T_TMP/sched_b.log" | grep -c "\"ev\":\"sched.token_refreshed\".*\"account\":$ONE_ID,")
t_eq "one replica logged the refresh" 1 "$n"

# --- the new token is the one used ------------------------------------------
SUB2API_STATE_DIR=$T_TMP/run-gw SUB2API_GATEWAY_SCHED_ADDR="ipc://$T_TMP/run-a/sched.ipc" \
	SUB2API_GATEWAY_LISTEN_ADDR=127.0.0.1:$GW SUB2API_GATEWAY_HEALTH_ADDR=127.0.0.1:$GW_HEALTH \
	"$BIN/sub2api-gateway" >>"$T_TMP/gateway.log" 2>&1 &
PID[gateway]=$!
t_check "gateway ready" t_wait 15 ready "$GW_HEALTH"
code=$(curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
	-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
	-d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}')
t_eq "request through the gateway: 200" 200 "$code"
used=$(curl -fsS -m 3 "$FAKE_URL/_fake/requests?limit=2000" | python3 -c '
import json, sys
ks = [r["key"] for r in json.load(sys.stdin)["requests"] if r["path"] == "/v1/messages"]
print(ks[-1] if ks else "")')
case $used in
sk-ant-oat01-fake-*) t_ok "the upstream saw the refreshed access token" ;;
*) t_bad "the upstream saw the refreshed access token" "got [${used:0:12}...]" ;;
esac

# --- the admin-set sticky TTL ---------------------------------------------------
t_check "scheduler A applied the setting at start" \
	grep -q '"ev":"sched.setting_applied".*"sticky_ttl_ms":120000' "$T_TMP/sched_a.log"
skey=$(redis-cli -u "$SUB2API_REDIS_URL" --scan --pattern 's2a:sticky:*' | head -1)
pttl=$(redis-cli -u "$SUB2API_REDIS_URL" pttl "$skey")
t_check "the session binding lives 120 s, not 1 h (pttl $pttl)" test "$pttl" -gt 100000 -a "$pttl" -le 120000
t_check "setting set: a bad value" $CTL setting set --key sticky_session_ttl_seconds --value 2h
t_check "the periodic reload refuses it" \
	t_wait 5 grep -q '"ev":"sched.setting_invalid"' "$T_TMP/sched_b.log"
t_check "setting unset" $CTL setting unset --key sticky_session_ttl_seconds
t_fails "setting unset of a missing key fails" $CTL setting unset --key sticky_session_ttl_seconds

# --- a refused refresh marks the account ------------------------------------
t_check "acc-bad marked 'error'" t_wait 10 bash -c "psql -qAt '$DB' -c \"SELECT status FROM accounts WHERE name = 'acc-bad'\" | grep -qx error"
t_eq "acc-bad: the reason names invalid_grant" "error|Token refresh failed: invalid_grant HTTP 400" "$(status_of acc-bad)"
t_eq "acc-bad: one attempt, no retry of a 4xx" 1 "$(refreshes "$RT_BAD")"

# --- through the account's proxy ----------------------------------------------
t_check "acc-px refreshed" \
	t_wait 10 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT md5(credentials_enc) FROM accounts WHERE name = 'acc-px'\")\" != '$PX_MD5' ]"
t_eq "acc-px: the fake saw one refresh" 1 "$(refreshes "$RT_PX")"
t_eq "acc-px: it went through the proxy" 1 "$(pstat 'd["by_kind"]["http"]')"
t_eq "acc-px: the proxy accepted the credentials" 0 "$(pstat 'd["auth_failures"]')"
t_eq "acc-px stays active" "active|" "$(status_of acc-px)"
t_check "acc-off: the unusable proxy is logged" \
	t_wait 5 grep -q '"ev":"sched.token_refresh_proxy_unusable"' "$T_TMP/sched_a.log" "$T_TMP/sched_b.log"
t_eq "acc-off: never refreshed, not even directly" 0 "$(refreshes "$RT_OFF")"
t_eq "acc-off: credentials untouched" "$OFF_MD5" "$(creds_md5 acc-off)"
t_eq "acc-off: not marked" "active|" "$(status_of acc-off)"

# --- nothing more happens during further intervals --------------------------
ONE_MD5=$(creds_md5 acc-one)
sleep 3.5 # wall-clock time must pass: three more scan periods
t_eq "no second refresh of acc-one" 1 "$(refreshes "$RT_ONE")"
t_eq "no further attempt for acc-bad" 1 "$(refreshes "$RT_BAD")"
t_eq "acc-one's credentials unchanged since" "$ONE_MD5" "$(creds_md5 acc-one)"
t_eq "no second refresh of acc-px" 1 "$(refreshes "$RT_PX")"
t_eq "the proxy saw nothing more" 1 "$(pstat 'd["connections"]')"

# --- secrets -------------------------------------------------------------------
for f in sched_a sched_b gateway fpx; do
	if grep -qF -e "$RT_ONE" -e "$RT_BAD" -e "$RT_PX" -e "$RT_OFF" -e "at-acc-" -e "sk-ant-o" -e "$PPW" "$T_TMP/$f.log"; then
		t_bad "$f log holds a token or the proxy password"
	else
		t_ok "$f log holds no token and no proxy password"
	fi
done

for s in gateway sched_a sched_b fpx fakeup; do
	stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/sched_a.log" "$T_TMP/sched_b.log"
t_done
