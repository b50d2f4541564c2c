/*
 * bill.h: the billing service (private to billing/).
 *
 * Billing listens (SUB) for the gateways' usage events, prices them and
 * moves money in PostgreSQL, keeping the Redis billing cache the
 * scheduler reads.  The lossless path (spool, per-instance cursor, replay)
 * and pricing arrive with the billing issue.
 *
 * This first cut receives events: heartbeats go through an hb_rx (so a
 * lost one shows in /metrics), usage events are counted, and both pools
 * are opened and reported in /readyz.
 */
#ifndef BILL_H
#define BILL_H

#include "cfg.h"
#include "hb.h"
#include "nngx.h"
#include "pg.h"
#include "rds.h"
#include "svc.h"
#include "topics.h"

#define BILL_CFG(X)                                                        \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",      \
	    CFG_F_SHARED, "Log level: error, warn, info or debug.")        \
	X(state_dir, CFG_STR, "var/run", 0, 0, NULL, CFG_F_SHARED,         \
	    "Directory for ipc:// sockets and local state.")               \
	X(health_addr, CFG_ADDR, "127.0.0.1:9103", 0, 0, NULL, 0,          \
	    "Health listener (/healthz, /readyz, /metrics) host:port.")    \
	X(drain_timeout, CFG_DUR, "3s", 0, 60000, NULL, 0,                 \
	    "Budget for committing received events after SIGTERM.")        \
	X(events_addr, CFG_NNG, ADDR_BILLING_EVENTS, 0, 0, NULL, 0,        \
	    "SUB address the gateways publish usage events to.")           \
	X(recv_queue, CFG_INT, "8192", 16, 1048576, NULL, 0,               \
	    "Messages queued in the subscriber before NNG drops.")         \
	X(database_url, CFG_SECRET,                                        \
	    "postgresql://postgres@127.0.0.1:54329/sub2api", 0, 0, NULL,   \
	    CFG_F_SHARED, "PostgreSQL connection URL.")                    \
	X(db_pool, CFG_INT, "4", 1, 256, NULL, 0,                          \
	    "PostgreSQL connections at most.")                             \
	X(redis_url, CFG_SECRET, "redis://127.0.0.1:63799", 0, 0, NULL,    \
	    CFG_F_SHARED, "Redis URL redis://[:password@]host:port[/db].") \
	X(redis_pool, CFG_INT, "4", 1, 1024, NULL, 0,                      \
	    "Redis connections at most.")                                  \
	X(dep_timeout, CFG_DUR, "1s", 50, 30000, NULL, 0,                  \
	    "Budget of one readiness probe of PostgreSQL or Redis.")

CFG_DECLARE(bill_cfg, BILL_CFG)

struct bill {
	struct svc             svc;
	const struct bill_cfg *cfg;
	struct nngx_sub       *sub;
	struct pg_pool        *pg;
	struct rds_pool       *rds;
	struct hb_rx           hb;
	struct met_counter    *usage_events;
	struct met_counter    *other_events;
};

#endif /* BILL_H */
