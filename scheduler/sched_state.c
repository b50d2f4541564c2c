/*
 * sched_state.c: the account state machine, fed by every release.
 *
 * The gateway reports each upstream attempt's outcome (status, error
 * class, the anthropic-ratelimit-unified-* and retry-after headers, the
 * upstream's error message); this module turns it into account state:
 *
 *   401, 402, 403  status 'error' with a reason (error_message); a 403
 *                  whose message says the organization is disabled or
 *                  banned gets a reason that says "banned".
 *   429            rate-limited until the reset header exactly (bounded to
 *                  7 days), else retry-after, else rate_limit_cooldown;
 *                  the 5h session window becomes [end - 5h, end] with
 *                  status 'rejected' (end: the 5h-reset header, else the
 *                  rate limit's end).
 *   529            overload_until = now + overload_cooldown.
 *   other 5xx, and connection failures (status 0, class "network")
 *                  are counted per account in a Redis sorted set over
 *                  temp_unsched_window; the temp_unsched_threshold-th
 *                  makes the account temporarily unschedulable for
 *                  temp_unsched_cooldown, and the count starts over.
 *   2xx            resets that count; the 5h-status / 5h-reset headers
 *                  update the session window (an unset or expired window
 *                  with status allowed/allowed_warning is predicted as
 *                  [this hour, +5h], UTC); a recorded rate limit is
 *                  cleared unless it was recorded after this attempt
 *                  started (a concurrent 429 must stand) or the 5h status
 *                  says 'rejected'.
 *   anything else  (400, 404, the client's hang-up, a gateway error) is
 *                  left alone: it says nothing about the account.
 *
 * API-key accounts whose extra JSON enables custom error codes
 * ({"custom_error_codes_enabled":true,"custom_error_codes":[401,429]})
 * change state only on the listed codes, as the original does; a
 * connection failure is never a listed code.  The list is read by id, and
 * only for a failure: successes, the hot path, never pay for it.
 *
 * Every transition writes one account_state_log row (from, to, reason,
 * until, status, instance) in the same statement as the accounts UPDATE
 * (data-modifying CTEs: one statement, one transaction); the row lock
 * taken there makes "from" exact.  A success costs no extra Redis round
 * trip (the release script drops the failure count) and one UPDATE whose
 * WHERE clause matches only when the window, its status or the rate
 * limit really change: an unchanged account is read, never written (no
 * new row version, no WAL, updated_at kept).  And not even read, most of
 * the time: a success that left no rate limit behind is memoised per
 * account (the 5h headers it carried) for state_memo_ttl, and an
 * identical success within that time skips the database; a transition
 * made here drops the memo (one made by another replica is seen once the
 * memo expires: a window status or an expired limit may lag that long,
 * which changes no scheduling).  accounts' trigger moves updated_at
 * whenever a row is written.
 */
#include <pthread.h>
#include <stdio.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "sched.h"

#define SCHED_RESET_MAX_S  (7 * 86400) /* a reset trusted this far ahead */
#define SCHED_WINDOW_S     (5 * 3600)
#define SCHED_REASON_MAX   512
#define SCHED_RL_HDR       "anthropic-ratelimit-unified-"
#define SCHED_MILLIS_ABOVE 100000000000LL /* 1e11: a reset in ms */

#define SCHED_MEMO_SIZE 4096 /* entries, direct-mapped by account id */

struct sched_memo_ent {
	int64_t aid;          /* 0: empty */
	int64_t expires_ms;   /* monotonic */
	int64_t reset5h;      /* the 5h-reset used, 0: none */
	char    status5h[16]; /* the 5h-status used, "": none */
};

struct sched_statememo {
	pthread_mutex_t       mu;
	struct sched_memo_ent e[SCHED_MEMO_SIZE];
};

/*
 * KEYS[1] the account's failure set; ARGV: window ms, threshold, member.
 * Scored by Redis TIME so that every replica counts on one clock.  A
 * repeated release (same lease) re-scores its member instead of counting
 * twice.  Returns {count, tripped}; tripping empties the set.
 */
const char sched_lua_failure[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local win = tonumber(ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[3])\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if n >= tonumber(ARGV[2]) then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return {n, 1}\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], win)\n"
    "return {n, 0}\n";

