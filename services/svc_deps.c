/*
 * svc_deps.c: database pools with readiness checks (see svc_deps.h).
 */
#include "svc_deps.h"

#include "err.h"
#include "log.h"

static int
svc_check_pg(void *arg, int timeout_ms, struct buf *detail)
{
	int rv = pg_ping(arg, timeout_ms);

	if (rv != 0 && buf_addstr(detail, err_str(rv)) != 0)
		buf_reset(detail);
	return rv;
}

static int
svc_check_rds(void *arg, int timeout_ms, struct buf *detail)
{
	int rv = rds_ping(arg, timeout_ms);

	if (rv != 0 && buf_addstr(detail, err_str(rv)) != 0)
		buf_reset(detail);
	return rv;
}

void
svc_deps_open(struct svc *s, const char *pg_url, int pg_size,
    struct pg_pool **pg, const char *rds_url, int rds_size,
    struct rds_pool **rds, int timeout_ms)
{
	int rv;

	if (pg_url != NULL) {
		rv = pg_pool_new(pg_url, pg_size, pg);
		if (rv != 0)
			fatalx("svc.database_url_invalid", LOG_ERR(rv));
		rv = http_add_check(
		    s->health, "postgres", svc_check_pg, *pg, timeout_ms);
		if (rv != 0)
			fatalx("svc.check_failed", LOG_ERR(rv));
	}
	if (rds_url != NULL) {
		rv = rds_pool_new(rds_url, rds_size, timeout_ms, rds);
		if (rv != 0)
			fatalx("svc.redis_url_invalid", LOG_ERR(rv));
		rv = http_add_check(
		    s->health, "redis", svc_check_rds, *rds, timeout_ms);
		if (rv != 0)
			fatalx("svc.check_failed", LOG_ERR(rv));
	}
}

void
svc_deps_close(struct pg_pool *pg, struct rds_pool *rds)
{
	pg_pool_free(pg);
	rds_pool_free(rds);
}
