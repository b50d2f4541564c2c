/*
 * sched_state_test.c: the account state machine (sched_state.c) against
 * the real PostgreSQL and Redis of tests/run.sh.
 *
 * Each case seeds its own accounts, feeds outcomes to
 * sched_state_apply() (and, once, a packed release through the
 * dispatcher) and reads back the accounts row, the account_state_log
 * rows and the Redis failure counter.  Set-up and teardown come from
 * sched_fixture.h (database sched_state_<pid>, Redis prefix s2ast<pid>:).
 */
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_state",
    .redis_prefix = "s2ast",
    .instance = "sched-state-test",
    .key_tag = "st",
    .base_url = NULL,
    .rds_conns = 2,
};

static void
t_setup(void)
{
	t_fixture_setup(&T_FIXTURE);
}

/* An anthropic account of type with extra JSON; returns its id. */
static int64_t
t_acct(const char *type, const char *extra)
{
	char        id[24], *hex;
	const char *p[4];
	int64_t     aid;

	aid = t_account_seal("{\"api_key\":\"k\"}", &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	p[0] = id;
	p[1] = type;
	p[2] = hex;
	p[3] = extra != NULL ? extra : "{}";
	t_sql("INSERT INTO accounts (id, name, platform, type, credentials_enc,"
	      " extra) VALUES ($1::bigint, 'st-' || $1, 'anthropic', $2,"
	      " $3::bytea, $4::jsonb)",
	    4, p);
	free(hex);
	return aid;
}

/* The first column of sql (one $1::bigint parameter) as text. */
static void
t_str(const char *sql, int64_t aid, char *out, size_t cap)
{
	char        id[24];
	const char *p[1] = {id};
	PGresult   *res;

	snprintf(id, sizeof(id), "%lld", (long long)aid);
	if (pg_exec(DB, sql, 1, p, &res) != 0)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, pg_errmsg(DB));
	snprintf(out, cap, "%s",
	    PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
	        ? PQgetvalue(res, 0, 0)
	        : "NULL");
	PQclear(res);
}

/* An outcome for account aid with status; no headers, no message. */
static struct sched_outcome
t_out(int64_t aid, int32_t status)
{
	struct sched_outcome o;

	memset(&o, 0, sizeof(o));
	o.account_id = aid;
	o.status = status;
	o.err_class = status == 0 ? "network" : status >= 400 ? "http" : "";
	o.lease = "lease-1";
	o.duration_ms = 100;
	o.err_message = "";
	return o;
}

static const char *
t_apply(const struct sched_outcome *o)
{
	static char state[PROTO_ACCT_STATE_MAX + 1];

	T_OK(sched_state_apply(&S, o, state));
	return state;
}

static int64_t
t_logs(int64_t aid)
{
	return t_sql1("SELECT count(*) FROM account_state_log"
	              " WHERE account_id = $1::bigint",
	    aid);
}

/* The newest log row of aid as "from>to|status|instance". */
static void
t_lastlog(int64_t aid, char *out, size_t cap)
{
	t_str("SELECT from_state || '>' || to_state || '|' || http_status"
	      " || '|' || instance FROM account_state_log"
	      " WHERE account_id = $1::bigint ORDER BY created_at DESC, id DESC"
	      " LIMIT 1",
	    aid, out, cap);
}

static int64_t
t_zcard_fail(int64_t aid)
{
	redisReply *r;
	int64_t     n;

	T_OK(rds_cmd(S.rds, &r, "ZCARD %sfail:%lld", T_PREFIX, (long long)aid));
	n = r->integer;
	freeReplyObject(r);
	return n;
}

