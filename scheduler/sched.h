/*
 * sched.h: the scheduler service (private to scheduler/).
 *
 * The scheduler answers the gateways' requests (REP): which account serves
 * a request, slots, sticky sessions, account state.  It is stateless; its
 * shared state lives in Redis and its configuration in PostgreSQL.  It
 * also listens (SUB) for config-changed events from webui.
 *
 * This first cut answers PING_REQ and refuses every other type with an
 * ERROR_REP (ERR_PROTO), keeps the PostgreSQL and Redis pools, and
 * reports both in /readyz.
 */
#ifndef SCHED_H
#define SCHED_H

#include "cfg.h"
#include "metrics.h"
#include "nngx.h"
#include "pg.h"
#include "rds.h"
#include "svc.h"
#include "topics.h"

#define SCHED_CFG(X)                                                      \
	SVC_CFG_BASE(X, "127.0.0.1:9102")                                 \
	SVC_CFG_PG(X, "8")                                                \
	SVC_CFG_REDIS(X, "16")                                            \
	SVC_CFG_DEPS(X)                                                   \
	X(sched_addr, CFG_NNG, ADDR_SCHED, 0, 0, NULL, 0,                 \
	    "REP address the gateways dial.")                             \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0,         \
	    "SUB address webui dials to announce configuration changes.") \
	X(workers, CFG_INT, "64", 1, 1024, NULL, 0,                       \
	    "Concurrent requests in service (REP contexts).")

CFG_DECLARE(sched_cfg, SCHED_CFG)

struct sched {
	struct svc              svc;
	const struct sched_cfg *cfg;
	struct nngx_rep        *rep;
	struct nngx_sub        *cfg_sub;
	struct pg_pool         *pg;
	struct rds_pool        *rds;
	struct met_family      *requests; /* {type, result} */
	struct met_counter     *cfg_events;
};

/* sched_rep.c: the request dispatcher. */
int sched_rep_handle(void *arg, const void *req, size_t len, struct buf *reply);

#endif /* SCHED_H */
