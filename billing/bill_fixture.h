/*
 * bill_fixture.h: the billing tests' database fixture (included by
 * bill_ledger_test.c and bill_writer_test.c only).
 *
 * Each test binary makes its own database bill_ledger_<pid>, migrated
 * here, and uses the Redis key prefix bltest<pid>:; test_teardown() (the
 * last case) drops the database.  Helpers a binary does not use are
 * marked UNUSED so that -Wunused-function stays quiet.
 */
#ifndef BILL_FIXTURE_H
#define BILL_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include "bill_ledger.h"
#include "err.h"
#include "migrate.h"
#include "t.h"

static struct pg_pool     *POOL;
static struct rds_pool    *RDS;
static struct pg_conn     *DB;
static struct bill_prices *PRICES;
static char T_DBNAME[64], T_ADMIN[1024], T_DSN[1024], T_PREFIX[64];
static int  T_N;

/* ---- fixture -------------------------------------------------------- */

UNUSED static void
t_admin(const char *sql)
{
	struct pg_pool *p;
	struct pg_conn *c;

	T_OK(pg_pool_new(T_ADMIN, 1, &p));
	T_OK(pg_acquire(p, 5000, &c));
	if (pg_exec_script(c, sql) != 0)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, pg_errmsg(c));
	pg_release(c);
	pg_pool_free(p);
}