/* A release through the dispatcher; returns the reply's state. */
static const char *
t_release(const char *lease, int64_t aid, int32_t status, const char *emsg)
{
	static struct proto_sched_release_rep rep;
	struct proto_sched_release_req        req;
	struct proto_env                      env;
	struct buf                            b, reply;

	memset(&req, 0, sizeof(req));
	snprintf(req.lease_id, sizeof(req.lease_id), "%s", lease);
	req.account_id = aid;
	req.http_status = status;
	snprintf(req.err_class, sizeof(req.err_class), "%s",
	    status >= 400 ? "http" : "");
	snprintf(req.err_message, sizeof(req.err_message), "%s", emsg);
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_release_req_pack(&b, "rel", 0, &req));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_RELEASE_REP);
	T_OK(proto_sched_release_rep_unpack(&env, &rep));
	T_ASSERT(rep.released);
	buf_release(&b);
	buf_release(&reply);
	return rep.state;
}

/* ---- cases ------------------------------------------------------------ */

static void
test_pure_rules(void)
{
	struct proto_header  h[1];
	struct sched_outcome o;
	const char          *why;
	int64_t              now = 1790000000000LL;

	t_setup();
	T_EQ_INT(sched_state_kind(200, ""), SCHED_ST_SUCCESS);
	T_EQ_INT(sched_state_kind(429, "http"), SCHED_ST_RATE);
	T_EQ_INT(sched_state_kind(529, "http"), SCHED_ST_OVERLOAD);
	T_EQ_INT(sched_state_kind(401, "http"), SCHED_ST_ERROR);
	T_EQ_INT(sched_state_kind(402, "http"), SCHED_ST_ERROR);
	T_EQ_INT(sched_state_kind(403, "http"), SCHED_ST_ERROR);
	T_EQ_INT(sched_state_kind(500, "http"), SCHED_ST_FAILURE);
	T_EQ_INT(sched_state_kind(503, "http"), SCHED_ST_FAILURE);
	T_EQ_INT(sched_state_kind(0, "network"), SCHED_ST_FAILURE);
	T_EQ_INT(sched_state_kind(0, "client_closed"), SCHED_ST_NONE);
	T_EQ_INT(sched_state_kind(0, "gateway_error"), SCHED_ST_NONE);
	T_EQ_INT(sched_state_kind(499, "client_closed"), SCHED_ST_NONE);
	T_EQ_INT(sched_state_kind(400, "http"), SCHED_ST_NONE);
	T_EQ_INT(sched_state_kind(404, "http"), SCHED_ST_NONE);

	T_ASSERT(sched_state_banned("This organization has been disabled."));
	T_ASSERT(sched_state_banned("Your account has been BANNED"));
	T_ASSERT(!sched_state_banned("Your API key does not have permission"));
	T_ASSERT(!sched_state_banned(NULL));

	o = t_out(1, 429);
	o.hdrs = h;
	o.n_hdrs = 1;
	snprintf(
	    h[0].name, sizeof(h[0].name), "Anthropic-Ratelimit-Unified-Reset");
	snprintf(h[0].value, sizeof(h[0].value), "1790000004");
	T_EQ_STR(sched_state_header(&o, "anthropic-ratelimit-unified-reset"),
	    "1790000004");
	T_ASSERT(sched_state_header(&o, "retry-after") == NULL);
	T_EQ_INT(sched_state_rate_until(&S, &o, now, &why), 1790000004000LL);
	T_EQ_STR(why, "reset header");
	/* Milliseconds are recognised. */
	snprintf(h[0].value, sizeof(h[0].value), "1790000004000");
	T_EQ_INT(sched_state_rate_until(&S, &o, now, &why), 1790000004000LL);
	/* Past, or beyond a week: retry-after, then the cooldown. */
	snprintf(h[0].value, sizeof(h[0].value), "1789999990");
	o.retry_after_s = 7;
	T_EQ_INT(sched_state_rate_until(&S, &o, now, &why), now + 7000);
	T_EQ_STR(why, "retry-after");
	snprintf(h[0].value, sizeof(h[0].value), "%lld",
	    (long long)(now / 1000 + 8 * 86400));
	o.retry_after_s = 0;
	T_EQ_INT(sched_state_rate_until(&S, &o, now, &why),
	    now + T_CFG->rate_limit_cooldown);
	T_EQ_STR(why, "default cooldown");
	/* The legacy field when the header is absent. */
	o.n_hdrs = 0;
	o.reset_unix = 1790000009;
	T_EQ_INT(sched_state_rate_until(&S, &o, now, &why), 1790000009000LL);
}

