/*
 * bill_ledger_tx.c: the statements of one batch's transaction (see
 * bill_ledger.h): the multi-row usage_logs INSERT, the per-user,
 * per-subscription and per-key UPDATEs, dead letters, cursors, and the
 * Redis billing cache written after the commit.
 */
#include <stdio.h>
#include <string.h>

#include "bill_ledger_int.h"
#include "crypto.h"
#include "err.h"
#include "log.h"

static int64_t
bill_clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- the transaction ------------------------------------------------ */

/*
 * The rows go in with COPY (text format) into a temporary table private
 * to the connection, emptied at every commit, then one INSERT ... SELECT
 * moves them into usage_logs: COPY parses a row several times faster
 * than jsonb_to_recordset() did, and the statement stays a constant.
 * The table is created on the connection's first batch (IF NOT EXISTS:
 * the notice goes to the debug log).
 */
static const char BILL_SQL_STAGE[] =
    "CREATE TEMP TABLE IF NOT EXISTS bill_stage (uid bigint, kid bigint,"
    " aid bigint, rid text, model text, gid bigint, sid bigint, tin int,"
    " tout int, t5m int, t1h int, tcr int, cin numeric, cout numeric,"
    " ccc numeric, ccr numeric, ctot numeric, cact numeric, mult bigint,"
    " bt smallint, stream boolean, dur int, ttft int, ua text, ip text,"
    " inst text, seq bigint, ts bigint) ON COMMIT DELETE ROWS";

static const char BILL_SQL_COPY[] = "COPY bill_stage FROM STDIN";

static const char BILL_SQL_INSERT[] =
    "INSERT INTO usage_logs (user_id, api_key_id, account_id, request_id,"
    " model, group_id, subscription_id, input_tokens, output_tokens,"
    " cache_creation_tokens, cache_read_tokens, cache_creation_5m_tokens,"
    " cache_creation_1h_tokens, input_cost, output_cost,"
    " cache_creation_cost, cache_read_cost, total_cost, actual_cost,"
    " rate_multiplier, billing_type, stream, duration_ms, first_token_ms,"
    " user_agent, ip_address, instance_id, seq, created_at)"
    " SELECT r.uid, r.kid, r.aid, r.rid, r.model, r.gid, r.sid, r.tin,"
    " r.tout, r.t5m + r.t1h, r.tcr, r.t5m, r.t1h, r.cin, r.cout, r.ccc,"
    " r.ccr, r.ctot, r.cact, r.mult::numeric / 1000000, r.bt, r.stream,"
    " r.dur, r.ttft, r.ua, r.ip, r.inst, r.seq,"
    " CASE WHEN r.ts > 0 THEN 'epoch'::timestamptz"
    " + r.ts * interval '1 millisecond' ELSE now() END"
    " FROM bill_stage r"
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id";

#define BILL_COPY_MAX (64 << 20) /* COPY data of one batch, bytes */

/* Appends s as COPY text (valid UTF-8, at most chars), then sep. */
static int
bill_copy_str(struct buf *b, const char *s, size_t chars, char sep)
{
	char   t[2048];
	size_t i;
	int    rv = 0;

	if (s == NULL)
		return buf_addf(b, "\\N%c", sep);
	bill_utf8_copy(t, sizeof(t), s, chars);
	for (i = 0; t[i] != '\0' && rv == 0; i++) {
		switch (t[i]) {
		case '\\':
			rv = buf_addf(b, "\\\\");
			break;
		case '\t':
			rv = buf_addf(b, "\\t");
			break;
		case '\n':
			rv = buf_addf(b, "\\n");
			break;
		case '\r':
			rv = buf_addf(b, "\\r");
			break;
		default:
			rv = buf_addch(b, t[i]);
		}
	}
	return rv == 0 ? buf_addch(b, sep) : rv;
}