/*
 * A transition: the SET clause of each kind goes into this template.
 * $1 account, $2 new state, $3 reason, $4 until (ms, 0: none), $5 http
 * status, $6 instance; the rate-limit clause also uses $7 (window end,
 * ms).  A disabled account is the admin's: left alone.
 */
static const char sched_state_sql_fmt[] =
    "WITH o AS (SELECT id, CASE WHEN status <> 'active' THEN status"
    " WHEN temp_unschedulable_until > now() THEN 'temp_unschedulable'"
    " WHEN rate_limit_reset_at > now() THEN 'rate_limited'"
    " WHEN overload_until > now() THEN 'overloaded' ELSE 'ok' END AS st"
    " FROM accounts WHERE id = $1::bigint AND deleted_at IS NULL"
    " FOR UPDATE),"
    " u AS (UPDATE accounts a SET %s FROM o"
    " WHERE a.id = o.id AND o.st <> 'disabled' RETURNING o.st),"
    " l AS (INSERT INTO account_state_log (account_id, from_state,"
    " to_state, reason, until, http_status, instance)"
    " SELECT $1::bigint, u.st, $2, $3,"
    " to_timestamp(NULLIF($4::bigint, 0) / 1000.0), $5::integer, $6"
    " FROM u RETURNING 1)"
    " SELECT u.st FROM u, l";

static const char sched_set_rate[] =
    "rate_limited_at = now(),"
    " rate_limit_reset_at = to_timestamp($4::bigint / 1000.0),"
    " session_window_start = to_timestamp($7::bigint / 1000.0)"
    " - interval '5 hours',"
    " session_window_end = to_timestamp($7::bigint / 1000.0),"
    " session_window_status = 'rejected'";
static const char sched_set_overload[] =
    "overload_until = to_timestamp($4::bigint / 1000.0)";
static const char sched_set_error[] = "status = 'error', error_message = $3";
static const char sched_set_temp[] =
    "temp_unschedulable_until = to_timestamp($4::bigint / 1000.0),"
    " temp_unschedulable_reason = $3";

/*
 * A success.  $1 account, $2 5h status (NULL: no header), $3 5h reset
 * (unix s, 0: none), $4 the attempt's start (ms), $5 http status, $6
 * instance.  Writes only when something changes; logs a cleared rate
 * limit.  Returns (rows updated, log rows, whether no rate limit is
 * left: NULL for an unknown account).
 */
static const char sched_success_sql[] =
    "WITH o AS (SELECT id, rate_limited_at AS rla,"
    " rate_limit_reset_at AS rlr, session_window_start AS ws0,"
    " session_window_end AS we0, session_window_status AS wst0"
    " FROM accounts WHERE id = $1::bigint AND deleted_at IS NULL),"
    " p AS (SELECT o.*, $2::text IS NOT NULL AND $3::bigint = 0"
    " AND (we0 IS NULL OR we0 <= now())"
    " AND $2::text IN ('allowed', 'allowed_warning') AS predict,"
    " date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    " AS hour FROM o),"
    " n AS (SELECT p.*,"
    " CASE WHEN $2::text IS NULL THEN ws0"
    " WHEN $3::bigint > 0 THEN to_timestamp($3::bigint) - interval '5 hours'"
    " WHEN predict THEN hour ELSE ws0 END AS ws,"
    " CASE WHEN $2::text IS NULL THEN we0"
    " WHEN $3::bigint > 0 THEN to_timestamp($3::bigint)"
    " WHEN predict THEN hour + interval '5 hours' ELSE we0 END AS we,"
    " COALESCE($2::text, wst0) AS wst,"
    " rlr IS NOT NULL AND COALESCE($2::text, '') <> 'rejected'"
    " AND (rla IS NULL OR rla <= to_timestamp($4::bigint / 1000.0)) AS clr"
    " FROM p),"
    " u AS (UPDATE accounts a SET session_window_start = n.ws,"
    " session_window_end = n.we, session_window_status = n.wst,"
    " rate_limited_at = CASE WHEN n.clr AND a.rate_limited_at IS NOT"
    " DISTINCT FROM n.rla THEN NULL ELSE a.rate_limited_at END,"
    " rate_limit_reset_at = CASE WHEN n.clr AND a.rate_limited_at IS NOT"
    " DISTINCT FROM n.rla THEN NULL ELSE a.rate_limit_reset_at END"
    " FROM n WHERE a.id = n.id AND (n.clr OR n.ws IS DISTINCT FROM n.ws0"
    " OR n.we IS DISTINCT FROM n.we0 OR n.wst <> n.wst0)"
    " RETURNING n.clr),"
    " l AS (INSERT INTO account_state_log (account_id, from_state,"
    " to_state, reason, http_status, instance)"
    " SELECT $1::bigint, 'rate_limited', 'ok',"
    " 'a success cleared the recorded rate limit', $5::integer, $6"
    " FROM u WHERE u.clr RETURNING 1)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM l),"
    " (SELECT rlr IS NULL OR clr FROM n)";

