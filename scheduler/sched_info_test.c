/*
 * sched_info_test.c: SCHED_KEYINFO_REQ (GET /v1/models and /v1/usage)
 * against the real PostgreSQL and Redis that tests/run.sh starts
 * (SUB2API_TEST_DATABASE_URL, SUB2API_TEST_REDIS_URL; missing variables
 * fail loudly).
 *
 * Its own database sched_info_test_<pid>, migrated here; requests go
 * through sched_rep_handle() as packed envelopes and every reply is
 * decoded.  The set-up and the seeding shared with sched_acquire_test.c
 * live in sched_fixture.h.  The last case drops the database.
 */
#include <stdio.h>
#include <unistd.h>

#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_info_test",
    .redis_prefix = "s2ai",
    .instance = "sched-info-test",
    .key_tag = "info",
    .base_url = NULL,
    .rds_conns = 2,
};

static void
t_setup(void)
{
	t_fixture_setup(&T_FIXTURE);
}

/* ---- seeding ---------------------------------------------------------- */

static int64_t
t_user(const char *balance)
{
	char        email[64];
	const char *p[2] = {email, balance};

	snprintf(email, sizeof(email), "i%d-%d@test", (int)getpid(), ++T_SEQ);
	return t_sql("INSERT INTO users (email, balance)"
	             " VALUES ($1, $2::numeric) RETURNING id",
	    2, p);
}

/* A group; its name (PROTO_NAME_MAX + 1 bytes) into name when not NULL. */
static int64_t
t_group(const char *platform, bool subscription, char *name)
{
	char        n[64];
	const char *p[3] = {
	    n, platform, subscription ? "subscription" : "standard"};

	snprintf(n, sizeof(n), "plan %d-%d", (int)getpid(), ++T_SEQ);
	if (name != NULL)
		snprintf(name, PROTO_NAME_MAX + 1, "%s", n);
	return t_sql("INSERT INTO groups (name, platform, subscription_type)"
	             " VALUES ($1, $2, $3) RETURNING id",
	    3, p);
}

/* An account of group gid with sealed creds (as sub2apictl seals them). */
static int64_t
t_account(int64_t gid, const char *platform, const char *creds)
{
	char        id[24], g[24], *hex;
	const char *p[4];
	int64_t     aid;

	aid = t_account_seal(creds, &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	p[0] = id;
	p[1] = platform;
	p[2] = hex;
	p[3] = g;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc) VALUES ($1::bigint, 'acct-' || $1, $2,"
	      " 'apikey', $3::bytea) RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $4::bigint FROM a",
	    4, p);
	free(hex);
	return aid;
}

/* ---- requests through the dispatcher ---------------------------------- */

static struct proto_sched_keyinfo_rep *
t_info(const char *hash, const char *what)
{
	struct proto_sched_keyinfo_req  req;
	struct proto_sched_keyinfo_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "info-%d", ++T_SEQ);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", hash);
	snprintf(req.what, sizeof(req.what), "%s", what);
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_keyinfo_req_pack(&b, req.request_id, 0, &req));
	buf_init(&reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, b.data, b.len, &reply));
	buf_release(&b);
	T_OK(proto_env_unpack(reply.data, reply.len, &env));
	T_EQ_INT(env.type, MSG_SCHED_KEYINFO_REP);
	T_EQ_STR(env.id, req.request_id);
	rep = xcalloc(1, sizeof(*rep));
	T_OK(proto_sched_keyinfo_rep_unpack(&env, rep));
	buf_release(&reply);
	return rep;
}

/* Expects a refusal with outcome and message; nothing else is filled. */
static void
t_refused(const char *hash, const char *what, int outcome, const char *msg)
{
	struct proto_sched_keyinfo_rep *rep = t_info(hash, what);
	int                             out = rep->outcome;
	bool                            empty;
	char                            m[PROTO_TEXT_MAX + 1];

	snprintf(m, sizeof(m), "%s", rep->err_message);
	empty = rep->n_models == 0 && rep->plan_name[0] == '\0' &&
	    rep->balance[0] == '\0' && rep->platform[0] == '\0';
	free(rep);
	T_EQ_INT(out, outcome);
	T_EQ_STR(m, msg);
	T_ASSERT(empty);
}

/* ---- cases ------------------------------------------------------------ */

