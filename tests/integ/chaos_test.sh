#!/usr/bin/env bash
# chaos_test.sh: billing stays exact while it, and PostgreSQL, are hit.
#
# The stack of gwstack.sh on its own PostgreSQL (port 19590, data under
# T_TMP: the shared test server is never restarted), plus a second group
# "claude2" (multiplier 1.7), a subscription group "plan" and two more
# users.  CHAOS_N (default 5000) requests, 8 at a time, stream and not,
# over four keys, each with its own usage numbers ("usage=IN,OUT,...").
# Driven by the count of completed requests:
#   1000, 2000, 3000  billing SIGKILLed and restarted at once;
#   2500              PostgreSQL stopped (-m fast); billing SIGKILLed and
#                     restarted while it is down (it must wait, not
#                     exit); PostgreSQL started again;
#   4000              billing SIGKILLed, restarted and at once SIGSTOPped
#                     for 30 s, then SIGCONT (the gateway's dials time out
#                     meanwhile: billing's listener guard, nng#1518).
# Then billing is stopped and a stand-in listener hangs up on the
# gateway's sync dials before reading them (nng 1.5.2's dialer then gives
# up); usage spooled meanwhile must still reach the restarted billing.
# Each client-visible outcome is recorded (tests/integ/chaos_drive.py):
#   ok:      200 and a complete answer (stream: message_stop seen; JSON:
#            usage present)  -> exactly one usage_logs row;
#   refused: 5xx (e.g. the scheduler cannot read PostgreSQL) -> no row;
#   cut:     200 whose body ended early, or a transport error -> zero or
#            one row (counted, not asserted);
#   other:   any other status -> must not happen.
# Then, once billing_cursors reaches the gateway's last seq:
#   rows == distinct request ids == usage events the gateway spooled ==
#   ok + the cut ones that have a row; no row outside ok/cut; each
#   balance moved by exactly minus the sum of its rows' actual_cost; the
#   ledger sums to the balances; each key's quota_used_usd and the
#   subscription's daily/weekly/monthly usage equal their rows' sum; no
#   dead letter; the gateway's spool trimmed to nothing.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

. "$ROOT/compose/local/servers.sh"

N=${CHAOS_N:-5000}
PAR=8
PGPORT=19590
PGDIR=$T_TMP/pg
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json
export SUB2API_BILLING_BATCH_MAX=200
export SUB2API_GATEWAY_SPOOL_SYNC_INTERVAL=500ms
export SUB2API_GATEWAY_SPOOL_RESEND_AFTER=2s
export SUB2API_GATEWAY_SPOOL_SYNC_BATCH=512
# The scheduler's account cache on, as in production: failovers and
# account state changes under load go through it.
export GWS_ACCOUNT_CACHE_TTL=1s

chaos_cleanup() {
	gws_cleanup
	srv_pg_stop "$PGDIR"
}
trap chaos_cleanup EXIT

export PG_FSYNC=off # a fast shutdown and restart, never a crash of the server
srv_pg_start "$PGDIR" "$PGPORT" >"$T_TMP/pg.out" 2>&1
t_check "own PostgreSQL on port $PGPORT" pg_isready -q -h 127.0.0.1 -p "$PGPORT"
export SUB2API_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$PGPORT/postgres

gws_up 19580

psql -qAt "$DB" -c "UPDATE users SET concurrency = 64" >/dev/null
psql -qAt "$DB" -c "UPDATE accounts SET concurrency = 64" >/dev/null
$CTL group add --name claude2 --platform anthropic --multiplier 1.7 >/dev/null
$CTL account add --name acc-c --platform anthropic --type apikey \
	--credentials '{"api_key":"sk-up-c"}' --base-url "$FAKE_URL" \
	--priority 10 --concurrency 64 --group claude2 >/dev/null
$CTL group add --name plan --platform anthropic --subscription --daily-limit 100000 >/dev/null
$CTL account add --name acc-s --platform anthropic --type apikey \
	--credentials '{"api_key":"sk-up-s"}' --base-url "$FAKE_URL" \
	--priority 10 --concurrency 64 --group plan >/dev/null
