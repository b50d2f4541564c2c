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

static const char BILL_SQL_INSERT[] =
    "INSERT INTO usage_logs (user_id, api_key_id, account_id, request_id,"
    " model, group_id, subscription_id, input_tokens, output_tokens,"
    " cache_creation_tokens, cache_read_tokens, cache_creation_5m_tokens,"
    " cache_creation_1h_tokens, input_cost, output_cost,"
    " cache_creation_cost, cache_read_cost, total_cost, actual_cost,"
    " rate_multiplier, billing_type, stream, duration_ms, first_token_ms,"
    " user_agent, ip_address, instance_id, seq, created_at)"
    " SELECT r.uid, r.kid, r.aid, r.rid, r.model, r.gid, r.sid, r.tin,"
    " r.tout, r.t5m + r.t1h, r.tcr, r.t5m, r.t1h, r.cin::numeric,"
    " r.cout::numeric, r.ccc::numeric, r.ccr::numeric, r.ctot::numeric,"
    " r.cact::numeric, r.mult::numeric / 1000000, r.bt, r.stream, r.dur,"
    " r.ttft, r.ua, r.ip, r.inst, r.seq,"
    " CASE WHEN r.ts > 0 THEN 'epoch'::timestamptz"
    " + r.ts * interval '1 millisecond' ELSE now() END"
    " FROM jsonb_to_recordset($1::jsonb) AS r(uid bigint, kid bigint,"
    " aid bigint, rid text, model text, gid bigint, sid bigint, tin int,"
    " tout int, t5m int, t1h int, tcr int, cin text, cout text, ccc text,"
    " ccr text, ctot text, cact text, mult bigint, bt smallint,"
    " stream boolean, dur int, ttft int, ua text, ip text, inst text,"
    " seq bigint, ts bigint)"
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id";

static json_t *
bill_row_json(const struct bill_item *it)
{
	const struct proto_usage_evt *u = &it->ev->u;
	json_t                       *o = json_object();

	json_object_set_new(o, "uid", json_integer(u->user_id));
	json_object_set_new(o, "kid", json_integer(u->api_key_id));
	json_object_set_new(o, "aid", json_integer(u->account_id));
	json_object_set_new(o, "rid", bill_jstr(u->request_id, BILL_ID_CHARS));
	json_object_set_new(o, "model", bill_jstr(u->model, BILL_MODEL_CHARS));
	json_object_set_new(
	    o, "gid", it->gid > 0 ? json_integer(it->gid) : json_null());
	json_object_set_new(o, "sid",
	    it->billing_type == 1 ? json_integer(u->subscription_id)
	                          : json_null());
	json_object_set_new(o, "tin", json_integer(it->use.input));
	json_object_set_new(o, "tout", json_integer(it->use.output));
	json_object_set_new(o, "t5m", json_integer(it->use.cache_5m));
	json_object_set_new(o, "t1h", json_integer(it->use.cache_1h));
	json_object_set_new(o, "tcr", json_integer(it->use.cache_read));
	json_object_set_new(o, "cin", bill_jcost(it->cost.input));
	json_object_set_new(o, "cout", bill_jcost(it->cost.output));
	json_object_set_new(o, "ccc", bill_jcost(it->cost.cache_creation));
	json_object_set_new(o, "ccr", bill_jcost(it->cost.cache_read));
	json_object_set_new(o, "ctot", bill_jcost(it->cost.total));
	json_object_set_new(o, "cact", bill_jcost(it->cost.actual));
	json_object_set_new(o, "mult", json_integer(it->cost.multiplier));
	json_object_set_new(o, "bt", json_integer(it->billing_type));
	json_object_set_new(o, "stream", json_boolean(u->stream));
	json_object_set_new(
	    o, "dur", json_integer(bill_clamp(u->duration_ms, 0, INT32_MAX)));
	json_object_set_new(o, "ttft",
	    u->first_token_ms > 0
	        ? json_integer(bill_clamp(u->first_token_ms, 0, INT32_MAX))
	        : json_null());
	json_object_set_new(o, "ua",
	    u->user_agent[0] != '\0' ? bill_jstr(u->user_agent, PROTO_UA_MAX)
	                             : json_null());
	json_object_set_new(o, "ip",
	    u->client_ip[0] != '\0' ? bill_jstr(u->client_ip, BILL_IP_CHARS)
	                            : json_null());
	json_object_set_new(o, "inst", bill_jstr(u->instance, BILL_ID_CHARS));
	json_object_set_new(
	    o, "seq", json_integer((json_int_t)(u->seq & INT64_MAX)));
	json_object_set_new(o, "ts", json_integer(u->created_at_ms));
	return o;
}

