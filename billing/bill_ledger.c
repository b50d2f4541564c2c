/*
 * bill_ledger.c: one batch of usage events, one transaction (see
 * bill_ledger.h for the contract): events, pricing, the per-event
 * fallback and the public face; the statements of the transaction are in
 * bill_ledger_tx.c.
 *
 * Every statement is a program constant; a batch's rows travel as COPY
 * data into a temporary table (bill_ledger_tx.c), its charges as jsonb or
 * array parameters, so no SQL is ever built from input.  Costs go as
 * exact decimal strings parsed as numeric by PostgreSQL, never through a
 * double.
 *
 * Multiplier: the user's own in the event's group
 * (user_group_rate_multipliers), else groups.rate_multiplier, read per
 * batch for its (user, group) pairs (bill_groups_load()).  An event
 * without a group, or whose group row is gone, is priced at 1.0 and
 * recorded without a group.
 *
 * The Redis billing cache.  The scheduler today decides eligibility from
 * PostgreSQL (users.balance > 0, cached per key for key_cache_ttl in
 * scheduler/sched_keys.c); it does not read Redis.  Billing nevertheless
 * writes, after each commit and with a TTL (cache_ttl):
 *   <prefix>billing:balance:<user_id>          string, exact decimal
 *   <prefix>billing:sub:<user_id>:<group_id>   hash daily_usage,
 *                                              weekly_usage, monthly_usage
 * with the values PostgreSQL returned inside the transaction, so a reader
 * switching to Redis sees the committed numbers.  A failed write is only
 * counted: PostgreSQL stays the truth.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bill_cost.h"
#include "bill_ledger_int.h"
#include "bill_usage.h"
#include "err.h"
#include "log.h"

/* ---- events ------------------------------------------------------------ */

struct bill_ev *
bill_ev_new(const struct proto_usage_evt *u)
{
	struct bill_ev *e = xcalloc(1, sizeof(*e));

	e->u = *u;
	return e;
}

void
bill_ev_free(struct bill_ev *e)
{
	if (e == NULL)
		return;
	free(e->payload);
	free(e);
}

int
bill_ev_decode(const void *data, size_t len, struct bill_ev **out)
{
	struct proto_env env;
	struct bill_ev  *e;
	int              rv;

	rv = proto_env_unpack(data, len, &env);
	if (rv != 0)
		return rv;
	e = xcalloc(1, sizeof(*e));
	rv = proto_usage_evt_unpack(&env, &e->u);
	if (rv != 0) {
		free(e);
		return rv;
	}
	if (len <= BILL_EV_PAYLOAD_MAX) {
		e->payload = xmalloc(len > 0 ? len : 1);
		memcpy(e->payload, data, len);
		e->payload_len = len;
	}
	*out = e;
	return 0;
}

/* ---- small helpers -------------------------------------------------- */

bool
bill_data_error(int rv)
{
	return rv == -ERR_NOTFOUND || rv == -ERR_INVAL || rv == -ERR_EXISTS;
}

/*
 * Copies src into dst (cap bytes) as valid UTF-8 of at most chars
 * characters: an invalid byte becomes '?'.  The database refuses invalid
 * UTF-8, and one bad user agent must not stop a batch.
 */
void
bill_utf8_copy(char *dst, size_t cap, const char *src, size_t chars)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t               o = 0, n, k, nc = 0;

	while (*s != '\0' && nc < chars) {
		n = *s < 0x80             ? 1
		    : (*s & 0xe0) == 0xc0 ? 2
		    : (*s & 0xf0) == 0xe0 ? 3
		    : (*s & 0xf8) == 0xf0 ? 4
		                          : 0;
		for (k = 1; k < n; k++) {
			if ((s[k] & 0xc0) != 0x80)
				n = 0;
		}
		if (n == 2 && *s < 0xc2)
			n = 0;
		if (n == 0) {
			if (o + 1 >= cap)
				break;
			dst[o++] = '?';
			s++;
		} else {
			if (o + n >= cap)
				break;
			memcpy(dst + o, s, n);
			o += n;
			s += n;
		}
		nc++;
	}
	dst[o] = '\0';
}

json_t *
bill_jstr(const char *s, size_t chars)
{
	char b[2048];

	bill_utf8_copy(b, sizeof(b), s, chars);
	return json_string(b);
}

json_t *
bill_jcost(int64_t units)
{
	char b[BILL_COST_STR_MAX];

	return json_string(bill_cost_fmt(units, b, sizeof(b)));
}

