/*
 * pg.h: a small thread-safe PostgreSQL connection pool over libpq.
 *
 * A pool holds up to `size` connections, opened lazily.  A thread takes
 * one with pg_acquire() (waiting up to a timeout when all are busy), uses
 * it alone, and gives it back with pg_release().  A PGconn is never shared
 * between threads while acquired.  Connections found broken on acquire are
 * reset (PQreset), so a database restart heals without restarting us; a
 * connection released inside a transaction is rolled back first.
 *
 * Queries are parameterized only: pg_exec() sends SQL text that is a
 * constant of the program plus parameters as separate values
 * (PQexecParams), never SQL built from input.  pg_exec_script() runs a
 * trusted multi-statement script (migration files) and nothing else.
 *
 * Every connection gets connect_timeout (PG_CONNECT_TIMEOUT_S) unless the
 * DSN sets its own.  DSNs may carry passwords: log them only through
 * pg_dsn_redact().
 */
#ifndef PG_H
#define PG_H

#include <libpq-fe.h>

#include "compat.h"

#define PG_CONNECT_TIMEOUT_S "5"
#define PG_POOL_MAX          256
#define PG_DSN_MAX           4096
#define PG_ERRMSG_MAX        512

struct pg_pool;
struct pg_conn;

/*
 * Creates a pool of at most size (1..PG_POOL_MAX) connections for dsn
 * (borrowed; a URI or key=value string).  No connection is opened yet;
 * the DSN is only parsed (-ERR_CONFIG when it does not parse, -ERR_INVAL
 * for a bad size).  *out receives the owned pool.
 */
int pg_pool_new(const char *dsn, int size, struct pg_pool **out) WARN_UNUSED;

/*
 * Closes every connection and frees the pool.  All connections must have
 * been released.  pg_pool_free(NULL) is a no-op.
 */
void pg_pool_free(struct pg_pool *pool);

/*
 * Takes a connection, waiting at most timeout_ms (< 0: forever) for one to
 * be free, connecting or resetting it as needed.  *out is borrowed from the
 * pool until pg_release().  -ERR_TIMEDOUT when none frees up in time,
 * -ERR_UNAVAIL when the server cannot be reached (the slot stays usable).
 */
int pg_acquire(
    struct pg_pool *pool, int timeout_ms, struct pg_conn **out) WARN_UNUSED;

/* Gives the connection back; rolls back an open transaction.  NULL ok. */
void pg_release(struct pg_conn *conn);

/*
 * Runs one parameterized statement: sql (a program constant) with nparams
 * text parameters (params[i] may be NULL for SQL NULL).  On success *out,
 * when not NULL, receives the owned result (PQclear() it); a result that
 * is not wanted is cleared here.  On failure nothing is written to *out,
 * the SQLSTATE and message are kept on the connection (pg_errmsg(),
 * pg_sqlstate()) and the mapped error of err_from_sqlstate() is returned.
 */
int pg_exec(struct pg_conn *conn, const char *sql, int nparams,
    const char *const *params, PGresult **out) WARN_UNUSED;

/*
 * Runs a trusted multi-statement script with the simple query protocol.
 * Only for migration files shipped with the program.
 */
int pg_exec_script(struct pg_conn *conn, const char *script) WARN_UNUSED;

/* Transaction helpers: BEGIN, COMMIT, ROLLBACK. */
int  pg_begin(struct pg_conn *conn) WARN_UNUSED;
int  pg_commit(struct pg_conn *conn) WARN_UNUSED;
void pg_rollback(struct pg_conn *conn);

/*
 * The last failure on conn: message (primary text only, no DETAIL, which
 * may echo row values) and SQLSTATE ("" when the failure had none).
 * Borrowed; valid until the next call on conn.
 */
const char *pg_errmsg(const struct pg_conn *conn);
const char *pg_sqlstate(const struct pg_conn *conn);

/* The underlying PGconn, borrowed while conn is acquired. */
PGconn *pg_conn_raw(struct pg_conn *conn);

/*
 * Readiness check: acquires a connection within timeout_ms and runs
 * SELECT 1 under a statement_timeout of timeout_ms.  0 when healthy.
 */
int pg_ping(struct pg_pool *pool, int timeout_ms) WARN_UNUSED;

/*
 * Maps a SQLSTATE to an error code: 23505 unique violation -> -ERR_EXISTS,
 * 23503 foreign key -> -ERR_NOTFOUND, other 23xxx and 22xxx -> -ERR_INVAL,
 * 40001/40P01/55P03 -> -ERR_BUSY, 57014 -> -ERR_TIMEDOUT, 08xxx, 53xxx,
 * 57P0x -> -ERR_UNAVAIL, 42501/28xxx -> -ERR_FORBIDDEN, NULL/"" with a
 * broken connection is -ERR_UNAVAIL; anything else -ERR_DB.
 * err_from_pg() reads the SQLSTATE of a result (NULL result: -ERR_UNAVAIL).
 */
int err_from_sqlstate(const char *sqlstate);
int err_from_pg(const PGresult *res);

/*
 * Copies dsn into out (cap bytes, NUL-terminated) with any password
 * replaced by "***", in both URI (user:pw@host, ?password=) and key=value
 * (password=...) forms.  -ERR_TOOBIG when it does not fit.
 */
int pg_dsn_redact(const char *dsn, char *out, size_t cap) WARN_UNUSED;

#endif /* PG_H */