static void
test_errors_and_ban(void)
{
	struct sched_outcome o;
	char                 v[512];
	int64_t              a1, a2, a3, a4, a5;

	t_setup();
	a1 = t_acct("oauth", NULL);
	a2 = t_acct("oauth", NULL);
	a3 = t_acct("oauth", NULL);
	a4 = t_acct("oauth", NULL);
	a5 = t_acct("oauth", NULL);
	o = t_out(a1, 401);
	o.err_message = "invalid x-api-key";
	T_EQ_STR(t_apply(&o), "error");
	t_str("SELECT status || '|' || error_message FROM accounts"
	      " WHERE id = $1::bigint",
	    a1, v, sizeof(v));
	T_EQ_STR(v, "error|Authentication failed (401): invalid x-api-key");
	t_lastlog(a1, v, sizeof(v));
	T_EQ_STR(v, "ok>error|401|sched-state-test");
	t_str("SELECT reason || '|' || (until IS NULL) FROM account_state_log"
	      " WHERE account_id = $1::bigint",
	    a1, v, sizeof(v));
	T_EQ_STR(v, "Authentication failed (401): invalid x-api-key|true");

	o = t_out(a2, 402);
	T_EQ_STR(t_apply(&o), "error");
	t_str("SELECT error_message FROM accounts WHERE id = $1::bigint", a2, v,
	    sizeof(v));
	T_EQ_STR(v, "Payment required (402)");

	o = t_out(a3, 403);
	o.err_message = "Your API key does not have permission";
	T_EQ_STR(t_apply(&o), "error");
	t_str("SELECT error_message FROM accounts WHERE id = $1::bigint", a3, v,
	    sizeof(v));
	T_EQ_STR(v,
	    "Access forbidden (403): Your API key does not have"
	    " permission");

	o = t_out(a4, 403);
	o.err_message = "This organization has been disabled.";
	T_EQ_STR(t_apply(&o), "error");
	t_str("SELECT error_message FROM accounts WHERE id = $1::bigint", a4, v,
	    sizeof(v));
	T_EQ_STR(v,
	    "Account banned (403): This organization has been"
	    " disabled.");
	T_EQ_INT(t_sql1("SELECT count(*) FROM account_state_log"
	                " WHERE account_id = $1::bigint AND reason LIKE"
	                " '%banned%' AND to_state = 'error'",
	             a4),
	    1);

	/* An account the admin disabled is left alone. */
	t_sql1("UPDATE accounts SET status = 'disabled' WHERE id = $1::bigint",
	    a5);
	o = t_out(a5, 401);
	T_OK(sched_state_apply(&S, &o, v));
	t_str("SELECT status || '|' || error_message FROM accounts"
	      " WHERE id = $1::bigint",
	    a5, v, sizeof(v));
	T_EQ_STR(v, "disabled|");
	T_EQ_INT(t_logs(a5), 0);
}