/* "1.5000" -> 1500000 millionths; -ERR_INVAL for anything else. */
static int
bill_mult_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	int     frac = -1;

	if (*s == '\0')
		return -ERR_INVAL;
	for (; *s != '\0'; s++) {
		if (*s == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (*s < '0' || *s > '9' || v > BILL_MULT_MAX)
			return -ERR_INVAL;
		if (frac >= 6)
			continue; /* numeric(10,4): never more than 4 */
		v = v * 10 + (*s - '0');
		if (frac >= 0)
			frac++;
	}
	for (frac = frac < 0 ? 0 : frac; frac < 6; frac++)
		v *= 10;
	if (v > BILL_MULT_MAX)
		return -ERR_INVAL;
	*out = v;
	return 0;
}

int
bill_exec(struct pg_conn *c, const char *what, const char *sql, int n,
    const char *const *p, PGresult **res)
{
	int rv = pg_exec(c, sql, n, p, res);

	if (rv != 0)
		log_warn("bill.sql_failed", LOG_STR("stmt", what), LOG_ERR(rv),
		    LOG_STR("sqlstate", pg_sqlstate(c)), LOG_MSG(pg_errmsg(c)));
	return rv;
}

/* Runs sql with one jsonb parameter made from j (taken). */
int
bill_exec_json(struct pg_conn *c, const char *what, const char *sql, json_t *j,
    PGresult **res)
{
	char       *text = json_dumps(j, JSON_COMPACT);
	const char *p[1];
	int         rv;

	json_decref(j);
	if (text == NULL)
		BUG("bill_exec_json: json_dumps failed");
	p[0] = text;
	rv = bill_exec(c, what, sql, 1, p, res);
	free(text);
	return rv;
}

/* ---- pricing ------------------------------------------------------------ */

static const char BILL_SQL_GROUPS[] =
    "SELECT p.uid, g.id, coalesce(o.rate_multiplier, g.rate_multiplier)::text,"
    " g.subscription_type = 'subscription'"
    " FROM (SELECT DISTINCT * FROM unnest($1::bigint[], $2::bigint[]))"
    "  AS p(uid, gid)"
    " JOIN groups g ON g.id = p.gid"
    " LEFT JOIN user_group_rate_multipliers o"
    "  ON o.user_id = p.uid AND o.group_id = p.gid";

