#!/usr/bin/env bash
# ledger_test.sh: requests through the real gateway end as exact money.
#
# The stack of gwstack.sh plus a second group "claude2" (rate_multiplier
# 1.7, its own account on the fake) and a second user "second@" (balance
# 20).  200 requests, stream and not, over three keys (rich in claude,
# rich in claude2, second in claude2), each asking the fake for its own
# usage numbers ("usage=IN,OUT,CC,CR,CC5M,CC1H"); a few have prompts above
# 200k tokens (the long tier) and a few use claude-haiku-4-5.  Checks:
#  - every request answers 200;
#  - usage_logs holds exactly one row per request (by x-request-id);
#  - each user's balance moved by exactly minus the sum of its rows'
#    actual_cost, the ledger has one usage row per charge summing to the
#    movement, the whole ledger (topup included) sums to the balance, and
#    each balance_after is the running sum, the last one the balance;
#  - every row's tokens and costs equal what this script computes with
#    decimal.Decimal from billing/prices.json and the group multipliers;
#  - billing_cursors holds the gateway's last usage seq;
#  - the poor user (balance 0) is refused 403 before any upstream call.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

N=200
BATCH=16
mkdir -p "$T_TMP/req"
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json
export SUB2API_BILLING_BATCH_MAX=64

gws_up 19080

psql -qAt "$DB" -c "UPDATE users SET concurrency = 64" >/dev/null
psql -qAt "$DB" -c "UPDATE accounts SET concurrency = 64" >/dev/null
$CTL group add --name claude2 --platform anthropic --multiplier 1.7 >/dev/null
$CTL account add --name acc-c --platform anthropic --type apikey \
	--credentials '{"api_key":"sk-up-c"}' --base-url "$FAKE_URL" \
	--priority 10 --concurrency 64 --group claude2 >/dev/null
$CTL user add --email second@example.com --balance 20 --concurrency 64 >/dev/null
K2=$($CTL --json key add --user second@example.com --group claude2 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
K3=$($CTL --json key add --user rich@example.com --group claude2 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
t_check "second group keys created" test -n "$K2" -a -n "$K3"

# req I: one request with its own usage numbers; writes req/I.{code,hdr}.
req() {
	local i=$1 stream=false key model=claude-sonnet-4-5 in body
	[ $((i % 2)) -eq 0 ] && stream=true
	case $((i % 3)) in
	0) key=$KEY ;;
	1) key=$K2 ;;
	*) key=$K3 ;;
	esac
	[ $((i % 7)) -eq 0 ] && model=claude-haiku-4-5
	in=$((100 + i))
	[ $((i % 50)) -eq 0 ] && in=$((199900 + i)) model=claude-sonnet-4-5
	body='{"model":"'$model'@fake:usage='"$in,$((2 * i + 1)),$((3 * i)),$((4 * i)),$i,$((2 * i))"'","max_tokens":64,"stream":'$stream',"messages":[{"role":"user","content":"hi"}]}'
	curl -s -m 30 -o /dev/null -D "$T_TMP/req/$i.hdr" -w '%{http_code}' \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $key" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "$body" >"$T_TMP/req/$i.code"
}

