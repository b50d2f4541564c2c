/*
 * sched_acquire_test.c: the scheduler's hot path against the real
 * PostgreSQL and Redis that tests/run.sh starts (SUB2API_TEST_DATABASE_URL,
 * SUB2API_TEST_REDIS_URL; missing variables fail loudly).
 *
 * The test makes its own database sched_test_<pid>, migrates it, and uses
 * the Redis key prefix s2at<pid>: so that parallel runs do not meet.
 * Every request goes through sched_rep_handle() as packed envelopes, the
 * way the REP socket delivers them, and every reply is decoded.  Each case
 * seeds its own user, group, key and accounts with SQL (credentials
 * sealed as sub2apictl seals them).  The last case drops the database.
 * The set-up and the shared seeding helpers live in sched_fixture.h.
 */
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sched.h"
#include "sched_fixture.h"
#include "t.h"

#define T_FAKE_URL "http://127.0.0.1:9/fake-anthropic"

static const struct t_fixture T_FIXTURE = {
    .db_prefix = "sched_test",
    .redis_prefix = "s2at",
    .instance = "sched-test",
    .key_tag = "test",
    .base_url = T_FAKE_URL,
    .rds_conns = 4,
};

static void
t_setup(void)
{
	t_fixture_setup(&T_FIXTURE);
}

/* ---- seeding ---------------------------------------------------------- */

static int64_t
t_user(const char *balance, int conc)
{
	char        email[64], c[16];
	const char *p[3] = {email, balance, c};

	snprintf(email, sizeof(email), "u%d-%d@test", (int)getpid(), ++T_SEQ);
	snprintf(c, sizeof(c), "%d", conc);
	return t_sql("INSERT INTO users (email, balance, concurrency)"
	             " VALUES ($1, $2::numeric, $3::integer) RETURNING id",
	    3, p);
}

static int64_t
t_group(const char *platform, const char *rate, bool subscription)
{
	char        name[64];
	const char *p[4] = {
	    name, platform, rate, subscription ? "subscription" : "standard"};

	snprintf(name, sizeof(name), "g%d-%d", (int)getpid(), ++T_SEQ);
	return t_sql("INSERT INTO groups (name, platform, rate_multiplier,"
	             " subscription_type) VALUES ($1, $2, $3::numeric, $4)"
	             " RETURNING id",
	    4, p);
}

static int64_t
t_account(int64_t gid, const char *platform, const char *type,
    const char *creds, int conc, int prio)
{
	char        id[24], c[16], pr[16], g[24], *hex;
	const char *p[7];
	int64_t     aid;

	aid = t_account_seal(creds, &hex);
	snprintf(id, sizeof(id), "%lld", (long long)aid);
	snprintf(c, sizeof(c), "%d", conc);
	snprintf(pr, sizeof(pr), "%d", prio);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	p[0] = id;
	p[1] = platform;
	p[2] = type;
	p[3] = hex;
	p[4] = c;
	p[5] = pr;
	p[6] = g;
	t_sql("WITH a AS (INSERT INTO accounts (id, name, platform, type,"
	      " credentials_enc, concurrency, priority) VALUES ($1::bigint,"
	      " 'acct-' || $1, $2, $3, $4::bytea, $5::integer, $6::integer)"
	      " RETURNING id)"
	      " INSERT INTO account_groups (account_id, group_id)"
	      " SELECT id, $7::bigint FROM a",
	    7, p);
	free(hex);
	return aid;
}

/* ---- requests through the dispatcher ---------------------------------- */

/* Runs one packed request through sched_rep_handle; decodes the reply. */
static void
t_call(struct buf *req, struct proto_env *env, struct buf *reply)
{
	buf_init(reply, PROTO_MAX_MSG);
	T_OK(sched_rep_handle(&S, req->data, req->len, reply));
	T_OK(proto_env_unpack(reply->data, reply->len, env));
	buf_release(req);
}

