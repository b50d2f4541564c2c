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

#define SCHED_CFG(X)                                                       \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",      \
	    CFG_F_SHARED, "Log level: error, warn, info or debug.")        \
	X(state_dir, CFG_STR, "var/run", 0, 0, NULL, CFG_F_SHARED,         \
	    "Directory for ipc:// sockets and local state.")               \
	X(health_addr, CFG_ADDR, "127.0.0.1:9102", 0, 0, NULL, 0,          \
	    "Health listener (/healthz, /readyz, /metrics) host:port.")    \
	X(drain_timeout, CFG_DUR, "3s", 0, 60000, NULL, 0,                 \
	    "Budget for in-flight requests after SIGTERM.")                \
	X(sched_addr, CFG_NNG, ADDR_SCHED, 0, 0, NULL, 0,                  \
	    "REP address the gateways dial.")                              \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0,          \
	    "SUB address webui dials to announce configuration changes.")  \
	X(workers, CFG_INT, "64", 1, 1024, NULL, 0,                        \
	    "Concurrent requests in service (REP contexts).")              \
	X(database_url, CFG_SECRET,                                        \
	    "postgresql://postgres@127.0.0.1:54329/sub2api", 0, 0, NULL,   \
	    CFG_F_SHARED, "PostgreSQL connection URL.")                    \
	X(db_pool, CFG_INT, "8", 1, 256, NULL, 0,                          \
	    "PostgreSQL connections at most.")                             \
	X(redis_url, CFG_SECRET, "redis://127.0.0.1:63799", 0, 0, NULL,    \
	    CFG_F_SHARED, "Redis URL redis://[:password@]host:port[/db].") \
	X(redis_pool, CFG_INT, "16", 1, 1024, NULL, 0,                     \
	    "Redis connections at most.")                                  \
	X(dep_timeout, CFG_DUR, "1s", 50, 30000, NULL, 0,                  \
	    "Budget of one readiness probe of PostgreSQL or Redis.")

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
