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

#define ALRT_CFG(X)                                                   \
	SVC_CFG_BASE(X, "127.0.0.1:9105")                             \
	X(metrics_addr, CFG_NNG, ADDR_ALERTER_METRICS, 0, 0, NULL, 0, \
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