struct t_acq {
	const char    *hash;
	const char    *model;
	const int64_t *excl;
	size_t         nexcl;
	bool           probe;
};

static struct proto_sched_acquire_rep *
t_acquire(const struct t_acq *a)
{
	struct proto_sched_acquire_req  req;
	struct proto_sched_acquire_rep *rep;
	struct proto_env                env;
	struct buf                      b, reply;
	size_t                          i;

	memset(&req, 0, sizeof(req));
	snprintf(req.request_id, sizeof(req.request_id), "req-%d", ++T_SEQ);
	snprintf(req.key_hash, sizeof(req.key_hash), "%s", a->hash);
	snprintf(req.model, sizeof(req.model), "%s",
	    a->model != NULL ? a->model : "claude-test");
	snprintf(req.client_ip, sizeof(req.client_ip), "127.0.0.1");
	for (i = 0; i < a->nexcl; i++)
		req.excluded[i] = a->excl[i];
	req.n_excluded = (uint32_t)a->nexcl;
	req.probe = a->probe;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_acquire_req_pack(&b, req.request_id, 0, &req));
	t_call(&b, &env, &reply);
	T_EQ_INT(env.type, MSG_SCHED_ACQUIRE_REP);
	T_EQ_STR(env.id, req.request_id);
	rep = xcalloc(1, sizeof(*rep));
	T_OK(proto_sched_acquire_rep_unpack(&env, rep));
	buf_release(&reply);
	if (rep->outcome == PROTO_ACQ_OK && !a->probe)
		T_ASSERT(strncmp(rep->lease_id, req.request_id,
		             strlen(req.request_id)) == 0);
	return rep;
}

/* Acquire expecting outcome; returns the account id (0 unless OK). */
static int64_t
t_expect(const struct t_acq *a, int outcome, const char *etype)
{
	struct proto_sched_acquire_rep *rep = t_acquire(a);
	int64_t                         aid = rep->account_id;
	int                             out = rep->outcome;
	char                            et[PROTO_NAME_MAX + 1];

	snprintf(et, sizeof(et), "%s", rep->err_type);
	free(rep);
	T_EQ_INT(out, outcome);
	if (etype != NULL)
		T_EQ_STR(et, etype);
	return aid;
}

static struct proto_sched_release_rep
t_release(const char *lease, int64_t aid, int status, int64_t reset)
{
	struct proto_sched_release_req req;
	struct proto_sched_release_rep rep;
	struct proto_env               env;
	struct buf                     b, reply;

	memset(&req, 0, sizeof(req));
	snprintf(req.lease_id, sizeof(req.lease_id), "%s", lease);
	req.account_id = aid;
	req.http_status = status;
	req.reset_unix = reset;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_release_req_pack(&b, "rel", 0, &req));
	t_call(&b, &env, &reply);
	T_EQ_INT(env.type, MSG_SCHED_RELEASE_REP);
	T_OK(proto_sched_release_rep_unpack(&env, &rep));
	buf_release(&reply);
	return rep;
}

static int64_t
t_zcard(const char *kind, int64_t id)
{
	redisReply *r;
	char        key[160];
	int64_t     n;

	snprintf(
	    key, sizeof(key), "%sslots:%s:%lld", T_PREFIX, kind, (long long)id);
	T_OK(rds_cmd(S.rds, &r, "ZCARD %s", key));
	n = r->integer;
	freeReplyObject(r);
	return n;
}

