/*
 * svc_deps.h: a service's database pools and their readiness checks.
 *
 * svc_deps_open() makes the PostgreSQL and/or Redis pool a service needs
 * (a NULL URL skips that one) and registers "postgres" / "redis" checks on
 * the service's health listener.  Pools connect lazily, so a database that
 * is down at start makes the service not ready, not dead; it becomes
 * ready once the database answers.  A URL that does not parse is a
 * startup failure (fatalx()).
 */
#ifndef SVC_DEPS_H
#define SVC_DEPS_H

#include "pg.h"
#include "rds.h"
#include "svc.h"

void svc_deps_open(struct svc *s, const char *pg_url, int pg_size,
    struct pg_pool **pg, const char *rds_url, int rds_size,
    struct rds_pool **rds, int timeout_ms);

/*
 * Frees both pools; NULL is fine for either.  The checks registered by
 * svc_deps_open() use the pools, so call this after svc_release().
 */
void svc_deps_close(struct pg_pool *pg, struct rds_pool *rds);

#endif /* SVC_DEPS_H */