/* Inserts the rows; sets ->inserted on those the database took. */
static int
bill_tx_insert(struct pg_conn *c, struct bill_item **it, size_t n)
{
	struct bill_item **by;
	json_t            *arr = json_array();
	PGresult          *res;
	size_t             i, nb = 0;
	int                rv, r;

	by = xcalloc(n + 1, sizeof(*by));
	for (i = 0; i < n; i++) {
		if (it[i]->kind != BILL_K_ROW)
			continue;
		json_array_append_new(arr, bill_row_json(it[i]));
		by[nb++] = it[i];
	}
	if (nb == 0) {
		json_decref(arr);
		free(by);
		return 0;
	}
	rv = bill_exec_json(c, "insert", BILL_SQL_INSERT, arr, &res);
	if (rv != 0) {
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

static const char BILL_SQL_BALANCE[] =
    "WITH u AS (UPDATE users SET balance = balance - $2::numeric"
    " WHERE id = $1::bigint RETURNING balance),"
    " l AS (INSERT INTO balance_ledger (user_id, delta, balance_after,"
    " kind, ref)"
    " SELECT $1::bigint, -r.cost::numeric, u.balance + $2::numeric"
    " - sum(r.cost::numeric) OVER (ORDER BY r.o), 'usage', r.rid"
    " FROM u, jsonb_to_recordset($3::jsonb) AS r(rid text, cost text,"
    " o int) RETURNING 1)"
    " SELECT u.balance::text, (SELECT count(*) FROM l) FROM u";

static const char BILL_SQL_SUB[] =
    "UPDATE user_subscriptions SET"
    " daily_usage_usd = CASE WHEN daily_window_start IS NULL"
    " OR now() - daily_window_start >= interval '1 day' THEN 0"
    " ELSE daily_usage_usd END + $2::numeric,"
    " weekly_usage_usd = CASE WHEN weekly_window_start IS NULL"
    " OR now() - weekly_window_start >= interval '7 days' THEN 0"
    " ELSE weekly_usage_usd END + $2::numeric,"
    " monthly_usage_usd = CASE WHEN monthly_window_start IS NULL"
    " OR now() - monthly_window_start >= interval '30 days' THEN 0"
    " ELSE monthly_usage_usd END + $2::numeric,"
    " daily_window_start = CASE WHEN daily_window_start IS NULL"
    " OR now() - daily_window_start >= interval '1 day'"
    " THEN date_trunc('day', now(), 'UTC') ELSE daily_window_start END,"
    " weekly_window_start = CASE WHEN weekly_window_start IS NULL"
    " OR now() - weekly_window_start >= interval '7 days'"
    " THEN date_trunc('day', now(), 'UTC') ELSE weekly_window_start END,"
    " monthly_window_start = CASE WHEN monthly_window_start IS NULL"
    " OR now() - monthly_window_start >= interval '30 days'"
    " THEN date_trunc('day', now(), 'UTC') ELSE monthly_window_start END"
    " WHERE id = $1::bigint RETURNING user_id, group_id,"
    " daily_usage_usd::text, weekly_usage_usd::text,"
    " monthly_usage_usd::text";

static const char BILL_SQL_KEY[] =
    "UPDATE api_keys SET quota_used_usd = quota_used_usd + $2::numeric"
    " WHERE id = $1::bigint";

/* A cache write to do after the commit. */
struct bill_cache_op {
	char key[256];
	char v[3][48]; /* balance, or daily/weekly/monthly usage */
	bool sub;
};

struct bill_tx {
	struct bill_cache_op *ops;
	size_t                nops, cap;
};

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

/* Debits each user once and writes one ledger row per charged request. */
static int
bill_tx_balances(struct bill_ledger *l, struct pg_conn *c,
    struct bill_item **it, size_t n, struct bill_tx *tx)
{
	struct bill_item    **v;
	struct bill_cache_op *op;
	size_t                k, i, j;
	int64_t               sum;
	char                  uid[24], s[BILL_COST_STR_MAX];
	const char           *p[3];
	PGresult             *res;
	json_t               *arr;
	char                 *text;
	int                   rv = 0;

	k = bill_select(it, n, 0, bill_key_user, &v);
	for (i = 0; i < k && rv == 0; i = j) {
		arr = json_array();
		sum = 0;
		for (j = i; j < k && v[j]->ev->u.user_id == v[i]->ev->u.user_id;
		     j++) {
			json_t *o = json_object();

			json_object_set_new(o, "rid",
			    bill_jstr(v[j]->ev->u.request_id, BILL_ID_CHARS));
			json_object_set_new(
			    o, "cost", bill_jcost(v[j]->cost.actual));
			json_object_set_new(o, "o", json_integer((int)(j - i)));
			json_array_append_new(arr, o);
			sum += v[j]->cost.actual;
		}
		snprintf(
		    uid, sizeof(uid), "%lld", (long long)v[i]->ev->u.user_id);
		text = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		p[0] = uid;
		p[1] = bill_cost_fmt(sum, s, sizeof(s));
		p[2] = text;
		rv = bill_exec(c, "balance", BILL_SQL_BALANCE, 3, p, &res);
		free(text);
		if (rv != 0)
			break;
		if (PQntuples(res) != 1) {
			PQclear(res);
			rv = -ERR_NOTFOUND; /* the user row is gone */
			break;
		}
		op = bill_tx_op(tx);
		snprintf(op->key, sizeof(op->key), "%sbilling:balance:%s",
		    l->prefix, uid);
		str_copy(op->v[0], sizeof(op->v[0]), PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	free(v);
	return rv;
}

/* Adds to each subscription's windows once. */
static int
bill_tx_subs(struct bill_ledger *l, struct pg_conn *c, struct bill_item **it,
    size_t n, struct bill_tx *tx)
{
	struct bill_item    **v;
	struct bill_cache_op *op;
	size_t                k, i, j;
	int                   f;
	int64_t               sum;
	char                  sid[24], s[BILL_COST_STR_MAX];
	const char           *p[2];
	PGresult             *res;
	int                   rv = 0;

	k = bill_select(it, n, 1, bill_key_sub, &v);
	for (i = 0; i < k && rv == 0; i = j) {
		sum = 0;
		for (j = i; j < k &&
		     v[j]->ev->u.subscription_id == v[i]->ev->u.subscription_id;
		     j++)
			sum += v[j]->cost.actual;
		snprintf(sid, sizeof(sid), "%lld",
		    (long long)v[i]->ev->u.subscription_id);
		p[0] = sid;
		p[1] = bill_cost_fmt(sum, s, sizeof(s));
		rv = bill_exec(c, "subscription", BILL_SQL_SUB, 2, p, &res);
		if (rv != 0)
			break;
		if (PQntuples(res) != 1) {
			PQclear(res);
			rv = -ERR_NOTFOUND;
			break;
		}
		op = bill_tx_op(tx);
		op->sub = true;
		snprintf(op->key, sizeof(op->key), "%sbilling:sub:%s:%s",
		    l->prefix, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		for (f = 0; f < 3; f++)
			str_copy(op->v[f], sizeof(op->v[f]),
			    PQgetvalue(res, 0, f + 2));
		PQclear(res);
	}
	free(v);
	return rv;
}

/* Adds to each key's quota usage once (both billing types). */
static int
bill_tx_keys(struct pg_conn *c, struct bill_item **it, size_t n)
{
	struct bill_item **v;
	size_t             k, i, j;
	int64_t            sum;
	char               kid[24], s[BILL_COST_STR_MAX];
	const char        *p[2];
	int                rv = 0;

	k = bill_select(it, n, -1, bill_key_key, &v);
	for (i = 0; i < k && rv == 0; i = j) {
		sum = 0;
		for (j = i;
		     j < k && v[j]->ev->u.api_key_id == v[i]->ev->u.api_key_id;
		     j++)
			sum += v[j]->cost.actual;
		snprintf(kid, sizeof(kid), "%lld",
		    (long long)v[i]->ev->u.api_key_id);
		p[0] = kid;
		p[1] = bill_cost_fmt(sum, s, sizeof(s));
		rv = bill_exec(c, "key_quota", BILL_SQL_KEY, 2, p, NULL);
	}
	free(v);
	return rv;
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
	if (!bill_cursor_skip(&l->cur, &st, instance, from, to) && st.n == 0) {
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
	bill_cursor_stage_release(&st);
	return rv;
}

static void
bill_cache_write(struct bill_ledger *l, const struct bill_tx *tx)
{
	redisReply *r;
	size_t      i;
	int         rv;

	if (l->cfg.rds == NULL)
		return;
	for (i = 0; i < tx->nops; i++) {
		const struct bill_cache_op *op = &tx->ops[i];

		if (op->sub)
			rv = rds_cmd(l->cfg.rds, &r,
			    "HSET %s daily_usage %s weekly_usage %s"
			    " monthly_usage %s",
			    op->key, op->v[0], op->v[1], op->v[2]);
		else
			rv = rds_cmd(l->cfg.rds, &r, "SET %s %s EX %d", op->key,
			    op->v[0], l->cfg.cache_ttl_s);
		if (rv == 0) {
			freeReplyObject(r);
			if (op->sub) {
				rv = rds_cmd(l->cfg.rds, &r, "EXPIRE %s %d",
				    op->key, l->cfg.cache_ttl_s);
				if (rv == 0)
					freeReplyObject(r);
			}
		}
		if (rv != 0) {
			/*
			 * Redis is failing: skip the rest of this batch rather
			 * than wait out a timeout per key.  The entries left
			 * stale expire within cache_ttl.
			 */
			log_warn("bill.cache_write_failed", LOG_ERR(rv),
			    LOG_U64("skipped", tx->nops - i));
			if (l->cfg.met.cache_errors != NULL)
				met_counter_add(
				    l->cfg.met.cache_errors, tx->nops - i);
			return;
		}
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
		rv = bill_tx_keys(c, it, n);
	if (rv == 0)
		rv = bill_tx_dead(c, it, n, &nd);
	if (rv == 0)
		rv = bill_tx_cursors(l, c, it, n, &st);
	if (rv == 0)
		rv = pg_commit(c);
	if (rv != 0) {
		pg_rollback(c);
		goto out;
	}
	bill_cursor_commit(&l->cur, &st);
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
out:
	free(tx.ops);
	bill_cursor_stage_release(&st);
	return rv;
}
