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

#define WEB_CFG(X)                                                \
	SVC_CFG_BASE(X, "127.0.0.1:9106")                         \
	SVC_CFG_PG(X, "8")                                        \
	SVC_CFG_DEPS(X)                                           \
	X(listen_addr, CFG_ADDR, "0.0.0.0:8081", 0, 0, NULL, 0,   \
	    "Web app and REST API listener host:port.")           \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0, \
	    "The schedulers' config-changed SUB address, dialled.")

CFG_DECLARE(web_cfg, WEB_CFG)

struct web {
	struct svc            svc;
	const struct web_cfg *cfg;
	struct http_srv      *front;
	struct nngx_pub      *cfg_pub;
	struct pg_pool       *pg;
};

#endif /* WEB_H */