static void
test_rate_limit_and_window(void)
{
	struct proto_header  h[2];
	struct sched_outcome o;
	char                 v[256];
	int64_t              a1, a2, reset = now_wall_ms() / 1000 + 100;
	int64_t              r5h = reset + 3600;

	t_setup();
	a1 = t_acct("oauth", NULL);
	a2 = t_acct("oauth", NULL);
	o = t_out(a1, 429);
	o.hdrs = h;
	o.n_hdrs = 1;
	snprintf(
	    h[0].name, sizeof(h[0].name), "anthropic-ratelimit-unified-reset");
	snprintf(h[0].value, sizeof(h[0].value), "%lld", (long long)reset);
	T_EQ_STR(t_apply(&o), "rate_limited");
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM rate_limit_reset_at)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a1),
	    reset);
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM session_window_end)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a1),
	    reset);
	T_EQ_INT(
	    t_sql1("SELECT extract(epoch FROM session_window_start)::bigint"
	           " FROM accounts WHERE id = $1::bigint",
	        a1),
	    reset - 5 * 3600);
	t_str(
	    "SELECT session_window_status FROM accounts WHERE id = $1::bigint",
	    a1, v, sizeof(v));
	T_EQ_STR(v, "rejected");
	t_lastlog(a1, v, sizeof(v));
	T_EQ_STR(v, "ok>rate_limited|429|sched-state-test");
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM until)::bigint"
	                " FROM account_state_log WHERE account_id = $1::bigint",
	             a1),
	    reset);
	/* A second 429 while limited: logged as rate_limited > rate_limited. */
	T_EQ_STR(t_apply(&o), "rate_limited");
	t_lastlog(a1, v, sizeof(v));
	T_EQ_STR(v, "rate_limited>rate_limited|429|sched-state-test");

	/* The 5h-reset header, when present, ends the window. */
	o = t_out(a2, 429);
	o.hdrs = h;
	o.n_hdrs = 2;
	snprintf(h[1].name, sizeof(h[1].name),
	    "anthropic-ratelimit-unified-5h-reset");
	snprintf(h[1].value, sizeof(h[1].value), "%lld", (long long)r5h);
	T_EQ_STR(t_apply(&o), "rate_limited");
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM session_window_end)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a2),
	    r5h);
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM rate_limit_reset_at)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a2),
	    reset);
}

static void
test_overload(void)
{
	struct sched_outcome o;
	char                 v[256];
	int64_t              a;

	t_setup();
	a = t_acct("oauth", NULL);
	o = t_out(a, 529);
	T_EQ_STR(t_apply(&o), "overloaded");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND overload_until BETWEEN now() + interval '590 s'"
	                " AND now() + interval '610 s'",
	             a),
	    1);
	t_lastlog(a, v, sizeof(v));
	T_EQ_STR(v, "ok>overloaded|529|sched-state-test");
	T_EQ_INT(
	    t_sql1("SELECT count(*) FROM account_state_log"
	           " WHERE account_id = $1::bigint AND until BETWEEN"
	           " now() + interval '590 s' AND now() + interval '610 s'",
	        a),
	    1);
}

static void
test_failures_pause(void)
{
	struct sched_outcome o;
	char                 v[512];
	int64_t              a, b;

	t_setup();
	a = t_acct("oauth", NULL);
	b = t_acct("oauth", NULL);
	T_EQ_INT(T_CFG->temp_unsched_threshold, 3);
	o = t_out(a, 500);
	o.lease = "l1";
	T_EQ_STR(t_apply(&o), "ok");
	/* The same lease released twice counts once. */
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(a), 1);
	o = t_out(a, 0); /* a connection failure */
	o.lease = "l2";
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(a), 2);
	/* The client's hang-up and a 400 say nothing about the account. */
	o = t_out(a, 0);
	o.err_class = "client_closed";
	o.lease = "l3";
	T_EQ_STR(t_apply(&o), "ok");
	o = t_out(a, 400);
	o.lease = "l4";
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(a), 2);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND temp_unschedulable_until IS NULL",
	             a),
	    1);
	o = t_out(a, 502);
	o.lease = "l5";
	o.err_message = "Bad gateway";
	T_EQ_STR(t_apply(&o), "temp_unschedulable");
	T_EQ_INT(t_zcard_fail(a), 0); /* the count starts over */
	T_EQ_INT(
	    t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	           " AND temp_unschedulable_until BETWEEN"
	           " now() + interval '290 s' AND now() + interval '310 s'",
	        a),
	    1);
	t_str("SELECT temp_unschedulable_reason FROM accounts"
	      " WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v,
	    "3 upstream failures within 60s, the last HTTP 502: Bad"
	    " gateway");
	t_lastlog(a, v, sizeof(v));
	T_EQ_STR(v, "ok>temp_unschedulable|502|sched-state-test");
	T_EQ_INT(t_logs(a), 1);

	/* A success in between resets the count. */
	o = t_out(b, 500);
	o.lease = "m1";
	T_EQ_STR(t_apply(&o), "ok");
	o.lease = "m2";
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(b), 2);
	/* Applying a success alone leaves the count to the release... */
	o = t_out(b, 200);
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(b), 2);
	/* ...whose script drops it; other statuses do not. */
	T_EQ_STR(t_release("m-other", b, 400, ""), "ok");
	T_EQ_INT(t_zcard_fail(b), 2);
	T_EQ_STR(t_release("m-ok", b, 200, ""), "ok");
	T_EQ_INT(t_zcard_fail(b), 0);
	o = t_out(b, 503);
	o.lease = "m3";
	T_EQ_STR(t_apply(&o), "ok");
	o.lease = "m4";
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND temp_unschedulable_until IS NULL",
	             b),
	    1);
	T_EQ_INT(t_logs(b), 0);
}