$CTL user add --email second@example.com --balance 1000 --concurrency 64 >/dev/null
$CTL user add --email plan@example.com --balance 0 --concurrency 64 >/dev/null
psql -qAt "$DB" -c "INSERT INTO user_subscriptions (user_id, group_id, expires_at)
	SELECT u.id, g.id, now() + interval '30 days' FROM users u, groups g
	WHERE u.email = 'plan@example.com' AND g.name = 'plan'" >/dev/null
newkey() {
	$CTL --json key add --user "$1" --group "$2" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
K2=$(newkey second@example.com claude2)
K3=$(newkey rich@example.com claude2)
K4=$(newkey plan@example.com plan)
t_check "chaos keys created" test -n "$K2" -a -n "$K3" -a -n "$K4"
declare -A START=([rich]=100 [second]=1000)

bill_ready() {
	[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$BILL_HEALTH/readyz")" = 200 ]
}
done_n() {
	cat "$T_TMP/progress" 2>/dev/null || echo 0
}
at() {
	[ "$(done_n)" -ge "$1" ]
}
STARTS=1 # billings launched so far: gws_up's, then one per kill
kill_billing() {
	# Only a billing that has started (logged svc.started) is killed, so
	# the count of starts checked below is exact even when the milestones
	# come quickly one after the other.
	t_wait 15 bash -c "[ \$(grep -c '\"ev\":\"svc.started\"' '$T_TMP/billing.log') -ge $STARTS ]"
	kill -KILL "${PID[billing]}"
	wait "${PID[billing]}" 2>/dev/null
	"$BIN/sub2api-billing" >>"$T_TMP/billing.log" 2>&1 &
	PID[billing]=$!
	STARTS=$((STARTS + 1))
	echo "# billing SIGKILLed and restarted at $(done_n) requests"
}

t0=$(date +%s)
python3 "$ROOT/tests/integ/chaos_drive.py" --url "http://127.0.0.1:$GW/v1/messages" \
	--keys "$KEY,$K2,$K3,$K4" --n "$N" --par "$PAR" \
	--progress "$T_TMP/progress" --out "$T_TMP/outcomes.csv" >"$T_TMP/drive.log" 2>&1 &
PID[drive]=$!

started_n() {
	grep -c '"ev":"svc.started"' "$T_TMP/billing.log"
}
alive() {
	kill -0 "$1" 2>/dev/null && [ "$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" != Z ]
}
t_check "run reaches $((N / 5)) requests" t_wait 120 at $((N / 5))
kill_billing
t_check "run reaches $((N * 2 / 5)) requests" t_wait 120 at $((N * 2 / 5))
kill_billing
t_check "run reaches $((N / 2)) requests" t_wait 120 at $((N / 2))
pg_down=$(date +%s.%N)
srv_pg_stop "$PGDIR"
echo "# PostgreSQL stopped at $(done_n) requests"
# Billing started while PostgreSQL is down must wait for it, not exit.
s0=$(started_n)
kill_billing
t_check "billing starts while PostgreSQL is down" t_wait 15 bash -c "[ \$(grep -c '\"ev\":\"svc.started\"' '$T_TMP/billing.log') -gt $s0 ]"
t_check "and keeps running" alive "${PID[billing]}"
t_check "PostgreSQL restarted" srv_pg_start "$PGDIR" "$PGPORT"
echo "# PostgreSQL started at $(done_n) requests"
pg_up=$(date +%s.%N)
t_check "billing ready once PostgreSQL is back" t_wait 30 bill_ready
t_check "run reaches $((N * 3 / 5)) requests" t_wait 120 at $((N * 3 / 5))
kill_billing
t_check "run reaches $((N * 4 / 5)) requests" t_wait 120 at $((N * 4 / 5))
# Killed, and frozen as soon as it listens, before the gateway reconnects:
# its dials then give up negotiating after 10 s, which leaves an nng 1.5.2
# listener stuck for good (nanomsg/nng#1518); billing's listener guard
# must reopen it.
s0=$(started_n)
kill_billing
t_check "billing restarted (fifth kill)" t_wait 15 bash -c "[ \$(grep -c '\"ev\":\"svc.started\"' '$T_TMP/billing.log') -gt $s0 ]"
kill -STOP "${PID[billing]}"
echo "# billing SIGSTOPped at $(done_n) requests"
sleep 30 # billing kept away for 30 s of wall-clock time, by design
kill -CONT "${PID[billing]}"
echo "# billing SIGCONTinued at $(done_n) requests"
wait "${PID[drive]}"
t_eq "the driver finished" 0 $?
unset "PID[drive]"
echo "# run took $(($(date +%s) - t0)) s; $(tail -n 1 "$T_TMP/drive.log")"

read -r ok refused cut other <<<"$(python3 -c '
import csv, sys
c = {"ok": 0, "refused": 0, "cut": 0, "other": 0}
for r in csv.DictReader(open(sys.argv[1])):
    c[r["outcome"]] += 1
print(c["ok"], c["refused"], c["cut"], c["other"])' "$T_TMP/outcomes.csv")"
echo "# outcomes: ok $ok, refused $refused, cut $cut, other $other"
t_eq "every request has an outcome" "$N" $((ok + refused + cut + other))
t_eq "no unexpected status" 0 "$other"
# Refusals come from the PostgreSQL outage only (the scheduler cannot
# authenticate): none before it, none later than 5 s after it ended.
t_eq "refused only while PostgreSQL was down (+5 s)" 0 "$(python3 -c '
import csv, sys
lo, hi = float(sys.argv[2]), float(sys.argv[3]) + 5
print(sum(1 for r in csv.DictReader(open(sys.argv[1]))
          if r["outcome"] == "refused" and not lo <= float(r["t"]) <= hi))' \
	"$T_TMP/outcomes.csv" "$pg_down" "$pg_up")"
t_check "requests outside the outage answered" test "$ok" -ge $((N / 2))

t_check "billing ready" t_wait 30 bill_ready
last=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)
echo "# gateway: last usage seq $last"
t_check "billing_cursors reaches the gateway's last seq" t_wait 60 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT max(committed_seq) FROM billing_cursors')\" = $last ]"
t_check "the gateway's spool is trimmed to nothing" t_wait 15 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_spool_pending_records\" {printf \"%d\", \$2}')\" = 0 ]"
t_eq "nothing went unspooled" 0 "$(curl -fsS -m 3 "http://127.0.0.1:$GW_HEALTH/metrics" | grep -c '^sub2api_gateway_usage_unspooled_total{')"

