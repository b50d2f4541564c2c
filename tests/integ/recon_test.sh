#!/usr/bin/env bash
# recon_test.sh: 1,000 mixed requests reconcile exactly.
#
# The stack of gwstack.sh plus a group "claude15" (rate_multiplier 1.5)
# and a subscription group "plan" (rate_multiplier 0.5, high daily, weekly
# and monthly limits), each with its own account on the fake; users rich
# (balance 100) and second (balance 100) pay from their balance, subu has
# a subscription to "plan" and no balance.  Five keys: rich in claude
# (quota_usd set) and claude15, second in claude15 (quota) and claude,
# subu in plan (quota).  1,000 requests, 8 at a time, half streamed, each
# asking the fake for its own usage ("usage=IN,OUT,CC,CR,CC5M,CC1H"), a
# few with prompts above 200k tokens and some on claude-haiku-4-5.
# Checks, all exact (numeric in SQL, decimal.Decimal in Python):
#  - every request answers 200; 1,000 usage rows, one per x-request-id,
#    500 of them streamed; the cursor reached seq 1,000; no dead letter;
#  - each balance user's balance moved by minus the sum of its rows'
#    actual_cost; one usage ledger row per charged row; the ledger sums to
#    the balance; each balance_after is the running sum;
#  - the subscription user's balance and ledger did not move; its rows are
#    billing_type 1 with its subscription id; the daily, weekly and
#    monthly usage each equal the sum of those rows' actual_cost, and the
#    windows started today (UTC);
#  - every key's quota_used_usd equals the sum of its rows' actual_cost;
#  - every row's tokens and costs equal this script's own computation
#    from billing/prices.json and the group multipliers.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

N=1000
PAR=8
mkdir -p "$T_TMP/req"
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json

gws_up 19380

$CTL group add --name claude15 --platform anthropic --multiplier 1.5 >/dev/null
$CTL group add --name plan --platform anthropic --multiplier 0.5 --subscription \
	--daily-limit 100000 --weekly-limit 100000 --monthly-limit 100000 >/dev/null
for a in c:claude15 p:plan; do
	$CTL account add --name "acc-${a%%:*}" --platform anthropic --type apikey \
		--credentials "{\"api_key\":\"sk-up-${a%%:*}\"}" --base-url "$FAKE_URL" \
		--priority 10 --concurrency 64 --group "${a##*:}" >/dev/null
done
$CTL user add --email second@example.com --balance 100 >/dev/null
$CTL user add --email subu@example.com --balance 0 >/dev/null
psql -qAt "$DB" -c "
	UPDATE users SET concurrency = 64;
	UPDATE accounts SET concurrency = 64;
	INSERT INTO user_subscriptions (user_id, group_id, expires_at)
	SELECT u.id, g.id, now() + interval '30 days' FROM users u, groups g
	WHERE u.email = 'subu@example.com' AND g.name = 'plan'" >/dev/null
newkey() {
	$CTL --json key add --user "$1" --group "$2" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
K0=$KEY
K1=$(newkey rich@example.com claude15)
K2=$(newkey second@example.com claude15)
K3=$(newkey second@example.com claude)
K4=$(newkey subu@example.com plan)
t_check "keys created" test -n "$K1" -a -n "$K2" -a -n "$K3" -a -n "$K4"
for k in "$K0" "$K2" "$K4"; do
	h=$(printf %s "$k" | sha256sum | cut -d' ' -f1)
	psql -qAt "$DB" -c "UPDATE api_keys SET quota_usd = 100000 WHERE key_hash = '$h'" >/dev/null
done
t_eq "three keys carry a quota" 3 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM api_keys WHERE quota_usd IS NOT NULL')"

# req I: one request with its own usage numbers; writes req/I.{code,hdr}.
req() {
	local i=$1 stream=false key model=claude-sonnet-4-5 in m body
	[ $((i % 2)) -eq 0 ] && stream=true
	case $((i % 5)) in
	0) key=$K0 ;;
	1) key=$K1 ;;
	2) key=$K2 ;;
	3) key=$K3 ;;
	*) key=$K4 ;;
	esac
	[ $((i % 7)) -eq 0 ] && model=claude-haiku-4-5
	in=$((100 + i * 7 % 5000)) m=$((i % 37))
	[ $((i % 97)) -eq 0 ] && in=$((199900 + i)) model=claude-sonnet-4-5
	body='{"model":"'$model'@fake:usage='"$in,$((1 + i % 900)),$((3 * m)),$((4 * (i % 53))),$m,$((2 * m))"'","max_tokens":64,"stream":'$stream',"messages":[{"role":"user","content":"hi"}]}'
	curl -s -m 30 -o /dev/null -D "$T_TMP/req/$i.hdr" -w '%{http_code}' \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $key" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "$body" >"$T_TMP/req/$i.code"
}
export -f req
export K0 K1 K2 K3 K4 GW T_TMP