/* Whether custom error codes are on for the account, and list status. */
static const char sched_codes_sql[] =
    "SELECT type = 'apikey'"
    " AND jsonb_typeof(extra->'custom_error_codes_enabled') = 'boolean'"
    " AND (extra->>'custom_error_codes_enabled')::boolean,"
    " jsonb_typeof(extra->'custom_error_codes') = 'array'"
    " AND (extra->'custom_error_codes' @> jsonb_build_array($2::integer)"
    " OR extra->'custom_error_codes' @> jsonb_build_array($2::text))"
    " FROM accounts WHERE id = $1::bigint";

struct sched_statememo *
sched_state_memo_new(void)
{
	struct sched_statememo *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void
sched_state_memo_free(struct sched_statememo *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static struct sched_memo_ent *
sched_state_memo_slot(struct sched_statememo *m, int64_t aid)
{
	return &m->e[(uint64_t)aid % SCHED_MEMO_SIZE];
}

/* Whether a success with (st, reset) on aid was memoised and is fresh. */
static bool
sched_state_memo_hit(
    struct sched *s, int64_t aid, const char *st, int64_t reset)
{
	struct sched_memo_ent *e;
	bool                   hit;

	if (s->memo == NULL || s->cfg->state_memo_ttl == 0)
		return false;
	pthread_mutex_lock(&s->memo->mu);
	e = sched_state_memo_slot(s->memo, aid);
	hit = e->aid == aid && e->expires_ms > now_mono_ms() &&
	    e->reset5h == reset && strcmp(e->status5h, st) == 0;
	pthread_mutex_unlock(&s->memo->mu);
	return hit;
}

/* Remembers (st, reset) for aid, or (st NULL) forgets aid. */
static void
sched_state_memo_put(
    struct sched *s, int64_t aid, const char *st, int64_t reset)
{
	struct sched_memo_ent *e;

	if (s->memo == NULL)
		return;
	pthread_mutex_lock(&s->memo->mu);
	e = sched_state_memo_slot(s->memo, aid);
	if (st != NULL && s->cfg->state_memo_ttl > 0) {
		e->aid = aid;
		e->expires_ms = now_mono_ms() + s->cfg->state_memo_ttl;
		e->reset5h = reset;
		snprintf(e->status5h, sizeof(e->status5h), "%s", st);
	} else if (e->aid == aid) {
		e->aid = 0;
	}
	pthread_mutex_unlock(&s->memo->mu);
}

enum sched_st_kind
sched_state_kind(int32_t status, const char *err_class)
{
	if (status >= 200 && status < 300)
		return SCHED_ST_SUCCESS;
	if (status == 429)
		return SCHED_ST_RATE;
	if (status == 529)
		return SCHED_ST_OVERLOAD;
	if (status >= 401 && status <= 403)
		return SCHED_ST_ERROR;
	if (status >= 500 && status < 600)
		return SCHED_ST_FAILURE;
	if (status == 0 && err_class != NULL &&
	    strcmp(err_class, "network") == 0)
		return SCHED_ST_FAILURE;
	return SCHED_ST_NONE;
}

const char *
sched_state_header(const struct sched_outcome *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->n_hdrs; i++) {
		if (strcasecmp(o->hdrs[i].name, name) == 0)
			return o->hdrs[i].value;
	}
	return NULL;
}

/* Case-insensitive substring search over bounded text. */
static bool
sched_state_has(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++) {
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	}
	return false;
}

bool
sched_state_banned(const char *msg)
{
	if (msg == NULL)
		return false;
	return (sched_state_has(msg, "organization") ||
	           sched_state_has(msg, "organisation") ||
	           sched_state_has(msg, "account")) &&
	    (sched_state_has(msg, "disabled") ||
	        sched_state_has(msg, "banned") ||
	        sched_state_has(msg, "suspended"));
}