/* The score of lease in a slot set, 0 when absent. */
static int64_t
t_zscore(const char *kind, int64_t id, const char *lease)
{
	redisReply *r;
	char        key[160];
	int64_t     v = 0;

	snprintf(
	    key, sizeof(key), "%sslots:%s:%lld", T_PREFIX, kind, (long long)id);
	T_OK(rds_cmd(S.rds, &r, "ZSCORE %s %s", key, lease));
	if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

/* ---- cases ------------------------------------------------------------ */

static void
test_acquire_ok(void)
{
	struct proto_sched_acquire_rep *rep;
	char                            h[65];
	int64_t                         uid, gid, kid, a1, a2;

	t_setup();
	uid = t_user("10", 5);
	gid = t_group("anthropic", "1.5", false);
	kid = t_key(uid, gid, h);
	a1 = t_account(gid, "anthropic", "apikey",
	    "{\"api_key\":\"sk-up-\\\"1\",\"model_mapping\":"
	    "{\"claude-x\":\"claude-x-2025\"}}",
	    3, 10);
	a2 = t_account(gid, "anthropic", "oauth",
	    "{\"access_token\":\"tok-2\",\"refresh_token\":\"r\","
	    "\"base_url\":\"http://b.example\"}",
	    3, 20);

	rep = t_acquire(&(struct t_acq){h, "claude-x", NULL, 0});
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_INT(rep->user_id, uid);
	T_EQ_INT(rep->api_key_id, kid);
	T_EQ_INT(rep->group_id, gid);
	T_EQ_INT(rep->account_id, a1);
	T_EQ_STR(rep->platform, "anthropic");
	T_EQ_STR(rep->account_type, "apikey");
	T_EQ_STR(rep->upstream_model, "claude-x-2025");
	T_EQ_STR(rep->base_url, T_FAKE_URL);
	T_EQ_INT(rep->rate_micro, 1500000);
	T_EQ_INT(rep->billing_type, 0);
	T_EQ_INT(rep->lease_ttl_ms, 60000);
	T_EQ_INT(rep->credential_len,
	    strlen("{\"type\":\"apikey\",\"api_key\":\"sk-up-\\\"1\"}"));
	T_ASSERT(memcmp(rep->credential,
	             "{\"type\":\"apikey\",\"api_key\":\"sk-up-\\\"1\"}",
	             rep->credential_len) == 0);
	T_EQ_INT(t_zcard("user", uid), 1);
	T_EQ_INT(t_zcard("acct", a1), 1);
	/* last_used_at waits in memory for the batched write. */
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND last_used_at IS NOT NULL",
	             a1),
	    0);
	T_ASSERT(sched_acache_pending(S.acache) >= 1);
	t_flush();
	T_EQ_INT(sched_acache_pending(S.acache), 0);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND last_used_at IS NOT NULL",
	             a1),
	    1);
	free(rep);

	/* Another model: a1's mapping refuses it, a2 serves it as is. */
	rep = t_acquire(&(struct t_acq){h, "claude-other", NULL, 0});
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_INT(rep->account_id, a2);
	T_EQ_STR(rep->account_type, "oauth");
	T_EQ_STR(rep->upstream_model, "claude-other");
	T_EQ_STR(rep->base_url, "http://b.example");
	T_EQ_INT(rep->credential_len,
	    strlen("{\"type\":\"oauth\",\"access_token\":\"tok-2\"}"));
	T_ASSERT(memcmp(rep->credential,
	             "{\"type\":\"oauth\",\"access_token\":\"tok-2\"}",
	             rep->credential_len) == 0);
	T_EQ_INT(t_zcard("user", uid), 2);
	free(rep);
}

static void
test_default_group(void)
{
	char    h[65];
	int64_t uid, gid, aid;

	t_setup();
	gid = t_sql("SELECT id FROM groups WHERE name = 'default'", 0, NULL);
	T_ASSERT(gid > 0);
	uid = t_user("1", 5);
	t_key(uid, 0, h);
	aid =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	T_EQ_INT(
	    t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_OK, ""), aid);
}

