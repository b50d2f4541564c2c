/*
 * pg.c: the libpq connection pool of pg.h.
 *
 * One mutex guards the slot table; a condition variable (on the monotonic
 * clock) wakes waiters when a slot is released.  Connecting, resetting and
 * querying happen outside the lock, by the thread that holds the slot.
 */
#include "pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "log.h"

struct pg_conn {
	struct pg_pool *pool;
	PGconn         *pc;   /* NULL until first use */
	bool            busy; /* guarded by pool->mu */
	char            sqlstate[6];
	char            errmsg[PG_ERRMSG_MAX];
};

struct pg_pool {
	char           *dsn;
	int             size;
	struct pg_conn *conns;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
};

int
pg_pool_new(const char *dsn, int size, struct pg_pool **out)
{
	PQconninfoOption  *opts;
	struct pg_pool    *pool;
	pthread_condattr_t ca;
	char              *perr = NULL;
	int                i;

	if (size < 1 || size > PG_POOL_MAX || dsn == NULL ||
	    strlen(dsn) >= PG_DSN_MAX)
		return -ERR_INVAL;
	opts = PQconninfoParse(dsn, &perr);
	if (opts == NULL) {
		/* perr may quote the DSN; do not log it. */
		PQfreemem(perr);
		return -ERR_CONFIG;
	}
	PQconninfoFree(opts);
	pool = xcalloc(1, sizeof(*pool));
	pool->dsn = xstrdup(dsn);
	pool->size = size;
	pool->conns = xcalloc((size_t)size, sizeof(*pool->conns));
	for (i = 0; i < size; i++)
		pool->conns[i].pool = pool;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = pool;
	return 0;
}

void
pg_pool_free(struct pg_pool *pool)
{
	int i;

	if (pool == NULL)
		return;
	for (i = 0; i < pool->size; i++) {
		ASSERT(!pool->conns[i].busy);
		if (pool->conns[i].pc != NULL)
			PQfinish(pool->conns[i].pc);
	}
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	free(pool->conns);
	free(pool->dsn);
	free(pool);
}

static void
pg_set_error(struct pg_conn *c, const char *state, const char *msg)
{
	size_t n;

	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg ? msg : "");
	/* libpq messages end with a newline; drop it. */
	n = strlen(c->errmsg);
	while (n > 0 && (c->errmsg[n - 1] == '\n' || c->errmsg[n - 1] == ' '))
		c->errmsg[--n] = '\0';
}

/* Server notices ("relation exists, skipping") go to the debug log. */
static void
pg_notice_cb(void *arg, const char *msg)
{
	(void)arg;
	log_debug("pg.notice", LOG_STR("msg", msg));
}

/* Opens or heals the slot's connection; runs without the pool lock. */
static int
pg_conn_ensure(struct pg_conn *c)
{
	static const char *const keys[] = {
	    "connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {
	    PG_CONNECT_TIMEOUT_S, "sub2api", c->pool->dsn, NULL};

	if (c->pc != NULL && PQstatus(c->pc) == CONNECTION_OK)
		return 0;
	if (c->pc != NULL) {
		log_warn(
		    "pg.conn_reset", LOG_MSG("connection broken, resetting"));
		PQreset(c->pc);
	} else {
		/* Keys before dbname are defaults the DSN may override. */
		c->pc = PQconnectdbParams(keys, vals, 1);
	}
	if (c->pc == NULL)
		return -ERR_NOMEM;
	if (PQstatus(c->pc) != CONNECTION_OK) {
		pg_set_error(c, "08006", PQerrorMessage(c->pc));
		log_warn("pg.connect_failed", LOG_STR("msg", c->errmsg));
		PQfinish(c->pc);
		c->pc = NULL;
		return -ERR_UNAVAIL;
	}
	PQsetNoticeProcessor(c->pc, pg_notice_cb, NULL);
	return 0;
}

static void
pg_slot_put(struct pg_conn *c)
{
	struct pg_pool *pool = c->pool;

	pthread_mutex_lock(&pool->mu);
	c->busy = false;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
}