/* A header holding unix seconds (or milliseconds); 0 when absent/bad. */
static int64_t
sched_state_unix(const struct sched_outcome *o, const char *name)
{
	const char *v = sched_state_header(o, name);
	char       *end;
	long long   t;

	if (v == NULL)
		return 0;
	t = strtoll(v, &end, 10);
	if (end == v || *end != '\0' || t <= 0)
		return 0;
	return t > SCHED_MILLIS_ABOVE ? t / 1000 : t;
}

int64_t
sched_state_rate_until(const struct sched *s, const struct sched_outcome *o,
    int64_t now_ms, const char **why)
{
	int64_t reset = sched_state_unix(o, SCHED_RL_HDR "reset");
	int64_t now_s = now_ms / 1000;

	if (reset == 0)
		reset = o->reset_unix;
	if (reset > now_s && reset < now_s + SCHED_RESET_MAX_S) {
		*why = "reset header";
		return reset * 1000;
	}
	if (o->retry_after_s > 0 && o->retry_after_s < SCHED_RESET_MAX_S) {
		*why = "retry-after";
		return now_ms + o->retry_after_s * 1000;
	}
	*why = "default cooldown";
	return now_ms + s->cfg->rate_limit_cooldown;
}

/* The 5h-status header when it is one of the three known values. */
static const char *
sched_state_5h_status(const struct sched_outcome *o)
{
	const char *v = sched_state_header(o, SCHED_RL_HDR "5h-status");

	if (v != NULL &&
	    (strcmp(v, "allowed") == 0 || strcmp(v, "allowed_warning") == 0 ||
	        strcmp(v, "rejected") == 0))
		return v;
	return NULL;
}

/* The 5h-reset header when plausible (5 h ago .. 7 days ahead), else 0. */
static int64_t
sched_state_5h_reset(const struct sched_outcome *o, int64_t now_ms)
{
	int64_t t = sched_state_unix(o, SCHED_RL_HDR "5h-reset");
	int64_t now_s = now_ms / 1000;

	if (t < now_s - SCHED_WINDOW_S || t > now_s + SCHED_RESET_MAX_S)
		return 0;
	return t;
}

/* Appends ": <msg>" to a reason when the upstream said something. */
static void
sched_state_reason(
    char *out, size_t cap, const char *what, int32_t status, const char *msg)
{
	if (msg != NULL && *msg != '\0')
		snprintf(out, cap, "%s (%d): %s", what, (int)status, msg);
	else
		snprintf(out, cap, "%s (%d)", what, (int)status);
}

/*
 * Whether custom error codes make the account ignore status: on, and
 * status not listed.  A failed lookup ignores nothing.
 */
static bool
sched_state_code_ignored(struct pg_conn *conn, int64_t aid, int32_t status)
{
	char        id[24], st[16];
	const char *params[2] = {id, st};
	PGresult   *res;
	bool        ignored = false;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(st, sizeof(st), "%d", (int)status);
	if (pg_exec(conn, sched_codes_sql, 2, params, &res) != 0) {
		log_warn("sched.account_codes_failed", LOG_I64("account", aid),
		    LOG_STR("detail", pg_errmsg(conn)));
		return false;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		ignored = strcmp(PQgetvalue(res, 0, 1), "t") != 0;
	PQclear(res);
	return ignored;
}

/*
 * Counts one failure; *tripped when it reached the threshold (the count
 * is then reset) and *count the failures in the window.
 */
static int
sched_state_count(struct sched *s, const struct sched_outcome *o, bool *tripped,
    int64_t *count)
{
	char        key[192], win[24], thr[24], member[PROTO_ID_MAX + 24];
	const char *argv[4] = {key, win, thr, member};
	redisReply *rep;
	int         rv;

	snprintf(key, sizeof(key), "%sfail:%lld", s->cfg->redis_prefix,
	    (long long)o->account_id);
	snprintf(
	    win, sizeof(win), "%lld", (long long)s->cfg->temp_unsched_window);
	snprintf(thr, sizeof(thr), "%lld",
	    (long long)s->cfg->temp_unsched_threshold);
	snprintf(member, sizeof(member), "%s:%d",
	    o->lease != NULL ? o->lease : "", (int)o->status);
	rv = rds_script_eval(s->rds, s->lua_failure, &rep, 1, 3, argv, NULL);
	if (rv != 0)
		return rv;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return -ERR_REDIS;
	}
	*count = rep->element[0]->integer;
	*tripped = rep->element[1]->integer == 1;
	freeReplyObject(rep);
	return 0;
}

