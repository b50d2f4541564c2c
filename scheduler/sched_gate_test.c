/*
 * sched_gate_test.c: the money gate of the acquire path (sched_eligible()
 * and the key cache's money part) against the real PostgreSQL and Redis
 * (SUB2API_TEST_DATABASE_URL, SUB2API_TEST_REDIS_URL; missing variables
 * fail loudly).
 *
 * Each refusal is checked with its outcome, error type and message; the
 * edges are exact (balance 0 refused, 1e-10 admitted; usage one 1e-10
 * under the limit admitted); a window older than its period counts as
 * unused; NULL and 0 limits are no limits; a balance change shows after
 * an invalidation or once balance_cache_ttl has passed, while the rest of
 * the cached entry stays cached.  Accounts and users have room for every
 * acquire here (concurrency 0: unlimited), so no slot is ever released.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_gate",
    .redis_prefix = "s2ag",
    .instance = "sched-gate-test",
    .key_tag = "gate",
    .base_url = "http://127.0.0.1:9/fake-anthropic",
    .rds_conns = 2,
};

static void
t_setup(void)
{
	t_fixture_setup(&T_FIXTURE);
	/* Most cases want every change visible at once; some set it. */
	T_CFG->balance_cache_ttl = 0;
}

/* ---- seeding ---------------------------------------------------------- */

static int64_t
t_user(const char *balance)
{
	char        email[64];
	const char *p[2] = {email, balance};

	snprintf(email, sizeof(email), "g%d-%d@test", (int)getpid(), ++T_SEQ);
	return t_sql("INSERT INTO users (email, balance, concurrency)"
	             " VALUES ($1, $2::numeric, 0) RETURNING id",
	    2, p);
}

/* A group with one account that serves anything; its id. */
static int64_t
t_group(bool subscription)
{
	char        name[64], id[24], g[24], *hex;
	const char *p[2] = {name, subscription ? "subscription" : "standard"};
	const char *pa[3] = {id, NULL, g};
	int64_t     gid, aid;

	snprintf(name, sizeof(name), "gg%d-%d", (int)getpid(), ++T_SEQ);
	gid = t_sql("INSERT INTO groups (name, subscription_type)"
	            " VALUES ($1, $2) RETURNING id",
	    2, p);
	aid = t_account_seal("{\"api_key\":\"k\"}", &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	pa[1] = hex;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc, concurrency) VALUES ($1::bigint, 'acct-' ||"
	      " $1, 'anthropic', 'apikey', $2::bytea, 0) RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $3::bigint FROM a",
	    3, pa);
	free(hex);
	return gid;
}

/* A live subscription of uid to gid (status, expiry in seconds). */
static int64_t
t_sub(int64_t uid, int64_t gid, const char *status, int secs)
{
	char        u[24], g[24], e[24];
	const char *p[4] = {u, g, status, e};

	snprintf(u, sizeof(u), "%lld", (long long)uid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	snprintf(e, sizeof(e), "%d", secs);
	return t_sql("INSERT INTO user_subscriptions (user_id, group_id,"
	             " status, expires_at) VALUES ($1::bigint, $2::bigint, $3,"
	             " now() + $4::integer * interval '1 second') RETURNING id",
	    4, p);
}

/* Runs sql with $1 = id (a statement whose result is not wanted). */
static void
t_upd(const char *sql, int64_t id)
{
	(void)t_sql1(sql, id);
}

/* ---- requests --------------------------------------------------------- */

struct t_res {
	int  outcome;
	char etype[PROTO_NAME_MAX + 1];
	char msg[PROTO_TEXT_MAX + 1];
};

static struct t_res
t_acq(const char *hash)
{
	struct proto_sched_acquire_req  req;
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	struct t_res                    r;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "gate-%d", ++T_SEQ);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", hash);
	snprintf(req.model, sizeof(req.model), "claude-test");
	snprintf(req.client_ip, sizeof(req.client_ip), "127.0.0.1");
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_acquire_req_pack(&b, req.request_id, 0, &req));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_ACQUIRE_REP);
	rep = xcalloc(1, sizeof(*rep));
	T_OK(proto_sched_acquire_rep_unpack(&env, rep));
	buf_release(&reply);
	r.outcome = rep->outcome;
	snprintf(r.etype, sizeof(r.etype), "%s", rep->err_type);
	snprintf(r.msg, sizeof(r.msg), "%s", rep->err_message);
	free(rep);
	return r;
}

static void
t_ok(const char *hash)
{
	struct t_res r = t_acq(hash);

	if (r.outcome != PROTO_ACQ_OK)
		t_fail(__FILE__, __LINE__, "refused: %d %s", r.outcome, r.msg);
}