static void
test_auth(void)
{
	char    h[65], h2[65];
	int64_t uid, gid, kid;

	t_setup();
	/* Unknown key, twice (the second from the negative cache). */
	crypto_sha256_hex("no such key", 11, h);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_AUTH,
	    "authentication_error");
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_AUTH,
	    "authentication_error");

	uid = t_user("10", 5);
	gid = t_group("anthropic", "1", false);
	t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	kid = t_key(uid, gid, h);
	t_sql1("UPDATE api_keys SET status = 'inactive' WHERE id = $1::bigint",
	    kid);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_AUTH,
	    "authentication_error");

	kid = t_key(uid, gid, h);
	t_sql1("UPDATE api_keys SET expires_at = now() - interval '1 s'"
	       " WHERE id = $1::bigint",
	    kid);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_FORBIDDEN,
	    "permission_error");

	/* A disabled user: cached as active until the change is announced. */
	t_key(uid, gid, h2);
	t_expect(&(struct t_acq){h2, NULL, NULL, 0}, PROTO_ACQ_OK, "");
	t_sql1(
	    "UPDATE users SET status = 'disabled' WHERE id = $1::bigint", uid);
	t_expect(&(struct t_acq){h2, NULL, NULL, 0}, PROTO_ACQ_OK, "");
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	t_expect(&(struct t_acq){h2, NULL, NULL, 0}, PROTO_ACQ_AUTH,
	    "authentication_error");

	/* A disabled group is forbidden. */
	uid = t_user("10", 5);
	gid = t_group("anthropic", "1", false);
	t_sql1(
	    "UPDATE groups SET status = 'disabled' WHERE id = $1::bigint", gid);
	t_key(uid, gid, h);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_FORBIDDEN,
	    "permission_error");
}

static void
test_balance(void)
{
	char                            h[65];
	int64_t                         uid, gid, sub;
	struct proto_sched_acquire_rep *rep;

	t_setup();
	uid = t_user("0", 5);
	gid = t_group("anthropic", "1", false);
	t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_key(uid, gid, h);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_BALANCE,
	    "billing_error");

	/* A subscription group wants an active subscription, not balance. */
	gid = t_group("anthropic", "1", true);
	t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_key(uid, gid, h);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_BALANCE,
	    "subscription_error");
	{
		char        u[24], g[24];
		const char *p[2] = {u, g};

		snprintf(u, sizeof(u), "%lld", (long long)uid);
		snprintf(g, sizeof(g), "%lld", (long long)gid);
		sub = t_sql("INSERT INTO user_subscriptions (user_id, group_id,"
		            " expires_at) VALUES ($1::bigint, $2::bigint,"
		            " now() + interval '1 day') RETURNING id",
		    2, p);
	}
	T_ASSERT(sched_keys_invalidate(S.keys, "user", uid) >= 1);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	T_EQ_INT(rep->billing_type, 1);
	T_EQ_INT(rep->subscription_id, sub);
	free(rep);
}