t0=$(date +%s)
seq 1 $N | xargs -P $PAR -I{} bash -c 'req {}'
echo "# $N requests in $(($(date +%s) - t0)) s"

t_eq "every request answered 200" "$N" "$(cat "$T_TMP"/req/*.code | grep -o 200 | wc -l)"
t_check "billing wrote $N usage rows" t_wait 30 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT count(*) FROM usage_logs')\" = $N ]"
t_check "billing_cursors reached seq $N" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT max(committed_seq) FROM billing_cursors')\" = $N ]"

for i in $(seq 1 $N); do
	tr -d '\r' <"$T_TMP/req/$i.hdr" | awk -v i="$i" 'tolower($1) == "x-request-id:" { print i "," $2 }'
done >"$T_TMP/rids.csv"
t_eq "one x-request-id per request" "$N" "$(cut -d, -f2 "$T_TMP/rids.csv" | sort -u | wc -l)"
t_eq "usage_logs request ids are the gateway's, each once" \
	"$(cut -d, -f2 "$T_TMP/rids.csv" | sort)" \
	"$(psql -qAt "$DB" -c "SELECT request_id FROM usage_logs ORDER BY request_id" | LC_ALL=C sort)"
t_eq "half the rows are streamed" $((N / 2)) "$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs WHERE stream')"
t_eq "no dead letters" 0 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM billing_dead_letters')"
# A slow billing gets events again from the gateway's spool: those, and
# only those, may show as duplicates.
t_check "billing confirmed and settled every event" t_wait 30 gws_billing_settled
t_check "every duplicate billing saw was a spool resend" test \
	"$(gws_metric $BILL_HEALTH sub2api_billing_duplicates_total)" -le \
	"$(gws_metric $BILL_HEALTH sub2api_billing_sync_events_total)"

# The balance users: money, ledger, chain.
for who in rich second; do
	email=$who@example.com
	t_eq "$email: balance moved by minus the sum of its rows' actual_cost" t "$(psql -qAt "$DB" -c "
		SELECT (100 - u.balance = sum(l.actual_cost) AND count(*) > 150
			AND bool_and(l.billing_type = 0 AND l.subscription_id IS NULL))
		FROM users u JOIN usage_logs l ON l.user_id = u.id
		WHERE u.email = '$email' GROUP BY u.id, u.balance")"
	t_eq "$email: one usage ledger row per charged row, summing to the movement" t "$(psql -qAt "$DB" -c "
		SELECT (sum(l.delta) = u.balance - 100 AND count(*) =
			(SELECT count(*) FROM usage_logs WHERE user_id = u.id AND actual_cost > 0)
			AND count(DISTINCT l.ref) = count(*))
		FROM balance_ledger l JOIN users u ON u.id = l.user_id
		WHERE u.email = '$email' AND l.kind = 'usage' GROUP BY u.id, u.balance")"
	t_eq "$email: each ledger row's delta is its usage row's actual_cost" 0 "$(psql -qAt "$DB" -c "
		SELECT count(*) FROM balance_ledger l JOIN users u ON u.id = l.user_id
		LEFT JOIN usage_logs r ON r.request_id = l.ref
		WHERE u.email = '$email' AND l.kind = 'usage'
		AND (r.id IS NULL OR r.user_id <> l.user_id OR l.delta <> -r.actual_cost)")"
	t_eq "$email: the ledger sums to the balance" t "$(psql -qAt "$DB" -c "
		SELECT sum(l.delta) = u.balance FROM balance_ledger l
		JOIN users u ON u.id = l.user_id WHERE u.email = '$email'
		GROUP BY u.id, u.balance")"
	t_eq "$email: balance_after chains to the balance" t "$(psql -qAt "$DB" -c "
		WITH l AS (SELECT l.*, sum(delta) OVER (ORDER BY l.id) AS run,
			row_number() OVER (ORDER BY l.id DESC) AS back
			FROM balance_ledger l JOIN users u ON u.id = l.user_id
			WHERE u.email = '$email')
		SELECT bool_and(balance_after = run) AND bool_and(back <> 1 OR
			balance_after = (SELECT balance FROM users WHERE email = '$email'))
		FROM l")"
done

# The subscription user: windows, not balance.
t_eq "subu: balance and ledger untouched" "0.0000000000 0" "$(psql -qAt -F' ' "$DB" -c "
	SELECT u.balance, (SELECT count(*) FROM balance_ledger l WHERE l.user_id = u.id)
	FROM users u WHERE email = 'subu@example.com'")"