static void
test_models_union(void)
{
	struct proto_sched_keyinfo_rep *rep;
	char                            h[65];
	int64_t                         uid, gid, aid;

	t_setup();
	uid = t_user("0");
	gid = t_group("anthropic", false, NULL);
	t_key(uid, gid, h);
	t_account(gid, "anthropic",
	    "{\"api_key\":\"k\",\"model_mapping\":"
	    "{\"claude-b\":\"up-b\",\"claude-a\":\"\"}}");
	t_account(gid, "anthropic",
	    "{\"api_key\":\"k\",\"model_mapping\":"
	    "{\"claude-c\":\"up-c\",\"claude-a\":\"up-a\"}}");
	t_account(gid, "anthropic", "{\"api_key\":\"k\"}");
	/* Not counted: another platform, unschedulable, rate limited. */
	t_account(gid, "openai",
	    "{\"api_key\":\"k\",\"model_mapping\":{\"gpt-x\":\"gpt-x\"}}");
	aid = t_account(gid, "anthropic",
	    "{\"api_key\":\"k\",\"model_mapping\":{\"claude-off\":\"x\"}}");
	t_sql1("UPDATE accounts SET schedulable = false WHERE id = $1::bigint",
	    aid);
	aid = t_account(gid, "anthropic",
	    "{\"api_key\":\"k\",\"model_mapping\":{\"claude-rl\":\"x\"}}");
	t_sql1("UPDATE accounts SET rate_limit_reset_at = now() + interval"
	       " '1 hour' WHERE id = $1::bigint",
	    aid);

	/* A user with nothing left still lists models: no balance check. */
	rep = t_info(h, "models");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->platform, "anthropic");
	T_EQ_INT(rep->n_models, 3);
	T_EQ_STR(rep->models[0], "claude-a");
	T_EQ_STR(rep->models[1], "claude-b");
	T_EQ_STR(rep->models[2], "claude-c");
	T_EQ_STR(rep->balance, "");
	free(rep);
}

static void
test_models_default(void)
{
	struct proto_sched_keyinfo_rep *rep;
	char                            h[65];
	int64_t                         uid, gid;

	t_setup();
	uid = t_user("1");
	gid = t_group("anthropic", false, NULL);
	t_key(uid, gid, h);
	t_account(gid, "anthropic", "{\"api_key\":\"k\"}");
	t_account(gid, "anthropic", "{\"api_key\":\"k\",\"model_mapping\":{}}");
	rep = t_info(h, "models");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_INT(rep->n_models, 7);
	T_EQ_STR(rep->models[0], "claude-opus-4-8");
	T_EQ_STR(rep->models[3], "claude-haiku-4-5-20251001");
	T_EQ_STR(rep->models[6], "claude-3-5-haiku-20241022");
	free(rep);

	/* No account at all: the platform's own list. */
	gid = t_group("openai", false, NULL);
	t_key(uid, gid, h);
	rep = t_info(h, "models");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->platform, "openai");
	T_ASSERT(rep->n_models > 0);
	T_ASSERT(strncmp(rep->models[0], "gpt-", 4) == 0);
	free(rep);
}

static void
test_models_cap(void)
{
	struct proto_sched_keyinfo_rep *rep;
	struct buf                      creds;
	char                            h[65];
	int64_t                         uid, gid;
	int                             i;

	t_setup();
	uid = t_user("1");
	gid = t_group("anthropic", false, NULL);
	t_key(uid, gid, h);
	buf_init(&creds, 65536);
	T_OK(buf_addstr(&creds, "{\"api_key\":\"k\",\"model_mapping\":{"));
	for (i = 0; i < PROTO_MODELS_MAX + 20; i++)
		T_OK(buf_addf(&creds, "%s\"m-%03d\":\"x\"", i > 0 ? "," : "",
		    PROTO_MODELS_MAX + 19 - i));
	T_OK(buf_addstr(&creds, "}}"));
	t_account(gid, "anthropic", buf_str(&creds));
	buf_release(&creds);
	rep = t_info(h, "models");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_INT(rep->n_models, PROTO_MODELS_MAX);
	T_EQ_STR(rep->models[0], "m-000");
	T_EQ_STR(rep->models[PROTO_MODELS_MAX - 1], "m-127");
	free(rep);
}

static void
test_usage_balance(void)
{
	struct proto_sched_keyinfo_rep *rep;
	char                            h[65], name[PROTO_NAME_MAX + 1];
	int64_t                         uid, gid;

	t_setup();
	uid = t_user("12.5");
	gid = t_group("anthropic", false, name);
	t_key(uid, gid, h);
	rep = t_info(h, "usage");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->plan_name, name);
	T_EQ_STR(rep->balance, "12.5000000000");
	T_EQ_STR(rep->remaining, "12.5000000000");
	T_EQ_INT(rep->billing_type, 0);
	T_EQ_INT(rep->n_models, 0);
	free(rep);

	/* Read live, not from the key cache; zero is still an answer. */
	t_sql1("UPDATE users SET balance = 0 WHERE id = $1::bigint", uid);
	rep = t_info(h, "usage");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->balance, "0.0000000000");
	T_EQ_STR(rep->remaining, "0.0000000000");
	free(rep);
}

/* Sets the subscription's usage and window starts (days ago). */
static void
t_sub_usage(int64_t sub, const char *daily, const char *weekly,
    const char *monthly, int age_days)
{
	char        s[24], age[16];
	const char *p[5] = {s, daily, weekly, monthly, age};

	snprintf(s, sizeof(s), "%lld", (long long)sub);
	snprintf(age, sizeof(age), "%d", age_days);
	t_sql(
	    "UPDATE user_subscriptions SET daily_usage_usd = $2::numeric,"
	    " weekly_usage_usd = $3::numeric, monthly_usage_usd = $4::numeric,"
	    " daily_window_start = now() - $5::integer * interval '1 day',"
	    " weekly_window_start = now() - $5::integer * interval '1 day',"
	    " monthly_window_start = now() - $5::integer * interval '1 day'"
	    " WHERE id = $1::bigint",
	    5, p);
}