/* A refusal with outcome, type and a message containing msg. */
static void
t_deny(const char *hash, int outcome, const char *etype, const char *msg)
{
	struct t_res r = t_acq(hash);

	T_EQ_INT(r.outcome, outcome);
	T_EQ_STR(r.etype, etype);
	if (strstr(r.msg, msg) == NULL)
		t_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", r.msg,
		    msg);
}

static void
t_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- cases ------------------------------------------------------------ */

static void
test_balance_edges(void)
{
	char    h[65];
	int64_t uid, gid;

	t_setup();
	gid = t_group(false);
	uid = t_user("0");
	t_key(uid, gid, h);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error",
	    "Insufficient account balance");
	t_upd("UPDATE users SET balance = -0.0000000001 WHERE id = $1::bigint",
	    uid);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error",
	    "Insufficient account balance");
	t_upd("UPDATE users SET balance = -3.5 WHERE id = $1::bigint", uid);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error",
	    "Insufficient account balance");
	t_upd("UPDATE users SET balance = 0.0000000001 WHERE id = $1::bigint",
	    uid);
	t_ok(h);
}

static void
test_key_expired_and_quota(void)
{
	char    h[65], h2[65];
	int64_t uid, gid, kid, kid2;

	t_setup();
	gid = t_group(false);
	uid = t_user("10");
	kid = t_key(uid, gid, h);
	t_upd("UPDATE api_keys SET expires_at = now() - interval '1 second'"
	      " WHERE id = $1::bigint",
	    kid);
	t_deny(
	    h, PROTO_ACQ_FORBIDDEN, "permission_error", "API key has expired");
	/* An expired key with zero balance is still "expired" first. */
	t_upd("UPDATE users SET balance = 0 WHERE id = $1::bigint", uid);
	t_deny(
	    h, PROTO_ACQ_FORBIDDEN, "permission_error", "API key has expired");
	t_upd("UPDATE users SET balance = 10 WHERE id = $1::bigint", uid);

	kid2 = t_key(uid, gid, h2);
	t_upd("UPDATE api_keys SET quota_usd = 2, quota_used_usd = 2"
	      " WHERE id = $1::bigint",
	    kid2);
	t_deny(
	    h2, PROTO_ACQ_QUOTA, "rate_limit_error", "API_KEY_QUOTA_EXHAUSTED");
	/* Quota before balance: both spent, the quota speaks. */
	t_upd("UPDATE users SET balance = 0 WHERE id = $1::bigint", uid);
	t_deny(
	    h2, PROTO_ACQ_QUOTA, "rate_limit_error", "API_KEY_QUOTA_EXHAUSTED");
	t_upd("UPDATE users SET balance = 10 WHERE id = $1::bigint", uid);
	t_upd("UPDATE api_keys SET quota_used_usd = 1.9999999999"
	      " WHERE id = $1::bigint",
	    kid2);
	t_ok(h2);
	t_upd("UPDATE api_keys SET quota_used_usd = 3 WHERE id = $1::bigint",
	    kid2);
	t_deny(h2, PROTO_ACQ_QUOTA, "rate_limit_error", "quota");
	/* No quota (NULL) and a zero quota are no limit. */
	t_upd(
	    "UPDATE api_keys SET quota_usd = NULL WHERE id = $1::bigint", kid2);
	t_ok(h2);
	t_upd("UPDATE api_keys SET quota_usd = 0 WHERE id = $1::bigint", kid2);
	t_ok(h2);
}

static void
test_subscription_state(void)
{
	char    h[65];
	int64_t uid, gid, sub;

	t_setup();
	gid = t_group(true);
	uid = t_user("0"); /* a subscription ignores the balance */
	t_key(uid, gid, h);
	t_deny(h, PROTO_ACQ_BALANCE, "subscription_error",
	    "No active subscription");
	sub = t_sub(uid, gid, "suspended", 3600);
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	t_deny(
	    h, PROTO_ACQ_BALANCE, "subscription_error", "SUBSCRIPTION_INVALID");
	t_upd("UPDATE user_subscriptions SET status = 'active'"
	      " WHERE id = $1::bigint",
	    sub);
	t_ok(h); /* the money part is re-read: balance_cache_ttl 0 */
	t_upd("UPDATE user_subscriptions SET status = 'expired'"
	      " WHERE id = $1::bigint",
	    sub);
	t_deny(
	    h, PROTO_ACQ_BALANCE, "subscription_error", "SUBSCRIPTION_INVALID");
	t_upd("UPDATE user_subscriptions SET status = 'active',"
	      " expires_at = now() - interval '1 second' WHERE id = $1::bigint",
	    sub);
	t_deny(
	    h, PROTO_ACQ_BALANCE, "subscription_error", "SUBSCRIPTION_INVALID");
}