/* One usage_logs row as a COPY text line (bill_stage's columns). */
static int
bill_copy_row(struct buf *b, const struct bill_item *it)
{
	const struct proto_usage_evt *u = &it->ev->u;
	char c[6][BILL_COST_STR_MAX], gid[24], sid[24], ttft[24];
	int  rv;

	snprintf(gid, sizeof(gid), "%lld", (long long)it->gid);
	snprintf(sid, sizeof(sid), "%lld", (long long)u->subscription_id);
	snprintf(ttft, sizeof(ttft), "%lld",
	    (long long)bill_clamp(u->first_token_ms, 0, INT32_MAX));
	rv = buf_addf(b, "%lld\t%lld\t%lld\t", (long long)u->user_id,
	    (long long)u->api_key_id, (long long)u->account_id);
	if (rv == 0)
		rv = bill_copy_str(b, u->request_id, BILL_ID_CHARS, '\t');
	if (rv == 0)
		rv = bill_copy_str(b, u->model, BILL_MODEL_CHARS, '\t');
	if (rv == 0)
		rv = buf_addf(b,
		    "%s\t%s\t%lld\t%lld\t%lld\t%lld\t%lld\t%s\t%s\t%s\t%s\t%s\t"
		    "%s\t%lld\t%d\t%s\t%lld\t%s\t",
		    it->gid > 0 ? gid : "\\N",
		    it->billing_type == 1 ? sid : "\\N",
		    (long long)it->use.input, (long long)it->use.output,
		    (long long)it->use.cache_5m, (long long)it->use.cache_1h,
		    (long long)it->use.cache_read,
		    bill_cost_fmt(it->cost.input, c[0], sizeof(c[0])),
		    bill_cost_fmt(it->cost.output, c[1], sizeof(c[1])),
		    bill_cost_fmt(it->cost.cache_creation, c[2], sizeof(c[2])),
		    bill_cost_fmt(it->cost.cache_read, c[3], sizeof(c[3])),
		    bill_cost_fmt(it->cost.total, c[4], sizeof(c[4])),
		    bill_cost_fmt(it->cost.actual, c[5], sizeof(c[5])),
		    (long long)it->cost.multiplier, it->billing_type,
		    u->stream ? "t" : "f",
		    (long long)bill_clamp(u->duration_ms, 0, INT32_MAX),
		    u->first_token_ms > 0 ? ttft : "\\N");
	if (rv == 0)
		rv = bill_copy_str(b,
		    u->user_agent[0] != '\0' ? u->user_agent : NULL,
		    PROTO_UA_MAX, '\t');
	if (rv == 0)
		rv = bill_copy_str(b,
		    u->client_ip[0] != '\0' ? u->client_ip : NULL,
		    BILL_IP_CHARS, '\t');
	if (rv == 0)
		rv = bill_copy_str(b, u->instance, BILL_ID_CHARS, '\t');
	if (rv == 0)
		rv =
		    buf_addf(b, "%lld\t%lld\n", (long long)(u->seq & INT64_MAX),
		        (long long)u->created_at_ms);
	return rv;
}

/* Sends data (borrowed) as the rows of bill_stage. */
static int
bill_copy(struct pg_conn *c, const struct buf *data)
{
	PGconn     *pc = pg_conn_raw(c);
	PGresult   *res;
	const char *msg = NULL;
	int         rv = 0;

	res = PQexec(pc, BILL_SQL_COPY);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		rv = err_from_sqlstate(
		    PQresultErrorField(res, PG_DIAG_SQLSTATE));
		log_warn("bill.sql_failed", LOG_STR("stmt", "copy"),
		    LOG_ERR(rv),
		    LOG_MSG(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)));
		PQclear(res);
		return rv != 0 ? rv : -ERR_DB;
	}
	PQclear(res);
	if (PQputCopyData(pc, data->data, (int)data->len) != 1)
		msg = "copy data not sent";
	if (PQputCopyEnd(pc, msg) != 1 && msg == NULL)
		msg = "copy end not sent";
	while ((res = PQgetResult(pc)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rv == 0) {
			rv = err_from_sqlstate(
			    PQresultErrorField(res, PG_DIAG_SQLSTATE));
			if (rv == 0)
				rv = -ERR_DB;
			log_warn("bill.sql_failed", LOG_STR("stmt", "copy"),
			    LOG_ERR(rv),
			    LOG_MSG(PQresultErrorField(
			        res, PG_DIAG_MESSAGE_PRIMARY)));
		}
		PQclear(res);
	}
	if (rv == 0 && msg != NULL) {
		log_warn(
		    "bill.sql_failed", LOG_STR("stmt", "copy"), LOG_MSG(msg));
		rv = -ERR_DB;
	}
	return rv;
}