static void
test_custom_codes(void)
{
	struct sched_outcome o;
	char                 v[64];
	int64_t              a, off, oauth, strs;

	t_setup();
	a = t_acct("apikey",
	    "{\"custom_error_codes_enabled\":true,"
	    "\"custom_error_codes\":[401,429]}");
	off = t_acct("apikey",
	    "{\"custom_error_codes_enabled\":false,"
	    "\"custom_error_codes\":[401]}");
	oauth = t_acct("oauth",
	    "{\"custom_error_codes_enabled\":true,"
	    "\"custom_error_codes\":[401]}");
	strs = t_acct("apikey",
	    "{\"custom_error_codes_enabled\":true,"
	    "\"custom_error_codes\":[\"529\"]}");
	/* Unlisted codes are left alone, failures are not even counted. */
	o = t_out(a, 529);
	T_EQ_STR(t_apply(&o), "ok");
	o = t_out(a, 403);
	T_EQ_STR(t_apply(&o), "ok");
	o = t_out(a, 500);
	o.lease = "c1";
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_zcard_fail(a), 0);
	T_EQ_INT(t_logs(a), 0);
	t_str("SELECT status || '|' || (overload_until IS NULL) FROM accounts"
	      " WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "active|true");
	/* Listed ones act as usual. */
	o = t_out(a, 429);
	T_EQ_STR(t_apply(&o), "rate_limited");
	o = t_out(a, 401);
	T_EQ_STR(t_apply(&o), "error");
	T_EQ_INT(t_logs(a), 2);
	/* Disabled list, or an OAuth account: every code acts. */
	o = t_out(off, 529);
	T_EQ_STR(t_apply(&o), "overloaded");
	o = t_out(oauth, 529);
	T_EQ_STR(t_apply(&o), "overloaded");
	/* Codes written as strings count too. */
	o = t_out(strs, 529);
	T_EQ_STR(t_apply(&o), "overloaded");
	o = t_out(strs, 401);
	T_EQ_STR(t_apply(&o), "ok");
}

