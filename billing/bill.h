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
 * are opened and reported in /readyz.  The price table (bill_price.h),
 * usage normalisation (bill_usage.h) and cost arithmetic (bill_cost.h)
 * are built and tested but not yet called from the event path; the
 * price_* keys below are read when they are.
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

#define BILL_CFG(X)                                                            \
	SVC_CFG_BASE(X, "127.0.0.1:9103")                                      \
	SVC_CFG_PG(X, "4")                                                     \
	SVC_CFG_REDIS(X, "4")                                                  \
	SVC_CFG_DEPS(X)                                                        \
	X(events_addr, CFG_NNG, ADDR_BILLING_EVENTS, 0, 0, NULL, 0,            \
	    "SUB address the gateways publish usage events to.")               \
	X(recv_queue, CFG_INT, "8192", 16, 1048576, NULL, 0,                   \
	    "Messages queued in the subscriber before NNG drops.")             \
	X(sync_addr, CFG_NNG, ADDR_BILLING_SYNC, 0, 0, NULL, 0,                \
	    "REP address the gateways' usage sync dials.")                     \
	X(price_file, CFG_STR, "", 0, 1024, NULL, 0,                           \
	    "LiteLLM-format price table; empty: the bundled one.")             \
	X(price_bundled, CFG_STR, "billing/prices.json", 0, 1024, NULL, 0,     \
	    "Bundled price table, used when price_file fails.")                \
	X(price_file_max, CFG_SIZE, "16M", 1024, 256 << 20, NULL, 0,           \
	    "Largest price table file accepted.")                              \
	X(price_unknown, CFG_ENUM, "zero", 0, 0, "zero|fallback", 0,           \
	    "Unknown model: zero cost (dead-lettered) or fallback.")           \
	X(price_fallback_model, CFG_STR, "claude-sonnet-4-5", 0, 128, NULL, 0, \
	    "Model whose prices an unknown model gets (fallback).")

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
	struct bill_sync      *sync;
};

/*
 * bill_sync.c: the usage sync listener.  Gateways send the usage events
 * billing has not confirmed (USAGE_SYNC_REQ); each is handed to ingest as
 * a packed USAGE_EVT envelope (the bytes a SUB delivery carries), and the
 * reply carries committed(instance).
 *
 * ingest(arg, env, len): env is borrowed for the call; 0, or -ERR_x to
 * fail the whole request (the gateway resends later).  committed(arg,
 * instance, &seq): the instance's committed seq, 0 when unknown; 0 or
 * -ERR_x.  Both run on nng worker threads, several at once: they must be
 * thread-safe.
 */
typedef int (*bill_sync_ingest_fn)(void *arg, const void *env, size_t len);
typedef int (*bill_sync_committed_fn)(
    void *arg, const char *instance, uint64_t *seq);

struct bill_sync;

/*
 * Listens on addr (borrowed); the callbacks and their args are borrowed
 * for the listener's life.  *out is owned, freed by bill_sync_free().
 */
int bill_sync_new(const char *addr, bill_sync_ingest_fn ingest,
    void *ingest_arg, bill_sync_committed_fn committed, void *committed_arg,
    struct bill_sync **out) WARN_UNUSED;

/* Stops listening (waits for handlers in progress) and frees.  NULL ok. */
void bill_sync_free(struct bill_sync *s);

/*
 * A committed callback over billing's pool (arg: struct pg_pool *):
 * SELECT committed_seq FROM billing_cursors WHERE instance_id = $1.
 */
int bill_sync_committed_pg(void *arg, const char *instance, uint64_t *seq);

#endif /* BILL_H */