jobs_=()
for i in $(seq 1 $N); do
	req "$i" &
	jobs_+=($!)
	if [ ${#jobs_[@]} -ge $BATCH ]; then
		wait "${jobs_[@]}"
		jobs_=()
	fi
done
[ ${#jobs_[@]} -gt 0 ] && wait "${jobs_[@]}"

t_eq "every request answered 200" "$N" "$(awk 1 "$T_TMP"/req/*.code | grep -c '^200$')"
t_check "billing wrote $N usage rows" t_wait 15 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT count(*) FROM usage_logs')\" = $N ]"
t_check "billing_cursors reached seq $N" t_wait 5 bash -c "[ \"\$(psql -qAt '$DB' -c 'SELECT max(committed_seq) FROM billing_cursors')\" = $N ]"

# One row per x-request-id, none else.
for i in $(seq 1 $N); do
	tr -d '\r' <"$T_TMP/req/$i.hdr" | awk -v i="$i" 'tolower($1) == "x-request-id:" { print i "," $2 }'
done >"$T_TMP/rids.csv"
t_eq "one x-request-id per request" "$N" "$(wc -l <"$T_TMP/rids.csv")"
psql -qAt -F, "$DB" -c "SELECT request_id FROM usage_logs ORDER BY request_id" >"$T_TMP/rows.txt"
t_eq "usage_logs request ids are the gateway's" \
	"$(cut -d, -f2 "$T_TMP/rids.csv" | sort)" "$(cat "$T_TMP/rows.txt")"

# Balances, ledger and the chain, per user.
for who in rich:100 second:20; do
	email=${who%%:*}@example.com start=${who##*:}
	t_eq "$email: balance moved by minus the sum of actual_cost" t "$(psql -qAt "$DB" -c "
		SELECT ($start - u.balance = (SELECT coalesce(sum(actual_cost), 0)
			FROM usage_logs WHERE user_id = u.id) AND u.balance < $start)
		FROM users u WHERE email = '$email'")"
	t_eq "$email: one usage ledger row per charge, summing to the movement" t "$(psql -qAt "$DB" -c "
		SELECT (sum(l.delta) = u.balance - $start AND count(*) =
			(SELECT count(*) FROM usage_logs WHERE user_id = u.id AND actual_cost > 0))
		FROM balance_ledger l JOIN users u ON u.id = l.user_id
		WHERE u.email = '$email' AND l.kind = 'usage' GROUP BY u.id, u.balance")"
	# sub2apictl's topup row opens the ledger: it sums to the balance.
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
mult = {"claude": Decimal("1"), "claude2": Decimal("1.7")}
bad = checked = longs = 0
for line in open(sys.argv[3]):
    (rid, grp, model, tin, tout, t5, t1, tcr, cin, cout, ccc, ccr, tot,
     act, m) = line.strip().split("|")
    i = int(rids[rid])
    want_model = "claude-haiku-4-5" if i % 7 == 0 and i % 50 else "claude-sonnet-4-5"
    want_in = 199900 + i if i % 50 == 0 else 100 + i
    toks = (want_in, 2 * i + 1, i, 2 * i, 4 * i)
    if (int(tin), int(tout), int(t5), int(t1), int(tcr)) != toks:
        print("tokens", rid, i, tin, tout, t5, t1, tcr); bad += 1; continue
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
t_eq "every row's costs equal the independent computation" "$N 4 0" "$(echo "$out" | tail -1)"
t_eq "rows of claude2 carry multiplier 1.7" t "$(psql -qAt "$DB" -c "
	SELECT bool_and(l.rate_multiplier = 1.7 AND l.actual_cost =
		round(l.total_cost * 1.7, 10)) AND count(*) > 0
	FROM usage_logs l JOIN groups g ON g.id = l.group_id WHERE g.name = 'claude2'")"
t_eq "no dead letters" 0 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM billing_dead_letters')"
# A slow billing gets events again from the gateway's spool: those, and
# only those, may show as duplicates.
t_check "billing confirmed and settled every event" t_wait 30 gws_billing_settled
t_check "every duplicate billing saw was a spool resend" test \
	"$(gws_metric $BILL_HEALTH sub2api_billing_duplicates_total)" -le \
	"$(gws_metric $BILL_HEALTH sub2api_billing_sync_events_total)"

# The poor user is refused before any upstream call.
before=$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
code=$(curl -s -m 10 -o "$T_TMP/poor.out" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
	-H "x-api-key: $POOR" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
	-d '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}')
after=$(curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
t_eq "zero balance answers 403" 403 "$code"
t_eq "zero balance made no upstream call" "$before" "$after"

t_check "billing stops cleanly" gws_stop billing
t_done