# The outcomes against the rows.
psql -qAt "$DB" -c "\\copy (SELECT request_id FROM usage_logs) TO '$T_TMP/rows.txt'"
read -r rows ok_missing refused_billed cut_billed stray <<<"$(python3 -c '
import csv, sys
rows = [l.strip() for l in open(sys.argv[2]) if l.strip()]
have = set(rows)
want = {"ok": set(), "refused": set(), "cut": set()}
for r in csv.DictReader(open(sys.argv[1])):
    if r["rid"] and r["outcome"] in want:
        want[r["outcome"]].add(r["rid"])
known = want["ok"] | want["refused"] | want["cut"]
print(len(rows), len(want["ok"] - have), len(want["refused"] & have),
      len(want["cut"] & have), len(have - known))' "$T_TMP/outcomes.csv" "$T_TMP/rows.txt")"
echo "# rows $rows: cut requests with a row $cut_billed"
t_eq "every complete 200 has a row (zero missing)" 0 "$ok_missing"
t_eq "no refused request has a row" 0 "$refused_billed"
t_eq "no row outside the requests sent" 0 "$stray"
t_eq "rows == ok + cut ones billed" $((ok + cut_billed)) "$rows"
t_eq "rows are distinct request ids (zero duplicates)" "$rows" "$(psql -qAt "$DB" -c 'SELECT count(DISTINCT request_id) FROM usage_logs')"
t_eq "rows == usage events the gateway numbered" "$last" "$rows"
t_eq "no dead letter" 0 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM billing_dead_letters')"