int
pg_acquire(struct pg_pool *pool, int timeout_ms, struct pg_conn **out)
{
	struct pg_conn *c = NULL;
	struct timespec dl;
	int             i, rv;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	if (timeout_ms > 0) {
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&pool->mu);
	for (;;) {
		/* Prefer an open connection over opening a new one. */
		for (i = 0; i < pool->size; i++) {
			struct pg_conn *s = &pool->conns[i];

			if (s->busy)
				continue;
			if (c == NULL || (c->pc == NULL && s->pc != NULL))
				c = s;
		}
		if (c != NULL)
			break;
		if (timeout_ms == 0) {
			pthread_mutex_unlock(&pool->mu);
			return -ERR_TIMEDOUT;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&pool->cv, &pool->mu);
		} else if (pthread_cond_timedwait(&pool->cv, &pool->mu, &dl) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&pool->mu);
			return -ERR_TIMEDOUT;
		}
	}
	c->busy = true;
	pthread_mutex_unlock(&pool->mu);

	rv = pg_conn_ensure(c);
	if (rv != 0) {
		pg_slot_put(c);
		return rv;
	}
	c->sqlstate[0] = '\0';
	c->errmsg[0] = '\0';
	*out = c;
	return 0;
}

void
pg_release(struct pg_conn *conn)
{
	if (conn == NULL)
		return;
	if (conn->pc != NULL && PQstatus(conn->pc) == CONNECTION_OK &&
	    PQtransactionStatus(conn->pc) != PQTRANS_IDLE)
		pg_rollback(conn);
	pg_slot_put(conn);
}

PGconn *
pg_conn_raw(struct pg_conn *conn)
{
	return conn->pc;
}

const char *
pg_errmsg(const struct pg_conn *conn)
{
	return conn->errmsg;
}

const char *
pg_sqlstate(const struct pg_conn *conn)
{
	return conn->sqlstate;
}

int
err_from_sqlstate(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return -ERR_UNAVAIL;
	if (strcmp(s, "23505") == 0)
		return -ERR_EXISTS;
	if (strcmp(s, "23503") == 0)
		return -ERR_NOTFOUND;
	if (strncmp(s, "23", 2) == 0 || strncmp(s, "22", 2) == 0)
		return -ERR_INVAL;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 ||
	    strcmp(s, "55P03") == 0)
		return -ERR_BUSY;
	if (strcmp(s, "57014") == 0)
		return -ERR_TIMEDOUT;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "53", 2) == 0 ||
	    strncmp(s, "57P0", 4) == 0)
		return -ERR_UNAVAIL;
	if (strcmp(s, "42501") == 0 || strncmp(s, "28", 2) == 0)
		return -ERR_FORBIDDEN;
	return -ERR_DB;
}

int
err_from_pg(const PGresult *res)
{
	if (res == NULL)
		return -ERR_UNAVAIL;
	return err_from_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}

/* Records the failure of res (may be NULL) and returns its error code. */
static int
pg_fail(struct pg_conn *c, PGresult *res)
{
	const char *state = NULL, *msg;
	int         rv;

	if (res != NULL) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (msg == NULL)
			msg = PQresultErrorMessage(res);
	} else {
		msg = PQerrorMessage(c->pc);
	}
	pg_set_error(c, state, msg);
	rv = err_from_sqlstate(state);
	if (rv == -ERR_UNAVAIL && PQstatus(c->pc) == CONNECTION_OK &&
	    res != NULL)
		rv = -ERR_DB;
	log_debug("pg.query_failed", LOG_STR("sqlstate", c->sqlstate),
	    LOG_STR("msg", c->errmsg));
	PQclear(res);
	return rv;
}

int
pg_exec(struct pg_conn *conn, const char *sql, int nparams,
    const char *const *params, PGresult **out)
{
	PGresult      *res;
	ExecStatusType st;

	if (nparams < 0 || nparams > 65535)
		return -ERR_INVAL;
	res = PQexecParams(conn->pc, sql, nparams, NULL, params, NULL, NULL, 0);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return pg_fail(conn, res);
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

int
pg_exec_script(struct pg_conn *conn, const char *script)
{
	PGresult      *res;
	ExecStatusType st;

	res = PQexec(conn->pc, script);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
	    st != PGRES_EMPTY_QUERY)
		return pg_fail(conn, res);
	PQclear(res);
	return 0;
}

int
pg_begin(struct pg_conn *conn)
{
	return pg_exec(conn, "BEGIN", 0, NULL, NULL);
}