/* Inserts the rows; sets ->inserted on those the database took. */
static int
bill_tx_insert(struct pg_conn *c, struct bill_item **it, size_t n)
{
	struct bill_item **by;
	struct buf         data;
	PGresult          *res = NULL;
	size_t             i, nb = 0;
	int                rv = 0, r;

	by = xcalloc(n + 1, sizeof(*by));
	buf_init(&data, BILL_COPY_MAX);
	for (i = 0; i < n && rv == 0; i++) {
		if (it[i]->kind != BILL_K_ROW)
			continue;
		rv = bill_copy_row(&data, it[i]);
		by[nb++] = it[i];
	}
	if (rv == 0 && nb > 0)
		rv = bill_exec(c, "stage", BILL_SQL_STAGE, 0, NULL, NULL);
	if (rv == 0 && nb > 0)
		rv = bill_copy(c, &data);
	if (rv == 0 && nb > 0)
		rv = bill_exec(c, "insert", BILL_SQL_INSERT, 0, NULL, &res);
	buf_release(&data);
	if (rv != 0 || nb == 0) {
		free(by);
		return rv;
	}
	/* Within a batch request ids are unique (bill_prepare()). */
	qsort(by, nb, sizeof(*by), bill_cmp_rid);
	for (r = 0; r < PQntuples(res); r++) {
		const char *rid = PQgetvalue(res, r, 0);
		size_t      lo = 0, hi = nb, mid;

		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (strcmp(by[mid]->ev->u.request_id, rid) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < nb && strcmp(by[lo]->ev->u.request_id, rid) == 0)
			by[lo]->inserted = true;
	}
	PQclear(res);
	free(by);
	return 0;
}

typedef int64_t (*bill_key_fn)(const struct bill_item *);

static int64_t
bill_key_user(const struct bill_item *it)
{
	return it->ev->u.user_id;
}

static int64_t
bill_key_sub(const struct bill_item *it)
{
	return it->ev->u.subscription_id;
}

static int64_t
bill_key_key(const struct bill_item *it)
{
	return it->ev->u.api_key_id;
}