static void
test_no_account(void)
{
	char    h[65];
	int64_t uid, gid, a1, a2, excl[2];

	t_setup();
	uid = t_user("10", 5);
	gid = t_group("anthropic", "1", false);
	t_key(uid, gid, h);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");
	/* Wrong platform, disabled, unschedulable: none counts. */
	t_account(gid, "openai", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	a1 = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_sql1("UPDATE accounts SET schedulable = false WHERE id = $1::bigint",
	    a1);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");
	a1 = t_account(gid, "anthropic", "apikey",
	    "{\"api_key\":\"k\",\"model_mapping\":{\"m1\":\"m1-up\"}}", 3, 1);
	a2 = t_account(gid, "anthropic", "apikey",
	    "{\"api_key\":\"k\",\"model_mapping\":{\"m1\":\"m1\"}}", 3, 2);
	t_expect(&(struct t_acq){h, "m2", NULL, 0}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");
	excl[0] = a1;
	excl[1] = a2;
	T_EQ_INT(
	    t_expect(&(struct t_acq){h, "m1", excl, 1}, PROTO_ACQ_OK, ""), a2);
	t_expect(&(struct t_acq){h, "m1", excl, 2}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");
}

static void
test_account_concurrency(void)
{
	struct proto_sched_acquire_rep *r1, *r2, *r3;
	char                            h[65];
	int64_t                         uid, gid, aid;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	aid =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 2, 1);
	t_key(uid, gid, h);
	r1 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	r2 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	r3 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(r1->outcome, PROTO_ACQ_OK);
	T_EQ_INT(r2->outcome, PROTO_ACQ_OK);
	T_EQ_INT(r3->outcome, PROTO_ACQ_BUSY);
	T_EQ_STR(r3->err_type, "rate_limit_error");
	T_ASSERT(strstr(r3->err_message, "Concurrency limit exceeded") != NULL);
	T_EQ_STR(r3->lease_id, "");
	T_EQ_INT(t_zcard("acct", aid), 2);
	/* The refused acquire held no user slot either. */
	T_EQ_INT(t_zcard("user", uid), 2);
	T_ASSERT(t_release(r1->lease_id, aid, 200, 0).released);
	T_EQ_INT(t_zcard("acct", aid), 1);
	free(r3);
	r3 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(r3->outcome, PROTO_ACQ_OK);
	T_EQ_INT(r3->account_id, aid);
	free(r1);
	free(r2);
	free(r3);
}

static void
test_user_concurrency(void)
{
	struct proto_sched_acquire_rep *r1, *r2;
	char                            h[65];
	int64_t                         uid, gid, a1;

	t_setup();
	uid = t_user("10", 1);
	gid = t_group("anthropic", "1", false);
	a1 = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 5, 1);
	t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 5, 2);
	t_key(uid, gid, h);
	r1 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	r2 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(r1->outcome, PROTO_ACQ_OK);
	T_EQ_INT(r2->outcome, PROTO_ACQ_BUSY);
	T_ASSERT(strstr(r2->err_message, "for user") != NULL);
	T_EQ_INT(t_zcard("acct", a1), 1);
	T_ASSERT(t_release(r1->lease_id, a1, 200, 0).released);
	free(r2);
	r2 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(r2->outcome, PROTO_ACQ_OK);
	free(r1);
	free(r2);
}

/*
 * A probe (count_tokens) passes the key's checks and gets an account, but
 * holds no slot: a user and an account at their limits still get one,
 * and the user's next real request is refused exactly as before.
 */
static void
test_probe(void)
{
	struct proto_sched_acquire_rep *r1, *p;
	char                            h[65], hp[65], ids[2][24];
	int64_t uid, poor, gid, a1, a2, excl[1], both[2];

	t_setup();
	uid = t_user("10", 1);
	gid = t_group("anthropic", "1", false);
	a1 = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 1, 1);
	a2 = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 1, 2);
	t_key(uid, gid, h);
	r1 = t_acquire(&(struct t_acq){h, NULL, NULL, 0, false});
	T_EQ_INT(r1->outcome, PROTO_ACQ_OK);
	T_EQ_INT(r1->account_id, a1);

	p = t_acquire(&(struct t_acq){h, NULL, NULL, 0, true});
	T_EQ_INT(p->outcome, PROTO_ACQ_OK);
	T_EQ_INT(p->account_id, a1); /* the best priority, though full */
	T_EQ_STR(p->lease_id, "");
	T_EQ_INT(p->lease_ttl_ms, 0);
	T_ASSERT(p->credential_len > 0);
	T_EQ_INT(p->user_id, uid);
	free(p);
	T_EQ_INT(t_zcard("user", uid), 1);
	T_EQ_INT(t_zcard("acct", a1), 1);
	T_EQ_INT(t_zcard("acct", a2), 0);
	T_EQ_INT(t_zcard("wait:user", uid), 0);

	/* A failover's exclusions apply. */
	excl[0] = a1;
	p = t_acquire(&(struct t_acq){h, NULL, excl, 1, true});
	T_EQ_INT(p->outcome, PROTO_ACQ_OK);
	T_EQ_INT(p->account_id, a2);
	free(p);
	T_EQ_INT(t_zcard("acct", a2), 0);

	/* The user's real requests see the same limits as before. */
	t_expect(&(struct t_acq){h, NULL, NULL, 0, false}, PROTO_ACQ_BUSY,
	    "rate_limit_error");
	T_ASSERT(t_release(r1->lease_id, a1, 200, 0).released);
	free(r1);
	r1 = t_acquire(&(struct t_acq){h, NULL, NULL, 0, false});
	T_EQ_INT(r1->outcome, PROTO_ACQ_OK);
	T_ASSERT(t_release(r1->lease_id, r1->account_id, 200, 0).released);
	free(r1);

	/* The key's checks still refuse, and no candidate is no account. */
	poor = t_user("0", 1);
	t_key(poor, gid, hp);
	t_expect(&(struct t_acq){hp, NULL, NULL, 0, true}, PROTO_ACQ_BALANCE,
	    "billing_error");
	both[0] = a1;
	both[1] = a2;
	t_expect(&(struct t_acq){h, NULL, both, 2, true}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");

	/* The user's own multiplier in the group is the one reported. */
	snprintf(ids[0], sizeof(ids[0]), "%lld", (long long)uid);
	snprintf(ids[1], sizeof(ids[1]), "%lld", (long long)gid);
	T_EQ_INT(t_sql("INSERT INTO user_group_rate_multipliers (user_id,"
	               " group_id, rate_multiplier) VALUES ($1::bigint,"
	               " $2::bigint, 0.25) RETURNING user_id",
	             2, (const char *[]){ids[0], ids[1]}),
	    uid);
	t_key(uid, gid, h); /* a new key: not in the key cache */
	p = t_acquire(&(struct t_acq){h, NULL, NULL, 0, true});
	T_EQ_INT(p->outcome, PROTO_ACQ_OK);
	T_EQ_INT(p->rate_micro, 250000);
	free(p);
}

