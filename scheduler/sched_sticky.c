/*
 * sched_sticky.c: the helpers of sticky sessions.
 *
 * The binding itself is read, taken, renewed, dropped and written inside
 * the acquire script (sched_slots.c), so that two first requests of one
 * session, arriving together, land on one account: Redis runs scripts one
 * at a time, and the second sees the binding the first wrote.  What is
 * left here is naming the binding and the candidates' priorities the
 * script's load-aware choice groups by.
 *
 * The binding lives sticky_ttl (config, 1 h by default, 0 turns sticky
 * sessions off).  The reference lets an admin set the TTL in the webui
 * settings; that value will override the config key once settings reach
 * the scheduler.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "sched.h"

int
sched_sticky_key(struct sched *s, const char *platform, int64_t gid,
    const char *hash, char *out, size_t cap)
{
	static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";
	size_t            len = strlen(hash);
	int               n;

	if (len == 0 || strspn(hash, ok) != len)
		return -ERR_INVAL;
	n = snprintf(out, cap, "%ssticky:%s:%lld:%s", s->cfg->redis_prefix,
	    platform, (long long)gid, hash);
	if (n < 0 || (size_t)n >= cap)
		return -ERR_TOOBIG;
	return 0;
}

static const char sched_sticky_prio_sql[] =
    "SELECT id, priority FROM accounts WHERE id = ANY ($1::bigint[])";

int
sched_sticky_priorities(struct pg_conn *conn, struct sched_cand *c, size_t n)
{
	char        arr[2 + SCHED_BATCH_MAX * 22];
	const char *params[1] = {arr};
	PGresult   *res;
	size_t      i, j, len = 0, rows;
	int64_t     id;
	int         rv;

	ASSERT(n <= SCHED_BATCH_MAX);
	for (i = 0; i < n; i++)
		c[i].priority = 0;
	if (n < 2)
		return 0;
	arr[len++] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s%lld",
		    i > 0 ? "," : "", (long long)c[i].id);
	snprintf(arr + len, sizeof(arr) - len, "}");
	rv = pg_exec(conn, sched_sticky_prio_sql, 1, params, &res);
	if (rv != 0) {
		log_warn("sched.priority_query_failed", LOG_ERR(rv),
		    LOG_STR("detail", pg_errmsg(conn)));
		return rv;
	}
	rows = (size_t)PQntuples(res);
	for (j = 0; j < rows; j++) {
		id = strtoll(PQgetvalue(res, (int)j, 0), NULL, 10);
		for (i = 0; i < n; i++) {
			if (c[i].id == id)
				c[i].priority = (int32_t)strtol(
				    PQgetvalue(res, (int)j, 1), NULL, 10);
		}
	}
	PQclear(res);
	return 0;
}
