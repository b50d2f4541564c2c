/*
 * sched_fixture.h: the set-up, seeding and teardown that the scheduler's
 * database tests (sched_acquire_test.c, sched_info_test.c) share.
 *
 * Each test gets its own database <db_prefix>_<pid>, migrated here, and the
 * Redis key prefix <redis_prefix><pid>: so that parallel runs do not meet.
 * The real PostgreSQL and Redis come from tests/run.sh
 * (SUB2API_TEST_DATABASE_URL, SUB2API_TEST_REDIS_URL); missing variables
 * fail loudly.  Seeded credentials are sealed as sub2apictl seals them.
 *
 * Everything is static: a test binary includes this header once.  It is
 * no .c file because the Makefile links every non-test .c file of
 * scheduler/ into the service.  Helpers that only some tests call are
 * marked UNUSED so that -Wunused-function stays quiet.
 */
#ifndef SCHED_FIXTURE_H
#define SCHED_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

#include "migrate.h"
#include "sched.h"
#include "t.h"

#define T_SECRET \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* What differs between the tests that use the fixture. */
struct t_fixture {
	const char *db_prefix;    /* database <db_prefix>_<pid> */
	const char *redis_prefix; /* Redis keys <redis_prefix><pid>:... */
	const char *instance;     /* S.svc.instance */
	const char *key_tag;      /* raw keys sk-<tag>-..., prefix sk-<tag> */
	const char *base_url;     /* the Anthropic base URL, or NULL */
	int         rds_conns;    /* size of the Redis pool */
};

static struct sched            S;
static struct sched_cfg       *T_CFG;
static struct pg_conn         *DB; /* held by the test for seeding */
static char                    T_DBNAME[64], T_ADMIN_DSN[1024], T_PREFIX[64];
static bool                    T_READY;
static int                     T_SEQ;
static const struct t_fixture *T_FIX;

/* ---- setup ------------------------------------------------------------ */

static void
t_admin_exec(const char *sql)
{
	struct pg_pool *p;
	struct pg_conn *c;

	T_OK(pg_pool_new(T_ADMIN_DSN, 1, &p));
	T_OK(pg_acquire(p, 5000, &c));
	if (pg_exec_script(c, sql) != 0)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, pg_errmsg(c));
	pg_release(c);
	pg_pool_free(p);
}

/* The admin DSN with its database name replaced by name. */
static void
t_dsn_for(const char *name, char *out, size_t cap)
{
	const char *q = strchr(T_ADMIN_DSN, '?');
	const char *end = q != NULL ? q : T_ADMIN_DSN + strlen(T_ADMIN_DSN);
	const char *slash = end;

	while (slash > T_ADMIN_DSN && *slash != '/')
		slash--;
	if (slash <= T_ADMIN_DSN || slash[-1] == '/')
		t_fail(__FILE__, __LINE__, "no database in the test DSN");
	snprintf(out, cap, "%.*s/%s%s", (int)(slash - T_ADMIN_DSN), T_ADMIN_DSN,
	    name, q != NULL ? q : "");
}

/*
 * Creates and migrates the database, loads the config and starts S, once;
 * later calls return at once.  f is borrowed and must outlive the test.
 */