/* Sets group gid's limits and subscription sub's usage and starts. */
static void
t_windows(int64_t gid, const char *limits, int64_t sub, const char *usage)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "UPDATE groups SET %s WHERE id = $1::bigint",
	    limits);
	t_upd(sql, gid);
	snprintf(sql, sizeof(sql),
	    "UPDATE user_subscriptions SET %s WHERE id = $1::bigint", usage);
	t_upd(sql, sub);
}

static void
test_windows(void)
{
	char    h[65];
	int64_t uid, gid, sub;

	t_setup();
	gid = t_group(true);
	uid = t_user("0");
	sub = t_sub(uid, gid, "active", 86400 * 60);
	t_key(uid, gid, h);
	t_ok(h);

	t_windows(gid,
	    "daily_limit_usd = 10, weekly_limit_usd = 50,"
	    " monthly_limit_usd = 100",
	    sub,
	    "daily_usage_usd = 10, weekly_usage_usd = 10,"
	    " monthly_usage_usd = 10, daily_window_start = now() - interval"
	    " '1 hour', weekly_window_start = now() - interval '1 hour',"
	    " monthly_window_start = now() - interval '1 hour'");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "DAILY_LIMIT_EXCEEDED");
	/* One 1e-10 under the limit: served (it may cross it). */
	t_windows(
	    gid, "daily_limit_usd = 10", sub, "daily_usage_usd = 9.9999999999");
	t_ok(h);
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "weekly_usage_usd = 50.5, daily_usage_usd = 0");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "WEEKLY_LIMIT_EXCEEDED");
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "weekly_usage_usd = 0, monthly_usage_usd = 100");
	t_deny(
	    h, PROTO_ACQ_QUOTA, "rate_limit_error", "MONTHLY_LIMIT_EXCEEDED");
	/* Daily first when several are spent. */
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "daily_usage_usd = 11, weekly_usage_usd = 60");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "DAILY_LIMIT_EXCEEDED");
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "daily_usage_usd = 0, weekly_usage_usd = 0, monthly_usage_usd = 0");
	t_ok(h);
}

static void
test_window_reset(void)
{
	char    h[65];
	int64_t uid, gid, sub;

	t_setup();
	gid = t_group(true);
	uid = t_user("1");
	sub = t_sub(uid, gid, "active", 86400 * 60);
	t_key(uid, gid, h);
	t_windows(gid,
	    "daily_limit_usd = 10, weekly_limit_usd = 10,"
	    " monthly_limit_usd = 10",
	    sub,
	    "daily_usage_usd = 50, weekly_usage_usd = 50,"
	    " monthly_usage_usd = 50,"
	    " daily_window_start = now() - interval '23 hours 59 minutes',"
	    " weekly_window_start = now() - interval '200 hours',"
	    " monthly_window_start = now() - interval '800 hours'");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "DAILY_LIMIT_EXCEEDED");
	/* The daily window started 24 h ago: it counts as zero. */
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "daily_window_start = now() - interval '24 hours'");
	t_ok(h);
	/* A week still running is spent; past 168 h it resets. */
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "weekly_window_start = now() - interval '167 hours'");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "WEEKLY_LIMIT_EXCEEDED");
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "weekly_window_start = now() - interval '169 hours',"
	    " monthly_window_start = now() - interval '719 hours'");
	t_deny(
	    h, PROTO_ACQ_QUOTA, "rate_limit_error", "MONTHLY_LIMIT_EXCEEDED");
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "monthly_window_start = now() - interval '721 hours'");
	t_ok(h);
	/* Windows never activated (NULL start) count as unused. */
	t_windows(gid, "daily_limit_usd = 10", sub,
	    "daily_window_start = NULL, weekly_window_start = NULL,"
	    " monthly_window_start = NULL");
	t_ok(h);
}

static void
test_null_limits(void)
{
	char    h[65];
	int64_t uid, gid, sub;

	t_setup();
	gid = t_group(true);
	uid = t_user("0");
	sub = t_sub(uid, gid, "active", 86400);
	t_key(uid, gid, h);
	t_windows(gid,
	    "daily_limit_usd = NULL, weekly_limit_usd = NULL,"
	    " monthly_limit_usd = NULL",
	    sub,
	    "daily_usage_usd = 99999, weekly_usage_usd = 99999,"
	    " monthly_usage_usd = 99999, daily_window_start = now(),"
	    " weekly_window_start = now(), monthly_window_start = now()");
	t_ok(h);
	/* A zero limit is no limit either (as the original reads it). */
	t_windows(gid,
	    "daily_limit_usd = 0, weekly_limit_usd = 0, monthly_limit_usd = 0",
	    sub, "daily_usage_usd = 1");
	t_ok(h);
	t_windows(gid, "weekly_limit_usd = 99999", sub, "daily_usage_usd = 1");
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "WEEKLY_LIMIT_EXCEEDED");
}

