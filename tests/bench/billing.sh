#!/usr/bin/env bash
# billing.sh: billing's sustained usage events per second into PostgreSQL.
#
# A database of its own in the test PostgreSQL (1,000 users: 900 paying
# from their balance in two groups, multipliers 1 and 1.5, and 100 with a
# subscription; 2,000 API keys, half of them with a USD quota; 4
# accounts), the real billing service, then build/bin/billbench publishing
# N usage events over NNG as a gateway would (random keys, four models,
# varied tokens) and timing them until billing_cursors reaches N.  After
# the run the money is checked exactly: N rows, each balance moved by the
# sum of its rows, the ledger and each key's quota and subscription agree.
# Prints a Markdown table and writes build/bench/billing.json.
#
# Usage: make bench-billing   (or BIN=build/bin bash tests/bench/billing.sh [N])
# N events (default 100000).  BATCH_MAX and WRITERS set billing's
# batch_max (2000) and writers (3); BILLING_BIN another billing binary
# (for a before/after comparison); HEALTH_PORT billing's health port
# (19390).
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
N=${1:-100000}
BATCH_MAX=${BATCH_MAX:-2000}
WRITERS=${WRITERS:-3}
BIN=${BIN:-$ROOT/build/bin}
T_TMP=$(mktemp -d)
export T_TMP BIN ROOT
. tests/integ/lib.sh
. compose/local/servers.sh
srv_pg_start "$ROOT/var/test/pg" 55432 >/dev/null || exit 1
srv_redis_start "$ROOT/var/test/redis" 56379 >/dev/null || exit 1
export SUB2API_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres
export SUB2API_TEST_REDIS_URL=redis://127.0.0.1:56379

HEALTH=${HEALTH_PORT:-19390}
BILL_PID=
cleanup() {
	[ -n "$BILL_PID" ] && kill -KILL "$BILL_PID" 2>/dev/null
	[ -n "${DB:-}" ] && psql "$SUB2API_TEST_DATABASE_URL" -qAtc \
		"DROP DATABASE IF EXISTS ${DB##*/}" >/dev/null 2>&1
	rm -rf "$T_TMP"
}
trap cleanup EXIT

DB=$(t_newdb billbench)
"$BIN/sub2apictl" --db "$DB" --migrations "$ROOT/migrations" migrate >/dev/null || exit 1
psql -qAt -v ON_ERROR_STOP=1 "$DB" >/dev/null <<'SQL' || exit 1
INSERT INTO users (email, balance, concurrency)
	SELECT 'u' || i || '@bench.example', 1000000, 10 FROM generate_series(1, 1000) i;
INSERT INTO balance_ledger (user_id, delta, balance_after, kind, ref)
	SELECT id, balance, balance, 'topup', 'bench' FROM users;
INSERT INTO groups (name, rate_multiplier) VALUES ('std-1', 1), ('std-1.5', 1.5);
INSERT INTO groups (name, subscription_type, daily_limit_usd, weekly_limit_usd,
	monthly_limit_usd) VALUES ('plan', 'subscription', 1e9, 1e9, 1e9);
INSERT INTO accounts (name, platform, type, credentials_enc)
	SELECT 'acc-' || i, 'anthropic', 'apikey', '\x00' FROM generate_series(1, 4) i;
INSERT INTO user_subscriptions (user_id, group_id, expires_at)
	SELECT u.id, g.id, now() + interval '30 days' FROM users u, groups g
	WHERE g.name = 'plan' AND u.id > 900;
INSERT INTO api_keys (user_id, key_hash, key_prefix, group_id, quota_usd)
	SELECT (i - 1) % 1000 + 1, encode(sha256(('bench' || i)::bytea), 'hex'),
		'sk-bench', (SELECT id FROM groups WHERE name = CASE
			WHEN (i - 1) % 1000 + 1 > 900 THEN 'plan'
			WHEN i % 2 = 0 THEN 'std-1' ELSE 'std-1.5' END),
		CASE WHEN i % 2 = 0 THEN 1e9 END
	FROM generate_series(1, 2000) i;
SQL