static void
test_expired_reclaimed(void)
{
	redisReply *r;
	char        h[65], key[160];
	int64_t     uid, gid, aid;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	aid =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 1, 1);
	t_key(uid, gid, h);
	/* A lease whose holder died: its expiry (score) is in the past. */
	snprintf(
	    key, sizeof(key), "%sslots:acct:%lld", T_PREFIX, (long long)aid);
	T_OK(rds_cmd(S.rds, &r, "ZADD %s 1000 dead-lease", key));
	freeReplyObject(r);
	snprintf(
	    key, sizeof(key), "%sslots:user:%lld", T_PREFIX, (long long)uid);
	T_OK(rds_cmd(S.rds, &r, "ZADD %s 1000 dead-lease", key));
	freeReplyObject(r);
	T_EQ_INT(
	    t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_OK, ""), aid);
	T_EQ_INT(t_zscore("acct", aid, "dead-lease"), 0);
	T_EQ_INT(t_zscore("user", uid, "dead-lease"), 0);
	T_EQ_INT(t_zcard("acct", aid), 1);
}

static void
test_renew(void)
{
	struct proto_sched_acquire_rep *rep;
	struct proto_sched_renew_req    req;
	struct proto_sched_renew_rep    rr;
	struct proto_env                env;
	struct buf                      b, reply;
	char                            h[65];
	int64_t                         uid, gid, aid, s1, s2;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	aid =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_key(uid, gid, h);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->outcome, PROTO_ACQ_OK);
	s1 = t_zscore("acct", aid, rep->lease_id);
	T_ASSERT(s1 > 0);
	T_EQ_INT(t_zscore("user", uid, rep->lease_id), s1);
	usleep(30000);

	memset(&req, 0, sizeof(req));
	req.n_leases = 2;
	snprintf(req.leases[0], sizeof(req.leases[0]), "%s", rep->lease_id);
	snprintf(req.leases[1], sizeof(req.leases[1]), "never-held");
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_renew_req_pack(&b, "renew-1", 0, &req));
	t_call(&b, &env, &reply);
	T_EQ_INT(env.type, MSG_SCHED_RENEW_REP);
	T_OK(proto_sched_renew_rep_unpack(&env, &rr));
	buf_release(&reply);
	T_EQ_INT(rr.n_renewed, 1);
	T_EQ_STR(rr.renewed[0], rep->lease_id);
	T_EQ_INT(rr.n_lost, 1);
	T_EQ_STR(rr.lost[0], "never-held");
	T_EQ_INT(rr.ttl_ms, 60000);
	s2 = t_zscore("acct", aid, rep->lease_id);
	T_ASSERT(s2 >= s1 + 20);
	T_EQ_INT(t_zscore("user", uid, rep->lease_id), s2);

	/* After release the lease is lost. */
	T_ASSERT(t_release(rep->lease_id, aid, 200, 0).released);
	req.n_leases = 1;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_sched_renew_req_pack(&b, "renew-2", 0, &req));
	t_call(&b, &env, &reply);
	T_OK(proto_sched_renew_rep_unpack(&env, &rr));
	buf_release(&reply);
	T_EQ_INT(rr.n_renewed, 0);
	T_EQ_INT(rr.n_lost, 1);
	free(rep);
}