/* One transition: see sched_state_sql_fmt. */
struct sched_tr {
	const char *set;    /* the SET clause */
	const char *to;     /* the new state */
	const char *reason; /* bounded text */
	int64_t     until_ms;
	int64_t     window_end_ms; /* rate limits only */
};

static int
sched_state_write(struct sched *s, struct pg_conn *conn,
    const struct sched_outcome *o, const struct sched_tr *t)
{
	char        sql[sizeof(sched_state_sql_fmt) + 512];
	char        id[24], until[24], st[16], wend[24];
	const char *params[7] = {
	    id, t->to, t->reason, until, st, s->svc.instance, wend};
	PGresult *res;
	int       rv;

	sched_state_memo_put(s, o->account_id, NULL, 0);
	snprintf(sql, sizeof(sql), sched_state_sql_fmt, t->set);
	snprintf(id, sizeof(id), "%lld", (long long)o->account_id);
	snprintf(until, sizeof(until), "%lld", (long long)t->until_ms);
	snprintf(st, sizeof(st), "%d", (int)o->status);
	snprintf(wend, sizeof(wend), "%lld", (long long)t->window_end_ms);
	rv = pg_exec(conn, sql, t->set == sched_set_rate ? 7 : 6, params, &res);
	if (rv != 0) {
		log_warn("sched.account_state_failed",
		    LOG_I64("account", o->account_id),
		    LOG_I64("status", o->status), LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	/* The candidate lists must see the change at once. */
	sched_acache_invalidate(s->acache);
	if (PQntuples(res) == 1)
		log_info("sched.account_state",
		    LOG_I64("account", o->account_id),
		    LOG_I64("status", o->status),
		    LOG_STR("from", PQgetvalue(res, 0, 0)),
		    LOG_STR("to", t->to), LOG_I64("until_ms", t->until_ms),
		    LOG_STR("reason", t->reason));
	PQclear(res);
	return 0;
}

/*
 * A success: the 5h window and a recorded rate limit.  The failure count
 * was reset by the release script (sched_slots_release_ex()).
 */
static int
sched_state_success(struct sched *s, const struct sched_outcome *o)
{
	char        id[24], reset[24], start[24], st[16];
	const char *params[6] = {id, NULL, reset, start, st, s->svc.instance};
	struct pg_conn *conn;
	PGresult       *res;
	int64_t         now = now_wall_ms(), r5h;
	int             rv;

	params[1] = sched_state_5h_status(o);
	r5h = params[1] != NULL ? sched_state_5h_reset(o, now) : 0;
	if (sched_state_memo_hit(
	        s, o->account_id, params[1] != NULL ? params[1] : "", r5h))
		return 0;
	snprintf(id, sizeof(id), "%lld", (long long)o->account_id);
	snprintf(reset, sizeof(reset), "%lld", (long long)r5h);
	snprintf(start, sizeof(start), "%lld",
	    (long long)(now - (o->duration_ms > 0 ? o->duration_ms : 0)));
	snprintf(st, sizeof(st), "%d", (int)o->status);
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0)
		return rv;
	rv = pg_exec(conn, sched_success_sql, 6, params, &res);
	if (rv != 0) {
		log_warn("sched.account_state_failed",
		    LOG_I64("account", o->account_id),
		    LOG_I64("status", o->status), LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		pg_release(conn);
		return rv;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		sched_acache_invalidate(s->acache); /* a rate limit cleared */
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "0") != 0)
		log_info("sched.account_state",
		    LOG_I64("account", o->account_id),
		    LOG_I64("status", o->status),
		    LOG_STR("from", "rate_limited"), LOG_STR("to", "ok"));
	/* Nothing left for an identical success to do: remember that. */
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 2), "t") == 0)
		sched_state_memo_put(
		    s, o->account_id, params[1] != NULL ? params[1] : "", r5h);
	else
		sched_state_memo_put(s, o->account_id, NULL, 0);
	PQclear(res);
	pg_release(conn);
	return 0;
}