static void
test_success_window(void)
{
	struct proto_header  h[2];
	struct sched_outcome o;
	char                 v[256], x1[256], x2[256];
	int64_t              a, r5h = now_wall_ms() / 1000 + 7200;

	t_setup();
	a = t_acct("oauth", NULL);
	/* No header: nothing is written at all. */
	t_str("SELECT xmin::text FROM accounts WHERE id = $1::bigint", a, x1,
	    sizeof(x1));
	o = t_out(a, 200);
	T_EQ_STR(t_apply(&o), "ok");
	t_str("SELECT xmin::text FROM accounts WHERE id = $1::bigint", a, x2,
	    sizeof(x2));
	T_EQ_STR(x1, x2);
	/* allowed on an unset window: predicted [this hour, +5h]. */
	o.hdrs = h;
	o.n_hdrs = 1;
	snprintf(h[0].name, sizeof(h[0].name),
	    "anthropic-ratelimit-unified-5h-status");
	snprintf(h[0].value, sizeof(h[0].value), "allowed");
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND session_window_start = date_trunc('hour', now()"
	                " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
	                " AND session_window_end = session_window_start"
	                " + interval '5 hours'"
	                " AND session_window_status = 'allowed'",
	             a),
	    1);
	/* The same again changes nothing: no write, updated_at kept. */
	t_str("SELECT xmin::text || updated_at::text FROM accounts"
	      " WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(t_apply(&o), "ok");
	t_str("SELECT xmin::text || updated_at::text FROM accounts"
	      " WHERE id = $1::bigint",
	    a, x1, sizeof(x1));
	T_EQ_STR(v, x1);
	/* A status change is written; the window stays (not expired). */
	snprintf(h[0].value, sizeof(h[0].value), "allowed_warning");
	T_EQ_STR(t_apply(&o), "ok");
	t_str(
	    "SELECT session_window_status FROM accounts WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "allowed_warning");
	/* The 5h-reset header sets the window exactly. */
	o.n_hdrs = 2;
	snprintf(h[1].name, sizeof(h[1].name),
	    "anthropic-ratelimit-unified-5h-reset");
	snprintf(h[1].value, sizeof(h[1].value), "%lld", (long long)r5h);
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM session_window_end)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a),
	    r5h);
	T_EQ_INT(
	    t_sql1("SELECT extract(epoch FROM session_window_start)::bigint"
	           " FROM accounts WHERE id = $1::bigint",
	        a),
	    r5h - 5 * 3600);
	/* An expired window is predicted anew. */
	t_sql1("UPDATE accounts SET session_window_start = now() - interval"
	       " '7 hours', session_window_end = now() - interval '2 hours'"
	       " WHERE id = $1::bigint",
	    a);
	o.n_hdrs = 1;
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND session_window_end > now()"
	                " AND session_window_end = date_trunc('hour', now()"
	                " AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
	                " + interval '5 hours'",
	             a),
	    1);
	/* Window updates are no transitions. */
	T_EQ_INT(t_logs(a), 0);
}

static void
test_success_clears(void)
{
	struct proto_header  h[1];
	struct sched_outcome o;
	char                 v[256];
	int64_t              a, b, c;

	t_setup();
	a = t_acct("oauth", NULL);
	b = t_acct("oauth", NULL);
	c = t_acct("oauth", NULL);
	t_sql1(
	    "UPDATE accounts SET rate_limited_at = now() - interval '10 min',"
	    " rate_limit_reset_at = now() - interval '1 s'"
	    " WHERE id IN ($1::bigint, $1::bigint + 1, $1::bigint + 2)",
	    a);
	T_EQ_INT(b, a + 1);
	T_EQ_INT(c, a + 2);
	o = t_out(a, 200);
	o.duration_ms = 1000;
	T_EQ_STR(t_apply(&o), "ok");
	t_str("SELECT (rate_limited_at IS NULL) || '|' ||"
	      " (rate_limit_reset_at IS NULL) FROM accounts"
	      " WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "true|true");
	t_lastlog(a, v, sizeof(v));
	T_EQ_STR(v, "rate_limited>ok|200|sched-state-test");
	/* A limit recorded after this attempt started stands. */
	o = t_out(b, 200);
	o.duration_ms = 3600 * 1000;
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND rate_limit_reset_at IS NOT NULL",
	             b),
	    1);
	/* So does one whose 5h status says rejected. */
	o = t_out(c, 200);
	o.hdrs = h;
	o.n_hdrs = 1;
	snprintf(h[0].name, sizeof(h[0].name),
	    "anthropic-ratelimit-unified-5h-status");
	snprintf(h[0].value, sizeof(h[0].value), "rejected");
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND rate_limit_reset_at IS NOT NULL",
	             c),
	    1);
	T_EQ_INT(t_logs(b) + t_logs(c), 0);
}

