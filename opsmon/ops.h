/*
 * ops.h: the ops-monitoring service (private to opsmon/).
 *
 * Opsmon listens (SUB) for usage, error and heartbeat events, keeps the
 * 1- and 5-minute windows and the ops tables (ops issue), and publishes
 * metric snapshots (PUB) that the alerter evaluates.
 *
 * This first cut counts what it receives (heartbeats through an hb_rx)
 * and publishes a snapshot of those counters every snapshot_interval, so
 * the opsmon -> alerter link is exercised end to end.
 */
#ifndef OPS_H
#define OPS_H

#include "cfg.h"
#include "hb.h"
#include "nngx.h"
#include "svc.h"
#include "tick.h"
#include "topics.h"

#define OPS_CFG(X)                                                            \
	SVC_CFG_BASE(X, "127.0.0.1:9104")                                     \
	X(events_addr, CFG_NNG, ADDR_OPSMON_EVENTS, 0, 0, NULL, 0,            \
	    "SUB address the gateways publish events to.")                    \
	X(recv_queue, CFG_INT, "8192", 16, 1048576, NULL, 0,                  \
	    "Messages queued in the subscriber before NNG drops.")            \
	X(alerter_metrics_addr, CFG_NNG, ADDR_ALERTER_METRICS, 0, 0, NULL, 0, \
	    "The alerter's SUB address, dialled to publish snapshots.")       \
	X(snapshot_interval, CFG_DUR, "5s", 10, 600000, NULL, 0,              \
	    "Metric snapshot to the alerter, every this often.")

CFG_DECLARE(ops_cfg, OPS_CFG)

struct ops {
	struct svc            svc;
	const struct ops_cfg *cfg;
	struct nngx_sub      *sub;
	struct nngx_pub      *pub;
	struct tick           snap_tick;
	struct hb_rx          hb;
	struct met_counter   *usage_events;
	struct met_counter   *error_events;
	struct met_counter   *snapshots_sent;
	struct met_counter   *snapshots_dropped;
};

/* ops_snapshot.c */
void ops_snapshot_cb(void *arg);

#endif /* OPS_H */