/* Orders items by the id key() gives, then batch position. */
static int
bill_cmp_key(const void *a, const void *b, void *arg)
{
	const struct bill_item *x = *(struct bill_item *const *)a;
	const struct bill_item *y = *(struct bill_item *const *)b;
	bill_key_fn             key = *(bill_key_fn *)arg;
	int64_t                 kx = key(x), ky = key(y);

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * The charged items (inserted, nonzero actual cost) with billing type bt
 * (-1: any), sorted by key then batch order, into a new array.
 */
static size_t
bill_select(struct bill_item **it, size_t n, int bt, bill_key_fn key,
    struct bill_item ***out)
{
	struct bill_item **v = xcalloc(n + 1, sizeof(*v));
	size_t             i, k = 0;

	for (i = 0; i < n; i++) {
		if (it[i]->kind == BILL_K_ROW && it[i]->inserted &&
		    it[i]->cost.actual > 0 &&
		    (bt < 0 || it[i]->billing_type == bt))
			v[k++] = it[i];
	}
	qsort_r(v, k, sizeof(*v), bill_cmp_key, &key);
	*out = v;
	return k;
}

/*
 * Set-based charges: one statement per kind (users, subscriptions, keys)
 * for the whole batch, whatever the number of distinct ids, so a batch
 * costs a fixed number of round trips.  Each statement first locks its
 * rows in id order (SELECT ... ORDER BY id FOR NO KEY UPDATE), the order
 * every batch of every writer uses, so concurrent batches queue on a
 * shared row instead of deadlocking; NO KEY UPDATE is the lock an UPDATE
 * of non-key columns takes, which does not conflict with the KEY SHARE
 * locks of foreign-key checks (another writer inserting usage_logs rows
 * for the same user).  Then the rows are updated with the sums;
 * PostgreSQL adds the decimal strings as numeric.
 *
 * Balances: $1 is one json row per charged request (user, request id,
 * actual cost, position in the batch).  Each user is debited once by the
 * sum of its rows, and each request gets one balance_ledger row whose
 * balance_after is the old balance minus the running sum of that user's
 * costs in batch order: the chain ends at the new balance.
 */
static const char BILL_SQL_BALANCE[] =
    "WITH r AS (SELECT * FROM json_to_recordset($1::json)"
    " AS r(uid bigint, rid text, cost numeric, o int)),"
    " d AS (SELECT uid, sum(cost) AS amt FROM r GROUP BY uid),"
    " k AS (SELECT id FROM users WHERE id IN (SELECT uid FROM d)"
    " ORDER BY id FOR NO KEY UPDATE),"
    " u AS (UPDATE users SET balance = users.balance - d.amt FROM d, k"
    " WHERE users.id = d.uid AND k.id = d.uid"
    " RETURNING users.id, users.balance, d.amt),"
    " l AS (INSERT INTO balance_ledger (user_id, delta, balance_after,"
    " kind, ref)"
    " SELECT r.uid, -r.cost, u.balance + u.amt - sum(r.cost)"
    " OVER (PARTITION BY r.uid ORDER BY r.o), 'usage', r.rid"
    " FROM r JOIN u ON u.id = r.uid ORDER BY r.o RETURNING 1)"
    " SELECT u.id, u.balance::text, (SELECT count(*) FROM l),"
    " u.balance <= 0 FROM u";

/* $1 subscription ids, $2 the sums of their rows' actual cost. */
static const char BILL_SQL_SUB[] =
    "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::numeric[])"
    " AS d(sid, amt)),"
    " k AS (SELECT id FROM user_subscriptions"
    " WHERE id IN (SELECT sid FROM d) ORDER BY id FOR NO KEY UPDATE)"
    " UPDATE user_subscriptions s SET"
    " daily_usage_usd = CASE WHEN s.daily_window_start IS NULL"
    " OR now() - s.daily_window_start >= interval '1 day' THEN 0"
    " ELSE s.daily_usage_usd END + d.amt,"
    " weekly_usage_usd = CASE WHEN s.weekly_window_start IS NULL"
    " OR now() - s.weekly_window_start >= interval '7 days' THEN 0"
    " ELSE s.weekly_usage_usd END + d.amt,"
    " monthly_usage_usd = CASE WHEN s.monthly_window_start IS NULL"
    " OR now() - s.monthly_window_start >= interval '30 days' THEN 0"
    " ELSE s.monthly_usage_usd END + d.amt,"
    " daily_window_start = CASE WHEN s.daily_window_start IS NULL"
    " OR now() - s.daily_window_start >= interval '1 day'"
    " THEN date_trunc('day', now(), 'UTC') ELSE s.daily_window_start END,"
    " weekly_window_start = CASE WHEN s.weekly_window_start IS NULL"
    " OR now() - s.weekly_window_start >= interval '7 days'"
    " THEN date_trunc('day', now(), 'UTC') ELSE s.weekly_window_start END,"
    " monthly_window_start = CASE WHEN s.monthly_window_start IS NULL"
    " OR now() - s.monthly_window_start >= interval '30 days'"
    " THEN date_trunc('day', now(), 'UTC') ELSE s.monthly_window_start END"
    " FROM d, k WHERE s.id = d.sid AND k.id = d.sid"
    " RETURNING s.user_id, s.group_id, s.daily_usage_usd::text,"
    " s.weekly_usage_usd::text, s.monthly_usage_usd::text, s.id,"
    " EXISTS (SELECT 1 FROM groups g WHERE g.id = s.group_id AND ("
    " (g.daily_limit_usd > 0 AND s.daily_usage_usd >= g.daily_limit_usd)"
    " OR (g.weekly_limit_usd > 0"
    " AND s.weekly_usage_usd >= g.weekly_limit_usd)"
    " OR (g.monthly_limit_usd > 0"
    " AND s.monthly_usage_usd >= g.monthly_limit_usd)))";

/* $1 key ids, $2 the sums of their rows' actual cost. */
static const char BILL_SQL_KEY[] =
    "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::numeric[])"
    " AS d(kid, amt)),"
    " k AS (SELECT id FROM api_keys WHERE id IN (SELECT kid FROM d)"
    " ORDER BY id FOR NO KEY UPDATE)"
    " UPDATE api_keys a SET quota_used_usd = a.quota_used_usd + d.amt"
    " FROM d, k WHERE a.id = d.kid AND k.id = d.kid"
    " RETURNING a.id, a.quota_usd > 0 AND a.quota_used_usd >= a.quota_usd";

/* A cache write to do after the commit. */
struct bill_cache_op {
	char key[256];
	char v[3][48]; /* balance, or daily/weekly/monthly usage */
	bool sub;
};

/*
 * An entity whose money verdict this batch turned (a balance at or below
 * zero, a spent subscription window or key quota): after the commit the
 * scheduler is told to drop what it cached about it (bill_ledger_cfg's
 * notify), so the very next request is refused.
 */
struct bill_inval {
	const char *kind; /* "user", "subscription", "api_key" */
	int64_t     id;
};

struct bill_tx {
	struct bill_cache_op *ops;
	size_t                nops, cap;
	struct bill_inval    *inv;
	size_t                ninv, icap;
};

static void
bill_tx_inval(struct bill_tx *tx, const char *kind, const char *id)
{
	if (tx->ninv == tx->icap) {
		tx->icap = tx->icap == 0 ? 8 : tx->icap * 2;
		tx->inv = xrealloc(tx->inv, tx->icap * sizeof(*tx->inv));
	}
	tx->inv[tx->ninv].kind = kind;
	tx->inv[tx->ninv].id = strtoll(id, NULL, 10);
	tx->ninv++;
}

static struct bill_cache_op *
bill_tx_op(struct bill_tx *tx)
{
	if (tx->nops == tx->cap) {
		tx->cap = tx->cap == 0 ? 16 : tx->cap * 2;
		tx->ops = xrealloc(tx->ops, tx->cap * sizeof(*tx->ops));
	}
	memset(&tx->ops[tx->nops], 0, sizeof(tx->ops[0]));
	return &tx->ops[tx->nops++];
}

/*
 * The charged items v[0..k) (sorted by key()) summed per id into two
 * PostgreSQL array literals, "{id,...}" and "{sum,...}", appended to ids
 * and sums; returns the number of distinct ids.
 */
static size_t
bill_sums(struct bill_item **v, size_t k, bill_key_fn key, struct buf *ids,
    struct buf *sums)
{
	char    s[BILL_COST_STR_MAX];
	size_t  i, j, nd = 0;
	int64_t sum;
	int     rv;

	rv = buf_addch(ids, '{');
	if (rv == 0)
		rv = buf_addch(sums, '{');
	for (i = 0; i < k && rv == 0; i = j) {
		sum = 0;
		for (j = i; j < k && key(v[j]) == key(v[i]); j++)
			sum += v[j]->cost.actual;
		rv = buf_addf(
		    ids, "%s%lld", nd > 0 ? "," : "", (long long)key(v[i]));
		if (rv == 0)
			rv = buf_addf(sums, "%s%s", nd > 0 ? "," : "",
			    bill_cost_fmt(sum, s, sizeof(s)));
		nd++;
	}
	if (rv == 0)
		rv = buf_addch(ids, '}');
	if (rv == 0)
		rv = buf_addch(sums, '}');
	if (rv != 0)
		BUG("bill_sums: buffer"); /* bounded by the batch */
	return nd;
}

/* Debits each user once and writes one ledger row per charged request. */
static int
bill_tx_balances(struct bill_ledger *l, struct pg_conn *c,
    struct bill_item **it, size_t n, struct bill_tx *tx)
{
	struct bill_item    **v;
	struct bill_cache_op *op;
	size_t                k, i, nd = 0;
	PGresult             *res;
	json_t               *arr, *o;
	int                   r, rv;

	k = bill_select(it, n, 0, bill_key_user, &v);
	if (k == 0) {
		free(v);
		return 0;
	}
	arr = json_array();
	for (i = 0; i < k; i++) {
		if (i == 0 || v[i]->ev->u.user_id != v[i - 1]->ev->u.user_id)
			nd++;
		o = json_object();
		json_object_set_new(
		    o, "uid", json_integer(v[i]->ev->u.user_id));
		json_object_set_new(
		    o, "rid", bill_jstr(v[i]->ev->u.request_id, BILL_ID_CHARS));
		json_object_set_new(o, "cost", bill_jcost(v[i]->cost.actual));
		json_object_set_new(o, "o", json_integer((json_int_t)i));
		json_array_append_new(arr, o);
	}
	free(v);
	rv = bill_exec_json(c, "balance", BILL_SQL_BALANCE, arr, &res);
	if (rv != 0)
		return rv;
	if ((size_t)PQntuples(res) != nd) {
		PQclear(res);
		return -ERR_NOTFOUND; /* a user row is gone */
	}
	for (r = 0; r < PQntuples(res); r++) {
		op = bill_tx_op(tx);
		snprintf(op->key, sizeof(op->key), "%sbilling:balance:%s",
		    l->prefix, PQgetvalue(res, r, 0));
		str_copy(op->v[0], sizeof(op->v[0]), PQgetvalue(res, r, 1));
		if (PQgetvalue(res, r, 3)[0] == 't')
			bill_tx_inval(tx, "user", PQgetvalue(res, r, 0));
	}
	PQclear(res);
	return 0;
}

/* Adds to each subscription's windows once. */
static int
bill_tx_subs(struct bill_ledger *l, struct pg_conn *c, struct bill_item **it,
    size_t n, struct bill_tx *tx)
{
	struct bill_item    **v;
	struct bill_cache_op *op;
	struct buf            ids, sums;
	size_t                k, nd;
	const char           *p[2];
	PGresult             *res;
	int                   r, f, rv;

	k = bill_select(it, n, 1, bill_key_sub, &v);
	if (k == 0) {
		free(v);
		return 0;
	}
	buf_init(&ids, 1 << 20);
	buf_init(&sums, 1 << 20);
	nd = bill_sums(v, k, bill_key_sub, &ids, &sums);
	free(v);
	p[0] = buf_str(&ids);
	p[1] = buf_str(&sums);
	rv = bill_exec(c, "subscription", BILL_SQL_SUB, 2, p, &res);
	buf_release(&ids);
	buf_release(&sums);
	if (rv != 0)
		return rv;
	if ((size_t)PQntuples(res) != nd) {
		PQclear(res);
		return -ERR_NOTFOUND; /* a subscription row is gone */
	}
	for (r = 0; r < PQntuples(res); r++) {
		op = bill_tx_op(tx);
		op->sub = true;
		snprintf(op->key, sizeof(op->key), "%sbilling:sub:%s:%s",
		    l->prefix, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
		for (f = 0; f < 3; f++)
			str_copy(op->v[f], sizeof(op->v[f]),
			    PQgetvalue(res, r, f + 2));
		if (PQgetvalue(res, r, 6)[0] == 't')
			bill_tx_inval(
			    tx, "subscription", PQgetvalue(res, r, 5));
	}
	PQclear(res);
	return 0;
}

/* Adds to each key's quota usage once (both billing types). */
static int
bill_tx_keys(
    struct pg_conn *c, struct bill_item **it, size_t n, struct bill_tx *tx)
{
	struct bill_item **v;
	struct buf         ids, sums;
	size_t             k;
	const char        *p[2];
	PGresult          *res;
	int                r, rv;

	k = bill_select(it, n, -1, bill_key_key, &v);
	if (k == 0) {
		free(v);
		return 0;
	}
	buf_init(&ids, 1 << 20);
	buf_init(&sums, 1 << 20);
	(void)bill_sums(v, k, bill_key_key, &ids, &sums);
	free(v);
	p[0] = buf_str(&ids);
	p[1] = buf_str(&sums);
	rv = bill_exec(c, "key_quota", BILL_SQL_KEY, 2, p, &res);
	buf_release(&ids);
	buf_release(&sums);
	if (rv != 0)
		return rv;
	for (r = 0; r < PQntuples(res); r++)
		if (PQgetvalue(res, r, 1)[0] == 't')
			bill_tx_inval(tx, "api_key", PQgetvalue(res, r, 0));
	PQclear(res);
	return 0;
}

static const char BILL_SQL_DEAD[] =
    "INSERT INTO billing_dead_letters (instance_id, seq, request_id,"
    " reason, payload)"
    " SELECT r.inst, r.seq, r.rid, r.reason, decode(r.payload, 'hex')"
    " FROM jsonb_to_recordset($1::jsonb) AS r(inst text, seq bigint,"
    " rid text, reason text, payload text)"
    " WHERE NOT EXISTS (SELECT 1 FROM billing_dead_letters d"
    " WHERE d.instance_id = r.inst AND d.seq = r.seq"
    " AND d.request_id IS NOT DISTINCT FROM r.rid)";

static int
bill_tx_dead(struct pg_conn *c, struct bill_item **it, size_t n, size_t *nd)
{
	const struct proto_usage_evt *u;
	json_t                       *arr = json_array(), *o;
	char                         *hex;
	size_t                        i;

	*nd = 0;
	for (i = 0; i < n; i++) {
		if (it[i]->kind != BILL_K_DEAD)
			continue;
		u = &it[i]->ev->u;
		o = json_object();
		json_object_set_new(o, "inst", bill_jstr(u->instance, 64));
		json_object_set_new(
		    o, "seq", json_integer((json_int_t)(u->seq & INT64_MAX)));
		json_object_set_new(o, "rid",
		    u->request_id[0] != '\0' ? bill_jstr(u->request_id, 64)
		                             : json_null());
		json_object_set_new(o, "reason", bill_jstr(it[i]->reason, 200));
		if (it[i]->ev->payload != NULL) {
			hex = xmalloc(2 * it[i]->ev->payload_len + 1);
			if (crypto_hex_encode(it[i]->ev->payload,
			        it[i]->ev->payload_len, hex,
			        2 * it[i]->ev->payload_len + 1) != 0)
				BUG("bill_tx_dead: hex");
			json_object_set_new(o, "payload", json_string(hex));
			free(hex);
		} else {
			json_object_set_new(o, "payload", json_null());
		}
		json_array_append_new(arr, o);
		(*nd)++;
	}
	if (*nd == 0) {
		json_decref(arr);
		return 0;
	}
	return bill_exec_json(c, "dead_letters", BILL_SQL_DEAD, arr, NULL);
}

static const char BILL_SQL_CURSOR[] =
    "INSERT INTO billing_cursors (instance_id, committed_seq)"
    " SELECT r.inst, r.seq FROM jsonb_to_recordset($1::jsonb)"
    " AS r(inst text, seq bigint)"
    " ON CONFLICT (instance_id) DO UPDATE SET committed_seq ="
    " GREATEST(billing_cursors.committed_seq, EXCLUDED.committed_seq),"
    " updated_at = now()";

/* Writes the staged cursors. */
static int
bill_tx_stage_write(struct pg_conn *c, const struct bill_cursor_stage *st)
{
	json_t *arr, *o;
	size_t  i;

	if (st->n == 0)
		return 0;
	arr = json_array();
	for (i = 0; i < st->n; i++) {
		o = json_object();
		json_object_set_new(o, "inst", bill_jstr(st->e[i].id, 64));
		json_object_set_new(o, "seq",
		    json_integer((json_int_t)(st->e[i].committed & INT64_MAX)));
		json_array_append_new(arr, o);
	}
	return bill_exec_json(c, "cursors", BILL_SQL_CURSOR, arr, NULL);
}

static int
bill_tx_cursors(struct bill_ledger *l, struct pg_conn *c, struct bill_item **it,
    size_t n, struct bill_cursor_stage *st)
{
	size_t i;

	for (i = 0; i < n; i++)
		(void)bill_cursor_mark(
		    &l->cur, st, it[i]->ev->u.instance, it[i]->ev->u.seq);
	return bill_tx_stage_write(c, st);
}

int
bill_tx_skip(struct bill_ledger *l, struct pg_conn *c, const char *instance,
    uint64_t from, uint64_t to)
{
	struct bill_cursor_stage st;
	int                      rv;

	bill_cursor_stage_init(&st, 1);
	/*
	 * Serialised with the ends of the writers' batches (bill_tx_run()):
	 * the tracker is shared, and a stage must apply on top of every
	 * commit before it.
	 */
	pthread_mutex_lock(&l->mu);
	if (!bill_cursor_skip(&l->cur, &st, instance, from, to) && st.n == 0) {
		pthread_mutex_unlock(&l->mu);
		bill_cursor_stage_release(&st);
		return -ERR_INVAL;
	}
	rv = pg_begin(c);
	if (rv == 0)
		rv = bill_tx_stage_write(c, &st);
	if (rv == 0)
		rv = pg_commit(c);
	if (rv != 0)
		pg_rollback(c);
	else
		bill_cursor_commit(&l->cur, &st);
	pthread_mutex_unlock(&l->mu);
	bill_cursor_stage_release(&st);
	return rv;
}

/*
 * The cache is written with Lua scripts taking up to BILL_CACHE_CHUNK
 * balances (or BILL_CACHE_SUB_CHUNK subscriptions) per call, so a batch
 * touching hundreds of users costs a few round trips, not one per user.
 * ARGV[1] is the TTL; then one value (balance) or three (daily, weekly,
 * monthly usage) per key.
 */
#define BILL_CACHE_CHUNK     ((RDS_ARGV_MAX - 4) / 2)
#define BILL_CACHE_SUB_CHUNK ((RDS_ARGV_MAX - 4) / 4)

const char bill_lua_set[] =
    "for i = 1, #KEYS do"
    " redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1]) end"
    " return #KEYS";

const char bill_lua_sub[] =
    "for i = 1, #KEYS do local b = 3 * i - 1;"
    " redis.call('HSET', KEYS[i], 'daily_usage', ARGV[b], 'weekly_usage',"
    " ARGV[b + 1], 'monthly_usage', ARGV[b + 2]);"
    " redis.call('EXPIRE', KEYS[i], ARGV[1]) end return #KEYS";

/* Writes up to one chunk of ops of kind sub from *i on; advances *i. */
static int
bill_cache_chunk(struct bill_ledger *l, const struct bill_tx *tx, bool sub,
    size_t *i, size_t *done)
{
	const char *argv[RDS_ARGV_MAX];
	const char *vals[RDS_ARGV_MAX];
	char        ttl[16];
	size_t      max = sub ? BILL_CACHE_SUB_CHUNK : BILL_CACHE_CHUNK;
	size_t      nk = 0, nv = 0, f, a;
	redisReply *r;
	int         rv;

	for (; *i < tx->nops && nk < max; (*i)++) {
		const struct bill_cache_op *op = &tx->ops[*i];

		if (op->sub != sub)
			continue;
		argv[nk++] = op->key;
		for (f = 0; f < (sub ? 3u : 1u); f++)
			vals[nv++] = op->v[f];
	}
	if (nk == 0)
		return 0;
	snprintf(ttl, sizeof(ttl), "%d", l->cfg.cache_ttl_s);
	a = nk;
	argv[a++] = ttl;
	for (f = 0; f < nv; f++)
		argv[a++] = vals[f];
	rv = rds_script_eval(l->cfg.rds, sub ? l->lua_sub : l->lua_set, &r,
	    (int)nk, (int)(a - nk), argv, NULL);
	if (rv == 0) {
		freeReplyObject(r);
		*done += nk;
	}
	return rv;
}

static void
bill_cache_write(struct bill_ledger *l, const struct bill_tx *tx)
{
	size_t i, done = 0;
	int    rv = 0, pass;

	if (l->cfg.rds == NULL)
		return;
	for (pass = 0; pass < 2 && rv == 0; pass++) {
		i = 0;
		while (i < tx->nops && rv == 0)
			rv = bill_cache_chunk(l, tx, pass == 1, &i, &done);
	}
	if (rv != 0) {
		/*
		 * Redis is failing: skip the rest of this batch rather than
		 * wait out a timeout per chunk.  The entries left stale expire
		 * within cache_ttl.
		 */
		log_warn("bill.cache_write_failed", LOG_ERR(rv),
		    LOG_U64("skipped", tx->nops - done));
		if (l->cfg.met.cache_errors != NULL)
			met_counter_add(
			    l->cfg.met.cache_errors, tx->nops - done);
	}
}

/* One transaction over it[0..n). */
int
bill_tx_run(struct bill_ledger *l, struct pg_conn *c, struct bill_item **it,
    size_t n, struct bill_ledger_result *res)
{
	struct bill_cursor_stage st;
	struct bill_tx           tx = {0};
	size_t                   i, nd = 0, ins = 0, dup = 0;
	bool                     locked = false;
	int                      rv;

	bill_cursor_stage_init(&st, n);
	for (i = 0; i < n; i++)
		it[i]->inserted = false;
	rv = pg_begin(c);
	if (rv == 0)
		rv = bill_tx_insert(c, it, n);
	if (rv == 0 && !l->cfg.simple)
		rv = bill_tx_balances(l, c, it, n, &tx);
	if (rv == 0 && !l->cfg.simple)
		rv = bill_tx_subs(l, c, it, n, &tx);
	if (rv == 0 && !l->cfg.simple)
		rv = bill_tx_keys(c, it, n, &tx);
	/*
	 * The end of the transaction is serialised over the writers: each
	 * batch stages its cursors from every batch committed before it, so
	 * the last commit writes the whole contiguous prefix, and no two
	 * batches dead-letter the same event at once.  Nothing in here
	 * waits for a row another writer holds.
	 */
	if (rv == 0) {
		pthread_mutex_lock(&l->mu);
		locked = true;
		rv = bill_tx_dead(c, it, n, &nd);
	}
	if (rv == 0)
		rv = bill_tx_cursors(l, c, it, n, &st);
	if (rv == 0)
		rv = pg_commit(c);
	if (rv != 0) {
		pg_rollback(c);
		if (locked)
			pthread_mutex_unlock(&l->mu);
		goto out;
	}
	bill_cursor_commit(&l->cur, &st);
	pthread_mutex_unlock(&l->mu);
	for (i = 0; i < n; i++) {
		if (it[i]->kind == BILL_K_ROW && it[i]->inserted)
			ins++;
		else if (it[i]->kind != BILL_K_DEAD)
			dup++;
	}
	res->inserted += ins;
	res->duplicates += dup;
	res->dead += nd;
	res->transactions++;
	log_debug("bill.batch_committed", LOG_U64("events", n),
	    LOG_U64("rows", ins), LOG_U64("duplicates", dup),
	    LOG_U64("dead", nd));
	bill_cache_write(l, &tx);
	for (i = 0; i < tx.ninv && l->cfg.notify != NULL; i++)
		l->cfg.notify(l->cfg.notify_arg, tx.inv[i].kind, tx.inv[i].id);
out:
	free(tx.ops);
	free(tx.inv);
	bill_cursor_stage_release(&st);
	return rv;
}