/* Fills t for a failure of kind k; false when nothing is to be done. */
static bool
sched_state_plan(struct sched *s, const struct sched_outcome *o,
    enum sched_st_kind k, int64_t fails, struct sched_tr *t, char *reason)
{
	const char *msg = o->err_message, *why;
	int64_t     now = now_wall_ms(), wend;

	t->reason = reason;
	switch (k) {
	case SCHED_ST_RATE:
		t->set = sched_set_rate;
		t->to = "rate_limited";
		t->until_ms = sched_state_rate_until(s, o, now, &why);
		wend = sched_state_5h_reset(o, now);
		t->window_end_ms = wend > 0 ? wend * 1000 : t->until_ms;
		snprintf(
		    reason, SCHED_REASON_MAX, "Rate limited (429), %s", why);
		return true;
	case SCHED_ST_OVERLOAD:
		t->set = sched_set_overload;
		t->to = "overloaded";
		t->until_ms = now + s->cfg->overload_cooldown;
		sched_state_reason(
		    reason, SCHED_REASON_MAX, "Overloaded", o->status, NULL);
		return true;
	case SCHED_ST_ERROR:
		t->set = sched_set_error;
		t->to = "error";
		t->until_ms = 0;
		sched_state_reason(reason, SCHED_REASON_MAX,
		    o->status == 401       ? "Authentication failed"
		        : o->status == 402 ? "Payment required"
		        : o->status == 403 && sched_state_banned(msg)
		        ? "Account banned"
		        : "Access forbidden",
		    o->status, msg);
		return true;
	case SCHED_ST_FAILURE:
		t->set = sched_set_temp;
		t->to = "temp_unschedulable";
		t->until_ms = now + s->cfg->temp_unsched_cooldown;
		if (o->status == 0)
			snprintf(reason, SCHED_REASON_MAX,
			    "%lld upstream failures within %llds, the last a "
			    "connection failure",
			    (long long)fails,
			    (long long)(s->cfg->temp_unsched_window / 1000));
		else
			snprintf(reason, SCHED_REASON_MAX,
			    "%lld upstream failures within %llds, the last "
			    "HTTP %d%s%s",
			    (long long)fails,
			    (long long)(s->cfg->temp_unsched_window / 1000),
			    (int)o->status, msg != NULL && *msg ? ": " : "",
			    msg != NULL ? msg : "");
		return true;
	default:
		return false;
	}
}

int
sched_state_apply(struct sched *s, const struct sched_outcome *o, char *state)
{
	enum sched_st_kind k = sched_state_kind(o->status, o->err_class);
	struct pg_conn    *conn;
	struct sched_tr    t;
	char               reason[SCHED_REASON_MAX];
	bool               tripped = false;
	int64_t            fails = 0;
	int                rv;

	snprintf(state, PROTO_ACCT_STATE_MAX + 1, "ok");
	if (o->account_id <= 0 || k == SCHED_ST_NONE)
		return 0;
	if (k == SCHED_ST_SUCCESS)
		return sched_state_success(s, o);
	if (k == SCHED_ST_FAILURE && s->cfg->temp_unsched_threshold == 0)
		return 0;
	rv = pg_acquire(s->pg, (int)s->cfg->dep_timeout, &conn);
	if (rv != 0)
		return rv;
	if (sched_state_code_ignored(conn, o->account_id, o->status)) {
		log_info("sched.account_code_ignored",
		    LOG_I64("account", o->account_id),
		    LOG_I64("status", o->status));
		goto out;
	}
	if (k == SCHED_ST_FAILURE) {
		rv = sched_state_count(s, o, &tripped, &fails);
		if (rv != 0) {
			log_warn("sched.failure_count_failed",
			    LOG_I64("account", o->account_id), LOG_ERR(rv));
			goto out;
		}
		if (!tripped)
			goto out;
	}
	memset(&t, 0, sizeof(t));
	if (!sched_state_plan(s, o, k, fails, &t, reason))
		goto out;
	rv = sched_state_write(s, conn, o, &t);
	if (rv == 0)
		snprintf(state, PROTO_ACCT_STATE_MAX + 1, "%s", t.to);
out:
	pg_release(conn);
	return rv;
}
