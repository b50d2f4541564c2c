/*
 * web.h: the web UI service (private to webui/).
 *
 * webui serves the admin and user web app and the REST API under /api/v1,
 * owns writes to the configuration tables and announces them to the
 * schedulers (PUB cfg.changed).  This first cut serves a placeholder page
 * on listen_addr, dials the schedulers' config subscription, and keeps a
 * PostgreSQL pool reported in /readyz.
 */
#ifndef WEB_H
#define WEB_H

#include "cfg.h"
#include "nngx.h"
#include "pg.h"
#include "svc.h"
#include "topics.h"

#define WEB_CFG(X)                                                       \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",    \
	    CFG_F_SHARED, "Log level: error, warn, info or debug.")      \
	X(state_dir, CFG_STR, "var/run", 0, 0, NULL, CFG_F_SHARED,       \
	    "Directory for ipc:// sockets and local state.")             \
	X(health_addr, CFG_ADDR, "127.0.0.1:9106", 0, 0, NULL, 0,        \
	    "Health listener (/healthz, /readyz, /metrics) host:port.")  \
	X(listen_addr, CFG_ADDR, "0.0.0.0:8081", 0, 0, NULL, 0,          \
	    "Web app and REST API listener host:port.")                  \
	X(drain_timeout, CFG_DUR, "3s", 0, 60000, NULL, 0,               \
	    "Budget for in-flight requests after SIGTERM.")              \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0,        \
	    "The schedulers' config-changed SUB address, dialled.")      \
	X(database_url, CFG_SECRET,                                      \
	    "postgresql://postgres@127.0.0.1:54329/sub2api", 0, 0, NULL, \
	    CFG_F_SHARED, "PostgreSQL connection URL.")                  \
	X(db_pool, CFG_INT, "8", 1, 256, NULL, 0,                        \
	    "PostgreSQL connections at most.")                           \
	X(dep_timeout, CFG_DUR, "1s", 50, 30000, NULL, 0,                \
	    "Budget of one readiness probe of PostgreSQL.")

CFG_DECLARE(web_cfg, WEB_CFG)

struct web {
	struct svc            svc;
	const struct web_cfg *cfg;
	struct http_srv      *front;
	struct nngx_pub      *cfg_pub;
	struct pg_pool       *pg;
};

#endif /* WEB_H */