static void
test_usage_subscription(void)
{
	struct proto_sched_keyinfo_rep *rep;
	char                            h[65], name[PROTO_NAME_MAX + 1];
	char                            u[24], g[24];
	const char                     *p[2] = {u, g};
	int64_t                         uid, gid, sub;

	t_setup();
	uid = t_user("3");
	gid = t_group("anthropic", true, name);
	t_key(uid, gid, h);
	/* No subscription yet: forbidden, for models and usage alike. */
	t_refused(h, "usage", PROTO_ACQ_FORBIDDEN,
	    "No active subscription for this group");
	t_refused(h, "models", PROTO_ACQ_FORBIDDEN,
	    "No active subscription for this group");

	/* Unlimited plan: -1. */
	snprintf(u, sizeof(u), "%lld", (long long)uid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	sub = t_sql("INSERT INTO user_subscriptions (user_id, group_id,"
	            " expires_at) VALUES ($1::bigint, $2::bigint,"
	            " now() + interval '1 day') RETURNING id",
	    2, p);
	t_key(uid, gid, h);
	rep = t_info(h, "usage");
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->plan_name, name);
	T_EQ_STR(rep->remaining, "-1");
	T_EQ_STR(rep->balance, "3.0000000000");
	T_EQ_INT(rep->billing_type, 1);
	free(rep);

	/* Daily 10 and weekly 50 set, monthly unlimited: the least left. */
	t_sql1("UPDATE groups SET daily_limit_usd = 10, weekly_limit_usd = 50"
	       " WHERE id = $1::bigint",
	    gid);
	t_sub_usage(sub, "2.5", "45", "1000", 0);
	rep = t_info(h, "usage");
	T_EQ_STR(rep->remaining, "5.0000000000");
	free(rep);
	t_sub_usage(sub, "2.5", "1", "1000", 0);
	rep = t_info(h, "usage");
	T_EQ_STR(rep->remaining, "7.5000000000");
	free(rep);

	/* One window spent: 0. */
	t_sub_usage(sub, "10.25", "11", "0", 0);
	rep = t_info(h, "usage");
	T_EQ_STR(rep->remaining, "0");
	free(rep);

	/* A daily window past its day counts as unused again. */
	t_sub_usage(sub, "10.25", "11", "0", 2);
	rep = t_info(h, "usage");
	T_EQ_STR(rep->remaining, "10.00000000");
	free(rep);
}

static void
test_refusals(void)
{
	char    h[65];
	int64_t uid, gid, kid;

	t_setup();
	crypto_sha256_hex("no such key", 11, h);
	t_refused(h, "models", PROTO_ACQ_AUTH, "Invalid API key");
	t_refused(h, "usage", PROTO_ACQ_AUTH, "Invalid API key");

	uid = t_user("10");
	gid = t_group("anthropic", false, NULL);
	kid = t_key(uid, gid, h);
	t_sql1("UPDATE api_keys SET status = 'inactive' WHERE id = $1::bigint",
	    kid);
	t_refused(h, "usage", PROTO_ACQ_AUTH, "API key disabled");

	gid = t_group("anthropic", false, NULL);
	t_sql1(
	    "UPDATE groups SET status = 'disabled' WHERE id = $1::bigint", gid);
	t_key(uid, gid, h);
	t_refused(h, "models", PROTO_ACQ_FORBIDDEN, "API key group disabled");

	uid = t_user("10");
	t_sql1(
	    "UPDATE users SET status = 'disabled' WHERE id = $1::bigint", uid);
	gid = t_group("anthropic", false, NULL);
	t_key(uid, gid, h);
	t_refused(h, "usage", PROTO_ACQ_AUTH, "User account disabled");
}

static void
test_no_secret_key(void)
{
	struct proto_sched_keyinfo_rep *rep;
	char                            h[65];
	int64_t                         uid, gid;

	t_setup();
	uid = t_user("1");
	gid = t_group("anthropic", false, NULL);
	t_key(uid, gid, h);
	S.key_ok = false;
	/* Models need the credentials; the usage probe does not. */
	t_refused(h, "models", PROTO_ACQ_INTERNAL,
	    "Internal error, please retry later");
	rep = t_info(h, "usage");
	S.key_ok = true;
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_STR(rep->balance, "1.0000000000");
	free(rep);
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_models_union), T_CASE(test_models_default),
    T_CASE(test_models_cap), T_CASE(test_usage_balance),
    T_CASE(test_usage_subscription), T_CASE(test_refusals),
    T_CASE(test_no_secret_key), T_CASE(test_zz_teardown))
