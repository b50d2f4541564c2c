/*
 * bill.h: the billing service (private to billing/).
 *
 * Billing listens (SUB) for the gateways' usage events, prices them and
 * moves money in PostgreSQL, keeping the Redis billing cache the
 * scheduler reads.
 *
 * Heartbeats go through an hb_rx (so a lost one shows in /metrics).
 * Usage events are decoded on the subscriber's thread and queued; the
 * writer thread (bill_writer.c) prices them (bill_price.h, bill_usage.h,
 * bill_cost.h) and applies them in batches, one transaction each
 * (bill_ledger.h).  /readyz reports PostgreSQL, Redis and "ledger" (the
 * last batch attempt succeeded).  Replaying gaps from the gateways'
 * spools is a later step: billing_cursors already holds, per instance,
 * the contiguous prefix committed.
 *
 * The price table in use is, in order of preference: the copy downloaded
 * from price_url into price_data_dir (when price_url is set and a valid
 * copy exists; bill_price_fetch.h), else price_file, else price_bundled.
 * With price_url set, a thread re-checks price_sha256_url every
 * price_check_interval and swaps in a verified new table.
 */
#ifndef BILL_H
#define BILL_H

#include "bill_ledger.h"
#include "bill_notify.h"
#include "bill_price_fetch.h"
#include "cfg.h"
#include "hb.h"
#include "nngx.h"
#include "pg.h"
#include "rds.h"
#include "svc.h"
#include "tick.h"
#include "topics.h"

#define BILL_CFG(X)                                                            \
	SVC_CFG_BASE(X, "127.0.0.1:9103")                                      \
	SVC_CFG_PG(X, "6")                                                     \
	SVC_CFG_REDIS(X, "4")                                                  \
	SVC_CFG_DEPS(X)                                                        \
	X(events_addr, CFG_NNG, ADDR_BILLING_EVENTS, 0, 0, NULL, 0,            \
	    "SUB address the gateways publish usage events to.")               \
	X(recv_queue, CFG_INT, "8192", 16, 1048576, NULL, 0,                   \
	    "Messages queued in the subscriber before NNG drops.")             \
	X(sync_addr, CFG_NNG, ADDR_BILLING_SYNC, 0, 0, NULL, 0,                \
	    "REP address the gateways' usage sync dials.")                     \
	X(sched_cfg_addr, CFG_NNG, ADDR_SCHED_CFG, 0, 0, NULL, 0,              \
	    "The scheduler's config-changed SUB address: billing tells it "    \
	    "there when a balance reaches zero or a window or key quota is "   \
	    "spent, so the next request is refused.")                          \
	X(price_file, CFG_STR, "", 0, 1024, NULL, 0,                           \
	    "LiteLLM-format price table; empty: the bundled one.")             \
	X(price_bundled, CFG_STR, "billing/prices.json", 0, 1024, NULL, 0,     \
	    "Bundled price table, used when price_file fails.")                \
	X(price_file_max, CFG_SIZE, "16M", 1024, 256 << 20, NULL, 0,           \
	    "Largest price table file accepted.")                              \
	X(price_unknown, CFG_ENUM, "zero", 0, 0, "zero|fallback", 0,           \
	    "Unknown model: zero cost (dead-lettered) or fallback.")           \
	X(price_fallback_model, CFG_STR, "claude-sonnet-4-5", 0, 128, NULL, 0, \
	    "Model whose prices an unknown model gets (fallback).")            \
	X(price_url, CFG_STR, "", 0, 2048, NULL, 0,                            \
	    "URL of a LiteLLM-format price table; empty: no download.")        \
	X(price_sha256_url, CFG_STR, "${price_url}.sha256", 0, 2048, NULL, 0,  \
	    "URL of its sha256; empty: download and compare the body.")        \
	X(price_data_dir, CFG_STR, "${state_dir}/prices", 0, 1024, NULL, 0,    \
	    "Directory keeping the last good downloaded price table.")         \
	X(price_check_interval, CFG_DUR, "10m", 100, 86400000, NULL, 0,        \
	    "How often the remote sha256 is compared with the table's.")       \
	X(price_update_interval, CFG_DUR, "24h", 1000, 2592000000LL, NULL, 0,  \
	    "A downloaded copy older than this is downloaded again.")          \
	X(price_fetch_timeout, CFG_DUR, "30s", 100, 600000, NULL, 0,           \
	    "Timeout of each price table or sha256 download.")                 \
	X(run_mode, CFG_ENUM, "standard", 0, 0, "standard|simple", 0,          \
	    "simple: usage is recorded and nothing is charged.")               \
	X(batch_max, CFG_INT, "2000", 1, 5000, NULL, 0,                        \
	    "Usage events per database transaction at most.")                  \
	X(writers, CFG_INT, "3", 1, 16, NULL, 0,                               \
	    "Writer threads applying batches concurrently (< db_pool).")       \
	X(batch_wait, CFG_DUR, "50ms", 0, 10000, NULL, 0,                      \
	    "How long a partial batch waits for more events.")                 \
	X(queue_max, CFG_INT, "16384", 16, 1048576, NULL, 0,                   \
	    "Usage events queued for the writer; beyond, they are dropped.")   \
	X(retry_min, CFG_DUR, "100ms", 1, 60000, NULL, 0,                      \
	    "First back-off after a failed batch.")                            \
	X(retry_max, CFG_DUR, "5s", 1, 600000, NULL, 0,                        \
	    "Longest back-off between tries of a failed batch.")               \
	X(db_wait, CFG_DUR, "2s", 1, 60000, NULL, 0,                           \
	    "Wait for a free PostgreSQL connection per batch.")                \
	X(redis_prefix, CFG_STR, "s2a:", 0, 64, NULL, 0,                       \
	    "Prefix of the Redis billing cache keys (as the scheduler's).")    \
	X(cache_ttl, CFG_DUR, "5m", 1000, 86400000, NULL, 0,                   \
	    "TTL of the Redis billing cache entries.")                         \
	X(listener_guard, CFG_DUR, "5s", 0, 600000, NULL, 0,                   \
	    "Check the ipc listeners still take peers this often; 0: never.")