int
pg_commit(struct pg_conn *conn)
{
	return pg_exec(conn, "COMMIT", 0, NULL, NULL);
}

void
pg_rollback(struct pg_conn *conn)
{
	PGresult *res = PQexec(conn->pc, "ROLLBACK");

	PQclear(res);
}

int
pg_ping(struct pg_pool *pool, int timeout_ms)
{
	struct pg_conn *c;
	const char     *p[1];
	char            ms[24];
	int             rv;

	rv = pg_acquire(pool, timeout_ms, &c);
	if (rv != 0)
		return rv;
	snprintf(ms, sizeof(ms), "%d", timeout_ms > 0 ? timeout_ms : 0);
	p[0] = ms;
	rv = pg_exec(
	    c, "SELECT set_config('statement_timeout', $1, false)", 1, p, NULL);
	if (rv == 0)
		rv = pg_exec(c, "SELECT 1", 0, NULL, NULL);
	/* Back to the session default (the DSN's options, or none). */
	if (PQstatus(c->pc) == CONNECTION_OK)
		PQclear(PQexec(c->pc, "RESET statement_timeout"));
	pg_release(c);
	return rv;
}

/* URI form: postgres[ql]://user:pw@host/db?password=pw&... */
static int
pg_redact_uri(const char *dsn, struct buf *b)
{
	const char *auth = strstr(dsn, "://") + 3;
	size_t      alen = strcspn(auth, "/?");
	const char *at = NULL, *colon, *q, *p;
	size_t      i;
	int         rv;

	for (i = 0; i < alen; i++) {
		if (auth[i] == '@')
			at = auth + i;
	}
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (colon != NULL) {
		rv = buf_add(b, dsn, (size_t)(colon - dsn) + 1);
		if (rv == 0)
			rv = buf_addstr(b, "***");
		p = at;
	} else {
		rv = 0;
		p = dsn;
	}
	/* Query parameters: mask the value of any password=. */
	q = strchr(p, '?');
	while (rv == 0 && q != NULL) {
		const char *key = q + 1;
		const char *amp = strchr(key, '&');

		rv = buf_add(b, p, (size_t)(key - p));
		p = key;
		if (rv == 0 && strncmp(key, "password=", 9) == 0) {
			rv = buf_addstr(b, "password=***");
			p = amp != NULL ? amp : key + strlen(key);
		}
		q = amp;
	}
	if (rv == 0)
		rv = buf_addstr(b, p);
	return rv;
}

/* key=value form: host=h password='p w' dbname=d */
static int
pg_redact_kv(const char *s, struct buf *b)
{
	int rv = 0;

	while (rv == 0 && *s != '\0') {
		const char *k = s, *v;
		size_t      klen;
		bool        secret;

		while (*s != '\0' && *s != '=' && *s != ' ')
			s++;
		klen = (size_t)(s - k);
		secret = klen == 8 && strncmp(k, "password", 8) == 0;
		while (*s == ' ')
			s++;
		if (*s != '=') {
			rv = buf_add(b, k, (size_t)(s - k));
			continue;
		}
		s++;
		while (*s == ' ')
			s++;
		v = s;
		if (*s == '\'') {
			s++;
			while (*s != '\0' && *s != '\'') {
				if (*s == '\\' && s[1] != '\0')
					s++;
				s++;
			}
			if (*s == '\'')
				s++;
		} else {
			while (*s != '\0' && *s != ' ')
				s++;
		}
		rv = buf_add(b, k, (size_t)(v - k));
		if (rv == 0)
			rv = secret ? buf_addstr(b, "***")
			            : buf_add(b, v, (size_t)(s - v));
		while (rv == 0 && *s == ' ') {
			rv = buf_addch(b, ' ');
			s++;
		}
	}
	return rv;
}

int
pg_dsn_redact(const char *dsn, char *out, size_t cap)
{
	struct buf b;
	int        rv;

	if (cap == 0)
		return -ERR_TOOBIG;
	buf_init(&b, cap);
	if (strncmp(dsn, "postgresql://", 13) == 0 ||
	    strncmp(dsn, "postgres://", 11) == 0)
		rv = pg_redact_uri(dsn, &b);
	else
		rv = pg_redact_kv(dsn, &b);
	if (rv == 0)
		memcpy(out, buf_str(&b), b.len + 1);
	buf_release(&b);
	return rv;
}