for who in rich second; do
	email=$who@example.com start=${START[$who]}
	t_eq "$email: balance moved by minus the sum of actual_cost" t "$(psql -qAt "$DB" -c "
		SELECT ($start - u.balance = (SELECT sum(actual_cost)
			FROM usage_logs WHERE user_id = u.id) AND u.balance < $start)
		FROM users u WHERE email = '$email'")"
	t_eq "$email: one usage ledger row per charge" t "$(psql -qAt "$DB" -c "
		SELECT count(*) = (SELECT count(*) FROM usage_logs WHERE user_id = u.id
			AND actual_cost > 0) FROM balance_ledger l JOIN users u ON u.id = l.user_id
		WHERE u.email = '$email' AND l.kind = 'usage' GROUP BY u.id")"
	t_eq "$email: the ledger sums to the balance" t "$(psql -qAt "$DB" -c "
		SELECT sum(l.delta) = u.balance FROM balance_ledger l
		JOIN users u ON u.id = l.user_id WHERE u.email = '$email'
		GROUP BY u.id, u.balance")"
done
t_eq "plan@: balance untouched (subscription)" t "$(psql -qAt "$DB" -c "
	SELECT balance = 0 FROM users WHERE email = 'plan@example.com'")"
t_eq "plan@: the windows equal the sum of actual_cost" t "$(psql -qAt "$DB" -c "
	SELECT s.daily_usage_usd = x.c AND s.weekly_usage_usd = x.c
		AND s.monthly_usage_usd = x.c AND x.c > 0
	FROM user_subscriptions s, (SELECT sum(l.actual_cost) AS c FROM usage_logs l
		JOIN users u ON u.id = l.user_id WHERE u.email = 'plan@example.com') x")"
t_eq "each key's quota_used_usd equals its rows' sum" 0 "$(psql -qAt "$DB" -c "
	SELECT count(*) FROM api_keys k WHERE k.quota_used_usd <>
		(SELECT coalesce(sum(actual_cost), 0) FROM usage_logs WHERE api_key_id = k.id)")"
t_check "keys used are charged" test "$(psql -qAt "$DB" -c "SELECT count(*) FROM api_keys WHERE quota_used_usd > 0")" = 4

t_eq "billing started six times (5 SIGKILLs)" 6 "$(started_n)"
echo "# billing listeners reopened by the guard: $(gws_metric "$BILL_HEALTH" sub2api_billing_listener_reopened_total)"

# nng 1.5.2's dialer gives up for good when the listener hangs up before
# reading its SP header (a billing killed, or a listener the guard
# closes, while a gateway dial waits in its backlog).  Here a stand-in
# listener does just that to the gateway's sync dials while billing is
# away; the sync must replace its socket, so the usage spooled meanwhile
# (the PUB path loses it) still reaches the real billing once it is back.
hangup() { # hangup PATH SECONDS: accept and close, reading nothing
	python3 -c '
import os, socket, sys, time
path, end = sys.argv[1], time.time() + float(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
s.settimeout(0.1)
while time.time() < end:
    try:
        s.accept()[0].close()
    except socket.timeout:
        pass
s.close()
os.unlink(path)' "$@"
}
msg() {
	curl -s -m 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
}
gws_stop billing
t_eq "billing exits 0 on SIGTERM (before the hang-ups)" 0 $?
for i in 1 2 3; do
	t_eq "request $i while billing is away" 200 "$(msg)"
done
hangup "$T_TMP/run/billing-sync.ipc" 4
"$BIN/sub2api-billing" >>"$T_TMP/billing.log" 2>&1 &
PID[billing]=$!
last=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)
t_check "usage spooled while the gateway's dials were hung up on reaches billing" t_wait 60 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT max(committed_seq) FROM billing_cursors')\" = $last ]"
echo "# gateway sync sockets replaced: $(gws_metric "$GW_HEALTH" sub2api_gateway_billing_sync_resets_total)"
for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/scheduler.log" "$T_TMP/billing.log"
t_done