static void
test_release_idempotent(void)
{
	struct proto_sched_acquire_rep *r1, *r2;
	struct proto_sched_release_rep  rel;
	char                            h[65];
	int64_t                         uid, gid, aid;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	aid =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_key(uid, gid, h);
	r1 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	r2 = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(t_zcard("acct", aid), 2);
	rel = t_release(r1->lease_id, aid, 200, 0);
	T_ASSERT(rel.released);
	T_EQ_STR(rel.state, "ok");
	T_EQ_INT(t_zcard("acct", aid), 1);
	T_EQ_INT(t_zcard("user", uid), 1);
	rel = t_release(r1->lease_id, aid, 200, 0);
	T_ASSERT(rel.released);
	T_EQ_INT(t_zcard("acct", aid), 1);
	T_EQ_INT(t_zcard("user", uid), 1);
	T_ASSERT(t_zscore("acct", aid, r2->lease_id) > 0);
	free(r1);
	free(r2);
}

static void
test_rate_limited(void)
{
	struct proto_sched_acquire_rep *rep;
	struct proto_sched_release_rep  rel;
	char                            h[65];
	int64_t uid, gid, a1, a2, reset = now_wall_ms() / 1000 + 30;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	a1 =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 10);
	a2 =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 20);
	t_key(uid, gid, h);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, a1);
	rel = t_release(rep->lease_id, a1, 429, reset);
	T_ASSERT(rel.released);
	T_EQ_STR(rel.state, "rate_limited");
	free(rep);
	T_EQ_INT(t_sql1("SELECT extract(epoch FROM rate_limit_reset_at)::bigint"
	                " FROM accounts WHERE id = $1::bigint",
	             a1),
	    reset);
	/* Skipped until then. */
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, a2);
	T_ASSERT(t_release(rep->lease_id, a2, 200, 0).released);
	free(rep);
	/* Once the reset has passed it is schedulable again. */
	t_sql1("UPDATE accounts SET rate_limit_reset_at = now() - interval"
	       " '1 s' WHERE id = $1::bigint",
	    a1);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, a1);
	/* Without a reset time: the configured 5 minutes. */
	rel = t_release(rep->lease_id, a1, 429, 0);
	T_EQ_STR(rel.state, "rate_limited");
	T_EQ_INT(
	    t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	           " AND rate_limit_reset_at BETWEEN"
	           " now() + interval '290 s' AND now() + interval '310 s'",
	        a1),
	    1);
	free(rep);
}

static void
test_overload_and_error(void)
{
	struct proto_sched_acquire_rep *rep;
	struct proto_sched_release_rep  rel;
	char                            h[65];
	int64_t                         uid, gid, a1, a2;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	a1 =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 10);
	a2 =
	    t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 20);
	t_key(uid, gid, h);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, a1);
	rel = t_release(rep->lease_id, a1, 529, 0);
	T_EQ_STR(rel.state, "overloaded");
	free(rep);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND overload_until BETWEEN now() + interval '590 s'"
	                " AND now() + interval '610 s'",
	             a1),
	    1);
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, a2);
	rel = t_release(rep->lease_id, a2, 401, 0);
	T_EQ_STR(rel.state, "error");
	free(rep);
	T_EQ_INT(t_sql1("SELECT count(*) FROM accounts WHERE id = $1::bigint"
	                " AND status = 'error'"
	                " AND error_message = 'Authentication failed (401)'",
	             a2),
	    1);
	t_expect(&(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_NO_ACCOUNT,
	    "api_error");
}