static void
t_fixture_setup(const struct t_fixture *f)
{
	const char           *dsn = getenv("SUB2API_TEST_DATABASE_URL");
	const char           *rurl = getenv("SUB2API_TEST_REDIS_URL");
	const char           *mdir = getenv("SUB2API_MIGRATIONS_DIR");
	char                  sql[256], db[1024];
	struct migrate_report rep;
	struct buf            errs;

	if (T_READY)
		return;
	if (dsn == NULL || *dsn == '\0')
		t_fail(__FILE__, __LINE__,
		    "SUB2API_TEST_DATABASE_URL is not set (run tests/run.sh)");
	if (rurl == NULL || *rurl == '\0')
		t_fail(__FILE__, __LINE__,
		    "SUB2API_TEST_REDIS_URL is not set (run tests/run.sh)");
	T_FIX = f;
	snprintf(T_ADMIN_DSN, sizeof(T_ADMIN_DSN), "%s", dsn);
	snprintf(
	    T_DBNAME, sizeof(T_DBNAME), "%s_%d", f->db_prefix, (int)getpid());
	snprintf(T_PREFIX, sizeof(T_PREFIX), "%s%d:", f->redis_prefix,
	    (int)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", T_DBNAME);
	t_admin_exec(sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", T_DBNAME);
	t_admin_exec(sql);
	t_dsn_for(T_DBNAME, db, sizeof(db));

	setenv("SUB2API_SCHEDULER_DATABASE_URL", db, 1);
	setenv("SUB2API_SCHEDULER_REDIS_URL", rurl, 1);
	setenv("SUB2API_SCHEDULER_SECRET_KEY", T_SECRET, 1);
	setenv("SUB2API_SCHEDULER_REDIS_PREFIX", T_PREFIX, 1);
	if (f->base_url != NULL)
		setenv("SUB2API_SCHEDULER_ANTHROPIC_BASE_URL", f->base_url, 1);
	buf_init(&errs, CFG_ERR_MAX);
	if (sched_cfg_load(NULL, &T_CFG, &errs) != 0)
		t_fail(__FILE__, __LINE__, "config: %s", buf_str(&errs));
	buf_release(&errs);

	memset(&S, 0, sizeof(S));
	S.cfg = T_CFG;
	snprintf(S.svc.instance, sizeof(S.svc.instance), "%s", f->instance);
	T_OK(pg_pool_new(T_CFG->database_url, 4, &S.pg));
	T_OK(rds_pool_new(T_CFG->redis_url, f->rds_conns, 2000, &S.rds));
	T_OK(sched_core_init(&S));
	T_ASSERT(S.key_ok);
	T_OK(pg_acquire(S.pg, 5000, &DB));
	if (migrate_run(DB, mdir != NULL ? mdir : "migrations", &rep) != 0)
		t_fail(__FILE__, __LINE__, "migrate: %s %s", rep.file, rep.msg);
	T_READY = true;
}

/* ---- seeding ---------------------------------------------------------- */

/*
 * Runs sql with params and returns the first column of the first row,
 * without telling the scheduler anything (a change nobody announced).
 */
UNUSED static int64_t
t_sql_quiet(const char *sql, int n, const char *const *params)
{
	PGresult *res;
	int64_t   v = 0;

	if (pg_exec(DB, sql, n, params, &res) != 0)
		t_fail(__FILE__, __LINE__, "%s: %s", sql, pg_errmsg(DB));
	if (PQntuples(res) > 0 && PQnfields(res) > 0)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/*
 * The same for seeding, which stands for the admin API: every change it
 * makes is announced with a config-changed event, so the account cache
 * is told (what the event handler does).
 */
static int64_t
t_sql(const char *sql, int n, const char *const *params)
{
	int64_t v = t_sql_quiet(sql, n, params);

	if (strncmp(sql, "SELECT", 6) != 0 && S.acache != NULL)
		sched_acache_invalidate(S.acache);
	return v;
}

/* Writes the pending last_used_at values now (the tick's job). */
UNUSED static void
t_flush(void)
{
	T_OK(sched_acache_flush(S.acache, DB));
}

UNUSED static int64_t
t_sql1(const char *sql, int64_t a)
{
	char        s[24];
	const char *p[1] = {s};

	snprintf(s, sizeof(s), "%lld", (long long)a);
	return t_sql(sql, 1, p);
}

/* A key of user uid in group gid (0: none); its hash into hash. */
UNUSED static int64_t
t_key(int64_t uid, int64_t gid, char *hash)
{
	char        raw[80], u[24], g[24], pfx[32];
	const char *p[4] = {hash, u, gid != 0 ? g : NULL, pfx};

	snprintf(raw, sizeof(raw), "sk-%s-%d-%d", T_FIX->key_tag, (int)getpid(),
	    ++T_SEQ);
	crypto_sha256_hex(raw, strlen(raw), hash);
	snprintf(u, sizeof(u), "%lld", (long long)uid);
	snprintf(g, sizeof(g), "%lld", (long long)gid);
	snprintf(pfx, sizeof(pfx), "sk-%s", T_FIX->key_tag);
	return t_sql("INSERT INTO api_keys (key_hash, key_prefix, user_id,"
	             " group_id) VALUES ($1, $4, $2::bigint,"
	             " $3::bigint) RETURNING id",
	    4, p);
}

/*
 * Takes the next account id and seals creds for it; returns the id and,
 * in *hex, the sealed blob as a bytea literal ("\x..."), owned by the
 * caller (free()).
 */
static int64_t
t_account_seal(const char *creds, char **hex)
{
	char     aad[96], *h;
	uint8_t *blob;
	size_t   blen;
	int64_t  aid;

	aid = t_sql("SELECT nextval(pg_get_serial_sequence('accounts', 'id'))",
	    0, NULL);
	snprintf(aad, sizeof(aad), CRYPTO_AAD_ACCOUNT_FMT, (long long)aid);
	T_OK(crypto_seal(
	    &S.key, aad, strlen(aad), creds, strlen(creds), &blob, &blen));
	h = xmalloc(2 * blen + 3);
	memcpy(h, "\\x", 2);
	T_OK(crypto_hex_encode(blob, blen, h + 2, 2 * blen + 1));
	free(blob);
	*hex = h;
	return aid;
}

/* ---- teardown --------------------------------------------------------- */

/* Deletes every Redis key of this run (SCAN over the prefix). */
UNUSED static void
t_redis_clean(void)
{
	redisReply *r, *d;
	char        cursor[32] = "0", pat[80];
	size_t      i;

	snprintf(pat, sizeof(pat), "%s*", T_PREFIX);
	do {
		T_OK(rds_cmd(
		    S.rds, &r, "SCAN %s MATCH %s COUNT 1000", cursor, pat));
		T_ASSERT(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++) {
			T_OK(rds_cmd(S.rds, &d, "DEL %s",
			    r->element[1]->element[i]->str));
			freeReplyObject(d);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
}

/* Stops S and drops the database; the next t_fixture_setup starts over. */
static void
t_fixture_teardown(void)
{
	char sql[128];

	pg_release(DB);
	sched_core_release(&S);
	pg_pool_free(S.pg);
	rds_pool_free(S.rds);
	sched_cfg_free(T_CFG);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	    T_DBNAME);
	t_admin_exec(sql);
	T_READY = false;
}

#endif /* SCHED_FIXTURE_H */
