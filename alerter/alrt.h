/*
 * alrt.h: the alerter service (private to alerter/).
 *
 * The alerter listens (SUB) for opsmon's metric snapshots, evaluates the
 * alert rules, records firing/resolved events and notifies by email and
 * webhooks (alerter issue).  This first cut receives and counts snapshots
 * and keeps the newest one's values as gauges, proving the link.
 */
#ifndef ALRT_H
#define ALRT_H

#include "cfg.h"
#include "nngx.h"
#include "svc.h"
#include "topics.h"

#define ALRT_CFG(X)                                                     \
	X(log_level, CFG_ENUM, "info", 0, 0, "error|warn|info|debug",   \
	    CFG_F_SHARED, "Log level: error, warn, info or debug.")     \
	X(state_dir, CFG_STR, "var/run", 0, 0, NULL, CFG_F_SHARED,      \
	    "Directory for ipc:// sockets and local state.")            \
	X(health_addr, CFG_ADDR, "127.0.0.1:9105", 0, 0, NULL, 0,       \
	    "Health listener (/healthz, /readyz, /metrics) host:port.") \
	X(drain_timeout, CFG_DUR, "3s", 0, 60000, NULL, 0,              \
	    "Budget for pending notifications after SIGTERM.")          \
	X(metrics_addr, CFG_NNG, ADDR_ALERTER_METRICS, 0, 0, NULL, 0,   \
	    "SUB address opsmon publishes metric snapshots to.")

CFG_DECLARE(alrt_cfg, ALRT_CFG)

struct alrt {
	struct svc             svc;
	const struct alrt_cfg *cfg;
	struct nngx_sub       *sub;
	struct met_counter    *snapshots;
	struct met_counter    *malformed;
	struct met_family     *last_value; /* {name} */
};

#endif /* ALRT_H */