CFG_DECLARE(bill_cfg, BILL_CFG)

struct bill {
	struct svc             svc;
	const struct bill_cfg *cfg;
	struct nngx_sub       *sub;
	struct bill_notify    *notify; /* to the scheduler's cfg SUB */
	struct pg_pool        *pg;
	struct rds_pool       *rds;
	struct hb_rx           hb;
	struct met_counter    *usage_events;
	struct met_counter    *other_events;
	struct met_counter    *bad_events;
	struct bill_prices    *prices;
	struct bill_pfetch    *pfetch; /* NULL without price_url */
	struct bill_ledger    *ledger;
	struct bill_writer    *writer;
	struct bill_sync      *sync;
	struct tick            guard_tick; /* the listeners' guard */
	struct met_counter    *m_reopened;
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
/*
 * lost(arg, instance, from, to): the request declares seqs from..to lost
 * by the gateway (never spooled); 0 or -ERR_x (only logged: the gateway
 * declares them again).  Called before the events are ingested.
 */
typedef int (*bill_sync_lost_fn)(
    void *arg, const char *instance, uint64_t from, uint64_t to);

struct bill_sync;

/*
 * Listens on addr (borrowed); the callbacks and their args are borrowed
 * for the listener's life (lost may be NULL: lost ranges are ignored).
 * *out is owned, freed by bill_sync_free().
 */
int bill_sync_new(const char *addr, bill_sync_ingest_fn ingest,
    void *ingest_arg, bill_sync_committed_fn committed, void *committed_arg,
    bill_sync_lost_fn lost, void *lost_arg, struct bill_sync **out) WARN_UNUSED;

/* Stops listening (waits for handlers in progress) and frees.  NULL ok. */
void bill_sync_free(struct bill_sync *s);

/* nngx_rep_guard() of the listener (nng 1.5.2's stuck listener). */
int bill_sync_guard(struct bill_sync *s, int timeout_ms);

/*
 * A committed callback over billing's pool (arg: struct pg_pool *):
 * SELECT committed_seq FROM billing_cursors WHERE instance_id = $1.
 */
int bill_sync_committed_pg(void *arg, const char *instance, uint64_t *seq);

#endif /* BILL_H */