t_eq "subu: its rows are subscription rows of its subscription" t "$(psql -qAt "$DB" -c "
	SELECT bool_and(l.billing_type = 1 AND l.subscription_id = s.id) AND count(*) = $N / 5
	FROM usage_logs l JOIN users u ON u.id = l.user_id
	JOIN user_subscriptions s ON s.user_id = u.id
	WHERE u.email = 'subu@example.com'")"
t_eq "subu: daily, weekly and monthly usage equal the sum of its rows" t "$(psql -qAt "$DB" -c "
	SELECT s.daily_usage_usd = x.s AND s.weekly_usage_usd = x.s
		AND s.monthly_usage_usd = x.s AND x.s > 0
	FROM user_subscriptions s, LATERAL (SELECT sum(actual_cost) s
		FROM usage_logs WHERE subscription_id = s.id) x")"
t_eq "subu: the windows started today (UTC)" t "$(psql -qAt "$DB" -c "
	SELECT bool_and(daily_window_start = date_trunc('day', now(), 'UTC')
		AND weekly_window_start = daily_window_start
		AND monthly_window_start = daily_window_start)
	FROM user_subscriptions")"

# Keys: quota usage equals the sum of their rows, quota set or not.
t_eq "every key's quota_used_usd is the sum of its rows' actual_cost" "7 7 5" "$(psql -qAt -F' ' "$DB" -c "
	SELECT count(*), count(*) FILTER (WHERE k.quota_used_usd = coalesce(x.s, 0)),
		count(*) FILTER (WHERE x.s > 0)
	FROM api_keys k LEFT JOIN LATERAL (SELECT sum(actual_cost) s
		FROM usage_logs WHERE api_key_id = k.id) x ON true")"
t_eq "the whole: balances + windows = every row" t "$(psql -qAt "$DB" -c "
	SELECT (SELECT 200 - sum(balance) FROM users WHERE email IN
		('rich@example.com', 'second@example.com'))
		+ (SELECT sum(daily_usage_usd) FROM user_subscriptions)
		= (SELECT sum(actual_cost) FROM usage_logs)")"

# Every row's tokens and costs, computed here with decimal.Decimal.
psql -qAt -F'|' "$DB" -c "
	SELECT l.request_id, g.name, l.model, l.input_tokens, l.output_tokens,
		l.cache_creation_5m_tokens, l.cache_creation_1h_tokens,
		l.cache_read_tokens, l.input_cost, l.output_cost,
		l.cache_creation_cost, l.cache_read_cost, l.total_cost,
		l.actual_cost, l.rate_multiplier
	FROM usage_logs l JOIN groups g ON g.id = l.group_id" >"$T_TMP/costs.txt"
cat >"$T_TMP/check.py" <<'EOF'
import json, sys
from decimal import Decimal
from expected_cost import row_cost
prices = json.load(open(sys.argv[1]), parse_float=Decimal)
rids = dict(l.strip().split(",")[::-1] for l in open(sys.argv[2]))
mult = {"claude": Decimal("1"), "claude15": Decimal("1.5"), "plan": Decimal("0.5")}
group_of = {0: "claude", 1: "claude15", 2: "claude15", 3: "claude", 4: "plan"}
bad = checked = longs = 0
for line in open(sys.argv[3]):
    (rid, grp, model, tin, tout, t5, t1, tcr, cin, cout, ccc, ccr, tot,
     act, m) = line.strip().split("|")
    i = int(rids[rid])
    long_req = i % 97 == 0
    want_model = "claude-haiku-4-5" if i % 7 == 0 and not long_req else "claude-sonnet-4-5"
    want_in = 199900 + i if long_req else 100 + i * 7 % 5000
    mm = i % 37
    toks = (want_in, 1 + i % 900, mm, 2 * mm, 4 * (i % 53))
    if (int(tin), int(tout), int(t5), int(t1), int(tcr)) != toks or grp != group_of[i % 5]:
        print("tokens/group", rid, i, grp, tin, tout, t5, t1, tcr); bad += 1; continue
    want, long_ = row_cost(prices, want_model, toks, mult[grp])
    got = tuple(Decimal(x) for x in (cin, cout, ccc, ccr, tot, act, m))
    if want != got or not model.startswith(want_model + "@fake:"):
        print("cost", rid, i, model, want, got); bad += 1
    checked += 1
    longs += long_
print(checked, longs, bad)
EOF
out=$(PYTHONPATH="$ROOT/tests/integ" python3 "$T_TMP/check.py" "$ROOT/billing/prices.json" "$T_TMP/rids.csv" "$T_TMP/costs.txt")
echo "# checked rows, long-tier rows, mismatches: $(echo "$out" | tail -1)"
t_eq "every row's costs equal the independent computation" "$N 10 0" "$(echo "$out" | tail -1)"

t_check "billing stops cleanly" gws_stop billing
t_done