mkdir -p "$T_TMP/run"
export SUB2API_DATABASE_URL=$DB
export SUB2API_REDIS_URL=$SUB2API_TEST_REDIS_URL/12
export SUB2API_STATE_DIR=$T_TMP/run
export SUB2API_LOG_LEVEL=warn
export SUB2API_BILLING_HEALTH_ADDR=127.0.0.1:$HEALTH
export SUB2API_BILLING_REDIS_PREFIX=billbench$$:
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json
export SUB2API_BILLING_BATCH_MAX=$BATCH_MAX
export SUB2API_BILLING_WRITERS=$WRITERS
"${BILLING_BIN:-$BIN/sub2api-billing}" >"$T_TMP/billing.log" 2>&1 &
BILL_PID=$!
if ! t_wait 15 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:$HEALTH/readyz)\" = 200 ]"; then
	cat "$T_TMP/billing.log"
	echo "billing did not become ready; no figures"
	exit 1
fi

if ! "$BIN/billbench" --addr "ipc://$T_TMP/run/billing-events.ipc" --db "$DB" \
	--n "$N" >"$T_TMP/bench.json"; then
	tail -20 "$T_TMP/billing.log"
	echo "the benchmark failed; no figures"
	exit 1
fi
metric() {
	curl -fsS -m 3 "http://127.0.0.1:$HEALTH/metrics" |
		awk -v m="$1" '$1 == m { printf "%d\n", $2 }'
}
# The counters move just after the commit the cursor showed.
t_wait 10 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$HEALTH/metrics |
	awk '\$1 == \"sub2api_billing_rows_total\" { printf \"%d\", \$2 }')\" = $N ]"
ROWS=$(metric sub2api_billing_rows_total)
BATCHES=$(metric sub2api_billing_batches_total)
DROPPED=$(metric sub2api_billing_queue_dropped_total)

# Exactness after the run: every figure below must be 0 (or N).
CHECK=$(psql -qAt -F' ' "$DB" <<'SQL'
WITH c AS (SELECT user_id, sum(actual_cost) s FROM usage_logs
	WHERE billing_type = 0 GROUP BY user_id)
SELECT (SELECT count(DISTINCT request_id) FROM usage_logs),
	(SELECT count(*) FROM users u LEFT JOIN c ON c.user_id = u.id
		WHERE 1000000 - u.balance <> coalesce(c.s, 0)),
	(SELECT count(*) FROM users u WHERE balance <>
		(SELECT sum(delta) FROM balance_ledger l WHERE l.user_id = u.id)),
	(SELECT count(*) FROM api_keys k WHERE quota_used_usd <>
		(SELECT coalesce(sum(actual_cost), 0) FROM usage_logs l
		WHERE l.api_key_id = k.id)),
	(SELECT count(*) FROM user_subscriptions s WHERE daily_usage_usd <>
		(SELECT coalesce(sum(actual_cost), 0) FROM usage_logs l
		WHERE l.subscription_id = s.id)),
	(SELECT count(*) FROM billing_dead_letters);
SQL
)
kill -TERM "$BILL_PID"
wait "$BILL_PID"
BILL_PID=

mkdir -p build/bench
python3 - "$T_TMP/bench.json" "$N" "$BATCH_MAX" "$ROWS" "$BATCHES" "$DROPPED" "$WRITERS" "$CHECK" <<'PY' | tee build/bench/billing.md
import json, sys
b = json.load(open(sys.argv[1]))
n, bmax, rows, batches, dropped, writers = (int(x or 0) for x in sys.argv[2:8])
chk = [int(x) for x in sys.argv[8].split()]
names = ["distinct rows", "balances off", "ledgers off", "key quotas off",
         "subscriptions off", "dead letters"]
bad = [f"{k}={v}" for k, v in zip(names, chk) if (v != n if k == "distinct rows" else v != 0)]
if bad or rows != n:
    sys.exit(f"exactness check failed ({', '.join(bad)}, rows {rows}); no figures")
avg = rows / batches if batches else 0
print("| events | events/s | writers | batch_max | mean batch | p50 commit latency ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {n} | {b['events_per_s']:.0f} | {writers} | {bmax} | {avg:.0f} | {b['latency_p50_ms']:.1f} | "
      f"{b['latency_p99_ms']:.1f} | {b['latency_max_ms']:.1f} |")
b.update({"writers": writers, "batch_max": bmax, "batches": batches, "mean_batch": avg,
          "queue_dropped": dropped, "exact": True})
json.dump(b, open("build/bench/billing.json", "w"), indent=2)
PY