static void
test_success_memo(void)
{
	struct proto_header  h[1];
	struct sched_outcome o;
	char                 v[64];
	int64_t              a, b;

	t_setup();
	a = t_acct("oauth", NULL);
	b = t_acct("oauth", NULL);
	T_ASSERT(T_CFG->state_memo_ttl > 0);
	o = t_out(a, 200);
	o.hdrs = h;
	o.n_hdrs = 1;
	snprintf(h[0].name, sizeof(h[0].name),
	    "anthropic-ratelimit-unified-5h-status");
	snprintf(h[0].value, sizeof(h[0].value), "allowed");
	T_EQ_STR(t_apply(&o), "ok");
	/* Another replica's write is not seen while the memo holds... */
	t_sql1("UPDATE accounts SET session_window_status = 'rejected'"
	       " WHERE id = $1::bigint",
	    a);
	T_EQ_STR(t_apply(&o), "ok");
	t_str(
	    "SELECT session_window_status FROM accounts WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "rejected");
	/* ...a transition made here drops it... */
	o.status = 529;
	T_EQ_STR(t_apply(&o), "overloaded");
	o.status = 200;
	T_EQ_STR(t_apply(&o), "ok");
	t_str(
	    "SELECT session_window_status FROM accounts WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "allowed");
	/* ...and without a memo every success asks the database. */
	T_CFG->state_memo_ttl = 0;
	t_sql1("UPDATE accounts SET session_window_status = 'rejected'"
	       " WHERE id = $1::bigint",
	    a);
	T_EQ_STR(t_apply(&o), "ok");
	t_str(
	    "SELECT session_window_status FROM accounts WHERE id = $1::bigint",
	    a, v, sizeof(v));
	T_EQ_STR(v, "allowed");
	T_CFG->state_memo_ttl = 5000;

	/* A rate limit that stood is never memoised away. */
	t_sql1("UPDATE accounts SET rate_limited_at = now() - interval '10 s',"
	       " rate_limit_reset_at = now() - interval '1 s'"
	       " WHERE id = $1::bigint",
	    b);
	o = t_out(b, 200);
	o.duration_ms = 3600 * 1000; /* started before the limit: it stands */
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND rate_limit_reset_at IS NOT NULL",
	             b),
	    1);
	o.duration_ms = 1000; /* started after it: clears */
	T_EQ_STR(t_apply(&o), "ok");
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND rate_limit_reset_at IS NULL",
	             b),
	    1);
}

/* The reply's state through the dispatcher, long names included. */
static void
test_release_reply(void)
{
	int64_t a;

	t_setup();
	a = t_acct("oauth", NULL);
	T_EQ_STR(t_release("rr-0", a, 503, "down"), "ok");
	T_EQ_STR(t_release("rr-1", a, 503, "down"), "ok");
	T_EQ_STR(t_release("rr-2", a, 503, "down"), "temp_unschedulable");
	T_EQ_STR(t_release("rr-3", a, 529, ""), "overloaded");
	T_EQ_STR(t_release("rr-4", a, 200, ""), "ok");
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_pure_rules), T_CASE(test_errors_and_ban),
    T_CASE(test_rate_limit_and_window), T_CASE(test_overload),
    T_CASE(test_failures_pause), T_CASE(test_custom_codes),
    T_CASE(test_success_window), T_CASE(test_success_clears),
    T_CASE(test_success_memo), T_CASE(test_release_reply),
    T_CASE(test_zz_teardown))