UNUSED static void
t_setup(void)
{
	const char            *dsn = getenv("SUB2API_TEST_DATABASE_URL");
	const char            *rurl = getenv("SUB2API_TEST_REDIS_URL");
	const char            *q, *slash, *end;
	char                   sql[160];
	struct migrate_report  rep;
	struct bill_prices_cfg pc = {.bundled = "billing/prices.json",
	    .file_max = BILL_PRICE_FILE_MAX,
	    .unknown = BILL_UNKNOWN_ZERO};

	if (POOL != NULL)
		return;
	if (dsn == NULL || *dsn == '\0' || rurl == NULL || *rurl == '\0')
		t_fail(__FILE__, __LINE__,
		    "SUB2API_TEST_DATABASE_URL / SUB2API_TEST_REDIS_URL not "
		    "set (run tests/run.sh)");
	snprintf(T_ADMIN, sizeof(T_ADMIN), "%s", dsn);
	snprintf(T_DBNAME, sizeof(T_DBNAME), "bill_ledger_%d", (int)getpid());
	snprintf(T_PREFIX, sizeof(T_PREFIX), "bltest%d:", (int)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", T_DBNAME);
	t_admin(sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", T_DBNAME);
	t_admin(sql);
	q = strchr(T_ADMIN, '?');
	end = q != NULL ? q : T_ADMIN + strlen(T_ADMIN);
	slash = end;
	while (slash > T_ADMIN && *slash != '/')
		slash--;
	T_ASSERT(slash > T_ADMIN && slash[-1] != '/');
	snprintf(T_DSN, sizeof(T_DSN), "%.*s/%s%s", (int)(slash - T_ADMIN),
	    T_ADMIN, T_DBNAME, q != NULL ? q : "");
	T_OK(pg_pool_new(T_DSN, 4, &POOL));
	T_OK(rds_pool_new(rurl, 2, 2000, &RDS));
	T_OK(pg_acquire(POOL, 5000, &DB));
	if (migrate_run(DB, "migrations", &rep) != 0)
		t_fail(__FILE__, __LINE__, "migrate: %s %s", rep.file, rep.msg);
	PRICES = bill_prices_new(&pc);
	T_OK(bill_prices_reload(PRICES, NULL));
}

/* Runs sql with params; the first column of the first row as text. */
UNUSED static char *
t_q(const char *sql, int n, const char *const *p)
{
	static char out[8][256];
	static int  slot;
	PGresult   *res;
	char       *o = out[slot++ % 8];

	if (pg_exec(DB, sql, n, p, &res) != 0)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, pg_errmsg(DB));
	o[0] = '\0';
	if (PQntuples(res) > 0 && PQnfields(res) > 0)
		snprintf(o, 256, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return o;
}

UNUSED static char *
t_q1(const char *sql, int64_t a)
{
	char        s[24];
	const char *p[1] = {s};

	snprintf(s, sizeof(s), "%lld", (long long)a);
	return t_q(sql, 1, p);
}

UNUSED static int64_t
t_i(const char *s)
{
	return strtoll(s, NULL, 10);
}

UNUSED static int64_t
t_user(const char *balance)
{
	char        email[64];
	const char *p[2] = {email, balance};

	snprintf(email, sizeof(email), "u%d@example.com", ++T_N);
	return t_i(t_q("INSERT INTO users (email, balance) VALUES ($1,"
	               " $2::numeric) RETURNING id",
	    2, p));
}

UNUSED static int64_t
t_group(const char *mult, bool sub)
{
	char        name[32];
	const char *p[3] = {name, mult, sub ? "subscription" : "standard"};

	snprintf(name, sizeof(name), "g%d", ++T_N);
	return t_i(t_q("INSERT INTO groups (name, rate_multiplier,"
	               " subscription_type) VALUES ($1, $2::numeric, $3)"
	               " RETURNING id",
	    3, p));
}

UNUSED static int64_t
t_key(int64_t uid, int64_t gid)
{
	char        hash[65], u[24], g[24];
	const char *p[3] = {hash, u, g};

	snprintf(hash, sizeof(hash), "%064d", ++T_N);
	snprintf(u, sizeof(u), "%lld", (long long)uid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	return t_i(t_q("INSERT INTO api_keys (key_hash, key_prefix, user_id,"
	               " group_id) VALUES ($1, 'sk-t', $2::bigint,"
	               " $3::bigint) RETURNING id",
	    3, p));
}

UNUSED static int64_t
t_account(void)
{
	return t_i(t_q("INSERT INTO accounts (name, platform, type,"
	               " credentials_enc) VALUES ('a', 'anthropic', 'apikey',"
	               " '\\x00') RETURNING id",
	    0, NULL));
}

UNUSED static int64_t
t_sub(int64_t uid, int64_t gid)
{
	char        u[24], g[24];
	const char *p[2] = {u, g};

	snprintf(u, sizeof(u), "%lld", (long long)uid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	return t_i(t_q("INSERT INTO user_subscriptions (user_id, group_id,"
	               " expires_at) VALUES ($1::bigint, $2::bigint,"
	               " now() + interval '30 days') RETURNING id",
	    2, p));
}

/* A usage event of the given ids and tokens, with a fresh request id. */
UNUSED static struct bill_ev *
t_ev(int64_t uid, int64_t kid, int64_t gid, int64_t aid, const char *inst,
    uint64_t seq)
{
	struct proto_usage_evt u;

	memset(&u, 0, sizeof(u));
	snprintf(u.instance, sizeof(u.instance), "%s", inst);
	u.seq = seq;
	snprintf(u.request_id, sizeof(u.request_id), "req-%d-%d", (int)getpid(),
	    ++T_N);
	u.user_id = uid;
	u.api_key_id = kid;
	u.group_id = gid;
	u.account_id = aid;
	snprintf(u.model, sizeof(u.model), "claude-sonnet-4-5");
	snprintf(u.platform, sizeof(u.platform), "anthropic");
	u.input_tokens = 1000;
	u.output_tokens = 500;
	u.cache_creation_tokens = 200;
	u.cache_creation_5m_tokens = 200;
	u.cache_read_tokens = 300;
	u.stream = true;
	u.duration_ms = 1234;
	u.first_token_ms = 56;
	u.status = 200;
	snprintf(u.client_ip, sizeof(u.client_ip), "127.0.0.1");
	snprintf(u.user_agent, sizeof(u.user_agent), "test/1.0");
	u.created_at_ms = now_wall_ms();
	return bill_ev_new(&u);
}

UNUSED static struct bill_ledger *
t_ledger(bool simple)
{
	struct bill_ledger    *l;
	struct bill_ledger_cfg c = {.pg = POOL,
	    .rds = RDS,
	    .prices = PRICES,
	    .redis_prefix = T_PREFIX,
	    .simple = simple,
	    .db_timeout_ms = 5000,
	    .cache_ttl_s = 60};

	bill_ledger_new(&c, &l);
	return l;
}

UNUSED static void
t_free(struct bill_ev **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		bill_ev_free(v[i]);
}

/* Last: drop the database. */
UNUSED static void
test_teardown(void)
{
	char sql[128];

	t_setup();
	pg_release(DB);
	pg_pool_free(POOL);
	rds_pool_free(RDS);
	bill_prices_free(PRICES);
	POOL = NULL;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    T_DBNAME);
	t_admin(sql);
}

#endif /* BILL_FIXTURE_H */