static void
test_order(void)
{
	struct proto_sched_acquire_rep *rep;
	char                            h[65];
	int64_t                         uid, gid, a, b, c, excl[1];

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	a = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"a\"}", 3, 10);
	b = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"b\"}", 3, 10);
	c = t_account(gid, "anthropic", "apikey", "{\"api_key\":\"c\"}", 3, 5);
	t_key(uid, gid, h);
	excl[0] = c;
	/* Lowest priority number first. */
	rep = t_acquire(&(struct t_acq){h, NULL, NULL, 0});
	T_EQ_INT(rep->account_id, c);
	T_ASSERT(t_release(rep->lease_id, c, 200, 0).released);
	free(rep);
	/* Equal priority: never used first (then by id), then LRU. */
	rep = t_acquire(&(struct t_acq){h, NULL, excl, 1});
	T_EQ_INT(rep->account_id, a);
	T_ASSERT(t_release(rep->lease_id, a, 200, 0).released);
	free(rep);
	rep = t_acquire(&(struct t_acq){h, NULL, excl, 1});
	T_EQ_INT(rep->account_id, b);
	T_ASSERT(t_release(rep->lease_id, b, 200, 0).released);
	free(rep);
	rep = t_acquire(&(struct t_acq){h, NULL, excl, 1});
	T_EQ_INT(rep->account_id, a);
	T_ASSERT(t_release(rep->lease_id, a, 200, 0).released);
	free(rep);
}

static void
test_no_secret_and_malformed(void)
{
	struct proto_env env;
	struct buf       b, reply, detail;
	char             h[65];
	int64_t          uid, gid;

	t_setup();
	uid = t_user("10", 10);
	gid = t_group("anthropic", "1", false);
	t_account(gid, "anthropic", "apikey", "{\"api_key\":\"k\"}", 3, 1);
	t_key(uid, gid, h);
	S.key_ok = false;
	t_expect(
	    &(struct t_acq){h, NULL, NULL, 0}, PROTO_ACQ_INTERNAL, "api_error");
	buf_init(&detail, 4096);
	T_EQ_INT(sched_core_check_cb(&S, 100, &detail), -ERR_CONFIG);
	T_ASSERT(strstr(buf_str(&detail), "secret key") != NULL);
	buf_release(&detail);
	S.key_ok = true;
	buf_init(&detail, 4096);
	T_OK(sched_core_check_cb(&S, 100, &detail));
	buf_release(&detail);

	/* Garbage gets an ERROR_REP, never a crash. */
	buf_init(&b, 64);
	T_OK(buf_addstr(&b, "not msgpack"));
	t_call(&b, &env, &reply);
	T_EQ_INT(env.type, MSG_ERROR_REP);
	buf_release(&reply);
}

static void
test_zz_teardown(void)
{
	t_setup();
	t_redis_clean();
	t_fixture_teardown();
}

T_MAIN(T_CASE(test_acquire_ok), T_CASE(test_default_group), T_CASE(test_auth),
    T_CASE(test_balance), T_CASE(test_no_account),
    T_CASE(test_account_concurrency), T_CASE(test_user_concurrency),
    T_CASE(test_probe), T_CASE(test_expired_reclaimed), T_CASE(test_renew),
    T_CASE(test_release_idempotent), T_CASE(test_rate_limited),
    T_CASE(test_overload_and_error), T_CASE(test_order),
    T_CASE(test_no_secret_and_malformed), T_CASE(test_zz_teardown))
