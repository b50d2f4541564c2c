/*
 * pg_test.c: DSN redaction, SQLSTATE mapping, and (when
 * SUB2API_TEST_DATABASE_URL names a live server) the pool: acquire
 * timeout, parameterized queries, error mapping, ping, rollback on release.
 */
#include <stdlib.h>

#include "err.h"
#include "pg.h"
#include "t.h"

static void
redact_eq(const char *in, const char *want)
{
	char out[256];

	T_OK(pg_dsn_redact(in, out, sizeof(out)));
	T_EQ_STR(out, want);
}

static void
test_pg_dsn_redact(void)
{
	char small[8];

	redact_eq("postgresql://u:s3cret@db:5432/app?sslmode=disable",
	    "postgresql://u:***@db:5432/app?sslmode=disable");
	redact_eq("postgres://u@db/app", "postgres://u@db/app");
	redact_eq("postgresql://db/app?user=u&password=pw&connect_timeout=3",
	    "postgresql://db/app?user=u&password=***&connect_timeout=3");
	redact_eq("postgresql://u:p%40ss@h/d?password=x",
	    "postgresql://u:***@h/d?password=***");
	redact_eq(
	    "host=h password=secret dbname=d", "host=h password=*** dbname=d");
	redact_eq("host=h password = 'a b\\' c' user=u",
	    "host=h password = *** user=u");
	redact_eq("dbname=d", "dbname=d");
	T_EQ_INT(pg_dsn_redact("host=averylonghostname", small, sizeof(small)),
	    -ERR_TOOBIG);
}

static void
test_pg_sqlstate_map(void)
{
	T_EQ_INT(err_from_sqlstate("23505"), -ERR_EXISTS);
	T_EQ_INT(err_from_sqlstate("23503"), -ERR_NOTFOUND);
	T_EQ_INT(err_from_sqlstate("23514"), -ERR_INVAL);
	T_EQ_INT(err_from_sqlstate("22P02"), -ERR_INVAL);
	T_EQ_INT(err_from_sqlstate("40P01"), -ERR_BUSY);
	T_EQ_INT(err_from_sqlstate("57014"), -ERR_TIMEDOUT);
	T_EQ_INT(err_from_sqlstate("08006"), -ERR_UNAVAIL);
	T_EQ_INT(err_from_sqlstate("42P01"), -ERR_DB);
	T_EQ_INT(err_from_pg(NULL), -ERR_UNAVAIL);
}

static void
test_pg_pool_bad_args(void)
{
	struct pg_pool *p = NULL;

	T_EQ_INT(pg_pool_new("host=x", 0, &p), -ERR_INVAL);
	T_EQ_INT(pg_pool_new("postgresql://[bad", 1, &p), -ERR_CONFIG);
	T_EQ_INT(pg_pool_new("nokey", 1, &p), -ERR_CONFIG);
	pg_pool_free(NULL);
}

static void
test_pg_unreachable(void)
{
	struct pg_pool *p;
	struct pg_conn *c;

	T_OK(pg_pool_new(
	    "postgresql://u@127.0.0.1:1/x?connect_timeout=2", 1, &p));
	T_EQ_INT(pg_acquire(p, 1000, &c), -ERR_UNAVAIL);
	/* The slot was given back: the next attempt fails the same way. */
	T_EQ_INT(pg_acquire(p, 0, &c), -ERR_UNAVAIL);
	T_EQ_INT(pg_ping(p, 500), -ERR_UNAVAIL);
	pg_pool_free(p);
}

static void
test_pg_live(void)
{
	const char     *dsn = getenv("SUB2API_TEST_DATABASE_URL");
	const char     *params[2];
	struct pg_pool *p;
	struct pg_conn *a, *b;
	PGresult       *res;

	if (dsn == NULL || *dsn == '\0')
		T_SKIP("SUB2API_TEST_DATABASE_URL not set");
	T_OK(pg_pool_new(dsn, 1, &p));
	T_OK(pg_ping(p, 2000));
	T_OK(pg_acquire(p, 1000, &a));
	T_EQ_INT(pg_acquire(p, 50, &b), -ERR_TIMEDOUT);
	T_OK(pg_exec(
	    a, "CREATE TEMP TABLE pg_t (k text PRIMARY KEY)", 0, NULL, NULL));
	params[0] = "x'); DROP TABLE pg_t; --";
	T_OK(pg_exec(a, "INSERT INTO pg_t VALUES ($1)", 1, params, NULL));
	T_EQ_INT(pg_exec(a, "INSERT INTO pg_t VALUES ($1)", 1, params, NULL),
	    -ERR_EXISTS);
	T_EQ_STR(pg_sqlstate(a), "23505");
	T_ASSERT(strstr(pg_errmsg(a), "duplicate key") != NULL);
	params[0] = NULL;
	T_EQ_INT(pg_exec(a, "INSERT INTO pg_t VALUES ($1)", 1, params, NULL),
	    -ERR_INVAL);
	params[0] = "2";
	params[1] = "40";
	T_OK(pg_exec(a, "SELECT $1::int + $2::int", 2, params, &res));
	T_EQ_STR(PQgetvalue(res, 0, 0), "42");
	PQclear(res);
	/* Released inside a transaction: rolled back. */
	T_OK(pg_begin(a));
	params[0] = "in-tx";
	T_OK(pg_exec(a, "INSERT INTO pg_t VALUES ($1)", 1, params, NULL));
	pg_release(a);
	T_OK(pg_acquire(p, 1000, &b));
	T_OK(pg_exec(b, "SELECT count(*) FROM pg_t", 0, NULL, &res));
	T_EQ_STR(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	pg_release(b);
	pg_pool_free(p);
}

T_MAIN(T_CASE(test_pg_dsn_redact), T_CASE(test_pg_sqlstate_map),
    T_CASE(test_pg_pool_bad_args), T_CASE(test_pg_unreachable),
    T_CASE(test_pg_live))