/*
 * With a long balance_cache_ttl, a balance change stays unseen until an
 * invalidation; with a short one, it shows once the TTL has passed, and
 * only the money part is re-read (a non-money change stays unseen).
 */
static void
test_cache_lifetime(void)
{
	char    h[65];
	int64_t uid, gid, sub;

	t_setup();
	T_CFG->balance_cache_ttl = 600000;
	gid = t_group(false);
	uid = t_user("5");
	t_key(uid, gid, h);
	t_ok(h);
	t_upd("UPDATE users SET balance = 0 WHERE id = $1::bigint", uid);
	t_ok(h); /* cached */
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error",
	    "Insufficient account balance");

	/* A top-up shows once the money part's lifetime has passed. */
	T_CFG->balance_cache_ttl = 1000;
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error", "Insufficient");
	t_upd("UPDATE users SET balance = 0.5, concurrency = 7"
	      " WHERE id = $1::bigint",
	    uid);
	t_upd(
	    "UPDATE users SET status = 'disabled' WHERE id = $1::bigint", uid);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error", "Insufficient");
	t_sleep_ms(1100); /* wall-clock time passing is the point */
	/* Served: the balance was re-read, the user's status was not. */
	t_ok(h);
	t_upd("UPDATE users SET balance = 0 WHERE id = $1::bigint", uid);
	t_sleep_ms(1100);
	t_deny(h, PROTO_ACQ_BALANCE, "billing_error", "Insufficient");
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	t_deny(h, PROTO_ACQ_AUTH, "authentication_error", "disabled");

	/* A window spent: the "subscription" event drops its keys. */
	T_CFG->balance_cache_ttl = 600000;
	gid = t_group(true);
	uid = t_user("0");
	sub = t_sub(uid, gid, "active", 86400);
	t_key(uid, gid, h);
	t_ok(h);
	t_windows(gid, "daily_limit_usd = 1", sub,
	    "daily_usage_usd = 1, daily_window_start = now()");
	t_ok(h); /* cached */
	T_EQ_INT(sched_keys_invalidate(S.keys, "subscription", sub), 1);
	t_deny(h, PROTO_ACQ_QUOTA, "rate_limit_error", "DAILY_LIMIT_EXCEEDED");
	T_CFG->balance_cache_ttl = 0;
}

/*
 * An invalidation that comes while a query is in flight wins: the
 * query's answer (read under the older generation) is not cached, nor
 * is a money refresh.
 */
static void
test_generation(void)
{
	struct sched_keycache *kc = sched_keys_new(16);
	struct sched_key       k, got;
	uint64_t               gen;
	const char            *h = "abcdef0123456789";

	memset(&k, 0, sizeof(k));
	k.found = true;
	k.key_id = 7;
	k.user_id = 70;
	k.balance_positive = true;
	gen = sched_keys_gen(kc);
	T_EQ_INT(sched_keys_invalidate(kc, "user", 70), 0);
	T_ASSERT(sched_keys_gen(kc) != gen);
	sched_keys_put_gen(kc, h, 1000, 500, &k, gen);
	T_ASSERT(!sched_keys_get(kc, h, 1001, &got));

	gen = sched_keys_gen(kc);
	sched_keys_put_gen(kc, h, 1000, 500, &k, gen);
	T_ASSERT(sched_keys_get(kc, h, 1001, &got));
	k.balance_positive = false;
	k.money_ms = 1200;
	(void)sched_keys_invalidate(kc, "user", 71); /* another user */
	sched_keys_put_money(kc, h, &k, gen);        /* stale: ignored */
	T_ASSERT(sched_keys_get(kc, h, 1001, &got));
	T_ASSERT(got.balance_positive);
	sched_keys_put_money(kc, h, &k, sched_keys_gen(kc));
	T_ASSERT(sched_keys_get(kc, h, 1001, &got));
	T_ASSERT(!got.balance_positive);
	T_EQ_INT(got.money_ms, 1200);
	sched_keys_free(kc);
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_balance_edges), T_CASE(test_key_expired_and_quota),
    T_CASE(test_subscription_state), T_CASE(test_windows),
    T_CASE(test_window_reset), T_CASE(test_null_limits),
    T_CASE(test_cache_lifetime), T_CASE(test_generation),
    T_CASE(test_zz_teardown))