static int
bill_group_cmp(const void *a, const void *b)
{
	const struct bill_group *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* "{a,b,...}": the user (or group) ids of the batch's grouped rows. */
static int
bill_groups_ids(const struct bill_item *it, size_t n, bool users, struct buf *b)
{
	size_t i, k = 0;
	int    rv = buf_addch(b, '{');

	for (i = 0; i < n && rv == 0; i++) {
		const struct proto_usage_evt *u = &it[i].ev->u;

		if (u->group_id > 0)
			rv = buf_addf(b, "%s%lld", k++ > 0 ? "," : "",
			    (long long)(users ? u->user_id : u->group_id));
	}
	return rv != 0 ? rv : buf_addch(b, '}');
}

/*
 * The (user, group) pairs of the batch's rows whose group exists, sorted
 * for bill_group_find(), into *out (n entries, owned).
 */
static int
bill_groups_load(struct pg_conn *c, struct bill_item *it, size_t n,
    struct bill_group **out, size_t *nout)
{
	struct bill_group *g;
	struct buf         uids, gids;
	const char        *p[2];
	PGresult          *res;
	size_t             i, ng;
	int                rv;

	buf_init(&uids, 1 << 20);
	buf_init(&gids, 1 << 20);
	rv = bill_groups_ids(it, n, true, &uids);
	if (rv == 0)
		rv = bill_groups_ids(it, n, false, &gids);
	p[0] = buf_str(&uids);
	p[1] = buf_str(&gids);
	if (rv == 0)
		rv = bill_exec(c, "groups", BILL_SQL_GROUPS, 2, p, &res);
	buf_release(&uids);
	buf_release(&gids);
	if (rv != 0)
		return rv;
	ng = (size_t)PQntuples(res);
	g = xcalloc(ng + 1, sizeof(*g));
	for (i = 0; i < ng; i++) {
		g[i].uid = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		g[i].id = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
		if (bill_mult_parse(PQgetvalue(res, (int)i, 2), &g[i].mult) !=
		    0)
			g[i].mult = BILL_MULT_ONE; /* CHECK >= 0 holds */
		g[i].subscription = PQgetvalue(res, (int)i, 3)[0] == 't';
	}
	PQclear(res);
	qsort(g, ng, sizeof(*g), bill_group_cmp);
	*nout = ng;
	*out = g;
	return 0;
}

/* The pair of u among g (sorted), or NULL: no group, or the group is gone. */
static const struct bill_group *
bill_group_find(
    const struct bill_group *g, size_t ng, const struct proto_usage_evt *u)
{
	struct bill_group key = {.uid = u->user_id, .id = u->group_id};

	if (u->group_id <= 0 || ng == 0)
		return NULL;
	return bsearch(&key, g, ng, sizeof(*g), bill_group_cmp);
}

static void
bill_dead(struct bill_item *it, const char *reason)
{
	it->kind = BILL_K_DEAD;
	snprintf(it->reason, sizeof(it->reason), "%s", reason);
}

/*
 * Checks and prices one event into it; returns NULL, or the reason (static
 * text, or written into msg of BILL_REASON_MAX bytes) to dead-letter it.
 */
static const char *
bill_price_one(struct bill_ledger *l, struct bill_item *it,
    const struct bill_group *g, size_t ng, char *msg)
{
	const struct proto_usage_evt *u = &it->ev->u;
	struct bill_usage_raw         raw;
	struct bill_price_match       m;
	enum bill_provider            prov;
	const struct bill_group      *grp;
	const char                   *why = NULL;
	int                           rv;

	if (u->request_id[0] == '\0')
		return "no request id";
	if (u->user_id <= 0 || u->api_key_id <= 0 || u->account_id <= 0)
		return "missing user, key or account id";
	if (strcmp(u->platform, "antigravity") == 0)
		prov = BILL_PROV_ANTHROPIC; /* relayed in Anthropic's shape */
	else if (bill_provider_parse(u->platform, &prov) != 0)
		return "unknown platform";
	raw = (struct bill_usage_raw){.input = u->input_tokens,
	    .output = u->output_tokens,
	    .cache_creation = u->cache_creation_tokens,
	    .cache_5m = u->cache_creation_5m_tokens,
	    .cache_1h = u->cache_creation_1h_tokens,
	    .cache_read = u->cache_read_tokens};
	if (bill_usage_normalize(prov, &raw, &it->use, &why) != 0) {
		snprintf(msg, BILL_REASON_MAX, "usage refused: %s", why);
		return msg;
	}
	rv = bill_prices_lookup(l->cfg.prices, u->model, &m);
	if (rv == -ERR_TOOBIG)
		return "model name too long";
	if (rv != 0 || m.how == BILL_M_UNKNOWN)
		return "unknown model";
	grp = bill_group_find(g, ng, u);
	it->gid = grp != NULL ? grp->id : 0;
	if (grp != NULL && grp->subscription) {
		if (u->subscription_id <= 0)
			return "subscription group without a subscription";
		it->billing_type = 1;
	}
	rv = bill_cost_compute(&m.price, &it->use,
	    grp != NULL ? grp->mult : BILL_MULT_ONE, &it->cost);
	if (rv != 0)
		return "cost out of range";
	return NULL;
}

int
bill_cmp_rid(const void *a, const void *b)
{
	const struct bill_item *x = *(struct bill_item *const *)a;
	const struct bill_item *y = *(struct bill_item *const *)b;
	int                     c;

	c = strcmp(x->ev->u.request_id, y->ev->u.request_id);
	if (c != 0)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Prices every item and marks repeated request ids of the batch. */
static int
bill_prepare(
    struct bill_ledger *l, struct pg_conn *c, struct bill_item *it, size_t n)
{
	struct bill_group *g = NULL;
	struct bill_item **by;
	const char        *why;
	char               msg[BILL_REASON_MAX];
	size_t             ng = 0, i;
	int                rv;

	rv = bill_groups_load(c, it, n, &g, &ng);
	if (rv != 0)
		return rv;
	for (i = 0; i < n; i++) {
		why = bill_price_one(l, &it[i], g, ng, msg);
		if (why != NULL)
			bill_dead(&it[i], why);
		else
			it[i].kind = BILL_K_ROW;
	}
	free(g);
	by = xcalloc(n, sizeof(*by));
	for (i = 0; i < n; i++)
		by[i] = &it[i];
	qsort(by, n, sizeof(*by), bill_cmp_rid);
	for (i = 1; i < n; i++) {
		if (by[i]->ev->u.request_id[0] != '\0' &&
		    strcmp(by[i]->ev->u.request_id,
		        by[i - 1]->ev->u.request_id) == 0)
			by[i]->kind = BILL_K_SKIP;
	}
	free(by);
	return 0;
}

/* ---- the public face ------------------------------------------------ */

static const char BILL_SQL_CURSORS_LOAD[] =
    "SELECT instance_id, committed_seq FROM billing_cursors"
    " ORDER BY updated_at DESC LIMIT 1024";

static const char BILL_SQL_CURSORS_SOME[] =
    "SELECT instance_id, committed_seq FROM billing_cursors"
    " WHERE instance_id = ANY (SELECT jsonb_array_elements_text($1::jsonb))";

void
bill_ledger_new(const struct bill_ledger_cfg *cfg, struct bill_ledger **out)
{
	struct bill_ledger *l;

	l = xcalloc(1, sizeof(*l));
	l->cfg = *cfg;
	str_copy(l->prefix, sizeof(l->prefix),
	    cfg->redis_prefix != NULL ? cfg->redis_prefix : "");
	l->cfg.redis_prefix = l->prefix;
	if (l->cfg.cache_ttl_s <= 0)
		l->cfg.cache_ttl_s = 300;
	bill_cursor_init(&l->cur);
	pthread_mutex_init(&l->mu, NULL);
	if (rds_script_new(bill_lua_set, &l->lua_set) != 0 ||
	    rds_script_new(bill_lua_sub, &l->lua_sub) != 0)
		BUG("bill_ledger_new: cache scripts");
	*out = l;
}

/*
 * Loads billing_cursors once, before the first batch (the instances most
 * recently written, as many as the tracker holds).
 */
static int
bill_cursors_load(struct bill_ledger *l, struct pg_conn *c)
{
	PGresult *res;
	int       rv = 0, i;

	pthread_mutex_lock(&l->mu);
	if (!l->loaded)
		rv = bill_exec(
		    c, "cursors_load", BILL_SQL_CURSORS_LOAD, 0, NULL, &res);
	if (!l->loaded && rv == 0) {
		for (i = 0; i < PQntuples(res); i++)
			bill_cursor_load(&l->cur, PQgetvalue(res, i, 0),
			    strtoull(PQgetvalue(res, i, 1), NULL, 10));
		PQclear(res);
		l->loaded = true;
	}
	pthread_mutex_unlock(&l->mu);
	return rv;
}

/*
 * Loads the stored cursor of each instance in ids[0..n) the tracker does
 * not hold (beyond the first load, or evicted): marking from zero would
 * leave its in-memory cursor behind the stored one for good, every seq
 * then being past the window.
 */
static int
bill_cursors_fill(
    struct bill_ledger *l, struct pg_conn *c, const char *const *ids, size_t n)
{
	PGresult *res;
	json_t   *arr = json_array();
	size_t    i;
	int       rv, r;

	/* The tracker is shared with the other writers: l->mu guards it. */
	pthread_mutex_lock(&l->mu);
	for (i = 0; i < n; i++) {
		if (ids[i][0] != '\0' && strlen(ids[i]) <= BILL_CURSOR_ID_MAX &&
		    !bill_cursor_known(&l->cur, ids[i]))
			json_array_append_new(arr, json_string(ids[i]));
	}
	pthread_mutex_unlock(&l->mu);
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return 0;
	}
	rv =
	    bill_exec_json(c, "cursors_some", BILL_SQL_CURSORS_SOME, arr, &res);
	if (rv != 0)
		return rv;
	pthread_mutex_lock(&l->mu);
	for (r = 0; r < PQntuples(res); r++) {
		/* Another writer may have loaded (and advanced) it meanwhile.
		 */
		if (!bill_cursor_known(&l->cur, PQgetvalue(res, r, 0)))
			bill_cursor_load(&l->cur, PQgetvalue(res, r, 0),
			    strtoull(PQgetvalue(res, r, 1), NULL, 10));
	}
	pthread_mutex_unlock(&l->mu);
	PQclear(res);
	return 0;
}

/* bill_cursors_fill() over the instances of a batch. */
static int
bill_cursors_fill_batch(struct bill_ledger *l, struct pg_conn *c,
    struct bill_ev *const *evs, size_t n)
{
	const char **ids = xcalloc(n, sizeof(*ids));
	size_t       i, k = 0, j;
	int          rv;

	for (i = 0; i < n; i++) {
		for (j = 0; j < k; j++) {
			if (strcmp(ids[j], evs[i]->u.instance) == 0)
				break;
		}
		if (j == k)
			ids[k++] = evs[i]->u.instance;
	}
	rv = bill_cursors_fill(l, c, ids, k);
	free(ids);
	return rv;
}

void
bill_ledger_free(struct bill_ledger *l)
{
	if (l == NULL)
		return;
	bill_cursor_release(&l->cur);
	pthread_mutex_destroy(&l->mu);
	rds_script_free(l->lua_set);
	rds_script_free(l->lua_sub);
	free(l);
}

uint64_t
bill_ledger_committed(struct bill_ledger *l, const char *instance)
{
	uint64_t v;

	pthread_mutex_lock(&l->mu);
	v = bill_cursor_get(&l->cur, instance);
	pthread_mutex_unlock(&l->mu);
	return v;
}

int
bill_ledger_skip(
    struct bill_ledger *l, const char *instance, uint64_t from, uint64_t to)
{
	struct pg_conn *c;
	uint64_t        was;
	int             rv;

	rv = pg_acquire(l->cfg.pg, l->cfg.db_timeout_ms, &c);
	if (rv != 0)
		return rv;
	rv = bill_cursors_load(l, c);
	if (rv == 0)
		rv = bill_cursors_fill(l, c, &instance, 1);
	was = bill_ledger_committed(l, instance);
	if (rv == 0)
		rv = bill_tx_skip(l, c, instance, from, to);
	pg_release(c);
	/* Declared again every sync until passed: log the moves only. */
	if (rv == 0 && bill_ledger_committed(l, instance) != was)
		log_info("bill.seqs_lost", LOG_STR("inst", instance),
		    LOG_U64("from", from), LOG_U64("to", to),
		    LOG_U64("committed", bill_ledger_committed(l, instance)));
	return rv;
}

static void
bill_met(struct met_counter *m, size_t n)
{
	if (m != NULL && n > 0)
		met_counter_add(m, n);
}

/*
 * After a data error, one event per transaction; an event the database
 * still refuses is dead-lettered alone with the SQLSTATE.
 */
static int
bill_fallback(struct bill_ledger *l, struct pg_conn *c, struct bill_item *it,
    size_t n, struct bill_ledger_result *res)
{
	struct bill_item *one;
	char              why[BILL_REASON_MAX];
	size_t            i;
	int               rv;

	for (i = 0; i < n; i++) {
		one = &it[i];
		rv = bill_tx_run(l, c, &one, 1, res);
		if (rv != 0 && bill_data_error(rv)) {
			snprintf(why, sizeof(why),
			    "rejected by the database: %s %s", pg_sqlstate(c),
			    pg_errmsg(c));
			bill_dead(one, why);
			rv = bill_tx_run(l, c, &one, 1, res);
		}
		if (rv != 0)
			return rv;
	}
	return 0;
}

int
bill_ledger_apply(struct bill_ledger *l, struct bill_ev *const *evs, size_t n,
    struct bill_ledger_result *out)
{
	struct bill_ledger_result res = {0};
	struct bill_item         *it, **ptr;
	struct pg_conn           *c;
	size_t                    i;
	int                       rv;

	ASSERT(n > 0);
	rv = pg_acquire(l->cfg.pg, l->cfg.db_timeout_ms, &c);
	if (rv != 0) {
		bill_met(l->cfg.met.db_errors, 1);
		return rv;
	}
	it = xcalloc(n, sizeof(*it));
	ptr = xcalloc(n, sizeof(*ptr));
	for (i = 0; i < n; i++) {
		it[i].ev = evs[i];
		it[i].idx = i;
		ptr[i] = &it[i];
	}
	rv = bill_cursors_load(l, c);
	if (rv == 0)
		rv = bill_cursors_fill_batch(l, c, evs, n);
	if (rv == 0)
		rv = bill_prepare(l, c, it, n);
	if (rv == 0)
		rv = bill_tx_run(l, c, ptr, n, &res);
	if (rv != 0 && bill_data_error(rv)) {
		log_warn(
		    "bill.batch_fallback", LOG_U64("events", n), LOG_ERR(rv));
		rv = bill_fallback(l, c, it, n, &res);
	}
	pg_release(c);
	free(ptr);
	free(it);
	bill_met(l->cfg.met.rows, res.inserted);
	bill_met(l->cfg.met.duplicates, res.duplicates);
	bill_met(l->cfg.met.dead_letters, res.dead);
	bill_met(l->cfg.met.batches, res.transactions);
	if (rv != 0)
		bill_met(l->cfg.met.db_errors, 1);
	if (out != NULL)
		*out = res;
	return rv;
}
